# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_helm.py: parsing, command building, the idempotency
# decision and error mapping. No helm binary, cluster or registry is needed.
from __future__ import annotations

import calendar
import base64
import json

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _helm as h

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


# ------------------------------------------------------------------ versions

@pytest.mark.parametrize("output,expected", [
    ("v3.22.0", (3, 22, 0)),
    ("v3.8.2+g6af6640", (3, 8, 2)),
    ('version.BuildInfo{Version:"v3.13.1", GitCommit:""}', (3, 13, 1)),
    ("v4.0.1", (4, 0, 1)),
    ("garbage", None),
    ("", None),
])
def test_parse_helm_version(output, expected):
    assert h.parse_helm_version(output) == expected


def test_old_helm_is_refused_with_found_version_in_message():
    with pytest.raises(h.HelmError) as e:
        h.check_helm_version((3, 7, 2), "/usr/bin/helm")
    assert e.value.kind == "helm_version"
    assert "3.7.2" in e.value.msg and "3.8.0" in e.value.msg and "/usr/bin/helm" in e.value.msg


def test_feature_minimum_versions():
    h.check_helm_version((3, 13, 0), "helm", ["plain_http"])
    with pytest.raises(h.HelmError, match=r"plain http needs helm >= 3\.13\.0"):
        h.check_helm_version((3, 12, 3), "helm", ["plain_http"])
    with pytest.raises(h.HelmError, match=r"3\.18\.0"):
        h.check_helm_version((3, 17, 0), "helm", ["digest_reference"])
    with pytest.raises(h.HelmError, match="Could not determine"):
        h.check_helm_version(None, "helm")


# ------------------------------------------------------------------ chart references

def test_parse_chart_ref_with_port_version_and_digest():
    ref = h.parse_chart_ref("oci://127.0.0.1:5000/gateway-api-inference-extension/charts/inferencepool",
                            version="v1.1.0", digest=DIGEST_A)
    assert ref.registry == "127.0.0.1:5000"
    assert ref.repository == "gateway-api-inference-extension/charts/inferencepool"
    assert ref.name == "inferencepool"
    assert ref.tag == "v1.1.0"
    assert ref.tag_key() == "127.0.0.1:5000/gateway-api-inference-extension/charts/inferencepool:v1.1.0"
    assert ref.display() == ("oci://127.0.0.1:5000/gateway-api-inference-extension/charts/inferencepool:v1.1.0@"
                             + DIGEST_A)
    assert ref.display_tag() == "oci://127.0.0.1:5000/gateway-api-inference-extension/charts/inferencepool:v1.1.0"


def test_parse_chart_ref_embedded_tag_and_digest():
    ref = h.parse_chart_ref("oci://r.example/charts/app:1.2.3@" + DIGEST_B)
    assert (ref.tag, ref.digest, ref.version) == ("1.2.3", DIGEST_B, "1.2.3")
    # the same values given twice agree
    assert h.parse_chart_ref("oci://r.example/charts/app:1.2.3", version="1.2.3").tag == "1.2.3"


def test_parse_chart_ref_plus_in_version_becomes_underscore_tag():
    ref = h.parse_chart_ref("oci://r.example/charts/app", version="1.0.0+build.5")
    assert ref.version == "1.0.0+build.5"
    assert ref.tag == "1.0.0_build.5"


@pytest.mark.parametrize("chart_ref,kwargs,match", [
    ("https://r.example/charts/app", {"version": "1"}, "must be an OCI reference"),
    ("oci://r.example", {"version": "1"}, "no repository path"),
    ("oci://r.example/charts/app", {}, "Give version"),
    ("oci://r.example/charts/app", {"version": "^1.0.0"}, "version range"),
    ("oci://r.example/charts/app", {"version": ">=1.0.0"}, "version range"),
    ("oci://r.example/charts/app", {"digest": "sha256:abc"}, "64 lowercase hex"),
    ("oci://r.example/charts/app", {"digest": "sha256:" + "A" * 64}, "64 lowercase hex"),
    ("oci://r.example/charts/app:1.0.0", {"version": "2.0.0"}, "carries tag 1.0.0 but version is 2.0.0"),
    ("oci://r.example/charts/app@" + DIGEST_A, {"digest": DIGEST_B}, "carries digest"),
])
def test_parse_chart_ref_rejects(chart_ref, kwargs, match):
    with pytest.raises(h.HelmError, match=match) as e:
        h.parse_chart_ref(chart_ref, **kwargs)
    assert e.value.kind == "invalid_argument"


