//! Helpers for end-to-end tests: start the product's real binaries as processes against a real
//! broker, talk to them over HTTP, and wait for conditions instead of sleeping.
//!
//! The binaries are taken from the same target directory as the test executable, so build them
//! first (`cargo build --workspace --bins`; `scripts/test.sh` does).

use std::collections::HashMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// Path of one of the workspace's binaries, in the target directory of the running executable:
/// beside it (a benchmark driver, `target/<profile>/<driver>`) or one level up (a test,
/// `target/<profile>/deps/<test>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let candidates = [
        dir.join(name),
        dir.parent().map(|d| d.join(name)).unwrap_or_default(),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(path) => path.clone(),
        None => panic!(
            "{name} is missing beside {}: build the binaries first with `cargo build --workspace --bins` (scripts/test.sh does)",
            exe.display()
        ),
    }
}

/// The topics one test's services share, each name unique to the test.
#[derive(Debug, Clone)]
pub struct Topics {
    pub tweets: String,
    pub counts: String,
    pub dlq: String,
}

impl Topics {
    /// Fresh names, `<prefix>tweets-…`, `<prefix>counts-…`, `<prefix>dlq-…`.
    pub fn unique(prefix: &str) -> Topics {
        Topics {
            tweets: test_support::unique_name(&format!("{prefix}tweets")),
            counts: test_support::unique_name(&format!("{prefix}counts")),
            dlq: test_support::unique_name(&format!("{prefix}dlq")),
        }
    }

    /// The `TRENDS__*` environment that points a service at `bootstrap` and these topics
    /// (created with `partitions` partitions if a service creates them), plus `extra`.
    pub fn env(
        &self,
        bootstrap: &str,
        partitions: i32,
        extra: &[(&str, String)],
    ) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = [
            ("TRENDS__KAFKA__BOOTSTRAP_SERVERS", bootstrap.to_string()),
            ("TRENDS__TOPICS__TWEETS", self.tweets.clone()),
            ("TRENDS__TOPICS__COUNTS", self.counts.clone()),
            ("TRENDS__TOPICS__DLQ", self.dlq.clone()),
            ("TRENDS__TOPICS__PARTITIONS", partitions.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env
    }
}

/// A service started for a test, and where to reach it.
#[derive(Debug)]
pub struct Started {
    pub process: ServiceProcess,
    /// `http://127.0.0.1:<port>`: the API's base URL, or the aggregator's metrics URL
    /// (`…/metrics`).
    pub url: String,
}

impl Topics {
    /// Starts an aggregator of consumer group `group` on these topics, committing every 200 ms,
    /// with its metrics on a free port (`url` is their URL), plus `extra` settings.
    pub fn start_aggregator(
        &self,
        bootstrap: &str,
        partitions: i32,
        group: &str,
        extra: &[(&str, String)],
    ) -> Started {
        let port = free_port();
        let mut settings = vec![
            ("TRENDS__AGGREGATOR__GROUP_ID", group.to_string()),
            ("TRENDS__AGGREGATOR__COMMIT_INTERVAL_MS", "200".to_string()),
            (
                "TRENDS__AGGREGATOR__METRICS_ADDR",
                format!("127.0.0.1:{port}"),
            ),
        ];
        settings.extend(extra.iter().cloned());
        let process = ServiceProcess::start(
            "hashtag-aggregator",
            &self.env(bootstrap, partitions, &settings),
        )
        .expect("start hashtag-aggregator");
        Started {
            process,
            url: format!("http://127.0.0.1:{port}/metrics"),
        }
    }

