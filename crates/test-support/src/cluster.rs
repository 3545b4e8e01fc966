//! [`KafkaCluster`]: several Kafka nodes (each broker and controller, KRaft) replicating to
//! each other, for tests of what a broker failure does to the product.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::{Metadata, MetadataTopic};
use tempfile::TempDir;

use crate::broker::{
    BrokerProcess, DIR_PREFIX, NodeConfig, START_ATTEMPTS, cluster_id, finish_format,
    free_port_list, probe_config, remove_stale_dirs, start_format, wait_ready,
};
use crate::jars;

/// Heap flags of each node's JVM: three of them share a 2-core machine with the tests.
const NODE_HEAP: [&str; 2] = ["-Xms128m", "-Xmx384m"];
/// Timeout of each metadata request made by the query methods.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// The line `kafka.server.KafkaRaftServer` logs once a node has started: registered,
/// caught up with the metadata log, and unfenced.
const STARTED_LINE: &str = "Kafka Server started";
/// The internal topic holding transactions; its partition leaders are the coordinators.
const TRANSACTION_TOPIC: &str = "__transaction_state";
/// The internal topic holding consumer group offsets; its partition leaders are the group
/// coordinators.
const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// A KRaft cluster of real Kafka nodes on loopback, each both broker and controller, for
/// tests that kill and restart brokers.
///
/// Topics get the cluster's replication by default (`default.replication.factor` = min(3,
/// nodes), `min.insync.replicas` = min(2, that)), and so do the internal topics (consumer
/// offsets, transactions), so that with three nodes a producer with `acks=all` keeps
/// writing while any one node is down. Node ids are `1..=n`.
///
/// Dropping the cluster kills every node and deletes all data.
#[derive(Debug)]
pub struct KafkaCluster {
    nodes: Vec<ClusterNode>,
    bootstrap_servers: String,
    /// `node-<id>/` per node, and `owner.pid`. Declared after `nodes` so that it is deleted
    /// after the JVMs are killed.
    dir: TempDir,
}

#[derive(Debug)]
struct ClusterNode {
    id: i32,
    /// `127.0.0.1:<port>` of its client listener.
    address: String,
    process: BrokerProcess,
}

