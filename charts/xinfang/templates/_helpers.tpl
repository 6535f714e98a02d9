{{/*
Names, labels and shared snippets of the xinfang chart.
*/}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "xinfang.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified app name: the release name, suffixed with the chart name unless
it already contains it. Truncated so that "<fullname>-supervision" (the longest
derived name, 12 characters more) still fits a 63-character DNS label.
*/}}
{{- define "xinfang.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Namespace of every resource. */}}
{{- define "xinfang.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "name-version" for the helm.sh/chart label. */}}
{{- define "xinfang.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable for the life of a release (Deployment selectors are immutable). */}}
{{- define "xinfang.selectorLabels" -}}
app.kubernetes.io/name: {{ include "xinfang.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Standard labels of every resource, plus commonLabels. */}}
{{- define "xinfang.labels" -}}
helm.sh/chart: {{ include "xinfang.chart" . }}
{{ include "xinfang.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: xinfang
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Labels and selector labels of one service's resources.
Usage: include "xinfang.componentLabels" (dict "ctx" $ "component" "intake")
*/}}
{{- define "xinfang.componentLabels" -}}
{{ include "xinfang.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "xinfang.componentSelectorLabels" -}}
{{ include "xinfang.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The image reference: registry/repository, then @digest or :tag (default appVersion). */}}
{{- define "xinfang.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry -}}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Name of the ServiceAccount the services run as. */}}
{{- define "xinfang.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "xinfang.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Name of the ConfigMap with the shared XINFANG_* settings. */}}
{{- define "xinfang.configName" -}}
{{- printf "%s-config" (include "xinfang.fullname" .) -}}
{{- end -}}

{{/*
The shared, non-secret XINFANG_* settings (services/xinfang/core/config.py),
as a YAML map (the ConfigMap's data). Every service learns every service's
ports; the listen address is 0.0.0.0 inside a pod; reporting dials supervision
at XINFANG_SUPERVISION_ADDR.
*/}}
{{- define "xinfang.settings" -}}
XINFANG_KAFKA_BOOTSTRAP: {{ .Values.kafka.bootstrap | quote }}
{{- if not .Values.mongodb.existingSecret }}
XINFANG_MONGO_URI: {{ .Values.mongodb.uri | quote }}
{{- end }}
XINFANG_MONGO_DB_PREFIX: {{ .Values.mongodb.dbPrefix | quote }}
XINFANG_PARTITIONS: {{ .Values.partitions | quote }}
XINFANG_LOG_LEVEL: {{ .Values.logLevel | quote }}
XINFANG_LOG_JSON: {{ .Values.logJson | quote }}
XINFANG_GRPC_HOST: "0.0.0.0"
{{- range $name, $svc := .Values.services }}
XINFANG_{{ upper $name }}_GRPC: {{ $svc.grpcPort | quote }}
XINFANG_{{ upper $name }}_METRICS: {{ $svc.metricsPort | quote }}
{{- end }}
XINFANG_SUPERVISION_ADDR: {{ printf "%s-supervision:%v" (include "xinfang.fullname" .) .Values.services.supervision.grpcPort | quote }}
{{- with .Values.oidc }}
{{- if .enabled }}
XINFANG_AUTH_ISSUER: {{ .issuer | quote }}
XINFANG_AUTH_AUDIENCE: {{ .audience | quote }}
XINFANG_AUTH_ALGORITHMS: {{ join "," .algorithms | quote }}
XINFANG_AUTH_REQUIRED_CLAIMS: {{ join "," .requiredClaims | quote }}
{{- if .jwksUrl }}
XINFANG_AUTH_JWKS_URL: {{ .jwksUrl | quote }}
{{- else }}
XINFANG_AUTH_JWKS_FILE: {{ printf "/etc/xinfang/jwks/%s" .jwksConfigMapKey | quote }}
{{- end }}
XINFANG_AUTH_JWKS_CACHE_SECONDS: {{ .cacheSeconds | quote }}
XINFANG_AUTH_ROLE_CLAIM: {{ .claims.role | quote }}
XINFANG_AUTH_DISTRICTS_CLAIM: {{ .claims.districts | quote }}
XINFANG_AUTH_UNIT_CLAIM: {{ .claims.unit | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Checks that fail the render early with a useful message. */}}
{{- define "xinfang.validate" -}}
{{- if and (not .Values.identityKey.existingSecret) (not .Values.identityKey.ring.existingSecret) -}}
{{- fail "identityKey.existingSecret is required (or identityKey.ring.existingSecret): intake refuses to start without XINFANG_IDENTITY_KEY. Create the Secret first, e.g. kubectl create secret generic xinfang-identity-key --from-literal=identity-key=\"$(head -c 32 /dev/urandom | base64)\"" -}}
{{- end -}}
{{- if not .Values.authKey.existingSecret -}}
{{- fail "authKey.existingSecret is required: every service refuses to start without XINFANG_AUTH_KEY (it signs and verifies the gRPC bearer tokens). Create the Secret first, e.g. kubectl create secret generic xinfang-auth-key --from-literal=auth-key=\"$(head -c 32 /dev/urandom | base64)\"" -}}
{{- end -}}
{{- if .Values.oidc.enabled -}}
{{- if not .Values.oidc.issuer -}}
{{- fail "oidc.issuer is required with oidc.enabled: provider tokens are checked against it (iss)" -}}
{{- end -}}
{{- if eq (empty .Values.oidc.jwksUrl) (empty .Values.oidc.jwksConfigMap) -}}
{{- fail "oidc: set exactly one of oidc.jwksUrl and oidc.jwksConfigMap (where the provider's public keys are)" -}}
{{- end -}}
{{- end -}}
{{- range $name := list "intake" "assignment" "supervision" "reporting" }}
{{- if not (hasKey $.Values.services $name) -}}
{{- fail (printf "services.%s is missing: the chart runs all four services" $name) -}}
{{- end -}}
{{- if and (ne $.Values.mongodb.server "mongodb") (gt (int (index $.Values.services $name).replicaCount) 1) -}}
{{- fail (printf "services.%s.replicaCount: more than one replica needs mongodb.server=mongodb; FerretDB 1.x updates a document as a read and a later write, so two replicas can lose each other's updates" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
