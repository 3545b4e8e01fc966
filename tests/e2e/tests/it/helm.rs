//! The Helm chart (deploy/helm/hashtag-trends) checked offline, as compose.rs checks the compose
//! file: the chart is rendered by the pinned helm with each values file scripts/check-helm.sh
//! renders, and every Deployment's environment is loaded by that service's own config loader,
//! with the Secret files its pod mounts laid out for real in a temporary directory. Also checked:
//! ports, probes and security context, the aggregator's lag autoscaling (KEDA, or an HPA when
//! KEDA is absent), the network policies, and values the chart refuses.
//!
//! helm is the one scripts/check-helm.sh installs (`go install`, pinned, into
//! ~/.cache/hashtag-trends/go-bin or $HASHTAG_TRENDS_GO_BIN); the first test here runs
//! `scripts/check-helm.sh --install-only`, which returns at once when it is there already.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize as _;
use serde_yaml::Value;
use trends_common::config::Load as _;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chart() -> PathBuf {
    root().join("deploy/helm/hashtag-trends")
}

/// The pinned helm, installed by scripts/check-helm.sh if missing (once per test binary).
fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let status = Command::new("bash")
            .arg(root().join("scripts/check-helm.sh"))
            .arg("--install-only")
            .status()
            .expect("run scripts/check-helm.sh --install-only");
        assert!(
            status.success(),
            "scripts/check-helm.sh --install-only: {status}"
        );
        let bin = std::env::var_os("HASHTAG_TRENDS_GO_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                    .join(".cache/hashtag-trends/go-bin")
            });
        let helm = bin.join("helm");
        assert!(helm.is_file(), "{} exists", helm.display());
        helm
    })
}

const KEDA_API: &[&str] = &["--api-versions", "keda.sh/v1alpha1/ScaledObject"];

/// A render of scripts/check-helm.sh: a values file (relative to the chart) and helm flags.
struct Case {
    name: &'static str,
    values: Option<&'static str>,
    flags: &'static [&'static str],
}

/// The renders that use no Kafka security setting.
const PLAIN: &[Case] = &[
    Case {
        name: "default",
        values: None,
        flags: &[],
    },
    Case {
        name: "default-keda",
        values: None,
        flags: KEDA_API,
    },
    Case {
        name: "hpa",
        values: Some("ci/hpa-values.yaml"),
        flags: KEDA_API,
    },
    Case {
        name: "ingress-monitors",
        values: Some("ci/ingress-monitors-values.yaml"),
        flags: &[],
    },
];

/// The renders that connect with SASL and/or TLS.
const SECURED: &[Case] = &[
    Case {
        name: "secured",
        values: Some("values-secured.yaml"),
        flags: KEDA_API,
    },
    Case {
        name: "strimzi",
        values: Some("values-strimzi.yaml"),
        flags: KEDA_API,
    },
    Case {
        name: "mtls",
        values: Some("ci/mtls-values.yaml"),
        flags: KEDA_API,
    },
];

fn helm_template(args: &[&str]) -> Result<String, String> {
    let output = Command::new(helm())
        .args(["template", "trends"])
        .arg(chart())
        .args(["--namespace", "trends"])
        .args(args)
        .output()
        .expect("run helm template");
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).expect("UTF-8 manifests"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn render(case: &Case) -> Vec<Value> {
    let mut args: Vec<String> = Vec::new();
    if let Some(values) = case.values {
        args.push("-f".into());
        args.push(chart().join(values).display().to_string());
    }
    args.extend(case.flags.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = helm_template(&args).unwrap_or_else(|e| panic!("{}: helm template: {e}", case.name));
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn named<'a>(objects: &'a [Value], kind: &str, component: &str) -> Option<&'a Value> {
    of_kind(objects, kind)
        .into_iter()
        .find(|o| o["metadata"]["labels"]["app.kubernetes.io/component"] == component)
}

fn deployment<'a>(objects: &'a [Value], component: &str) -> &'a Value {
    named(objects, "Deployment", component)
        .unwrap_or_else(|| panic!("a Deployment for {component}"))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("a string: {v:?}"))
}

