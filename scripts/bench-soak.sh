#!/usr/bin/env bash
# The month soak through the real pipeline (issue 14): a broker, the release hashtag-aggregator
# and trends-api as processes with their default capacities, and SOAK_POSTS posts with event
# times over SOAK_DAYS simulated days (heavy-tailed tags plus new tags every day). After each
# day: aggregator and API RSS, the counts topic's bytes on the broker's disk, its live keys.
# Prints a Markdown table; not a test (about half an hour with the defaults on 2 busy cores).
# See BENCHMARKS.md, "Soak through the real pipeline".
#
#   ./scripts/bench-soak.sh
#   SOAK_POSTS=200000 SOAK_DAYS=5 ./scripts/bench-soak.sh     # a smoke run of a minute
#
# Variables: SOAK_POSTS (20000000), SOAK_DAYS (30), SOAK_EVERGREEN (100000), SOAK_READ_KEYS
# (1: read the counts topic back after each day to count its live keys; 0: skip).
# Needs what scripts/test.sh needs (JDK 17+, Maven Central on first use for the broker jars).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/kafka-jars.sh >/dev/null
cargo build --release --locked -p hashtag-aggregator -p trends-api
cargo build --release --locked -p bench-drivers --bin pipeline_soak
"${CARGO_TARGET_DIR:-target}/release/pipeline_soak"