def test_split_mirror_target():
    assert h.split_mirror_target("oci://europe-docker.pkg.dev/p/charts/") == ("europe-docker.pkg.dev", "p/charts")
    assert h.split_mirror_target("oci://localhost:5000") == ("localhost:5000", "")
    with pytest.raises(h.HelmError):
        h.split_mirror_target("localhost:5000/x")


# ------------------------------------------------------------------ description record

def test_description_round_trip():
    ref = h.parse_chart_ref("oci://127.0.0.1:5000/charts/demo", version="0.1.0")
    text = h.encode_description(ref, DIGEST_A)
    assert text == "gke_ai.inference_gateway.helm_oci_chart: oci://127.0.0.1:5000/charts/demo:0.1.0@" + DIGEST_A
    assert h.decode_description(text) == ("oci://127.0.0.1:5000/charts/demo:0.1.0", DIGEST_A)
    assert h.decode_description("Upgrade complete") == (None, None)
    assert h.decode_description(None) == (None, None)


def test_description_digest_only_reference():
    ref = h.parse_chart_ref("oci://r.example/charts/demo", digest=DIGEST_B)
    assert h.decode_description(h.encode_description(ref, DIGEST_B)) == ("oci://r.example/charts/demo", DIGEST_B)


def test_recorded_digest_follows_rollbacks_through_history():
    ref = h.parse_chart_ref("oci://r/c/demo", version="1.0.0")
    history = [
        {"revision": 1, "status": "superseded", "description": h.encode_description(ref, DIGEST_A)},
        {"revision": 2, "status": "superseded", "description": "Upgrade complete"},
        {"revision": 3, "status": "superseded", "description": "Rollback to 1"},
        {"revision": 4, "status": "deployed", "description": "Rollback to 3"},
    ]
    assert h.resolve_recorded_digest("Rollback to 3") == (None, None, True)
    assert h.resolve_recorded_digest("Rollback to 3", history) == ("oci://r/c/demo:1.0.0", DIGEST_A, False)
    assert h.resolve_recorded_digest("Rollback to 2", history) == (None, None, False)
    assert h.resolve_recorded_digest("Rollback to 9", history) == (None, None, False)
    loop = [{"revision": 1, "description": "Rollback to 2"}, {"revision": 2, "description": "Rollback to 1"}]
    assert h.resolve_recorded_digest("Rollback to 1", loop) == (None, None, False)


# ------------------------------------------------------------------ parsing

STATUS_JSON = json.dumps({
    "name": "epp",
    "info": {"first_deployed": "2026-11-26T10:00:00Z", "last_deployed": "2026-11-26T11:00:00Z",
             "status": "deployed", "description": "Install complete"},
    "chart": {"metadata": {"name": "inferencepool", "version": "v1.1.0", "appVersion": "v1.1.0"},
              "templates": [{"name": "templates/x.yaml", "data": "e30="}], "values": {"replicas": 1}},
    "config": {"provider": {"name": "gke"}},
    "manifest": "---\n# Source: x\napiVersion: v1\nkind: Service\nmetadata:\n  name: epp\n",
    "version": 3,
    "namespace": "default",
})


def test_parse_release_json():
    rel = h.parse_release_json(STATUS_JSON)
    assert (rel.name, rel.namespace, rel.revision, rel.status) == ("epp", "default", 3, "deployed")
    assert (rel.chart_name, rel.chart_version, rel.app_version) == ("inferencepool", "v1.1.0", "v1.1.0")
    assert rel.config == {"provider": {"name": "gke"}}
    assert rel.updated == "2026-11-26T11:00:00Z"
    assert rel.pending is False


def test_parse_release_json_tolerates_leading_text_and_missing_config():
    text = 'Release "x" does not exist. Installing it now.\n' + json.dumps(
        {"name": "x", "info": {"status": "pending-install"}, "version": 1, "namespace": "n"})
    rel = h.parse_release_json(text)
    assert rel.config == {} and rel.manifest == "" and rel.pending


def test_parse_release_json_errors():
    with pytest.raises(h.HelmError, match="no JSON") as e:
        h.parse_release_json("Error: nothing")
    assert e.value.kind == "parse"
    with pytest.raises(h.HelmError, match="Could not parse"):
        h.parse_release_json("{not json")


def test_parse_history_json_sorted():
    text = json.dumps([{"revision": 2, "status": "pending-upgrade"}, {"revision": 1, "status": "deployed"}])
    assert [e["revision"] for e in h.parse_history_json(text)] == [1, 2]


@pytest.mark.parametrize("text,expected", [
    ("null\n", {}),
    ("", {}),
    ('{"a": {"b": 1}}', {"a": {"b": 1}}),
])
def test_parse_values_json(text, expected):
    assert h.parse_values_json(text) == expected


