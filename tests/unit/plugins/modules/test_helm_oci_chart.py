# -*- coding: utf-8 -*-
# Unit tests for plugins/modules/helm_oci_chart.py (over module_utils/_helm_oci_chart.py): the module runs for real (argument parsing,
# cache, decisions, results, no_log masking) against an in-memory helm (FakeHelm) that keeps
# releases and a registry, so each test asserts on what ended up deployed and what was pulled.
from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import time

import pytest
import yaml

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _helm
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _helm_oci_chart
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._chart_cache import read_chart_metadata
from ansible_collections.gke_ai.inference_gateway.plugins.modules import helm_oci_chart

REGISTRY = "registry.test:5000"
REPO = "charts/hoctest"
PASSWORD = "pa55-very-secret"


def chart_tgz(name="hoctest", version="0.1.0", marker=""):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, text in (("%s/Chart.yaml" % name, "apiVersion: v2\nname: %s\nversion: %s\nappVersion: '1.0'\n"
                            % (name, version)),
                           ("%s/templates/cm.yaml" % name, "# %s\n" % marker)):
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def go_config_lines(value):
    """What _helm.CONFIG_TEMPLATE prints for a values tree (helm keeps numbers as float64)."""
    if isinstance(value, dict):
        lines = ["{"]
        for k in sorted(value):
            lines.append(json.dumps(k))
            lines.extend(go_config_lines(value[k]))
        return lines + ["}"]
    if isinstance(value, list):
        return ["["] + [x for v in value for x in go_config_lines(v)] + ["]"]
    if isinstance(value, bool):
        return ['bool "%s"' % str(value).lower()]
    if isinstance(value, (int, float)):
        return ['float64 "%s"' % ("%g" % value if float(value) != int(value) else int(value))]
    if value is None:
        return ['<nil> "<nil>"']
    return ["string " + json.dumps(value)]


