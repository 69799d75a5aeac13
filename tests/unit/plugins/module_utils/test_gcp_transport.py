# -*- coding: utf-8 -*-
# Unit tests for the transport of plugins/module_utils/_gcp.py: HttpSession (http.client, keep-alive, TLS against
# the certificates requests would use) against a local HTTP(S) server, its errors as the retry policy sees them,
# and which transport GcpClient picks (HttpSession for a bearer token, requests behind a proxy or with google-auth).
from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _gcp
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    GcpClient,
    GcpError,
    HttpConnectionError,
    HttpReadTimeout,
    HttpSession,
    RetryPolicy,
)


class FakeGoogle(object):
    """A local HTTP/1.1 server that answers like a Google API: JSON, keep-alive, a Retry-After on 429."""

    def __init__(self, tls_context=None, delay=0.0):
        self.requests = []
        self.connections = set()
        self.delay = delay
        self.answers = []  # (status, body dict, headers) to give, in order; then 200 {"ok": true}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.connections.add(self.client_address)
                outer.requests.append({"method": self.command, "path": self.path, "body": body,
                                       "headers": dict(self.headers), "client": self.client_address})
                if outer.delay:
                    time.sleep(outer.delay)
                status, answer, headers = outer.answers.pop(0) if outer.answers else (200, {"ok": True}, {})
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path, scheme="http", host="127.0.0.1"):
        return "%s://%s:%d%s" % (scheme, host, self.port, path)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------
# HttpSession


def test_requests_share_one_keep_alive_connection():
    with FakeGoogle() as api:
        api.answers = [(404, {"error": {"code": 404, "status": "NOT_FOUND", "message": "nope"}}, {}),
                       (429, {"error": {"code": 429}}, {"Retry-After": "7"})]
        session = HttpSession()
        first = session.request("GET", api.url("/compute/v1/x?a=1"), params={"requestId": "r 1", "none": None},
                                headers={"authorization": "Bearer t"}, timeout=5)
        second = session.request("POST", api.url("/compute/v1/x"), data=json.dumps({"k": "é"}),
                                 headers={"Content-Type": "application/json"}, timeout=5)
        third = session.request("GET", api.url("/compute/v1/y"), timeout=5)
    assert first.status_code == 404 and first.json()["error"]["status"] == "NOT_FOUND"
    assert "nope" in first.text
    assert second.status_code == 429 and second.headers.get("retry-after") == "7"
    assert third.status_code == 200 and third.json() == {"ok": True} and third.content
    assert api.requests[0]["path"] == "/compute/v1/x?a=1&requestId=r+1"
    assert api.requests[0]["headers"]["authorization"] == "Bearer t"
    assert json.loads(api.requests[1]["body"]) == {"k": "é"}
    assert len(api.connections) == 1  # one connection for the three


def test_a_connection_the_server_closed_is_opened_again():
    with FakeGoogle() as api:
        session = HttpSession()
        assert session.request("GET", api.url("/a"), timeout=5).status_code == 200
        conn = list(session._connections.values())[0]
        conn.sock.shutdown(socket.SHUT_RDWR)  # as if the server had closed the idle connection
        assert session.request("GET", api.url("/b"), timeout=5).status_code == 200
    assert len(api.connections) == 2


def test_refused_connection_and_read_timeout_are_the_errors_the_retry_policy_knows():
    session = HttpSession()
    with pytest.raises(HttpConnectionError) as e:
        session.request("GET", "http://127.0.0.1:%d/x" % _free_port(), timeout=5)
    assert "ConnectionRefusedError" in str(e.value)
    with FakeGoogle(delay=1.0) as api:
        with pytest.raises(HttpReadTimeout):
            session.request("GET", api.url("/slow"), timeout=0.2)
    policy = RetryPolicy(max_retries=3)
    assert policy.should_retry_exception(HttpConnectionError("x"), "POST", 0)
    assert policy.should_retry_exception(HttpReadTimeout("x"), "GET", 0)
    assert not policy.should_retry_exception(HttpReadTimeout("x"), "POST", 0)


