//! [`KafkaBroker`]: one Kafka 4 node (broker and controller in one JVM, KRaft mode).

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;
use tempfile::TempDir;

use crate::jars;
use crate::security::{BrokerSecurity, ScramUser, Security, TlsFiles};
use crate::spawn::{spawn_killed_on_parent_exit, terminate};

/// Env var naming an already running broker (`host:port[,host:port...]`) that
/// [`KafkaBroker::shared`] should use instead of starting one.
pub const BOOTSTRAP_ENV: &str = "TRENDS_TEST_BOOTSTRAP_SERVERS";

/// Prefix of every broker's (and cluster's) temp dir, under [`std::env::temp_dir`].
pub(crate) const DIR_PREFIX: &str = "test-kafka-";
/// How long a broker may take to answer metadata requests after being launched.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a broker may take to shut down cleanly on SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at starting, each on fresh ports, in case another process grabbed a port we
/// picked between our probe and the broker's bind.
pub(crate) const START_ATTEMPTS: usize = 3;
/// Heap flags of a single test broker's JVM.
const SINGLE_NODE_HEAP: [&str; 2] = ["-Xms256m", "-Xmx512m"];

/// A Kafka broker for tests: a real Apache Kafka process listening on `127.0.0.1`, or an
/// external broker named by `TRENDS_TEST_BOOTSTRAP_SERVERS` (see [`KafkaBroker::shared`]).
///
/// Dropping a broker this crate started kills its process and deletes its data.
#[derive(Debug)]
pub struct KafkaBroker {
    bootstrap_servers: String,
    /// `None` for an external broker.
    process: Option<BrokerProcess>,
    /// `None` for a PLAINTEXT broker.
    security: Option<BrokerSecurity>,
}

/// The files and process of one Kafka node this crate started (a [`KafkaBroker`], or one
/// node of a [`crate::KafkaCluster`]).
#[derive(Debug)]
pub(crate) struct BrokerProcess {
    /// `server.properties`, `log4j2.properties`, `broker.log`, `data/` (and `tls/`).
    dir: PathBuf,
    /// The temp dir that `dir` is, deleted on drop; `None` for a cluster node, whose dir lives
    /// in the cluster's temp dir.
    _owned_dir: Option<TempDir>,
    /// `None` while stopped.
    child: Option<Child>,
    /// The JVM's `-Xms…` and `-Xmx…` flags.
    heap: [&'static str; 2],
}

impl KafkaBroker {
    /// The broker shared by every test in this test binary, started on first call (a few
    /// seconds) and killed when the process exits.
    ///
    /// If `TRENDS_TEST_BOOTSTRAP_SERVERS` is set (e.g. `127.0.0.1:9092` for a broker from
    /// `docker compose up`), no process is started and that broker is used instead.
    ///
    /// Tests sharing a broker must not step on each other: give every topic and consumer
    /// group a fresh name with [`crate::unique_name`]. A test that needs to restart the broker
    /// uses its own from [`KafkaBroker::start`] instead.
    ///
    /// # Panics
    ///
    /// If the broker cannot be started (the error, with the broker's log, is in the message).
    /// Every later call panics with the same message instead of retrying.
    pub fn shared() -> &'static KafkaBroker {
        static SHARED: OnceLock<Result<KafkaBroker, String>> = OnceLock::new();
        let shared = SHARED.get_or_init(|| match std::env::var(BOOTSTRAP_ENV) {
            Ok(servers) if !servers.trim().is_empty() => Ok(KafkaBroker {
                bootstrap_servers: servers.trim().to_owned(),
                process: None,
                security: None,
            }),
            _ => KafkaBroker::start().map_err(|e| format!("{e:#}")),
        });
        match shared {
            Ok(broker) => broker,
            Err(e) => panic!("cannot start the shared Kafka broker: {e}"),
        }
    }

    /// Starts a private broker, owned by the caller, and waits until it serves metadata.
    ///
    /// Always starts a new process (it ignores `TRENDS_TEST_BOOTSTRAP_SERVERS`). Takes a few
    /// seconds, plus a one-time Maven download of the jars on a fresh machine. Needs `java`
    /// (17+) on `PATH` or in `JAVA_HOME`.
    pub fn start() -> anyhow::Result<KafkaBroker> {
        KafkaBroker::start_with(None)
    }

