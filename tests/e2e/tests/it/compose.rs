//! docker-compose.yml and the Dockerfile cannot run on a machine without a Docker engine, so
//! this checks offline what can be checked: every service's environment is accepted by that
//! service's own config loader, the build context and Dockerfile exist and build every
//! binary (once, into one image that is never pulled), the aggregator can be scaled, the Kafka
//! image is the version the tests run and keeps its data in a named volume, the image build is
//! cached, stripped, labelled and runs as the chart's user. The healthchecks are run for real:
//! the Kafka one (bash, no JVM) against the test broker, `trends-api healthcheck` against the
//! real API and aggregator processes, whose logs must carry no colour codes.
//! (`../shared/docker-offline/check-compose.sh` runs the real `docker compose up`, by hand.)

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use e2e::{Topics, binary, free_port};
use serde_yaml::Value;
use test_support::{KafkaBroker, unique_name};
use trends_common::config::Load as _;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn compose() -> Value {
    let text =
        std::fs::read_to_string(root().join("docker-compose.yml")).expect("docker-compose.yml");
    let mut value: Value = serde_yaml::from_str(&text).expect("valid YAML");
    value.apply_merge().expect("merge keys");
    value
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    &compose["services"][name]
}

/// The service's environment with `${VAR:-default}` resolved to its default.
fn environment(service: &Value) -> HashMap<String, String> {
    environment_with(service, &HashMap::new())
}

/// The service's environment as `docker compose` resolves it from `shell`: `${VAR:-default}`
/// is `VAR`'s value when set and not empty, else the default.
fn environment_with(service: &Value, shell: &HashMap<&str, &str>) -> HashMap<String, String> {
    let Some(map) = service["environment"].as_mapping() else {
        return HashMap::new();
    };
    map.iter()
        .map(|(k, v)| {
            let key = k.as_str().expect("string key").to_string();
            let raw = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => panic!("{key}: unsupported value {other:?}"),
            };
            let value = match (raw.strip_prefix("${"), raw.find(":-")) {
                (Some(rest), Some(i)) => {
                    let variable = &rest[..i - 2];
                    match shell.get(variable) {
                        Some(v) if !v.is_empty() => (*v).to_string(),
                        _ => raw[i + 2..raw.len() - 1].to_string(),
                    }
                }
                _ => raw,
            };
            (key, value)
        })
        .collect()
}

#[test]
fn every_service_environment_is_accepted_by_its_own_config_loader() {
    let compose = compose();
    let producer = environment(service(&compose, "tweet-producer"));
    tweet_producer::settings::Settings::load_from(&producer)
        .expect("tweet-producer accepts its environment");
    let aggregator = environment(service(&compose, "hashtag-aggregator"));
    hashtag_aggregator::settings::Settings::load_from(&aggregator)
        .expect("aggregator accepts its environment");
    let api = environment(service(&compose, "trends-api"));
    let api_settings = trends_api::settings::Settings::load_from(&api)
        .expect("trends-api accepts its environment");
    assert_eq!(api_settings.http.addr.port(), 8080);

    // All three agree on the topics they share.
    for (name, env) in [("hashtag-aggregator", &aggregator), ("trends-api", &api)] {
        let counts = env
            .get("TRENDS__TOPICS__COUNTS")
            .map_or("hashtag-counts", String::as_str);
        assert_eq!(counts, "hashtag-counts", "{name}");
    }
    assert_eq!(
        producer.get("TRENDS__TOPICS__TWEETS"),
        aggregator.get("TRENDS__TOPICS__TWEETS")
    );
}

