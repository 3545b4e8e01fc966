#!/usr/bin/env bash
# Checks the Prometheus alerting rules (deploy/prometheus/alerts.yml) with promtool: their
# syntax (`promtool check rules`) and their unit tests (`promtool test rules
# deploy/prometheus/alerts.test.yml`: series in, alerts expected out); the compose profile's
# configuration (`promtool check config deploy/prometheus/prometheus.yml`).
#
# promtool comes with Debian's `prometheus` package. When it is missing and this runs as root
# with apt-get, the package is installed without its recommends (node-exporter), and with a
# policy-rc.d that forbids starting services, so that no Prometheus daemon starts and binds
# port 9090 on this machine (and its systemd unit is disabled, so none starts at boot either);
# the policy file is removed again if this script created it.
# Otherwise: install it yourself (`apt-get install prometheus`), or set PROMTOOL to a promtool
# binary.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch="$(mktemp -d)"
created_policy=""
cleanup() {
  rm -rf "$scratch"
  if [ -n "$created_policy" ]; then rm -f "$created_policy"; fi
}
trap cleanup EXIT

promtool="${PROMTOOL:-$(command -v promtool || true)}"
if [ -z "$promtool" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's prometheus package (for promtool; no daemon is started)"
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\n# scripts/check-prometheus.sh: no service starts while it installs\nexit 101\n' >"$policy"
      chmod 755 "$policy"
      created_policy="$policy"
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    # Nor at the next boot: the package enables its systemd unit; only promtool is wanted.
    if command -v systemctl >/dev/null 2>&1; then
      systemctl disable --quiet prometheus.service >/dev/null 2>&1 || true
    fi
    promtool="$(command -v promtool)"
  else
    echo "error: promtool is missing: install Debian's prometheus package (apt-get install prometheus) or set PROMTOOL" >&2
    exit 1
  fi
fi

echo "==> promtool check rules deploy/prometheus/alerts.yml ($("$promtool" --version 2>&1 | head -n1))"
"$promtool" check rules deploy/prometheus/alerts.yml
# The compose profile's Prometheus configuration (its scrape jobs, and the rule file it loads).
echo "==> promtool check config deploy/prometheus/prometheus.yml"
"$promtool" check config deploy/prometheus/prometheus.yml
echo "==> promtool test rules deploy/prometheus/alerts.test.yml"
"$promtool" test rules deploy/prometheus/alerts.test.yml

# The dashboard's queries parse as PromQL: each becomes a recording rule of a scratch rule file
# (Grafana's $__rate_interval and friends replaced by 5m) that promtool checks.
echo "==> promtool check rules (the queries of deploy/grafana/dashboards/*.json)"
python3 - "$scratch/dashboard-queries.yml" deploy/grafana/dashboards/*.json <<'PY'
import json, re, sys
out, files = sys.argv[1], sys.argv[2:]
rules = []
def walk(node, where):
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str) and node["expr"].strip():
            expr = re.sub(r"\$__(rate_interval|interval|range)", "5m", node["expr"])
            rules.append((where, expr))
        for value in node.values():
            walk(value, where)
    elif isinstance(node, list):
        for value in node:
            walk(value, where)
for path in files:
    walk(json.load(open(path, encoding="utf-8")), path)
if not rules:
    sys.exit("no queries found in " + " ".join(files))
with open(out, "w", encoding="utf-8") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (where, expr) in enumerate(rules):
        f.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(expr)}\n")
print(f"{len(rules)} queries from {' '.join(files)}")
PY
"$promtool" check rules "$scratch/dashboard-queries.yml"