fn seq(v: &Value) -> &[Value] {
    v.as_sequence().map_or(&[], Vec::as_slice)
}

/// A container's environment as the kubelet gives it to the process: `value`s as they are,
/// `fieldRef: metadata.name` as the pod's name; every `TRENDS__…__FILE` path (and every
/// `TRENDS__KAFKA__SSL__{CA,CERT,KEY}_FILE`) must be a file of a read-only Secret volume of the
/// pod, and is rewritten to that file laid out under `files`.
fn environment(deployment: &Value, pod_name: &str, files: &Path) -> HashMap<String, String> {
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    // mountPath -> the Secret's items (key -> path) of read-only Secret mounts.
    let mut secret_mounts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for mount in seq(&container["volumeMounts"]) {
        let volume = seq(&pod["volumes"])
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("volume {:?} of a mount", mount["name"]));
        if volume.get("secret").is_some() {
            assert_eq!(
                mount["readOnly"],
                Value::Bool(true),
                "Secret mount {:?} is read-only",
                mount["name"]
            );
            let paths = seq(&volume["secret"]["items"])
                .iter()
                .map(|item| str_of(&item["path"]).to_string())
                .collect();
            secret_mounts.insert(str_of(&mount["mountPath"]).to_string(), paths);
        }
    }
    let mut env = HashMap::new();
    for entry in seq(&container["env"]) {
        let name = str_of(&entry["name"]).to_string();
        let value = if let Some(v) = entry.get("value") {
            str_of(v).to_string()
        } else {
            let field = &entry["valueFrom"]["fieldRef"]["fieldPath"];
            assert_eq!(
                field, "metadata.name",
                "{name}: only the pod's name is read"
            );
            pod_name.to_string()
        };
        // Secrets (`…__FILE`) and the TLS files (`kafka.ssl.ca_file`, `cert_file`, `key_file`,
        // which the loaders check are readable) come from Secret mounts.
        let from_secret = name.ends_with("__FILE")
            || ["CA_FILE", "CERT_FILE", "KEY_FILE"]
                .iter()
                .any(|f| name.starts_with("TRENDS__KAFKA__SSL__") && name.ends_with(f));
        let value = if name.starts_with("TRENDS__") && from_secret {
            let path = Path::new(&value);
            let dir = path.parent().expect("a directory").display().to_string();
            let file = path.file_name().expect("a file name").to_string_lossy();
            let items = secret_mounts
                .get(&dir)
                .unwrap_or_else(|| panic!("{name}={value}: not in a read-only Secret mount"));
            assert!(
                items.iter().any(|i| *i == file),
                "{name}={value}: the Secret mounted at {dir} has no item {file}"
            );
            let laid_out = files.join(path.strip_prefix("/").expect("absolute"));
            std::fs::create_dir_all(laid_out.parent().expect("parent")).expect("mkdir");
            std::fs::write(&laid_out, "not-a-real-secret\n").expect("write a secret file");
            laid_out.display().to_string()
        } else {
            value
        };
        assert!(env.insert(name.clone(), value).is_none(), "{name} twice");
    }
    env
}

fn container_port(deployment: &Value, name: &str) -> u16 {
    let ports = seq(&deployment["spec"]["template"]["spec"]["containers"][0]["ports"]);
    let port = ports
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("a container port named {name}"));
    u16::try_from(port["containerPort"].as_u64().expect("a number")).expect("a port")
}

