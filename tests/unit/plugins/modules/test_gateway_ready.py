# -*- coding: utf-8 -*-
# Unit tests for the gateway_ready module (its wait and HTTP probes live in plugins/module_utils/_gateway_wait.py),
# against a tiny http.server on 127.0.0.1 that behaves like a GKE load balancer still propagating routes.
from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _gateway_wait as gr
from ansible_collections.gke_ai.inference_gateway.plugins.modules import gateway_ready


class FakeLB(object):
    """Answers ``404 fault filter abort`` for the first ``abort_first`` requests, then routes by Host."""

    def __init__(self, abort_first=0, tls_context=None):
        self.abort_first = abort_first
        self.requests = []
        self.sni = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"method": self.command, "path": self.path,
                                       "host": self.headers.get("Host"), "body": body,
                                       "content_type": self.headers.get("Content-Type"),
                                       "headers": dict(self.headers)})
                if len(outer.requests) <= outer.abort_first:
                    self._reply(404, b"fault filter abort", {"Content-Type": "text/plain"})
                    return
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
                if host != "bbr.example.com" or self.path != "/v1/completions":
                    self._reply(404, b"default backend - 404", {})
                    return
                model = json.loads(body or b"{}").get("model", "")
                selected = "bbr-gemma3-1b" if model.endswith("1b-it") else "bbr-gemma3-4b"
                self._reply(200, b'{"object": "text_completion", "model": "%s"}' % model.encode(),
                            {"Content-Type": "application/json", "x-infgw-selected": selected})

            def _reply(self, code, body, headers):
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls_context is not None:
            def remember(sock, name, ctx):
                outer.sni.append(name)
            tls_context.sni_callback = remember
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


BBR_PROBE = {
    "name": "bbr-1b",
    "host": "bbr.example.com",
    "path": "/v1/completions",
    "method": "POST",
    "body": {"model": "google/gemma-3-1b-it", "prompt": "Why is the sky blue?", "max_tokens": 5},
    "status_code": [200],
    "response_headers": {"x-infgw-selected": "bbr-gemma3-1b"},
}


def test_probe_sends_host_header_and_json_body():
    with FakeLB() as lb:
        res = gr.run_probe(dict(BBR_PROBE, port=lb.port), "127.0.0.1")
    assert res["ok"], res
    assert res["status"] == 200
    assert res["headers"]["x-infgw-selected"] == "bbr-gemma3-1b"
    (req,) = lb.requests
    assert req["method"] == "POST"
    assert req["path"] == "/v1/completions"
    # non-default port: Host carries it, like curl --resolve bbr.example.com:PORT:127.0.0.1
    assert req["host"] == "bbr.example.com:%d" % lb.port
    assert json.loads(req["body"]) == BBR_PROBE["body"]
    assert req["content_type"] == "application/json"
    assert res["url"] == "http://bbr.example.com:%d/v1/completions" % lb.port
    assert res["connect"] == "127.0.0.1:%d" % lb.port


def test_probe_connect_port_override_keeps_host_header():
    # probe_address 127.0.0.1:<port>: connect there, but the URL/Host stay bbr.example.com:80 -> "bbr.example.com"
    with FakeLB() as lb:
        res = gr.run_probe(dict(BBR_PROBE), "127.0.0.1", connect_port=lb.port)
    assert res["ok"], res
    assert lb.requests[0]["host"] == "bbr.example.com"
    assert res["url"] == "http://bbr.example.com/v1/completions"


def test_probe_string_body_and_custom_headers():
    probe = dict(BBR_PROBE, port=None, body='{"model": "google/gemma-3-4b-it"}',
                 headers={"Content-Type": "application/json", "X-Gateway-Model-Name": "google/gemma-3-4b-it"},
                 response_headers={"x-infgw-selected": "bbr-gemma3-4b"}, response_contains="text_completion")
    with FakeLB() as lb:
        res = gr.run_probe(probe, "127.0.0.1", connect_port=lb.port)
    assert res["ok"], res
    assert lb.requests[0]["body"] == b'{"model": "google/gemma-3-4b-it"}'
    assert lb.requests[0]["headers"]["X-Gateway-Model-Name"] == "google/gemma-3-4b-it"


