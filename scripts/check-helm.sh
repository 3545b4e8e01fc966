#!/usr/bin/env bash
# Checks the Helm chart (deploy/helm/hashtag-trends) and the Strimzi examples (deploy/strimzi)
# offline:
#   1. installs pinned helm (v4) and kubeconform with `go install` (the Go module proxy is the
#      only network used) into ~/.cache/hashtag-trends/go-bin, unless already there;
#   2. `helm lint` with every values file;
#   3. `helm template` with each values file below, and checks that values the chart refuses
#      are refused with a message naming them;
#   4. `kubeconform -strict` on every rendered manifest and on deploy/strimzi, against the
#      schemas vendored in deploy/schemas only (Kubernetes $K8S_VERSION, KEDA, Strimzi,
#      Prometheus operator); a kind without a vendored schema fails.
# tests/e2e/tests/it/helm.rs renders the same values files with the helm installed here and
# checks that each Deployment's environment is accepted by that service's own config loader.
#
#   ./scripts/check-helm.sh              # or: ./scripts/check-helm.sh --install-only
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.8.0
K8S_VERSION=1.34.0
BIN="${HASHTAG_TRENDS_GO_BIN:-$HOME/.cache/hashtag-trends/go-bin}"
CHART=deploy/helm/hashtag-trends

# The chart carries copies of the alert rules and the dashboard (Helm reads only files inside a
# chart): they must be the project's own.
for pair in "deploy/prometheus/alerts.yml|$CHART/files/alerts.yml" \
            "deploy/grafana/dashboards/hashtag-trends.json|$CHART/files/hashtag-trends.json"; do
  cmp -s "${pair%%|*}" "${pair##*|}" || {
    echo "error: ${pair##*|} differs from ${pair%%|*}: copy it (cp ${pair%%|*} ${pair##*|})" >&2; exit 1; }
done

command -v go >/dev/null 2>&1 || { echo "error: 'go' is required (Go 1.26 or newer, or one that may fetch it from the Go module proxy) to install helm and kubeconform" >&2; exit 1; }

# go install MODULE/PATH VERSION BINARY: installs unless the binary there was built from that
# module version (`go version -m` reads it from the binary).
install() {
  local package=$1 version=$2 binary=$3 module=$4
  if [ -x "$BIN/$binary" ] && go version -m "$BIN/$binary" 2>/dev/null \
      | grep -Eq "^\s+mod\s+$module\s+$version(\s|$)"; then
    return
  fi
  echo "==> go install $package@$version (into $BIN)"
  mkdir -p "$BIN"
  GOBIN="$BIN" GOFLAGS=-buildvcs=false go install "$package@$version"
}
install helm.sh/helm/v4/cmd/helm "$HELM_VERSION" helm helm.sh/helm/v4
install github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" kubeconform github.com/yannh/kubeconform
[ "${1:-}" = --install-only ] && exit 0
helm="$BIN/helm"
kubeconform="$BIN/kubeconform"

# name | values files | extra helm flags. KEDA's API is announced where a render should pick
# the ScaledObject (autoscaling.type auto); without it, auto falls back to an HPA.
KEDA_API="--api-versions keda.sh/v1alpha1/ScaledObject"
renders=(
  "default||"
  "default-keda||$KEDA_API"
  "secured|$CHART/values-secured.yaml|$KEDA_API"
  "strimzi|$CHART/values-strimzi.yaml|$KEDA_API"
  "hpa|$CHART/ci/hpa-values.yaml|$KEDA_API"
  "ingress-monitors|$CHART/ci/ingress-monitors-values.yaml|"
  "mtls|$CHART/ci/mtls-values.yaml|$KEDA_API"
)

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
for render in "${renders[@]}"; do
  IFS='|' read -r name values flags <<<"$render"
  args=()
  [ -n "$values" ] && args+=(-f "$values")
  echo "==> helm lint / template: $name"
  # (helm lint has no --api-versions: it renders as a cluster without KEDA would.)
  "$helm" lint --strict --quiet "$CHART" "${args[@]}" >/dev/null
  # shellcheck disable=SC2086
  "$helm" template trends "$CHART" --namespace trends "${args[@]}" $flags >"$OUT/$name.yaml"
done

# What each render must contain (and not), so a values switch that stops working is noticed.
expect() { # render, kind, present|absent
  local count
  count=$(grep -c "^kind: $2$" "$OUT/$1.yaml" || true)
  if { [ "$3" = present ] && [ "$count" = 0 ]; } || { [ "$3" = absent ] && [ "$count" != 0 ]; }; then
    echo "error: render $1: expected kind $2 $3, found $count" >&2; exit 1
  fi
}
expect default HorizontalPodAutoscaler present; expect default ScaledObject absent
expect default-keda ScaledObject present; expect default-keda HorizontalPodAutoscaler absent
expect default-keda TriggerAuthentication absent
expect secured TriggerAuthentication present; expect strimzi TriggerAuthentication present
expect hpa HorizontalPodAutoscaler present; expect hpa ScaledObject absent
expect ingress-monitors Ingress present; expect ingress-monitors ServiceMonitor present
expect ingress-monitors PodMonitor present; expect ingress-monitors HorizontalPodAutoscaler absent
expect ingress-monitors PrometheusRule present; expect ingress-monitors ConfigMap present
expect default PrometheusRule absent; expect default ConfigMap absent
for name in default secured strimzi ingress-monitors mtls; do
  expect "$name" NetworkPolicy present; expect "$name" PodDisruptionBudget present
done

# Values the chart must refuse, each with a message naming the value.
refuse() { # expected message, helm args...
  local message=$1 output
  shift
  if output=$("$helm" template trends "$CHART" "$@" 2>&1); then
    echo "error: helm template $* succeeded; expected: $message" >&2; exit 1
  fi
  grep -qF -- "$message" <<<"$output" || { echo "error: helm template $*: expected '$message' in: $output" >&2; exit 1; }
}
echo "==> refused values"
refuse "aggregator.autoscaling.keda.activationLagThreshold must be at least 2" $KEDA_API \
  --set aggregator.autoscaling.keda.activationLagThreshold=1
refuse "aggregator.autoscaling.maxReplicas (13) must be at most topics.partitions (12)" \
  --set aggregator.autoscaling.maxReplicas=13
refuse "kafka.sasl.mechanism is required with kafka.securityProtocol sasl_ssl" \
  --set kafka.securityProtocol=sasl_ssl
refuse "kafka.sasl.mechanism SCRAM-SHA-512 needs kafka.sasl.username and kafka.sasl.passwordSecret.name" \
  --set kafka.securityProtocol=sasl_ssl --set kafka.sasl.mechanism=SCRAM-SHA-512
refuse "kafka.securityProtocol must be plaintext, ssl, sasl_plaintext or sasl_ssl" \
  --set kafka.securityProtocol=SASL_SSL
refuse "producer.source must be synthetic, file, bluesky, mastodon or x" --set producer.source=twitter

echo "==> kubeconform -strict (Kubernetes $K8S_VERSION, KEDA, Strimzi, Prometheus operator; vendored schemas only)"
"$kubeconform" -strict -summary -kubernetes-version "$K8S_VERSION" \
  -schema-location "deploy/schemas/kubernetes/v$K8S_VERSION-standalone-strict/{{.ResourceKind}}{{.KindSuffix}}.json" \
  -schema-location "deploy/schemas/crds/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json" \
  "$OUT"/*.yaml deploy/strimzi/*.yaml
