#!/usr/bin/env bash
# The whole-pipeline benchmark (issue 7): producer, aggregator (1 and 2 instances) and the
# Kafka Streams reference app (bench/kstreams) on the same broker and input, end-to-end
# latency at a fixed load, memory vs distinct tags. Prints figures and a Markdown summary;
# not a test (it takes about 40 minutes with the defaults). See BENCHMARKS.md.
#
#   ./scripts/bench-pipeline.sh
#   BENCH_PHASES=throughput BENCH_POSTS=500000 BENCH_RUNS=1 ./scripts/bench-pipeline.sh
#
# Variables: BENCH_PHASES (producer,throughput,latency,memory), BENCH_POSTS (2000000),
# BENCH_RUNS (3), BENCH_VOCABULARY (10000), BENCH_RATE (10000), BENCH_SECONDS (60),
# BENCH_MEMORY_TAGS (10000,100000,1000000).
# Needs what scripts/test.sh needs (JDK 17+, Maven, Maven Central on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/kafka-jars.sh >/dev/null
cargo build --release --locked --workspace --bins
cargo build --release --locked -p bench-drivers --bin pipeline_bench
mvn -B -q -f bench/kstreams/pom.xml package -DskipTests
# A copy: rebuilding the jar while a JVM runs it would pull it from under that JVM.
mkdir -p target/bench
cp bench/kstreams/target/trends-kstreams.jar target/bench/trends-kstreams.jar
exec target/release/pipeline_bench
