#!/usr/bin/env bash
# The Spark peer's benchmark (bench.py): installs its environment (setup.sh) and runs it with
# the venv's Python. Needs the release binaries tweet-producer and hashtag-aggregator
# (scripts/bench-pipeline.sh builds them; else `cargo build --release -p tweet-producer
# -p hashtag-aggregator`), JDK 17+ and Maven (Maven Central and PyPI on first use).
#
#   bench/spark/run-bench.sh
#   BENCH_POSTS=200000 BENCH_RUNS=1 BENCH_SECONDS=30 bench/spark/run-bench.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
spark_dir="$("$here/setup.sh" | tail -n1)"
"$here/../../scripts/kafka-jars.sh" >/dev/null
SPARK_DIR="$spark_dir" exec "$spark_dir/venv/bin/python" -u "$here/bench.py"
