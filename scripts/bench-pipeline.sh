#!/usr/bin/env bash
# The whole-pipeline benchmark (issue 7): producer, aggregator (1 and 2 instances) and the
# Kafka Streams reference app (bench/kstreams) on the same broker and input, end-to-end
# latency at a fixed load, memory vs distinct tags; then the Spark Structured Streaming peer
# (bench/spark: our aggregator and the Spark job back to back on the harness's broker and
# input, throughput, latency and a count cross-check). Prints figures and Markdown summaries;
# not a test (about 30 minutes with the defaults, the Spark peer included: 29 on 2026-12-03).
# See BENCHMARKS.md.
#
#   ./scripts/bench-pipeline.sh
#   BENCH_PHASES=throughput BENCH_POSTS=500000 BENCH_RUNS=1 ./scripts/bench-pipeline.sh
#   BENCH_SPARK=only BENCH_POSTS=200000 BENCH_RUNS=1 BENCH_SECONDS=30 ./scripts/bench-pipeline.sh
#
# Variables: BENCH_PHASES (producer,throughput,latency,memory), BENCH_POSTS (2000000),
# BENCH_RUNS (3), BENCH_VOCABULARY (10000), BENCH_RATE (10000), BENCH_SECONDS (60),
# BENCH_MEMORY_TAGS (10000,100000,1000000); BENCH_SPARK (1: after the harness; 0: not at all;
# only: the Spark peer alone), which runs the phases throughput and latency of BENCH_PHASES,
# and BENCH_SPARK_BATCH (BENCH_POSTS / 10: records per Spark micro-batch, throughput phase).
# OTEL_* variables pass through to the producer and the aggregators (the throughput phases
# with tracing on: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 and a sampler).
# Needs what scripts/test.sh needs (JDK 17+, Maven, Maven Central on first use), and for the
# Spark peer PyPI on first use (bench/spark/setup.sh: a venv in ~/.cache/hashtag-trends).
set -euo pipefail
cd "$(dirname "$0")/.."

spark="${BENCH_SPARK:-1}"
phases="${BENCH_PHASES:-producer,throughput,latency,memory}"
spark_phases="$(tr ',' '\n' <<<"$phases" | grep -xE 'throughput|latency' | paste -sd, || true)"

./scripts/kafka-jars.sh >/dev/null
cargo build --release --locked --workspace --bins
if [[ "$spark" != only ]]; then
    cargo build --release --locked -p bench-drivers --bin pipeline_bench
    mvn -B -q -f bench/kstreams/pom.xml package -DskipTests
    # A copy: rebuilding the jar while a JVM runs it would pull it from under that JVM.
    mkdir -p target/bench
    cp bench/kstreams/target/trends-kstreams.jar target/bench/trends-kstreams.jar
    # With BENCH_SPARK=1 the harness runs the Spark peer itself, on its broker and its input.
    BENCH_SPARK="$spark" "${CARGO_TARGET_DIR:-target}/release/pipeline_bench"
elif [[ -n "$spark_phases" ]]; then
    # The Spark peer alone, on a broker of its own.
    BENCH_PHASES="$spark_phases" bench/spark/run-bench.sh
fi
