{{- define "bourse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "bourse.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "bourse.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "bourse.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "bourse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "bourse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "bourse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bourse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The operator's watch Role or ClusterRole and its binding: cluster-wide, or in a namespace another release may
watch too, so the name carries the release's namespace (release names are unique only within one).
*/}}
{{- define "bourse.watchRbacName" -}}
{{- printf "%s-%s" .Release.Namespace (include "bourse.fullname" .) }}
{{- end }}

{{- define "bourse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bourse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bourse.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The name of an evaluation server's objects and Secret: bourse.eval "postgres" */}}
{{- define "bourse.eval" -}}
{{- printf "%s-%s" (include "bourse.fullname" .root) .name | trunc 63 | trimSuffix "-" }}
{{- end }}
