# Copyright: Contributors to gke_ai.inference_gateway
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""Talking to the helm binary: command building, output parsing and error mapping.

Everything that does not run a process is a plain function or a small value class,
so it can be unit-tested without helm. `Helm` runs commands through a callable with
the shape of `AnsibleModule.run_command` and raises `HelmError` on failure; the module
turns that into `fail_json` at its edge.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import subprocess

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    HAS_YAML = False


MIN_HELM_VERSION = (3, 8, 0)
"""OCI registries are GA in helm 3.8; older versions cannot pull oci:// charts."""

FEATURE_MIN_VERSION = {
    "plain_http": (3, 13, 0),
    "digest_reference": (3, 18, 0),
    "set_json": (3, 10, 0),
    "set_literal": (3, 12, 0),
}

PENDING_STATUSES = ("pending-install", "pending-upgrade", "pending-rollback")
SET_VALUE_FLAGS = {
    "raw": "--set",
    "string": "--set-string",
    "json": "--set-json",
    "file": "--set-file",
    "literal": "--set-literal",
}

DESCRIPTION_MARKER = "gke_ai.inference_gateway.helm_oci_chart"
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_VERSION_RANGE_CHARS = set("^~<>=*, |")


class HelmError(Exception):
    """Every failure talking to helm or a registry, with what the user needs to act on it.

    `kind` is a stable short code (see `classify_helm_error`), `hint` says what to do.
    `command`, `stdout` and `stderr` never carry credentials: commands are built without
    them and passwords only travel in files the module writes with mode 0600.
    """

    def __init__(self, msg, kind="helm", hint=None, command=None, rc=None, stdout=None, stderr=None):
        super().__init__(msg)
        self.msg = msg
        self.kind = kind
        self.hint = hint
        self.command = command
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def to_result(self):
        """Keyword arguments for `fail_json` (msg included)."""
        msg = self.msg
        if self.hint:
            msg = "%s. %s" % (msg.rstrip("."), self.hint)
        result = {"msg": msg, "error_kind": self.kind}
        if self.command is not None:
            result["command"] = self.command
        if self.rc is not None:
            result["rc"] = self.rc
        if self.stdout:
            result["stdout"] = self.stdout
        if self.stderr:
            result["stderr"] = self.stderr
        return result


# --------------------------------------------------------------------------------------
# versions


def parse_helm_version(output):
    """`helm version --template '{{.Version}}'` (or `--short`) output -> (major, minor, patch)."""
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", output or "")
    if not m:
        return None
    return tuple(int(x) for x in m.groups())


