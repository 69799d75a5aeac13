# -*- coding: utf-8 -*-
# The standard-library client of k8s_converge (plugins/module_utils/_kube_http.py) against the local API server,
# compared with kubectl and with kubernetes.core's client, which the engine falls back to.
from __future__ import annotations

import json
import subprocess

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._kube_http import (
    CoreClient,
    KubeApiError,
    KubeClient,
    resolve_connection,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def clients(local_env, monkeypatch):
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", local_env.kubeconfig)
    light = KubeClient(resolve_connection())
    core = CoreClient({"kubeconfig": local_env.kubeconfig})
    yield light, core
    light.close()


def kubectl_json(local_env, *args):
    return json.loads(local_env.kubectl(*args, "-o", "json").stdout)


def test_discovery_matches_kubernetes_core(clients):
    light, core = clients
    for api_version, kind in [("v1", "Namespace"), ("v1", "Service"), ("apps/v1", "Deployment"),
                              ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
                              ("gateway.networking.k8s.io/v1", "HTTPRoute"),
                              ("autoscaling/v2", "HorizontalPodAutoscaler")]:
        assert light.resource(api_version, kind) == core.resource(api_version, kind), kind
    assert light.resource("apps/v1", "Deploymnet") is None
    assert light.resource("nothing.example.com/v1", "Thing") is None  # a group the cluster does not serve
    assert core.resource("nothing.example.com/v1", "Thing") is None


def test_get_is_the_object_kubectl_and_kubernetes_core_read(local_env, clients):
    light, core = clients
    namespaces = light.resource("v1", "Namespace")
    mine = light.get(namespaces, "kube-system")
    assert mine["metadata"]["uid"] == kubectl_json(local_env, "get", "namespace", "kube-system")["metadata"]["uid"]
    assert mine == core.get(core.resource("v1", "Namespace"), "kube-system")
    assert light.get(namespaces, "no-such-namespace") is None


def test_list_by_label_gives_items_with_their_kind(local_env, clients):
    light, core = clients
    local_env.kubectl("create", "namespace", "kube-http-test", check=False)
    try:
        for name, tier in [("a", "x"), ("b", "y"), ("c", "x")]:
            local_env.kubectl("-n", "kube-http-test", "create", "configmap", name)
            local_env.kubectl("-n", "kube-http-test", "label", "configmap", name, "tier=%s" % tier)
        configmaps = light.resource("v1", "ConfigMap")
        items = light.list(configmaps, "kube-http-test", "tier=x")
        assert sorted(item["metadata"]["name"] for item in items) == ["a", "c"]
        assert {(item["apiVersion"], item["kind"]) for item in items} == {("v1", "ConfigMap")}
        core_items = core.list(core.resource("v1", "ConfigMap"), "kube-http-test", "tier=x")
        assert sorted(json.dumps(i, sort_keys=True) for i in items) == sorted(
            json.dumps(i, sort_keys=True) for i in core_items)
    finally:
        local_env.kubectl("delete", "namespace", "kube-http-test", "--wait=false", check=False)


def test_an_api_error_names_the_status_and_the_path(local_env, monkeypatch):
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", local_env.kubeconfig)
    monkeypatch.setenv("K8S_AUTH_API_KEY", "not-a-valid-token")
    connection = resolve_connection()
    connection.cert_file = connection.cert_data = connection.key_file = connection.key_data = None
    client = KubeClient(connection)
    with pytest.raises(KubeApiError) as raised:
        client.resource("v1", "Namespace")
    assert raised.value.status == 401 and "GET /api/v1" in str(raised.value)


@pytest.mark.parametrize("which", ["light", "core"])
def test_writes_apply_dry_run_patch_and_delete(local_env, clients, which):
    """Both clients write alike: a server-side apply (and its dry run), a JSON patch, a delete."""
    client = dict(zip(("light", "core"), clients))[which]
    namespace = "kube-http-writes-" + which
    local_env.kubectl("create", "namespace", namespace, check=False)
    try:
        configmaps = client.resource("v1", "ConfigMap")
        desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "w", "namespace": namespace},
                   "data": {"a": "1"}}
        dry = client.apply(configmaps, desired, "writer", True, True)
        assert dry["data"] == {"a": "1"} and client.get(configmaps, "w", namespace) is None
        made = client.apply(configmaps, desired, "writer")
        assert [m["manager"] for m in made["metadata"]["managedFields"]] == ["writer"]
        operations = [{"op": "test", "path": "/data/a", "value": "1"}, {"op": "replace", "path": "/data/a", "value": "2"}]
        patched = client.json_patch(configmaps, "w", namespace, operations)
        assert patched["data"] == {"a": "2"} == kubectl_json(local_env, "-n", namespace, "get", "cm", "w")["data"]
        with pytest.raises(KubeApiError) as raised:  # a failed test operation changes nothing
            client.json_patch(configmaps, "w", namespace, [{"op": "test", "path": "/data/a", "value": "1"}])
        assert raised.value.status == 422
        assert client.delete(configmaps, "w", namespace) is not None
        assert client.delete(configmaps, "w", namespace) is None  # already gone
        with pytest.raises(KubeApiError) as raised:
            client.apply(configmaps, dict(desired, metadata={"name": "x", "namespace": "no-such-namespace"}), "writer")
        assert raised.value.status == 404
    finally:
        local_env.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_applyset_id_is_kubectls(local_env):
    """The ApplySet parent's id label is the one kubectl computes for the same parent (KEP 3659)."""
    from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._k8s_converge import applyset_id
    namespace = "kube-http-applyset"
    local_env.kubectl("create", "namespace", namespace, check=False)
    try:
        proc = subprocess.run([f"{local_env.bin_dir}/kubectl", "apply", "-n", namespace, "--server-side", "--prune",
                               "--applyset=configmap/my-set", "-f", "-"], capture_output=True, text=True, check=True,
                              input=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}}),
                              env=dict(local_env.env, KUBECTL_APPLYSET="true"))
        assert "serverside-applied" in proc.stdout
        parent = kubectl_json(local_env, "-n", namespace, "get", "configmap", "my-set")
        assert parent["metadata"]["labels"]["applyset.kubernetes.io/id"] == applyset_id("my-set", namespace)
    finally:
        local_env.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
