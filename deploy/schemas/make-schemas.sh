#!/usr/bin/env bash
# Regenerates the JSON schemas in deploy/schemas that scripts/check-helm.sh validates the chart
# and deploy/strimzi against (kubeconform -strict), from the package registries only:
#   Kubernetes  PyPI        kubernetes-validate (its per-kind schemas, made standalone here)
#   KEDA        Go modules  github.com/kedacore/keda/v2 (config/crd/bases)
#   Prometheus  Go modules  github.com/prometheus-operator/prometheus-operator (example/prometheus-operator-crd)
#   Strimzi     Maven       io.strimzi:api + io.strimzi:crd-generator, run as Strimzi's own build runs them
# Needs python3 with PyYAML, pip, go, mvn and a Java 21+ runtime (JAVA=/path/to/java to choose).
# Not run by the tests: the output is committed.
set -euo pipefail
cd "$(dirname "$0")"

K8S=v1.34.0                 # the Kubernetes version the chart targets
KUBERNETES_VALIDATE=1.37.0  # ships v1.25.0 … v1.37.0
KEDA=v2.21.1
PROMETHEUS_OPERATOR=v0.85.0
STRIMZI=1.2.0               # must match strimzi-crds.pom.xml

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "==> Kubernetes $K8S (PyPI kubernetes-validate $KUBERNETES_VALIDATE)"
pip download --quiet --no-deps "kubernetes-validate==$KUBERNETES_VALIDATE" -d "$work"
unzip -q "$work"/kubernetes_validate-*.whl -d "$work/kv"
rm -rf "kubernetes/$K8S-standalone-strict"
python3 make-schemas.py kubernetes \
  "$work/kv/kubernetes_validate/kubernetes-json-schema/$K8S-local-strict" \
  "kubernetes/$K8S-standalone-strict" \
  configmap-v1.json secret-v1.json service-v1.json serviceaccount-v1.json \
  deployment-apps-v1.json poddisruptionbudget-policy-v1.json \
  networkpolicy-networking-v1.json ingress-networking-v1.json \
  horizontalpodautoscaler-autoscaling-v2.json

rm -rf crds
modzip() { # module version -> path of the module's zip in the Go module cache
  # `go mod download` fetches the zip first; a module whose go.mod needs a newer Go than the
  # one installed is refused after that, which does not matter here: only the zip is read.
  go mod download "$1@$2" 2>/dev/null || true
  local zip
  zip="$(go env GOMODCACHE)/cache/download/$1/@v/$2.zip"
  [ -f "$zip" ] || { echo "error: $1@$2 not downloaded" >&2; exit 1; }
  echo "$zip"
}

echo "==> KEDA $KEDA (Go module)"
unzip -q -o "$(modzip github.com/kedacore/keda/v2 "$KEDA")" \
  "github.com/kedacore/keda/v2@$KEDA/config/crd/bases/*" -d "$work/keda"
python3 make-schemas.py crd crds \
  "$work/keda/github.com/kedacore/keda/v2@$KEDA/config/crd/bases/keda.sh_scaledobjects.yaml" \
  "$work/keda/github.com/kedacore/keda/v2@$KEDA/config/crd/bases/keda.sh_triggerauthentications.yaml"

echo "==> Prometheus operator $PROMETHEUS_OPERATOR (Go module)"
po="github.com/prometheus-operator/prometheus-operator"
unzip -q -o "$(modzip "$po" "$PROMETHEUS_OPERATOR")" \
  "$po@$PROMETHEUS_OPERATOR/example/prometheus-operator-crd/*" -d "$work/po"
python3 make-schemas.py crd crds \
  "$work/po/$po@$PROMETHEUS_OPERATOR/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
  "$work/po/$po@$PROMETHEUS_OPERATOR/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml" \
  "$work/po/$po@$PROMETHEUS_OPERATOR/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml"

echo "==> Strimzi $STRIMZI (Maven Central)"
mvn -q -B -f strimzi-crds.pom.xml dependency:build-classpath -Dmdep.outputFile="$work/cp.txt"
# The same arguments as Strimzi's api/pom.xml (generate-crd-co-install-v1), for the four kinds used.
"${JAVA:-java}" -cp "$(cat "$work/cp.txt")" io.strimzi.crdgenerator.CrdGenerator \
  --label app:strimzi --label strimzi.io/crd-install:true --target-kube 1.16+ \
  --crd-api-version v1 --api-versions v1 --storage-version v1 --yaml \
  "io.strimzi.api.kafka.model.kafka.Kafka=$work/040-Crd-kafka.yaml" \
  "io.strimzi.api.kafka.model.topic.KafkaTopic=$work/043-Crd-kafkatopic.yaml" \
  "io.strimzi.api.kafka.model.user.KafkaUser=$work/044-Crd-kafkauser.yaml" \
  "io.strimzi.api.kafka.model.nodepool.KafkaNodePool=$work/045-Crd-kafkanodepool.yaml"
python3 make-schemas.py crd crds "$work"/04*-Crd-*.yaml

echo "==> done"; du -sh kubernetes crds
