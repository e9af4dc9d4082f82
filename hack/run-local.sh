#!/usr/bin/env bash
# Runs cloud-api on this machine against PostgreSQL, standalone (no
# kube-apiserver): it authenticates users by client certificate only and
# authorises only the group system:masters. Everything it generates (CAs, the
# admin certificate, the encryption key, the kubeconfig) goes into .run/local,
# which git ignores, and is reused by later runs so stored secrets stay readable.
#
# Environment:
#   DATABASE_URL  database to use; default: database calyptia_core on the local server
#   PORT          HTTPS port on 127.0.0.1 (default 8443)
set -euo pipefail
cd "$(dirname "$0")/.."

port=${PORT:-8443}
dir=.run/local
mkdir -p "$dir"
chmod 700 "$dir"

hack/ensure-postgres.sh
if [ -z "${DATABASE_URL:-}" ]; then
  server=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
  if ! psql "$server" -tAc "SELECT 1 FROM pg_database WHERE datname = 'calyptia_core'" | grep -q 1; then
    psql "$server" -qc 'CREATE DATABASE calyptia_core'
  fi
  export DATABASE_URL=postgres://postgres@127.0.0.1:5432/calyptia_core?sslmode=disable
fi

# new_ca NAME: a self-signed CA, made once.
new_ca() {
  [ -f "$dir/$1.crt" ] && return
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
    -subj "/CN=cloud-api local $1" -keyout "$dir/$1.key" -out "$dir/$1.crt" 2>/dev/null
}
# issue CA NAME SUBJECT EXTENSIONS: a certificate signed by CA, made once.
issue() {
  [ -f "$dir/$2.crt" ] && return
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$3" \
    -keyout "$dir/$2.key" -out "$dir/$2.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$2.csr" -CA "$dir/$1.crt" -CAkey "$dir/$1.key" -CAcreateserial \
    -days 365 -extfile <(printf '%s\n' "$4") -out "$dir/$2.crt" 2>/dev/null
  rm -f "$dir/$2.csr"
}

# Separate CAs: one the client trusts for the server, one the server trusts for clients.
new_ca serving-ca
new_ca client-ca
issue serving-ca serving /CN=localhost \
  "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
issue client-ca admin "/O=system:masters/CN=admin" "extendedKeyUsage=clientAuth"

# Pipeline secrets (and only they) are encrypted at rest with a local key.
if [ ! -f "$dir/encryption.yaml" ]; then
  key=$(head -c 32 /dev/urandom | base64)
  umask 077
  cat > "$dir/encryption.yaml" <<YAML
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [pipelinesecrets.core.calyptia.com]
    providers:
      - secretbox:
          keys:
            - name: local
              secret: $key
      - identity: {}
YAML
fi

cat > "$dir/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
  - name: cloud-api-local
    cluster:
      server: https://127.0.0.1:$port
      certificate-authority: $PWD/$dir/serving-ca.crt
users:
  - name: admin
    user:
      client-certificate: $PWD/$dir/admin.crt
      client-key: $PWD/$dir/admin.key
contexts:
  - name: cloud-api-local
    context: {cluster: cloud-api-local, user: admin, namespace: default}
current-context: cloud-api-local
YAML

go build -o bin/cloud-api ./cmd/cloud-api

cat <<MSG

cloud-api is starting on https://127.0.0.1:$port.
In another terminal:

  export KUBECONFIG=$PWD/$dir/kubeconfig
  kubectl apply -f artifacts/examples/
  kubectl get calyptia
  kubectl get pipelines

Stop it with Ctrl-C.

MSG

# The database URL reaches cloud-api through DATABASE_URL, not argv, where ps
# would show any password in it.
exec bin/cloud-api \
  --standalone \
  --bind-address=127.0.0.1 --secure-port="$port" \
  --tls-cert-file="$dir/serving.crt" --tls-private-key-file="$dir/serving.key" \
  --client-ca-file="$dir/client-ca.crt" --authentication-skip-lookup \
  --encryption-provider-config="$dir/encryption.yaml"
