# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_kube_http.py: settings that make the caller fall back to kubernetes.core's
# client, and an unreachable server. Which connection each setting gives is compared with kubernetes.core's own
# resolution in test_kube_connection.py; the requests run against the local API server in
# tests/integration/test_kube_http.py.
from __future__ import annotations

import os
import socket

import pytest
import yaml

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._kube_http import (
    KubeClient,
    KubeConnectionError,
    UnsupportedConnection,
    resolve_connection,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("K8S_AUTH_") or name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST"):
            monkeypatch.delenv(name)


def kubeconfig(tmp_path, user, cluster=None, name="config"):
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "main",
        "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u"}},
                     {"name": "other", "context": {"cluster": "c2", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": cluster or {"server": "https://127.0.0.1:6443",
                                                          "certificate-authority": "pki/ca.crt"}},
                     {"name": "c2", "cluster": {"server": "https://10.0.0.1", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": user}],
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    (tmp_path / "pki").mkdir(exist_ok=True)
    (tmp_path / "pki" / "ca.crt").write_text("CA")
    return str(path)


def test_a_failing_exec_plugin_falls_back(tmp_path):
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/false"}}
    with pytest.raises(UnsupportedConnection):
        resolve_connection(kubeconfig=kubeconfig(tmp_path, user))


@pytest.mark.parametrize("user, cluster", [
    ({"auth-provider": {"name": "gcp"}}, None),
    ({"username": "admin", "password": "secret"}, None),
    ({}, {"server": "https://x", "proxy-url": "http://proxy:3128"}),
    ({}, {"server": "https://x", "tls-server-name": "kubernetes"}),
])
def test_settings_it_does_not_implement_fall_back(tmp_path, user, cluster):
    with pytest.raises(UnsupportedConnection):
        resolve_connection(kubeconfig=kubeconfig(tmp_path, user, cluster))


def test_no_kubeconfig_and_not_in_a_cluster_falls_back(tmp_path):
    with pytest.raises(UnsupportedConnection):
        resolve_connection(kubeconfig=str(tmp_path / "missing"))


def test_an_unreachable_server_is_named(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = kubeconfig(tmp_path, {"token": "t"}, {"server": "https://127.0.0.1:%d" % port,
                                                 "insecure-skip-tls-verify": True})
    client = KubeClient(resolve_connection(kubeconfig=path))
    with pytest.raises(KubeConnectionError) as raised:
        client.resource("v1", "Namespace")
    assert "cannot reach the API server https://127.0.0.1:%d" % port in str(raised.value)
