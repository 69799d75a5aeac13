#!/usr/bin/env bash
# Build inference-perf's virtualenv (Python 3.12, pinned by roles/loadtest/files/inference-perf-requirements.txt) and
# its offline tokenizer into the tool cache, once: $GKE_AI_CACHE/venv/inference-perf-<version>/
#   bin/inference-perf   the benchmark
#   tokenizer/           a small word-level tokenizer (roles/loadtest/files/build_tokenizer.py)
# A complete directory whose lock matches the requirements file is kept as it is; several worktrees share it.
# Python 3.12: $PYTHON312, else python3.12 on PATH, else the newest 3.12 under pyenv.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
files=$repo/roles/loadtest/files
requirements=$files/inference-perf-requirements.txt
version=$(sed -n 's/^inference-perf==//p' "$requirements")
GKE_AI_CACHE=${GKE_AI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gke-ai-infgw}
dest=$GKE_AI_CACHE/venv/inference-perf-$version
lock_sum=$(sha256sum "$requirements" | cut -c1-16)
tokenizer_sum=$(sha256sum "$files/build_tokenizer.py" | cut -c1-16)

log() { printf '[loadtest-venv %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
flock 9  # another worktree building the same venv: wait for it

build_tokenizer() {  # the tokenizer has its own key: a new build_tokenizer.py rebuilds only the tokenizer
    if [[ $(cat "$dest/tokenizer/.source" 2>/dev/null) != "$tokenizer_sum" ]]; then
        rm -rf "$dest/tokenizer"
        HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error "$dest/bin/python" "$files/build_tokenizer.py" "$dest/tokenizer"
        echo "$tokenizer_sum" > "$dest/tokenizer/.source"
    fi
}

if [[ -f $dest/.complete && $(cat "$dest/.complete") == "$lock_sum" ]]; then
    build_tokenizer
    log "inference-perf $version: cached in $dest"
    exit 0
fi

usable() { [[ -n $1 ]] && "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }
python=""
for candidate in "${PYTHON312:-}" "$(command -v python3.12 || true)" \
        "$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12.*/bin/python3.12 2>/dev/null \
           | sort -V | tail -n1)"; do
    if usable "$candidate"; then python=$candidate; break; fi  # (a pyenv shim of another version does not run)
done
if [[ -z $python ]]; then
    echo "inference-perf $version needs Python >= 3.12: install it (pyenv install 3.12) or set PYTHON312" >&2
    exit 1
fi

log "inference-perf $version: building $dest with $("$python" --version) (about 80 s and 790 MB)"
start=$SECONDS
rm -rf "$dest"
"$python" -m venv "$dest"
"$dest/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
build_tokenizer
echo "$lock_sum" > "$dest/.complete"
log "inference-perf $version: built in $((SECONDS - start))s, $(du -sh "$dest" | cut -f1)"