def set_path(tree, dotted, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        tree = tree.setdefault(k, {})
    tree[keys[-1]] = value


def merge(base, over):
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


class FakeHelm:
    """Just enough of helm 3 for the module: releases per namespace/name, an OCI registry of charts."""

    def __init__(self, version="v3.22.0"):
        self.version = version
        self.charts = {}  # "host/repo:tag" -> digest ; digest -> tgz bytes
        self.blobs = {}
        self.releases = {}  # (ns, name) -> list of revision dicts
        self.calls = []
        self.pulls = []
        self.registry_up = True
        self.seen_registry_config = None
        self.config_in_template = True  # helm prints the values with `get all --template`

    # -- registry ---------------------------------------------------------------------
    def push(self, tgz, tag, repo=REPO):
        digest = "sha256:" + hashlib.sha256(b"manifest" + tgz).hexdigest()
        self.charts["%s/%s:%s" % (REGISTRY, repo, tag)] = digest
        self.blobs[digest] = tgz
        return digest

    # -- helpers ----------------------------------------------------------------------
    @staticmethod
    def flag(argv, name, default=None):
        return argv[argv.index(name) + 1] if name in argv else default

    def compute_values(self, argv):
        values = {}
        i = 0
        while i < len(argv):
            a = argv[i]
            if a == "--values":
                with open(argv[i + 1]) as f:
                    merge(values, yaml.safe_load(f) or {})
            elif a in ("--set", "--set-string"):
                key, _sep, raw = argv[i + 1].partition("=")
                value = raw
                if a == "--set":
                    value = int(raw) if raw.isdigit() else {"true": True, "false": False}.get(raw, raw)
                set_path(values, key, value)
            elif a == "--set-json":
                key, _sep, raw = argv[i + 1].partition("=")
                set_path(values, key, json.loads(raw))
            i += 1
        return values

    def release_json(self, rel):
        return json.dumps({
            "name": rel["name"], "namespace": rel["namespace"], "version": rel["revision"],
            "info": {"status": rel["status"], "description": rel["description"], "last_deployed": "now"},
            "chart": {"metadata": rel["chart"]}, "config": rel["config"], "manifest": rel["manifest"],
        })

    def latest(self, ns, name):
        revs = self.releases.get((ns, name))
        return revs[-1] if revs else None

    def deploy(self, ns, name, chart_meta, config, description, status="deployed"):
        revs = self.releases.setdefault((ns, name), [])
        for r in revs:
            if r["status"] == "deployed":
                r["status"] = "superseded"
        manifest = ("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-config\ndata:\n  values: %s\n"
                    % (name, json.dumps(json.dumps(config, sort_keys=True))))
        rel = dict(name=name, namespace=ns, revision=len(revs) + 1, status=status, chart=chart_meta,
                   config=config, manifest=manifest, description=description)
        revs.append(rel)
        return rel

    # -- the fake command line --------------------------------------------------------
    def __call__(self, argv, data=None):
        argv = list(argv)
        self.calls.append(argv)
        cmd = argv[1]
        ns = self.flag(argv, "--namespace")
        if cmd == "version":
            return 0, self.version, ""
        if cmd == "get" and argv[2] == "all":
            rel = self.latest(ns, argv[3])
            if rel is None:
                return 1, "", "Error: release: not found\n"
            q = json.dumps
            out = "".join("%s\t%s\n" % kv for kv in (
                ("name", q(rel["name"])), ("namespace", q(ns)), ("revision", q(str(rel["revision"]))),
                ("status", q(rel["status"])), ("description", q(rel["description"])), ("updated", q(rel.get("updated", "now"))),
                ("chart_name", q(rel["chart"]["name"])), ("chart_version", q(rel["chart"]["version"])),
                ("app_version", q(rel["chart"].get("appVersion") or "")), ("manifest", q(rel["manifest"]))))
            if self.config_in_template and "config\t-" in self.flag(argv, "--template", ""):
                out += "config\t-\n" + "\n".join(go_config_lines(rel["config"] or {})) + "\n"
            return 0, out, ""
        if cmd == "get" and argv[2] == "values":
            rel = self.latest(ns, argv[3])
            return 0, json.dumps(rel["config"]) if rel["config"] else "null", ""
        if cmd == "history":
            revs = self.releases.get((ns, argv[2])) or []
            return 0, json.dumps([{"revision": r["revision"], "status": r["status"], "description": r["description"],
                                   "chart": "%s-%s" % (r["chart"]["name"], r["chart"]["version"])} for r in revs]), ""
        if cmd == "pull":
            return self.pull(argv)
        if cmd == "template":
            return 0, "---\n# Source: values-probe/templates/values.yaml\n%s\n" % json.dumps(
                self.compute_values(argv)), ""
        if cmd == "upgrade":
            name, chart_path = argv[2], argv[3]
            assert "--reset-values" in argv and "--install" in argv
            meta = read_chart_metadata(chart_path)
            chart_meta = {"name": meta["name"], "version": meta["version"], "appVersion": meta["app_version"]}
            config = self.compute_values(argv)
            description = self.flag(argv, "--description", "Upgrade complete")
            if "--dry-run=server" in argv:
                rel = dict(name=name, namespace=ns, revision=0, status="pending-upgrade", chart=chart_meta,
                           config=config, description="Dry run complete",
                           manifest="---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-config\n" % name)
                return 0, self.release_json(rel), ""
            current = self.latest(ns, name)
            if current and current["status"].startswith("pending-"):
                return 1, "", "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n"
            return 0, self.release_json(self.deploy(ns, name, chart_meta, config, description)), ""
        if cmd == "uninstall":
            self.releases.pop((ns, argv[2]), None)
            return 0, 'release "%s" uninstalled\n' % argv[2], ""
        if cmd == "rollback":
            name, target = argv[2], int(argv[3])
            revs = self.releases[(ns, name)]
            src = revs[target - 1]
            for r in revs:
                if r["status"] in ("deployed", "pending-upgrade", "pending-rollback"):
                    r["status"] = "superseded"
            self.deploy(ns, name, src["chart"], src["config"], "Rollback to %d" % target)
            return 0, "Rollback was a success! Happy Helming!\n", ""
        raise AssertionError("unexpected helm call %r" % argv)

    def pull(self, argv):
        ref = argv[2][len("oci://"):]
        version = self.flag(argv, "--version")
        dest = self.flag(argv, "--destination")
        rc_path = self.flag(argv, "--registry-config")
        if rc_path:
            assert stat.S_IMODE(os.stat(rc_path).st_mode) == 0o600
            with open(rc_path) as f:
                self.seen_registry_config = json.load(f)
        self.pulls.append(argv)
        if not self.registry_up:
            return 1, "", 'Error: failed to do request: Head "https://%s/v2/": dial tcp: connect: connection refused\n' \
                % REGISTRY
        digest = None
        if "@" in ref:
            ref, digest = ref.split("@")
        tag = version
        if ":" in ref.rsplit("/", 1)[-1]:
            ref, tag = ref.rsplit(":", 1)
        if tag:
            resolved = self.charts.get("%s:%s" % (ref, tag))
            if resolved is None:
                return 1, "", 'Error: failed to perform "FetchReference" on source: %s:%s: not found\n' % (ref, tag)
            if digest and digest != resolved:
                return 1, "", "Error: chart reference digest mismatch: %s is not %s\n" % (resolved, digest)
            digest = resolved
        if digest not in self.blobs:
            return 1, "", 'Error: failed to perform "FetchReference" on source: %s@%s: not found\n' % (ref, digest)
        with open(os.path.join(dest, "chart.tgz"), "wb") as f:
            f.write(self.blobs[digest])
        return 0, "", "Pulled: %s\nDigest: %s\n" % (ref, digest)


@pytest.fixture
def helm(monkeypatch, tmp_path):
    fake = FakeHelm()
    monkeypatch.setattr(_helm_oci_chart, "run_process", lambda argv, data=None: fake(argv, data))
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda *a, **kw: pytest.fail("run_command used"))
    binary = tmp_path / "helm"
    binary.write_text("#!/bin/sh\nexit 1\n")
    binary.chmod(0o755)
    fake.binary = str(binary)
    return fake


