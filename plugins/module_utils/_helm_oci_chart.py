# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""What the helm_oci_chart module does (its documentation: plugins/modules/helm_oci_chart.py).

`argument_spec()` is the module's; `execute_module(module)` runs it: one release (`HelmOciChart`), a mirroring, or
every entry of `releases` in threads of one process (`run_releases`). Every failure is a `HelmError` (from _helm),
turned into `fail_json` here, at the edge.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import env_fallback

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._chart_cache import (
    ChartCache,
    default_cache_dir,
    find_pulled_archive,
    remove_tree,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._helm import (
    HAS_YAML,
    ChartRef,
    DesiredChart,
    Helm,
    HelmError,
    HelmGlobals,
    credentials_from,
    duration_seconds,
    encode_description,
    check_helm_version,
    normalize_timeout,
    normalize_values,
    parse_chart_ref,
    parse_manifest_resources,
    pending_in_progress_message,
    pending_message,
    pending_too_young,
    plan_recovery,
    plan_release,
    registry_auth_config,
    resolve_recorded_digest,
    run_process,
    set_values_args,
    set_values_features,
    split_mirror_target,
    values_digest,
    values_files_args,
    values_probe_key,
    write_probe_chart,
)


try:
    import yaml
except ImportError:  # pragma: no cover
    pass


def _set_values_spec(default):
    spec = dict(type="list", elements="dict", options=dict(
        value=dict(type="str", required=True),
        value_type=dict(type="str", default="raw", choices=["raw", "string", "json", "file", "literal"]),
    ))
    if default is not None:
        spec["default"] = default
    return spec


# The options an entry of `releases` may set; those it leaves out come from the top level.
RELEASE_OPTIONS = (
    "release_name", "release_namespace", "chart_ref", "version", "digest", "refresh_tag", "state",
    "create_namespace", "values", "values_files", "set_values", "wait", "wait_for_jobs", "timeout", "atomic",
    "skip_crds", "recover_pending", "recover_pending_after",
)

SINGLE_REQUIRED_IF = [
    ("state", "present", ("chart_ref", "release_name", "release_namespace")),
    ("state", "absent", ("release_name", "release_namespace")),
    ("state", "mirrored", ("chart_ref", "mirror_to")),
]


def release_entry_spec():
    """Suboptions of `releases`: no defaults, so that an unset option can fall back to the top level."""
    return dict(
        release_name=dict(type="str", required=True, aliases=["name"]),
        release_namespace=dict(type="str", aliases=["namespace"]),
        chart_ref=dict(type="str"),
        version=dict(type="str", aliases=["chart_version"]),
        digest=dict(type="str"),
        refresh_tag=dict(type="bool"),
        state=dict(type="str", choices=["present", "absent"]),
        create_namespace=dict(type="bool"),
        values=dict(type="dict"),
        values_files=dict(type="list", elements="path"),
        set_values=_set_values_spec(None),
        wait=dict(type="bool"),
        wait_for_jobs=dict(type="bool"),
        timeout=dict(type="str"),
        atomic=dict(type="bool"),
        skip_crds=dict(type="bool"),
        recover_pending=dict(type="bool"),
        recover_pending_after=dict(type="str"),
    )


def argument_spec():
    return dict(
        chart_ref=dict(type="str"),
        version=dict(type="str", aliases=["chart_version"]),
        digest=dict(type="str"),
        refresh_tag=dict(type="bool", default=False),
        release_name=dict(type="str", aliases=["name"]),
        release_namespace=dict(type="str", aliases=["namespace"]),
        releases=dict(type="list", elements="dict", options=release_entry_spec()),
        max_parallel=dict(type="int", default=4),
        create_namespace=dict(type="bool", default=False),
        values=dict(type="dict", default={}),
        values_files=dict(type="list", elements="path", default=[]),
        set_values=_set_values_spec([]),
        state=dict(type="str", default="present", choices=["present", "absent", "mirrored"]),
        wait=dict(type="bool", default=False),
        wait_for_jobs=dict(type="bool", default=False),
        timeout=dict(type="str", default="5m0s"),
        atomic=dict(type="bool", default=False),
        skip_crds=dict(type="bool", default=False),
        recover_pending=dict(type="bool", default=False),
        recover_pending_after=dict(type="str", default="0s"),
        mirror_to=dict(type="str"),
        mirror_username=dict(type="str"),
        mirror_password=dict(type="str", no_log=True),
        mirror_token=dict(type="str", no_log=True),
        mirror_plain_http=dict(type="bool", default=False),
        # gke_ai.inference_gateway.helm_common
        binary_path=dict(type="path"),
        kubeconfig=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
        context=dict(type="str", aliases=["kube_context"], fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
        cache_dir=dict(type="path"),
        # gke_ai.inference_gateway.oci_registry_auth
        registry_username=dict(type="str"),
        registry_password=dict(type="str", no_log=True),
        registry_token=dict(type="str", no_log=True),
        plain_http=dict(type="bool", default=False),
    )


def _yaml(data):
    if not data:
        return ""
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True)


class Shared:
    """What the releases of one module run share: the module, the chart cache, helm's binary and version
    (found once), the registry credentials file, and a lock per chart so that releases of one chart
    resolve and pull it once between them."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.cache = ChartCache(self.p["cache_dir"] or default_cache_dir())
        self.lock = threading.RLock()
        self.binary = None
        self.version = None
        self.commands = []
        self._chart_locks = {}
        self._tmp = None
        self._registry_hosts = set()
        self._registry_config = None

    def tmpdir(self, prefix="helm_oci_chart-"):
        """A private scratch directory in the module's temporary directory (removed when the module exits)."""
        with self.lock:  # AnsibleModule creates its directory on first use; the threads must not race for it
            root = self.module.tmpdir
        return tempfile.mkdtemp(prefix=prefix, dir=root)

    def run_command(self, argv, data=None):
        return run_process(argv, data=data)

    def start_helm(self):
        """Find the helm binary and its version (remembered in the cache), once."""
        with self.lock:
            if self.version is not None:
                return
            binary = self.p["binary_path"] or self.module.get_bin_path("helm")
            if not binary:
                raise HelmError("helm was not found in PATH", kind="helm_missing",
                                hint="Install helm >= 3.8.0 or set binary_path")
            if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
                raise HelmError("binary_path %s is not an executable file" % binary, kind="helm_missing")
            bootstrap = Helm(binary, self.run_command)
            try:
                bootstrap.detect_version((), cache=self.cache)
            finally:
                self.commands.extend(bootstrap.commands)
            self.binary, self.version = binary, bootstrap.version

    def new_helm(self, features=()):
        """A Helm of its own for one release (its commands are that release's), version already known."""
        self.start_helm()
        check_helm_version(self.version, self.binary, features)
        helm = Helm(self.binary, self.run_command, HelmGlobals(self.p["kubeconfig"], self.p["context"]))
        helm.version = self.version
        return helm

    def chart_lock(self, key):
        with self.lock:
            return self._chart_locks.setdefault(key, threading.Lock())

    def registry_config(self, host):
        """Path of a private registry config file with the credentials (if any) for `host`, or None.

        Written when first needed; one file for every registry the run talks to, replaced atomically
        when a release needs another host."""
        creds = credentials_from(self.p["registry_username"], self.p["registry_password"], self.p["registry_token"])
        if not creds:
            return None
        with self.lock:
            if host not in self._registry_hosts:
                self._registry_hosts.add(host)
                if self._tmp is None:
                    self._tmp = self.tmpdir()
                path = os.path.join(self._tmp, "registry-config.json")
                fd, scratch = tempfile.mkstemp(dir=self._tmp, prefix=".registry-config-")
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w") as f:
                    json.dump(registry_auth_config({h: creds for h in sorted(self._registry_hosts)}), f)
                os.replace(scratch, path)
                self._registry_config = path
            return self._registry_config


class HelmOciChart:
    """One release (or one mirroring): `params` are the module's, or an entry of `releases` merged over them."""

    def __init__(self, module, params=None, shared=None):
        self.module = module
        self.p = module.params if params is None else params
        self.shared = shared or Shared(module)
        self.check_mode = module.check_mode
        self.diff_mode = module._diff
        self.cache = self.shared.cache
        self.registry_contacted = False
        self.helm = None
        self.ref = None
        self._tmp = None
        self._history = None
        self._values_args = None

    # -- plumbing -----------------------------------------------------------------------

    @property
    def tmp(self):
        if self._tmp is None:
            self._tmp = self.shared.tmpdir()
        return self._tmp

    def start_helm(self):
        self.helm = self.shared.new_helm(set_values_features(self.p["set_values"]))
        return self.helm

    def registry_config(self):
        """The credentials (if any) for the chart's registry, in a private registry config file."""
        path = self.shared.registry_config(self.ref.registry)
        self.helm.g.registry_config = path
        return path

    # -- chart resolution ---------------------------------------------------------------

    def pull(self, ref, tag_key=None):
        """Pull `ref` into the cache -> (digest, chart info)."""
        self.registry_config()
        self.registry_contacted = True
        scratch = self.cache.tempdir()
        try:
            digest = self.helm.pull(ref, scratch, plain_http=self.p["plain_http"])
            info = self.cache.add(find_pulled_archive(scratch), digest, tag_key=tag_key)
        finally:
            remove_tree(scratch)
        return digest, info

    def history(self):
        if self._history is None:
            self._history = self.helm.history(self.p["release_name"], self.p["release_namespace"])
        return self._history

    def recorded_digest(self, release):
        """(ref, digest) recorded on the deployed revision (following `Rollback to N`)."""
        if release is None:
            return None, None
        ref, digest, needs_history = resolve_recorded_digest(release.description)
        if needs_history:
            ref, digest, _needs = resolve_recorded_digest(release.description, self.history())
        return ref, digest

    def resolve_chart(self, ref, release):
        """-> dict(name, version, app_version, digest, digest_source, pulled), pulling only when needed.
        Releases of the same chart in one run take turns, so the first pulls and the others find it cached."""
        with self.shared.chart_lock(ref.base):
            return self._resolve_chart(ref, release)

    def _resolve_chart(self, ref, release):
        tag_key = ref.tag_key()
        digest, source, info, pulled = ref.digest, "option", None, False
        if ref.tag:
            known, known_source = None, None
            if not self.p["refresh_tag"]:
                known, known_source = self.cache.lookup_tag(tag_key), "cache"
                if known is None:
                    rec_ref, rec_digest = self.recorded_digest(release)
                    if rec_digest and rec_ref == ref.display_tag():
                        known, known_source = rec_digest, "release"
            if ref.digest:
                if known != ref.digest:
                    # unknown, or the index says the tag meant something else: ask the registry, which
                    # checks tag -> digest (helm >= 3.18 pulls tag@digest; older helm compares itself)
                    digest, info = self.pull(ref, tag_key=tag_key)
                    pulled = True
            elif known:
                digest, source = known, known_source
            else:
                digest, info = self.pull(ref, tag_key=tag_key)
                source, pulled = "registry", True
        if info is None:
            info = self.cache.chart_info(digest)
        if info is None and release is not None and self.recorded_digest(release)[1] == digest:
            # the deployed revision was installed from this very digest: its chart metadata is the
            # digest's, so a no-op needs neither the archive nor the registry
            info = {"name": release.chart_name, "version": release.chart_version,
                    "app_version": release.app_version}
        if info is None:
            digest, info = self.pull(ChartRef(ref.registry, ref.repository, ref.tag, digest, ref.version),
                                     tag_key=tag_key if ref.tag else None)
            pulled = True
        return dict(name=info["name"], version=info["version"], app_version=info.get("app_version"),
                    digest=digest, digest_source=source, pulled=pulled)

    def chart_archive(self, chart):
        """Local archive for installing `chart`, pulling it by digest when the cache lacks it."""
        with self.shared.chart_lock(self.ref.base):
            return self._chart_archive(chart)

    def _chart_archive(self, chart):
        path = self.cache.archive_path(chart["digest"])
        if path:
            return path
        ref = self.ref
        by_digest = ChartRef(ref.registry, ref.repository, None, chart["digest"], None)
        if not self.helm.has("digest_reference"):
            by_digest = ref.with_digest(chart["digest"])
        self.pull(by_digest)
        chart["pulled"] = True
        path = self.cache.archive_path(chart["digest"])
        if not path:
            raise HelmError("chart %s is not in the cache after pulling it" % chart["digest"], kind="cache")
        return path

    # -- values -------------------------------------------------------------------------

    def values_args(self):
        """helm's -f arguments: the values files, then `values` in a private file (written when first needed:
        a no-op run passes no values to helm)."""
        if self._values_args is None:
            args = values_files_args(self.p["values_files"])
            if self.p["values"]:
                path = os.path.join(self.tmp, "values.json")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    json.dump(self.p["values"], f, default=str)
                args += ["--values", path]
            self._values_args = args
        return self._values_args

    def desired_values(self, set_args, release=None):
        """The release's user-supplied values as helm will compute them.

        With values files or set_values that takes `helm template` of a probe chart. The cache remembers
        (by hash) what given inputs computed to; when that is exactly what `release` has deployed, the
        answer is known without starting helm."""
        values = json.loads(json.dumps(self.p["values"] or {}, default=str))
        if not set_args and not self.p["values_files"]:
            return normalize_values(values)
        key = values_probe_key(self.helm.version, values, self.p["values_files"], set_args)
        if key and release is not None and release.config is not None:
            known = self.cache.values_probe(key)
            if known and known == values_digest(release.config):
                return normalize_values(release.config)
        probe = write_probe_chart(os.path.join(self.tmp, "values-probe"))
        desired = normalize_values(self.helm.compute_values(probe, self.values_args(), set_args))
        self.cache.record_values_probe(key, values_digest(desired))
        return desired

    # -- results ------------------------------------------------------------------------

    def release_result(self, release):
        if release is None:
            return {"status": "absent", "revision": None, "release": {}, "resources": []}
        rel = release.as_dict()
        rel["values"] = rel.pop("config") or {}
        rel.pop("manifest", None)
        return {
            "status": release.status,
            "revision": release.revision,
            "release": rel,
            "resources": parse_manifest_resources(release.manifest, release.namespace),
        }

    def chart_result(self, chart=None):
        ref = self.ref
        result = {"ref": ref.display() if ref else None, "name": ref.name if ref else None,
                  "version": ref.version if ref else None, "app_version": None, "digest": ref.digest if ref else None,
                  "digest_source": "option" if ref and ref.digest else None, "pulled": False, "cache_path": None}
        if chart:
            result.update(chart)
            result["ref"] = ref.display(chart["digest"])
            result["cache_path"] = self.cache.archive_path(chart["digest"], verify=False) \
                if chart.get("digest") else None
        return result

    def commands(self):
        return self.helm.commands if self.helm else []

    def finish(self, **result):
        result["registry_contacted"] = self.registry_contacted
        result["commands"] = self.shared.commands + self.commands()
        return result

    # -- states -------------------------------------------------------------------------

    def run(self):
        state = self.p["state"]
        if self.p["chart_ref"]:
            self.ref = parse_chart_ref(self.p["chart_ref"], self.p["version"], self.p["digest"])
        elif state == "present":
            raise HelmError("chart_ref is required with state=present", kind="invalid_argument")
        if self.p["mirror_to"] and state != "mirrored":
            raise HelmError("mirror_to is only used with state=mirrored", kind="invalid_argument")
        self.timeout = normalize_timeout(self.p["timeout"])
        normalize_timeout(self.p["recover_pending_after"])  # a bad duration fails before anything is read
        if state == "mirrored":
            return self.mirrored()
        self.start_helm()
        release = self.helm.get_release(self.p["release_name"], self.p["release_namespace"])
        if state == "absent":
            return self.absent(release)
        return self.present(release)

    def absent(self, release):
        result = dict(changed=False, plan={"action": "none", "reasons": []}, chart=self.chart_result())
        if release is None:
            result.update(self.release_result(None))
            return self.finish(**result)
        result.update(changed=True, plan={"action": "uninstall", "reasons": ["release exists (%s)" % release.status]})
        if self.diff_mode:
            result["diff"] = [
                {"before_header": "values of %s" % release.name, "after_header": "(uninstalled)",
                 "before": _yaml(release.config), "after": ""},
                {"before_header": "manifest of %s" % release.name, "after_header": "(uninstalled)",
                 "before": release.manifest, "after": ""},
            ]
        if self.check_mode:
            result.update(self.release_result(release))
            return self.finish(**result)
        self.helm.uninstall(release.name, release.namespace, wait=self.p["wait"], timeout=self.timeout)
        result.update(self.release_result(None))
        return self.finish(**result)

    def recover(self, release):
        """Handle a pending release -> (release after recovery, recovered dict) or raise."""
        recovery = plan_recovery(self.history())
        if not self.p["recover_pending"]:
            raise HelmError(pending_message(release, recovery), kind="pending_release")
        grace = normalize_timeout(self.p["recover_pending_after"])
        age = pending_too_young(release, time.time(), duration_seconds(grace))
        if age is not None:
            raise HelmError(pending_in_progress_message(release, recovery, age, grace), kind="pending_in_progress")
        recovered = {"from_status": release.status, "action": recovery[0], "revision": recovery[1]}
        if self.check_mode:
            return release, recovered
        name, ns = release.name, release.namespace
        if recovery[0] == "rollback":
            self.helm.rollback(name, ns, recovery[1], wait=self.p["wait"], timeout=self.timeout)
        else:
            self.helm.uninstall(name, ns, wait=self.p["wait"], timeout=self.timeout)
        self._history = None
        return self.helm.get_release(name, ns), recovered

    def present(self, release):
        p = self.p
        recovered = None
        if release is not None and release.pending:
            release, recovered = self.recover(release)
            if self.check_mode:
                result = dict(changed=True, recovered=recovered, chart=self.chart_result(),
                              plan={"action": "recover", "reasons": ["release is %s" % release.status]})
                result.update(self.release_result(release))
                return self.finish(**result)

        chart = self.resolve_chart(self.ref, release)
        set_args = set_values_args(p["set_values"])
        desired_values = self.desired_values(set_args, release)
        _rec_ref, deployed_digest = self.recorded_digest(release)
        plan = plan_release(release, deployed_digest,
                            DesiredChart(chart["name"], chart["version"], chart["digest"], chart["app_version"]),
                            desired_values)
        result = dict(changed=plan.changed or recovered is not None,
                      plan={"action": plan.action, "reasons": plan.reasons})
        if recovered:
            result["recovered"] = recovered

        if not plan.changed:
            result.update(self.release_result(release))
            result["chart"] = self.chart_result(chart)
            if self.diff_mode:
                result["diff"] = self.diff(release, release.config, release.manifest, chart, chart)
            return self.finish(**result)

        archive = self.chart_archive(chart)
        upgrade_kwargs = dict(
            values_file=None, set_args=self.values_args() + set_args,
            create_namespace=p["create_namespace"], wait=p["wait"] or p["atomic"],
            wait_for_jobs=p["wait_for_jobs"], timeout=self.timeout, atomic=p["atomic"], skip_crds=p["skip_crds"],
            description=encode_description(self.ref, chart["digest"]),
        )
        name, ns = p["release_name"], p["release_namespace"]
        if self.check_mode:
            after = None
            if self.diff_mode:
                after = self.helm.upgrade(name, ns, archive, dry_run=True, **upgrade_kwargs)
                result["diff"] = self.diff(release, desired_values, after.manifest, self.deployed_chart(release),
                                           chart)
            result.update(self.release_result(release))
            if after is not None:
                result["resources"] = parse_manifest_resources(after.manifest, ns)
            result["chart"] = self.chart_result(chart)
            return self.finish(**result)

        new = self.helm.upgrade(name, ns, archive, **upgrade_kwargs)
        if self.diff_mode:
            result["diff"] = self.diff(release, new.config, new.manifest, self.deployed_chart(release), chart)
        result.update(self.release_result(new))
        result["chart"] = self.chart_result(chart)
        return self.finish(**result)

    def deployed_chart(self, release):
        if release is None:
            return None
        _ref, digest = self.recorded_digest(release)
        return {"name": release.chart_name, "version": release.chart_version, "digest": digest}

    def diff(self, release, after_values, after_manifest, before_chart, after_chart):
        def chart_text(c):
            if not c:
                return ""
            return "name: %s\nversion: %s\ndigest: %s\n" % (c.get("name"), c.get("version"), c.get("digest"))

        name = self.p["release_name"]
        return [
            {"before_header": "chart of %s" % name, "after_header": "chart of %s" % name,
             "before": chart_text(before_chart), "after": chart_text(after_chart)},
            {"before_header": "values of %s (helm get values)" % name, "after_header": "values of %s" % name,
             "before": _yaml(release.config) if release else "", "after": _yaml(after_values)},
            {"before_header": "manifest of %s (helm get manifest)" % name,
             "after_header": "manifest of %s (rendered)" % name,
             "before": release.manifest if release else "", "after": after_manifest or ""},
        ]

    def mirrored(self):
        # imported here: release runs do not need an HTTP client (and skip its import time)
        from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._oci_registry import (
            RegistryClient,
            credentials_from_helm_config,
            mirror_chart,
        )

        p = self.p
        ref = self.ref
        if ref is None:
            raise HelmError("chart_ref is required with state=mirrored", kind="invalid_argument")
        target_host, target_path = split_mirror_target(p["mirror_to"])
        target_repo = "%s/%s" % (target_path, ref.name) if target_path else ref.name
        src_creds = credentials_from(p["registry_username"], p["registry_password"], p["registry_token"]) \
            or credentials_from_helm_config(ref.registry)
        dst_creds = credentials_from(p["mirror_username"], p["mirror_password"], p["mirror_token"]) \
            or credentials_from_helm_config(target_host)
        source = RegistryClient(ref.registry, src_creds, plain_http=p["plain_http"])
        target = RegistryClient(target_host, dst_creds, plain_http=p["mirror_plain_http"])

        digest, digest_source = ref.digest, "option"
        tag_key = ref.tag_key()
        if ref.tag:
            known = None if p["refresh_tag"] else self.cache.lookup_tag(tag_key)
            if known is None or (ref.digest and known != ref.digest):
                known = source.manifest_digest(ref.repository, ref.tag)
                if known is None:
                    raise HelmError("%s:%s not found in registry %s" % (ref.base, ref.tag, ref.registry),
                                    kind="chart_not_found", hint="Check chart_ref and version")
                digest_source = "registry"
                self.cache.record_tag(tag_key, known)
            elif not ref.digest:
                digest_source = "cache"
            if ref.digest and known != ref.digest:
                raise HelmError(
                    "%s:%s resolves to %s, not the pinned digest %s" % (ref.base, ref.tag, known, ref.digest),
                    kind="digest_mismatch",
                    hint="Either the tag was moved or the digest is wrong; fix version or digest")
            digest = known

        def local_blob(blob):
            for d, info in self.cache.index["charts"].items():
                if info.get("archive_sha256") == blob:
                    path = self.cache.archive_path(d)
                    if path:
                        with open(path, "rb") as f:
                            return f.read()
            return None

        outcome = mirror_chart(source, ref.repository, target, target_repo, digest, tag=ref.tag,
                               check_mode=self.check_mode, local_blob=local_blob)
        self.registry_contacted = (source.requests + target.requests) > 0
        target_ref = ChartRef(target_host, target_repo, ref.tag, digest, ref.version)
        if not self.check_mode and ref.tag:
            self.cache.record_tag(target_ref.tag_key(), digest)
        chart = self.chart_result()
        info = self.cache.chart_info(digest) or {}
        chart.update(ref=ref.display(digest), digest=digest, digest_source=digest_source,
                     name=info.get("name", ref.name), version=info.get("version", ref.version),
                     app_version=info.get("app_version"), cache_path=self.cache.archive_path(digest, verify=False))
        mirror = outcome.as_dict()
        mirror.pop("changed")
        mirror.update(source=ref.display(digest), target=target_ref.display())
        result = dict(changed=outcome.changed, chart=chart, mirror=mirror)
        if self.diff_mode:
            result["diff"] = {"before_header": target_ref.display_tag(),
                              "after_header": target_ref.display_tag(),
                              "before": "" if outcome.changed else "digest: %s\n" % digest,
                              "after": "digest: %s\n" % digest}
        return self.finish(**result)


def release_params(params, entry):
    """An entry of `releases` over the top-level options (an option the entry leaves unset is inherited)."""
    merged = dict(params)
    merged.pop("releases", None)
    for key in RELEASE_OPTIONS:
        if entry.get(key) is not None:
            merged[key] = entry[key]
    return merged


def check_releases(params):
    """-> the merged parameters of every entry of `releases`, or raise HelmError naming the bad entry."""
    if params["state"] == "mirrored":
        raise HelmError("releases cannot be used with state=mirrored", kind="invalid_argument")
    if params["mirror_to"]:
        raise HelmError("mirror_to is only used with state=mirrored", kind="invalid_argument")
    if params["max_parallel"] < 1:
        raise HelmError("max_parallel must be at least 1, got %s" % params["max_parallel"], kind="invalid_argument")
    merged, seen = [], set()
    for i, entry in enumerate(params["releases"]):
        p = release_params(params, entry)
        where = "releases[%d] (%s)" % (i, p["release_name"])
        missing = [k for k in ("release_namespace",) + (("chart_ref",) if p["state"] == "present" else ())
                   if not p[k]]
        if missing:
            raise HelmError("%s: state is %s but %s is not set, neither in the entry nor at the top level"
                            % (where, p["state"], " and ".join(missing)), kind="invalid_argument")
        key = (p["release_namespace"], p["release_name"])
        if key in seen:
            raise HelmError("%s: release %s in namespace %s is listed twice" % (where, key[1], key[0]),
                            kind="invalid_argument")
        seen.add(key)
        merged.append(p)
    return merged


def run_release(module, shared, params):
    """One entry of `releases` -> its result, the same as a single-release run's plus release_name and
    release_namespace; a failure is a result with failed, msg and error_kind (the others go on)."""
    runner = HelmOciChart(module, params, shared)
    try:
        result = runner.run()
        result["commands"] = runner.commands()
    except HelmError as e:
        result = e.to_result()
        result.update(failed=True, changed=False, commands=runner.commands(),
                      registry_contacted=runner.registry_contacted)
    except Exception as e:  # pylint: disable=broad-exception-caught  # one release must not hide the others
        result = dict(failed=True, changed=False, msg="%s: %s" % (type(e).__name__, e), error_kind="internal",
                      exception=traceback.format_exc(), commands=runner.commands(),
                      registry_contacted=runner.registry_contacted)
    result["release_name"] = params["release_name"]
    result["release_namespace"] = params["release_namespace"]
    return result


def run_releases(module):
    """Every entry of `releases` in one module process, at most max_parallel at a time."""
    p = module.params
    shared = Shared(module)
    entries = check_releases(p)
    result = dict(changed=False, releases=[], registry_contacted=False, commands=[])
    if not entries:
        return result
    try:
        shared.start_helm()
    except HelmError as e:
        fail = e.to_result()
        fail.update(changed=False, commands=list(shared.commands))
        raise ReleasesFailed(fail) from e
    result["commands"] = list(shared.commands)
    workers = min(p["max_parallel"], len(entries))
    if workers == 1:
        results = [run_release(module, shared, e) for e in entries]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="helm_oci_chart") as pool:
            results = list(pool.map(lambda e: run_release(module, shared, e), entries))
    result.update(changed=any(r.get("changed") for r in results), releases=results,
                  registry_contacted=any(r.get("registry_contacted") for r in results))
    for r in results:
        result["commands"].extend(r.get("commands") or [])
    if module._diff:
        result["diff"] = [d for r in results for d in (r.get("diff") or [])]
    failed = [r for r in results if r.get("failed")]
    if failed:
        result["msg"] = "; ".join(
            "release %s in namespace %s: %s" % (r["release_name"], r["release_namespace"], r.get("msg")) for r in failed)
        if len(failed) > 1:
            result["msg"] = "%d of %d releases failed: %s" % (len(failed), len(results), result["msg"])
        result["error_kind"] = failed[0].get("error_kind")
        result["failed_releases"] = [r["release_name"] for r in failed]
        raise ReleasesFailed(result)
    return result