def test_probe_reports_status_header_and_body_mismatch():
    with FakeLB(abort_first=1) as lb:
        aborted = gr.run_probe(dict(BBR_PROBE, port=lb.port), "127.0.0.1")
        wrong_model = gr.run_probe(dict(BBR_PROBE, port=lb.port, body={"model": "google/gemma-3-4b-it"}), "127.0.0.1")
        missing_text = gr.run_probe(dict(BBR_PROBE, port=lb.port, response_headers={}, response_contains="nope"),
                                    "127.0.0.1")
    assert not aborted["ok"]
    assert aborted["status"] == 404
    assert aborted["error"] == "status 404, expected 200; header x-infgw-selected missing, expected 'bbr-gemma3-1b'; body: fault filter abort"
    assert wrong_model["error"].startswith("header x-infgw-selected is 'bbr-gemma3-4b', expected 'bbr-gemma3-1b'")
    assert missing_text["error"].startswith("body does not contain 'nope'")


def test_probe_connection_refused():
    with FakeLB() as lb:
        port = lb.port
    res = gr.run_probe(dict(BBR_PROBE, port=port, request_timeout=2), "127.0.0.1")
    assert not res["ok"] and res["status"] is None
    assert "ConnectionRefusedError" in res["error"]


def test_probe_set_retries_until_success():
    """Rides out 'fault filter abort' during propagation: 3 aborts, then success."""
    with FakeLB(abort_first=3) as lb:
        ps = gr.ProbeSet([dict(BBR_PROBE, port=lb.port)], interval=0.05, success_threshold=1)
        deadline = time.monotonic() + 10
        log = []
        while not ps.ready and time.monotonic() < deadline:
            if ps.due():
                log.extend(ps.run("127.0.0.1", deadline=deadline))
            time.sleep(ps.seconds_until_due())
    assert ps.ready
    (res,) = ps.results()
    assert res["attempts"] == 4 and res["ok"] and res["status"] == 200
    assert res["seconds"] is not None
    assert len(lb.requests) == 4
    # the abort is logged once (same error repeated is not re-logged), then the pass
    assert [entry[0] for entry in log] == ["bbr-1b", "bbr-1b"]
    assert log[0][1].startswith("attempt 1: status 404, expected 200")
    assert log[1][1] == "passed after 4 attempt(s): HTTP 200"
    assert ps.gate().ready


def test_probe_set_success_threshold_and_gate_blocker():
    with FakeLB(abort_first=1) as lb:
        ps = gr.ProbeSet([dict(BBR_PROBE, port=lb.port)], interval=0.01, success_threshold=2)
        ps.run("127.0.0.1")
        gate = ps.gate()
        assert not gate.ready
        assert str(gate.blockers[0]) == (
            "Probe bbr-1b: POST http://bbr.example.com:%d/v1/completions via 127.0.0.1:%d after 1 attempt(s): "
            "status 404, expected 200; header x-infgw-selected missing, expected 'bbr-gemma3-1b'; "
            "body: fault filter abort" % (lb.port, lb.port))
        ps.run("127.0.0.1")
        assert not ps.ready  # one success, two needed
        ps.run("127.0.0.1")
        assert ps.ready
        assert ps.results()[0]["attempts"] == 3


def test_probe_set_check_mode_runs_only_safe_methods():
    with FakeLB() as lb:
        ps = gr.ProbeSet([dict(BBR_PROBE, port=lb.port), {"name": "models", "path": "/v1/models", "port": lb.port,
                                                          "status_code": [404]}])
        changes = ps.run("127.0.0.1", only_safe=True)
    assert [r["method"] for r in lb.requests] == ["GET"]
    res = ps.results()
    assert res[0]["skipped"] and res[0]["attempts"] == 0
    assert res[1]["ok"]
    assert ("bbr-1b", "skipped in check mode (POST is not read-only)") in changes
    gate = ps.gate()
    assert gate.ready and gate.notes == ["probe bbr-1b skipped in check mode"]