impl KafkaCluster {
    /// Starts a cluster of `nodes` nodes (1 to 9; 3 for failover tests) and waits until
    /// every node is registered and unfenced, i.e. listed in metadata.
    ///
    /// Each node is a `java kafka.Kafka` process (`-Xmx384m`) with its own ports and data;
    /// all are formatted with one cluster id and list each other in
    /// `controller.quorum.voters`, so any majority of them can elect a controller. Takes
    /// roughly as long as one broker: the nodes are formatted and started in parallel.
    ///
    /// Internal topics are created on first use (first consumer group, first transactional
    /// producer) and need `default.replication.factor` nodes up then: let a test use them
    /// once before it kills a node.
    pub fn start(nodes: usize) -> anyhow::Result<KafkaCluster> {
        ensure!(
            (1..=9).contains(&nodes),
            "a test cluster has 1 to 9 nodes, not {nodes}"
        );
        remove_stale_dirs();
        let jars = jars::jars_dir()?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let mut cluster = KafkaCluster::create(nodes, jars)?;
            match cluster.wait_all_ready() {
                Ok(()) => return Ok(cluster),
                // A JVM exited early, most likely because another process took one of the
                // ports between `free_port_list` and the node's bind: try fresh ports.
                Err(e) if cluster.nodes.iter().any(|n| n.process.child_is_gone()) => {
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
    }

    /// Writes configs, formats every node's storage and launches the JVMs (not waiting).
    fn create(nodes: usize, jars: &Path) -> anyhow::Result<KafkaCluster> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}cluster-"))
            .tempdir_in(std::env::temp_dir())
            .context("cannot create the cluster's temp dir")?;
        fs::write(dir.path().join("owner.pid"), std::process::id().to_string())?;
        let ports = free_port_list(2 * nodes)?;
        let ids: Vec<i32> = (1..=nodes)
            .map(|id| i32::try_from(id).context("node id"))
            .collect::<anyhow::Result<_>>()?;
        let (client_ports, controller_ports) = ports.split_at(nodes);
        let voters = ids
            .iter()
            .zip(controller_ports)
            .map(|(id, port)| format!("{id}@127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let replication = replication_config(nodes);
        let cluster_id = cluster_id();
        let mut cluster_nodes = Vec::with_capacity(nodes);
        let mut formatters = Vec::with_capacity(nodes);
        for ((&id, &port), &controller_port) in ids.iter().zip(client_ports).zip(controller_ports) {
            let node_dir = dir.path().join(format!("node-{id}"));
            fs::create_dir(&node_dir).context("cannot create a node's dir")?;
            NodeConfig {
                node_id: id,
                port,
                controller_port,
                voters: voters.clone(),
                security: None,
                replication: &replication,
            }
            .write(&node_dir)?;
            formatters.push(start_format(&node_dir, jars, &cluster_id, &[])?);
            cluster_nodes.push(ClusterNode {
                id,
                address: format!("127.0.0.1:{port}"),
                process: BrokerProcess::new(node_dir, None, NODE_HEAP),
            });
        }
        for formatter in formatters {
            finish_format(formatter)?;
        }
        let bootstrap_servers = cluster_nodes
            .iter()
            .map(|n| n.address.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = KafkaCluster {
            nodes: cluster_nodes,
            bootstrap_servers,
            dir,
        };
        for node in &mut cluster.nodes {
            node.process.spawn(jars)?;
        }
        Ok(cluster)
    }

    fn wait_all_ready(&mut self) -> anyhow::Result<()> {
        let count = self.nodes.len();
        let probe = probe_config(self.client_config());
        let mut processes: Vec<&mut BrokerProcess> =
            self.nodes.iter_mut().map(|n| &mut n.process).collect();
        wait_ready(&mut processes, &probe, &self.bootstrap_servers, |m| {
            m.brokers().len() == count
        })
    }

    /// Every node's client address, comma-separated: a client's `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The node ids, `1..=n`.
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// `127.0.0.1:<port>` of one node's client listener (the same after a restart).
    pub fn address(&self, node_id: i32) -> anyhow::Result<&str> {
        Ok(&self.node(node_id)?.address)
    }

    /// The node's temp dir (`server.properties`, `broker.log`, `data/`), for a test's
    /// failure message.
    pub fn node_dir(&self, node_id: i32) -> anyhow::Result<&Path> {
        Ok(self.node(node_id)?.process.dir())
    }

    /// A client config with `bootstrap.servers` set to every node.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        config
    }

    /// Whether the node's JVM is running (not killed, not crashed).
    pub fn is_running(&mut self, node_id: i32) -> anyhow::Result<bool> {
        Ok(self.node_mut(node_id)?.process.is_running())
    }

    /// Kills the node with SIGKILL (`kill -9`): no clean shutdown, no flush, no leadership
    /// hand-over, like a crashed machine. Its data stays for [`KafkaCluster::start_node`].
    ///
    /// The controller notices when the node misses heartbeats for `broker.session.timeout.ms`
    /// (4 s here, instead of 9 s) and moves its partition leaderships to in-sync replicas;
    /// until then metadata still names it as leader. If it was the active controller, the
    /// other two elect a new one within about a second.
    pub fn kill(&mut self, node_id: i32) -> anyhow::Result<()> {
        self.node_mut(node_id)?.process.kill()
    }

    /// Relaunches a killed node on the same ports and data, and waits until it has started
    /// (recovered its logs, caught up with the metadata log, unfenced) and is listed in the
    /// cluster's metadata again. Its replicas then catch up in the background; wait for that
    /// with [`KafkaCluster::wait_in_sync`].
    pub fn start_node(&mut self, node_id: i32) -> anyhow::Result<()> {
        let jars = jars::jars_dir()?;
        let probe = probe_config(self.client_config());
        let bootstrap_servers = self.bootstrap_servers.clone();
        let node = self.node_mut(node_id)?;
        ensure!(
            !node.process.is_running(),
            "node {node_id} is already running"
        );
        let log = node.process.log();
        let log_start = fs::metadata(&log).map_or(0, |m| m.len());
        node.process.spawn(jars)?;
        wait_ready(
            &mut [&mut node.process],
            &probe,
            &bootstrap_servers,
            |metadata| {
                // Metadata alone could be stale (a node killed less than the session timeout
                // ago is still listed); the log line says this launch has finished starting.
                metadata.brokers().iter().any(|b| b.id() == node_id)
                    && log_since(&log, log_start).contains(STARTED_LINE)
            },
        )
        .with_context(|| format!("node {node_id} did not rejoin the cluster"))
    }

    /// The node leading `topic`'s `partition`, as the cluster's metadata says now.
    ///
    /// Right after [`KafkaCluster::kill`] that is still the killed node, until the controller
    /// fences it (about 4 s); poll if you need the new leader.
    pub fn leader_of(&self, topic: &str, partition: i32) -> anyhow::Result<i32> {
        let metadata = self.topic_metadata(topic)?;
        let topic_metadata = only_topic(&metadata, topic)?;
        let partition_metadata = topic_metadata
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .with_context(|| format!("topic {topic} has no partition {partition}"))?;
        let leader = partition_metadata.leader();
        ensure!(
            leader >= 0,
            "partition {topic}-{partition} has no leader right now"
        );
        Ok(leader)
    }

    /// The node acting as transaction coordinator for `transactional_id`: the leader of its
    /// partition of `__transaction_state`.
    ///
    /// rdkafka exposes no FindCoordinator call, and the cluster's jars do not include the
    /// `kafka-transactions` tool, so this computes what the broker computes
    /// (`TransactionStateManager.partitionFor`: `Utils.abs(id.hashCode) % partitions`, with
    /// Java's `String.hashCode`) and asks metadata for that partition's leader; the harness's
    /// tests check it against the coordinator the broker names to librdkafka
    /// (FindCoordinator, logged with `debug=eos`). Fails until the first transactional
    /// producer has made the broker create `__transaction_state`. Like
    /// [`KafkaCluster::leader_of`], it still names a killed node until that node is fenced.
    pub fn transaction_coordinator(&self, transactional_id: &str) -> anyhow::Result<i32> {
        self.coordinator(TRANSACTION_TOPIC, transactional_id)
    }

    /// The node acting as group coordinator for consumer group `group_id`: the leader of its
    /// partition of `__consumer_offsets` (same rule as for transactions). Fails until the
    /// first consumer group has made the broker create `__consumer_offsets`.
    pub fn group_coordinator(&self, group_id: &str) -> anyhow::Result<i32> {
        self.coordinator(OFFSETS_TOPIC, group_id)
    }

    fn coordinator(&self, topic: &str, key: &str) -> anyhow::Result<i32> {
        let metadata = self.topic_metadata(topic)?;
        let partitions = only_topic(&metadata, topic)?.partitions().len();
        ensure!(partitions > 0, "{topic} has no partitions yet");
        let partitions = i32::try_from(partitions).context("partition count")?;
        self.leader_of(topic, coordinator_partition(key, partitions))
    }

    /// Waits until every partition of `topic` has all its replicas in sync (a restarted node
    /// has caught up), polling metadata until `timeout`.
    pub fn wait_in_sync(&self, topic: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let lagging = match self.topic_metadata(topic) {
                Ok(metadata) => match only_topic(&metadata, topic) {
                    Ok(t) => t
                        .partitions()
                        .iter()
                        .filter(|p| p.leader() < 0 || p.isr().len() < p.replicas().len())
                        .map(|p| {
                            format!(
                                "{topic}-{}: leader {}, replicas {:?}, in sync {:?}",
                                p.id(),
                                p.leader(),
                                p.replicas(),
                                p.isr()
                            )
                        })
                        .collect::<Vec<_>>(),
                    Err(e) => vec![format!("{e:#}")],
                },
                Err(e) => vec![format!("{e:#}")],
            };
            if lagging.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{topic} not fully in sync after {:?}: {}",
                    timeout,
                    lagging.join("; ")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn topic_metadata(&self, topic: &str) -> anyhow::Result<Metadata> {
        let client: BaseConsumer = self
            .client_config()
            .create()
            .context("cannot create a metadata client")?;
        client
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .with_context(|| format!("cannot fetch metadata of {topic}"))
    }

    fn node(&self, node_id: i32) -> anyhow::Result<&ClusterNode> {
        self.nodes
            .iter()
            .find(|n| n.id == node_id)
            .with_context(|| format!("no node {node_id} (nodes are {:?})", self.node_ids()))
    }

    fn node_mut(&mut self, node_id: i32) -> anyhow::Result<&mut ClusterNode> {
        let ids = self.node_ids();
        self.nodes
            .iter_mut()
            .find(|n| n.id == node_id)
            .with_context(|| format!("no node {node_id} (nodes are {ids:?})"))
    }

    /// The cluster's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The one topic of a metadata answer, failing with the topic's error (e.g. unknown topic).
fn only_topic<'a>(metadata: &'a Metadata, topic: &str) -> anyhow::Result<&'a MetadataTopic> {
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .with_context(|| format!("metadata lists no topic {topic}"))?;
    if let Some(error) = found.error() {
        bail!(
            "metadata of {topic}: {:?}",
            rdkafka::types::RDKafkaErrorCode::from(error)
        );
    }
    Ok(found)
}

/// Replication settings of a cluster of `nodes`: RF min(3, nodes), min ISR min(2, RF),
/// internal topics alike, and fast fencing of a dead node.
fn replication_config(nodes: usize) -> String {
    let rf = nodes.min(3);
    let min_isr = rf.min(2);
    format!(
        "\
# Every topic, internal ones included, is replicated to min(3, nodes) nodes and accepts
# acks=all writes while min(2, that) replicas are in sync: one node may die.
default.replication.factor={rf}
min.insync.replicas={min_isr}
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=3
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={min_isr}
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={min_isr}
share.coordinator.state.topic.num.partitions=1
# A killed node is fenced (its leaderships moved) after 4 s without heartbeats, not 9 s.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=4000
"
    )
}

/// Kafka's `Utils.abs(key.hashCode) % partitions`, with Java's `String.hashCode` (UTF-16
/// code units, `h = 31 * h + c`, wrapping).
fn coordinator_partition(key: &str, partitions: i32) -> i32 {
    let hash = key
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    // Kafka's Utils.abs maps i32::MIN to 0 rather than overflowing.
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions
}

/// What `path` holds after byte `from` (empty if it cannot be read).
fn log_since(path: &Path, from: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path)
        && file.seek(SeekFrom::Start(from)).is_ok()
    {
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_ok() {
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::coordinator_partition;

    /// Hashes printed by a JVM (`jshell`: `"…".hashCode()`), through Kafka's rule.
    #[test]
    fn coordinator_partition_matches_java() {
        assert_eq!(coordinator_partition("", 50), 0);
        assert_eq!(coordinator_partition("hello", 50), 99_162_322 % 50);
        assert_eq!(
            coordinator_partition("aggregator-tx-0", 50),
            1_291_640_491 % 50
        );
        // Negative: -755790633.
        assert_eq!(
            coordinator_partition("trends-tx-\u{e9}", 50),
            755_790_633 % 50
        );
        // Outside the BMP, two UTF-16 units: 1888219.
        assert_eq!(coordinator_partition("x\u{1F600}", 50), 1_888_219 % 50);
        // Integer.MIN_VALUE, which Kafka's Utils.abs maps to 0.
        assert_eq!(coordinator_partition("polygenelubricants", 50), 0);
    }
}
