"""The Spark peer's benchmark: our aggregator and the Spark job on one broker and one input.

Run by `scripts/bench-pipeline.sh` after the Rust harness (`pipeline_bench`), or alone:

    bench/spark/run-bench.sh                       # what the script runs
    BENCH_POSTS=200000 BENCH_RUNS=1 BENCH_SECONDS=30 bench/spark/run-bench.sh   # a short run

Not a test: it prints figures (one line per measurement, then a Markdown summary) and decides
nothing by time. Everything is real and on this machine: a Kafka broker started as
`crates/test-support` starts one (Apache Kafka from scripts/kafka-jars.sh, KRaft, one node,
loopback, -Xmx512m), the release `tweet-producer` and `hashtag-aggregator`, and the Spark job
(`trends_spark.py`, local[2]) as processes. Phases (`BENCH_PHASES`, default
`throughput,latency`):

- `throughput`: `tweet-producer`'s synthetic source fills a 12-partition topic with
  `BENCH_POSTS` posts (vocabulary `BENCH_VOCABULARY`), as in the Rust harness; then, `BENCH_RUNS`
  times, back to back on that topic: our aggregator (1 instance, commit 1 s, exactly once) and
  the Spark job (micro-batches of at most `BENCH_SPARK_BATCH` records). Ours is measured from its
  group's committed offsets, as the harness does; Spark commits no offsets to Kafka, so it is
  measured from its checkpoint: a batch is done when `commits/<n>` exists (its output
  written), and it covered the input up to the end offsets in `offsets/<n>`. Done means every
  partition is past its last record (not its end offset: the transactional producer leaves a
  commit marker at the end, which our committed offsets do not pass). Both sampled every
  100 ms: *sustained* = records done between the first sample with any and the last / the time
  between; *wall* = from process start until all done. Peak RSS: ours the process' VmHWM,
  Spark's the largest sampled sum of PSS over its process tree (driver, JVM, Python workers;
  PSS so that pages the forked workers share count once).
  Afterwards the counts of the last runs are compared key by key: the all-time count of every
  tag and the count of every (5-minute window, tag), ours summed over the counts topic's
  partitions.
- `latency`: at `BENCH_RATE` posts/s (10,000) for `BENCH_SECONDS` (60), 10 probes a second each
  carry a unique tag; the time from handing a probe to the producer to seeing its all-time count
  in the output topic (`read_committed`), first 5 s discarded, as in the harness. Ours with
  commit interval 100 ms; Spark with the next micro-batch started as soon as one ends (its
  lowest latency). Before the load, each consumes 1,000 warm-up posts (Spark's first batch
  starts its Python workers: 15-20 s that a long-running job does not pay again).

Environment: BENCH_PHASES, BENCH_POSTS (2000000), BENCH_RUNS (3), BENCH_VOCABULARY (10000),
BENCH_RATE (10000), BENCH_SECONDS (60), BENCH_SPARK_BATCH (BENCH_POSTS / 10), BENCH_BOOTSTRAP
(use a running broker instead of starting one), BENCH_INPUT (with it, a topic already filled
with posts: the throughput phase reads it instead of producing one, and does not delete it),
BENCH_LOG_DIR (every process' output; target/bench/spark-logs, emptied at start), BENCH_BIN_DIR
(the release binaries; default $CARGO_TARGET_DIR/release or target/release), SPARK_DIR
(bench/spark/setup.sh's directory).
"""

import base64
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from typing import ClassVar

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PARTITIONS = 12
POLL = 0.1
# Every process' output, kept after the run (emptied at the start of the next one).
LOG_DIR = os.environ.get("BENCH_LOG_DIR", os.path.join(ROOT, "target", "bench", "spark-logs"))


def env_number(name, default):
    try:
        return int(os.environ.get(name, "").replace("_", ""))
    except ValueError:
        return default


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the child gets SIGKILL when this process dies, however it dies.
    # Runs between fork and exec: two system calls, no lock taken (libc was loaded before).
    _LIBC.prctl(1, signal.SIGKILL)


