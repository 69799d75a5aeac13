#!/usr/bin/env bash
# ansible-test sanity needs the collection at ansible_collections/<ns>/<name>: run it on a copy
# of the files git would ship (tracked, plus untracked that are not ignored).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=$repo/.local/sanity/ansible_collections/gke_ai/inference_gateway
rm -rf "$dest" && mkdir -p "$dest"
cd "$repo"
# Only what the collection ships (galaxy.yml build_ignore drops hack/, molecule/ ...) plus tests/.
"$repo/.venv/bin/python" - "$repo" <<'PY' | while IFS= read -r -d '' f; do
import fnmatch, subprocess, sys, yaml
repo = sys.argv[1]
ignore = yaml.safe_load(open(f"{repo}/galaxy.yml"))["build_ignore"]
files = subprocess.run(["git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       capture_output=True, check=True).stdout.decode().split("\0")
for f in filter(None, files):
    if not any(fnmatch.fnmatch(f, pat) or f.startswith(pat.rstrip("/") + "/") for pat in ignore):
        sys.stdout.write(f + "\0")
PY
    [[ -e $f ]] && { mkdir -p "$dest/$(dirname "$f")"; cp -p "$f" "$dest/$f"; }
done
# ansible-test bootstraps pip in its venvs with a script from a host we cannot reach; give it ours.
pip_version=$(sed -n "s/^ *pip='\\([0-9.]*\\)',$/\\1/p" "$("$repo/.venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" | head -1)
mkdir -p ~/.ansible/test/cache
cp "$repo/hack/ansible_test_get_pip.py" ~/.ansible/test/cache/get_pip_${pip_version//./_}.py
# ansible-test resolves other collections only beside the one under test: put kubernetes.core there.
site=$("$repo/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -rf "$repo/.local/sanity/ansible_collections/kubernetes"
mkdir -p "$repo/.local/sanity/ansible_collections/kubernetes"
cp -r "$site/ansible_collections/kubernetes/core" "$repo/.local/sanity/ansible_collections/kubernetes/core"
cd "$dest"
# ansible-test reads the file list from git when .git exists; give it one that matches the copy.
git init -q . && git add -A >/dev/null
exec "$repo/.venv/bin/ansible-test" sanity --python 3.11 --local --requirements "$@"