def binary_identity(path):
    """`realpath:size:mtime_ns` of a binary, or None when it cannot be stat'ed."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return "%s:%d:%d" % (real, st.st_size, st.st_mtime_ns)


def format_version(version):
    return ".".join(str(x) for x in version) if version else "unknown"


def check_helm_version(version, binary, features=()):
    """Raise HelmError unless `version` is new enough for OCI and every feature used."""
    if version is None:
        raise HelmError(
            "Could not determine the version of helm at %s" % binary,
            kind="helm_version",
            hint="Point binary_path at a helm 3 binary (>= %s)" % format_version(MIN_HELM_VERSION),
        )
    if version < MIN_HELM_VERSION:
        raise HelmError(
            "helm at %s is version %s; helm_oci_chart needs helm >= %s (OCI registry support)"
            % (binary, format_version(version), format_version(MIN_HELM_VERSION)),
            kind="helm_version",
            hint="Install a newer helm and set binary_path",
        )
    for feature in features:
        need = FEATURE_MIN_VERSION[feature]
        if version < need:
            raise HelmError(
                "helm at %s is version %s; %s needs helm >= %s"
                % (binary, format_version(version), feature.replace("_", " "), format_version(need)),
                kind="helm_version",
                hint="Install a newer helm and set binary_path",
            )


# --------------------------------------------------------------------------------------
# chart references


class ChartRef:
    """An `oci://host[:port]/path/name` reference plus optional tag and digest."""

    __slots__ = ("registry", "repository", "tag", "digest", "version")

    def __init__(self, registry, repository, tag=None, digest=None, version=None):
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
        self.version = version  # the chart version as the user wrote it (tag may have + -> _)

    @property
    def name(self):
        return self.repository.rsplit("/", 1)[-1]

    @property
    def base(self):
        """`oci://host/path/name`, no tag, no digest."""
        return "oci://%s/%s" % (self.registry, self.repository)

    def tag_key(self):
        """Key of the local tag index: `host/path/name:tag` (None without a tag)."""
        if not self.tag:
            return None
        return "%s/%s:%s" % (self.registry, self.repository, self.tag)

    def display_tag(self):
        """`oci://host/path/name:tag` (no digest), the form recorded in release descriptions."""
        return self.base + (":" + self.tag if self.tag else "")

    def display(self, digest=None):
        digest = digest or self.digest
        text = self.base
        if self.tag:
            text += ":" + self.tag
        if digest:
            text += "@" + digest
        return text

    def with_digest(self, digest):
        return ChartRef(self.registry, self.repository, self.tag, digest, self.version)

    def __eq__(self, other):
        return isinstance(other, ChartRef) and all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self):
        return "ChartRef(%r)" % self.display()


def parse_chart_ref(chart_ref, version=None, digest=None):
    """Parse `chart_ref` (oci://host/path/name[:tag][@sha256:...]) and merge `version`/`digest`.

    A tag or digest embedded in `chart_ref` is accepted when the matching option is unset
    or equal. Version ranges are refused: they would need a registry request on every run.
    """
    if not chart_ref or not chart_ref.startswith("oci://"):
        raise HelmError(
            "chart_ref must be an OCI reference of the form oci://host/path/name, got %r" % chart_ref,
            kind="invalid_argument",
        )
    raw = chart_ref[len("oci://"):].rstrip("/")
    embedded_digest = None
    if "@" in raw:
        raw, embedded_digest = raw.rsplit("@", 1)
    embedded_tag = None
    head, sep, last = raw.rpartition(":")
    if sep and "/" not in last:
        raw, embedded_tag = head, last
    if "/" not in raw:
        raise HelmError(
            "chart_ref %r has no repository path after the registry host" % chart_ref, kind="invalid_argument"
        )
    registry, repository = raw.split("/", 1)
    if not registry or not repository or "//" in repository:
        raise HelmError("chart_ref %r is not a valid OCI reference" % chart_ref, kind="invalid_argument")

    if version is not None and embedded_tag is not None and tag_for_version(version) != embedded_tag:
        raise HelmError(
            "chart_ref carries tag %s but version is %s" % (embedded_tag, version), kind="invalid_argument"
        )
    if digest is not None and embedded_digest is not None and digest != embedded_digest:
        raise HelmError(
            "chart_ref carries digest %s but digest is %s" % (embedded_digest, digest), kind="invalid_argument"
        )
    version = version if version is not None else embedded_tag
    digest = digest if digest is not None else embedded_digest
    tag = None
    if version is not None:
        version = str(version)
        if any(c in _VERSION_RANGE_CHARS for c in version):
            raise HelmError(
                "version %r looks like a version range; give the exact chart version (OCI tag)" % version,
                kind="invalid_argument",
            )
        tag = tag_for_version(version)
        if not _TAG_RE.match(tag):
            raise HelmError("version %r is not a valid OCI tag" % version, kind="invalid_argument")
    if digest is not None and not DIGEST_RE.match(digest):
        raise HelmError(
            "digest must look like sha256:<64 lowercase hex characters>, got %r" % digest, kind="invalid_argument"
        )
    if tag is None and digest is None:
        raise HelmError(
            "Give version (the chart's OCI tag) and/or digest: an unpinned chart would need a registry "
            "request on every run to find the newest version",
            kind="invalid_argument",
        )
    return ChartRef(registry, repository, tag, digest, version)


def tag_for_version(version):
    """helm stores chart version `1.0.0+build` under the OCI tag `1.0.0_build`."""
    return str(version).replace("+", "_")


def split_mirror_target(mirror_to):
    """`oci://host/path` -> (host, path). The chart name is appended like `helm push` does."""
    if not mirror_to or not mirror_to.startswith("oci://"):
        raise HelmError("mirror_to must look like oci://host/path, got %r" % mirror_to, kind="invalid_argument")
    raw = mirror_to[len("oci://"):].strip("/")
    if "@" in raw or not raw:
        raise HelmError("mirror_to must look like oci://host/path, got %r" % mirror_to, kind="invalid_argument")
    if "/" in raw:
        host, path = raw.split("/", 1)
    else:
        host, path = raw, ""
    return host, path


# --------------------------------------------------------------------------------------
# release description: where the module records the chart digest


def encode_description(ref, digest):
    """Text for `helm upgrade --description`: records the OCI reference and its digest.

    helm keeps it per revision and returns it in `helm status -o json` (info.description),
    so a no-op run reads it with the call it makes anyway. Labels are not used: helm does not
    return them in any JSON output and a sha256 (64 hex) is longer than a label value may be.
    """
    return "%s: %s" % (DESCRIPTION_MARKER, ref.display(digest))


_DESCRIPTION_RE = re.compile(
    re.escape(DESCRIPTION_MARKER) + r": (?P<ref>oci://\S+?)@(?P<digest>sha256:[0-9a-f]{64})(?:\s|$)"
)
_ROLLBACK_RE = re.compile(r"^Rollback to (\d+)$")


def decode_description(description):
    """-> (ref_without_digest, digest) recorded by `encode_description`, or (None, None)."""
    m = _DESCRIPTION_RE.search(description or "")
    if not m:
        return None, None
    return m.group("ref"), m.group("digest")


def rollback_source(description):
    """helm writes `Rollback to N` on the revision a rollback creates -> N (else None)."""
    m = _ROLLBACK_RE.match((description or "").strip())
    return int(m.group(1)) if m else None


def resolve_recorded_digest(description, history=None):
    """Digest recorded for a revision, following `Rollback to N` through the history.

    `history` is the parsed `helm history -o json` list (or None when not loaded yet).
    Returns (ref, digest, needs_history): needs_history is True when the answer depends
    on history that was not given.
    """
    seen = set()
    while True:
        ref, digest = decode_description(description)
        if digest:
            return ref, digest, False
        target = rollback_source(description)
        if target is None or target in seen:
            return None, None, False
        if history is None:
            return None, None, True
        seen.add(target)
        entry = next((h for h in history if h.get("revision") == target), None)
        if entry is None:
            return None, None, False
        description = entry.get("description")


# --------------------------------------------------------------------------------------
# parsing helm output


class ReleaseInfo:
    """The parts of a release (`helm status -o json`, `helm upgrade -o json`) the module uses."""

    __slots__ = (
        "name", "namespace", "revision", "status", "chart_name", "chart_version", "app_version",
        "config", "manifest", "description", "updated",
    )

    def __init__(self, **kwargs):
        for slot in self.__slots__:
            setattr(self, slot, kwargs.get(slot))

    @property
    def pending(self):
        return self.status in PENDING_STATUSES

    def as_dict(self):
        return {s: getattr(self, s) for s in self.__slots__}


def _load_json(text, what):
    text = (text or "").strip()
    start = text.find("{") if what != "history" else text.find("[")
    if start < 0:
        raise HelmError("helm printed no JSON for %s" % what, kind="parse", stdout=text[:2000])
    try:
        return json.loads(text[start:])
    except ValueError as e:
        raise HelmError("Could not parse helm's JSON output for %s: %s" % (what, e), kind="parse",
                        stdout=text[:2000])


def parse_release_json(text):
    """Parse a release as printed by `helm status/upgrade/install -o json`."""
    data = _load_json(text, "release")
    info = data.get("info") or {}
    chart = data.get("chart") or {}
    meta = chart.get("metadata") or {}
    return ReleaseInfo(
        name=data.get("name"),
        namespace=data.get("namespace"),
        revision=data.get("version"),
        status=info.get("status"),
        chart_name=meta.get("name"),
        chart_version=meta.get("version"),
        app_version=meta.get("appVersion"),
        config=data.get("config") or {},
        manifest=data.get("manifest") or "",
        description=info.get("description") or "",
        updated=info.get("last_deployed"),
    )


# `helm status -o json` drops the chart and the values, so the release is read with one
# `helm get all --template` (plain Go text/template, no sprig and so no toJson: strings are printed
# with %q). The user-supplied values (.Release.Config, what `helm get values` prints) come last, written
# by a recursive template as one token per line (see parse_config_lines), so a release is one process.
CONFIG_MARKER = "config\t-"
CONFIG_TEMPLATE = (
    '{{define "infgw.v"}}{{$t := printf "%T" .}}'
    '{{if eq $t "map[string]interface {}"}}{\n{{range $k, $v := .}}{{printf "%q" $k}}\n{{template "infgw.v" $v}}'
    '{{end}}}\n'
    '{{else if eq $t "[]interface {}"}}[\n{{range .}}{{template "infgw.v" .}}{{end}}]\n'
    '{{else}}{{$t}} {{printf "%q" (print .)}}\n{{end}}{{end}}'
)
RELEASE_TEMPLATE = "".join(
    "%s\t{{printf \"%%q\" %s}}\n" % (key, expr) for key, expr in (
        ("name", ".Release.Name"),
        ("namespace", ".Release.Namespace"),
        ("revision", "(print .Release.Version)"),
        ("status", ".Release.Info.Status"),
        ("description", ".Release.Info.Description"),
        ("updated", ".Release.Info.LastDeployed"),
        ("chart_name", ".Release.Chart.Metadata.Name"),
        ("chart_version", ".Release.Chart.Metadata.Version"),
        ("app_version", ".Release.Chart.Metadata.AppVersion"),
        ("manifest", ".Release.Manifest"),
    )
) + CONFIG_MARKER + "\n" + CONFIG_TEMPLATE + '{{template "infgw.v" .Release.Config}}'

_GO_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34, "'": 39}


def go_unquote(text):
    """Inverse of Go's strconv.Quote (what `printf "%q"` prints)."""
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise HelmError("not a Go quoted string: %r" % text[:80], kind="parse")
    body = text[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        e = body[i + 1:i + 2]
        if e in _GO_ESCAPES:
            out.append(_GO_ESCAPES[e])
            i += 2
        elif e == "x":
            out.append(int(body[i + 2:i + 4], 16))
            i += 4
        elif e == "u":
            out += chr(int(body[i + 2:i + 6], 16)).encode("utf-8")
            i += 6
        elif e == "U":
            out += chr(int(body[i + 2:i + 10], 16)).encode("utf-8")
            i += 10
        elif e and e in "01234567":
            out.append(int(body[i + 1:i + 4], 8))
            i += 4
        else:
            raise HelmError("bad escape in Go quoted string: %r" % body[i:i + 4], kind="parse")
    return out.decode("utf-8", "replace")


def _go_float(quoted):
    """A float64 as `helm get values -o json` would print it: Go's JSON encoder writes integral values below
    1e21 without a fraction or exponent, so Python's JSON reader makes them ints."""
    value = float(go_unquote(quoted))
    if value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


_CONFIG_SCALARS = {
    "string": go_unquote,
    "bool": lambda q: go_unquote(q) == "true",
    "float64": _go_float,
    "float32": _go_float,
    "int": lambda q: int(go_unquote(q)),
    "int64": lambda q: int(go_unquote(q)),
    "int32": lambda q: int(go_unquote(q)),
    "uint64": lambda q: int(go_unquote(q)),
    "<nil>": lambda q: None,
}


class _UnknownConfig(Exception):
    """The config block holds a type the parser does not know: read the values with `helm get values`."""


def parse_config_lines(lines):
    """The token lines CONFIG_TEMPLATE prints -> the values tree, or None when they cannot be read
    (then `helm get values -o json` is asked instead).

    A map is `{`, then per key (sorted) a `"key"` line and its value, then `}`; a list is `[`, its
    items, `]`; a scalar is `<Go type> "<printed value, %q>"`. Numbers of a release's values are
    float64 (helm stores releases as JSON); they come out as `helm get values -o json` reads in Python.
    """
    pos = [0]

    def value():
        if pos[0] >= len(lines):
            raise _UnknownConfig("truncated")
        line = lines[pos[0]]
        pos[0] += 1
        if line == "{":
            out = {}
            while True:
                if pos[0] >= len(lines):
                    raise _UnknownConfig("truncated map")
                key_line = lines[pos[0]]
                pos[0] += 1
                if key_line == "}":
                    return out
                if not key_line.startswith('"'):
                    raise _UnknownConfig("bad key")
                out[go_unquote(key_line)] = value()
        if line == "[":
            out = []
            while True:
                if pos[0] >= len(lines):
                    raise _UnknownConfig("truncated list")
                if lines[pos[0]] == "]":
                    pos[0] += 1
                    return out
                out.append(value())
        go_type, sep, quoted = line.partition(" ")
        if not sep or go_type not in _CONFIG_SCALARS:
            raise _UnknownConfig(go_type)
        return _CONFIG_SCALARS[go_type](quoted)

    try:
        tree = value()
        if pos[0] != len(lines) or not isinstance(tree, dict):
            return None
        return tree
    except (_UnknownConfig, HelmError, ValueError):
        return None


def parse_release_template(text):
    """Output of `helm get all --template RELEASE_TEMPLATE` -> ReleaseInfo.

    `config` (the user-supplied values) is None when the output has no config block the parser can
    read (a template without it, or a value type it does not know); the caller then asks helm.
    """
    fields = {}
    lines = (text or "").splitlines()
    config = None
    for i, line in enumerate(lines):
        if line == CONFIG_MARKER:
            config = parse_config_lines([x for x in lines[i + 1:] if x])
            break
        key, sep, value = line.partition("\t")
        if sep and key in ReleaseInfo.__slots__:
            fields[key] = go_unquote(value)
    missing = [k for k in ("name", "revision", "status") if not fields.get(k)]
    if missing:
        raise HelmError("helm get all printed no %s" % ", ".join(missing), kind="parse", stdout=(text or "")[:2000])
    try:
        fields["revision"] = int(fields["revision"])
    except ValueError:
        raise HelmError("helm get all printed a bad revision %r" % fields["revision"], kind="parse")
    fields.setdefault("manifest", "")
    fields["app_version"] = fields.get("app_version") or None
    fields["config"] = config
    return ReleaseInfo(**fields)


def parse_history_json(text):
    """`helm history -o json` -> list of dicts sorted by revision."""
    data = _load_json(text, "history")
    if not isinstance(data, list):
        raise HelmError("helm history did not print a JSON list", kind="parse")
    return sorted(data, key=lambda h: h.get("revision", 0))


def parse_values_json(text):
    """`helm get values -o json`: helm prints `null` when no values were supplied."""
    text = (text or "").strip()
    if text in ("", "null"):
        return {}
    try:
        data = json.loads(text)
    except ValueError as e:
        raise HelmError("Could not parse helm's values JSON: %s" % e, kind="parse")
    return data or {}


def parse_pushed_or_pulled_digest(output):
    """`Digest: sha256:...` printed by `helm pull` and `helm push` (on stderr)."""
    m = re.search(r"^Digest:\s*(sha256:[0-9a-f]{64})\s*$", output or "", re.M)
    return m.group(1) if m else None


def parse_probe_output(text):
    """Output of `helm template` on the values probe chart -> the merged user values."""
    for line in (text or "").splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError as e:
                raise HelmError("Could not parse the computed values: %s" % e, kind="parse")
    raise HelmError("helm template printed no values for the values probe", kind="parse", stdout=text[:2000])


# Kinds that are cluster-scoped in every Kubernetes version the collection supports. Used to
# leave `namespace` empty for them in `resources`; everything else gets the release namespace.
CLUSTER_SCOPED_KINDS = frozenset((
    "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding",
    "CustomResourceDefinition", "IngressClass", "MutatingWebhookConfiguration", "Namespace", "Node",
    "PersistentVolume", "PriorityClass", "RuntimeClass", "StorageClass", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration", "GatewayClass", "VolumeAttachment",
    "CSIDriver", "CSINode", "FlowSchema", "PriorityLevelConfiguration",
))


def parse_manifest_resources(manifest, release_namespace):
    """Kind/namespace/name of every object in a rendered release manifest."""
    if not manifest:
        return []
    if not HAS_YAML:
        raise HelmError("PyYAML is required to parse release manifests", kind="dependency")
    resources = []
    try:
        # libyaml's loader when available: release manifests are large and the pure-Python
        # loader costs a noticeable part of a no-op run
        docs = list(yaml.load_all(manifest, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    except yaml.YAMLError as e:
        raise HelmError("Could not parse the release manifest: %s" % e, kind="parse")
    for doc in docs:
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        items = doc.get("items") if doc["kind"].endswith("List") and isinstance(doc.get("items"), list) else [doc]
        for item in items:
            if not isinstance(item, dict):
                continue
            meta = item.get("metadata") or {}
            kind = item.get("kind")
            namespace = meta.get("namespace")
            if not namespace and kind not in CLUSTER_SCOPED_KINDS:
                namespace = release_namespace
            resources.append({
                "api_version": item.get("apiVersion"),
                "kind": kind,
                "namespace": namespace if kind not in CLUSTER_SCOPED_KINDS else None,
                "name": meta.get("name"),
            })
    return resources


# --------------------------------------------------------------------------------------
# error mapping

_ERROR_PATTERNS = (
    ("pending_operation", re.compile(r"another operation \(install/upgrade/rollback\) is in progress"),
     "An earlier helm operation on this release did not finish; set recover_pending=true to recover it"),
    ("release_not_found", re.compile(r"release: not found|has no deployed releases"), None),
    ("plain_http", re.compile(r"server gave HTTP response to HTTPS client"),
     "The registry speaks plain HTTP; set plain_http=true"),
    ("digest_mismatch", re.compile(r"digest mismatch"), None),
    ("registry_auth", re.compile(r"401 Unauthorized|unauthorized|authentication required|403 Forbidden|denied",
                                 re.I),
     "Check registry_username/registry_password or registry_token"),
    ("chart_not_found", re.compile(r"FetchReference\".*not found|: not found$|manifest unknown|name unknown",
                                   re.M),
     "Check chart_ref, version and digest"),
    ("cluster_unreachable", re.compile(r"Kubernetes cluster unreachable"),
     "Check kubeconfig/context (or the KUBECONFIG environment variable)"),
    ("timeout", re.compile(r"context deadline exceeded|timed out waiting for the condition"),
     "Increase timeout or check why the release's resources do not become ready"),
    ("registry_unreachable", re.compile(r"dial tcp.*connection refused|no such host|i/o timeout"),
     "Check that the registry (or the cluster) is reachable"),
)


def classify_helm_error(stderr):
    """-> (kind, hint) for a helm failure's stderr."""
    for kind, pattern, hint in _ERROR_PATTERNS:
        if pattern.search(stderr or ""):
            return kind, hint
    return "helm", None


def helm_error_from_result(argv, rc, stdout, stderr, action=None):
    kind, hint = classify_helm_error(stderr)
    first = (stderr or stdout or "").strip().splitlines()
    detail = first[-1] if first else "no output"
    if detail.startswith("Error: "):
        detail = detail[len("Error: "):]
    if len(detail) > 600:
        detail = detail[:300] + " ... " + detail[-300:]
    msg = "%s failed (rc=%s): %s" % (action or "helm %s" % (argv[1] if len(argv) > 1 else ""), rc, detail)
    return HelmError(msg, kind=kind, hint=hint, command=format_command(argv), rc=rc,
                     stdout=(stdout or "")[-2000:], stderr=(stderr or "")[-2000:])


def format_command(argv):
    """The command as a shell line, for results (the long release template is abbreviated)."""
    return " ".join(shlex.quote(str(a)) if a != RELEASE_TEMPLATE else "'<release template>'" for a in argv)


# --------------------------------------------------------------------------------------
# values


def set_values_args(set_values):
    """`set_values` option -> helm arguments, e.g. [{value: 'a=b', value_type: string}] -> ['--set-string', 'a=b']."""
    args = []
    for item in set_values or ():
        value_type = item.get("value_type") or "raw"
        if value_type not in SET_VALUE_FLAGS:
            raise HelmError("Unknown set_values value_type %r" % value_type, kind="invalid_argument")
        value = item.get("value")
        if not isinstance(value, str) or "=" not in value:
            raise HelmError("set_values entries must look like key=value, got %r" % (value,), kind="invalid_argument")
        args.extend([SET_VALUE_FLAGS[value_type], value])
    return args


def _canonical(data):
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def values_digest(values):
    """sha256 of the canonical form of a values tree (what the probe cache stores, never the values)."""
    return "sha256:" + hashlib.sha256(_canonical(normalize_values(values or {})).encode("utf-8")).hexdigest()


def values_probe_key(helm_version, values, values_files, set_args):
    """Key of the values probe cache: everything `helm template` of the probe chart depends on, files
    by content. None when a file cannot be read (helm then reports the problem itself)."""
    try:
        files = [_file_sha256(path) for path in values_files or ()]
        sets = []
        for i, arg in enumerate(set_args):
            sets.append(arg)
            if i and set_args[i - 1] == "--set-file":
                _key, _sep, path = arg.partition("=")
                sets.append(_file_sha256(path))
    except (OSError, TypeError):
        return None
    material = {"helm": format_version(helm_version), "values": values or {}, "files": files, "sets": sets}
    return "sha256:" + hashlib.sha256(_canonical(material).encode("utf-8")).hexdigest()


def set_values_features(set_values):
    """Helm features (for the version check) the given set_values need."""
    features = set()
    for item in set_values or ():
        if item.get("value_type") == "json":
            features.add("set_json")
        elif item.get("value_type") == "literal":
            features.add("set_literal")
    return sorted(features)


def normalize_values(value):
    """Canonical form for comparing values: JSON round trip, integral floats as ints.

    helm decodes values files through JSON into float64, so `3` and `3.0` are the same value
    to it; dict key order never matters.
    """
    if isinstance(value, dict):
        return {str(k): normalize_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize_values(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
        return int(value)
    return value


def values_changes(before, after, prefix=""):
    """Dotted paths whose values differ between two values trees (no values, they may be secret)."""
    before = normalize_values(before if before is not None else {})
    after = normalize_values(after if after is not None else {})
    changes = []
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            path = "%s.%s" % (prefix, key) if prefix else key
            if key not in before:
                changes.append(path)
            elif key not in after:
                changes.append(path)
            else:
                changes.extend(values_changes(before[key], after[key], path))
        return changes
    if before != after:
        changes.append(prefix or "(root)")
    return changes


# --------------------------------------------------------------------------------------
# the idempotency decision


class DesiredChart:
    __slots__ = ("name", "version", "app_version", "digest")

    def __init__(self, name, version, digest, app_version=None):
        self.name = name
        self.version = version
        self.digest = digest
        self.app_version = app_version


class Plan:
    __slots__ = ("action", "reasons")

    def __init__(self, action, reasons):
        self.action = action  # "install", "upgrade" or "none"
        self.reasons = reasons

    @property
    def changed(self):
        return self.action != "none"

    def __repr__(self):
        return "Plan(%r, %r)" % (self.action, self.reasons)


def plan_release(deployed, deployed_digest, desired_chart, desired_values):
    """Decide install / upgrade / nothing from what is deployed and what is wanted.

    `deployed` is a ReleaseInfo (None when there is no release), `deployed_digest` the chart
    digest recorded on it (None when unknown). A pending release never reaches this point.
    """
    if deployed is None or deployed.status == "uninstalled":
        return Plan("install", ["release does not exist" if deployed is None else "release was uninstalled"])
    if deployed.pending:
        raise HelmError("release %s is %s" % (deployed.name, deployed.status), kind="pending_release")
    reasons = []
    if deployed.status != "deployed":
        reasons.append("release status is %s" % deployed.status)
    if deployed.chart_name != desired_chart.name:
        reasons.append("chart %s -> %s" % (deployed.chart_name, desired_chart.name))
    if deployed.chart_version != desired_chart.version:
        reasons.append("chart version %s -> %s" % (deployed.chart_version, desired_chart.version))
    if deployed_digest is None:
        reasons.append("the deployed revision has no chart digest record (not installed by helm_oci_chart)")
    elif deployed_digest != desired_chart.digest:
        reasons.append("chart digest %s -> %s" % (deployed_digest, desired_chart.digest))
    changed_paths = values_changes(deployed.config, desired_values)
    if changed_paths:
        shown = ", ".join(changed_paths[:10]) + (", ..." if len(changed_paths) > 10 else "")
        reasons.append("values changed: %s" % shown)
    return Plan("upgrade" if reasons else "none", reasons)


def plan_recovery(history):
    """What to do about a release whose newest revision is pending-*.

    -> ("rollback", revision) to the newest revision that was deployed (or superseded),
    or ("uninstall", None) when no revision ever deployed (an interrupted first install).
    """
    if not history:
        return "uninstall", None
    current = history[-1]
    older = [h for h in history if h.get("revision", 0) < current.get("revision", 0)]
    for wanted in ("deployed", "superseded"):
        candidates = [h for h in older if h.get("status") == wanted]
        if candidates:
            return "rollback", candidates[-1]["revision"]
    return "uninstall", None


def recovery_command(release, recovery):
    """The helm command that resolves a pending release the way `plan_recovery` decided."""
    action, revision = recovery
    if action == "rollback":
        return "roll back to revision %s (helm rollback %s %s -n %s)" % (
            revision, release.name, revision, release.namespace)
    return "uninstall it, no revision was ever deployed (helm uninstall %s -n %s)" % (release.name, release.namespace)


def pending_message(release, recovery):
    return (
        "Release %s in namespace %s is stuck in %s (revision %s, last change %s): an earlier helm operation "
        "was interrupted and helm refuses further changes until it is resolved. Set recover_pending=true "
        "to let this module %s, then re-run"
        % (release.name, release.namespace, release.status, release.revision, release.updated or "unknown",
           recovery_command(release, recovery))
    )


_HELM_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?")


def parse_helm_time(text):
    """A release's LastDeployed as helm prints it (Go's ``2026-12-04 12:38:36.0964 +0000 UTC`` or RFC 3339)
    -> seconds since the epoch, or None when it cannot be read."""
    match = _HELM_TIME.match(str(text or "").strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(x) for x in match.groups()[:6])
    fraction = float(match.group(7) or 0)
    offset = match.group(8) or "Z"
    shift = 0
    if offset != "Z":
        digits = offset[1:].replace(":", "")
        shift = (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * (1 if offset[0] == "+" else -1)
    days = _days_from_civil(year, month, day)
    return days * 86400 + hour * 3600 + minute * 60 + second + fraction - shift


def _days_from_civil(year, month, day):
    """Days since 1970-01-01 of a proleptic Gregorian date (no time zone database needed)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def duration_seconds(duration):
    """A Go duration (``5m0s``, ``90s``, ``1h30m``; a bare number is seconds) -> seconds."""
    text = normalize_timeout(duration) or "0s"
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * units[unit] for number, _frac, unit in re.findall(r"(\d+(\.\d+)?)(ns|us|ms|s|m|h)", text))


def pending_too_young(release, now, grace_seconds):
    """How long `release` has been pending, when that is less than `grace_seconds` (it may be an operation still
    running: another run's); None when it is old enough to recover. An unreadable start counts as young."""
    if not grace_seconds:
        return None
    started = parse_helm_time(release.updated)
    if started is None:
        return -1
    age = max(0.0, now - started)
    return age if age < grace_seconds else None


def pending_in_progress_message(release, recovery, age, grace):
    since = "for an unknown time" if age is None or age < 0 else "for %ds" % int(age)
    return (
        "Release %s in namespace %s has been %s %s (revision %s, started %s): that may be another run's helm "
        "operation still in progress, so it is recovered only once it is %s old (recover_pending_after). If no "
        "other helm operation is running on it, re-run after that, or %s now"
        % (release.name, release.namespace, release.status, since, release.revision, release.updated or "unknown",
           grace, recovery_command(release, recovery))
    )


# --------------------------------------------------------------------------------------
# command building


class HelmGlobals:
    """Flags every cluster-facing helm command gets."""

    __slots__ = ("kubeconfig", "context", "registry_config")

    def __init__(self, kubeconfig=None, context=None, registry_config=None):
        self.kubeconfig = kubeconfig
        self.context = context
        self.registry_config = registry_config

    def args(self, cluster=True, registry=False):
        args = []
        if cluster and self.kubeconfig:
            args += ["--kubeconfig", self.kubeconfig]
        if cluster and self.context:
            args += ["--kube-context", self.context]
        if registry and self.registry_config:
            args += ["--registry-config", self.registry_config]
        return args


def get_release_command(helm, g, release, namespace):
    return [helm, "get", "all", release, "--namespace", namespace, "--template", RELEASE_TEMPLATE] + g.args()


def get_values_command(helm, g, release, namespace):
    return [helm, "get", "values", release, "--namespace", namespace, "--output", "json"] + g.args()


def history_command(helm, g, release, namespace, max_revisions=256):
    return [helm, "history", release, "--namespace", namespace, "--output", "json",
            "--max", str(max_revisions)] + g.args()


def pull_command(helm, g, ref, destination, plain_http=False, by_digest=True):
    """Pull into `destination`. With a digest (and helm >= 3.18) pull `name[:tag]@digest`: helm
    then checks the tag resolves to it; `by_digest=False` pulls by tag only (older helm)."""
    if ref.digest and by_digest:
        target = ref.display()
        args = [helm, "pull", target]
    else:
        args = [helm, "pull", ref.base, "--version", ref.version]
    args += ["--destination", destination]
    if plain_http:
        args.append("--plain-http")
    return args + g.args(cluster=False, registry=True)


def upgrade_command(helm, g, release, namespace, chart_path, values_file=None, set_args=(),
                    create_namespace=False, wait=False, wait_for_jobs=False, timeout=None, atomic=False,
                    skip_crds=False, description=None, dry_run=False, helm_major=3):
    args = [helm, "upgrade", release, chart_path, "--install", "--namespace", namespace,
            "--reset-values", "--output", "json"]
    if values_file:
        args += ["--values", values_file]
    args += list(set_args)
    if create_namespace:
        args.append("--create-namespace")
    if wait:
        args.append("--wait")
        if wait_for_jobs:
            args.append("--wait-for-jobs")
    if atomic:
        args.append("--rollback-on-failure" if helm_major >= 4 else "--atomic")
    if timeout:
        args += ["--timeout", timeout]
    if skip_crds:
        args.append("--skip-crds")
    if description:
        args += ["--description", description]
    if dry_run:
        args.append("--dry-run=server")
    return args + g.args()


def values_files_args(values_files):
    args = []
    for path in values_files or ():
        args += ["--values", path]
    return args


def probe_command(helm, probe_chart, values_args, set_args):
    """`helm template` on a chart with no defaults whose only template prints `toJson .Values`:
    helm's own merge of -f files and --set* flags, without a cluster or the real chart."""
    return [helm, "template", "values-probe", probe_chart] + list(values_args) + list(set_args)


PROBE_CHART_YAML = "apiVersion: v2\nname: values-probe\nversion: 0.0.0\n"
PROBE_TEMPLATE = "{{ toJson .Values }}\n"


def write_probe_chart(directory):
    os.makedirs(os.path.join(directory, "templates"), exist_ok=True)
    with open(os.path.join(directory, "Chart.yaml"), "w") as f:
        f.write(PROBE_CHART_YAML)
    with open(os.path.join(directory, "templates", "values.yaml"), "w") as f:
        f.write(PROBE_TEMPLATE)
    return directory


def uninstall_command(helm, g, release, namespace, wait=False, timeout=None):
    args = [helm, "uninstall", release, "--namespace", namespace]
    if wait:
        args.append("--wait")
    if timeout:
        args += ["--timeout", timeout]
    return args + g.args()


def rollback_command(helm, g, release, namespace, revision, wait=False, timeout=None):
    args = [helm, "rollback", release, str(revision), "--namespace", namespace]
    if wait:
        args.append("--wait")
    if timeout:
        args += ["--timeout", timeout]
    return args + g.args()


def normalize_timeout(timeout):
    """helm wants a Go duration; a bare number means seconds."""
    if timeout is None:
        return None
    text = str(timeout).strip()
    if re.match(r"^\d+$", text):
        return text + "s"
    if not re.match(r"^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$", text):
        raise HelmError("timeout %r is not a duration like 300s, 5m or 1h30m" % timeout, kind="invalid_argument")
    return text


# --------------------------------------------------------------------------------------
# registry credentials for helm


def registry_auth_config(hosts_credentials):
    """Content of a helm/docker registry config file: {"auths": {host: {"auth": b64(user:pass)}}}.

    helm reads credentials for OCI registries from this file (`--registry-config`). Writing it
    directly (mode 0600, in a private temporary directory removed at exit) keeps the password
    out of process arguments and costs no extra registry round trip for a `helm registry login`.
    """
    auths = {}
    for host, (username, password) in hosts_credentials.items():
        token = base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")
        auths[host] = {"auth": token}
    return {"auths": auths}


def credentials_from(username, password, token):
    """-> (username, password) for helm, or None. A token is a password for `oauth2accesstoken`."""
    if token:
        return (username or "oauth2accesstoken", token)
    if password is not None:
        if not username:
            raise HelmError("registry_password needs registry_username", kind="invalid_argument")
        return (username, password)
    if username:
        raise HelmError("registry_username needs registry_password or registry_token", kind="invalid_argument")
    return None


# --------------------------------------------------------------------------------------
# running helm


def run_process(argv, data=None):
    """Run `argv` -> (rc, stdout, stderr) as text.

    The module's helm runner instead of AnsibleModule.run_command: that one may call fail_json (and
    so exit) from a worker thread, forks with a preexec_fn (unsafe with threads) and expands `$VAR`
    and `~` in arguments, which would rewrite `--set` values and Go template variables.
    """
    try:
        proc = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=None if data is not None else subprocess.DEVNULL, check=False)
    except OSError as e:
        raise HelmError("Could not run %s: %s" % (argv[0], e), kind="helm_missing",
                        command=format_command(argv))
    return (proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


class Helm:
    """Runs helm through `run_command(argv, data=None) -> (rc, stdout, stderr)` and records
    every command (they never contain secrets) for the module's `commands` result."""

    def __init__(self, binary, run_command, globals_=None):
        self.binary = binary
        self._run = run_command
        self.g = globals_ or HelmGlobals()
        self.commands = []
        self.version = None

    def run(self, argv, action=None, data=None, ok_rcs=(0,)):
        self.commands.append(format_command(argv))
        rc, out, err = self._run(argv, data=data)
        if rc not in ok_rcs:
            raise helm_error_from_result(argv, rc, out, err, action=action)
        return rc, out, err

    def detect_version(self, features=(), cache=None):
        """Find helm's version (remembered in `cache`, keyed by the binary's path, size and mtime,
        so a no-op run does not spend a process on it) and check it is new enough."""
        key = binary_identity(self.binary)
        known = cache.helm_version(key) if cache is not None and key else None
        if known:
            self.version = parse_helm_version(known)
            check_helm_version(self.version, self.binary, features)
            return self.version
        argv = [self.binary, "version", "--template", "{{.Version}}"]
        try:
            rc, out, err = self._run(argv, data=None)
        except (OSError, HelmError) as e:
            raise HelmError("Could not run helm at %s: %s" % (self.binary, getattr(e, "msg", e)),
                            kind="helm_missing")
        self.commands.append(format_command(argv))
        if rc != 0:
            raise HelmError("`%s version` failed (rc=%s): %s" % (self.binary, rc, (err or out).strip()),
                            kind="helm_version", command=format_command(argv))
        self.version = parse_helm_version(out)
        if cache is not None and key and self.version:
            cache.record_helm_version(key, format_version(self.version))
        check_helm_version(self.version, self.binary, features)
        return self.version

    def require(self, feature):
        check_helm_version(self.version, self.binary, (feature,))

    def has(self, feature):
        return self.version is not None and self.version >= FEATURE_MIN_VERSION[feature]

    def get_release(self, release, namespace):
        """-> ReleaseInfo of the newest revision (any status) with its user-supplied values,
        or None when there is no release. One helm process (`get all --template`, values included);
        `get values` only when the template's values could not be read."""
        argv = get_release_command(self.binary, self.g, release, namespace)
        self.commands.append(format_command(argv))
        rc, out, err = self._run(argv, data=None)
        if rc != 0:
            if re.search(r"release: not found", err or ""):
                return None
            raise helm_error_from_result(argv, rc, out, err, action="helm get all")
        info = parse_release_template(out)
        if info.config is None:
            _rc, out, _err = self.run(get_values_command(self.binary, self.g, release, namespace),
                                      action="helm get values")
            info.config = parse_values_json(out)
        return info

    def history(self, release, namespace):
        _rc, out, _err = self.run(history_command(self.binary, self.g, release, namespace), action="helm history")
        return parse_history_json(out)

    def pull(self, ref, destination, plain_http=False):
        """Pull into `destination` -> the digest helm reports."""
        by_digest = bool(ref.digest) and self.has("digest_reference")
        if ref.digest and not ref.tag and not by_digest:
            self.require("digest_reference")
        if plain_http:
            self.require("plain_http")
        argv = pull_command(self.binary, self.g, ref, destination, plain_http=plain_http, by_digest=by_digest)
        _rc, out, err = self.run(argv, action="helm pull %s" % ref.display())
        digest = parse_pushed_or_pulled_digest(err) or parse_pushed_or_pulled_digest(out)
        if not digest:
            raise HelmError("helm pull did not report the chart digest", kind="parse", command=format_command(argv))
        if ref.digest and digest != ref.digest:
            raise HelmError(
                "%s:%s resolves to %s, not the pinned digest %s" % (ref.base, ref.tag, digest, ref.digest),
                kind="digest_mismatch",
                hint="Either the tag was moved or the digest is wrong; fix version or digest",
            )
        return digest

    def upgrade(self, *args, **kwargs):
        argv = upgrade_command(self.binary, self.g, *args, helm_major=self.version[0] if self.version else 3,
                               **kwargs)
        action = "helm upgrade --install --dry-run" if kwargs.get("dry_run") else "helm upgrade --install"
        _rc, out, _err = self.run(argv, action=action)
        return parse_release_json(out)

    def uninstall(self, release, namespace, wait=False, timeout=None):
        self.run(uninstall_command(self.binary, self.g, release, namespace, wait=wait, timeout=timeout),
                 action="helm uninstall")

    def rollback(self, release, namespace, revision, wait=False, timeout=None):
        self.run(rollback_command(self.binary, self.g, release, namespace, revision, wait=wait, timeout=timeout),
                 action="helm rollback")

    def compute_values(self, probe_chart, values_args, set_args):
        _rc, out, _err = self.run(probe_command(self.binary, probe_chart, values_args, set_args),
                                  action="computing values with helm template")
        return parse_probe_output(out)
