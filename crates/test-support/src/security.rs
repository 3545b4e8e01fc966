//! Secured test brokers: what a [`Security`] choice means for the broker's config, its storage
//! format, the certificates, and the clients.
//!
//! Everything secret is made here, in the test process, for one broker: a fresh CA, a broker
//! certificate and a client certificate (by `rcgen`, pure Rust, so no `openssl` or `keytool`
//! binary is needed), and a random password for the broker's own SCRAM user. Nothing is shared
//! between brokers or test runs, so a test can never pass because of a certificate or password
//! left over from another one.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rdkafka::ClientConfig;

/// The SASL mechanism of every SASL_SSL test broker.
pub const SCRAM_MECHANISM: &str = "SCRAM-SHA-512";

/// The name of the SCRAM user the broker itself uses between brokers (inter-broker listener)
/// and that [`crate::KafkaBroker::client_config`] uses for the harness's probe and tests' admin
/// clients. Its password is random per broker.
pub const ADMIN_USER: &str = "admin";

/// How a secured test broker authenticates clients (see [`crate::KafkaBroker::start_secured`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// One `SASL_SSL` listener: TLS with the test CA's broker certificate, then SASL
    /// `SCRAM-SHA-512` with these users (created at format time, before the broker first
    /// starts, as `kafka-storage format --add-scram` does), plus the broker's own
    /// [`ADMIN_USER`]. Clients need the CA (`ssl.ca.location`) and a user; no client
    /// certificate is asked for.
    SaslSsl {
        /// The users a test can connect as, besides [`ADMIN_USER`].
        users: Vec<ScramUser>,
    },
    /// One `SSL` listener with `ssl.client.auth=required`: a client must present a
    /// certificate signed by the test CA ([`TlsFiles::client_cert_pem`]), or the TLS handshake
    /// fails. Kafka names such a client `User:CN=trends-test-client`.
    MutualTls,
}

/// A SCRAM user (name and password) of a [`Security::SaslSsl`] broker.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramUser {
    /// The user name, `sasl.username` in a client.
    pub name: String,
    /// The password, `sasl.password` in a client.
    pub password: String,
}

impl ScramUser {
    /// A user with this name and password. Both must be made of ASCII letters, digits, `-`
    /// and `_` (checked by [`crate::KafkaBroker::start_secured`]): `kafka-storage format
    /// --add-scram` parses `name=…,password=…` and would misread `,`, `=` or `]`.
    pub fn new(name: impl Into<String>, password: impl Into<String>) -> ScramUser {
        ScramUser {
            name: name.into(),
            password: password.into(),
        }
    }
}

/// The password stays out of `Debug` output, as it would in the product.
impl std::fmt::Debug for ScramUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramUser")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// PEM files a client of a secured test broker needs, in the broker's temp dir (deleted with
/// the broker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The test CA's certificate: `ssl.ca.location` of a client. It signed the broker's
    /// certificate (SANs `127.0.0.1` and `localhost`) and the client's.
    pub ca_pem: PathBuf,
    /// A client certificate signed by the CA (CN `trends-test-client`): `ssl.certificate.location`.
    /// Required by a [`Security::MutualTls`] broker, ignored by a SASL_SSL one.
    pub client_cert_pem: PathBuf,
    /// The client certificate's private key (PKCS#8, unencrypted): `ssl.key.location`.
    pub client_key_pem: PathBuf,
}

/// The security of one broker this crate started: what the config, the format step and the
/// clients need.
#[derive(Debug, Clone)]
pub(crate) struct BrokerSecurity {
    pub(crate) kind: Security,
    pub(crate) tls: TlsFiles,
    /// The broker's key followed by its certificate chain, the broker's PEM keystore.
    keystore: PathBuf,
    /// The broker's own user (SASL_SSL only).
    pub(crate) admin: Option<ScramUser>,
}

impl BrokerSecurity {
    /// Generates the CA and certificates into `dir/tls/` and, for SASL_SSL, the admin user.
    pub(crate) fn create(kind: Security, dir: &Path) -> anyhow::Result<BrokerSecurity> {
        let admin = match &kind {
            Security::SaslSsl { users } => {
                for user in users {
                    check_scram_token("user name", &user.name)?;
                    check_scram_token("password", &user.password)?;
                    ensure!(
                        user.name != ADMIN_USER,
                        "the SCRAM user name {ADMIN_USER:?} is reserved for the broker itself"
                    );
                }
                Some(ScramUser::new(ADMIN_USER, random_password()))
            }
            Security::MutualTls => None,
        };
        let tls_dir = dir.join("tls");
        fs::create_dir_all(&tls_dir).context("cannot create the broker's tls/ dir")?;
        let (tls, keystore) = write_certificates(&tls_dir)?;
        Ok(BrokerSecurity {
            kind,
            tls,
            keystore,
            admin,
        })
    }