def test_parse_pull_digest():
    err = "Pulled: 127.0.0.1:5000/charts/demo:0.1.0\nDigest: %s\n" % DIGEST_A
    assert h.parse_pushed_or_pulled_digest(err) == DIGEST_A
    assert h.parse_pushed_or_pulled_digest("nothing") is None


def test_parse_probe_output():
    out = '---\n# Source: values-probe/templates/values.yaml\n{"a":{"b":2,"n":null},"s":"1"}\n'
    assert h.parse_probe_output(out) == {"a": {"b": 2, "n": None}, "s": "1"}
    with pytest.raises(h.HelmError):
        h.parse_probe_output("---\n# Source: x\n")


MANIFEST = """---
# Source: inferencepool/templates/sa.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: epp
---
# Source: inferencepool/templates/rbac.yaml
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: epp-reader
---
# Source: inferencepool/templates/other-ns.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: elsewhere
---
# Source: empty.yaml
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Secret
    metadata: {name: s1}
"""


def test_parse_manifest_resources():
    assert h.parse_manifest_resources(MANIFEST, "default") == [
        {"api_version": "v1", "kind": "ServiceAccount", "namespace": "default", "name": "epp"},
        {"api_version": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "namespace": None,
         "name": "epp-reader"},
        {"api_version": "v1", "kind": "ConfigMap", "namespace": "elsewhere", "name": "cfg"},
        {"api_version": "v1", "kind": "Secret", "namespace": "default", "name": "s1"},
    ]
    assert h.parse_manifest_resources("", "default") == []


def test_parse_manifest_resources_bad_yaml():
    with pytest.raises(h.HelmError, match="manifest"):
        h.parse_manifest_resources("a: [\n", "default")


# ------------------------------------------------------------------ error mapping

@pytest.mark.parametrize("stderr,kind", [
    ("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress", "pending_operation"),
    ('Error: failed to do request: Head "https://127.0.0.1:5000/v2/x/manifests/1": http: server gave HTTP '
     'response to HTTPS client', "plain_http"),
    ("Error: chart reference digest mismatch: %s is not %s" % (DIGEST_A, DIGEST_B), "digest_mismatch"),
    ("Error: failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized",
     "registry_auth"),
    ('Error: failed to perform "FetchReference" on source: r/x:9.9.9: not found', "chart_not_found"),
    ('Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:6443/version": dial tcp', "cluster_unreachable"),
    ("Error: UPGRADE FAILED: context deadline exceeded", "timeout"),
    ("Error: release: not found", "release_not_found"),
    ("Error: something else entirely", "helm"),
])
def test_classify_helm_error(stderr, kind):
    assert h.classify_helm_error(stderr)[0] == kind


def test_helm_error_from_result_message_and_result():
    argv = ["helm", "upgrade", "r", "/c.tgz", "--install"]
    err = h.helm_error_from_result(argv, 1, "", "Error: UPGRADE FAILED: another operation "
                                   "(install/upgrade/rollback) is in progress\n", action="helm upgrade --install")
    res = err.to_result()
    assert res["error_kind"] == "pending_operation"
    assert res["msg"].startswith("helm upgrade --install failed (rc=1): UPGRADE FAILED: another operation")
    assert "recover_pending=true" in res["msg"]
    assert res["command"] == "helm upgrade r /c.tgz --install"
    assert res["rc"] == 1


# ------------------------------------------------------------------ values

def test_set_values_args_typed():
    args = h.set_values_args([
        {"value": "inferencePool.modelServers.matchLabels.app=vllm-llama3-8b-instruct", "value_type": "raw"},
        {"value": "provider.name=gke"},
        {"value": "image.tag=1.0", "value_type": "string"},
        {"value": 'extra={"a":[1,2]}', "value_type": "json"},
        {"value": "cert=/tmp/ca.pem", "value_type": "file"},
        {"value": "csv=a,b,c", "value_type": "literal"},
    ])
    assert args == [
        "--set", "inferencePool.modelServers.matchLabels.app=vllm-llama3-8b-instruct",
        "--set", "provider.name=gke",
        "--set-string", "image.tag=1.0",
        "--set-json", 'extra={"a":[1,2]}',
        "--set-file", "cert=/tmp/ca.pem",
        "--set-literal", "csv=a,b,c",
    ]


def test_set_values_args_rejects_bad_entries():
    with pytest.raises(h.HelmError, match="key=value"):
        h.set_values_args([{"value": "novalue"}])
    with pytest.raises(h.HelmError, match="value_type"):
        h.set_values_args([{"value": "a=b", "value_type": "yaml"}])


