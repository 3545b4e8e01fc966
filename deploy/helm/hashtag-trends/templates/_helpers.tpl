{{/* Names, labels, and the Kafka settings every service shares. */}}

{{- define "hashtag-trends.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hashtag-trends.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: (dict "root" $ "component" "trends-api"). */}}
{{- define "hashtag-trends.componentName" -}}
{{- printf "%s-%s" (include "hashtag-trends.fullname" .root | trunc 40 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "hashtag-trends.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The recommended labels; (dict "root" $ "component" "…") for a component's objects. */}}
{{- define "hashtag-trends.labels" -}}
helm.sh/chart: {{ include "hashtag-trends.chart" .root }}
{{ include "hashtag-trends.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: hashtag-trends
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "hashtag-trends.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hashtag-trends.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{- define "hashtag-trends.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "hashtag-trends.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "hashtag-trends.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) -}}
{{- end -}}

{{/*
The Kafka settings in force, as YAML (fromYaml it): .Values.kafka, or with
kafka.strimzi.enabled the Strimzi cluster's bootstrap, SASL_SSL with SCRAM-SHA-512, the
KafkaUser's Secret and the cluster CA's Secret. Checks them, failing with the value's name.
*/}}
{{- define "hashtag-trends.kafka" -}}
{{- $k := deepCopy .Values.kafka -}}
{{- if $k.strimzi.enabled -}}
{{- $_ := set $k "bootstrapServers" (printf "%s-kafka-bootstrap:%d" $k.strimzi.clusterName (int $k.strimzi.listenerPort)) -}}
{{- $_ = set $k "securityProtocol" "sasl_ssl" -}}
{{- $_ = set $k.sasl "mechanism" "SCRAM-SHA-512" -}}
{{- $_ = set $k.sasl "username" $k.strimzi.user -}}
{{- $_ = set $k.sasl "passwordSecret" (dict "name" $k.strimzi.user "key" "password") -}}
{{- $_ = set $k.tls "caSecret" (dict "name" (printf "%s-cluster-ca-cert" $k.strimzi.clusterName) "key" "ca.crt") -}}
{{- end -}}
{{- if not $k.bootstrapServers -}}
{{- fail "kafka.bootstrapServers must not be empty" -}}
{{- end -}}
{{- $protocol := $k.securityProtocol | default "" -}}
{{- if not (has $protocol (list "" "plaintext" "ssl" "sasl_plaintext" "sasl_ssl")) -}}
{{- fail (printf "kafka.securityProtocol must be plaintext, ssl, sasl_plaintext or sasl_ssl, not %q" $protocol) -}}
{{- end -}}
{{- $mechanism := $k.sasl.mechanism | default "" -}}
{{- if not (has $mechanism (list "" "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512" "OAUTHBEARER")) -}}
{{- fail (printf "kafka.sasl.mechanism must be PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER, not %q" $mechanism) -}}
{{- end -}}
{{- if and (hasPrefix "sasl_" $protocol) (not $mechanism) -}}
{{- fail (printf "kafka.sasl.mechanism is required with kafka.securityProtocol %s" $protocol) -}}
{{- end -}}
{{- if and $mechanism (not (hasPrefix "sasl_" $protocol)) -}}
{{- fail "kafka.sasl.mechanism needs kafka.securityProtocol sasl_plaintext or sasl_ssl" -}}
{{- end -}}
{{- if and $mechanism (ne $mechanism "OAUTHBEARER") -}}
{{- if or (not $k.sasl.username) (not $k.sasl.passwordSecret.name) -}}
{{- fail (printf "kafka.sasl.mechanism %s needs kafka.sasl.username and kafka.sasl.passwordSecret.name" $mechanism) -}}
{{- end -}}
{{- end -}}
{{- if eq $mechanism "OAUTHBEARER" -}}
{{- $o := $k.sasl.oauthbearer -}}
{{- if or (not $o.tokenEndpointUrl) (not $o.clientId) (not $o.clientSecretSecret.name) -}}
{{- fail "kafka.sasl.mechanism OAUTHBEARER needs kafka.sasl.oauthbearer.tokenEndpointUrl, .clientId and .clientSecretSecret.name" -}}
{{- end -}}
{{- end -}}
{{- if ne (not $k.tls.certSecret.name) (not $k.tls.keySecret.name) -}}
{{- fail "kafka.tls.certSecret.name and kafka.tls.keySecret.name go together (a client certificate and its key)" -}}
{{- end -}}
{{- toYaml $k -}}
{{- end -}}

{{/* Where a Secret's key is mounted: (dict "dir" "sasl" "secret" .passwordSecret). */}}
{{- define "hashtag-trends.secretFile" -}}
{{- printf "/etc/hashtag-trends/%s/%s" .dir .secret.key -}}
{{- end -}}

{{/* The Secret files of a pod: a list of (dir, volume name, secret) in force. */}}
{{- define "hashtag-trends.secretFiles" -}}
{{- $k := fromYaml (include "hashtag-trends.kafka" .root) -}}
{{- $files := list -}}
{{- if and $k.sasl.mechanism (ne $k.sasl.mechanism "OAUTHBEARER") -}}
{{- $files = append $files (dict "dir" "kafka-sasl" "secret" $k.sasl.passwordSecret) -}}
{{- end -}}
{{- if eq ($k.sasl.mechanism | default "") "OAUTHBEARER" -}}
{{- $files = append $files (dict "dir" "kafka-oauth" "secret" $k.sasl.oauthbearer.clientSecretSecret) -}}
{{- end -}}
{{- if $k.tls.caSecret.name -}}
{{- $files = append $files (dict "dir" "kafka-ca" "secret" $k.tls.caSecret) -}}
{{- end -}}
{{- if $k.tls.certSecret.name -}}
{{- $files = append $files (dict "dir" "kafka-cert" "secret" $k.tls.certSecret) -}}
{{- $files = append $files (dict "dir" "kafka-key" "secret" $k.tls.keySecret) -}}
{{- end -}}
{{- if $k.tls.keyPasswordSecret.name -}}
{{- $files = append $files (dict "dir" "kafka-key-password" "secret" $k.tls.keyPasswordSecret) -}}
{{- end -}}
{{- if eq .component "trends-api" -}}
{{- with .root.Values.api.adminTokenSecret -}}{{- if .name -}}
{{- $files = append $files (dict "dir" "admin-token" "secret" .) -}}
{{- end -}}{{- end -}}
{{- with .root.Values.api.webhookSecret -}}{{- if .name -}}
{{- $files = append $files (dict "dir" "webhook-secret" "secret" .) -}}
{{- end -}}{{- end -}}
{{- end -}}
{{- toYaml (dict "files" $files) -}}
{{- end -}}

{{/* The environment every service shares, as a map: the Kafka client and the topics. */}}
{{- define "hashtag-trends.sharedEnv" -}}
{{- $k := fromYaml (include "hashtag-trends.kafka" .) -}}
{{- $t := .Values.topics -}}
{{- $env := dict
  "TRENDS__KAFKA__BOOTSTRAP_SERVERS" $k.bootstrapServers
  "TRENDS__TOPICS__TWEETS" $t.tweets
  "TRENDS__TOPICS__COUNTS" $t.counts
  "TRENDS__TOPICS__DLQ" $t.dlq
  "TRENDS__TOPICS__SOURCE_OFFSETS" $t.sourceOffsets
  "TRENDS__TOPICS__PARTITIONS" ($t.partitions | toString)
  "TRENDS__LOG__FORMAT" .Values.log.format
-}}
{{- with .Values.log.filter -}}{{- $_ := set $env "TRENDS__LOG__FILTER" . -}}{{- end -}}
{{- with $k.securityProtocol -}}{{- $_ := set $env "TRENDS__KAFKA__SECURITY_PROTOCOL" . -}}{{- end -}}
{{- if ne (toString $k.replicationFactor) "" -}}
{{- $_ := set $env "TRENDS__KAFKA__REPLICATION_FACTOR" (toString $k.replicationFactor) -}}
{{- end -}}
{{- with $k.sasl.mechanism -}}
{{- $_ := set $env "TRENDS__KAFKA__SASL__MECHANISM" . -}}
{{- if eq . "OAUTHBEARER" -}}
{{- $o := $k.sasl.oauthbearer -}}
{{- $_ = set $env "TRENDS__KAFKA__SASL__OAUTHBEARER__TOKEN_ENDPOINT_URL" $o.tokenEndpointUrl -}}
{{- $_ = set $env "TRENDS__KAFKA__SASL__OAUTHBEARER__CLIENT_ID" $o.clientId -}}
{{- with $o.scope -}}{{- $_ = set $env "TRENDS__KAFKA__SASL__OAUTHBEARER__SCOPE" . -}}{{- end -}}
{{- $_ = set $env "TRENDS__KAFKA__SASL__OAUTHBEARER__CLIENT_SECRET__FILE" (include "hashtag-trends.secretFile" (dict "dir" "kafka-oauth" "secret" $o.clientSecretSecret)) -}}
{{- else -}}
{{- $_ = set $env "TRENDS__KAFKA__SASL__USERNAME" $k.sasl.username -}}
{{- $_ = set $env "TRENDS__KAFKA__SASL__PASSWORD__FILE" (include "hashtag-trends.secretFile" (dict "dir" "kafka-sasl" "secret" $k.sasl.passwordSecret)) -}}
{{- end -}}
{{- end -}}
{{- with $k.tls.caSecret -}}{{- if .name -}}
{{- $_ := set $env "TRENDS__KAFKA__SSL__CA_FILE" (include "hashtag-trends.secretFile" (dict "dir" "kafka-ca" "secret" .)) -}}
{{- end -}}{{- end -}}
{{- if $k.tls.certSecret.name -}}
{{- $_ := set $env "TRENDS__KAFKA__SSL__CERT_FILE" (include "hashtag-trends.secretFile" (dict "dir" "kafka-cert" "secret" $k.tls.certSecret)) -}}
{{- $_ = set $env "TRENDS__KAFKA__SSL__KEY_FILE" (include "hashtag-trends.secretFile" (dict "dir" "kafka-key" "secret" $k.tls.keySecret)) -}}
{{- end -}}
{{- with $k.tls.keyPasswordSecret -}}{{- if .name -}}
{{- $_ := set $env "TRENDS__KAFKA__SSL__KEY_PASSWORD__FILE" (include "hashtag-trends.secretFile" (dict "dir" "kafka-key-password" "secret" .)) -}}
{{- end -}}{{- end -}}
{{- toYaml $env -}}
{{- end -}}

{{/*
A container's env: the shared map, the component's own map, then the user's map (which
wins), sorted by name; then raw entries. (dict "root" $ "own" dict "values" .Values.x)
*/}}
{{- define "hashtag-trends.env" -}}
{{- $env := merge (deepCopy (.values.env | default dict)) .own (fromYaml (include "hashtag-trends.sharedEnv" .root)) -}}
{{- range $name, $value := $env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- with .values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes of a pod: /tmp, the Secret files, and the component's extra ones. */}}
{{- define "hashtag-trends.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- range (fromYaml (include "hashtag-trends.secretFiles" .)).files }}
- name: {{ .dir }}
  secret:
    secretName: {{ .secret.name }}
    defaultMode: 0440
    items:
      - key: {{ .secret.key }}
        path: {{ .secret.key }}
{{- end }}
{{- with .values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "hashtag-trends.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- range (fromYaml (include "hashtag-trends.secretFiles" .)).files }}
- name: {{ .dir }}
  mountPath: /etc/hashtag-trends/{{ .dir }}
  readOnly: true
{{- end }}
{{- with .values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The pod spec's common part. (dict "root" $ "values" .Values.x) */}}
{{- define "hashtag-trends.podCommon" -}}
serviceAccountName: {{ include "hashtag-trends.serviceAccountName" .root }}
automountServiceAccountToken: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ .values.terminationGracePeriodSeconds }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The effective autoscaling type of the aggregator: keda, hpa or none. */}}
{{- define "hashtag-trends.autoscaling" -}}
{{- $a := .Values.aggregator.autoscaling -}}
{{- if not (has $a.type (list "auto" "keda" "hpa" "none")) -}}
{{- fail (printf "aggregator.autoscaling.type must be auto, keda, hpa or none, not %q" $a.type) -}}
{{- end -}}
{{- if eq $a.type "auto" -}}
{{- if .Capabilities.APIVersions.Has "keda.sh/v1alpha1/ScaledObject" -}}keda{{- else -}}hpa{{- end -}}
{{- else -}}
{{- $a.type -}}
{{- end -}}
{{- end -}}