    /// The listener's security protocol, as in `listener.security.protocol.map` and a
    /// client's `security.protocol`.
    pub(crate) fn protocol(&self) -> &'static str {
        match self.kind {
            Security::SaslSsl { .. } => "SASL_SSL",
            Security::MutualTls => "SSL",
        }
    }

    /// The users a test may connect as (not the admin).
    pub(crate) fn users(&self) -> &[ScramUser] {
        match &self.kind {
            Security::SaslSsl { users } => users,
            Security::MutualTls => &[],
        }
    }

    /// `server.properties` lines for one node: a secured client listener on `port` that is
    /// also the inter-broker listener, and a PLAINTEXT controller listener on loopback.
    pub(crate) fn listener_config(&self, port: u16, controller_port: u16) -> String {
        let protocol = self.protocol();
        let mut config = format!(
            "\
listeners={protocol}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners={protocol}://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name={protocol}
listener.security.protocol.map={protocol}:{protocol},CONTROLLER:PLAINTEXT
# PEM key store and trust store (KIP-651): no keytool, no JKS passwords.
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={ca}
",
            keystore = self.keystore.display(),
            ca = self.tls.ca_pem.display(),
        );
        match (&self.kind, &self.admin) {
            (Security::SaslSsl { .. }, Some(admin)) => {
                // The broker authenticates to itself (inter-broker) as the admin user; the same
                // JAAS entry serves the listener's server side, which needs no credentials.
                let _ = write!(
                    config,
                    "\
sasl.enabled.mechanisms={SCRAM_MECHANISM}
sasl.mechanism.inter.broker.protocol={SCRAM_MECHANISM}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
org.apache.kafka.common.security.scram.ScramLoginModule required \
username=\"{name}\" password=\"{password}\";
",
                    name = admin.name,
                    password = admin.password,
                );
            }
            _ => config.push_str("ssl.client.auth=required\n"),
        }
        config
    }

    /// `kafka-storage format` arguments creating every SCRAM user (none for mTLS).
    pub(crate) fn format_args(&self) -> Vec<String> {
        self.admin
            .iter()
            .chain(self.users())
            .flat_map(|user| {
                [
                    "--add-scram".to_owned(),
                    format!(
                        "{SCRAM_MECHANISM}=[name={},password={}]",
                        user.name, user.password
                    ),
                ]
            })
            .collect()
    }

    /// A client config for `bootstrap_servers` authenticating as `user` (SASL_SSL) or with
    /// the test client certificate (mTLS).
    pub(crate) fn client_config(
        &self,
        bootstrap_servers: &str,
        user: Option<&ScramUser>,
    ) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap_servers)
            .set("security.protocol", self.protocol())
            .set("ssl.ca.location", path_str(&self.tls.ca_pem));
        match &self.kind {
            Security::SaslSsl { .. } => {
                if let Some(user) = user.or(self.admin.as_ref()) {
                    config
                        .set("sasl.mechanism", SCRAM_MECHANISM)
                        .set("sasl.username", &user.name)
                        .set("sasl.password", &user.password);
                }
            }
            Security::MutualTls => {
                config
                    .set(
                        "ssl.certificate.location",
                        path_str(&self.tls.client_cert_pem),
                    )
                    .set("ssl.key.location", path_str(&self.tls.client_key_pem));
            }
        }
        config
    }
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

/// Rejects what `--add-scram 'SCRAM-SHA-512=[name=…,password=…]'` cannot carry unquoted.
fn check_scram_token(what: &str, value: &str) -> anyhow::Result<()> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!(
            "SCRAM {what} {value:?} must be non-empty ASCII letters, digits, '-' or '_' \
             (kafka-storage format --add-scram parses it)"
        );
    }
    Ok(())
}

/// 32 hex digits from the process's random hasher seeds and the clock.
fn random_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    (0..2)
        .map(|i| {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_usize(i);
            hasher.write_u128(crate::now_nanos());
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

/// Writes `ca.pem`, `client.pem`, `client.key` and the broker's keystore `broker.pem` (key,
/// certificate, CA) into `dir`.
fn write_certificates(dir: &Path) -> anyhow::Result<(TlsFiles, PathBuf)> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hashtag-trends test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)
        .context("cannot generate the test CA")?;

    // The broker's certificate also serves as a client certificate: the broker connects to
    // itself (and, in a cluster, to its peers) over the inter-broker listener, which for mTLS
    // requires one.
    let broker_key = KeyPair::generate()?;
    let mut broker_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    broker_params
        .distinguished_name
        .push(DnType::CommonName, "kafka-broker");
    broker_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    broker_params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    broker_params.use_authority_key_identifier_extension = true;
    let broker_cert = broker_params
        .signed_by(&broker_key, &ca)
        .context("cannot sign the broker certificate")?;

    let client_key = KeyPair::generate()?;
    let mut client_params = CertificateParams::new(Vec::<String>::new())?;
    client_params
        .distinguished_name
        .push(DnType::CommonName, "trends-test-client");
    client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client_params.use_authority_key_identifier_extension = true;
    let client_cert = client_params
        .signed_by(&client_key, &ca)
        .context("cannot sign the client certificate")?;

    let files = TlsFiles {
        ca_pem: dir.join("ca.pem"),
        client_cert_pem: dir.join("client.pem"),
        client_key_pem: dir.join("client.key"),
    };
    let keystore = dir.join("broker.pem");
    fs::write(&files.ca_pem, ca.pem())?;
    fs::write(&files.client_cert_pem, client_cert.pem())?;
    fs::write(&files.client_key_pem, client_key.serialize_pem())?;
    // KIP-651's PEM key store: the unencrypted PKCS#8 key, then the chain, leaf first.
    fs::write(
        &keystore,
        format!(
            "{}{}{}",
            broker_key.serialize_pem(),
            broker_cert.pem(),
            ca.pem()
        ),
    )?;
    Ok((files, keystore))
}