    /// Starts the API on these topics on a free port (`url` is its base URL).
    pub fn start_api(&self, bootstrap: &str, partitions: i32) -> Started {
        let port = free_port();
        let env = self.env(
            bootstrap,
            partitions,
            &[("TRENDS__HTTP__ADDR", format!("127.0.0.1:{port}"))],
        );
        let process = ServiceProcess::start("trends-api", &env).expect("start trends-api");
        Started {
            process,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A service binary running as a child process; killed when dropped. Its stdout and stderr go
/// to a log file whose tail is printed if the test fails while it runs.
#[derive(Debug)]
pub struct ServiceProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ServiceProcess {
    /// Starts `binary(name)` with exactly these `TRENDS__*` settings (plus the parent's PATH).
    pub fn start(name: &str, env: &HashMap<String, String>) -> anyhow::Result<ServiceProcess> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("e2e-{name}-"))
            .tempdir()?;
        let log = dir.path().join("service.log");
        let out = File::create(&log)?;
        let mut cmd = Command::new(binary(name));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = test_support::spawn_killed_on_parent_exit(cmd)
            .with_context(|| format!("spawn {name}"))?;
        Ok(ServiceProcess {
            name: name.to_string(),
            child: Some(child),
            log,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The service's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<Option<i32>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.code());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                anyhow::bail!(
                    "{} did not exit within {timeout:?} after SIGTERM:\n{}",
                    self.name,
                    tail(&self.log(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends `signal` (a name `kill` understands: `"KILL"`, `"TERM"`, `"STOP"`, `"CONT"`, ...)
    /// and returns at once, without waiting for any effect.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let Some(child) = self.child.as_ref() else {
            anyhow::bail!("{} is not running (already stopped by the test)", self.name);
        };
        let status = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {} failed", child.id());
        Ok(())
    }

    /// `kill -9`: SIGKILL, then reaps the process. Nothing of it runs after this returns; its
    /// log stays readable.
    pub fn kill_9(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if child.try_wait()?.is_none() {
                child.kill()?;
            }
            child.wait()?;
        }
        Ok(())
    }

    /// The exit status once the process has exited (by itself or by a signal), `None` while
    /// it runs or after [`ServiceProcess::terminate`] took it.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits up to `timeout` for the process to exit by itself and returns its status.
    pub async fn wait_exit(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit_status() {
                return Ok(status);
            }
            anyhow::ensure!(
                self.child.is_some(),
                "{} was already stopped by the test",
                self.name
            );
            if Instant::now() > deadline {
                anyhow::bail!(
                    "{} did not exit within {timeout:?}:\n{}",
                    self.name,
                    tail(&self.log(), 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- last lines of {} ----\n{}",
                self.name,
                tail(&self.log(), 60)
            );
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout` with the last
/// observation, so a failure says what was seen instead of what was hoped.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return Ok(value),
            Err(last) if Instant::now() > deadline => {
                anyhow::bail!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// GET a URL and parse JSON; `Err` carries a printable reason.
pub async fn get_json(
    client: &reqwest::Client,
    url: &str,
) -> Result<(u16, serde_json::Value), String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response.json().await.map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// GET a URL and return its body as text; `Err` carries a printable reason.
pub async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    response.text().await.map_err(|e| e.to_string())
}

/// The value of an unlabelled metric in a Prometheus text exposition (`name value` line).
pub fn metric_value(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

/// Milliseconds since the epoch as RFC 3339 with milliseconds (`2026-11-22T10:00:00.000Z`),
/// computed here (civil-from-days, Howard Hinnant) to stay independent of the product's time
/// code, which the tests check.
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A deterministic little PRNG for test data.
#[derive(Debug)]
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number in `0..n`.
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// The `(hashtag, count)` list of a `/api/v1/trends` body, in the served order; empty when the
/// body has no `trends` array.
pub fn ranking(body: &serde_json::Value) -> Vec<(String, i64)> {
    body["trends"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|t| {
                    (
                        t["hashtag"].as_str().unwrap_or_default().to_string(),
                        t["count"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Creates `name` with `partitions` partitions on the shared test broker.
pub async fn create_topic(name: &str, partitions: i32) {
    use rdkafka::ClientConfig;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set(
            "bootstrap.servers",
            test_support::KafkaBroker::shared().bootstrap_servers(),
        )
        .create()
        .expect("admin");
    let results = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

/// One record of a dead-letter topic as read back: its key, value and headers.
pub struct DeadLetter {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: std::collections::BTreeMap<String, String>,
}

impl DeadLetter {
    /// A header's value, empty when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The key as text (lossy), empty when absent.
    pub fn key_text(&self) -> String {
        self.key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).to_string())
            .unwrap_or_default()
    }
}

/// Sizes, not megabytes of bytes, in failure messages.
impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("key", &self.key.as_ref().map(|k| &k[..k.len().min(40)]))
            .field("value_bytes", &self.value.len())
            .field("headers", &self.headers)
            .finish()
    }
}

/// Reads up to `n` records from the start of a topic on the shared test broker
/// (`read_committed`), waiting at most `timeout` for them.
pub async fn read_dead_letters(topic: &str, n: usize, timeout: Duration) -> Vec<DeadLetter> {
    use rdkafka::ClientConfig;
    use rdkafka::Message as _;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers as _;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set(
                "bootstrap.servers",
                test_support::KafkaBroker::shared().bootstrap_servers(),
            )
            .set("group.id", test_support::unique_name("dlq-reader"))
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        consumer.subscribe(&[&topic]).expect("subscribe");
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| {
                                (
                                    x.key.to_string(),
                                    String::from_utf8_lossy(x.value.unwrap_or_default())
                                        .to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(DeadLetter {
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().unwrap_or_default().to_vec(),
                    headers,
                });
            }
        }
        out
    })
    .await
    .expect("reader")
}

/// What compaction keeps of partition `partition` of a counts topic on the shared test broker:
/// the last value of each key as JSON, tombstoned keys gone (`read_committed`, read to the
/// partition's end). Blocking: call it from `spawn_blocking`.
pub fn read_compacted(topic: &str, partition: i32) -> HashMap<String, serde_json::Value> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            test_support::KafkaBroker::shared().bootstrap_servers(),
        )
        .set("group.id", test_support::unique_name("compacted-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let mut state = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).to_string();
                match m.payload() {
                    Some(value) => {
                        let value = serde_json::from_slice(value).expect("a JSON counts value");
                        state.insert(key, value);
                    }
                    None => {
                        state.remove(&key);
                    }
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
            _ => {}
        }
    }
    state
}

/// Resident and peak resident memory of a process, in MiB.
pub fn memory_mib(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("{name} missing"))?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// A number from the environment (`_` allowed as a digit separator), else `default`: the
/// benchmark drivers' knobs.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Waits until the aggregator whose metrics are at `metrics_url` owns `partitions` partitions
/// (its `trends_aggregator_assigned_partitions` gauge), for at most `within`.
pub async fn wait_for_assigned_partitions(
    client: &reqwest::Client,
    metrics_url: &str,
    partitions: i32,
    within: Duration,
) -> anyhow::Result<()> {
    wait_for("the aggregator to own every partition", within, || async {
        let text = get_text(client, metrics_url).await?;
        match metric_value(&text, "trends_aggregator_assigned_partitions") {
            Some(n) if n == f64::from(partitions) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// The offsets `consumer`'s group has committed on partitions `0..partitions` of `topic`, in
/// partition order (0 where none is committed).
pub fn committed_offsets(
    consumer: &rdkafka::consumer::BaseConsumer,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<Vec<i64>> {
    use rdkafka::consumer::Consumer as _;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => o,
            _ => 0,
        })
        .collect())
}