/// `TRENDS_SOURCE` alone switches the source; the live sources take what they need (token,
/// rules, server) from the variables the README names, and refuse to start without a token.
#[test]
fn one_variable_switches_the_source() {
    let compose = compose();
    let producer = service(&compose, "tweet-producer");
    let load = |shell: &[(&str, &str)]| {
        let shell: HashMap<&str, &str> = shell.iter().copied().collect();
        tweet_producer::settings::Settings::load_from(&environment_with(producer, &shell))
    };
    let kind = |shell: &[(&str, &str)]| {
        load(shell)
            .unwrap_or_else(|e| panic!("{shell:?}: {e}"))
            .source
            .kind
    };
    use tweet_producer::settings::SourceKind;
    assert_eq!(kind(&[]), SourceKind::Synthetic);
    assert_eq!(kind(&[("TRENDS_SOURCE", "bluesky")]), SourceKind::Bluesky);
    assert_eq!(
        kind(&[("TRENDS_SOURCE", "mastodon"), ("MASTODON_TOKEN", "t0k3n")]),
        SourceKind::Mastodon
    );
    assert_eq!(
        kind(&[
            ("TRENDS_SOURCE", "x"),
            ("X_RULES", "#rust,#kafka"),
            ("X_BEARER_TOKEN", "t0k3n")
        ]),
        SourceKind::X
    );
    for (source, key) in [("mastodon", "mastodon"), ("x", "x")] {
        let error = load(&[("TRENDS_SOURCE", source), ("X_RULES", "#rust")])
            .expect_err("no token")
            .to_string();
        assert!(
            error.contains(&format!("source.{key}.token")),
            "{source} without a token: {error}"
        );
    }
}

/// The producer keeps no local state (its resume positions are committed to a Kafka topic with
/// its posts), so it has no volume; an environment still naming the old cursor file is refused
/// with a message saying what replaced it.
#[test]
fn the_producer_needs_no_volume_and_a_leftover_cursor_file_is_explained() {
    let compose = compose();
    let producer = service(&compose, "tweet-producer");
    assert!(producer.get("volumes").is_none(), "no volume");
    let volumes: Vec<&str> = compose["volumes"]
        .as_mapping()
        .expect("top-level volumes")
        .keys()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(volumes, ["kafka-data"], "Kafka's is the only named volume");
    let mut env = environment(producer);
    assert!(!env.keys().any(|k| k.contains("CURSOR_FILE")));
    let dockerfile = std::fs::read_to_string(root().join("deploy/Dockerfile")).expect("Dockerfile");
    assert!(!dockerfile.contains("/var/lib/tweet-producer"));
    env.insert(
        "TRENDS__SOURCE__BLUESKY__CURSOR_FILE".into(),
        "/var/lib/tweet-producer/bluesky.cursor".into(),
    );
    let error = tweet_producer::settings::Settings::load_from(&env)
        .expect_err("the cursor file is gone")
        .to_string();
    assert!(error.contains("was removed"), "{error}");
    assert!(error.contains("tweet-producer-offsets"), "{error}");
}

/// One image for the three services, built once: trends-api builds it and never pulls it
/// (`pull_policy: build`), the other two run it (`pull_policy: never`: no "pull access denied"
/// for a local image) after trends-api started, so `docker compose up <service>` builds it too.
#[test]
fn services_run_their_binary_from_one_image_built_once() {
    let compose = compose();
    let dockerfile_text =
        std::fs::read_to_string(root().join("deploy/Dockerfile")).expect("Dockerfile");
    let builders: Vec<&str> = ["tweet-producer", "hashtag-aggregator", "trends-api"]
        .into_iter()
        .filter(|name| service(&compose, name).get("build").is_some())
        .collect();
    assert_eq!(
        builders,
        ["trends-api"],
        "exactly one service builds the image"
    );
    let api = service(&compose, "trends-api");
    let context = root().join(api["build"]["context"].as_str().expect("build.context"));
    let dockerfile = context.join(
        api["build"]["dockerfile"]
            .as_str()
            .expect("build.dockerfile"),
    );
    assert!(dockerfile.is_file(), "{} exists", dockerfile.display());
    assert_eq!(api["pull_policy"].as_str(), Some("build"));
    for name in ["tweet-producer", "hashtag-aggregator", "trends-api"] {
        let s = service(&compose, name);
        assert_eq!(
            s["image"].as_str(),
            api["image"].as_str(),
            "{name} runs the one image"
        );
        if name != "trends-api" {
            assert_eq!(s["pull_policy"].as_str(), Some("never"), "{name}");
            assert_eq!(
                s["depends_on"]["trends-api"]["condition"].as_str(),
                Some("service_started"),
                "{name} waits for the service that builds the image"
            );
        }
        assert_eq!(
            s["depends_on"]["kafka"]["condition"].as_str(),
            Some("service_healthy"),
            "{name} starts once Kafka answers"
        );
        let command: Vec<&str> = s["command"]
            .as_sequence()
            .expect("command")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(command, [name], "{name} runs its own binary");
        assert!(
            dockerfile_text.contains(&format!("-p {name}")),
            "the Dockerfile builds {name}"
        );
        assert!(
            dockerfile_text.contains(&format!("target/release/{name}")),
            "the Dockerfile copies {name}"
        );
        assert!(
            root()
                .join("services")
                .join(name)
                .join("Cargo.toml")
                .is_file()
        );
    }
}