    /// Starts a private broker whose only client listener is secured as `security` says,
    /// and waits until it serves metadata over that listener.
    ///
    /// A fresh CA, broker certificate (SANs `127.0.0.1` and `localhost`) and client
    /// certificate are generated for it in this process and written as PEM into its temp
    /// dir ([`KafkaBroker::tls`]); SCRAM users are created when its storage is formatted, so
    /// they exist before it first starts. Connect with [`KafkaBroker::client_config`] (as the
    /// broker's admin user or with the client certificate) or
    /// [`KafkaBroker::client_config_as`] (as one of your users, or with a wrong password).
    ///
    /// The listener is also the inter-broker listener (the broker authenticates as
    /// [`crate::ADMIN_USER`] over SASL_SSL, or with its own certificate over mTLS); only the
    /// KRaft controller listener is PLAINTEXT, on loopback and never advertised to clients.
    pub fn start_secured(security: Security) -> anyhow::Result<KafkaBroker> {
        KafkaBroker::start_with(Some(security))
    }

    fn start_with(security: Option<Security>) -> anyhow::Result<KafkaBroker> {
        remove_stale_dirs();
        let jars = jars::jars_dir()?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix(DIR_PREFIX)
                .tempdir_in(std::env::temp_dir())
                .context("cannot create the broker's temp dir")?;
            fs::write(dir.path().join("owner.pid"), std::process::id().to_string())?;
            let secured = security
                .clone()
                .map(|kind| BrokerSecurity::create(kind, dir.path()))
                .transpose()?;
            let (port, controller_port) = free_ports()?;
            let bootstrap_servers = format!("127.0.0.1:{port}");
            let node = NodeConfig {
                node_id: 1,
                port,
                controller_port,
                voters: format!("1@127.0.0.1:{controller_port}"),
                security: secured.as_ref(),
                replication: SINGLE_NODE_REPLICATION,
            };
            node.write(dir.path())?;
            let format_args = secured
                .as_ref()
                .map(BrokerSecurity::format_args)
                .unwrap_or_default();
            format_storage(dir.path(), jars, &cluster_id(), &format_args)?;
            let mut broker = KafkaBroker {
                bootstrap_servers,
                process: Some(BrokerProcess::new(
                    dir.path().to_owned(),
                    Some(dir),
                    SINGLE_NODE_HEAP,
                )),
                security: secured,
            };
            match broker.launch(jars) {
                Ok(()) => return Ok(broker),
                // The JVM exited early, most likely because another process took one of
                // the ports between `free_ports` and the broker's bind: try fresh ports.
                Err(e) if broker.process.as_ref().is_some_and(|p| p.child.is_none()) => {
                    last_error = Some(e);
                }
                // Still running but not ready in time: retrying would not help.
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
    }

    /// Starts the JVM and waits until the broker answers a metadata request (over its
    /// secured listener, if any) that lists it.
    fn launch(&mut self, jars: &Path) -> anyhow::Result<()> {
        let probe = probe_config(self.client_config());
        let Some(process) = self.process.as_mut() else {
            bail!("cannot launch an external broker ({BOOTSTRAP_ENV})");
        };
        process.spawn(jars)?;
        wait_ready(
            &mut [process],
            &probe,
            &self.bootstrap_servers,
            |metadata| metadata.brokers().len() == 1,
        )
    }

    /// The address to put in a client's `bootstrap.servers`, e.g. `127.0.0.1:39121`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The CA, client certificate and client key of a broker from
    /// [`KafkaBroker::start_secured`]; `None` for a PLAINTEXT broker.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.security.as_ref().map(|s| &s.tls)
    }

    /// The SCRAM users given to [`Security::SaslSsl`] (not the broker's own
    /// [`crate::ADMIN_USER`]); empty for other brokers.
    pub fn scram_users(&self) -> &[ScramUser] {
        self.security.as_ref().map_or(&[], |s| s.users())
    }

    /// The broker's own SCRAM user ([`crate::ADMIN_USER`], random password) for a SASL_SSL
    /// broker; `None` otherwise.
    pub fn admin_user(&self) -> Option<&ScramUser> {
        self.security.as_ref().and_then(|s| s.admin.as_ref())
    }