def test_gcp_client_retries_and_reports_on_http_session():
    sleeps = []
    creds, _project = _gcp.credentials_from_params({"auth_kind": "accesstoken", "access_token": "ya29.t"})
    with FakeGoogle() as api:
        api.answers = [(503, {"error": {"code": 503, "status": "UNAVAILABLE", "message": "later"}}, {}),
                       (200, {"name": "gpupool"}, {})]
        client = GcpClient(creds, endpoint=api.url("/{service}/"), sleep=sleeps.append, rng=lambda: 0.5)
        assert isinstance(client.session, HttpSession)
        assert client.request("GET", "container", "v1/projects/p/pools/gpupool") == {"name": "gpupool"}
        api.answers = [(403, {"error": {"code": 403, "status": "PERMISSION_DENIED",
                                        "message": "Permission 'container.nodePools.get' denied"}}, {})]
        with pytest.raises(GcpError) as e:
            client.request("GET", "container", "v1/projects/p/pools/gpupool", action="read node pool gpupool")
    assert sleeps == [0.75]
    assert [r["path"] for r in api.requests] == ["/container/v1/projects/p/pools/gpupool"] * 3
    assert all(r["headers"]["authorization"] == "Bearer ya29.t" for r in api.requests)
    assert e.value.http_status == 403 and e.value.permission == "container.nodePools.get"
    client = GcpClient(creds, endpoint="http://127.0.0.1:%d/{service}/" % _free_port(), sleep=sleeps.append,
                       retry=RetryPolicy(max_retries=1))
    with pytest.raises(GcpError) as e:
        client.request("POST", "container", "v1/x", body={}, action="create node pool gpupool")
    assert e.value.kind == "connection" and "HttpConnectionError" in e.value.msg and e.value.attempts == 2


def test_https_verifies_against_the_bundle_requests_would_use(tmp_path, monkeypatch, self_signed_cert):
    cert, key = self_signed_cert("localhost")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with FakeGoogle(tls_context=ctx) as api:
        url = api.url("/compute/v1/x", scheme="https", host="localhost")
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        with pytest.raises(HttpConnectionError) as e:  # certifi's bundle does not know this certificate
            HttpSession().request("GET", url, timeout=5)
        assert "CERTIFICATE_VERIFY_FAILED" in str(e.value)
        monkeypatch.setenv("CURL_CA_BUNDLE", cert)
        assert HttpSession().request("GET", url, timeout=5).json() == {"ok": True}
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))  # it wins over CURL_CA_BUNDLE
        with pytest.raises((HttpConnectionError, OSError)):
            HttpSession().request("GET", url, timeout=5)


def test_ca_locations_follow_requests():
    certifi = pytest.importorskip("certifi")
    assert _gcp.ca_locations({}) == (certifi.where(), None)
    assert _gcp.ca_locations({"CURL_CA_BUNDLE": "/x.pem"}) == ("/x.pem", None)
    assert _gcp.ca_locations({"CURL_CA_BUNDLE": "/x.pem", "REQUESTS_CA_BUNDLE": "/y.pem"}) == ("/y.pem", None)
    assert _gcp.ca_locations({"REQUESTS_CA_BUNDLE": "/"}) == (None, "/")


# --------------------------------------------------------------------------------------
# which transport


def test_transport_choice(monkeypatch):
    for name in list(_gcp.os.environ):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    token = _gcp.AccessTokenCredentials("ya29.t")
    assert isinstance(_gcp.default_session(token), HttpSession)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    requests = pytest.importorskip("requests")
    assert isinstance(_gcp.default_session(token), requests.Session)  # requests knows proxies
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("all_proxy", "")
    assert isinstance(_gcp.default_session(token), HttpSession)  # empty is unset
    assert isinstance(_gcp.default_session(object()), requests.Session)  # google-auth refreshes through requests