class Process:
    """A child process in its own process group, killed (the group) with this driver."""

    all: ClassVar[list] = []

    def __init__(self, args, env=None, log=None, cwd=ROOT):
        if log is None:
            name = os.path.basename(args[-1] if args[0].endswith("python") else args[0])
            fd, log = tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=LOG_DIR)
            os.close(fd)
        self.log_path = log
        self.log = open(self.log_path, "wb")  # noqa: SIM115 (closed by terminate)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.started = time.monotonic()
        self.popen = subprocess.Popen(args, env=full_env, cwd=cwd, stdin=subprocess.DEVNULL,
                                      stdout=self.log, stderr=subprocess.STDOUT,
                                      start_new_session=True,
                                      preexec_fn=_die_with_parent)  # noqa: PLW1509
        Process.all.append(self)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def tail(self, n=30):
        return "\n".join(self.text().splitlines()[-n:])

    def terminate(self, timeout=60):
        """SIGTERM, wait up to `timeout`, then SIGKILL the whole group."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait()
        self.log.close()
        if self in Process.all:
            Process.all.remove(self)
        return self.popen.returncode


def kill_all():
    for p in list(Process.all):
        p.terminate(timeout=10)


def wait_for(what, timeout, check):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL)


# -------------------------------------------------------------------------------------------
# Broker, as crates/test-support/src/broker.rs starts it
# -------------------------------------------------------------------------------------------

SERVER_PROPERTIES = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={dir}/data
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
auto.create.topics.enable=false
num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
background.threads=2
log.cleaner.dedupe.buffer.size=16777216
"""

LOG4J = """status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
"""


def start_broker(work):
    jars = subprocess.run([os.path.join(ROOT, "scripts/kafka-jars.sh")], check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port, cport = free_port(), free_port()
    with open(os.path.join(work, "server.properties"), "w") as f:
        f.write(SERVER_PROPERTIES.format(port=port, cport=cport, dir=work))
    with open(os.path.join(work, "log4j2.properties"), "w") as f:
        f.write(LOG4J)
    java = ["java", f"-Dlog4j2.configurationFile={work}/log4j2.properties", "-XX:+UseSerialGC",
            "-cp", f"{jars}/*"]
    cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    # `--cluster-id=…`: a random id may start with `-`, which a separate argument would not allow.
    subprocess.run(java + ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster}", "-c",
                           f"{work}/server.properties"], check=True, capture_output=True)
    broker = Process(java[:1] + ["-Xms256m", "-Xmx512m"] + java[1:]
                     + ["kafka.Kafka", f"{work}/server.properties"],
                     log=os.path.join(work, "broker.log"))
    wait_for("the broker", 120,
             lambda: "Kafka Server started" in broker.text() or not broker.alive())
    if not broker.alive():
        raise RuntimeError("the broker exited:\n" + broker.tail())
    return broker, f"127.0.0.1:{port}"


# -------------------------------------------------------------------------------------------
# Kafka helpers
# -------------------------------------------------------------------------------------------