def test_probe_gate_before_first_attempt():
    ps = gr.ProbeSet([{"host": "api.example.com", "path": "/v1/models"}])
    (b,) = ps.gate("the status gates").blockers
    assert str(b) == "Probe GET http://api.example.com/v1/models: not sent yet (waiting for the status gates)"
    assert not gr.ProbeSet([]).gate().applicable


def test_https_probe_sends_sni_like_curl_resolve(self_signed_cert):
    cert, key = self_signed_cert("bbr.example.com")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with FakeLB(tls_context=ctx) as lb:
        insecure = gr.run_probe(dict(BBR_PROBE, scheme="https", port=lb.port, validate_certs=False), "127.0.0.1")
        strict = gr.run_probe(dict(BBR_PROBE, scheme="https", port=lb.port, validate_certs=True,
                                   request_timeout=3), "127.0.0.1")
    assert insecure["ok"], insecure
    assert lb.sni[0] == "bbr.example.com"
    assert lb.requests[0]["host"] == "bbr.example.com:%d" % lb.port
    assert not strict["ok"] and "CERTIFICATE_VERIFY_FAILED" in strict["error"]


@pytest.mark.parametrize("value,expected", [
    (None, (None, None)),
    ("127.0.0.2", ("127.0.0.2", None)),
    ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    ("[::1]:8443", ("::1", 8443)),
    ("::1", ("::1", None)),
    ("gw.internal", ("gw.internal", None)),
])
def test_parse_address(value, expected):
    assert gr.parse_address(value) == expected


def test_argument_spec_matches_documentation():
    """Every option in the argument spec is documented with the same type and default (sanity's job too)."""
    import yaml

    doc = yaml.safe_load(gateway_ready.DOCUMENTATION)["options"]
    for name, spec in gr.MODULE_ARG_SPEC.items():
        assert name in doc, name
        assert doc[name]["type"] == spec["type"], name
        assert doc[name].get("default") == spec.get("default"), name
    for name, spec in gr.PROBE_SPEC.items():
        sub = doc["probes"]["suboptions"][name]
        assert sub["type"] == spec["type"], name
        assert sub.get("default") == spec.get("default"), name


# --------------------------------------------------------------------------- orchestration on a fake API


class FakeApi(object):
    """A tiny in-memory API server: list with resourceVersion, watch from a resourceVersion, 410 on demand."""

    def __init__(self):
        self.cv = threading.Condition()
        self.rv = 100
        self.objects = {}  # (group_version, kind) -> {(ns, name): obj}
        self.log = []  # (rv, gvk, type, obj)
        self.gone_once = set()  # gvks whose next watch answers 410 Gone
        self.forbid_watch = set()  # gvks that can be listed but not watched (RBAC without "watch")
        self.watch_calls = 0
        self.list_calls = 0

    def put(self, obj, etype=None):
        gvk = (obj["apiVersion"], obj["kind"])
        key = (obj["metadata"].get("namespace"), obj["metadata"]["name"])
        with self.cv:
            self.rv += 1
            obj = json.loads(json.dumps(obj))
            obj["metadata"]["resourceVersion"] = str(self.rv)
            etype = etype or ("MODIFIED" if key in self.objects.setdefault(gvk, {}) else "ADDED")
            self.objects[gvk][key] = obj
            self.log.append((self.rv, gvk, etype, obj))
            self.cv.notify_all()