def test_set_values_features():
    assert h.set_values_features([{"value": "a=1", "value_type": "json"}, {"value": "b=1"},
                                  {"value": "c=1", "value_type": "literal"}]) == ["set_json", "set_literal"]
    assert h.set_values_features([]) == []


def test_normalize_values_numbers_and_keys():
    assert h.normalize_values({"a": 3.0, "b": [1.5, 2.0], 1: True}) == {"a": 3, "b": [1.5, 2], "1": True}
    assert h.normalize_values({"a": 3}) == h.normalize_values({"a": 3.0})


def test_values_changes_reports_paths_not_values():
    before = {"a": {"b": 1, "c": "secret-old"}, "list": [1, 2], "gone": 1}
    after = {"a": {"b": 1.0, "c": "secret-new"}, "list": [1, 2, 3], "new": {"x": 1}}
    changes = h.values_changes(before, after)
    assert changes == ["a.c", "gone", "list", "new"]
    assert not any("secret" in c for c in changes)
    assert h.values_changes({"a": None}, {}) == ["a"]
    assert h.values_changes({}, {}) == []
    assert h.values_changes(None, {}) == []


# ------------------------------------------------------------------ the idempotency decision

def release(**kw):
    base = dict(name="r", namespace="n", revision=2, status="deployed", chart_name="demo", chart_version="0.1.0",
                app_version="1", config={"replicaCount": 1}, manifest="", description="")
    base.update(kw)
    return h.ReleaseInfo(**base)


DESIRED = h.DesiredChart("demo", "0.1.0", DIGEST_A)


def test_plan_nothing_to_do_when_chart_digest_and_values_match():
    plan = h.plan_release(release(), DIGEST_A, DESIRED, {"replicaCount": 1.0})
    assert plan.action == "none" and not plan.changed and plan.reasons == []


def test_plan_install_when_absent_or_uninstalled():
    assert h.plan_release(None, None, DESIRED, {}).action == "install"
    assert h.plan_release(release(status="uninstalled"), DIGEST_A, DESIRED, {}).action == "install"


@pytest.mark.parametrize("changes,deployed_digest,values,expect", [
    ({"chart_version": "0.0.9"}, DIGEST_A, {"replicaCount": 1}, "chart version 0.0.9 -> 0.1.0"),
    ({"chart_name": "other"}, DIGEST_A, {"replicaCount": 1}, "chart other -> demo"),
    ({}, DIGEST_B, {"replicaCount": 1}, "chart digest %s -> %s" % (DIGEST_B, DIGEST_A)),
    ({}, None, {"replicaCount": 1}, "no chart digest record"),
    ({}, DIGEST_A, {"replicaCount": 2}, "values changed: replicaCount"),
    ({}, DIGEST_A, {}, "values changed: replicaCount"),
    ({"status": "failed"}, DIGEST_A, {"replicaCount": 1}, "release status is failed"),
    ({"status": "superseded"}, DIGEST_A, {"replicaCount": 1}, "release status is superseded"),
])
def test_plan_upgrade_reasons(changes, deployed_digest, values, expect):
    plan = h.plan_release(release(**changes), deployed_digest, DESIRED, values)
    assert plan.action == "upgrade"
    assert any(expect in r for r in plan.reasons), plan.reasons


def test_plan_refuses_pending_release():
    with pytest.raises(h.HelmError) as e:
        h.plan_release(release(status="pending-upgrade"), DIGEST_A, DESIRED, {})
    assert e.value.kind == "pending_release"


@pytest.mark.parametrize("history,expected", [
    ([{"revision": 1, "status": "pending-install"}], ("uninstall", None)),
    ([], ("uninstall", None)),
    ([{"revision": 1, "status": "superseded"}, {"revision": 2, "status": "deployed"},
      {"revision": 3, "status": "pending-upgrade"}], ("rollback", 2)),
    ([{"revision": 1, "status": "superseded"}, {"revision": 2, "status": "failed"},
      {"revision": 3, "status": "pending-rollback"}], ("rollback", 1)),
    ([{"revision": 1, "status": "failed"}, {"revision": 2, "status": "pending-upgrade"}], ("uninstall", None)),
])
def test_plan_recovery(history, expected):
    assert h.plan_recovery(history) == expected


def test_pending_message_names_the_fix():
    rel = release(status="pending-upgrade", revision=3, updated="2026-11-26T11:00:00Z")
    msg = h.pending_message(rel, ("rollback", 2))
    assert "pending-upgrade" in msg and "revision 3" in msg
    assert "recover_pending=true" in msg and "helm rollback r 2 -n n" in msg
    msg = h.pending_message(release(status="pending-install", revision=1), ("uninstall", None))
    assert "helm uninstall r -n n" in msg


