{{/* Names, labels, the pod's files and environment, and the TOML writer of the configuration. */}}

{{- define "vigie.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vigie.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vigie.labels" -}}
{{ include "vigie.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "vigie.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vigie.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "vigie.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/*
The configuration the chart sets, with `.Values.config` merged over it. Secrets never appear
here: the store and directory URLs come from the environment (vigie.env).
*/}}
{{- define "vigie.config" -}}
{{- $v := .Values -}}
{{- /* Keys that hold secrets or URLs that may carry a password: refused, with where they go. */ -}}
{{- range $key, $where := dict "store.url" "store.urlSecret" "directory.url" "directory.urlSecret (or directory.sqlite)" "psc.client_secret" "psc.existingSecret and psc.client_secret_file" "mail.password" "extraEnvFromSecrets (VIGIE_MAIL__PASSWORD)" "admin.tokens" "adminTokens.existingSecret" -}}
{{- $parts := splitList "." $key -}}
{{- $section := get $v.config (first $parts) -}}
{{- if and (kindIs "map" $section) (hasKey $section (last $parts)) -}}
{{- fail (printf "config.%s: not in the values (they land in a ConfigMap); use %s" $key $where) -}}
{{- end -}}
{{- end -}}
{{- $server := dict "listen" (printf "0.0.0.0:%d" (int $v.ports.https)) "ops_listen" (printf "0.0.0.0:%d" (int $v.ports.ops)) "tls_cert" "/etc/vigie/tls/tls.crt" "tls_key" "/etc/vigie/tls/tls.key" -}}
{{- $cards := dict "enabled" $v.cards.enabled "trust" (dict "crl_cache_dir" "/var/lib/vigie/crl") -}}
{{- if $v.cards.trustAnchors -}}
{{- $anchors := list -}}
{{- range $v.cards.trustAnchors -}}{{- $anchors = append $anchors (printf "/etc/vigie/igc-sante/%s" .) -}}{{- end -}}
{{- $_ := set $cards.trust "anchors" $anchors -}}
{{- end -}}
{{- if and $v.ingress.enabled (eq $v.ingress.cardLogin "header") -}}
{{- $_ := set $cards "ingress_header" "ssl-client-cert" -}}
{{- $_ := set $cards "ingress_header_from" $v.ingress.controllerCidrs -}}
{{- $_ := set $server "trusted_proxies" $v.ingress.controllerCidrs -}}
{{- end -}}
{{- $directory := dict "max_connections" $v.directory.maxConnections "statement_timeout_ms" $v.directory.statementTimeoutMs -}}
{{- if not $v.directory.urlSecret.name -}}
{{- $_ := set $directory "url" $v.directory.sqlite -}}
{{- end -}}
{{- $base := dict "issuer" $v.issuer "server" $server "store" (dict "kind" $v.store.kind) "directory" $directory "keys" (dict "file" (printf "/etc/vigie/keys/%s" $v.signingKeys.key)) "audit" (dict "file" "-") "cards" $cards -}}
{{- $merged := mustMergeOverwrite $base (deepCopy $v.config) -}}
{{- include "vigie.toml" $merged -}}
{{- end -}}

{{/*
TOML from a map. Helm reads every YAML number as a float, and `toToml` writes 1800 as 1800.0 and
67108864 as 6.7108864e+07, which Vigie's integer keys refuse: this writer prints integral numbers
as integers. Tables: `[section]`; a list of tables: `[[section]]`; deeper tables inline.
*/}}
{{- define "vigie.toml" -}}
{{- $root := . -}}
{{- range $k, $val := $root -}}
{{- if and (not (kindIs "map" $val)) (not (and (kindIs "slice" $val) $val (kindIs "map" (first $val)))) (not (kindIs "invalid" $val)) }}
{{ include "vigie.toml.key" $k }} = {{ include "vigie.toml.value" $val }}
{{- end -}}
{{- end -}}
{{- range $k, $val := $root -}}
{{- if kindIs "map" $val }}

[{{ include "vigie.toml.key" $k }}]
{{- range $k2, $v2 := $val -}}
{{- if not (kindIs "invalid" $v2) }}
{{ include "vigie.toml.key" $k2 }} = {{ include "vigie.toml.value" $v2 }}
{{- end -}}
{{- end -}}
{{- else if and (kindIs "slice" $val) $val (kindIs "map" (first $val)) -}}
{{- range $item := $val }}

[[{{ include "vigie.toml.key" $k }}]]
{{- range $k2, $v2 := $item -}}
{{- if not (kindIs "invalid" $v2) }}
{{ include "vigie.toml.key" $k2 }} = {{ include "vigie.toml.value" $v2 }}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end }}
{{ end -}}