    /// The client's `security.protocol` for this broker: `PLAINTEXT`, `SASL_SSL` or `SSL`.
    pub fn security_protocol(&self) -> &'static str {
        self.security
            .as_ref()
            .map_or("PLAINTEXT", BrokerSecurity::protocol)
    }

    /// A client config that connects: `bootstrap.servers` plus, for a secured broker,
    /// `security.protocol`, `ssl.ca.location` and either SASL as the admin user or the client
    /// certificate and key. Add the client's own settings (`group.id`, …) and create it.
    pub fn client_config(&self) -> ClientConfig {
        match &self.security {
            Some(security) => security.client_config(&self.bootstrap_servers, None),
            None => {
                let mut config = ClientConfig::new();
                config.set("bootstrap.servers", &self.bootstrap_servers);
                config
            }
        }
    }

    /// Like [`KafkaBroker::client_config`] for a SASL_SSL broker, authenticating as `user`
    /// instead of the admin: one of [`KafkaBroker::scram_users`], or a name or password the
    /// broker does not know (the client then fails with
    /// `RDKafkaErrorCode::Authentication`). For other brokers the same as `client_config`.
    pub fn client_config_as(&self, user: &ScramUser) -> ClientConfig {
        match &self.security {
            Some(security) => security.client_config(&self.bootstrap_servers, Some(user)),
            None => self.client_config(),
        }
    }

    /// Stops the broker cleanly (SIGTERM, then SIGKILL if it has not exited after 30 s) and
    /// starts it again on the same port with the same data, waiting until it is ready.
    ///
    /// Records written before the restart are still there (the broker flushes its logs on a
    /// clean shutdown). Clients created before it reconnect on their own, but librdkafka backs
    /// off up to `reconnect.backoff.max.ms` (10 s by default) between attempts; lower that in
    /// a test that waits for a reconnect.
    ///
    /// Fails for an external broker (one from `TRENDS_TEST_BOOTSTRAP_SERVERS`).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        let Some(process) = self.process.as_mut() else {
            bail!("cannot restart an external broker ({BOOTSTRAP_ENV})");
        };
        process.stop()?;
        self.launch(jars::jars_dir()?)
    }
}

/// Dropping a [`KafkaBroker`] drops its process: kill the JVM, then delete its dir (the
/// `_owned_dir` field, dropped after this runs).
impl Drop for BrokerProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // No clean shutdown: the data is deleted right after, and SIGKILL is instant.
            let _ = child.kill();
            let _ = child.wait();
        }
        // Then the `dir` field drops, deleting the config, log and data.
    }
}

impl BrokerProcess {
    pub(crate) fn new(dir: PathBuf, owned_dir: Option<TempDir>, heap: [&'static str; 2]) -> Self {
        BrokerProcess {
            dir,
            _owned_dir: owned_dir,
            child: None,
            heap,
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    /// The node's dir (`server.properties`, `broker.log`, `data/`).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether no JVM is held (never launched, exited during startup, stopped or killed).
    pub(crate) fn child_is_gone(&self) -> bool {
        self.child.is_none()
    }

    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("broker.log")
    }

    /// Whether the JVM is running (launched, and not exited, stopped or killed since).
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Starts the JVM (`kafka.Kafka server.properties`) without waiting for it.
    pub(crate) fn spawn(&mut self, jars: &Path) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log())
            .context("cannot open broker.log")?;
        let mut cmd = java(jars, &self.dir);
        cmd.args(self.heap)
            .arg("kafka.Kafka")
            .arg(self.config())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = spawn_killed_on_parent_exit(cmd).context("cannot run java")?;
        self.child = Some(child);
        Ok(())
    }

