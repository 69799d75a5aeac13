# -*- coding: utf-8 -*-
# The k8s_converge action on the local environment, in small plays: its connection comes from module_defaults as a
# kubernetes.core.k8s task's does, and an ApplySet prunes what a step no longer has whatever its kind and scope (the
# roles' own use is covered by test_site.py and test_gie_roles.py).
from __future__ import annotations

import json
import subprocess
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
