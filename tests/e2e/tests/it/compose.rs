//! docker-compose.yml and the Dockerfile cannot run on a machine without a Docker engine, so
//! this checks offline what can be checked: every service's environment is accepted by that
//! service's own config loader, the build context and Dockerfile exist and build every
//! binary, the aggregator can be scaled, and the Kafka image is the version the tests run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;
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
    assert!(compose.get("volumes").is_none(), "no named volume left");
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

#[test]
fn services_are_built_from_this_repository_and_run_their_binary() {
    let compose = compose();
    let dockerfile_text =
        std::fs::read_to_string(root().join("deploy/Dockerfile")).expect("Dockerfile");
    for name in ["tweet-producer", "hashtag-aggregator", "trends-api"] {
        let s = service(&compose, name);
        let context = root().join(s["build"]["context"].as_str().expect("build.context"));
        let dockerfile = context.join(s["build"]["dockerfile"].as_str().expect("build.dockerfile"));
        assert!(
            dockerfile.is_file(),
            "{name}: {} exists",
            dockerfile.display()
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