    /// Fails, with the end of `broker.log`, if the JVM has exited (and forgets the child).
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().transpose()) {
            let status = status?;
            self.child = None;
            bail!(
                "the Kafka broker in {} exited during startup ({status}); broker.log ends \
                 with:\n{}",
                self.dir.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    /// SIGKILL, no clean shutdown (`kill -9`): the broker gets no chance to flush its logs,
    /// close its sessions or hand over leadership.
    pub(crate) fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            // On error the child stays in `self.child`, so that dropping `self` still kills it.
            child.kill().context("cannot SIGKILL the broker")?;
            child.wait()?;
            self.child = None;
        }
        Ok(())
    }

    /// SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL. On error the child stays in
    /// `self.child`, so that dropping `self` still kills it.
    pub(crate) fn stop(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        if child.try_wait()?.is_none() {
            terminate(child).context("cannot send SIGTERM to the broker")?;
            let deadline = Instant::now() + STOP_TIMEOUT;
            while child.try_wait()?.is_none() {
                if Instant::now() >= deadline {
                    child.kill()?;
                    child.wait()?;
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
        self.child = None;
        Ok(())
    }

    /// The last lines of `broker.log`, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        log_tail(&self.log(), 40).unwrap_or_else(|e| format!("(cannot read broker.log: {e})"))
    }
}

/// A `java` command with the broker's classpath and logging config.
pub(crate) fn java(jars: &Path, dir: &Path) -> Command {
    let java = std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin/java"))
        .filter(|java| java.is_file())
        .unwrap_or_else(|| PathBuf::from("java"));
    let mut cmd = Command::new(java);
    cmd.current_dir(dir)
        .env_remove("KAFKA_OPTS")
        .env_remove("JAVA_TOOL_OPTIONS")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            dir.join("log4j2.properties").display()
        ))
        // A small single-node broker does not need a parallel collector on a 2-core machine.
        .args(["-XX:+UseSerialGC", "-Djava.awt.headless=true", "-cp"])
        // Java expands `dir/*` to every jar in `dir` itself; no shell is involved.
        .arg(jars.join("*"));
    cmd
}

/// A readiness probe's config: `config` retrying connection refusals every 100 ms instead of
/// backing off to seconds.
pub(crate) fn probe_config(mut config: ClientConfig) -> ClientConfig {
    config
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "100");
    config
}

/// Polls with metadata requests (a client made from `probe`) until `ready` accepts the
/// answer, one of `processes` exits, or [`READY_TIMEOUT`] passes. An exited process is
/// forgotten (`child` = `None`), so that the caller can tell "died" from "too slow".
pub(crate) fn wait_ready(
    processes: &mut [&mut BrokerProcess],
    probe: &ClientConfig,
    bootstrap_servers: &str,
    mut ready: impl FnMut(&Metadata) -> bool,
) -> anyhow::Result<()> {
    let probe: BaseConsumer = probe
        .create()
        .context("cannot create the readiness probe client")?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        for process in processes.iter_mut() {
            process.check_alive()?;
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            let tails: Vec<String> = processes
                .iter()
                .map(|p| {
                    format!(
                        "{}/broker.log ends with:\n{}",
                        p.dir.display(),
                        p.log_tail()
                    )
                })
                .collect();
            bail!(
                "Kafka at {bootstrap_servers} was not ready after {}s; {}",
                READY_TIMEOUT.as_secs(),
                tails.join("\n")
            );
        }
        let timeout = remaining.min(Duration::from_secs(1));
        match probe.fetch_metadata(None, timeout) {
            Ok(metadata) if ready(&metadata) => return Ok(()),
            _ => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Formats `dir/data/` for cluster `cluster_id` (`kafka-storage format`), with `extra_args`
/// (e.g. `--add-scram …`). Returns the running formatter; [`finish_format`] waits for it.
/// Several nodes of a cluster are formatted at once this way, saving JVM starts.
pub(crate) fn start_format(
    dir: &Path,
    jars: &Path,
    cluster_id: &str,
    extra_args: &[String],
) -> anyhow::Result<Child> {
    let mut cmd = java(jars, dir);
    cmd.args(["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c"])
        .arg(dir.join("server.properties"))
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn_killed_on_parent_exit(cmd).context("cannot run java (is a JDK 17+ installed?)")
}

/// Waits for a formatter from [`start_format`] and fails with its output if it failed.
pub(crate) fn finish_format(formatter: Child) -> anyhow::Result<()> {
    let output = formatter.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "formatting the broker's storage failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn format_storage(
    dir: &Path,
    jars: &Path,
    cluster_id: &str,
    extra_args: &[String],
) -> anyhow::Result<()> {
    finish_format(start_format(dir, jars, cluster_id, extra_args)?)
}

/// What differs between the nodes' `server.properties`.
pub(crate) struct NodeConfig<'a> {
    pub(crate) node_id: i32,
    /// The client (and inter-broker) listener's port.
    pub(crate) port: u16,
    pub(crate) controller_port: u16,
    /// `controller.quorum.voters`: `id@127.0.0.1:port` of every controller.
    pub(crate) voters: String,
    /// `None`: one PLAINTEXT listener.
    pub(crate) security: Option<&'a BrokerSecurity>,
    /// Replication factors and min ISR ([`SINGLE_NODE_REPLICATION`] or a cluster's).
    pub(crate) replication: &'a str,
}

impl NodeConfig<'_> {
    /// Writes `server.properties` and `log4j2.properties` into `dir`.
    pub(crate) fn write(&self, dir: &Path) -> io::Result<()> {
        let (port, controller_port) = (self.port, self.controller_port);
        let listeners = match self.security {
            Some(security) => security.listener_config(port, controller_port),
            None => format!(
                "\
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
"
            ),
        };
        let config = format!(
            "\
# A node acting as both broker and controller (KRaft), on loopback only.
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={voters}
{listeners}log.dirs={data}
{replication}{SERVER_DEFAULTS}",
            node_id = self.node_id,
            voters = self.voters,
            data = dir.join("data").display(),
            replication = self.replication,
        );
        fs::write(dir.join("server.properties"), config)?;
        fs::write(dir.join("log4j2.properties"), LOG4J2_CONFIG)
    }
}

