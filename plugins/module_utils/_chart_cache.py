# Copyright: Contributors to gke_ai.inference_gateway
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""Local cache of pulled OCI charts, keyed by manifest digest.

Layout of the cache directory (default `${XDG_CACHE_HOME:-~/.cache}/gke-ai-infgw/charts`)::

    sha256-<hex>.tgz     the chart archive of the OCI manifest sha256:<hex>
    index.json           {"version": 1,
                          "tags":   {"host/path/name:tag": "sha256:<hex>"},
                          "charts": {"sha256:<hex>": {"name", "version", "app_version",
                                                       "archive_sha256", "file"}}}
                          "helm_versions": {"<binary path:size:mtime>": "3.22.0"},
                          "values_probes": {"sha256:<inputs>": "sha256:<computed values>"}}
    index.lock           flock(2) lock taken while index.json is rewritten

`archive_sha256` is the sha256 of the .tgz (the OCI layer digest); a cached archive is
only used for an install when it still hashes to it. `values_probes` remembers, by hash only (values
may be secret), what helm computed from a task's values, values files and --set flags, so a no-op
run does not start `helm template` to find out again. The tag index is what lets a re-run with only a
version (tag) skip the registry: a tag, once resolved, is assumed not to move (the
module's refresh_tag option re-resolves it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile

try:
    import fcntl

    HAS_FCNTL = True
except ImportError:  # pragma: no cover - not POSIX
    HAS_FCNTL = False

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._helm import (
    DIGEST_RE,
    HelmError,
)

INDEX_VERSION = 1
MAX_VALUES_PROBES = 256


def default_cache_dir(environ=None):
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gke-ai-infgw", "charts")


def archive_name(digest):
    return digest.replace(":", "-") + ".tgz"


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def read_chart_metadata(archive):
    """Chart.yaml (name, version, appVersion) of a packaged chart."""
    if not HAS_YAML:
        raise HelmError("PyYAML is required to read Chart.yaml", kind="dependency")
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar.getmembers():
                parts = member.name.strip("./").split("/")
                if len(parts) == 2 and parts[1] == "Chart.yaml" and member.isfile():
                    meta = yaml.safe_load(tar.extractfile(member).read()) or {}
                    break
            else:
                raise HelmError("%s has no Chart.yaml at its top level" % archive, kind="invalid_chart")
    except (tarfile.TarError, OSError, yaml.YAMLError) as e:
        raise HelmError("Could not read chart archive %s: %s" % (archive, e), kind="invalid_chart")
    if not meta.get("name") or meta.get("version") is None:
        raise HelmError("Chart.yaml in %s lacks name or version" % archive, kind="invalid_chart")
    return {"name": str(meta["name"]), "version": str(meta["version"]),
            "app_version": None if meta.get("appVersion") is None else str(meta["appVersion"])}


class ChartCache:
    def __init__(self, directory):
        self.directory = directory
        self._index = None

    # -- index --------------------------------------------------------------------------

    @property
    def index_path(self):
        return os.path.join(self.directory, "index.json")

    def _empty(self):
        return {"version": INDEX_VERSION, "tags": {}, "charts": {}}

    def _read_index(self):
        try:
            with open(self.index_path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return self._empty()
        if not isinstance(data, dict) or data.get("version") != INDEX_VERSION:
            return self._empty()
        data.setdefault("tags", {})
        data.setdefault("charts", {})
        return data

    @property
    def index(self):
        if self._index is None:
            self._index = self._read_index()
        return self._index

    def _update_index(self, mutate):
        """Read-modify-write index.json under an exclusive lock (parallel forks share it)."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        lock_path = os.path.join(self.directory, "index.lock")
        with open(lock_path, "a") as lock:
            if HAS_FCNTL:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                data = self._read_index()
                mutate(data)
                fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".index-", suffix=".json")
                with os.fdopen(fd, "w") as f:
                    json.dump(data, f, indent=1)
                os.replace(tmp, self.index_path)
                self._index = data
            finally:
                if HAS_FCNTL:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    # -- lookups ------------------------------------------------------------------------

    def lookup_tag(self, tag_key):
        digest = self.index["tags"].get(tag_key) if tag_key else None
        return digest if digest and DIGEST_RE.match(digest) else None

    def chart_info(self, digest):
        info = self.index["charts"].get(digest)
        return dict(info) if isinstance(info, dict) else None

    def archive_path(self, digest, verify=True):
        """Path of the cached archive of `digest` when it is present (and, with `verify`, intact), else None."""
        info = self.chart_info(digest)
        if not info:
            return None
        path = os.path.join(self.directory, archive_name(digest))
        if not os.path.isfile(path):
            return None
        if verify and info.get("archive_sha256") and file_sha256(path) != info["archive_sha256"]:
            return None
        return path

    # -- updates ------------------------------------------------------------------------

    def tempdir(self):
        """A scratch directory on the cache's filesystem (so adding is an atomic rename)."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        return tempfile.mkdtemp(dir=self.directory, prefix=".pull-")

    def add(self, pulled_archive, digest, tag_key=None):
        """Move a freshly pulled archive into the cache under `digest` and index it."""
        if not DIGEST_RE.match(digest or ""):
            raise HelmError("refusing to cache chart under invalid digest %r" % digest, kind="parse")
        meta = read_chart_metadata(pulled_archive)
        meta["archive_sha256"] = file_sha256(pulled_archive)
        meta["file"] = archive_name(digest)
        final = os.path.join(self.directory, meta["file"])
        os.replace(pulled_archive, final)

        def mutate(data):
            data["charts"][digest] = meta
            if tag_key:
                data["tags"][tag_key] = digest

        self._update_index(mutate)
        return dict(meta)

    def helm_version(self, binary_key):
        versions = self.index.get("helm_versions")
        return versions.get(binary_key) if isinstance(versions, dict) else None

    def record_helm_version(self, binary_key, version):
        def mutate(data):
            versions = data.setdefault("helm_versions", {})
            versions.pop(binary_key, None)
            versions[binary_key] = version
            for stale in list(versions)[:-8]:  # an upgraded helm gets a new key: keep the recent few
                del versions[stale]

        self._update_index(mutate)

    def values_probe(self, key):
        """Digest of the values helm computed for the inputs `key` (see _helm.values_probe_key), or None."""
        probes = self.index.get("values_probes") if key else None
        return probes.get(key) if isinstance(probes, dict) else None

    def record_values_probe(self, key, digest):
        if not key or self.values_probe(key) == digest:
            return

        def mutate(data):
            probes = data.get("values_probes")
            if not isinstance(probes, dict):
                probes = data["values_probes"] = {}
            probes.pop(key, None)
            probes[key] = digest
            for stale in list(probes)[:-MAX_VALUES_PROBES]:  # oldest first (insertion order)
                del probes[stale]

        self._update_index(mutate)

    def record_tag(self, tag_key, digest):
        if not tag_key or self.lookup_tag(tag_key) == digest:
            return

        def mutate(data):
            data["tags"][tag_key] = digest

        self._update_index(mutate)

    def forget_tag(self, tag_key):
        def mutate(data):
            data["tags"].pop(tag_key, None)

        if tag_key in self.index["tags"]:
            self._update_index(mutate)


def find_pulled_archive(directory):
    """The single .tgz `helm pull` left in `directory`."""
    archives = [n for n in os.listdir(directory) if n.endswith(".tgz")]
    if len(archives) != 1:
        raise HelmError("expected one chart archive from helm pull in %s, found %s" % (directory, archives),
                        kind="parse")
    return os.path.join(directory, archives[0])


def remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)
