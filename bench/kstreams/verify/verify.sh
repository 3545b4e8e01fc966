#!/usr/bin/env bash
# End-to-end check of the Kafka Streams reference app against a real Kafka 4.3.1 broker
# (KRaft, one node, loopback; same server.properties as crates/test-support/src/broker.rs).
#   bench/kstreams/verify/verify.sh      (from anywhere; builds the jar first if missing)
# Phase 1: produce batch 0, start the app, check the output. SIGTERM the app.
# Phase 2: produce batch 1 (overlapping windows) while it is down, restart it with a fresh
# state dir (so it restores its stores from the changelogs) and 2 stream threads, check the
# cumulative counts. Phase 3: a missing input topic must make the app exit with status 1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
jar="$root/bench/kstreams/target/trends-kstreams.jar"
[[ -f "$jar" ]] || (cd "$root" && mvn -B -q -f bench/kstreams/pom.xml package -DskipTests)
jars="$("$root/scripts/kafka-jars.sh" | tail -n1)"
work="$(mktemp -d /tmp/kstreams-verify-XXXXXX)"
broker_pid="" app_pid=""
cleanup() {
    [[ -n "$app_pid" ]] && kill "$app_pid" 2>/dev/null || true
    [[ -n "$broker_pid" ]] && kill -9 "$broker_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
verify() { java -cp "$jars/*" "$here/Verify.java" "$@"; }

read -r port cport < <(python3 -c 'import socket
a=socket.socket(); a.bind(("127.0.0.1",0)); b=socket.socket(); b.bind(("127.0.0.1",0))
print(a.getsockname()[1], b.getsockname()[1])')
bootstrap="127.0.0.1:$port"
cat >"$work/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$work/data
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
PROPS
cat >"$work/log4j2.properties" <<'PROPS'
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = info
PROPS
kjava() { java "-Dlog4j2.configurationFile=$work/log4j2.properties" -XX:+UseSerialGC -cp "$jars/*" "$@"; }
cluster_id="$(python3 -c 'import base64,uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
kjava kafka.tools.StorageTool format -t "$cluster_id" -c "$work/server.properties" >/dev/null
kjava -Xms256m -Xmx512m kafka.Kafka "$work/server.properties" >"$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 120); do grep -q "Kafka Server started" "$work/broker.log" && break; sleep 0.5; done
grep -q "Kafka Server started" "$work/broker.log" || { cat "$work/broker.log"; exit 1; }
echo "broker up at $bootstrap (pid $broker_pid)"

verify setup "$bootstrap" posts trends

start_app() { # extra env assignments as arguments
    env "$@" BOOTSTRAP_SERVERS="$bootstrap" INPUT_TOPIC=posts OUTPUT_TOPIC=trends APPLICATION_ID=trends-kstreams-verify \
        java -Xmx512m -jar "$jar" >>"$work/app.out" 2>>"$work/app.err" &
    app_pid=$!
    for _ in $(seq 240); do grep -q "kstreams: running" "$work/app.out" && break; sleep 0.5; done
    grep -q "kstreams: running" "$work/app.out" || { cat "$work/app.err"; exit 1; }
    echo "$(date +%T) app running (pid $app_pid); stdout: $(tr '\n' ' ' <"$work/app.out")"
}
stop_app() {
    kill -TERM "$app_pid"
    local rc=0; wait "$app_pid" || rc=$?
    echo "$(date +%T) app stopped by SIGTERM, exit status $rc"; app_pid=""
}

echo "== phase 1"
verify produce "$bootstrap" posts 0
start_app
verify check "$bootstrap" trends 1 120; echo "$(date +%T) check done"
stop_app
echo "== phase 2"
verify produce "$bootstrap" posts 1
start_app NUM_STREAM_THREADS=2 STATE_DIR="$work/state"
verify check "$bootstrap" trends 2 120; echo "$(date +%T) check done"
stop_app
echo "== phase 3: fatal error (input topic missing) must exit 1"
rc=0; BOOTSTRAP_SERVERS="$bootstrap" INPUT_TOPIC=missing OUTPUT_TOPIC=trends APPLICATION_ID=trends-kstreams-missing \
    timeout 120 java -Xmx512m -jar "$jar" >"$work/fatal.out" 2>"$work/fatal.err" || rc=$?
echo "exit status $rc; $(grep -m1 -o 'kstreams: fatal error.*' "$work/fatal.err" || true)"
grep -m1 -E '^[a-zA-Z.]*(Exception|Error)' "$work/fatal.err" || true
echo "== topics"; verify topics "$bootstrap"
echo "== app stderr (WARN and above):"; grep -c "skipped malformed" "$work/app.err" | sed 's/^/malformed-record log lines: /'
grep -v "skipped malformed" "$work/app.err" | head -20 || true
grep "skipped malformed" "$work/app.err" | tail -n 2 || true
