# -*- coding: utf-8 -*-
# The standard-library client of k8s_apply_plan (plugins/module_utils/_kube_http.py) against the local API server,
# compared with kubectl and with kubernetes.core's client, which the lookup falls back to.
from __future__ import annotations

import json

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.lookup.k8s_apply_plan import CoreClient
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._kube_http import (
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
