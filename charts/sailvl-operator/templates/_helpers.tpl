{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "sailvl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name prefix of every object: <release>-<chart> unless overridden. */}}
{{- define "sailvl.fullname" -}}
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

{{/* Labels that select the operator pods (stable across upgrades). */}}
{{- define "sailvl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sailvl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels on every object of the chart. */}}
{{- define "sailvl.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sailvl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sailvl
{{- end -}}

{{/* Name of the operator's ServiceAccount. */}}
{{- define "sailvl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sailvl.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Operator image reference: digest wins over tag; tag defaults to appVersion. */}}
{{- define "sailvl.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Namespaces the operator watches when scope is "namespaces". */}}
{{- define "sailvl.watchNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- join "," .Values.watchNamespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* Fail early on values that cannot work. */}}
{{- define "sailvl.validate" -}}
{{- if not (has .Values.scope (list "cluster" "namespaces")) -}}
{{- fail (printf "scope: %q must be \"cluster\" or \"namespaces\"" .Values.scope) -}}
{{- end -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.leaderElection.enabled) -}}
{{- fail "operator.replicas: more than 1 replica needs operator.leaderElection.enabled (every replica would handle every event)" -}}
{{- end -}}
{{- end -}}
