#!/usr/bin/env bash
# Produce the execution environment's build context, no container runtime needed, and lint it:
#   1. ansible-galaxy collection build of this checkout (the tarball the EE installs),
#   2. ansible-builder create with ee/execution-environment.yml (staged beside the tarball),
#   3. hadolint (pinned in ee/lint-requirements.txt) on the generated Containerfile, failing on any finding
#      that ee/hadolint.yaml does not explicitly ignore.
# Then build the image where a runtime exists:  podman build -t gke-ai-ee:0.1.0 <context>
#   usage: ee/build-context.sh [CONTEXT_DIR]     (default .local/ee/context)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/.local/ee/context}
bin=${VENV_BIN:-$repo/.venv/bin}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

cp "$repo/ee/execution-environment.yml" "$repo/ee/install-binaries.sh" "$stage/"
mkdir -p "$stage/collection" "$stage/dist"
"$bin/ansible-galaxy" collection build "$repo" --output-path "$stage/dist" --force >/dev/null
tarballs=("$stage"/dist/gke_ai-inference_gateway-*.tar.gz)
mv "${tarballs[0]}" "$stage/collection/gke_ai-inference_gateway.tar.gz"
echo "[ee] collection: $(basename "${tarballs[0]}")"

rm -rf "$out"
"$bin/ansible-builder" create -f "$stage/execution-environment.yml" -c "$out" --output-filename Containerfile -v 1
echo "[ee] context: $out"

"$bin/hadolint" --no-color --config "$repo/ee/hadolint.yaml" "$out/Containerfile"
echo "[ee] hadolint: no findings"