/// Every Deployment of `case` loads with its service's own loader; returns the environments.
fn load_all(case: &Case) -> HashMap<&'static str, HashMap<String, String>> {
    let objects = render(case);
    let files = tempfile::tempdir().expect("tempdir");
    let mut envs = HashMap::new();
    let deployments = of_kind(&objects, "Deployment");
    assert_eq!(deployments.len(), 3, "{}: three Deployments", case.name);
    for component in ["tweet-producer", "hashtag-aggregator", "trends-api"] {
        let d = deployment(&objects, component);
        let pod_name = format!("{}-6d5c9b7f8-x7k2p", str_of(&d["metadata"]["name"]));
        let env = environment(d, &pod_name, files.path());
        let context = format!("{}: {component}", case.name);
        match component {
            "tweet-producer" => {
                let s = tweet_producer::settings::Settings::load_from(&env)
                    .unwrap_or_else(|e| panic!("{context} refuses its environment: {e}"));
                assert_eq!(
                    s.producer.metrics_addr.port(),
                    container_port(d, "metrics"),
                    "{context}"
                );
            }
            "hashtag-aggregator" => {
                let s = hashtag_aggregator::settings::Settings::load_from(&env)
                    .unwrap_or_else(|e| panic!("{context} refuses its environment: {e}"));
                assert_eq!(
                    s.instance_id(),
                    pod_name,
                    "{context}: instance id = pod name"
                );
                assert!(s.aggregator.static_membership, "{context}");
                assert_eq!(
                    s.aggregator.metrics_addr.port(),
                    container_port(d, "metrics"),
                    "{context}"
                );
            }
            _ => {
                let s = trends_api::settings::Settings::load_from(&env)
                    .unwrap_or_else(|e| panic!("{context} refuses its environment: {e}"));
                assert_eq!(s.http.addr.port(), container_port(d, "http"), "{context}");
                assert_eq!(
                    s.http.metrics_addr.map(|a| a.port()),
                    Some(container_port(d, "metrics")),
                    "{context}: /metrics on its own port"
                );
            }
        }
        envs.insert(component, env);
    }
    // The three agree on the cluster and the topics.
    for key in [
        "TRENDS__KAFKA__BOOTSTRAP_SERVERS",
        "TRENDS__TOPICS__TWEETS",
        "TRENDS__TOPICS__COUNTS",
    ] {
        let values: Vec<&String> = envs.values().map(|e| &e[key]).collect();
        assert!(
            values.windows(2).all(|w| w[0] == w[1]),
            "{}: {key}: {values:?}",
            case.name
        );
    }
    envs
}

#[test]
fn plain_renders_are_accepted_by_each_services_own_config_loader() {
    for case in PLAIN {
        let envs = load_all(case);
        let api = &envs["trends-api"];
        assert!(
            !api.contains_key("TRENDS__KAFKA__SECURITY_PROTOCOL"),
            "{}",
            case.name
        );
        // Behind an Ingress all streams come from the controller's address.
        let behind_ingress = case.name == "ingress-monitors";
        assert_eq!(
            api.get("TRENDS__API__MAX_STREAMS_PER_IP")
                .map(String::as_str),
            behind_ingress.then_some("10000"),
            "{}",
            case.name
        );
    }
}

/// Uses the Kafka security settings (`TRENDS__KAFKA__SECURITY_PROTOCOL`, `…__SASL__…`,
/// `…__SSL__…`): every secret is a file of a mounted Secret, never a value.
#[test]
fn secured_renders_are_accepted_by_each_services_own_config_loader() {
    for case in SECURED {
        let envs = load_all(case);
        for (component, env) in &envs {
            let protocol = &env["TRENDS__KAFKA__SECURITY_PROTOCOL"];
            assert!(
                ["ssl", "sasl_ssl"].contains(&protocol.as_str()),
                "{}: {component}: {protocol}",
                case.name
            );
            assert!(env.contains_key("TRENDS__KAFKA__SSL__CA_FILE"));
            assert!(
                !env.keys()
                    .any(|k| k.contains("PASSWORD") && !k.ends_with("__FILE")),
                "{}: {component}: a password as a value",
                case.name
            );
        }
    }
}

