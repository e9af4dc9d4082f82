{{/*
Object names are fixed, not prefixed with the release name: users, agents and docs refer to
the Services cloud-api, postgres and influxdb, the APIService and the calyptia-core:* roles by
name, and the APIService makes this chart one release per cluster anyway.
*/}}

{{- define "calyptia-core.chart" -}}
{{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. Call with (dict "ctx" $ "name" "cloud-api" "component" "api-server"). */}}
{{- define "calyptia-core.labels" -}}
helm.sh/chart: {{ include "calyptia-core.chart" .ctx }}
{{ include "calyptia-core.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: calyptia-core
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Labels that select one component's pods; they never change after install. */}}
{{- define "calyptia-core.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end }}

{{/* Labels of cluster-wide objects that belong to no one component. */}}
{{- define "calyptia-core.commonLabels" -}}
helm.sh/chart: {{ include "calyptia-core.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: calyptia-core
{{- end }}

{{/*
An image reference: (dict "ctx" $ "image" .Values.cloudApi.image). global.imageRegistry
replaces each image's registry; a digest wins over the tag; the tag defaults to appVersion.
*/}}
{{- define "calyptia-core.image" -}}
{{- $registry := .ctx.Values.global.imageRegistry | default .image.registry -}}
{{- $ref := .image.repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" $registry $ref }}{{ end -}}
{{- if .image.digest -}}
{{ printf "%s@%s" $ref .image.digest }}
{{- else -}}
{{ printf "%s:%s" $ref (.image.tag | default .ctx.Chart.AppVersion | toString) }}
{{- end -}}
{{- end }}

{{- define "calyptia-core.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets -}}
imagePullSecrets:
{{- range . }}
- name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* storageClassName of a claim: the section's class, else global.storageClass; "-" is none. */}}
{{- define "calyptia-core.storageClass" -}}
{{- $class := .persistence.storageClass | default .ctx.Values.global.storageClass -}}
{{- if eq $class "-" -}}
storageClassName: ""
{{- else if $class -}}
storageClassName: {{ $class }}
{{- end -}}
{{- end }}

{{/* The container security context of every container: non-root, read-only, no privileges. */}}
{{- define "calyptia-core.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Scheduling fields of a section. */}}
{{- define "calyptia-core.scheduling" -}}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The namespace of the in-cluster agent's core instance, and where its workloads go. */}}
{{- define "calyptia-core.operatorNamespace" -}}
{{ .Values.operator.namespace | default .Release.Namespace }}
{{- end }}
{{- define "calyptia-core.operatorTargetNamespace" -}}
{{ .Values.operator.targetNamespace | default (include "calyptia-core.operatorNamespace" .) }}
{{- end }}

{{/* Name and key of the Secret holding cloud-api's PostgreSQL connection string. */}}
{{- define "calyptia-core.postgresURLSecret" -}}
{{- if .Values.postgres.enabled -}}
postgres
{{- else -}}
{{ .Values.postgres.external.existingSecret | default "cloud-api-postgres" }}
{{- end -}}
{{- end }}

{{/* Name of the Secret with the local PostgreSQL's password. */}}
{{- define "calyptia-core.postgresPasswordSecret" -}}
{{ .Values.postgres.auth.existingSecret | default "postgres" }}
{{- end }}

{{- define "calyptia-core.influxdbSecret" -}}
{{ .Values.influxdb.auth.existingSecret | default "influxdb" }}
{{- end }}

{{/* metrics store: influxdb when a local or external InfluxDB is configured. */}}
{{- define "calyptia-core.metricsStore" -}}
{{- if or .Values.influxdb.enabled .Values.influxdb.external.url -}}
influxdb
{{- else -}}
postgres
{{- end -}}
{{- end }}

{{/*
A value kept across upgrades: the data under key of an existing Secret (Helm's lookup; empty
while rendering without a cluster, as in helm template), else the generated default.
Call with (dict "ctx" $ "secret" "name" "key" "k" "generate" "value").
*/}}
{{- define "calyptia-core.keptSecretValue" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- if and $existing $existing.data (hasKey $existing.data .key) -}}
{{ index $existing.data .key }}
{{- else -}}
{{ .generate | b64enc }}
{{- end -}}
{{- end }}
