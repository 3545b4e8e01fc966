//! Secured test brokers are really secured: SASL_SSL with SCRAM-SHA-512 users, and mutual TLS,
//! with certificates generated in the test process. Clients with the right credentials round
//! trip records; a wrong password or a missing client certificate is refused at once.

mod common;

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{TIMEOUT, create_topic, payloads, produce, producer, read_all};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use test_support::{ADMIN_USER, KafkaBroker, ScramUser, Security, unique_name};

/// How fast a refused client must report it: librdkafka reports an authentication failure
/// on the first connection, well within this.
const FAIL_FAST: Duration = Duration::from_secs(10);

fn alice() -> ScramUser {
    ScramUser::new("alice", "alice-secret-1")
}

/// One SASL_SSL broker for this test binary's SASL tests (they isolate by topic name).
fn sasl_broker() -> &'static KafkaBroker {
    static BROKER: OnceLock<KafkaBroker> = OnceLock::new();
    BROKER.get_or_init(|| {
        KafkaBroker::start_secured(Security::SaslSsl {
            users: vec![alice(), ScramUser::new("bob", "bob-secret-2")],
        })
        .expect("cannot start the SASL_SSL broker")
    })
}

/// One mTLS broker for this test binary's mTLS tests.
fn mtls_broker() -> &'static KafkaBroker {
    static BROKER: OnceLock<KafkaBroker> = OnceLock::new();
    BROKER.get_or_init(|| {
        KafkaBroker::start_secured(Security::MutualTls).expect("cannot start the mTLS broker")
    })
}

#[tokio::test]
async fn sasl_ssl_round_trip_as_a_scram_user() -> anyhow::Result<()> {
    let broker = sasl_broker();
    assert_eq!(broker.security_protocol(), "SASL_SSL");
    assert_eq!(
        broker.scram_users(),
        &[alice(), ScramUser::new("bob", "bob-secret-2")]
    );
    assert_eq!(
        broker.admin_user().map(|u| u.name.as_str()),
        Some(ADMIN_USER)
    );
    let tls = broker.tls().expect("a SASL_SSL broker has TLS files");
    assert!(std::fs::read_to_string(&tls.ca_pem)?.starts_with("-----BEGIN CERTIFICATE-----"));

    let topic = unique_name("sasl");
    // The admin client authenticates as the broker's admin user.
    create_topic(&broker.client_config(), &topic, 3, 1).await?;
    let as_alice = broker.client_config_as(&alice());
    produce(&producer(&as_alice, TIMEOUT)?, &topic, 0..100).await?;
    assert_eq!(read_all(&as_alice, &topic, 3)?, payloads(0..100));
    Ok(())
}

/// SCRAM users live in the metadata log, certificates in the broker's dir: both survive a
/// restart, and the restarted broker is probed over its secured listener.
#[tokio::test]
async fn secured_broker_keeps_users_and_records_across_restart() -> anyhow::Result<()> {
    let mut broker = KafkaBroker::start_secured(Security::SaslSsl {
        users: vec![alice()],
    })?;
    let topic = unique_name("sasl-restart");
    let as_alice = broker.client_config_as(&alice());
    create_topic(&broker.client_config(), &topic, 1, 1).await?;
    produce(&producer(&as_alice, TIMEOUT)?, &topic, 0..10).await?;
    broker.restart()?;
    let as_alice = broker.client_config_as(&alice());
    produce(&producer(&as_alice, TIMEOUT)?, &topic, 10..20).await?;
    assert_eq!(read_all(&as_alice, &topic, 1)?, payloads(0..20));
    Ok(())
}

#[test]
fn sasl_ssl_wrong_password_fails_fast_with_an_authentication_error() -> anyhow::Result<()> {
    let broker = sasl_broker();
    for user in [
        ScramUser::new("alice", "not-alices-password"),
        ScramUser::new("mallory", "whatever"),
    ] {
        let Attempt {
            errors,
            waited: first_after,
            metadata_ok,
            metadata_error,
        } = connection_errors(&broker.client_config_as(&user), FAIL_FAST)?;
        println!("{user:?}: {errors:?} after {first_after:?}; metadata: {metadata_error:?}");
        assert!(!metadata_ok, "{user:?} got metadata");
        let (code, reason) = errors.first().expect("no error reported");
        assert_eq!(*code, RDKafkaErrorCode::Authentication, "{reason}");
        assert!(reason.contains("SASL authentication error"), "{reason}");
        assert!(first_after < FAIL_FAST, "took {first_after:?}");
    }
    Ok(())
}

/// A client that speaks TLS but no SASL to the SASL_SSL listener gets nothing. Note for the
/// product: librdkafka reports no error through the error callback here (the broker just
/// closes the connection), so such a misconfiguration shows up as timeouts only.
#[test]
fn sasl_ssl_refuses_a_client_without_sasl() -> anyhow::Result<()> {
    let broker = sasl_broker();
    let tls = broker.tls().expect("TLS files");
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", tls.ca_pem.display().to_string());
    let Attempt {
        errors,
        waited,
        metadata_ok,
        ..
    } = connection_errors(&config, Duration::from_secs(5))?;
    println!("no SASL: {errors:?} after {waited:?}");
    assert!(!metadata_ok, "a client without SASL got metadata");
    Ok(())
}