/// Non-root, read-only root filesystem, no privilege escalation, no capabilities, resources,
/// and probes on the paths each service serves on the port it listens on.
#[test]
fn deployments_are_locked_down_and_probed_where_the_services_answer() {
    let objects = render(&PLAIN[0]);
    for (component, liveness, readiness, port) in [
        ("tweet-producer", "/healthz", "/healthz", "metrics"),
        ("hashtag-aggregator", "/healthz", "/healthz", "metrics"),
        ("trends-api", "/healthz", "/readyz", "http"),
    ] {
        let d = deployment(&objects, component);
        let labels = &d["metadata"]["labels"];
        for label in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/component",
            "app.kubernetes.io/part-of",
            "app.kubernetes.io/managed-by",
        ] {
            assert!(labels.get(label).is_some(), "{component}: label {label}");
        }
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], Value::Bool(false));
        assert_eq!(pod["securityContext"]["runAsNonRoot"], Value::Bool(true));
        let c = &pod["containers"][0];
        let command: Vec<&str> = seq(&c["command"]).iter().map(str_of).collect();
        assert_eq!(command, [component], "{component} runs its own binary");
        let sc = &c["securityContext"];
        assert_eq!(
            sc["readOnlyRootFilesystem"],
            Value::Bool(true),
            "{component}"
        );
        assert_eq!(
            sc["allowPrivilegeEscalation"],
            Value::Bool(false),
            "{component}"
        );
        assert_eq!(sc["runAsNonRoot"], Value::Bool(true), "{component}");
        assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{component}");
        assert!(c["resources"]["requests"].get("memory").is_some());
        assert!(c["resources"]["limits"].get("memory").is_some());
        for (probe, path) in [("livenessProbe", liveness), ("readinessProbe", readiness)] {
            assert_eq!(c[probe]["httpGet"]["path"], path, "{component} {probe}");
            assert_eq!(c[probe]["httpGet"]["port"], port, "{component} {probe}");
        }
    }
    // The producer's transactional id is per source and topic: exactly one, never two at once.
    let producer = deployment(&objects, "tweet-producer");
    assert_eq!(producer["spec"]["replicas"], 1);
    assert_eq!(producer["spec"]["strategy"]["type"], "Recreate");
    for component in ["tweet-producer", "hashtag-aggregator", "trends-api"] {
        assert!(
            named(&objects, "PodDisruptionBudget", component).is_some(),
            "{component}: a PodDisruptionBudget"
        );
    }
}

/// KEDA's Kafka scaler on the aggregator's own group and input topic: never more replicas than
/// partitions, commit markers alone never activate it, and it logs in as the aggregator does.
/// Without KEDA's API an HPA scales it instead.
#[test]
fn the_aggregator_scales_on_lag_with_keda_or_an_hpa_without_it() {
    for case in [&PLAIN[1], &SECURED[0], &SECURED[1]] {
        let objects = render(case);
        assert!(of_kind(&objects, "HorizontalPodAutoscaler").is_empty());
        let aggregator = deployment(&objects, "hashtag-aggregator");
        assert!(
            aggregator["spec"].get("replicas").is_none(),
            "{}: KEDA owns the replicas",
            case.name
        );
        let files = tempfile::tempdir().expect("tempdir");
        let env = environment(aggregator, "pod", files.path());
        let scaled = of_kind(&objects, "ScaledObject");
        assert_eq!(scaled.len(), 1, "{}", case.name);
        let spec = &scaled[0]["spec"];
        assert_eq!(
            spec["scaleTargetRef"]["name"],
            aggregator["metadata"]["name"]
        );
        let partitions: u64 = env["TRENDS__TOPICS__PARTITIONS"].parse().expect("a number");
        assert!(spec["maxReplicaCount"].as_u64().expect("max") <= partitions);
        let trigger = &spec["triggers"][0];
        assert_eq!(trigger["type"], "kafka");
        let m = &trigger["metadata"];
        assert_eq!(m["allowIdleConsumers"], "false");
        let activation: u64 = str_of(&m["activationLagThreshold"]).parse().expect("n");
        assert!(activation >= 2, "{}: {activation}", case.name);
        assert!(str_of(&m["lagThreshold"]).parse::<u64>().expect("n") > 0);
        assert_eq!(
            m["consumerGroup"],
            env["TRENDS__AGGREGATOR__GROUP_ID"].as_str()
        );
        assert_eq!(m["topic"], env["TRENDS__TOPICS__TWEETS"].as_str());
        assert_eq!(
            m["bootstrapServers"],
            env["TRENDS__KAFKA__BOOTSTRAP_SERVERS"].as_str()
        );
        let auth = of_kind(&objects, "TriggerAuthentication");
        if case.name == "default-keda" {
            assert!(auth.is_empty() && trigger.get("authenticationRef").is_none());
            continue;
        }
        assert_eq!(m["sasl"], "scram_sha512", "{}", case.name);
        assert_eq!(m["tls"], "enable", "{}", case.name);
        assert_eq!(
            trigger["authenticationRef"]["name"],
            auth[0]["metadata"]["name"]
        );
        // The Secrets KEDA reads are the ones the aggregator mounts.
        let volumes = seq(&aggregator["spec"]["template"]["spec"]["volumes"]);
        for reference in seq(&auth[0]["spec"]["secretTargetRef"]) {
            assert!(
                volumes
                    .iter()
                    .any(|v| v["secret"]["secretName"] == reference["name"]
                        && v["secret"]["items"][0]["key"] == reference["key"]),
                "{}: {reference:?} is mounted by the aggregator",
                case.name
            );
        }
        let username = &auth[0]["spec"]["env"][0];
        assert_eq!(username["parameter"], "username");
        assert!(env.contains_key(str_of(&username["name"])), "{username:?}");
    }

    let objects = render(&PLAIN[0]);
    assert!(of_kind(&objects, "ScaledObject").is_empty(), "no KEDA API");
    let hpa = of_kind(&objects, "HorizontalPodAutoscaler");
    assert_eq!(hpa.len(), 1, "the HPA fallback");
    assert_eq!(
        hpa[0]["spec"]["scaleTargetRef"]["name"],
        deployment(&objects, "hashtag-aggregator")["metadata"]["name"]
    );
}