@pytest.fixture
def run(helm, tmp_path, capsys):
    def _run(check_mode=False, diff=False, **params):
        args = dict(binary_path=helm.binary, cache_dir=str(tmp_path / "cache"),
                    release_namespace="apps", release_name="demo")
        args.update(params)
        args = {k: v for k, v in args.items() if v is not None}  # release_name=None: not given
        if check_mode:
            args["_ansible_check_mode"] = True
        if diff:
            args["_ansible_diff"] = True
        args["_ansible_tmpdir"] = str(tmp_path / "modtmp")
        os.makedirs(args["_ansible_tmpdir"], exist_ok=True)
        calls_before = len(helm.calls)
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                helm_oci_chart.main()
        out = capsys.readouterr().out
        result = json.loads(out)
        result["_raw"] = out
        result["_calls"] = helm.calls[calls_before:]
        return result

    return _run


def subcommands(result):
    return [" ".join(c[1:3]) if c[1] == "get" else c[1] for c in result["_calls"]]


CHART = "oci://%s/%s" % (REGISTRY, REPO)


def test_install_then_noop_rerun_without_registry(helm, run):
    digest = helm.push(chart_tgz(), "0.1.0")
    first = run(chart_ref=CHART, version="0.1.0", values={"data": {"greeting": "hi"}})
    assert first["changed"] is True
    assert first["plan"]["action"] == "install"
    assert first["chart"]["digest"] == digest and first["chart"]["pulled"] is True
    assert first["revision"] == 1 and first["status"] == "deployed"
    assert first["resources"] == [{"api_version": "v1", "kind": "ConfigMap", "namespace": "apps",
                                   "name": "demo-config"}]
    rel = helm.latest("apps", "demo")
    assert rel["config"] == {"data": {"greeting": "hi"}}
    assert rel["description"].endswith(":0.1.0@" + digest)

    helm.registry_up = False  # a no-op must not need the registry
    second = run(chart_ref=CHART, version="0.1.0", values={"data": {"greeting": "hi"}})
    assert second["changed"] is False, second
    assert second["plan"] == {"action": "none", "reasons": []}
    assert second["registry_contacted"] is False
    assert second["chart"]["digest_source"] == "cache"
    # helm's version is remembered in the cache (keyed by the binary's path, size and mtime)
    assert subcommands(first)[0] == "version"
    # one helm process: `get all --template` prints the user-supplied values too
    assert subcommands(second) == ["get all"]
    assert len(helm.releases[("apps", "demo")]) == 1


def test_noop_with_empty_cache_trusts_the_release_record(helm, run, tmp_path):
    helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, version="0.1.0", cache_dir=str(tmp_path / "c1"))
    helm.registry_up = False
    again = run(chart_ref=CHART, version="0.1.0", cache_dir=str(tmp_path / "fresh"))
    assert again["changed"] is False
    assert again["chart"]["digest_source"] == "release"
    assert helm.pulls and all("fresh" not in " ".join(p) for p in helm.pulls)


def test_noop_pinned_by_digest_with_empty_cache_needs_no_registry(helm, run, tmp_path):
    digest = helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, digest=digest, cache_dir=str(tmp_path / "c1"))
    helm.registry_up = False
    again = run(chart_ref=CHART, digest=digest, cache_dir=str(tmp_path / "fresh"))
    assert again["changed"] is False and again["registry_contacted"] is False
    assert again["chart"]["version"] == "0.1.0"
    # a changed value then needs the chart itself: the registry is asked (and is down here)
    failed = run(chart_ref=CHART, digest=digest, values={"a": 1}, cache_dir=str(tmp_path / "fresh"))
    assert failed["failed"] is True and failed["error_kind"] == "registry_unreachable"


def test_refresh_tag_resolves_against_the_registry_and_sees_a_moved_tag(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, version="0.1.0")
    moved = helm.push(chart_tgz(marker="rebuilt"), "0.1.0")  # same tag, new content
    assert run(chart_ref=CHART, version="0.1.0")["changed"] is False  # the index trusts the tag
    refreshed = run(chart_ref=CHART, version="0.1.0", refresh_tag=True)
    assert refreshed["changed"] is True
    assert refreshed["chart"]["digest"] == moved
    assert any("chart digest" in r for r in refreshed["plan"]["reasons"])


def test_changed_values_upgrade_and_report_paths(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, version="0.1.0", values={"data": {"greeting": "hi"}, "secret": "x"})
    helm.registry_up = False
    res = run(chart_ref=CHART, version="0.1.0", values={"data": {"greeting": "bye"}, "secret": "x"})
    assert res["changed"] is True
    assert res["plan"] == {"action": "upgrade", "reasons": ["values changed: data.greeting"]}
    assert res["revision"] == 2
    assert helm.latest("apps", "demo")["config"]["data"]["greeting"] == "bye"
    assert res["registry_contacted"] is False  # the chart came from the cache


def test_removing_all_values_resets_them(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, version="0.1.0", values={"a": 1})
    res = run(chart_ref=CHART, version="0.1.0")
    assert res["changed"] is True and helm.latest("apps", "demo")["config"] == {}


