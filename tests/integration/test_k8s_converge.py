# -*- coding: utf-8 -*-
# The k8s_converge action on the local environment, in small plays: its connection comes from module_defaults as a
# kubernetes.core.k8s task's does, and an ApplySet prunes what a step no longer has whatever its kind and scope (the
# roles' own use is covered by test_site.py and test_gie_roles.py).
from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
COLLECTIONS = REPO / ".local" / "collections"


def run_play(local_env, tmp_path, play, check=False, env=None):
    path = tmp_path / ("play-%s.json" % uuid.uuid4().hex[:8])
    path.write_text(json.dumps([dict({"hosts": "localhost", "gather_facts": False}, **play)]))
    environment = dict(local_env.env, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                       ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0", **(env or {}))
    for name in ("K8S_AUTH_KUBECONFIG", "KUBECONFIG"):
        environment.pop(name, None)
    environment["HOME"] = str(tmp_path)  # no ~/.kube/config: the connection must come from the play
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(path)]
                          + (["--check"] if check else []), capture_output=True, text=True, env=environment,
                          cwd=str(tmp_path), check=False)
    out = json.loads(proc.stdout)
    results = [task["hosts"]["localhost"] for task in out["plays"][0]["tasks"]]
    return proc.returncode, results


def configmap(name, namespace):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"k": "v"}}


@pytest.fixture
def namespace(local_env):
    name = "conv-%s" % uuid.uuid4().hex[:6]
    local_env.kubectl("create", "namespace", name)
    yield name
    local_env.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize("defaults, ok", [
    ({"kubernetes.core.k8s": {"kubeconfig": "KUBECONFIG"}}, True),  # what a kubernetes.core.k8s task would get
    ({"group/kubernetes.core.k8s": {"kubeconfig": "KUBECONFIG"}}, True),
    ({"group/gke_ai.inference_gateway.k8s": {"kubeconfig": "KUBECONFIG"}}, True),
    ({"kubernetes.core.k8s": {"kubeconfig": "KUBECONFIG", "context": "no-such-context"}}, False),
    ({}, False),  # nowhere to connect: kubernetes.core's own error
])
def test_the_connection_honours_module_defaults(local_env, tmp_path, namespace, defaults, ok):
    defaults = json.loads(json.dumps(defaults).replace("KUBECONFIG", local_env.kubeconfig))
    rc, (result,) = run_play(local_env, tmp_path, {"module_defaults": defaults, "tasks": [{
        "gke_ai.inference_gateway.k8s_converge": {"objects": [configmap("c", namespace)], "field_manager": "t"}}]})
    assert (rc == 0) is ok, result
    assert (local_env.kubectl("-n", namespace, "get", "configmap", "c", check=False).returncode == 0) is ok
    if not ok:
        assert "no-such-context" in result["msg"] or "kube-config" in result["msg"].lower(), result["msg"]