/// Replication settings of a single node.
const SINGLE_NODE_REPLICATION: &str = "\
# A single node cannot replicate internal topics; few partitions make them quick to create.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
";

/// The part of `server.properties` that does not depend on ports, paths and node count.
const SERVER_DEFAULTS: &str = "\
# Tests create their topics explicitly, as production does.
auto.create.topics.enable=false
num.partitions=1
# Consumer groups start at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
# Abort transactions that outlived their timeout within a second, not the default ten: the
# product's timeouts are then enforced as configured, and a test that relies on one (a
# restore longer than the transaction timeout) sees it enforced.
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
# No deletion by age: tests write records stamped with fixed dates (CreateTime), which the
# default 7-day retention would delete once those dates are a week old, mid-test, making a
# test's outcome depend on the day it runs.
log.retention.ms=-1
# Keep the JVM small on a 2-core machine.
num.network.threads=2
num.io.threads=2
background.threads=2
log.cleaner.dedupe.buffer.size=16777216
";

/// Broker logging: warnings and errors, plus the "Kafka Server started" line, to stdout
/// (which goes to `broker.log`).
const LOG4J2_CONFIG: &str = "\
status = warn
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
";

/// Two distinct free loopback ports (broker, controller).
fn free_ports() -> io::Result<(u16, u16)> {
    let ports = free_port_list(2)?;
    Ok((ports[0], ports[1]))
}

/// `n` distinct free loopback ports: bind port 0 `n` times (all held at once, so the kernel
/// hands out distinct ones), read, release.
pub(crate) fn free_port_list(n: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// A random Kafka cluster id: 16 random bytes in URL-safe base64 without padding, as
/// `kafka-storage random-uuid` prints (generated here to save a JVM start).
pub(crate) fn cluster_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(i);
        hasher.write_u128(crate::now_nanos());
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = u128::from_be_bytes(bytes);
    // 22 characters of 6 bits = 132 bits: the 128 bits followed by 4 zero bits.
    (0..22)
        .map(|i| {
            let shift = 128 + 4 - 6 * (i + 1);
            let index = ((bits << 4) >> shift) & 0x3f;
            char::from(ALPHABET[index as usize])
        })
        .collect()
}

/// Deletes the temp dirs of brokers whose test process is gone (it was killed, or the broker
/// was a static that is never dropped). Each dir names its owner in `owner.pid`.
pub(crate) fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let path = entry.path();
        let Ok(pid) = fs::read_to_string(path.join("owner.pid")) else {
            continue; // Not ours, or still being set up.
        };
        let alive = Path::new("/proc").join(pid.trim()).exists();
        if !alive {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// The last `lines` lines of the file at `path`.
fn log_tail(path: &Path, lines: usize) -> io::Result<String> {
    const MAX_BYTES: u64 = 64 * 1024;
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)))?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    Ok(all[all.len().saturating_sub(lines)..].join("\n"))
}
