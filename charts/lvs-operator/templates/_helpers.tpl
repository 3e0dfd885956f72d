{{/* Names, labels and the image reference shared by every template. */}}

{{- define "lvs-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or the release name when it already contains the chart name. */}}
{{- define "lvs-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* <fullname>-controller / <fullname>-agent: the names of each component's objects. */}}
{{- define "lvs-operator.controller.fullname" -}}
{{- printf "%s-controller" (include "lvs-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lvs-operator.agent.fullname" -}}
{{- printf "%s-agent" (include "lvs-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "lvs-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "lvs-operator.labels" -}}
helm.sh/chart: {{ include "lvs-operator.chart" . }}
{{ include "lvs-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lvs-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "lvs-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lvs-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component's objects: (dict "context" $ "component" "agent"). */}}
{{- define "lvs-operator.componentLabels" -}}
{{ include "lvs-operator.labels" .context }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "lvs-operator.componentSelectorLabels" -}}
{{ include "lvs-operator.selectorLabels" .context }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "lvs-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "lvs-operator.leaseName" -}}
{{- default (include "lvs-operator.controller.fullname" .) .Values.controller.leaderElection.leaseName }}
{{- end }}

{{/* The Secret with a director set's failover key: (dict "context" $ "set" <directorSets entry>):
its `secret`, else <fullname>-failover-<name>. */}}
{{- define "lvs-operator.failover.secretName" -}}
{{- default (printf "%s-failover-%s" (include "lvs-operator.fullname" .context) .set.name | trunc 63 | trimSuffix "-") .set.secret }}
{{- end }}

{{/* fwmarkMask as the controller's flag takes it: a string as written, a number in decimal. */}}
{{- define "lvs-operator.fwmarkMask" -}}
{{- if kindIs "string" .Values.fwmarkMask }}{{ .Values.fwmarkMask }}{{ else }}{{ .Values.fwmarkMask | int64 }}{{ end }}
{{- end }}
