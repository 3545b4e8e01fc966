#!/usr/bin/env bash
# The trends-api benchmark (issue 5): /api/v1/trends throughput and latency with 100,000
# distinct tags, and the memory of 10,000 concurrent SSE clients. Prints figures; not a test.
#
#   ./scripts/bench-api.sh            # BENCH_TAGS, BENCH_SSE_CLIENTS, BENCH_SECONDS override
#
# Needs what scripts/test.sh needs, plus wrk (installed with apt-get when run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }
    else
        echo "wrk is missing: apt-get install wrk" >&2
        exit 1
    fi
fi
./scripts/kafka-jars.sh >/dev/null
# Each SSE client is a socket on both sides: the client process and the API need ~10k fds.
ulimit -n "$(ulimit -Hn)"
cargo build --release --locked --workspace --bins
cargo build --release --locked -p bench-drivers --bin api_bench
exec target/release/api_bench