/// A `KEY=value` or `KEY value` word list of the Dockerfile's instruction lines, continuation
/// lines joined; comments dropped.
fn dockerfile_instructions() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("deploy/Dockerfile")).expect("Dockerfile");
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    instructions
}

/// The image: dependencies compiled in their own cached layer (cargo-chef) before the sources
/// are copied, binaries stripped, a slim runtime (the libraries the binaries link, curl for
/// operators' checks, nothing else), OCI labels that agree with the
/// workspace, the Helm chart's user (10001, numeric, created without the SYS_UID_MAX warning),
/// and nothing that needs Docker Hub beyond the base images (no `# syntax=` frontend).
#[test]
fn the_image_is_cached_stripped_labelled_and_unprivileged() {
    let text = std::fs::read_to_string(root().join("deploy/Dockerfile")).expect("Dockerfile");
    assert!(!text.contains("# syntax="), "no frontend image to pull");
    let instructions = dockerfile_instructions();
    let position = |needle: &str| {
        instructions
            .iter()
            .position(|i| i.contains(needle))
            .unwrap_or_else(|| panic!("no instruction with {needle:?}: {instructions:#?}"))
    };
    let cook = position("cargo chef cook --release --locked");
    let build = position("cargo build --release --locked");
    let sources = instructions[cook..build]
        .iter()
        .position(|i| i == "COPY . .")
        .expect("the sources are copied between cook and build");
    assert!(sources > 0, "cook runs before the sources are copied");
    assert!(
        instructions[position("FROM chef AS planner")..cook]
            .iter()
            .any(|i| i.contains("cargo chef prepare")),
        "the recipe comes from its own stage"
    );
    for package in ["tweet-producer", "hashtag-aggregator", "trends-api"] {
        let flag = format!("-p {package}");
        assert!(instructions[cook].contains(&flag), "cook: {flag}");
        assert!(instructions[build].contains(&flag), "build: {flag}");
    }
    let env = &instructions[position("CARGO_PROFILE_RELEASE_STRIP")];
    assert!(env.contains("CARGO_PROFILE_RELEASE_STRIP=symbols"), "{env}");
    assert!(env.contains("CARGO_PROFILE_RELEASE_DEBUG=none"), "{env}");
    assert!(
        position("CARGO_PROFILE_RELEASE_STRIP") < cook,
        "one profile for the cached dependencies and the binaries"
    );

    let runtime_from = position("FROM debian:bookworm-slim AS runtime");
    let runtime = &instructions[runtime_from..];
    let install = runtime
        .iter()
        .find(|i| i.contains("apt-get install"))
        .expect("the runtime installs the shared libraries");
    let packages: Vec<&str> = install
        .split("--no-install-recommends")
        .nth(1)
        .expect("--no-install-recommends")
        .split("&&")
        .next()
        .expect("packages")
        .split_whitespace()
        .collect();
    assert_eq!(
        packages,
        ["ca-certificates", "libssl3", "libcurl4", "curl"],
        "the runtime's packages"
    );
    assert!(
        install.contains("useradd --uid 10001") && !install.contains("--system"),
        "{install}"
    );
    assert!(
        runtime.iter().any(|i| i == "USER 10001:10001"),
        "{runtime:#?}"
    );
    let values = std::fs::read_to_string(root().join("deploy/helm/hashtag-trends/values.yaml"))
        .expect("the chart's values");
    assert!(
        values.contains("runAsUser: 10001"),
        "the chart runs as the image's user"
    );

    let labels: String = runtime
        .iter()
        .filter(|i| i.starts_with("LABEL "))
        .cloned()
        .collect();
    let workspace: toml_like::Workspace = toml_like::read(&root().join("Cargo.toml"));
    for (label, value) in [
        ("org.opencontainers.image.title", "hashtag-trends"),
        (
            "org.opencontainers.image.version",
            workspace.version.as_str(),
        ),
        (
            "org.opencontainers.image.licenses",
            workspace.license.as_str(),
        ),
        ("org.opencontainers.image.base.name", "debian:bookworm-slim"),
    ] {
        assert!(
            labels.contains(&format!("{label}=\"{value}\"")),
            "{label}={value:?} in {labels}"
        );
    }
    for label in [
        "org.opencontainers.image.description",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.created",
    ] {
        assert!(labels.contains(label), "{label}");
    }

    let ignored = std::fs::read_to_string(root().join(".dockerignore")).expect(".dockerignore");
    let ignored: Vec<&str> = ignored
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    for entry in [".git", "**/target", "**/node_modules", "fuzz"] {
        assert!(ignored.contains(&entry), "{entry} in .dockerignore");
    }
}

