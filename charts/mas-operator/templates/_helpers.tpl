{{- define "mas-operator.name" -}}mas-operator{{- end -}}
{{- define "mas-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default .Release.Name .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}
{{- define "mas-operator.labels" -}}
app.kubernetes.io/name: mas-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
