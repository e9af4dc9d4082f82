#!/usr/bin/env bash
# Fails when the committed generated code differs from what hack/update-codegen.sh produces.
set -o errexit
set -o nounset
set -o pipefail

SCRIPT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
TMP_ROOT="$(mktemp -d)"
trap 'rm -rf "${TMP_ROOT}"' EXIT

# Generate into a copy of the tree so a dirty working copy is never touched.
DIFF_PATHS=(pkg/apis pkg/generated hack/api-rules-violations.list)
cd "${SCRIPT_ROOT}"
tar --exclude=_output --exclude=.git --exclude=bin -cf - . | (cd "${TMP_ROOT}" && tar -xf -)
(cd "${TMP_ROOT}" && hack/update-codegen.sh >/dev/null)

ret=0
for p in "${DIFF_PATHS[@]}"; do
    diff -Naupr "${SCRIPT_ROOT}/${p}" "${TMP_ROOT}/${p}" || ret=1
done
if [[ ${ret} -ne 0 ]]; then
    echo "Generated code is out of date. Run hack/update-codegen.sh." >&2
    exit 1
fi
echo "Generated code is up to date."
