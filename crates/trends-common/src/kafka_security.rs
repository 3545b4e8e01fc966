//! How the services reach a secured Kafka cluster: TLS, SASL (PLAIN, SCRAM, OAUTHBEARER/OIDC),
//! mutual TLS, and a pass-through table of other librdkafka properties.
//!
//! **Typed where it matters, passed through where it does not.** The settings a managed
//! cluster needs (Confluent Cloud, Amazon MSK, Aiven, Redpanda Cloud, Strimzi with SCRAM or TLS
//! users) are typed and checked at start with the key named: `kafka.security_protocol`,
//! `kafka.sasl.*`, `kafka.ssl.*`. Everything else librdkafka knows goes through
//! `kafka.properties` to every client the services create.
//!
//! **Precedence, stated once.** A client's configuration is built in this order, and no step
//! may set a key an earlier one set, so nothing is silently overridden:
//! 1. `bootstrap.servers` and the typed security settings;
//! 2. `kafka.properties`;
//! 3. what each service sets for its own correctness (`enable.idempotence`,
//!    `isolation.level`, `transactional.id`, `group.id`, …: [`RESERVED`]).
//!
//! A property that a typed setting covers, that a service sets itself, or that holds a secret
//! is refused at start with a message saying what to use instead. A property librdkafka does
//! not know, or a value it refuses, is refused at start too (librdkafka's own check).
//!
//! **Secrets** (the SASL password, the TLS key's password, the OIDC client secret) are given
//! as [`SecretRef`]s (a variable's name or a file's path), read once at load time into
//! [`secrecy::SecretString`]s, and exposed only when handed to librdkafka. librdkafka marks
//! them sensitive itself: its `debug=conf` output prints `[redacted]`.
//!
//! Property names in `kafka.properties` are librdkafka's with `_` for `.`
//! (`TRENDS__KAFKA__PROPERTIES__SOCKET_KEEPALIVE_ENABLE=true`, or `socket_keepalive_enable`
//! in a TOML file), since neither environment variables nor the config layers keep dots in a
//! key; no librdkafka property that can be set as text has an `_` of its own.

use std::collections::{BTreeMap, HashMap};

use rdkafka::ClientConfig;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::secret::SecretRef;

/// `kafka.security_protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's `security.protocol` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

impl<'de> Deserialize<'de> for SecurityProtocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim().to_ascii_lowercase().as_str() {
            "plaintext" => Ok(SecurityProtocol::Plaintext),
            "ssl" => Ok(SecurityProtocol::Ssl),
            "sasl_plaintext" => Ok(SecurityProtocol::SaslPlaintext),
            "sasl_ssl" => Ok(SecurityProtocol::SaslSsl),
            other => Err(serde::de::Error::custom(format!(
                "unknown security protocol {other:?}, expected plaintext, ssl, sasl_plaintext or \
                 sasl_ssl"
            ))),
        }
    }
}

/// `kafka.sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OauthBearer,
}

impl SaslMechanism {
    /// librdkafka's `sasl.mechanism` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OauthBearer => "OAUTHBEARER",
        }
    }
}

impl<'de> Deserialize<'de> for SaslMechanism {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim().to_ascii_uppercase().replace('_', "-").as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            "OAUTHBEARER" => Ok(SaslMechanism::OauthBearer),
            other => Err(serde::de::Error::custom(format!(
                "unknown SASL mechanism {other:?}, expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 \
                 or OAUTHBEARER (GSSAPI/Kerberos is not built in)"
            ))),
        }
    }
}

/// `[kafka.sasl]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SaslSettings {
    /// Required with `sasl_plaintext` / `sasl_ssl`.
    pub mechanism: Option<SaslMechanism>,
    /// PLAIN and SCRAM.
    pub username: String,
    /// PLAIN and SCRAM: where the password is (`env` or `file`).
    pub password: SecretRef,
    /// OAUTHBEARER: an OIDC client-credentials flow, done by librdkafka itself.
    pub oauthbearer: OauthBearerSettings,
}