def test_an_applyset_prunes_what_the_step_no_longer_has_whatever_its_kind(local_env, tmp_path, namespace):
    role = "conv-test-%s" % namespace
    step = {"namespace": namespace, "field_manager": "t", "applyset": "conv-set", "kubeconfig": local_env.kubeconfig}
    everything = [configmap("a", namespace),
                  {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}, "stringData": {"k": "v"}},
                  {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
                   "rules": []}]
    rc, (result,) = run_play(local_env, tmp_path, {"tasks": [{
        "gke_ai.inference_gateway.k8s_converge": dict(step, objects=everything)}]})
    assert rc == 0, result
    assert sorted(result["created"]) == sorted(["ConfigMap %s/a" % namespace, "Secret %s/b" % namespace,
                                                "ClusterRole %s" % role])
    parent = json.loads(local_env.kubectl("-n", namespace, "get", "configmap", "conv-set", "-o", "json").stdout)
    assert parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"] == \
        "ClusterRole.rbac.authorization.k8s.io,ConfigMap,Secret"
    try:
        # Secrets and ClusterRoles leave the step altogether: still pruned, from the kinds the parent recorded
        rc, (check,) = run_play(local_env, tmp_path, {"tasks": [{
            "gke_ai.inference_gateway.k8s_converge": dict(step, objects=[configmap("a", namespace)])}]}, check=True)
        assert rc == 0 and check["changed"] and sorted(check["pruned"]) == ["ClusterRole %s" % role,
                                                                            "Secret %s/b" % namespace]
        assert local_env.kubectl("-n", namespace, "get", "secret", "b", check=False).returncode == 0  # check mode
        rc, (result,) = run_play(local_env, tmp_path, {"tasks": [{
            "gke_ai.inference_gateway.k8s_converge": dict(step, objects=[configmap("a", namespace)])}]})
        assert rc == 0 and sorted(result["pruned"]) == sorted(check["pruned"]) and not result["created"]
        assert local_env.kubectl("-n", namespace, "get", "secret", "b", check=False).returncode != 0
        assert local_env.kubectl("get", "clusterrole", role, check=False).returncode != 0
        parent = json.loads(local_env.kubectl("-n", namespace, "get", "configmap", "conv-set", "-o", "json").stdout)
        assert parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"] == "ConfigMap"
        rc, (again,) = run_play(local_env, tmp_path, {"tasks": [{
            "gke_ai.inference_gateway.k8s_converge": dict(step, objects=[configmap("a", namespace)])}]})
        assert rc == 0 and not again["changed"] and again["reasons"] == {}
        # state=absent (teardown.yml) deletes every member, then the parent
        rc, (removed,) = run_play(local_env, tmp_path, {"tasks": [{
            "gke_ai.inference_gateway.k8s_converge": dict(step, state="absent")}]})
        assert rc == 0 and removed["pruned"] == ["ConfigMap %s/a" % namespace]
        assert local_env.kubectl("-n", namespace, "get", "configmap", "-o", "name").stdout.split() == \
            ["configmap/kube-root-ca.crt"]
    finally:
        local_env.kubectl("delete", "clusterrole", role, "--ignore-not-found", check=False)