# ------------------------------------------------------------------ command building

G = h.HelmGlobals(kubeconfig="/k/config", context="kind", registry_config="/tmp/x/registry.json")


def test_release_and_history_commands_carry_cluster_flags_only():
    assert h.get_release_command("helm", G, "r", "ns") == [
        "helm", "get", "all", "r", "--namespace", "ns", "--template", h.RELEASE_TEMPLATE,
        "--kubeconfig", "/k/config", "--kube-context", "kind"]
    assert h.get_values_command("helm", G, "r", "ns") == [
        "helm", "get", "values", "r", "--namespace", "ns", "--output", "json",
        "--kubeconfig", "/k/config", "--kube-context", "kind"]
    assert h.history_command("helm", h.HelmGlobals(), "r", "ns")[:7] == [
        "helm", "history", "r", "--namespace", "ns", "--output", "json"]
    assert "'<release template>'" in h.format_command(h.get_release_command("helm", G, "r", "ns"))


def test_release_command_without_kubeconfig_lets_helm_use_KUBECONFIG():
    argv = h.get_release_command("helm", h.HelmGlobals(), "r", "ns")
    assert "--kubeconfig" not in argv and "--kube-context" not in argv


def test_pull_commands():
    tag_ref = h.parse_chart_ref("oci://127.0.0.1:5000/charts/demo", version="0.1.0")
    assert h.pull_command("helm", G, tag_ref, "/d", plain_http=True) == [
        "helm", "pull", "oci://127.0.0.1:5000/charts/demo", "--version", "0.1.0", "--destination", "/d",
        "--plain-http", "--registry-config", "/tmp/x/registry.json"]
    pinned = tag_ref.with_digest(DIGEST_A)
    assert h.pull_command("helm", h.HelmGlobals(), pinned, "/d")[:3] == [
        "helm", "pull", "oci://127.0.0.1:5000/charts/demo:0.1.0@" + DIGEST_A]
    # older helm: by tag, the digest is compared by the module
    assert h.pull_command("helm", h.HelmGlobals(), pinned, "/d", by_digest=False)[2:5] == [
        "oci://127.0.0.1:5000/charts/demo", "--version", "0.1.0"]


def test_upgrade_command_full():
    argv = h.upgrade_command(
        "helm", G, "r", "ns", "/cache/sha256-x.tgz", values_file="/t/values.json",
        set_args=["--set", "a=b"], create_namespace=True, wait=True, wait_for_jobs=True, timeout="5m0s",
        atomic=True, skip_crds=True, description="gke_ai...: x", dry_run=True)
    assert argv == [
        "helm", "upgrade", "r", "/cache/sha256-x.tgz", "--install", "--namespace", "ns", "--reset-values",
        "--output", "json", "--values", "/t/values.json", "--set", "a=b", "--create-namespace", "--wait",
        "--wait-for-jobs", "--atomic", "--timeout", "5m0s", "--skip-crds", "--description", "gke_ai...: x",
        "--dry-run=server", "--kubeconfig", "/k/config", "--kube-context", "kind"]


def test_upgrade_command_minimal_and_helm4_atomic():
    argv = h.upgrade_command("helm", h.HelmGlobals(), "r", "ns", "/c.tgz")
    assert argv == ["helm", "upgrade", "r", "/c.tgz", "--install", "--namespace", "ns", "--reset-values",
                    "--output", "json"]
    assert "--rollback-on-failure" in h.upgrade_command("helm", h.HelmGlobals(), "r", "ns", "/c.tgz", atomic=True,
                                                        helm_major=4)


def test_uninstall_and_rollback_commands():
    assert h.uninstall_command("helm", h.HelmGlobals(), "r", "ns", wait=True, timeout="60s") == [
        "helm", "uninstall", "r", "--namespace", "ns", "--wait", "--timeout", "60s"]
    assert h.rollback_command("helm", h.HelmGlobals(), "r", "ns", 4) == [
        "helm", "rollback", "r", "4", "--namespace", "ns"]


def test_probe_command_and_chart(tmp_path):
    chart = h.write_probe_chart(str(tmp_path / "probe"))
    assert (tmp_path / "probe" / "Chart.yaml").read_text().startswith("apiVersion: v2")
    assert "toJson .Values" in (tmp_path / "probe" / "templates" / "values.yaml").read_text()
    assert h.probe_command("helm", chart, ["--values", "v.json"], ["--set", "a=1"]) == [
        "helm", "template", "values-probe", chart, "--values", "v.json", "--set", "a=1"]