class FakeResource(object):
    def __init__(self, api, group_version, kind):
        self.api = api
        self.group_version = group_version
        self.kind = kind
        self.namespaced = True
        self.preferred = True
        self.verbs = ["get", "list", "watch"]

    def _match(self, key, namespace, field_selector):
        ns, name = key
        if namespace and ns != namespace:
            return False
        if field_selector and field_selector != "metadata.name=%s" % name:
            return False
        return True

    def get(self, namespace=None, field_selector=None, **_kw):
        with self.api.cv:
            self.api.list_calls += 1
            items = [o for k, o in self.api.objects.get((self.group_version, self.kind), {}).items()
                     if self._match(k, namespace, field_selector)]
            data = {"metadata": {"resourceVersion": str(self.api.rv)}, "items": json.loads(json.dumps(items))}

        return FakeList(data)


class FakeList(object):
    def __init__(self, data):
        self.data = data

    def to_dict(self):
        return self.data


class FakeResources(object):
    def __init__(self, served):
        self.served = served

    def search(self, kind=None, group=None, api_version=None):
        return [r for r in self.served if r.kind == kind and r.group_version.split("/")[0] == group]


class FakeDynClient(object):
    def __init__(self, api, served):
        self.api = api
        self.resources = FakeResources(served)

    def watch(self, resource, namespace=None, field_selector=None, resource_version=None, timeout=None,
              watcher=None, allow_watch_bookmarks=None):
        api = self.api
        gvk = (resource.group_version, resource.kind)
        with api.cv:
            api.watch_calls += 1
            if gvk in api.forbid_watch:
                raise gr_api_exception(403)
            if gvk in api.gone_once:
                api.gone_once.discard(gvk)
                raise gr_api_exception(410)
        since = int(resource_version)
        end = time.monotonic() + (timeout or 60)
        while time.monotonic() < end and not getattr(watcher, "_stop", False):
            with api.cv:
                batch = [e for e in api.log if e[0] > since and e[1] == gvk
                         and resource._match((e[3]["metadata"].get("namespace"), e[3]["metadata"]["name"]),
                                             namespace, field_selector)]
                if not batch:
                    api.cv.wait(0.05)
                    continue
            for rv, _gvk, etype, obj in batch:
                since = rv
                yield {"type": etype, "raw_object": obj, "object": obj}


def gr_api_exception(status):
    from kubernetes.client.exceptions import ApiException
    return ApiException(status=status, reason="Gone")


class FakeModule(object):
    def __init__(self):
        self.logged = []

    def log(self, msg):
        self.logged.append(msg)


GWV = "gateway.networking.k8s.io/v1"


def _gateway(programmed=False, generation=1):
    conds = [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "", "observedGeneration": generation,
              "lastTransitionTime": "2026-11-26T10:00:00Z"}]
    status = {"conditions": conds}
    if programmed:
        conds.append({"type": "Programmed", "status": "True", "reason": "Programmed", "message": "",
                      "observedGeneration": generation, "lastTransitionTime": "2026-11-26T10:00:02Z"})
        status["addresses"] = [{"type": "IPAddress", "value": "127.0.0.1"}]
    else:
        conds.append({"type": "Programmed", "status": "Unknown", "reason": "Pending", "message": "Waiting for controller",
                      "observedGeneration": generation, "lastTransitionTime": "2026-11-26T10:00:00Z"})
    return {"apiVersion": GWV, "kind": "Gateway",
            "metadata": {"name": "vllm-xlb", "namespace": "gemma", "generation": generation},
            "spec": {"gatewayClassName": "gke-l7-regional-external-managed"}, "status": status}


