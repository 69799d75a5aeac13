# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_kube_http.py: which connection a kubeconfig or the K8S_AUTH_* settings
# give, and which settings make the caller fall back to the kubernetes client. The reads themselves run against
# the local API server in tests/integration/test_kube_http.py.
from __future__ import annotations

import base64
import json
import os
import socket
import stat

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
    return str(path)


def test_client_certificate_files_are_relative_to_the_kubeconfig(tmp_path):
    path = kubeconfig(tmp_path, {"client-certificate": "pki/admin.crt", "client-key": "/abs/admin.key"})
    conn = resolve_connection(kubeconfig=path)
    assert conn.server == "https://127.0.0.1:6443"
    assert conn.ca_file == str(tmp_path / "pki" / "ca.crt")
    assert conn.cert_file == str(tmp_path / "pki" / "admin.crt") and conn.key_file == "/abs/admin.key"
    assert conn.verify and conn.token is None


def test_inline_data_token_and_context(tmp_path):
    path = kubeconfig(tmp_path, {"token": "abc", "client-certificate-data": base64.b64encode(b"CERT").decode(),
                                 "client-key-data": base64.b64encode(b"KEY").decode()})
    conn = resolve_connection(kubeconfig=path, context="other")
    assert conn.server == "https://10.0.0.1" and not conn.verify
    assert conn.token == "abc" and conn.cert_data == b"CERT" and conn.key_data == b"KEY"


def test_token_file(tmp_path):
    (tmp_path / "token").write_text("from-file\n")
    conn = resolve_connection(kubeconfig=kubeconfig(tmp_path, {"tokenFile": "token"}))
    assert conn.token == "from-file"


def test_exec_credential_plugin_gives_the_token(tmp_path):
    plugin = tmp_path / "auth-plugin"
    plugin.write_text("#!/bin/sh\n"
                      "test \"$1\" = --flag || exit 3\n"
                      "test \"$EXTRA\" = yes || exit 4\n"
                      "echo '{\"apiVersion\": \"client.authentication.k8s.io/v1\", \"kind\": \"ExecCredential\","
                      " \"status\": {\"token\": \"ya29.exec\"}}'\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin), "args": ["--flag"],
                     "env": [{"name": "EXTRA", "value": "yes"}], "interactiveMode": "IfAvailable"}}
    assert resolve_connection(kubeconfig=kubeconfig(tmp_path, user)).token == "ya29.exec"


def test_a_failing_exec_plugin_falls_back(tmp_path):
    user = {"exec": {"command": "/bin/false"}}
    with pytest.raises(UnsupportedConnection):
        resolve_connection(kubeconfig=kubeconfig(tmp_path, user))


@pytest.mark.parametrize("user, cluster", [
    ({"auth-provider": {"name": "gcp"}}, None),
    ({"username": "admin", "password": "secret"}, None),
    ({"as": "someone-else"}, None),
    ({}, {"server": "https://x", "proxy-url": "http://proxy:3128"}),
    ({}, {"server": "https://x", "tls-server-name": "kubernetes"}),
])
def test_settings_it_does_not_implement_fall_back(tmp_path, user, cluster):
    with pytest.raises(UnsupportedConnection):
        resolve_connection(kubeconfig=kubeconfig(tmp_path, user, cluster))


def test_environment_settings_as_kubernetes_core(tmp_path, monkeypatch):
    path = kubeconfig(tmp_path, {"token": "from-kubeconfig"})
    monkeypatch.setenv("K8S_AUTH_KUBECONFIG", path)
    monkeypatch.setenv("K8S_AUTH_API_KEY", "from-env")
    monkeypatch.setenv("K8S_AUTH_VERIFY_SSL", "no")
    conn = resolve_connection()
    assert conn.token == "from-env" and not conn.verify
    monkeypatch.setenv("K8S_AUTH_HOST", "https://api.example.com:443")
    conn = resolve_connection(ca_cert="/ca.pem")
    assert conn.server == "https://api.example.com:443" and conn.ca_file == "/ca.pem"
    monkeypatch.setenv("K8S_AUTH_PROXY", "http://proxy:3128")
    with pytest.raises(UnsupportedConnection):
        resolve_connection()


def test_kubeconfig_variable_with_several_files_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([kubeconfig(tmp_path, {}), kubeconfig(tmp_path, {}, name="b")]))
    with pytest.raises(UnsupportedConnection):
        resolve_connection()
    with pytest.raises(UnsupportedConnection):
        resolve_connection(kubeconfig={"apiVersion": "v1"})


def test_no_kubeconfig_and_not_in_a_cluster_falls_back(tmp_path):
    with pytest.raises(UnsupportedConnection):
        resolve_connection(kubeconfig=str(tmp_path / "missing"))


def test_exec_credential_with_a_client_certificate(tmp_path):
    plugin = tmp_path / "cert-plugin"
    status = {"status": {"clientCertificateData": "CERT PEM", "clientKeyData": "KEY PEM"}}
    plugin.write_text("#!/bin/sh\necho '%s'\n" % json.dumps(status))
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    conn = resolve_connection(kubeconfig=kubeconfig(tmp_path, {"exec": {"command": str(plugin)}}))
    assert conn.token is None and conn.cert_data == b"CERT PEM" and conn.key_data == b"KEY PEM"


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