/// The workspace's version and license, read from the root Cargo.toml's `[workspace.package]`
/// without a TOML dependency (two `key = "value"` lines).
mod toml_like {
    use std::path::Path;

    #[derive(Debug)]
    pub struct Workspace {
        pub version: String,
        pub license: String,
    }

    pub fn read(path: &Path) -> Workspace {
        let text = std::fs::read_to_string(path).expect("Cargo.toml");
        let section = text
            .split("[workspace.package]")
            .nth(1)
            .expect("[workspace.package]")
            .split("\n[")
            .next()
            .expect("its keys");
        let value = |key: &str| {
            section
                .lines()
                .find_map(|l| {
                    l.strip_prefix(key)?
                        .trim()
                        .strip_prefix('=')?
                        .trim()
                        .strip_prefix('"')?
                        .strip_suffix('"')
                        .map(str::to_string)
                })
                .unwrap_or_else(|| panic!("{key} in [workspace.package]"))
        };
        Workspace {
            version: value("version"),
            license: value("license"),
        }
    }
}

#[test]
fn the_aggregator_can_be_scaled() {
    let compose = compose();
    let aggregator = service(&compose, "hashtag-aggregator");
    assert!(
        aggregator.get("container_name").is_none(),
        "container_name prevents --scale"
    );
    assert!(
        aggregator.get("ports").is_none(),
        "host ports prevent --scale"
    );
    let api_ports: Vec<&str> = service(&compose, "trends-api")["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        api_ports,
        ["127.0.0.1:8080:8080"],
        "the page is on http://localhost:8080, on the host's loopback only"
    );
    // Kafka's host listener has no authentication: loopback only too.
    let kafka_ports: Vec<&str> = service(&compose, "kafka")["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        kafka_ports.iter().all(|p| p.starts_with("127.0.0.1:")),
        "{kafka_ports:?}"
    );
}

#[test]
fn kafka_is_the_version_and_mode_the_tests_run() {
    let compose = compose();
    let kafka = service(&compose, "kafka");
    let image = kafka["image"].as_str().expect("image");
    let pom = std::fs::read_to_string(root().join("scripts/kafka/pom.xml")).expect("pom");
    let version = pom
        .split("<kafka.version>")
        .nth(1)
        .and_then(|s| s.split("</kafka.version>").next())
        .expect("kafka.version in the pom");
    assert_eq!(image, format!("apache/kafka:{version}"));
    assert!(version.starts_with("4."), "Kafka 4.x");
    let env = environment(kafka);
    assert_eq!(
        env["KAFKA_PROCESS_ROLES"], "broker,controller",
        "KRaft, single node"
    );
    for key in [
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ] {
        assert_eq!(
            env[key], "1",
            "{key}: a single broker needs 1, as in the test broker"
        );
    }
    assert_eq!(
        env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"], "false",
        "as in the test broker: services create their topics"
    );
}

