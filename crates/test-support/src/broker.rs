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
use tempfile::TempDir;

use crate::jars;
use crate::spawn::{spawn_killed_on_parent_exit, terminate};

/// Env var naming an already running broker (`host:port[,host:port...]`) that
/// [`KafkaBroker::shared`] should use instead of starting one.
pub const BOOTSTRAP_ENV: &str = "TRENDS_TEST_BOOTSTRAP_SERVERS";

/// Prefix of every broker's temp dir, under [`std::env::temp_dir`].
const DIR_PREFIX: &str = "test-kafka-";
/// How long a broker may take to answer metadata requests after being launched.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a broker may take to shut down cleanly on SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at starting, each on fresh ports, in case another process grabbed a port we
/// picked between our probe and the broker's bind.
const START_ATTEMPTS: usize = 3;

/// A Kafka broker for tests: a real Apache Kafka process listening on `127.0.0.1`, or an
/// external broker named by `TRENDS_TEST_BOOTSTRAP_SERVERS` (see [`KafkaBroker::shared`]).
///
/// Dropping a broker this crate started kills its process and deletes its data.
#[derive(Debug)]
pub struct KafkaBroker {
    bootstrap_servers: String,
    /// `None` for an external broker.
    process: Option<BrokerProcess>,
}

/// The files and process of a broker this crate started.
#[derive(Debug)]
struct BrokerProcess {
    /// `server.properties`, `log4j2.properties`, `broker.log` and `data/`. Deleted on drop.
    dir: TempDir,
    /// `None` only while restarting.
    child: Option<Child>,
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
        remove_stale_dirs();
        let jars = jars::jars_dir()?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::Builder::new()
                .prefix(DIR_PREFIX)
                .tempdir_in(std::env::temp_dir())
                .context("cannot create the broker's temp dir")?;
            fs::write(dir.path().join("owner.pid"), std::process::id().to_string())?;
            let (port, controller_port) = free_ports()?;
            let bootstrap_servers = format!("127.0.0.1:{port}");
            write_config(dir.path(), port, controller_port)?;
            format_storage(dir.path(), jars)?;
            let mut process = BrokerProcess { dir, child: None };
            match process.launch(jars, &bootstrap_servers) {
                Ok(()) => {
                    return Ok(KafkaBroker {
                        bootstrap_servers,
                        process: Some(process),
                    });
                }
                // The JVM exited early, most likely because another process took one of
                // the ports between `free_ports` and the broker's bind: try fresh ports.
                Err(e) if process.child.is_none() => last_error = Some(e),
                // Still running but not ready in time: retrying would not help.
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
    }

    /// The address to put in a client's `bootstrap.servers`, e.g. `127.0.0.1:39121`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
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
        process.launch(jars::jars_dir()?, &self.bootstrap_servers)
    }
}

/// Dropping a [`KafkaBroker`] drops its process: kill the JVM, then delete its dir.
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
    fn config(&self) -> PathBuf {
        self.dir.path().join("server.properties")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("broker.log")
    }

    /// Starts the JVM and waits until the broker answers a metadata request.
    fn launch(&mut self, jars: &Path, bootstrap_servers: &str) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log())
            .context("cannot open broker.log")?;
        let mut cmd = java(jars, self.dir.path());
        cmd.args(["-Xms256m", "-Xmx512m", "kafka.Kafka"])
            .arg(self.config())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = spawn_killed_on_parent_exit(cmd).context("cannot run java")?;
        self.child = Some(child);
        self.wait_ready(bootstrap_servers)
    }

    /// Polls the broker with metadata requests until it reports itself, the process exits, or
    /// [`READY_TIMEOUT`] passes.
    fn wait_ready(&mut self, bootstrap_servers: &str) -> anyhow::Result<()> {
        let probe: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap_servers)
            // Retry connection refusals every 100 ms instead of backing off to seconds.
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "100")
            .create()
            .context("cannot create the readiness probe client")?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().transpose()) {
                let status = status?;
                self.child = None;
                bail!(
                    "the Kafka broker exited during startup ({status}); broker.log ends with:\n{}",
                    self.log_tail()
                );
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                bail!(
                    "the Kafka broker at {bootstrap_servers} was not ready after {}s; \
                     broker.log ends with:\n{}",
                    READY_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            let timeout = remaining.min(Duration::from_secs(1));
            match probe.fetch_metadata(None, timeout) {
                Ok(metadata) if metadata.brokers().len() == 1 => return Ok(()),
                _ => thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL. On error the child stays in
    /// `self.child`, so that dropping `self` still kills it.
    fn stop(&mut self) -> anyhow::Result<()> {
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
    fn log_tail(&self) -> String {
        log_tail(&self.log(), 40).unwrap_or_else(|e| format!("(cannot read broker.log: {e})"))
    }
}

/// A `java` command with the broker's classpath and logging config.
fn java(jars: &Path, dir: &Path) -> Command {
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

/// Formats `data/` as a new single-node cluster with a random id (`kafka-storage format`).
fn format_storage(dir: &Path, jars: &Path) -> anyhow::Result<()> {
    let mut cmd = java(jars, dir);
    cmd.args([
        "kafka.tools.StorageTool",
        "format",
        "-t",
        &cluster_id(),
        "-c",
    ])
    .arg(dir.join("server.properties"))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let output = spawn_killed_on_parent_exit(cmd)
        .context("cannot run java (is a JDK 17+ installed?)")?
        .wait_with_output()?;
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

/// Writes `server.properties` and `log4j2.properties` into `dir`.
fn write_config(dir: &Path, port: u16, controller_port: u16) -> io::Result<()> {
    let data = dir.join("data");
    let config = format!(
        "\
# One node acting as both broker and controller (KRaft), on loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
{SERVER_DEFAULTS}",
        data = data.display(),
    );
    fs::write(dir.join("server.properties"), config)?;
    fs::write(dir.join("log4j2.properties"), LOG4J2_CONFIG)
}

/// The part of `server.properties` that does not depend on ports and paths.
const SERVER_DEFAULTS: &str = "\
# A single node cannot replicate internal topics; few partitions make them quick to create.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
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

/// Two distinct free loopback ports (broker, controller): bind port 0, read, release.
fn free_ports() -> io::Result<(u16, u16)> {
    let a = TcpListener::bind("127.0.0.1:0")?;
    let b = TcpListener::bind("127.0.0.1:0")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

/// A random Kafka cluster id: 16 random bytes in URL-safe base64 without padding, as
/// `kafka-storage random-uuid` prints (generated here to save a JVM start).
fn cluster_id() -> String {
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
fn remove_stale_dirs() {
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
