#!/usr/bin/env bash
# Trend quality against ground truth (issue 15): replays tweet-producer's `trend-quality`
# scenario (steady giants, daily cycles, organic bursts, spam floods, slow risers over the
# synthetic background; 3 simulated days) through the real counting and trend code in-process
# (no Kafka), and prints burst recall, false positives and detection delay for the 5m and 1h
# trending lists next to ranking by raw count, as Markdown, with two bounds on the delay (the
# oracle: when each burst's min_authors-th author arrives; an ideal scan against the true base
# rate). Not a test: 5 to 10 minutes on one core (6 on 2026-12-03). See BENCHMARKS.md
# ("Trend quality") and the rules in bench/drivers/src/bin/trend_quality.rs.
#
#   ./scripts/bench-trend-quality.sh
#   TQ_FLOOD_RATIO=2 TQ_MIN_SCORE=4 ./scripts/bench-trend-quality.sh   # other trends.* values
#
# Variables: TQ_SEED (42), TQ_DAYS (3), TQ_BACKGROUND_RATE (8), TQ_PARTITIONS (12),
# TQ_BUILD_SECS (10), TQ_TOP (10), TQ_MIN_AUTHORS (5), TQ_MIN_SCORE (3), TQ_DISPERSION (0.1),
# TQ_FLOOD_RATIO (5), TQ_DETAIL (1: every scripted tag).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p bench-drivers --bin trend_quality
"${CARGO_TARGET_DIR:-target}/release/trend_quality"