class Kafka:
    def __init__(self, bootstrap):
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})

    def create_topic(self, name, compacted=False):
        config = {"cleanup.policy": "compact"} if compacted else {}
        for future in self.admin.create_topics(
                [NewTopic(name, PARTITIONS, 1, config=config)]).values():
            future.result(30)

    def delete_topics(self, names):
        try:
            for future in self.admin.delete_topics(list(names)).values():
                future.result(30)
        except Exception as e:  # noqa: BLE001 (a leftover topic costs only disk)
            print(f"delete {names}: {e}", file=sys.stderr)

    def consumer(self, **extra):
        config = {"bootstrap.servers": self.bootstrap, "group.id": unique("spark-bench"),
                  "enable.auto.commit": False, "isolation.level": "read_committed"}
        config.update(extra)
        return Consumer(config)

    def end_offsets(self, topic):
        """Per partition, the last stable offset (read_committed), as the harness reads it."""
        c = self.consumer()
        try:
            return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in range(PARTITIONS)]
        finally:
            c.close()

    def committed(self, group, topic):
        """`group`'s committed offset of each partition of `topic` (0 where none)."""
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group,
                      "enable.auto.commit": False})
        try:
            parts = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)],
                                timeout=10)
            return [max(tp.offset, 0) for tp in sorted(parts, key=lambda tp: tp.partition)]
        finally:
            c.close()

    def record_ends(self, topic):
        """Per partition, the offset after its last record. A transactionally written topic
        ends with commit markers, which a consumer's committed offset need not pass (ours
        stops right after the last record): its end offsets are not reached."""
        ends = self.end_offsets(topic)
        c = self.consumer(**{"enable.partition.eof": True})
        # Each marker follows at least one record of its partition: the last 64 offsets hold
        # a record.
        c.assign([TopicPartition(topic, p, max(e - 64, 0)) for p, e in enumerate(ends)])
        last = [0] * PARTITIONS
        done = {p for p, e in enumerate(ends) if e == 0}
        deadline = time.monotonic() + 60
        try:
            while len(done) < PARTITIONS and time.monotonic() < deadline:
                for m in c.consume(1000, 0.5):
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF:
                            done.add(m.partition())
                        continue
                    last[m.partition()] = max(last[m.partition()], m.offset() + 1)
        finally:
            c.close()
        if len(done) < PARTITIONS:
            raise RuntimeError(f"could not read the end of {topic}")
        return last

    def read_latest(self, topic, timeout=600):
        """The latest value of every key of `topic` (None for a tombstone), read to its end."""
        c = self.consumer(**{"enable.partition.eof": True})
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        ends = self.end_offsets(topic)
        done = {p for p, e in enumerate(ends) if e == 0}
        latest = {}
        deadline = time.monotonic() + timeout
        try:
            while len(done) < PARTITIONS:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"reading {topic} took over {timeout} s")
                for m in c.consume(10000, 0.5):
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF:
                            done.add(m.partition())
                            continue
                        raise RuntimeError(str(m.error()))
                    latest[m.key().decode("utf-8")] = m.value()
        finally:
            c.close()
        return latest


def memory_mib(pid):
    """(VmRSS, VmHWM) of `pid` in MiB, or (0, 0) if it is gone."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) / 1024
    except (OSError, ValueError):
        pass
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def process_tree(root):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def pss_mib(pid):
    """Proportional set size of `pid` in MiB: its resident pages, each shared page divided
    among the processes sharing it (pyspark's Python workers are forked from one daemon, so
    their RSS would count the shared pages once per worker)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return memory_mib(pid)[0]


def tree_pss_mib(root):
    return sum(pss_mib(pid) for pid in process_tree(root))