/// Kafka is the only store, so its data must outlive `docker compose down`: the log dirs (and
/// with them the KRaft metadata) are on a named volume, under a fixed cluster id.
#[test]
fn kafka_keeps_its_data_in_a_named_volume() {
    let compose = compose();
    let kafka = service(&compose, "kafka");
    let env = environment(kafka);
    let log_dirs = env.get("KAFKA_LOG_DIRS").expect("KAFKA_LOG_DIRS");
    let mounts: Vec<&str> = kafka["volumes"]
        .as_sequence()
        .expect("kafka volumes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        mounts,
        [format!("kafka-data:{log_dirs}")],
        "every log dir on the volume"
    );
    assert!(
        compose["volumes"]
            .as_mapping()
            .expect("top-level volumes")
            .contains_key("kafka-data"),
        "a named volume, not an anonymous one"
    );
    assert!(
        !env.contains_key("KAFKA_METADATA_LOG_DIR"),
        "metadata in the log dir"
    );
    assert_eq!(
        env.get("CLUSTER_ID").map(String::len),
        Some(22),
        "a fixed cluster id (base64 UUID) for the formatted volume"
    );
}

/// The Kafka healthcheck's command, as `docker compose` runs it: `CMD bash -c <script>`, with
/// Compose's `$$` unescaped.
fn kafka_healthcheck_script() -> String {
    let compose = compose();
    let test: Vec<&str> = service(&compose, "kafka")["healthcheck"]["test"]
        .as_sequence()
        .expect("kafka healthcheck test")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let [kind, shell, flag, script] = test[..] else {
        panic!("expected [CMD, bash, -c, script], got {test:?}");
    };
    assert_eq!([kind, shell, flag], ["CMD", "bash", "-c"]);
    script.replace("$$", "$")
}

/// Runs the Kafka healthcheck script against `host:port` instead of the container's own
/// listener; `None` if it has not finished within `within` (killed then).
fn run_kafka_healthcheck(host: &str, port: u16, within: Duration) -> Option<ExitStatus> {
    let script = kafka_healthcheck_script().replace(
        "/dev/tcp/127.0.0.1/9092",
        &format!("/dev/tcp/{host}/{port}"),
    );
    let mut child = Command::new("bash")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash");
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The Kafka healthcheck starts no JVM (the old one ran kafka-broker-api-versions.sh every 5 s,
/// ~4 CPU-seconds each): bash, in the image, sends an ApiVersions request over /dev/tcp. Run
/// for real: it passes against a broker, and fails against a closed port, a listener that
/// closes at once, one that answers something else, and one that never answers.
#[test]
fn the_kafka_healthcheck_starts_no_jvm_and_passes_only_on_a_broker() {
    let script = kafka_healthcheck_script();
    for jvm in ["kafka-", ".sh", "java"] {
        assert!(!script.contains(jvm), "{jvm} in {script}");
    }
    assert!(script.contains("/dev/tcp/127.0.0.1/9092"), "{script}");

    let broker = KafkaBroker::shared();
    let first = broker
        .bootstrap_servers()
        .split(',')
        .next()
        .expect("a bootstrap server");
    let (host, port) = first.rsplit_once(':').expect("host:port");
    let port: u16 = port.parse().expect("port");
    let within = Duration::from_secs(10);
    let status = run_kafka_healthcheck(host, port, within);
    assert!(
        status.is_some_and(|s| s.success()),
        "healthy broker {first}: {status:?}"
    );

    let closed = free_port();
    let status = run_kafka_healthcheck("127.0.0.1", closed, within);
    assert!(
        status.is_some_and(|s| !s.success()),
        "closed port: {status:?}"
    );

    for peer in [NotKafka::Closes, NotKafka::AnswersHttp, NotKafka::Silent] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            let (mut stream, _) = listener.accept().expect("accept");
            match peer {
                NotKafka::Closes => {}
                NotKafka::AnswersHttp => {
                    let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
                }
                NotKafka::Silent => {
                    // Hold the connection without answering until the client goes away, or
                    // for 5 s (the probe's `head` may outlive its killed bash until then).
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut sink = [0u8; 64];
                    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                }
            }
        });
        let status = run_kafka_healthcheck("127.0.0.1", port, Duration::from_secs(3));
        match peer {
            // Compose's `timeout: 5s` turns a hang into a failure.
            NotKafka::Silent => assert!(status.is_none(), "{peer:?}: {status:?}"),
            _ => assert!(status.is_some_and(|s| !s.success()), "{peer:?}: {status:?}"),
        }
        server.join().expect("server thread");
    }
}