def _route(resolved=True):
    rr = {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": "", "observedGeneration": 1}
    if not resolved:
        rr = {"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound",
              "message": 'service "vllm-gemma-3-9b" not found', "observedGeneration": 1}
    return {"apiVersion": GWV, "kind": "HTTPRoute",
            "metadata": {"name": "bbr-gemma3-1b", "namespace": "gemma", "generation": 1},
            "spec": {"parentRefs": [{"name": "vllm-xlb"}], "rules": [{"backendRefs": [{"name": "vllm-gemma-3-1b", "port": 8000}]}]},
            "status": {"parents": [{"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "vllm-xlb"},
                                    "controllerName": "networking.gke.io/gateway",
                                    "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                                                    "message": "", "observedGeneration": 1}, rr]}]}}


def _params(**over):
    p = dict(name="vllm-xlb", namespace="gemma", routes=None, route_namespaces=None, check_inference_pools=True,
             check_policies=True, policy_kinds=["HealthCheckPolicy"], timeout=10, probes=[], probe_address=None,
             probe_interval=0.05, probe_success_threshold=1, log_path=None)
    p.update(over)
    return p


@pytest.fixture
def fake_cluster():
    api = FakeApi()
    served = [FakeResource(api, GWV, "Gateway"), FakeResource(api, GWV, "HTTPRoute"),
              FakeResource(api, "networking.gke.io/v1", "HealthCheckPolicy")]  # no InferencePool CRD at all
    return api, FakeDynClient(api, served)


def test_waits_on_watch_events_and_times_each_gate(fake_cluster, tmp_path):
    api, client = fake_cluster
    api.put(_gateway(programmed=False))
    api.put(_route())
    api.gone_once.add((GWV, "Gateway"))  # first watch: 410 Gone -> the waiter re-lists

    def program():
        time.sleep(0.4)
        api.put(_gateway(programmed=True))
    threading.Thread(target=program, daemon=True).start()

    module = FakeModule()
    log_path = tmp_path / "progress.log"
    runner = gr.GatewayReadiness(module, client, _params(log_path=str(log_path)), False, time.monotonic())
    started = time.monotonic()
    result = runner.run()
    took = time.monotonic() - started
    assert result["ready"], result["blockers"]
    assert 0.3 < took < 3, took
    gates = result["gates"]
    assert gates["gateway_accepted"]["state"] == "passed" and gates["gateway_accepted"]["seconds"] < 0.3
    assert gates["gateway_programmed"]["state"] == "passed" and 0.3 < gates["gateway_programmed"]["seconds"] < 3
    assert gates["routes"]["state"] == "passed"
    assert gates["inference_pools"]["state"] == "not_applicable"
    assert gates["policies"]["state"] == "not_applicable"
    assert result["address"] == "127.0.0.1"
    assert result["api_versions"]["inference_pools"] == []
    assert result["gateway"]["conditions"]["Programmed"]["lastTransitionTime"] == "2026-11-26T10:00:02Z"
    assert any("waiting on gateway_programmed: Gateway gemma/vllm-xlb: Programmed=Unknown Pending" in l
               for l in result["wait_log"])
    assert any("gate gateway_programmed passed" in l for l in result["wait_log"])
    assert api.list_calls >= 3  # gateway, routes, + the re-list after 410
    assert log_path.read_text().count("\n") == len(result["wait_log"])
    assert module.logged and module.logged[0].startswith("gateway_ready gemma/vllm-xlb +")


def test_ready_at_the_first_look_opens_no_watch(fake_cluster):
    """A converged stack: the lists show every gate passed, so no watch (and no thread to stop) is opened."""
    api, client = fake_cluster
    api.put(_gateway(programmed=True))
    api.put(_route())
    runner = gr.GatewayReadiness(FakeModule(), client, _params(), False, time.monotonic())
    started = time.monotonic()
    result = runner.run()
    assert result["ready"], result["blockers"]
    assert time.monotonic() - started < 0.5
    assert api.watch_calls == 0 and api.list_calls == 3  # gateway, routes, health check policies
    assert all(scope.thread is None for scope in runner.watches._scopes.values())


def test_timeout_names_the_blocking_route(fake_cluster):
    api, client = fake_cluster
    api.put(_gateway(programmed=True))
    api.put(_route(resolved=False))
    runner = gr.GatewayReadiness(FakeModule(), client, _params(timeout=1), False, time.monotonic())
    started = time.monotonic()
    result = runner.run()
    assert 0.9 < time.monotonic() - started < 3
    assert not result["ready"]
    assert result["blockers"] == [
        'HTTPRoute gemma/bbr-gemma3-1b parent vllm-xlb: ResolvedRefs=False BackendNotFound: '
        'service "vllm-gemma-3-9b" not found']
    assert result["gates"]["routes"]["state"] == "blocked" and result["gates"]["routes"]["seconds"] is None


def test_check_mode_is_a_snapshot(fake_cluster):
    api, client = fake_cluster
    api.put(_gateway(programmed=False))
    runner = gr.GatewayReadiness(FakeModule(), client, _params(timeout=30), True, time.monotonic())
    started = time.monotonic()
    result = runner.run()
    assert time.monotonic() - started < 1
    assert api.watch_calls == 0
    assert not result["ready"]
    assert "Gateway gemma/vllm-xlb: Programmed=Unknown Pending: Waiting for controller" in result["blockers"]
    assert result["gates"]["routes"]["state"] == "not_applicable"


def test_probes_run_after_status_gates(fake_cluster):
    api, client = fake_cluster
    api.put(_gateway(programmed=True))
    api.put(_route())
    with FakeLB(abort_first=2) as lb:
        params = _params(probes=[dict(BBR_PROBE, port=lb.port)], timeout=10)
        result = gr.GatewayReadiness(FakeModule(), client, params, False, time.monotonic()).run()
    assert result["ready"], result["blockers"]
    assert result["probes"][0]["attempts"] == 3
    assert result["gates"]["probes"]["state"] == "passed"
    assert any("probe bbr-1b: attempt 1: status 404" in l for l in result["wait_log"])


def test_missing_gateway_api_is_fatal():
    api = FakeApi()
    runner = gr.GatewayReadiness(FakeModule(), FakeDynClient(api, []), _params(), False, time.monotonic())
    with pytest.raises(gr.GatewayWaitError, match="Gateway API .* is not served"):
        runner.run()


def test_routes_in_all_namespaces_and_explicit_routes(fake_cluster):
    api, client = fake_cluster
    api.put(_gateway(programmed=True))
    api.put(_route())
    other = _route()
    other["metadata"].update(name="team-b-route", namespace="team-b")
    other["spec"]["parentRefs"] = [{"name": "vllm-xlb", "namespace": "gemma"}]
    other["status"]["parents"][0]["parentRef"]["namespace"] = "gemma"
    api.put(other)
    result = gr.GatewayReadiness(FakeModule(), client, _params(route_namespaces=["*"]), True, time.monotonic()).run()
    found = [(r["namespace"], r["name"]) for r in result["routes"]]
    assert found == [("gemma", "bbr-gemma3-1b"), ("team-b", "team-b-route")]
    assert result["ready"]
    # default: only the Gateway's namespace
    result = gr.GatewayReadiness(FakeModule(), client, _params(), True, time.monotonic()).run()
    assert [r["name"] for r in result["routes"]] == ["bbr-gemma3-1b"]
    # explicit list, one of which does not exist
    result = gr.GatewayReadiness(FakeModule(), client, _params(routes=["team-b/team-b-route", "nope"]), True,
                                 time.monotonic()).run()
    assert result["blockers"] == ["HTTPRoute gemma/nope: not found"]


def test_watch_forbidden_degrades_to_relisting(fake_cluster):
    api, client = fake_cluster
    api.put(_gateway(programmed=False))
    api.forbid_watch.add((GWV, "Gateway"))

    def program():
        time.sleep(0.3)
        api.put(_gateway(programmed=True))
    threading.Thread(target=program, daemon=True).start()
    result = gr.GatewayReadiness(FakeModule(), client, _params(timeout=10), False, time.monotonic()).run()
    assert result["ready"], result["blockers"]
    assert result["elapsed"] < 5
    assert any("watch Gateway/vllm-xlb" in line and "HTTP 403" in line for line in result["wait_log"])