class ReleasesFailed(Exception):
    """The result of a `releases` run that failed (fail_json's arguments)."""

    def __init__(self, result):
        super().__init__(result["msg"])
        self.result = result


MUTUALLY_EXCLUSIVE = [("registry_password", "registry_token"), ("mirror_password", "mirror_token"),
                      ("releases", "release_name")]


def execute_module(module):
    """Run the module (an AnsibleModule with `argument_spec()` and MUTUALLY_EXCLUSIVE): exit_json or fail_json."""
    if not HAS_YAML:
        module.fail_json(msg="PyYAML is required by helm_oci_chart")
    if module.params["releases"] is not None:
        try:
            module.exit_json(**run_releases(module))
        except HelmError as e:
            module.fail_json(**e.to_result())
        except ReleasesFailed as e:
            module.fail_json(**e.result)
    for key, value, required in SINGLE_REQUIRED_IF:  # AnsibleModule's required_if, unless releases is used
        missing = [r for r in required if module.params[r] is None]
        if module.params[key] == value and missing:
            module.fail_json(msg="%s is %s but all of the following are missing: %s"
                             % (key, value, ", ".join(missing)))
    runner = HelmOciChart(module)
    try:
        result = runner.run()
    except HelmError as e:
        fail = e.to_result()
        fail["commands"] = runner.shared.commands + runner.commands()
        module.fail_json(**fail)
    module.exit_json(**result)