def test_a_crash_looping_model_server_fails_the_wait_at_once(local_env, tmp_path, namespace):
    """The wait stops as soon as a pod's container is crash-looping and names the model and the container's last
    exit. The pod runs on a Node no kubelet (kwok) manages, so the test writes the container status a kubelet writes
    for a vLLM that exits on a bad flag (CrashLoopBackOff, lastState.terminated)."""
    node = "no-kubelet-%s" % namespace
    local_env.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "Node",
                                                           "metadata": {"name": node}}))
    server = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "vllm-bad"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "vllm-bad"}},
        "template": {"metadata": {"labels": {"app": "vllm-bad"}}, "spec": {
            "nodeName": node, "containers": [{"name": "inference-server", "image": "vllm/vllm-openai:v0.8.5.post1",
                                              "args": ["--bogus-flag"]}]}}}}
    path = tmp_path / "play.json"
    path.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "gke_ai.inference_gateway.k8s_converge": {
            "objects": [server], "namespace": namespace, "field_manager": "t", "kubeconfig": local_env.kubeconfig,
            "wait": True, "wait_timeout": 600, "wait_sleep": 1, "wait_titles": {"vllm-bad": "model bad-flags"}}}]}]))
    env = dict(local_env.env, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    started = time.monotonic()
    play = subprocess.Popen([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path))
    try:
        pod = None
        while pod is None:
            assert time.monotonic() - started < 60 and play.poll() is None, "no pod, or the play ended"
            pods = json.loads(local_env.kubectl("-n", namespace, "get", "pods", "-o", "json").stdout)["items"]
            pod = pods[0]["metadata"]["name"] if pods else None
            time.sleep(0.5)
        status = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                             "containerStatuses": [{
                                 "name": "inference-server", "ready": False, "restartCount": 2, "started": False,
                                 "image": "vllm/vllm-openai:v0.8.5.post1", "imageID": "",
                                 "state": {"waiting": {"reason": "CrashLoopBackOff",
                                                       "message": "back-off 20s restarting failed container"}},
                                 "lastState": {"terminated": {
                                     "exitCode": 2, "reason": "Error", "startedAt": "2026-01-01T00:00:00Z",
                                     "finishedAt": "2026-01-01T00:00:03Z",
                                     "message": "api_server.py: error: unrecognized arguments: --bogus-flag"}}}]}}
        local_env.kubectl("-n", namespace, "patch", "pod", pod, "--subresource=status", "--type=merge",
                          "-p", json.dumps(status))
        stdout, _stderr = play.communicate(timeout=120)
    finally:
        if play.poll() is None:
            play.kill()
        local_env.kubectl("delete", "node", node, "--ignore-not-found", check=False)
    result = json.loads(stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result.get("failed") and time.monotonic() - started < 120  # far below the 600 s of the wait
    assert result["msg"].startswith("crash-looping, waiting cannot help:\n- model bad-flags, Deployment %s/vllm-bad: "
                                    "pod %s container inference-server is crash-looping (2 restarts, CrashLoopBackOff)"
                                    % (namespace, pod)), result["msg"]
    assert result["msg"].endswith("last exit: Error, exit code 2: api_server.py: error: unrecognized arguments: "
                                  "--bogus-flag")
    assert result["created"] == ["Deployment %s/vllm-bad" % namespace]


def bundle_crd(group, release, versions):
    """A small CRD of a made-up API group, as a GIE bundle annotates its CRDs."""
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    served = [{"name": v, "served": True, "storage": i == 0, "schema": schema} for i, v in enumerate(versions)]
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets." + group, "annotations": {"example.com/bundle-version": release}},
            "spec": {"group": group, "scope": "Namespaced", "versions": served,
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"}}}


def test_a_newer_crd_bundle_is_kept_unless_it_no_longer_serves_the_older_release(local_env, tmp_path):
    """A site.yml of an older profile in a cluster where another namespace installed a newer GIE bundle: the newer
    CRD stays while it serves what the older one needs, and is applied (taken back) only when it does not."""
    group = "conv-%s.example.com" % uuid.uuid4().hex[:6]
    keep = {"annotation": "example.com/bundle-version", "version": "v1.1.0"}
    step = {"field_manager": "t", "kubeconfig": local_env.kubeconfig, "wait": True}

    def live():
        crd = json.loads(local_env.kubectl("get", "crd", "widgets." + group, "-o", "json").stdout)
        return crd["metadata"]["annotations"]["example.com/bundle-version"], [v["name"] for v in crd["spec"]["versions"]]

    try:
        rc, (result,) = run_play(local_env, tmp_path, {"tasks": [{"gke_ai.inference_gateway.k8s_converge": dict(
            step, objects=[bundle_crd(group, "v1.5.0", ["v1", "v1alpha2"])])}]})
        assert rc == 0, result
        rc, (result,) = run_play(local_env, tmp_path, {"tasks": [{"gke_ai.inference_gateway.k8s_converge": dict(
            step, objects=[bundle_crd(group, "v1.1.0", ["v1alpha2"])], keep_newer=keep)}]})
        assert rc == 0 and not result["changed"], result
        assert result["kept"] == ["CustomResourceDefinition widgets.%s: the cluster's example.com/bundle-version "
                                  "(v1.5.0) is newer than v1.1.0 and serves v1alpha2" % group], result["kept"]
        assert "kept" in result["msg"] and live() == ("v1.5.0", ["v1", "v1alpha2"])
        # without keep_newer, or when the newer bundle no longer serves v1alpha1, the older CRD is applied
        rc, (result,) = run_play(local_env, tmp_path, {"tasks": [{"gke_ai.inference_gateway.k8s_converge": dict(
            step, objects=[bundle_crd(group, "v1.1.0", ["v1", "v1alpha2", "v1alpha1"])], keep_newer=keep)}]})
        assert rc == 0 and result["changed"] and result["kept"] == [], result
        assert live() == ("v1.1.0", ["v1", "v1alpha2", "v1alpha1"])
    finally:
        local_env.kubectl("delete", "crd", "widgets." + group, "--ignore-not-found", check=False)
