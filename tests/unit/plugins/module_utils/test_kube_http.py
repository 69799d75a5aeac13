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


class _Answers(object):
    """An HTTP server on 127.0.0.1 answering each request with the next (status, headers, body) of ``answers``."""

    def __init__(self, answers):
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.answers, self.paths = list(answers), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                outer.paths.append(self.path)
                status, headers, body = outer.answers.pop(0)
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def client(self, tmp_path):
        path = kubeconfig(tmp_path, {"token": "t"}, {"server": "http://127.0.0.1:%d" % self.server.server_port})
        return KubeClient(resolve_connection(kubeconfig=path))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


INITIALIZING = {"kind": "Status", "status": "Failure", "message": "storage is (re)initializing",
                "reason": "TooManyRequests", "code": 429}


def test_an_answer_with_retry_after_is_retried_as_client_go_does(tmp_path):
    # a CRD just established: the API server answers 429 "storage is (re)initializing" with Retry-After: 1
    server = _Answers([(429, {"Retry-After": "0"}, INITIALIZING), (503, {"Retry-After": "0"}, INITIALIZING),
                       (200, {}, {"kind": "InferenceObjectiveList", "items": []})])
    try:
        listing = server.client(tmp_path).request("GET", "/apis/x/v1/namespaces/n/things")
    finally:
        server.close()
    assert listing["items"] == [] and len(server.paths) == 3


def test_an_error_without_retry_after_is_not_retried_and_retries_end(tmp_path):
    from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _kube_http

    server = _Answers([(503, {}, INITIALIZING)] + [(429, {"Retry-After": "0"}, INITIALIZING)] * 10)
    try:
        client = server.client(tmp_path)
        with pytest.raises(_kube_http.KubeApiError) as raised:
            client.request("GET", "/api/v1/pods")
        assert len(server.paths) == 1 and "storage is (re)initializing" in str(raised.value)
        with pytest.raises(_kube_http.KubeApiError):
            client.request("GET", "/api/v1/pods")
        assert len(server.paths) == 1 + _kube_http.RETRY_AFTER_ATTEMPTS
    finally:
        server.close()
