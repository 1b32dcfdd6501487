{{/* Names, labels and image references shared by every template. */}}

{{- define "arena.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name: the release name alone when it already says arena-operator. */}}
{{- define "arena.fullname" -}}
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

{{/* A name derived from the full name, kept within 63 characters. */}}
{{- define "arena.suffixed" -}}
{{- $base := include "arena.fullname" .ctx -}}
{{- printf "%s-%s" ($base | trunc (int (sub 62 (len .suffix)))) .suffix | trimSuffix "-" -}}
{{- end -}}

{{- define "arena.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "arena.selectorLabels" -}}
app.kubernetes.io/name: {{ include "arena.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "arena.labels" -}}
helm.sh/chart: {{ include "arena.chart" . }}
{{ include "arena.selectorLabels" . }}
app.kubernetes.io/version: {{ include "arena.bundleVersion" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: arena
{{- end -}}

{{/* The installed setup-bundle version: what TrainingCluster spec.setupBundle.version says and the default image tag. */}}
{{- define "arena.bundleVersion" -}}
{{- .Values.bundleVersion | default .Chart.AppVersion -}}
{{- end -}}

{{/*
An image reference from {registry, repository, tag, digest}. global.imageRegistry replaces every image's registry,
so an air-gapped install changes one value. A digest pins the image; the tag stays in the reference for people.
*/}}
{{- define "arena.image" -}}
{{- $image := .image -}}
{{- $registry := .root.Values.global.imageRegistry | default $image.registry | trimSuffix "/" -}}
{{- $repo := $image.repository -}}
{{- if $registry -}}{{- $repo = printf "%s/%s" $registry $repo -}}{{- end -}}
{{- $tag := $image.tag | default (include "arena.bundleVersion" .root) -}}
{{- if eq $tag "latest" -}}
{{- fail (printf "the tag latest is not allowed for %s: a release pins what it runs; leave the tag empty for the bundle version, or set a version or a digest" $image.repository) -}}
{{- end -}}
{{- if $image.digest -}}
{{- printf "%s:%s@%s" $repo $tag $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{- define "arena.operatorImage" -}}
{{- include "arena.image" (dict "image" .Values.image "root" .) -}}
{{- end -}}

{{- define "arena.runtimeImage" -}}
{{- include "arena.image" (dict "image" .Values.runtimeImage "root" .) -}}
{{- end -}}

{{- define "arena.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "arena.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "arena.webhookServiceName" -}}
{{- include "arena.suffixed" (dict "ctx" . "suffix" "webhook") -}}
{{- end -}}

{{/* The operator names the webhook's serving-certificate Secret after the webhook Service. */}}
{{- define "arena.webhookSecretName" -}}
{{- printf "%s-tls" (include "arena.webhookServiceName" .) -}}
{{- end -}}

{{/* The operator creates its signing key Secret on first use (run tokens and agent API keys derive from it). */}}
{{- define "arena.signingKeySecretName" -}}
{{- include "arena.suffixed" (dict "ctx" . "suffix" "signing-key") -}}
{{- end -}}

{{- define "arena.statusApiSecretName" -}}
{{- .Values.statusApi.existingSecret | default (include "arena.suffixed" (dict "ctx" . "suffix" "status-api")) -}}
{{- end -}}

{{- define "arena.platformSecretName" -}}
{{- .Values.platform.existingSecret | default (include "arena.suffixed" (dict "ctx" . "suffix" "platform-token")) -}}
{{- end -}}

{{/* The in-cluster URL of the operator's API Service (runtime reports and the status API), always https. */}}
{{- define "arena.serviceUrl" -}}
{{- printf "https://%s.%s.svc:%d" (include "arena.fullname" .) .Release.Namespace (int .Values.service.port) -}}
{{- end -}}

{{/* The API's serving certificate: an administrator's Secret, or the one the operator makes and rotates. */}}
{{- define "arena.apiTlsSecretName" -}}
{{- .Values.apiTls.existingSecret | default (include "arena.suffixed" (dict "ctx" . "suffix" "api-tls")) -}}
{{- end -}}

{{/* The ConfigMap of the API's CAs the operator keeps in every namespace that runs workers. */}}
{{- define "arena.caConfigMapName" -}}
{{- include "arena.suffixed" (dict "ctx" . "suffix" "ca") -}}
{{- end -}}

{{/* The names of the CRDs this chart ships, from crds/. */}}
{{- define "arena.crdNames" -}}
{{- $names := list -}}
{{- range $path, $_ := .Files.Glob "crds/*.yaml" -}}
{{- $crd := $.Files.Get $path | fromYaml -}}
{{- $names = append $names $crd.metadata.name -}}
{{- end -}}
{{- $names | toJson -}}
{{- end -}}