/// Only the API's HTTP port is open to anyone; the metrics ports only to the chosen peers.
#[test]
fn network_policies_leave_only_the_api_reachable_from_outside() {
    let objects = render(&PLAIN[3]);
    let policies = of_kind(&objects, "NetworkPolicy");
    assert_eq!(policies.len(), 3);
    for policy in policies {
        let component = str_of(&policy["metadata"]["labels"]["app.kubernetes.io/component"]);
        assert_eq!(
            policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
            component
        );
        assert_eq!(policy["spec"]["policyTypes"][0], "Ingress");
        for rule in seq(&policy["spec"]["ingress"]) {
            let port = str_of(&rule["ports"][0]["port"]);
            if component == "trends-api" && port == "http" {
                assert!(rule.get("from").is_none(), "the API is open");
            } else {
                assert_eq!(port, "metrics", "{component}");
                assert!(
                    !seq(&rule["from"]).is_empty(),
                    "{component}: {port} is closed"
                );
            }
        }
    }
}

/// Values the chart refuses, with a message naming the value.
#[test]
fn the_chart_refuses_values_that_would_misbehave_naming_them() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--api-versions",
                "keda.sh/v1alpha1/ScaledObject",
                "--set",
                "aggregator.autoscaling.keda.activationLagThreshold=1",
            ],
            "aggregator.autoscaling.keda.activationLagThreshold must be at least 2",
        ),
        (
            &["--set", "aggregator.autoscaling.maxReplicas=13"],
            "aggregator.autoscaling.maxReplicas (13) must be at most topics.partitions (12)",
        ),
        (
            &["--set", "kafka.securityProtocol=sasl_ssl"],
            "kafka.sasl.mechanism is required with kafka.securityProtocol sasl_ssl",
        ),
        (
            &["--set", "kafka.tls.certSecret.name=client"],
            "kafka.tls.certSecret.name and kafka.tls.keySecret.name go together",
        ),
    ];
    for (args, message) in cases {
        let error = helm_template(args).expect_err("refused");
        assert!(error.contains(message), "{args:?}: {error}");
    }
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// deploy/strimzi and values-strimzi.yaml describe one cluster: the listener the chart connects
/// to is TLS with SCRAM-SHA-512, the user is SCRAM-SHA-512 with ACLs on every topic and group
/// the services use, and the counts and dead-letter topics have exactly as many partitions as
/// `tweets` (the counts topic compacted), as many as the chart's `topics.partitions`.
#[test]
fn the_strimzi_examples_match_the_chart() {
    let dir = root().join("deploy/strimzi");
    let objects: Vec<Value> = ["kafka.yaml", "topics.yaml", "user.yaml"]
        .iter()
        .flat_map(|f| yaml_documents(&dir.join(f)))
        .collect();
    let values = &yaml_documents(&chart().join("values-strimzi.yaml"))[0];
    let defaults = &yaml_documents(&chart().join("values.yaml"))[0];
    let strimzi = &values["kafka"]["strimzi"];
    assert_eq!(strimzi["enabled"], Value::Bool(true));

    let kafka = of_kind(&objects, "Kafka");
    assert_eq!(kafka.len(), 1);
    assert_eq!(kafka[0]["metadata"]["name"], strimzi["clusterName"]);
    let listener = seq(&kafka[0]["spec"]["kafka"]["listeners"])
        .iter()
        .find(|l| l["port"] == strimzi["listenerPort"])
        .expect("the listener values-strimzi.yaml names");
    assert_eq!(listener["tls"], Value::Bool(true));
    assert_eq!(listener["authentication"]["type"], "scram-sha-512");
    let roles: Vec<&str> = of_kind(&objects, "KafkaNodePool")
        .iter()
        .flat_map(|p| seq(&p["spec"]["roles"]).iter().map(str_of))
        .collect();
    assert!(
        roles.contains(&"controller") && roles.contains(&"broker"),
        "KRaft node pools"
    );

    let topic = |name: &str| {
        of_kind(&objects, "KafkaTopic")
            .into_iter()
            .find(|t| t["spec"]["topicName"] == name)
            .unwrap_or_else(|| panic!("a KafkaTopic for {name}"))
            .clone()
    };
    let topics = &defaults["topics"];
    let partitions = &values["topics"]["partitions"];
    for key in ["tweets", "counts", "dlq"] {
        let t = topic(str_of(&topics[key]));
        assert_eq!(
            &t["spec"]["partitions"], partitions,
            "{key}: co-partitioned"
        );
    }
    for key in ["counts", "blocklist", "sourceOffsets"] {
        let t = topic(str_of(&topics[key]));
        assert_eq!(t["spec"]["config"]["cleanup.policy"], "compact", "{key}");
    }
    for key in ["blocklist", "sourceOffsets"] {
        assert_eq!(
            topic(str_of(&topics[key]))["spec"]["partitions"],
            1,
            "{key}"
        );
    }
    assert_eq!(
        topic(str_of(&topics["tweets"]))["spec"]["config"]["message.timestamp.type"],
        "LogAppendTime"
    );
    for t in of_kind(&objects, "KafkaTopic") {
        assert_eq!(
            t["metadata"]["labels"]["strimzi.io/cluster"],
            strimzi["clusterName"]
        );
    }

    let user = of_kind(&objects, "KafkaUser");
    assert_eq!(user.len(), 1);
    assert_eq!(user[0]["metadata"]["name"], strimzi["user"]);
    assert_eq!(user[0]["spec"]["authentication"]["type"], "scram-sha-512");
    let acls = seq(&user[0]["spec"]["authorization"]["acls"]);
    let allowed = |kind: &str, name: &str, operation: &str| {
        acls.iter().any(|acl| {
            let resource = &acl["resource"];
            let resource_name = resource["name"].as_str().unwrap_or("");
            resource["type"] == kind
                && (resource_name == name
                    || (resource["patternType"] == "prefix" && name.starts_with(resource_name)))
                && seq(&acl["operations"]).iter().any(|o| o == operation)
        })
    };
    for key in ["tweets", "counts", "dlq", "blocklist", "sourceOffsets"] {
        for operation in ["Describe", "Read", "Write", "Create", "DescribeConfigs"] {
            assert!(
                allowed("topic", str_of(&topics[key]), operation),
                "{key}: {operation}"
            );
        }
    }
    let group = str_of(&defaults["aggregator"]["groupId"]);
    assert!(allowed("group", group, "Read") && allowed("group", group, "Describe"));
    assert!(allowed("transactionalId", &format!("{group}-pod"), "Write"));
    assert!(allowed(
        "transactionalId",
        "tweet-producer-synthetic@tweets",
        "Write"
    ));
}
