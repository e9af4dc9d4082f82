#!/usr/bin/env bash
# Runs the whole management plane on this machine (`make run`): PostgreSQL,
# etcd, kube-apiserver with aggregation configured, kube-controller-manager,
# kube-scheduler, kwok with fake nodes (pods reach Running without a container
# runtime) and cloud-api registered through an APIService, with artifacts/deploy
# applied. Prints an admin kubeconfig; `kubectl get pipelines` then goes through
# kube-apiserver. Needs the binaries `make tools` builds (and kwok's stages in
# bin/kwok-stages).
#
# Environment:
#   DATABASE_URL  cloud-api's database; default: database calyptia_core_plane on the local server
#   RUN_DIR       certificates, kubeconfigs and logs (default .run/plane, emptied on start)
#   REPLICAS      cloud-api replicas on the database (default 1)
#   UI_LISTEN     address of the web UI, core (default 127.0.0.1:3000)
set -euo pipefail
cd "$(dirname "$0")/.."
hack/ensure-postgres.sh
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
  [ -x "bin/$b" ] || { echo "local-cluster: bin/$b is missing; run make tools" >&2; exit 1; }
done
go build -o bin/local-plane ./test/e2e/cmd/local-plane
exec bin/local-plane --dir="${RUN_DIR:-.run/plane}" --replicas="${REPLICAS:-1}" --ui-listen="${UI_LISTEN:-127.0.0.1:3000}"