@pytest.mark.parametrize("value,expected", [
    ("300", "300s"), (300, "300s"), ("5m0s", "5m0s"), ("1h30m", "1h30m"), ("1.5h", "1.5h"), (None, None)])
def test_normalize_timeout(value, expected):
    assert h.normalize_timeout(value) == expected


def test_normalize_timeout_rejects():
    with pytest.raises(h.HelmError):
        h.normalize_timeout("five minutes")


def test_format_command_quotes():
    assert h.format_command(["helm", "version", "--template", "{{.Version}}"]) == \
        "helm version --template '{{.Version}}'"


# ------------------------------------------------------------------ credentials

def test_credentials_from_token_defaults_to_oauth2accesstoken():
    assert h.credentials_from(None, None, "ya29.tok") == ("oauth2accesstoken", "ya29.tok")
    assert h.credentials_from("bot", None, "tok") == ("bot", "tok")
    assert h.credentials_from("alice", "pw", None) == ("alice", "pw")
    assert h.credentials_from(None, None, None) is None
    with pytest.raises(h.HelmError):
        h.credentials_from(None, "pw", None)
    with pytest.raises(h.HelmError):
        h.credentials_from("alice", None, None)


def test_registry_auth_config_format():
    cfg = h.registry_auth_config({"us-docker.pkg.dev": ("oauth2accesstoken", "ya29.x")})
    auth = cfg["auths"]["us-docker.pkg.dev"]["auth"]
    assert base64.b64decode(auth).decode() == "oauth2accesstoken:ya29.x"


# ------------------------------------------------------------------ the runner

class Recorder:
    def __init__(self, results):
        self.results = list(results)
        self.argvs = []

    def __call__(self, argv, data=None):
        self.argvs.append(argv)
        return self.results.pop(0)


TEMPLATE_OUTPUT = (
    'name\t"epp"\nnamespace\t"default"\nrevision\t"3"\nstatus\t"deployed"\n'
    'description\t"gke_ai.inference_gateway.helm_oci_chart: oci://r/c/inferencepool:v1.1.0@%s"\n'
    'updated\t"2026-11-26 11:02:35.871244966 +0000 UTC"\nchart_name\t"inferencepool"\n'
    'chart_version\t"v1.1.0"\napp_version\t""\n'
    'manifest\t"---\\n# Source: x\\napiVersion: v1\\nkind: Service\\nmetadata:\\n  name: \\"epp\\"\\n"\n'
) % DIGEST_A


def test_parse_release_template():
    rel = h.parse_release_template(TEMPLATE_OUTPUT)
    assert (rel.name, rel.namespace, rel.revision, rel.status) == ("epp", "default", 3, "deployed")
    assert (rel.chart_name, rel.chart_version, rel.app_version) == ("inferencepool", "v1.1.0", None)
    assert h.decode_description(rel.description)[1] == DIGEST_A
    assert h.parse_manifest_resources(rel.manifest, "default") == [
        {"api_version": "v1", "kind": "Service", "namespace": "default", "name": "epp"}]
    with pytest.raises(h.HelmError, match="printed no"):
        h.parse_release_template("name\t\"x\"\n")


@pytest.mark.parametrize("quoted,expected", [
    ('"plain"', "plain"),
    ('"a\\nb\\tc\\"d\\\\e"', 'a\nb\tc"d\\e'),
    ('"bell\\a vt\\v"', "bell\a vt\v"),
    ('"\\u00e9t\\U0001F600"', "\u00e9t\U0001F600"),
    ('"caf\u00e9"', "caf\u00e9"),
    ('"\\xc3\\xa9"', "\u00e9"),
    ('""', ""),
])
def test_go_unquote(quoted, expected):
    assert h.go_unquote(quoted) == expected


def test_go_unquote_rejects_unquoted():
    with pytest.raises(h.HelmError):
        h.go_unquote("plain")


def test_helm_get_release_not_found_is_none_and_other_errors_raise():
    helm = h.Helm("helm", Recorder([(1, "", "Error: release: not found\n")]))
    assert helm.get_release("r", "ns") is None
    helm = h.Helm("helm", Recorder([(1, "", 'Error: Kubernetes cluster unreachable: Get "https://x"\n')]))
    with pytest.raises(h.HelmError) as e:
        helm.get_release("r", "ns")
    assert e.value.kind == "cluster_unreachable"


def test_helm_get_release_reads_values_too():
    rec = Recorder([(0, TEMPLATE_OUTPUT, ""), (0, '{"provider": {"name": "gke"}}', "")])
    rel = h.Helm("helm", rec).get_release("epp", "default")
    assert rel.config == {"provider": {"name": "gke"}}
    assert [a[1:3] for a in rec.argvs] == [["get", "all"], ["get", "values"]]


