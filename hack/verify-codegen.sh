#!/usr/bin/env bash
# Fails when the committed generated code differs from what hack/update-codegen.sh produces.
set -o errexit
set -o nounset
set -o pipefail

SCRIPT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
TMP_ROOT="$(mktemp -d)"
trap 'rm -rf "${TMP_ROOT}"' EXIT

# Generate into a copy of the tree so the working copy is never touched.
cd "${SCRIPT_ROOT}"
tar --exclude=./_output --exclude=./.git --exclude=./bin -cf - . | (cd "${TMP_ROOT}" && tar -xf -)
(cd "${TMP_ROOT}" && hack/update-codegen.sh >/dev/null)

# Generated files: everything under pkg/generated, the zz_generated.* files under pkg/apis, and
# the API rule report. Comparing only these keeps hand-written files out of the verdict.
generated() {
    (cd "$1" && {
        find pkg/generated -type f
        find pkg/apis -type f -name 'zz_generated.*'
        echo hack/api-rules-violations.list
    } | LC_ALL=C sort)
}

ret=0
if ! diff -u <(generated "${SCRIPT_ROOT}") <(generated "${TMP_ROOT}"); then
    echo "The set of generated files differs (- committed, + generated)." >&2
    ret=1
fi
while read -r f; do
    if [[ -f "${TMP_ROOT}/${f}" ]] && ! diff -u "${SCRIPT_ROOT}/${f}" "${TMP_ROOT}/${f}"; then
        ret=1
    fi
done < <(generated "${SCRIPT_ROOT}")
if [[ ${ret} -ne 0 ]]; then
    echo "Generated code is out of date: run hack/update-codegen.sh (make codegen)." >&2
    exit 1
fi
echo "Generated code is up to date."