/// A listener that is not a Kafka broker.
#[derive(Debug, Clone, Copy)]
enum NotKafka {
    /// Closes each connection at once.
    Closes,
    /// Answers an HTTP error.
    AnswersHttp,
    /// Accepts and never answers.
    Silent,
}

/// Runs `trends-api healthcheck [args]` with `env` until it exits 0 or `within` passes;
/// whether it passed, and its last stderr.
fn healthcheck_until_ok(
    args: &[String],
    env: &[(&str, String)],
    within: Duration,
) -> (bool, String) {
    let deadline = Instant::now() + within;
    loop {
        let output = Command::new(binary("trends-api"))
            .arg("healthcheck")
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .output()
            .expect("run trends-api healthcheck");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() || Instant::now() > deadline {
            return (output.status.success(), stderr);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The three services' healthchecks are `trends-api healthcheck` (not curl), run
/// for real against real processes: the API's from its own `TRENDS__HTTP__ADDR`, the
/// aggregator's on its metrics port as compose names it. A stopped API fails the check, with
/// the address in the message. The services' logs, not on a terminal, carry no colour codes.
#[test]
fn the_service_healthchecks_are_trends_api_healthcheck_and_pass_on_real_services() {
    let compose = compose();
    let test_of = |name: &str| -> Vec<String> {
        service(&compose, name)["healthcheck"]["test"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name} has a healthcheck"))
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(test_of("trends-api"), ["CMD", "trends-api", "healthcheck"]);
    // The port each service's own settings listen on, in compose's environment.
    let producer = tweet_producer::settings::Settings::load_from(&environment(service(
        &compose,
        "tweet-producer",
    )))
    .expect("producer settings");
    let aggregator = hashtag_aggregator::settings::Settings::load_from(&environment(service(
        &compose,
        "hashtag-aggregator",
    )))
    .expect("aggregator settings");
    assert_eq!(
        test_of("tweet-producer"),
        [
            "CMD",
            "trends-api",
            "healthcheck",
            &producer.producer.metrics_addr.port().to_string()
        ]
    );
    assert_eq!(
        test_of("hashtag-aggregator"),
        [
            "CMD",
            "trends-api",
            "healthcheck",
            &aggregator.aggregator.metrics_addr.port().to_string()
        ]
    );

    let bootstrap = KafkaBroker::shared().bootstrap_servers();
    let topics = Topics::unique("compose-health-");
    let mut api = topics.start_api(bootstrap, 2);
    let group = unique_name("compose-health-group");
    let mut aggregator = topics.start_aggregator(bootstrap, 2, &group, &[]);
    let wait = Duration::from_secs(60);

    let api_addr = api
        .url
        .strip_prefix("http://")
        .expect("http URL")
        .to_string();
    let api_env = [("TRENDS__HTTP__ADDR", api_addr.clone())];
    let (ok, stderr) = healthcheck_until_ok(&[], &api_env, wait);
    assert!(ok, "the API's healthcheck: {stderr}\n{}", api.process.log());

    let metrics_port = aggregator
        .url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .expect("metrics port")
        .to_string();
    let (ok, stderr) = healthcheck_until_ok(&[metrics_port], &[], wait);
    assert!(
        ok,
        "the aggregator's healthcheck: {stderr}\n{}",
        aggregator.process.log()
    );

    api.process
        .terminate(Duration::from_secs(20))
        .expect("stop the API");
    let (ok, stderr) = healthcheck_until_ok(&[], &api_env, Duration::ZERO);
    assert!(!ok, "a stopped API fails the check");
    assert!(
        stderr.contains(&format!("cannot connect to {api_addr}")),
        "{stderr}"
    );

    aggregator
        .process
        .terminate(Duration::from_secs(20))
        .expect("stop the aggregator");
    for (name, log) in [
        ("trends-api", api.process.log()),
        ("hashtag-aggregator", aggregator.process.log()),
    ] {
        assert!(!log.is_empty(), "{name} logged");
        assert!(
            !log.contains('\u{1b}'),
            "{name}'s log has ANSI codes:\n{log}"
        );
    }
}