# What helm 3.22 printed for CONFIG_TEMPLATE (`helm get all --template` of a release installed with these
# values in a -f file): maps with sorted keys, lists, every scalar type a release's values can hold.
CONFIG_OUTPUT = "\n".join([
    "config\t-",
    "{",
    '"a"', "{",
    '"big"', 'float64 "1e+15"',
    '"e"', "{", "}",
    '"f"', 'bool "false"',
    '"frac"', 'float64 "2.5"',
    '"huge"', 'float64 "1e+21"',
    '"l"', "[", 'float64 "1"', '<nil> "<nil>"', 'string "x\\ny \\"q\\" \u00e9"', "[", "]", "]",
    '"n"', 'float64 "-3"',
    "}",
    '"s\\tkey"', 'string ""',
    "}",
]) + "\n"


def test_helm_get_release_reads_values_from_the_template_in_one_process():
    rec = Recorder([(0, TEMPLATE_OUTPUT + CONFIG_OUTPUT, "")])
    rel = h.Helm("helm", rec).get_release("epp", "default")
    assert [a[1:3] for a in rec.argvs] == [["get", "all"]]
    assert rel.config == {"a": {"big": 10 ** 15, "e": {}, "f": False, "frac": 2.5, "huge": 1e21,
                                "l": [1, None, 'x\ny "q" \u00e9', []], "n": -3},
                          "s\tkey": ""}
    # the types are those of `helm get values -o json` read by Python: integral numbers are ints
    assert isinstance(rel.config["a"]["big"], int) and isinstance(rel.config["a"]["huge"], float)
    assert rel.name == "epp" and rel.manifest.startswith("---")


def test_template_asks_for_the_config_last():
    assert h.RELEASE_TEMPLATE.index(h.CONFIG_MARKER) > h.RELEASE_TEMPLATE.index("manifest\t")
    assert h.RELEASE_TEMPLATE.endswith('{{template "infgw.v" .Release.Config}}')
    assert "$" in h.CONFIG_TEMPLATE  # Go template variables: the argument must reach helm unexpanded


@pytest.mark.parametrize("lines", [
    ["{", '"a"', 'map[string]string "x"', "}"],  # a type the parser does not know
    ["{", '"a"'],  # truncated
    ["{", "bad key", 'string "x"', "}"],
    ["[", "]"],  # not a map
    ["{", "}", "{", "}"],  # trailing tokens
    ["{", '"a"', 'float64 "nope"', "}"],
    [],
])
def test_unreadable_config_falls_back_to_helm_get_values(lines):
    assert h.parse_config_lines(lines) is None
    rec = Recorder([(0, TEMPLATE_OUTPUT + "\n".join(["config\t-"] + lines) + "\n", ""), (0, '{"k": 1}', "")])
    rel = h.Helm("helm", rec).get_release("epp", "default")
    assert rel.config == {"k": 1} and [a[1:3] for a in rec.argvs] == [["get", "all"], ["get", "values"]]


def test_values_digest_is_canonical():
    assert h.values_digest({"a": 1.0, "b": [2]}) == h.values_digest({"b": [2], "a": 1})
    assert h.values_digest({"a": 1}) != h.values_digest({"a": "1"})
    assert h.values_digest(None) == h.values_digest({})


def test_values_probe_key_covers_every_input(tmp_path):
    vf, sf = tmp_path / "v.yaml", tmp_path / "s.txt"
    vf.write_text("a: 1\n")
    sf.write_text("content")
    sets = ["--set", "x=1", "--set-file", "y=%s" % sf]
    key = h.values_probe_key((3, 22, 0), {"v": 1}, [str(vf)], sets)
    assert key == h.values_probe_key((3, 22, 0), {"v": 1}, [str(vf)], list(sets))
    assert key != h.values_probe_key((3, 21, 0), {"v": 1}, [str(vf)], sets)
    assert key != h.values_probe_key((3, 22, 0), {"v": 2}, [str(vf)], sets)
    assert key != h.values_probe_key((3, 22, 0), {"v": 1}, [], sets)
    assert key != h.values_probe_key((3, 22, 0), {"v": 1}, [str(vf)], sets[:2])
    vf.write_text("a: 2\n")
    key2 = h.values_probe_key((3, 22, 0), {"v": 1}, [str(vf)], sets)
    assert key2 != key
    sf.write_text("other")
    assert h.values_probe_key((3, 22, 0), {"v": 1}, [str(vf)], sets) != key2
    assert h.values_probe_key((3, 22, 0), {}, [str(tmp_path / "missing.yaml")], []) is None