/// `[kafka.sasl.oauthbearer]`: librdkafka's built-in OIDC (`sasl.oauthbearer.method=oidc`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OauthBearerSettings {
    /// The identity provider's token endpoint (`https://…/oauth2/token`).
    pub token_endpoint_url: String,
    pub client_id: String,
    /// Where the client secret is (`env` or `file`).
    pub client_secret: SecretRef,
    /// Optional: the scope to ask for.
    pub scope: String,
    /// Optional: SASL extensions, `key=value,key=value` (Confluent Cloud's
    /// `logicalCluster=…,identityPoolId=…`).
    pub extensions: String,
}

/// `[kafka.ssl]`: TLS, with `ssl` or `sasl_ssl`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SslSettings {
    /// PEM file of the CA(s) to trust; empty = the system's trust store (public CAs: most
    /// managed clusters).
    pub ca_file: String,
    /// Mutual TLS: the client's certificate (PEM); with `key_file`.
    pub cert_file: String,
    /// Mutual TLS: the client's private key (PEM); with `cert_file`.
    pub key_file: String,
    /// The private key's password, if it is encrypted (`env` or `file`).
    pub key_password: SecretRef,
    /// Check that the broker's certificate names the host connected to (librdkafka's
    /// `ssl.endpoint.identification.algorithm=https`). On by default; turning it off lets a
    /// man in the middle with any certificate from a trusted CA in.
    pub verify_hostname: bool,
}

impl Default for SslSettings {
    fn default() -> Self {
        SslSettings {
            ca_file: String::new(),
            cert_file: String::new(),
            key_file: String::new(),
            key_password: SecretRef::default(),
            verify_hostname: true,
        }
    }
}

/// The secrets the security settings point at, read at load time.
#[derive(Debug, Clone, Default)]
pub struct KafkaSecrets {
    pub sasl_password: Option<SecretString>,
    pub ssl_key_password: Option<SecretString>,
    pub oauth_client_secret: Option<SecretString>,
}

/// Keys the services set on their clients themselves, for their guarantees (exactly once,
/// read-committed, their own groups and limits): never from `kafka.properties`.
pub const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "group.id",
    "group.instance.id",
    "transactional.id",
    "enable.idempotence",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "isolation.level",
    "auto.offset.reset",
    "acks",
    "request.required.acks",
    "message.max.bytes",
    "transaction.timeout.ms",
    "session.timeout.ms",
    "partition.assignment.strategy",
    "statistics.interval.ms",
    "debug",
    "log_level",
];

/// Keys a typed setting covers: the typed setting is the one place for them.
const TYPED: &[(&str, &str)] = &[
    ("security.protocol", "kafka.security_protocol"),
    ("sasl.mechanism", "kafka.sasl.mechanism"),
    ("sasl.mechanisms", "kafka.sasl.mechanism"),
    ("sasl.username", "kafka.sasl.username"),
    ("ssl.ca.location", "kafka.ssl.ca_file"),
    ("ssl.certificate.location", "kafka.ssl.cert_file"),
    ("ssl.key.location", "kafka.ssl.key_file"),
    (
        "ssl.endpoint.identification.algorithm",
        "kafka.ssl.verify_hostname",
    ),
    ("sasl.oauthbearer.method", "kafka.sasl.oauthbearer.*"),
    (
        "sasl.oauthbearer.token.endpoint.url",
        "kafka.sasl.oauthbearer.token_endpoint_url",
    ),
    (
        "sasl.oauthbearer.client.id",
        "kafka.sasl.oauthbearer.client_id",
    ),
    ("sasl.oauthbearer.scope", "kafka.sasl.oauthbearer.scope"),
    (
        "sasl.oauthbearer.extensions",
        "kafka.sasl.oauthbearer.extensions",
    ),
];

/// Keys that hold a secret: they would sit in plain text in a config file or the environment.
const SECRET: &[(&str, &str)] = &[
    ("sasl.password", "kafka.sasl.password.env or .file"),
    ("ssl.key.password", "kafka.ssl.key_password.env or .file"),
    ("ssl.key.pem", "kafka.ssl.key_file"),
    ("ssl.keystore.password", "kafka.ssl.key_file (PEM)"),
    (
        "sasl.oauthbearer.client.secret",
        "kafka.sasl.oauthbearer.client_secret.env or .file",
    ),
    (
        "sasl.oauthbearer.client.credentials.client.secret",
        "kafka.sasl.oauthbearer.client_secret.env or .file",
    ),
    (
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "a file librdkafka reads (sasl.oauthbearer.assertion.private.key.file)",
    ),
];

