{{- define "goldfinch.name" -}}{{ .Release.Name }}{{- end -}}

{{- define "goldfinch.labels" -}}
app.kubernetes.io/name: goldfinch-mesh
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "goldfinch.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "goldfinch.secretName" -}}
{{- if .Values.secrets.existingSecret -}}{{ .Values.secrets.existingSecret }}{{- else -}}{{ include "goldfinch.name" . }}-secrets{{- end -}}
{{- end -}}

{{/* The model every prefill and decode replica holds, and the mesh's one block size. */}}
{{- define "goldfinch.modelEnv" -}}
{{- if .Values.model.path }}
- name: GOLDFINCH_MODEL_PATH
  value: {{ .Values.model.path | quote }}
{{- else }}
- name: GOLDFINCH_MODEL_SHAPE
  value: {{ .Values.model.shape | quote }}
- name: GOLDFINCH_MODEL_SEED
  value: {{ .Values.model.seed | quote }}
{{- end }}
- name: GOLDFINCH_MODEL_NAME
  value: {{ .Values.model.name | quote }}
- name: GOLDFINCH_MODEL_MAXPROMPTTOKENS
  value: {{ .Values.model.maxPromptTokens | quote }}
- name: GOLDFINCH_MODEL_MAXTOKENSCAP
  value: {{ .Values.model.maxTokensCap | quote }}
- name: GOLDFINCH_CACHE_BLOCKSIZE
  value: {{ .Values.cache.blockSize | quote }}
- name: GOLDFINCH_CACHE_SIGNINGKEY
  valueFrom:
    secretKeyRef:
      name: {{ include "goldfinch.secretName" . }}
      key: signing-key
{{- end -}}

{{/* Ports, probes on gRPC health, the image. Args: root, component, mainClass, http, grpc. */}}
{{- define "goldfinch.container" -}}
name: {{ .component }}
image: "{{ .root.Values.image.repository }}:{{ .root.Values.image.tag }}"
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
args: [{{ .mainClass | quote }}]
ports:
  - name: http
    containerPort: {{ .http }}
  - name: grpc
    containerPort: {{ .grpc }}
readinessProbe:
  grpc:
    port: {{ .grpc }}
  periodSeconds: 5
livenessProbe:
  grpc:
    port: {{ .grpc }}
  initialDelaySeconds: 60
  periodSeconds: 10
  failureThreshold: 6
startupProbe:
  grpc:
    port: {{ .grpc }}
  periodSeconds: 5
  failureThreshold: 60
securityContext:
  runAsNonRoot: true
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
{{- end -}}