def test_run_process_passes_arguments_verbatim_and_maps_a_missing_binary():
    rc, out, err = h.run_process(["/bin/sh", "-c", 'printf "%s|%s" "$1" "$2"; echo oops >&2; exit 3', "sh",
                                  "a=$HOME", "~/x"])
    assert (rc, out, err) == (3, "a=$HOME|~/x", "oops\n")
    assert h.run_process(["/bin/cat"], data=b"in") == (0, "in", "")
    with pytest.raises(h.HelmError) as e:
        h.run_process(["/no/such/helm", "version"])
    assert e.value.kind == "helm_missing" and "/no/such/helm" in e.value.msg


def test_helm_detect_version_refuses_old_helm():
    helm = h.Helm("/opt/helm", Recorder([(0, "v3.7.0", "")]))
    with pytest.raises(h.HelmError, match="3.7.0"):
        helm.detect_version()
    helm = h.Helm("/opt/helm", Recorder([(0, "v3.22.0", "")]))
    assert helm.detect_version(["set_json"]) == (3, 22, 0)
    assert helm.commands == ["/opt/helm version --template '{{.Version}}'"]


def test_helm_detect_version_missing_binary():
    def boom(argv, data=None):
        raise OSError(2, "No such file or directory")
    with pytest.raises(h.HelmError) as e:
        h.Helm("/nope/helm", boom).detect_version()
    assert e.value.kind == "helm_missing" and "/nope/helm" in e.value.msg


def test_helm_pull_checks_digest_itself_on_old_helm():
    ref = h.parse_chart_ref("oci://r/c/demo", version="1.0.0", digest=DIGEST_A)
    rec = Recorder([(0, "v3.17.0", ""), (0, "", "Pulled: r/c/demo:1.0.0\nDigest: %s\n" % DIGEST_B)])
    helm = h.Helm("helm", rec)
    helm.detect_version()
    with pytest.raises(h.HelmError) as e:
        helm.pull(ref, "/d")
    assert e.value.kind == "digest_mismatch"
    assert DIGEST_A in e.value.msg and DIGEST_B in e.value.msg
    assert rec.argvs[1][2:5] == ["oci://r/c/demo", "--version", "1.0.0"]


def test_helm_pull_digest_only_needs_helm_318():
    ref = h.parse_chart_ref("oci://r/c/demo", digest=DIGEST_A)
    helm = h.Helm("helm", Recorder([(0, "v3.17.0", "")]))
    helm.detect_version()
    with pytest.raises(h.HelmError, match="3.18.0"):
        helm.pull(ref, "/d")


# --------------------------------------------------------------------------- pending releases: how old


@pytest.mark.parametrize("text, expected", [
    ("2026-12-04 12:38:36.096420131 +0000 UTC", calendar.timegm((2026, 12, 4, 12, 38, 36)) + 0.096420131),
    ("2026-12-04T12:38:36.096420131Z", calendar.timegm((2026, 12, 4, 12, 38, 36)) + 0.096420131),
    ("2024-02-29 23:59:59 +0200 EET", calendar.timegm((2024, 2, 29, 21, 59, 59))),
    ("2026-01-01T00:00:00-05:30", calendar.timegm((2026, 1, 1, 5, 30, 0))),
    ("now", None),
    (None, None),
])
def test_parse_helm_time(text, expected):
    parsed = h.parse_helm_time(text)
    assert parsed == pytest.approx(expected) if expected is not None else parsed is None


@pytest.mark.parametrize("duration, seconds", [("5m0s", 300), ("90", 90), ("1h30m", 5400), ("0s", 0), ("250ms", 0.25)])
def test_duration_seconds(duration, seconds):
    assert h.duration_seconds(duration) == pytest.approx(seconds)


def test_pending_too_young():
    started = calendar.timegm((2026, 12, 4, 12, 0, 0))
    release = h.ReleaseInfo(name="r", namespace="n", revision=3, status="pending-upgrade",
                            updated="2026-12-04 12:00:00 +0000 UTC")
    assert h.pending_too_young(release, started + 10, 300) == pytest.approx(10)
    assert h.pending_too_young(release, started + 300, 300) is None
    assert h.pending_too_young(release, started + 10, 0) is None  # no grace: recover at once
    unknown = h.ReleaseInfo(name="r", namespace="n", revision=3, status="pending-upgrade", updated="?")
    assert h.pending_too_young(unknown, started, 300) == -1  # cannot tell: treated as still running
    msg = h.pending_in_progress_message(release, ("rollback", 2), 10, "5m0s")
    assert "pending-upgrade for 10s" in msg and "5m0s old" in msg and "helm rollback r 2 -n n" in msg