def median(values):
    values = sorted(values)
    n = len(values)
    if n == 0:
        return float("nan")
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    rank = -(-p * len(sorted_values) // 100)
    return sorted_values[min(max(int(rank), 1), len(sorted_values)) - 1]


# -------------------------------------------------------------------------------------------
# The two consumers
# -------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, kafka):
        self.kafka = kafka
        self.posts = env_number("BENCH_POSTS", 2_000_000)
        self.runs = env_number("BENCH_RUNS", 3)
        self.vocabulary = env_number("BENCH_VOCABULARY", 10_000)
        # A tenth of the input: 10 micro-batches a run, so that "sustained" (first batch done
        # to last) spans 9 of them.
        self.spark_batch = env_number("BENCH_SPARK_BATCH", max(self.posts // 10, 1))
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        self.bin_dir = os.environ.get("BENCH_BIN_DIR", os.path.join(target, "release"))
        self.spark_dir = os.environ["SPARK_DIR"]
        self.summary = {}
        self.failures = []

    def section(self, name, row):
        self.summary.setdefault(name, []).append(row)

    def binary(self, name):
        return os.path.join(self.bin_dir, name)

    def aggregator(self, tweets, counts, group, commit_ms):
        metrics = f"127.0.0.1:{free_port()}"
        env = {
            "TRENDS__KAFKA__BOOTSTRAP_SERVERS": self.kafka.bootstrap,
            "TRENDS__TOPICS__TWEETS": tweets,
            "TRENDS__TOPICS__COUNTS": counts,
            "TRENDS__TOPICS__DLQ": f"{counts}-dlq",
            "TRENDS__AGGREGATOR__GROUP_ID": group,
            "TRENDS__AGGREGATOR__INSTANCE_ID": "spark-bench",
            "TRENDS__AGGREGATOR__COMMIT_INTERVAL_MS": str(commit_ms),
            "TRENDS__AGGREGATOR__METRICS_ADDR": metrics,
            "TRENDS__LOG__FILTER": "warn",
        }
        return Process([self.binary("hashtag-aggregator")], env), f"http://{metrics}/metrics"

    def spark(self, tweets, output, checkpoint, max_offsets, trigger_ms):
        env = {
            "BOOTSTRAP_SERVERS": self.kafka.bootstrap,
            "INPUT_TOPIC": tweets,
            "OUTPUT_TOPIC": output,
            "CHECKPOINT_DIR": checkpoint,
            "MAX_OFFSETS_PER_TRIGGER": str(max_offsets),
            "TRIGGER_MS": str(trigger_ms),
            "SPARK_JARS_DIR": os.path.join(self.spark_dir, "jars"),
        }
        python = os.path.join(self.spark_dir, "venv", "bin", "python")
        return Process([python, os.path.join(HERE, "trends_spark.py")], env)

    def produce_input(self):
        given = os.environ.get("BENCH_INPUT")
        if given:  # a topic filled already (e.g. by the Rust harness, on BENCH_BOOTSTRAP)
            self.posts = sum(self.kafka.record_ends(given))
            return given
        topic = unique("spark-bench-posts")
        self.kafka.create_topic(topic)
        env = {
            "TRENDS__KAFKA__BOOTSTRAP_SERVERS": self.kafka.bootstrap,
            "TRENDS__TOPICS__TWEETS": topic,
            "TRENDS__SOURCE__SYNTHETIC__RATE": "0",
            "TRENDS__SOURCE__SYNTHETIC__LIMIT": str(self.posts),
            "TRENDS__SOURCE__SYNTHETIC__VOCABULARY": str(self.vocabulary),
            "TRENDS__PRODUCER__METRICS_ADDR": f"127.0.0.1:{free_port()}",
            "TRENDS__LOG__FILTER": "warn",
        }
        started = time.monotonic()
        producer = Process([self.binary("tweet-producer")], env)
        status = producer.popen.wait(3600)
        seconds = time.monotonic() - started
        if status != 0:
            raise RuntimeError("tweet-producer failed:\n" + producer.tail())
        producer.terminate()
        print(f"input: {self.posts} posts in {topic} in {seconds:.1f} s", flush=True)
        return topic

    def measure(self, progress, ends, started, pids, alive, tree=False):
        """Samples `progress()` (an offset per partition) every 100 ms until every partition
        reached `ends` (after its last record); returns (sustained records/s, wall s, peak RSS
        MiB)."""
        total = sum(ends)
        first = None
        peak = 0.0
        while True:
            try:
                done = sum(min(o, e) for o, e in zip(progress(), ends))
            except Exception as e:  # a fresh group's coordinator may still be loading
                if time.monotonic() - started > 120:
                    raise
                print(f"progress: {e} (retrying)", file=sys.stderr)
                time.sleep(POLL)
                continue
            now = time.monotonic()
            for pid in pids:
                peak = max(peak, tree_pss_mib(pid) if tree else memory_mib(pid)[1])
            if done > 0 and first is None:
                first = (now, done)
            if done >= total:
                t0, c0 = first if first else (started, 0)
                if c0 >= total:  # one sample saw all of it (one batch): no span to measure
                    t0, c0 = started, 0
                span = max(now - t0, POLL)
                return (total - c0) / span, now - started, peak
            if not alive():
                raise RuntimeError(f"the consumer exited with {done} of {total} done")
            if now - started > 3600:
                raise RuntimeError(f"not done within an hour ({done} of {total})")
            time.sleep(POLL)

    def ours_run(self, topic):
        group, counts = unique("spark-bench-agg"), unique("spark-bench-counts")
        ends = self.kafka.record_ends(topic)
        started = time.monotonic()
        agg, _ = self.aggregator(topic, counts, group, 1000)
        try:
            result = self.measure(lambda: self.kafka.committed(group, topic), ends, started,
                                  [agg.pid], agg.alive)
        except Exception as e:
            raise RuntimeError(f"{e}\n{agg.tail()}") from e
        agg.terminate()
        return result, counts

    def spark_run(self, topic):
        output = unique("spark-bench-out")
        self.kafka.create_topic(output, compacted=True)
        checkpoint = tempfile.mkdtemp(prefix="spark-bench-checkpoint-")
        ends = self.kafka.record_ends(topic)
        started = time.monotonic()
        job = self.spark(topic, output, checkpoint, self.spark_batch, 0)
        try:
            result = self.measure(lambda: checkpoint_done(checkpoint, topic), ends, started,
                                  [job.pid], job.alive, tree=True)
        except Exception as e:
            raise RuntimeError(f"{e}\n{job.tail()}") from e
        batches = job.text().count("spark: batch ")
        job.terminate()
        shutil.rmtree(checkpoint, ignore_errors=True)
        return result, output, batches


def checkpoint_done(checkpoint, topic):
    """Per partition of `topic`, the offset up to which Spark's micro-batches are committed
    (their output written): the end offsets of the last batch with a `commits/<n>` file."""
    none = [0] * PARTITIONS
    try:
        batches = [int(f) for f in os.listdir(os.path.join(checkpoint, "commits"))
                   if f.isdigit()]
    except FileNotFoundError:
        return none
    if not batches:
        return none
    with open(os.path.join(checkpoint, "offsets", str(max(batches)))) as f:
        lines = f.read().splitlines()
    # "v1", the batch's metadata, then one line per source: {"topic":{"0":n,...}}.
    for line in lines[2:]:
        offsets = json.loads(line)
        if topic in offsets:
            return [offsets[topic].get(str(p), 0) for p in range(PARTITIONS)]
    return none


# -------------------------------------------------------------------------------------------
# Counts: ours (summed over partitions) and Spark's
# -------------------------------------------------------------------------------------------

def ours_counts(kafka, topic):
    """({tag: all-time}, {(window start, tag): count}, largest stated error) from our counts
    topic, whose keys are `{p}|a|{tag}` and `{p}|c|{start_ms}|{tag}` (counts_record.rs)."""
    total, coarse, max_error = {}, {}, 0
    for key, value in kafka.read_latest(topic).items():
        if value is None:
            continue
        parts = key.split("|", 2)
        if len(parts) < 3 or parts[1] not in ("a", "c"):
            continue
        record = json.loads(value)
        max_error = max(max_error, record.get("error", 0) or 0)
        if parts[1] == "a":
            total[parts[2]] = total.get(parts[2], 0) + record["count"]
        else:
            start, _, tag = parts[2].partition("|")
            k = (int(start), tag)
            coarse[k] = coarse.get(k, 0) + record["count"]
    return total, coarse, max_error


def spark_counts(kafka, topic):
    total, coarse = {}, {}
    for key, value in kafka.read_latest(topic).items():
        if value is None:
            continue
        count = json.loads(value)["count"]
        if key.startswith("a|"):
            total[key[2:]] = count
        elif key.startswith("c|"):
            start, _, tag = key[2:].partition("|")
            coarse[(int(start), tag)] = count
    return total, coarse


def compare(name, ours, theirs):
    keys = set(ours) | set(theirs)
    differing = sorted(k for k in keys if ours.get(k) != theirs.get(k))
    line = (f"{name}: ours {len(ours)} keys ({sum(ours.values())} counted), Spark "
            f"{len(theirs)} keys ({sum(theirs.values())} counted); {len(differing)} differ")
    if differing:
        line += ", e.g. " + ", ".join(
            f"{k!r}: ours {ours.get(k)} Spark {theirs.get(k)}" for k in differing[:5])
    return line, not differing


# -------------------------------------------------------------------------------------------
# Phases
# -------------------------------------------------------------------------------------------

def throughput_phase(bench):
    topic = bench.produce_input()
    results = {"ours ×1": [], "Spark": []}
    batches = []
    last_ours = last_spark = None
    for run in range(bench.runs):
        r, counts = bench.ours_run(topic)
        print(f"aggregator ×1 run {run + 1}: sustained {r[0]:.0f} posts/s, all committed after "
              f"{r[1]:.1f} s, peak RSS {r[2]:.0f} MiB", flush=True)
        results["ours ×1"].append(r)
        if last_ours:
            bench.kafka.delete_topics([last_ours, f"{last_ours}-dlq"])
        last_ours = counts
        r, output, n = bench.spark_run(topic)
        print(f"spark run {run + 1}: sustained {r[0]:.0f} posts/s, all committed after "
              f"{r[1]:.1f} s ({n} micro-batches), peak {r[2]:.0f} MiB (PSS of the process tree)",
              flush=True)
        results["Spark"].append(r)
        batches.append(n)
        if last_spark:
            bench.kafka.delete_topics([last_spark])
        last_spark = output
    medians = {}
    for name, runs in results.items():
        s, w, p = (median([r[i] for r in runs]) for i in range(3))
        medians[name] = s
        bench.section("throughput",
                      f"| {name} | {s:,.0f} posts/s | {w:.1f} s | {bench.posts / w:,.0f} posts/s "
                      f"| {p:,.0f} MiB | {' · '.join(f'{r[0]:,.0f}' for r in runs)} |")
    ratio = medians["ours ×1"] / medians["Spark"]
    print(f"throughput ratio ours ×1 / Spark = {ratio:.2f}", flush=True)
    bench.section("ratios", f"| throughput (sustained), ours ×1 / Spark | {ratio:.2f} |")
    bench.section("notes", f"Spark micro-batches per run (at most {bench.spark_batch:,} "
                           f"records each): {', '.join(map(str, batches))}")

    ours_total, ours_coarse, max_error = ours_counts(bench.kafka, last_ours)
    spark_total, spark_coarse = spark_counts(bench.kafka, last_spark)
    for name, a, b in [("all-time counts", ours_total, spark_total),
                       ("5-minute window counts", ours_coarse, spark_coarse)]:
        line, equal = compare(name, a, b)
        print("cross-check " + line, flush=True)
        bench.section("cross-check", ("equal: " if equal else "DIFFER: ") + line)
        if not equal:
            bench.failures.append(f"cross-check: {name} differ")
    if max_error:
        bench.section("cross-check", f"ours stated an estimate error of up to {max_error}")
    bench.kafka.delete_topics([last_ours, f"{last_ours}-dlq", last_spark]
                              + ([] if os.environ.get("BENCH_INPUT") else [topic]))


class Watcher:
    """Follows `topic` (read_committed) and records when each probe tag's key first appears."""

    def __init__(self, kafka, topic, tag_of):
        self.seen = {}
        self.stop = threading.Event()
        self.consumer = kafka.consumer(**{"fetch.wait.max.ms": 10})
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        self.tag_of = tag_of
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            for m in self.consumer.consume(1000, 0.02):
                if m.error() or m.key() is None:
                    continue
                tag = self.tag_of(m.key().decode("utf-8", "replace"))
                if tag and tag.startswith("zprobe") and tag not in self.seen:
                    self.seen[tag] = time.monotonic()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.consumer.close()


def probe_tag(k):
    return f"zprobe{k // 10:05d}x{k}"


def offer_load(kafka, topic, rate, seconds, vocabulary):
    """`rate` posts/s for `seconds` into `topic`, 10 probes a second; returns
    [(probe tag, send time)]."""
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True,
                         "linger.ms": 5, "compression.type": "lz4"})
    rng = random.Random(11)
    started = time.monotonic()
    sent, total, probes = 0, rate * seconds, []
    every = max(rate // 10, 1)
    while sent < total:
        due = min(int((time.monotonic() - started) * rate), total)
        while sent < due:
            now_ms = int(time.time() * 1000)
            created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms // 1000)) + \
                f".{now_ms % 1000:03d}Z"
            if sent % every == 0:
                tag = probe_tag(len(probes))
                text = f"probe #{tag}"
            else:
                tag = None
                text = (f"load post #tag{rng.randrange(vocabulary)} and "
                        f"#tag{rng.randrange(vocabulary)}")
            key = f"load-{sent}"
            value = json.dumps({"id": key, "text": text, "created_at": created})
            while True:
                try:
                    producer.produce(topic, value.encode(), key.encode(), timestamp=now_ms)
                    break
                except BufferError:
                    producer.poll(0.01)
            if tag:
                probes.append((tag, time.monotonic()))
            sent += 1
        producer.poll(0)
        time.sleep(0.005)
    if producer.flush(30) != 0:
        raise RuntimeError("the load producer could not deliver everything")
    return probes


def warm_up(kafka, topic, posts, done):
    """Produces `posts` ordinary posts to `topic` and waits until `done()` (records processed
    of `topic`) reaches them: start-up costs (Spark's first micro-batch starts the Python
    workers and warms the JIT: 15-20 s here) are not latency a running job has."""
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    now_ms = int(time.time() * 1000)
    created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms // 1000)) + ".000Z"
    for i in range(posts):
        producer.produce(topic, json.dumps({"id": f"warm-{i}", "text": f"warm up #warm{i % 7}",
                                            "created_at": created}).encode(), f"warm-{i}")
    producer.flush(30)
    wait_for("the warm-up posts to be processed", 300, lambda: done() >= posts)


def latency_figures(probes, seen, skip=5.0):
    first = probes[0][1] if probes else 0
    ms, missing = [], 0
    for tag, sent in probes:
        if sent - first < skip:
            continue
        if tag in seen:
            ms.append((seen[tag] - sent) * 1000)
        else:
            missing += 1
    return sorted(ms), missing


def latency_row(name, ms, missing):
    return (f"| {name} | {percentile(ms, 50):,.0f} ms | {percentile(ms, 95):,.0f} ms | "
            f"{percentile(ms, 99):,.0f} ms | {ms[-1] if ms else float('nan'):,.0f} ms | "
            f"{len(ms) + missing} |")


def wait_seen(watcher, probes, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(t in watcher.seen for t, _ in probes):
        time.sleep(POLL)


def latency_phase(bench):
    rate = env_number("BENCH_RATE", 10_000)
    seconds = env_number("BENCH_SECONDS", 60)
    p99 = {}

    # Ours: aggregator, commit interval 100 ms, seen in the counts topic.
    topic, counts = unique("spark-bench-lat"), unique("spark-bench-lat-counts")
    bench.kafka.create_topic(topic)
    agg_group = unique("spark-bench-lat-agg")
    agg, metrics = bench.aggregator(topic, counts, agg_group, 100)

    def owns_all():
        try:
            text = urllib.request.urlopen(metrics, timeout=2).read().decode()
        except OSError:
            return False
        return any(line.startswith("trends_aggregator_assigned_partitions ")
                   and float(line.split()[1]) == PARTITIONS for line in text.splitlines())

    wait_for("the aggregator to own every partition", 60, owns_all)
    wait_for("the counts topic", 60, lambda: counts in bench.kafka.admin.list_topics(
        timeout=10).topics)
    warm_up(bench.kafka, topic, 1000, lambda: sum(bench.kafka.committed(agg_group, topic)))
    watcher = Watcher(bench.kafka, counts,
                      lambda k: k.split("|", 2)[2] if k.split("|")[1:2] == ["a"] else None)
    probes = offer_load(bench.kafka, topic, rate, seconds, bench.vocabulary)
    wait_seen(watcher, probes, 30)
    watcher.close()
    ms, missing = latency_figures(probes, watcher.seen)
    p99["ours"] = percentile(ms, 99)
    print(f"latency ours at {rate}/s: counts topic p50 {percentile(ms, 50):.0f} p99 "
          f"{p99['ours']:.0f} ms ({missing} missing)", flush=True)
    if not agg.alive():
        raise RuntimeError("the aggregator died:\n" + agg.tail())
    agg.terminate()
    bench.section("latency", latency_row("ours: produce → counts topic (commit 100 ms)", ms,
                                         missing))
    bench.kafka.delete_topics([topic, counts, f"{counts}-dlq"])

    # Spark on its own fresh input.
    topic, output = unique("spark-bench-lat-sp"), unique("spark-bench-lat-sp-out")
    bench.kafka.create_topic(topic)
    bench.kafka.create_topic(output, compacted=True)
    checkpoint = tempfile.mkdtemp(prefix="spark-bench-checkpoint-")
    job = bench.spark(topic, output, checkpoint, 0, 0)
    wait_for("the Spark job to run", 120,
             lambda: "spark: running" in job.text() or not job.alive())
    if not job.alive():
        raise RuntimeError("the Spark job exited:\n" + job.tail())
    warm_up(bench.kafka, topic, 1000, lambda: sum(checkpoint_done(checkpoint, topic)))
    watcher = Watcher(bench.kafka, output, lambda k: k[2:] if k.startswith("a|") else None)
    probes = offer_load(bench.kafka, topic, rate, seconds, bench.vocabulary)
    wait_seen(watcher, probes, 60)
    watcher.close()
    ms, missing = latency_figures(probes, watcher.seen)
    p99["spark"] = percentile(ms, 99)
    print(f"latency spark at {rate}/s: output topic p50 {percentile(ms, 50):.0f} p99 "
          f"{p99['spark']:.0f} ms ({missing} missing)", flush=True)
    if not job.alive():
        raise RuntimeError("the Spark job died:\n" + job.tail())
    bench.section("notes", f"Spark micro-batches during the latency run: "
                           f"{job.text().count('spark: batch ')}")
    job.terminate()
    shutil.rmtree(checkpoint, ignore_errors=True)
    bench.section("latency", latency_row("Spark: produce → output topic (next batch at once)",
                                         ms, missing))
    bench.section("ratios", f"| p99 latency to the output topic, Spark / ours | "
                            f"{p99['spark'] / p99['ours']:.2f} |")
    bench.kafka.delete_topics([topic, output])


def print_summary(bench, phases):
    print(f"\n## Spark peer summary ({bench.runs} runs, medians; phases {','.join(phases)})")

    def table(name, header):
        if name in bench.summary:
            print("\n" + header if header else "")
            for row in bench.summary[name]:
                print(row)

    table("throughput", f"| consumer ({bench.posts:,} posts, same broker and topic) | sustained "
                        "| all done after | posts / wall | peak memory | runs (sustained) |\n"
                        "|---|---|---|---|---|---|")
    table("cross-check", "")
    table("latency", "| path | p50 | p95 | p99 | max | probes |\n|---|---|---|---|---|---|")
    table("ratios", "| ratio | value |\n|---|---|")
    table("notes", "")


def main():
    phases = [p.strip() for p in os.environ.get("BENCH_PHASES", "throughput,latency").split(",")
              if p.strip() in ("throughput", "latency")]
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    os.makedirs(LOG_DIR)
    work = tempfile.mkdtemp(prefix="spark-bench-broker-")
    try:
        bootstrap = os.environ.get("BENCH_BOOTSTRAP")
        if not bootstrap:
            _, bootstrap = start_broker(work)
        bench = Bench(Kafka(bootstrap))
        print(f"spark peer benchmark: {bench.posts} posts, vocabulary {bench.vocabulary}, "
              f"{bench.runs} runs, {PARTITIONS} partitions, phases {phases}, broker {bootstrap}, "
              f"process logs in {LOG_DIR}", flush=True)
        if "throughput" in phases:
            throughput_phase(bench)
        if "latency" in phases:
            latency_phase(bench)
        print_summary(bench, phases)
        for failure in bench.failures:
            print(f"FAILED: {failure}", file=sys.stderr)
        return 1 if bench.failures else 0
    finally:
        kill_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
