{{/* Chart name, possibly overridden. */}}
{{- define "rpoi.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name prefix of every object: <release>-rpoi-operator, or the release name when it already says so. */}}
{{- define "rpoi.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "rpoi.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "rpoi.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rpoi.escrowName" -}}
{{- printf "%s-escrow" (include "rpoi.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rpoi.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "rpoi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rpoi
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "rpoi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rpoi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "rpoi.escrowSelectorLabels" -}}
app.kubernetes.io/name: {{ include "rpoi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: escrow
{{- end -}}

{{- define "rpoi.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rpoi.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag or repository@digest. Argument: (dict "image" .Values.x.image "root" .) */}}
{{- define "rpoi.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The escrow URL the operator uses. */}}
{{- define "rpoi.escrowUrl" -}}
{{- if .Values.operator.escrowUrl -}}
{{- .Values.operator.escrowUrl -}}
{{- else if .Values.escrow.enabled -}}
{{- printf "http://%s.%s.svc:%d" (include "rpoi.escrowName" .) .Release.Namespace (int .Values.escrow.port) -}}
{{- else -}}
{{- fail "operator.escrowUrl is required when escrow.enabled is false: set it to the escrow π's URL, or set escrow.enabled=true" -}}
{{- end -}}
{{- end -}}

{{/* The restricted container security context every container of the chart runs with. */}}
{{- define "rpoi.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "rpoi.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}