/// The librdkafka name of a `kafka.properties` key (`socket_keepalive_enable` →
/// `socket.keepalive.enable`).
pub fn property_name(key: &str) -> String {
    key.trim().to_ascii_lowercase().replace('_', ".")
}

/// Checks the security settings and the properties; the error names the key.
pub fn validate(
    protocol: SecurityProtocol,
    sasl: &SaslSettings,
    ssl: &SslSettings,
    properties: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let fail = |m: String| Err(ConfigError(m));
    let sasl_set = sasl.mechanism.is_some()
        || !sasl.username.is_empty()
        || sasl.password != SecretRef::default()
        || !sasl.oauthbearer.token_endpoint_url.is_empty();
    if protocol.uses_sasl() {
        let Some(mechanism) = sasl.mechanism else {
            return fail(format!(
                "kafka.sasl.mechanism must be set with kafka.security_protocol = {} (PLAIN, \
                 SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)",
                protocol.as_str()
            ));
        };
        match mechanism {
            SaslMechanism::OauthBearer => {
                let oauth = &sasl.oauthbearer;
                if oauth.token_endpoint_url.trim().is_empty() {
                    return fail(
                        "kafka.sasl.oauthbearer.token_endpoint_url must be set with \
                         kafka.sasl.mechanism = OAUTHBEARER (librdkafka's OIDC \
                         client-credentials flow)"
                            .into(),
                    );
                }
                if !(oauth.token_endpoint_url.starts_with("https://")
                    || oauth.token_endpoint_url.starts_with("http://"))
                {
                    return fail(format!(
                        "kafka.sasl.oauthbearer.token_endpoint_url {:?} must be an http(s) URL",
                        oauth.token_endpoint_url
                    ));
                }
                if oauth.client_id.trim().is_empty() {
                    return fail(
                        "kafka.sasl.oauthbearer.client_id must be set with \
                                 kafka.sasl.mechanism = OAUTHBEARER"
                            .into(),
                    );
                }
            }
            _ => {
                if sasl.username.trim().is_empty() {
                    return fail(format!(
                        "kafka.sasl.username must be set with kafka.sasl.mechanism = {}",
                        mechanism.as_str()
                    ));
                }
            }
        }
    } else if sasl_set {
        return fail(format!(
            "kafka.sasl.* is set but kafka.security_protocol is {} (use sasl_ssl or \
             sasl_plaintext)",
            protocol.as_str()
        ));
    }
    let ssl_set = !ssl.ca_file.is_empty()
        || !ssl.cert_file.is_empty()
        || !ssl.key_file.is_empty()
        || ssl.key_password != SecretRef::default();
    if !protocol.uses_tls() && ssl_set {
        return fail(format!(
            "kafka.ssl.* is set but kafka.security_protocol is {} (use ssl or sasl_ssl)",
            protocol.as_str()
        ));
    }
    if ssl.cert_file.is_empty() != ssl.key_file.is_empty() {
        return fail(
            "kafka.ssl.cert_file and kafka.ssl.key_file go together (mutual TLS): set both or \
             neither"
                .into(),
        );
    }
    for (key, path) in [
        ("kafka.ssl.ca_file", &ssl.ca_file),
        ("kafka.ssl.cert_file", &ssl.cert_file),
        ("kafka.ssl.key_file", &ssl.key_file),
    ] {
        if !path.is_empty()
            && let Err(e) = std::fs::File::open(path)
        {
            return fail(format!("{key}: cannot read {path}: {}", e.kind()));
        }
    }
    validate_properties(properties)
}

/// Refuses reserved, typed and secret keys, then lets librdkafka check names and values.
fn validate_properties(properties: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for (key, value) in properties {
        let name = property_name(key);
        let setting = format!("kafka.properties.{key}");
        if RESERVED.contains(&name.as_str()) {
            return Err(ConfigError(format!(
                "{setting}: {name} is set by the services themselves (their delivery \
                 guarantees depend on it) and cannot be overridden"
            )));
        }
        if let Some((_, typed)) = TYPED.iter().find(|(k, _)| *k == name) {
            return Err(ConfigError(format!("{setting}: set {name} with {typed}")));
        }
        if let Some((_, instead)) = SECRET.iter().find(|(k, _)| *k == name) {
            return Err(ConfigError(format!(
                "{setting}: {name} holds a secret; give it through {instead}, so it is never in \
                 a config file or a log"
            )));
        }
        let mut probe = ClientConfig::new();
        probe.set(name.as_str(), value.as_str());
        if let Err(e) = probe.create_native_config() {
            return Err(ConfigError(format!("{setting}: {e}")));
        }
    }
    Ok(())
}