#[tokio::test]
async fn mutual_tls_round_trip_with_the_client_certificate() -> anyhow::Result<()> {
    let broker = mtls_broker();
    assert_eq!(broker.security_protocol(), "SSL");
    assert!(broker.scram_users().is_empty());
    assert!(broker.admin_user().is_none());
    let tls = broker.tls().expect("an mTLS broker has TLS files");
    assert!(
        std::fs::read_to_string(&tls.client_key_pem)?.starts_with("-----BEGIN PRIVATE KEY-----")
    );

    let topic = unique_name("mtls");
    let config = broker.client_config();
    create_topic(&config, &topic, 3, 1).await?;
    produce(&producer(&config, TIMEOUT)?, &topic, 0..100).await?;
    assert_eq!(read_all(&config, &topic, 3)?, payloads(0..100));
    Ok(())
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate() -> anyhow::Result<()> {
    let broker = mtls_broker();
    let tls = broker.tls().expect("TLS files");
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", tls.ca_pem.display().to_string());
    let Attempt {
        errors,
        waited: first_after,
        metadata_ok,
        ..
    } = connection_errors(&config, FAIL_FAST)?;
    println!("no client certificate: {errors:?} after {first_after:?}");
    assert!(!metadata_ok, "a client without a certificate got metadata");
    // The broker's TLS alert: librdkafka reports a transport failure naming the certificate.
    let (code, reason) = errors.first().expect("no error reported");
    assert_eq!(*code, RDKafkaErrorCode::BrokerTransportFailure, "{reason}");
    assert!(reason.contains("bad certificate"), "{reason}");
    assert!(first_after < FAIL_FAST, "took {first_after:?}");
    Ok(())
}

#[test]
fn mutual_tls_refuses_a_client_that_does_not_trust_the_broker() -> anyhow::Result<()> {
    let broker = mtls_broker();
    // A client certificate, but the system CAs instead of the test CA: the client rejects
    // the broker's certificate.
    let mut config = broker.client_config();
    config.remove("ssl.ca.location");
    let Attempt {
        errors,
        waited: first_after,
        metadata_ok,
        ..
    } = connection_errors(&config, FAIL_FAST)?;
    println!("untrusted broker: {errors:?} after {first_after:?}");
    assert!(!metadata_ok);
    let (code, reason) = errors.first().expect("no error reported");
    assert_eq!(*code, RDKafkaErrorCode::SSL, "{reason}");
    assert!(reason.contains("certificate verify failed"), "{reason}");
    assert!(first_after < FAIL_FAST, "took {first_after:?}");
    Ok(())
}

/// A client context that records the errors librdkafka reports through its error callback
/// (authentication failures, TLS handshake failures, all brokers down, …).
#[derive(Default)]
struct ErrorLog(Mutex<Vec<(RDKafkaErrorCode, String)>>);

impl ErrorLog {
    fn errors(&self) -> Vec<(RDKafkaErrorCode, String)> {
        self.0.lock().expect("error log lock poisoned").clone()
    }
}

impl ClientContext for ErrorLog {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error
            .rdkafka_error_code()
            .unwrap_or(RDKafkaErrorCode::Unknown);
        self.0
            .lock()
            .expect("error log lock poisoned")
            .push((code, reason.to_owned()));
    }
}

impl ConsumerContext for ErrorLog {}

/// What [`connection_errors`] saw.
struct Attempt {
    /// (code, reason) from the error callback, in order.
    errors: Vec<(RDKafkaErrorCode, String)>,
    /// Until the first error, or the whole wait if none came.
    waited: Duration,
    /// Whether any metadata request succeeded.
    metadata_ok: bool,
    /// The last metadata request's error.
    metadata_error: Option<KafkaError>,
}

/// What a client made from `config` reports while failing to connect: asks for metadata
/// (200 ms timeouts) and serves callbacks until the error callback reports something or
/// `within` passes.
fn connection_errors(config: &ClientConfig, within: Duration) -> anyhow::Result<Attempt> {
    let client: BaseConsumer<ErrorLog> = config
        .clone()
        .set("group.id", unique_name("probe"))
        .create_with_context(ErrorLog::default())?;
    let start = Instant::now();
    let mut metadata_ok = false;
    let mut metadata_error = None;
    while start.elapsed() < within {
        match client.fetch_metadata(None, Duration::from_millis(200)) {
            Ok(_) => metadata_ok = true,
            Err(e) => metadata_error = Some(e),
        }
        // Serves the error callback.
        let _ = client.poll(Duration::from_millis(100));
        let errors = client.context().errors();
        if !errors.is_empty() {
            return Ok(Attempt {
                errors,
                waited: start.elapsed(),
                metadata_ok,
                metadata_error,
            });
        }
    }
    Ok(Attempt {
        errors: client.context().errors(),
        waited: start.elapsed(),
        metadata_ok,
        metadata_error,
    })
}
