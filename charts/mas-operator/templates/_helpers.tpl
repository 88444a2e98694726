{{- define "mas-operator.name" -}}mas-operator{{- end -}}

{{- define "mas-operator.fullname" -}}
{{- if contains "mas-operator" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-mas-operator" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "mas-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "mas-operator.fullname" .) .Values.serviceAccount.name }}{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mas-operator.selectorLabels" -}}
app.kubernetes.io/name: mas-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mas-operator.labels" -}}
{{ include "mas-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{- define "mas-operator.controlKeySecret" -}}
{{- default (printf "%s-control-key" (include "mas-operator.fullname" .)) .Values.controlKey.existingSecret -}}
{{- end -}}