/// Reads the secrets the settings point at (`vars`: the environment).
pub fn resolve_secrets(
    protocol: SecurityProtocol,
    sasl: &SaslSettings,
    ssl: &SslSettings,
    vars: &HashMap<String, String>,
) -> Result<KafkaSecrets, ConfigError> {
    let mut secrets = KafkaSecrets::default();
    if protocol.uses_sasl() {
        match sasl.mechanism {
            Some(SaslMechanism::OauthBearer) => {
                secrets.oauth_client_secret = Some(
                    sasl.oauthbearer
                        .client_secret
                        .load("kafka.sasl.oauthbearer.client_secret", vars)?,
                );
            }
            Some(_) => {
                secrets.sasl_password = Some(sasl.password.load("kafka.sasl.password", vars)?);
            }
            None => {}
        }
    }
    if ssl.key_password != SecretRef::default() {
        secrets.ssl_key_password = Some(ssl.key_password.load("kafka.ssl.key_password", vars)?);
    }
    Ok(secrets)
}

/// Sets the security settings, their secrets and the properties on `config` (steps 1 and 2 of
/// the precedence in the module docs).
pub fn apply(
    config: &mut ClientConfig,
    protocol: SecurityProtocol,
    sasl: &SaslSettings,
    ssl: &SslSettings,
    secrets: &KafkaSecrets,
    properties: &BTreeMap<String, String>,
) {
    config.set("security.protocol", protocol.as_str());
    if protocol.uses_sasl()
        && let Some(mechanism) = sasl.mechanism
    {
        config.set("sasl.mechanism", mechanism.as_str());
        if mechanism == SaslMechanism::OauthBearer {
            let oauth = &sasl.oauthbearer;
            config
                .set("sasl.oauthbearer.method", "oidc")
                .set(
                    "sasl.oauthbearer.token.endpoint.url",
                    &oauth.token_endpoint_url,
                )
                .set("sasl.oauthbearer.client.id", &oauth.client_id);
            if !oauth.scope.is_empty() {
                config.set("sasl.oauthbearer.scope", &oauth.scope);
            }
            if !oauth.extensions.is_empty() {
                config.set("sasl.oauthbearer.extensions", &oauth.extensions);
            }
            if let Some(secret) = &secrets.oauth_client_secret {
                config.set("sasl.oauthbearer.client.secret", secret.expose_secret());
            }
        } else {
            config.set("sasl.username", &sasl.username);
            if let Some(password) = &secrets.sasl_password {
                config.set("sasl.password", password.expose_secret());
            }
        }
    }
    if protocol.uses_tls() {
        if !ssl.ca_file.is_empty() {
            config.set("ssl.ca.location", &ssl.ca_file);
        }
        if !ssl.cert_file.is_empty() {
            config
                .set("ssl.certificate.location", &ssl.cert_file)
                .set("ssl.key.location", &ssl.key_file);
        }
        if let Some(password) = &secrets.ssl_key_password {
            config.set("ssl.key.password", password.expose_secret());
        }
        config.set(
            "ssl.endpoint.identification.algorithm",
            if ssl.verify_hostname { "https" } else { "none" },
        );
    }
    for (key, value) in properties {
        config.set(property_name(key), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn scram() -> SaslSettings {
        SaslSettings {
            mechanism: Some(SaslMechanism::ScramSha512),
            username: "svc".into(),
            password: SecretRef {
                env: "KAFKA_PASSWORD".into(),
                file: String::new(),
            },
            ..SaslSettings::default()
        }
    }

    #[test]
    fn properties_pass_through_unless_reserved_typed_or_secret() {
        let ok = props(&[("socket_keepalive_enable", "true"), ("linger_ms", "20")]);
        let none = SslSettings::default();
        let plain = SecurityProtocol::Plaintext;
        let sasl = SaslSettings::default();
        assert!(validate(plain, &sasl, &none, &ok).is_ok());
        for (key, needle) in [
            ("enable_idempotence", "set by the services"),
            ("isolation_level", "set by the services"),
            ("security_protocol", "kafka.security_protocol"),
            ("ssl_ca_location", "kafka.ssl.ca_file"),
            ("sasl_password", "holds a secret"),
            ("no_such_property", "kafka.properties.no_such_property"),
        ] {
            let e = validate(plain, &sasl, &none, &props(&[(key, "x")])).expect_err(key);
            assert!(e.0.contains(needle), "{key}: {e}");
            assert!(e.0.contains(&format!("kafka.properties.{key}")), "{e}");
        }
        // A value librdkafka refuses.
        let e = validate(plain, &sasl, &none, &props(&[("linger_ms", "soon")])).expect_err("bad");
        assert!(e.0.contains("kafka.properties.linger_ms"), "{e}");
    }

    #[test]
    fn sasl_and_tls_settings_are_checked_with_the_key_named() {
        let none = BTreeMap::new();
        let ssl = SslSettings::default();
        let e = validate(
            SecurityProtocol::SaslSsl,
            &SaslSettings::default(),
            &ssl,
            &none,
        )
        .expect_err("no mechanism");
        assert!(e.0.contains("kafka.sasl.mechanism"), "{e}");
        let nameless = SaslSettings {
            username: String::new(),
            ..scram()
        };
        let e = validate(SecurityProtocol::SaslSsl, &nameless, &ssl, &none).expect_err("user");
        assert!(e.0.contains("kafka.sasl.username"), "{e}");
        let e = validate(SecurityProtocol::Plaintext, &scram(), &ssl, &none).expect_err("proto");
        assert!(e.0.contains("kafka.security_protocol is plaintext"), "{e}");
        let half = SslSettings {
            cert_file: "/etc/cert.pem".into(),
            ..SslSettings::default()
        };
        let e = validate(
            SecurityProtocol::Ssl,
            &SaslSettings::default(),
            &half,
            &none,
        )
        .expect_err("half mTLS");
        assert!(e.0.contains("kafka.ssl.key_file"), "{e}");
        let missing = SslSettings {
            ca_file: "/nonexistent/ca.pem".into(),
            ..SslSettings::default()
        };
        let e = validate(
            SecurityProtocol::Ssl,
            &SaslSettings::default(),
            &missing,
            &none,
        )
        .expect_err("missing CA");
        assert!(
            e.0.contains("kafka.ssl.ca_file: cannot read /nonexistent/ca.pem"),
            "{e}"
        );
        let oauth = SaslSettings {
            mechanism: Some(SaslMechanism::OauthBearer),
            ..SaslSettings::default()
        };
        let e = validate(SecurityProtocol::SaslSsl, &oauth, &ssl, &none).expect_err("oidc");
        assert!(
            e.0.contains("kafka.sasl.oauthbearer.token_endpoint_url"),
            "{e}"
        );
    }

    #[test]
    fn secrets_reach_the_client_config_and_nothing_prints_them() {
        let vars = HashMap::from([("KAFKA_PASSWORD".to_string(), "hunter2-secret".to_string())]);
        let ssl = SslSettings::default();
        let secrets = resolve_secrets(SecurityProtocol::SaslSsl, &scram(), &ssl, &vars)
            .expect("the variable is set");
        assert!(!format!("{secrets:?}").contains("hunter2-secret"));
        let mut config = ClientConfig::new();
        let none = BTreeMap::new();
        apply(
            &mut config,
            SecurityProtocol::SaslSsl,
            &scram(),
            &ssl,
            &secrets,
            &none,
        );
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.username"), Some("svc"));
        assert_eq!(config.get("sasl.password"), Some("hunter2-secret"));
        assert_eq!(
            config.get("ssl.endpoint.identification.algorithm"),
            Some("https")
        );
        let missing = resolve_secrets(SecurityProtocol::SaslSsl, &scram(), &ssl, &HashMap::new())
            .expect_err("unset");
        assert!(missing.0.contains("kafka.sasl.password"), "{missing}");
        assert!(missing.0.contains("KAFKA_PASSWORD"), "{missing}");
    }
}
