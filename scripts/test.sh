#!/usr/bin/env bash
# Runs every test of hashtag-trends on a fresh machine with a Rust toolchain, JDK 17+, Maven,
# Node.js 20+ (with npm) and Go 1.26+ (helm and kubeconform are built from the Go module proxy).
#
#   ./scripts/test.sh
#
# 1. fetches the Apache Kafka broker jars from Maven Central (cached in ~/.cache/hashtag-trends);
#    installs the browser test's dependencies: Debian's chromium (apt-get, when root) and
#    playwright-core (`npm ci` in tests/browser; no browser download);
# 2. checks formatting and lints;
# 3. builds the three service binaries (the end-to-end tests run them as processes);
# 4. runs all unit, integration and end-to-end tests; the latter start a real Kafka broker in
#    KRaft mode on a free loopback port. Set TRENDS_TEST_BOOTSTRAP_SERVERS=host:port to use a
#    running broker instead (e.g. the one from `docker compose up`, on localhost:29092).
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is required ($2)" >&2; exit 1; }; }
need cargo "install Rust with rustup"
need java "install a JDK 17 or newer"
need mvn "install Apache Maven"
need node "install Node.js 20 or newer (the browser test drives Chromium from it)"
need npm "install npm (it comes with Node.js)"
need python3 "install Python 3 (the Spark peer's tag rules are checked with it)"
need go "install Go 1.26 or newer (helm and kubeconform are built from the Go module proxy)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || { echo "error: Node.js 20 or newer is required (found $(node --version))" >&2; exit 1; }

# librdkafka is built from source: it needs cmake, a C compiler, pkg-config and the OpenSSL and
# libcurl headers (TLS, SASL/SCRAM and OIDC for secured clusters). The
# browser test (tests/e2e/tests/browser.rs) runs Debian's headless chromium.
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
[ -e /usr/include/curl/curl.h ] || [ -e /usr/include/x86_64-linux-gnu/curl/curl.h ] || missing+=(libcurl4-openssl-dev)
[ -e /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || missing+=(chromium)
# Fonts for every script of the feed (the page's font stack names them): without them chromium
# draws #日本語, #한국어, #नमस्ते or #مرحبا as empty boxes in the browser test's screenshots.
has_font() { command -v fc-list >/dev/null 2>&1 && fc-list ":family=$1" family 2>/dev/null | grep -q .; }
has_font "Noto Sans CJK JP" || missing+=(fonts-noto-cjk)
has_font "Noto Sans Devanagari" || missing+=(fonts-noto-core)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing system packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: missing system packages: ${missing[*]} (install them with your package manager)" >&2
    exit 1
  fi
fi

echo "==> Kafka broker jars"
scripts/kafka-jars.sh

echo "==> browser test dependencies (npm ci in tests/browser)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo build (service binaries)"
cargo build --workspace --bins --locked

echo "==> the Spark peer's tag rules against the conformance cases (bench/spark)"
python3 bench/spark/check_hashtags.py

echo "==> Helm chart and Strimzi examples (helm lint/template, kubeconform -strict: scripts/check-helm.sh)"
scripts/check-helm.sh

echo "==> Prometheus alert rules, their unit tests and the dashboard's queries (promtool: scripts/check-prometheus.sh)"
scripts/check-prometheus.sh

echo "==> cargo test"
cargo test --workspace --locked -- --test-threads 2