def test_set_values_are_typed_and_compared_through_helm(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    sets = [{"value": "inferencePool.modelServers.matchLabels.app=vllm-llama3-8b-instruct"},
            {"value": "provider.name=gke"}, {"value": "port=8000", "value_type": "string"},
            {"value": "replicas=2"}]
    first = run(chart_ref=CHART, version="0.1.0", set_values=sets)
    assert helm.latest("apps", "demo")["config"] == {
        "inferencePool": {"modelServers": {"matchLabels": {"app": "vllm-llama3-8b-instruct"}}},
        "provider": {"name": "gke"}, "port": "8000", "replicas": 2}
    upgrade = [c for c in first["_calls"] if c[1] == "upgrade"][0]
    assert upgrade[upgrade.index("--set-string") + 1] == "port=8000"
    second = run(chart_ref=CHART, version="0.1.0", set_values=sets)
    assert second["changed"] is False
    # helm computed these inputs' values on the first run; the cache remembers their hash, and that is what
    # is deployed: no `helm template` on a no-op
    assert subcommands(second) == ["get all"]
    third = run(chart_ref=CHART, version="0.1.0", set_values=sets[:-1] + [{"value": "replicas=3"}])
    assert third["plan"]["reasons"] == ["values changed: replicas"]


def test_new_chart_version_upgrades(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    d2 = helm.push(chart_tgz(version="0.2.0"), "0.2.0")
    run(chart_ref=CHART, version="0.1.0")
    res = run(chart_ref=CHART, version="0.2.0")
    assert res["changed"] is True
    assert "chart version 0.1.0 -> 0.2.0" in res["plan"]["reasons"]
    assert helm.latest("apps", "demo")["chart"]["version"] == "0.2.0"
    assert res["chart"]["digest"] == d2


def test_check_mode_changes_nothing_and_diff_shows_values_and_manifest(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, version="0.1.0", values={"replicas": 1})
    res = run(chart_ref=CHART, version="0.1.0", values={"replicas": 2}, check_mode=True, diff=True)
    assert res["changed"] is True
    assert helm.latest("apps", "demo")["config"] == {"replicas": 1}
    assert len(helm.releases[("apps", "demo")]) == 1
    upgrades = [c for c in res["_calls"] if c[1] == "upgrade"]
    assert len(upgrades) == 1 and "--dry-run=server" in upgrades[0]
    chart_diff, values_diff, manifest_diff = res["diff"]
    assert values_diff["before"] == "replicas: 1\n" and values_diff["after"] == "replicas: 2\n"
    assert "kind: ConfigMap" in manifest_diff["before"] and "kind: ConfigMap" in manifest_diff["after"]
    assert chart_diff["before"] == chart_diff["after"]


def test_check_mode_install_without_diff_runs_no_upgrade(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    res = run(chart_ref=CHART, version="0.1.0", check_mode=True)
    assert res["changed"] is True and res["plan"]["action"] == "install"
    assert res["status"] == "absent"
    assert "upgrade" not in subcommands(res)
    assert helm.releases == {}


def test_digest_pin_mismatch_fails_before_changing_anything(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    other = helm.push(chart_tgz(version="0.2.0"), "0.2.0")
    res = run(chart_ref=CHART, version="0.1.0", digest=other)
    assert res["failed"] is True
    assert res["error_kind"] == "digest_mismatch"
    assert other in res["msg"]
    assert helm.releases == {}


def test_digest_pin_matching_the_cached_tag_needs_no_registry(helm, run):
    digest = helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, version="0.1.0", digest=digest)
    helm.registry_up = False
    res = run(chart_ref=CHART, version="0.1.0", digest=digest)
    assert res["changed"] is False and res["registry_contacted"] is False
    assert res["chart"]["digest_source"] == "option"


def test_tag_moved_to_the_pinned_digest_is_accepted_and_indexed(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, version="0.1.0")
    moved = helm.push(chart_tgz(marker="rebuilt"), "0.1.0")
    res = run(chart_ref=CHART, version="0.1.0", digest=moved)
    assert res["changed"] is True and res["chart"]["digest"] == moved
    helm.registry_up = False
    # the index learnt the new tag target: tag-only runs now agree without the registry
    assert run(chart_ref=CHART, version="0.1.0")["changed"] is False


def test_digest_only_reference(helm, run):
    digest = helm.push(chart_tgz(), "0.1.0")
    res = run(chart_ref=CHART, digest=digest)
    assert res["changed"] is True and res["chart"]["version"] == "0.1.0"
    pull = [c for c in res["_calls"] if c[1] == "pull"][0]
    assert pull[2] == "%s@%s" % (CHART, digest)


def test_password_never_in_results_and_only_in_the_private_config_file(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    res = run(chart_ref=CHART, version="0.1.0", registry_username="robot", registry_password=PASSWORD)
    assert res["changed"] is True
    assert PASSWORD not in res["_raw"]
    assert not any(PASSWORD in " ".join(c) for c in helm.calls)
    auth = helm.seen_registry_config["auths"][REGISTRY]["auth"]
    import base64
    assert base64.b64decode(auth).decode() == "robot:" + PASSWORD


def test_token_is_passed_as_oauth2accesstoken_password_and_masked_in_errors(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    helm.registry_up = False
    res = run(chart_ref=CHART, version="0.1.0", registry_token="ya29.token-value")
    assert res["failed"] is True and res["error_kind"] == "registry_unreachable"
    assert "ya29.token-value" not in res["_raw"]
    import base64
    auth = helm.seen_registry_config["auths"][REGISTRY]["auth"]
    assert base64.b64decode(auth).decode() == "oauth2accesstoken:ya29.token-value"


def test_pending_release_is_reported_with_the_fix(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, version="0.1.0")
    rel = helm.deploy("apps", "demo", {"name": "hoctest", "version": "0.1.0"}, {}, "Preparing upgrade",
                      status="pending-upgrade")
    helm.releases[("apps", "demo")][0]["status"] = "deployed"
    res = run(chart_ref=CHART, version="0.1.0")
    assert res["failed"] is True and res["error_kind"] == "pending_release"
    assert "pending-upgrade" in res["msg"] and "recover_pending=true" in res["msg"]
    assert "helm rollback demo 1 -n apps" in res["msg"]
    assert rel["status"] == "pending-upgrade"


def test_recover_pending_upgrade_rolls_back_then_converges(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, version="0.1.0", values={"a": 1})
    helm.deploy("apps", "demo", {"name": "hoctest", "version": "0.1.0"}, {"a": 2}, "Preparing upgrade",
                status="pending-upgrade")
    helm.releases[("apps", "demo")][0]["status"] = "deployed"
    check = run(chart_ref=CHART, version="0.1.0", values={"a": 1}, recover_pending=True, check_mode=True)
    assert check["changed"] is True and check["recovered"]["action"] == "rollback"
    assert helm.latest("apps", "demo")["status"] == "pending-upgrade"
    res = run(chart_ref=CHART, version="0.1.0", values={"a": 1}, recover_pending=True)
    assert res["changed"] is True
    assert res["recovered"] == {"from_status": "pending-upgrade", "action": "rollback", "revision": 1}
    # the rollback restored revision 1's chart and values: its digest is found through "Rollback to 1"
    assert res["plan"]["action"] == "none"
    assert helm.latest("apps", "demo")["description"] == "Rollback to 1"
    assert run(chart_ref=CHART, version="0.1.0", values={"a": 1})["changed"] is False


def go_time(epoch):
    """A time as helm prints LastDeployed."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + ".%09d +0000 UTC" % int(epoch % 1 * 1e9)


def test_recover_pending_leaves_an_operation_that_may_still_run_alone(helm, run):
    """recover_pending_after: a pending revision younger than that may be another run's helm, still working: the task
    fails saying so and touches nothing; once it is older, the same task recovers it (also through `releases`)."""
    helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, version="0.1.0", values={"a": 1})
    pending = helm.deploy("apps", "demo", {"name": "hoctest", "version": "0.1.0"}, {"a": 2}, "Preparing upgrade",
                          status="pending-upgrade")
    helm.releases[("apps", "demo")][0]["status"] = "deployed"
    pending["updated"] = go_time(time.time() - 40)
    calls = len(helm.calls)
    res = run(chart_ref=CHART, version="0.1.0", values={"a": 1}, recover_pending=True, recover_pending_after="5m")
    assert res["failed"] is True and res["error_kind"] == "pending_in_progress"
    assert "pending-upgrade for 4" in res["msg"] and "5m" in res["msg"]
    assert "helm rollback demo 1 -n apps" in res["msg"]
    assert [c[1] for c in helm.calls[calls:] if c[1] in ("rollback", "uninstall", "upgrade")] == []
    assert helm.latest("apps", "demo") is pending and pending["status"] == "pending-upgrade"

    pending["updated"] = go_time(time.time() - 301)
    res = run(chart_ref=CHART, version="0.1.0", recover_pending=True, recover_pending_after="5m",
              releases=[{"release_name": "demo", "values": {"a": 1}}], release_name=None)
    assert res["changed"] is True, res
    (entry,) = res["releases"]
    assert entry["recovered"] == {"from_status": "pending-upgrade", "action": "rollback", "revision": 1}
    assert helm.latest("apps", "demo")["status"] == "deployed"


def test_recover_pending_after_must_be_a_duration(helm, run):
    res = run(chart_ref=CHART, version="0.1.0", recover_pending=True, recover_pending_after="soon")
    assert res["failed"] is True and "soon" in res["msg"] and helm.calls == []


def test_recover_pending_install_uninstalls_then_installs(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    helm.deploy("apps", "demo", {"name": "hoctest", "version": "0.1.0"}, {}, "Initial install underway",
                status="pending-install")
    res = run(chart_ref=CHART, version="0.1.0", recover_pending=True)
    assert res["recovered"]["action"] == "uninstall"
    assert res["plan"]["action"] == "install"
    assert helm.latest("apps", "demo")["status"] == "deployed"


def test_release_not_installed_by_the_module_is_adopted_once(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    helm.deploy("apps", "demo", {"name": "hoctest", "version": "0.1.0"}, {}, "Install complete")
    res = run(chart_ref=CHART, version="0.1.0")
    assert res["changed"] is True and "no chart digest record" in res["plan"]["reasons"][0]
    assert run(chart_ref=CHART, version="0.1.0")["changed"] is False


def test_absent(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, version="0.1.0")
    check = run(state="absent", check_mode=True, diff=True)
    assert check["changed"] is True and ("apps", "demo") in helm.releases
    assert check["diff"][1]["after"] == "" and "ConfigMap" in check["diff"][1]["before"]
    res = run(state="absent")
    assert res["changed"] is True and res["status"] == "absent"
    assert helm.releases == {}
    assert run(state="absent")["changed"] is False


def test_old_helm_fails_naming_its_version(helm, run):
    helm.version = "v3.7.1"
    res = run(chart_ref=CHART, version="0.1.0")
    assert res["failed"] is True and res["error_kind"] == "helm_version"
    assert "3.7.1" in res["msg"] and "3.8.0" in res["msg"]
    # the remembered version of that binary is checked as well
    again = run(chart_ref=CHART, version="0.1.0")
    assert again["failed"] is True and "3.7.1" in again["msg"] and "version" not in subcommands(again)


def test_replaced_helm_binary_is_asked_for_its_version_again(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    run(chart_ref=CHART, version="0.1.0")
    with open(helm.binary, "a") as f:
        f.write("# upgraded\n")
    helm.version = "v3.7.0"
    res = run(chart_ref=CHART, version="0.1.0")
    assert subcommands(res)[0] == "version" and res["error_kind"] == "helm_version"


def test_missing_helm_binary(run, tmp_path):
    res = run(chart_ref=CHART, version="0.1.0", binary_path=str(tmp_path / "nope"))
    assert res["failed"] is True and res["error_kind"] == "helm_missing"


def test_invalid_arguments(run):
    res = run(chart_ref="https://x/y", version="1")
    assert res["failed"] and res["error_kind"] == "invalid_argument"
    res = run(chart_ref=CHART, version="0.1.0", mirror_to="oci://elsewhere/charts")
    assert res["failed"] and "mirror_to" in res["msg"]
    res = run(chart_ref=CHART, version="0.1.0", registry_password="pw-1234", registry_token="tok-5678")
    assert res["failed"] and "mutually exclusive" in res["msg"]


def test_single_release_still_needs_its_names(run):
    res = run(chart_ref=CHART, version="0.1.0", release_name=None)
    assert res["failed"] and res["msg"] == "state is present but all of the following are missing: release_name"
    res = run(state="absent", release_namespace=None)
    assert res["failed"] and "missing: release_namespace" in res["msg"]


def test_values_probe_is_skipped_only_while_the_deployed_values_are_what_the_inputs_give(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    sets = [{"value": "replicas=2"}, {"value": "port=8000", "value_type": "string"}]
    run(chart_ref=CHART, version="0.1.0", set_values=sets)
    assert subcommands(run(chart_ref=CHART, version="0.1.0", set_values=sets)) == ["get all"]
    # someone changes the values by hand (helm upgrade --reuse-values --set ...): helm is asked again
    rel = helm.latest("apps", "demo")
    helm.deploy("apps", "demo", rel["chart"], dict(rel["config"], replicas=5), rel["description"])
    res = run(chart_ref=CHART, version="0.1.0", set_values=sets)
    assert res["changed"] is True and res["plan"]["reasons"] == ["values changed: replicas"]
    assert "template" in subcommands(res)
    assert helm.latest("apps", "demo")["config"]["replicas"] == 2
    # other inputs are other keys, and a fresh cache knows nothing: the probe runs
    assert "template" in subcommands(run(chart_ref=CHART, version="0.1.0", set_values=sets[:1] + [
        {"value": "port=8000"}]))


def test_values_probe_key_follows_values_files_by_content(helm, run, tmp_path):
    helm.push(chart_tgz(), "0.1.0")
    vf = tmp_path / "values.yaml"
    vf.write_text("a: 1\n")
    run(chart_ref=CHART, version="0.1.0", values_files=[str(vf)])
    assert subcommands(run(chart_ref=CHART, version="0.1.0", values_files=[str(vf)])) == ["get all"]
    vf.write_text("a: 2\n")
    res = run(chart_ref=CHART, version="0.1.0", values_files=[str(vf)])
    assert res["changed"] is True and "template" in subcommands(res)
    assert helm.latest("apps", "demo")["config"] == {"a": 2}


def test_values_read_with_helm_get_values_when_the_template_has_none(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    helm.config_in_template = False
    run(chart_ref=CHART, version="0.1.0", values={"a": {"b": [1, 2.5, None, "x"]}})
    res = run(chart_ref=CHART, version="0.1.0", values={"a": {"b": [1, 2.5, None, "x"]}})
    assert res["changed"] is False and subcommands(res) == ["get all", "get values"]


def test_values_read_from_the_template_are_what_get_values_gives(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    values = {"a": {"b": [1, 2.5, None, "x\ny \"q\" \u00e9"], "t": True, "f": False, "big": 10 ** 15, "e": {}},
              "l": [[1, {"k": "v"}]], "z": -3}
    run(chart_ref=CHART, version="0.1.0", values=values)
    res = run(chart_ref=CHART, version="0.1.0", values=values)
    assert res["changed"] is False and subcommands(res) == ["get all"]
    assert res["release"]["values"] == values
    assert json.dumps(res["release"]["values"], sort_keys=True) == json.dumps(values, sort_keys=True)


# ------------------------------------------------------------------ several releases in one task

RELEASES = [{"release_name": "pool-a", "values": {"model": "a"}},
            {"release_name": "pool-b", "values": {"model": "b"}, "set_values": [{"value": "replicas=2"}]},
            {"release_name": "pool-c"}]


def run_many(run, releases=None, **params):
    args = dict(chart_ref=CHART, version="0.1.0", release_name=None, release_namespace="pools",
                releases=RELEASES if releases is None else releases)
    args.update(params)
    return run(**args)


def test_releases_install_then_noop_is_one_helm_process_per_release(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    first = run_many(run, values={"shared": True})
    assert first["changed"] is True and "failed" not in first
    assert [r["release_name"] for r in first["releases"]] == ["pool-a", "pool-b", "pool-c"]
    assert all(r["changed"] and r["plan"]["action"] == "install" for r in first["releases"])
    assert all(r["release_namespace"] == "pools" and r["status"] == "deployed" for r in first["releases"])
    # an entry's values replace the top-level ones; an entry without values gets them
    assert helm.latest("pools", "pool-a")["config"] == {"model": "a"}
    assert helm.latest("pools", "pool-b")["config"] == {"model": "b", "replicas": 2}
    assert helm.latest("pools", "pool-c")["config"] == {"shared": True}
    # the chart was pulled once for the three of them
    assert len(helm.pulls) == 1
    assert sum(r["chart"]["pulled"] for r in first["releases"]) == 1
    assert first["registry_contacted"] is True
    # helm's version first (found once for all), then every release's commands
    assert first["commands"][0].endswith("version --template '{{.Version}}'")
    assert first["commands"][1:] == [c for r in first["releases"] for c in r["commands"]]

    helm.registry_up = False
    second = run_many(run, values={"shared": True})
    assert second["changed"] is False and second["registry_contacted"] is False
    assert sorted(subcommands(second)) == ["get all"] * 3
    for r in second["releases"]:
        assert r["changed"] is False and r["plan"] == {"action": "none", "reasons": []}
        assert len(r["commands"]) == 1 and r["commands"][0].startswith(helm.binary + " get all " + r["release_name"])
        assert r["chart"]["digest_source"] == "cache" and r["revision"] == 1
    assert sorted(second["commands"]) == sorted(c for r in second["releases"] for c in r["commands"])


def test_releases_entry_options_override_the_top_level(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    helm.push(chart_tgz(version="0.2.0"), "0.2.0")
    res = run_many(run, releases=[{"name": "x"}, {"name": "x", "namespace": "other", "version": "0.2.0"},
                                  {"name": "y", "state": "absent"}])
    assert [r["plan"]["action"] for r in res["releases"]] == ["install", "install", "none"]
    assert helm.latest("pools", "x")["chart"]["version"] == "0.1.0"
    assert helm.latest("other", "x")["chart"]["version"] == "0.2.0"
    assert res["releases"][2]["status"] == "absent" and res["releases"][2]["changed"] is False
    gone = run_many(run, releases=[{"name": "x", "state": "absent"}, {"name": "x", "namespace": "other"}])
    assert [r["changed"] for r in gone["releases"]] == [True, True]  # other/x: 0.2.0 -> top-level 0.1.0
    assert ("pools", "x") not in helm.releases
    assert helm.latest("other", "x")["chart"]["version"] == "0.1.0"


def test_releases_check_mode_and_diff_per_release(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    run_many(run)
    changed = [dict(RELEASES[0], values={"model": "a2"})] + RELEASES[1:]
    res = run_many(run, releases=changed, check_mode=True, diff=True)
    assert res["changed"] is True
    assert [r["plan"]["action"] for r in res["releases"]] == ["upgrade", "none", "none"]
    assert res["releases"][0]["plan"]["reasons"] == ["values changed: model"]
    assert helm.latest("pools", "pool-a")["config"] == {"model": "a"}  # nothing changed
    assert [c for c in res["_calls"] if c[1] == "upgrade" and "--dry-run=server" not in c] == []
    # every release's three diffs, in order, headers naming the release
    assert len(res["diff"]) == 9
    assert [d["before_header"].split(" ")[-1] for d in res["diff"][::3]] == ["pool-a", "pool-b", "pool-c"]
    values_a = res["diff"][1]
    assert values_a["before"] == "model: a\n" and values_a["after"] == "model: a2\n"
    assert all(d["before"] == d["after"] for d in res["diff"][3:])
    assert res["releases"][0]["diff"] == res["diff"][:3]
    # without check mode the one release is upgraded
    done = run_many(run, releases=changed)
    assert [r["changed"] for r in done["releases"]] == [True, False, False]
    assert helm.latest("pools", "pool-a")["config"] == {"model": "a2"}


def test_releases_one_failure_fails_the_task_naming_it_and_reports_the_others(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    run_many(run, releases=RELEASES[1:2])
    helm.deploy("pools", "pool-b", {"name": "hoctest", "version": "0.1.0"}, {}, "Preparing upgrade",
                status="pending-upgrade")
    res = run_many(run)
    assert res["failed"] is True and res["changed"] is True
    assert res["msg"].startswith("release pool-b in namespace pools: Release pool-b in namespace pools is stuck")
    assert res["error_kind"] == "pending_release" and res["failed_releases"] == ["pool-b"]
    a, b, c = res["releases"]
    assert a["changed"] and a["status"] == "deployed" and c["changed"] and c["status"] == "deployed"
    assert b["failed"] is True and b["error_kind"] == "pending_release" and b["release_name"] == "pool-b"
    assert helm.latest("pools", "pool-a")["status"] == "deployed"

    helm.registry_up = False
    two = run_many(run, releases=RELEASES + [{"name": "pool-d", "version": "9.9.9"}])
    assert two["msg"].startswith("2 of 4 releases failed: release pool-b in namespace pools: ")
    assert "; release pool-d in namespace pools: " in two["msg"]
    assert two["failed_releases"] == ["pool-b", "pool-d"]
    assert two["releases"][3]["error_kind"] == "registry_unreachable"
    assert two["changed"] is False


def test_releases_run_in_parallel_up_to_max_parallel(helm, run, monkeypatch):
    import threading
    import time

    helm.push(chart_tgz(), "0.1.0")
    run_many(run)
    state = {"now": 0, "max": 0}
    lock = threading.Lock()
    plain = helm.__call__

    def slow(argv, data=None):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)
        try:
            return plain(argv, data)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(_helm_oci_chart, "run_process", slow)
    assert run_many(run)["changed"] is False
    assert state["max"] == 3
    state["max"] = 0
    assert run_many(run, max_parallel=1)["changed"] is False
    assert state["max"] == 1
    state["max"] = 0
    assert run_many(run, max_parallel=2)["changed"] is False
    assert state["max"] == 2


def test_releases_argument_errors(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    res = run_many(run, release_name="demo")
    assert res["failed"] and "mutually exclusive" in res["msg"]
    res = run_many(run, releases=[{"name": "a"}, {"name": "a"}])
    assert res["failed"] and res["error_kind"] == "invalid_argument"
    assert res["msg"] == "releases[1] (a): release a in namespace pools is listed twice"
    res = run(release_name=None, releases=[{"name": "a", "namespace": "x"}])
    assert res["failed"] and "releases[0] (a): state is present but chart_ref is not set" in res["msg"]
    res = run(release_name=None, release_namespace=None, releases=[{"name": "a", "state": "absent"}])
    assert res["failed"] and "release_namespace is not set" in res["msg"]
    res = run_many(run, state="mirrored", mirror_to="oci://m/charts")
    assert res["failed"] and "state=mirrored" in res["msg"]
    res = run_many(run, max_parallel=0)
    assert res["failed"] and "max_parallel" in res["msg"]
    res = run_many(run, releases=[{"name": "a", "bogus": 1}])
    assert res["failed"] and "bogus" in res["msg"]
    assert helm.releases == {}


def test_releases_empty_list_does_nothing(helm, run):
    res = run_many(run, releases=[])
    assert res["changed"] is False and res["releases"] == [] and res["_calls"] == []


def test_releases_share_one_registry_config_with_the_credentials(helm, run):
    helm.push(chart_tgz(), "0.1.0")
    res = run_many(run, registry_username="robot", registry_password=PASSWORD)
    assert res["changed"] is True and PASSWORD not in res["_raw"]
    configs = {p[p.index("--registry-config") + 1] for p in helm.pulls}
    assert len(configs) == 1
    import base64
    assert base64.b64decode(helm.seen_registry_config["auths"][REGISTRY]["auth"]).decode() == "robot:" + PASSWORD


def test_releases_old_helm_fails_once(helm, run):
    helm.version = "v3.7.1"
    res = run_many(run)
    assert res["failed"] is True and res["error_kind"] == "helm_version" and "3.7.1" in res["msg"]
    assert "releases" not in res


def test_documented_options_match_the_argument_spec():
    doc = yaml.safe_load(helm_oci_chart.DOCUMENTATION)
    documented = set(doc["options"])
    for fragment in ("helm_common", "oci_registry_auth"):
        mod = __import__("ansible_collections.gke_ai.inference_gateway.plugins.doc_fragments.%s" % fragment,
                         fromlist=["ModuleDocFragment"])
        documented |= set(yaml.safe_load(mod.ModuleDocFragment.DOCUMENTATION)["options"])
    assert documented == set(_helm_oci_chart.argument_spec())
    entry = doc["options"]["releases"]["suboptions"]
    assert set(entry) == set(_helm_oci_chart.release_entry_spec()) == set(_helm_oci_chart.RELEASE_OPTIONS)
    for name, spec in _helm_oci_chart.release_entry_spec().items():
        assert "default" not in spec or name == "set_values", name  # unset options fall back to the top level
        assert entry[name]["type"] == spec["type"]
    yaml.safe_load(helm_oci_chart.EXAMPLES)
    yaml.safe_load(helm_oci_chart.RETURN)


def test_no_log_on_every_secret_option():
    spec = _helm_oci_chart.argument_spec()
    for name in ("registry_password", "registry_token", "mirror_password", "mirror_token"):
        assert spec[name].get("no_log") is True
    assert _helm.DESCRIPTION_MARKER == "gke_ai.inference_gateway.helm_oci_chart"