{{- define "vigie.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{- define "vigie.toml.value" -}}
{{- $x := . -}}
{{- if kindIs "float64" $x -}}
{{- if eq $x (float64 (int64 $x)) -}}{{ int64 $x }}{{- else -}}{{ $x }}{{- end -}}
{{- else if or (kindIs "int" $x) (kindIs "int64" $x) -}}{{ $x }}
{{- else if kindIs "bool" $x -}}{{ $x }}
{{- else if kindIs "string" $x -}}{{ toJson $x }}
{{- else if kindIs "slice" $x -}}[{{ range $i, $e := $x }}{{ if $i }}, {{ end }}{{ include "vigie.toml.value" $e }}{{ end }}]
{{- else if kindIs "map" $x -}}{ {{- range $i, $k := keys $x | sortAlpha }}{{ if $i }},{{ end }} {{ include "vigie.toml.key" $k }} = {{ include "vigie.toml.value" (get $x $k) }}{{ end }} }
{{- else -}}{{ fail (printf "config: a value of kind %s cannot be written as TOML" (kindOf $x)) }}
{{- end -}}
{{- end -}}

{{/* The environment: secrets by reference, never by value. */}}
{{- define "vigie.env" -}}
- name: VIGIE_LOG
  value: info
{{- if .Values.store.urlSecret.name }}
- name: VIGIE_STORE__URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.store.urlSecret.name | quote }}, key: {{ .Values.store.urlSecret.key | quote }}}
{{- end }}
{{- if .Values.directory.urlSecret.name }}
- name: VIGIE_DIRECTORY__URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.directory.urlSecret.name | quote }}, key: {{ .Values.directory.urlSecret.key | quote }}}
{{- end }}
{{- if .Values.adminTokens.existingSecret }}
- name: VIGIE_ADMIN__TOKENS
  valueFrom:
    secretKeyRef: {name: {{ .Values.adminTokens.existingSecret | quote }}, key: {{ .Values.adminTokens.key | quote }}}
{{- end }}
{{- with .Values.extraEnvFromSecrets }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The pod's files: configuration, TLS pair, signing keys, optional anchors and upstream secrets, writable dirs. */}}
{{- define "vigie.volumeMounts" -}}
- {name: config, mountPath: /etc/vigie/config, readOnly: true}
- {name: tls, mountPath: /etc/vigie/tls, readOnly: true}
- {name: keys, mountPath: /etc/vigie/keys, readOnly: true}
{{- if .Values.cards.trustAnchorsConfigMap }}
- {name: igc-sante, mountPath: /etc/vigie/igc-sante, readOnly: true}
{{- end }}
{{- if .Values.psc.existingSecret }}
- {name: psc, mountPath: /etc/vigie/psc, readOnly: true}
{{- end }}
{{- if .Values.dmp.existingSecret }}
- {name: dmp, mountPath: /etc/vigie/dmp, readOnly: true}
{{- end }}
- {name: data, mountPath: /var/lib/vigie}
- {name: tmp, mountPath: /tmp}
{{- end -}}

{{- define "vigie.volumes" -}}
{{- $ctx := index . 0 -}}
{{- $configMap := index . 1 -}}
- name: config
  configMap: {name: {{ $configMap }}}
- name: tls
  secret: {secretName: {{ $ctx.Values.tls.secretName | quote }}}
- name: keys
  secret: {secretName: {{ $ctx.Values.signingKeys.secretName | quote }}}
{{- if $ctx.Values.cards.trustAnchorsConfigMap }}
- name: igc-sante
  configMap: {name: {{ $ctx.Values.cards.trustAnchorsConfigMap | quote }}}
{{- end }}
{{- if $ctx.Values.psc.existingSecret }}
- name: psc
  secret: {secretName: {{ $ctx.Values.psc.existingSecret | quote }}}
{{- end }}
{{- if $ctx.Values.dmp.existingSecret }}
- name: dmp
  secret: {secretName: {{ $ctx.Values.dmp.existingSecret | quote }}}
{{- end }}
{{- if $ctx.Values.persistence.enabled }}
- name: data
  persistentVolumeClaim: {claimName: {{ default (printf "%s-data" (include "vigie.fullname" $ctx)) $ctx.Values.persistence.existingClaim }}}
{{- else }}
- name: data
  emptyDir: {sizeLimit: 256Mi}
{{- end }}
- name: tmp
  emptyDir: {sizeLimit: 64Mi}
{{- end -}}

{{- define "vigie.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "vigie.containerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end -}}
