#!/usr/bin/env bash
# Regenerates deepcopy, conversion, defaulter, OpenAPI, clientset, lister, informer and apply
# configuration code for pkg/apis with k8s.io/code-generator at the version go.mod pins.
set -o errexit
set -o nounset
set -o pipefail

SCRIPT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "${SCRIPT_ROOT}"

THIS_PKG="github.com/calyptia/core-management-plane"
BOILERPLATE="${SCRIPT_ROOT}/hack/boilerplate.go.txt"

# The version comes from go.mod (a `tool` directive keeps it there), so everyone generates with
# the same generators; `go mod download` puts that exact version in the module cache.
go mod download k8s.io/code-generator
CODEGEN_PKG="$(go list -m -f '{{.Dir}}' k8s.io/code-generator)"

# Generator binaries go to a project-local directory instead of the user's GOBIN.
export GOBIN="${SCRIPT_ROOT}/_output/codegen-bin"
mkdir -p "${GOBIN}"

# shellcheck source=/dev/null
source "${CODEGEN_PKG}/kube_codegen.sh"

# Pipelines embed core/v1 scheduling types (Affinity, Toleration, ...). Their OpenAPI definitions
# are generated into our openapi package, but their packages live in the read-only module cache,
# so openapi-gen must not write model name files there.
KUBE_CODEGEN_READONLY_PKGS+=(k8s.io/api/core/v1 k8s.io/apimachinery/pkg/util/intstr)

kube::codegen::gen_helpers \
    --boilerplate "${BOILERPLATE}" \
    "${SCRIPT_ROOT}/pkg/apis"

kube::codegen::gen_openapi \
    --output-dir "${SCRIPT_ROOT}/pkg/generated/openapi" \
    --output-pkg "${THIS_PKG}/pkg/generated/openapi" \
    --output-model-name-file "zz_generated.model_name.go" \
    --extra-pkgs "k8s.io/api/core/v1" \
    --extra-pkgs "k8s.io/api/autoscaling/v1" \
    --extra-pkgs "k8s.io/apimachinery/pkg/util/intstr" \
    --report-filename "${SCRIPT_ROOT}/hack/api-rules-violations.list" \
    --boilerplate "${BOILERPLATE}" \
    "${SCRIPT_ROOT}/pkg/apis"

# Apply configurations of the core/v1 and autoscaling/v1 types pipelines use come from client-go.
externals=()
for t in Affinity Toleration TopologySpreadConstraint Lifecycle ResourceRequirements; do
    externals+=("k8s.io/api/core/v1.${t}:k8s.io/client-go/applyconfigurations/core/v1")
done
externals+=("k8s.io/api/autoscaling/v1.Scale:k8s.io/client-go/applyconfigurations/autoscaling/v1")

kube::codegen::gen_client \
    --with-watch \
    --with-applyconfig \
    --applyconfig-externals "$(IFS=,; echo "${externals[*]}")" \
    --applyconfig-openapi-schema <(go run "${THIS_PKG}/pkg/generated/openapi/cmd/models-schema") \
    --output-dir "${SCRIPT_ROOT}/pkg/generated" \
    --output-pkg "${THIS_PKG}/pkg/generated" \
    --boilerplate "${BOILERPLATE}" \
    "${SCRIPT_ROOT}/pkg/apis"
