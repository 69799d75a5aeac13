# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_smoke.py and the filters over it (plugins/filter/smoke.py): which requests
# the data model gives, how answers are judged and reported, and requests on real sockets (curl --resolve, HTTPS
# with the probe's host as server name).
from __future__ import annotations

import http.server
import json
import ssl
import threading

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.filter.smoke import FilterModule
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _smoke

# infgw_models_resolved / infgw_gateway_resolved of the walkthrough's defaults (the fields the helpers read).
MODELS = [
    {"name": "gemma-3-1b", "short_name": "gemma3-1b", "model": "google/gemma-3-1b-it", "host": "1b.example.com",
     "default_backend": True, "bbr_route_name": "bbr-gemma3-1b", "infp_route_name": "infp-gemma3-1b"},
    {"name": "gemma-3-4b", "short_name": "gemma3-4b", "model": "google/gemma-3-4b-it", "host": "4b.example.com",
     "bbr_route_name": "bbr-gemma3-4b", "infp_route_name": "infp-gemma3-4b"},
    {"name": "llama-3-3b", "short_name": "llama3-3b", "model": "meta-llama/Llama-3.2-3B-Instruct",
     "host": "3b.example.com", "bbr_route_name": "bbr-llama3-3b", "infp_route_name": "infp-llama3-3b"},
]
GATEWAY = {"name": "vllm-xlb", "http": True, "https": True, "redirect_http_to_https": False,
           "host_route": "gemma-host-based-routing", "hosts": {"bbr": "bbr.example.com", "api": "api.example.com"}}


def test_one_request_per_route_of_the_walkthrough():
    probes = _smoke.route_probes(MODELS, GATEWAY)
    assert [(p["kind"], p["route"], p["host"], p["expected_model"]) for p in probes] == [
        ("host", "gemma-host-based-routing", "1b.example.com", "google/gemma-3-1b-it"),
        ("host", "gemma-host-based-routing", "4b.example.com", "google/gemma-3-4b-it"),
        ("host", "gemma-host-based-routing", "3b.example.com", "meta-llama/Llama-3.2-3B-Instruct"),
        ("bbr", "bbr-gemma3-1b", "bbr.example.com", "google/gemma-3-1b-it"),
        ("bbr", "bbr-gemma3-4b", "bbr.example.com", "google/gemma-3-4b-it"),
        ("bbr", "bbr-llama3-3b", "bbr.example.com", "meta-llama/Llama-3.2-3B-Instruct"),
        ("pool", "infp-gemma3-1b", "api.example.com", "google/gemma-3-1b-it"),
        ("pool", "infp-gemma3-4b", "api.example.com", "google/gemma-3-4b-it"),
        ("pool", "infp-llama3-3b", "api.example.com", "meta-llama/Llama-3.2-3B-Instruct"),
    ]
    bbr = probes[4]
    # The model only in the body: BBR writes the header the route matches.
    assert "X-Gateway-Model-Name" not in (bbr.get("headers") or {})
    assert bbr["body"]["model"] == "google/gemma-3-4b-it" and bbr["method"] == "POST" and bbr["path"] == "/v1/completions"
    assert bbr["response_headers"] == {"x-infgw-selected": "bbr-gemma3-4b"}
    assert "response_headers" not in probes[0]  # the host route adds no header
    assert all((p["scheme"], p["port"]) == ("http", 80) for p in probes)


def test_scheme_follows_the_listeners():
    redirect = dict(GATEWAY, redirect_http_to_https=True)
    assert {(p["scheme"], p["port"]) for p in _smoke.route_probes(MODELS, redirect)} == {("https", 443)}
    assert {p["scheme"] for p in _smoke.route_probes(MODELS, dict(GATEWAY, http=False))} == {"https"}
    with pytest.raises(_smoke.SmokeError, match="neither"):
        _smoke.route_probes(MODELS, dict(GATEWAY, http=False, https=False))


def test_route_kinds_can_be_left_out_and_bad_input_is_refused():
    kinds = {p["kind"] for p in _smoke.route_probes(MODELS, GATEWAY, bbr=False, pools=False)}
    assert kinds == {"host"}
    hostless = [dict(m, host=None) for m in MODELS]
    assert {p["kind"] for p in _smoke.route_probes(hostless, GATEWAY)} == {"bbr", "pool"}
    with pytest.raises(_smoke.SmokeError, match="no models"):
        _smoke.route_probes([], GATEWAY)
    with pytest.raises(_smoke.SmokeError, match="without model"):
        _smoke.route_probes([{"name": "x"}], GATEWAY)
    with pytest.raises(AnsibleFilterError, match="no models"):
        FilterModule().filters()["smoke_probes"]([], GATEWAY)


def test_ready_probes_keep_what_gateway_ready_takes():
    probes = FilterModule().filters()["ready_probes"](_smoke.route_probes(MODELS, GATEWAY))
    assert set(probes[3]) == {"name", "scheme", "host", "port", "path", "method", "body", "status_code",
                              "response_contains", "response_headers"}
    assert probes[3]["response_contains"] == '"model":"google/gemma-3-1b-it"'


GRADIO = {"spec": {"template": {"spec": {
    "hostAliases": [{"ip": "127.0.0.2", "hostnames": ["api.example.com"]}],
    "containers": [{"name": "gradio", "env": [
        {"name": "CONTEXT_PATH", "value": "/v1/chat/completions"}, {"name": "HOST", "value": "http://api.example.com"},
        {"name": "LLM_ENGINE", "value": "openai-chat"}, {"name": "MODEL_ID", "value": "google/gemma-3-1b-it"}]}]}}}}


def test_chat_ui_probe_is_the_request_the_ui_makes():
    probe = _smoke.chat_ui_probe(GRADIO)
    assert (probe["address"], probe["host"], probe["port"], probe["path"]) == \
        ("127.0.0.2", "api.example.com", 80, "/v1/chat/completions")
    assert probe["body"]["model"] == "google/gemma-3-1b-it" and probe["body"]["messages"][0]["role"] == "user"
    to_model = {"spec": {"template": {"spec": {"containers": [{"env": [
        {"name": "HOST", "value": "http://vllm-gemma-3-1b:8000"}, {"name": "MODEL_ID", "value": "m"}]}]}}}}
    direct = _smoke.chat_ui_probe(to_model)
    assert (direct["address"], direct["host"], direct["port"]) == (None, "vllm-gemma-3-1b", 8000)
    with pytest.raises(_smoke.SmokeError, match="HOST"):
        _smoke.chat_ui_probe({"spec": {"template": {"spec": {"containers": [{"env": []}]}}}})


COMPLETION = json.dumps({"id": "cmpl-1", "object": "text_completion", "model": "google/gemma-3-1b-it",
                         "choices": [{"index": 0, "text": " Hello there, friend!"}]})
STREAM = ('data: {"model":"google/gemma-3-4b-it","choices":[{"delta":{"content":"Hi"}}]}\n\n'
          'data: {"model":"google/gemma-3-4b-it","choices":[{"delta":{"content":" you"}}]}\n\ndata: [DONE]\n\n')


def test_answers_are_judged_by_the_model_that_answered():
    probe = _smoke.route_probes(MODELS, GATEWAY)[3]  # bbr-gemma3-1b
    headers = {"X-Infgw-Selected": "bbr-gemma3-1b", "X-Infgw-Local-Pod": "gemma/vllm-gemma-3-1b-abc"}
    ok = _smoke.evaluate(probe, 200, headers, COMPLETION, 0.41)
    assert ok["ok"] and ok["model"] == "google/gemma-3-1b-it" and ok["pod"] == "gemma/vllm-gemma-3-1b-abc"
    assert ok["answer"] == "Hello there, friend!"
    line = _smoke.report_line(ok)
    assert line.startswith("PASS BBR route bbr-gemma3-1b") and "status=200 0.41s pod=gemma/vllm-gemma-3-1b-abc" in line

    wrong = _smoke.evaluate(probe, 200, headers, COMPLETION.replace("gemma-3-1b", "gemma-3-4b"), 0.3)
    assert not wrong["ok"] and "answered by model google/gemma-3-4b-it, expected google/gemma-3-1b-it" in wrong["error"]
    missing = _smoke.evaluate(probe, 404, {}, "default backend - 404\n", 0.01)
    assert not missing["ok"] and missing["error"].startswith("status 404: default backend - 404")
    assert "pod=unknown" in _smoke.report_line(missing) and "FAIL" in _smoke.report_line(missing)
    down = _smoke.evaluate(probe, None, {}, "", 1.0, error="no answer: refused")
    msg = _smoke.failure_message([ok, missing, down])
    assert msg.startswith("2 of 3 routes did not answer correctly: BBR route bbr-gemma3-1b: bbr.example.com (status 404")
    assert _smoke.failure_message([ok]) is None


def test_streamed_answers():
    assert _smoke.answered_model(STREAM) == "google/gemma-3-4b-it"
    assert _smoke.answer_text(STREAM) == "Hi you"
    assert _smoke.answered_model("not json") is None and _smoke.answer_text("") == ""


def test_backend_health_lines_say_which_backend_fails_its_check():
    report = {"backends": [
        {"backend": "InferencePool gemma/vllm-gemma-3-1b", "namespace": "gemma", "health_check": "HTTP /nope on port 8000",
         "endpoints": [{"address": "10.244.0.5:8000", "pod": "gemma/p1", "state": "UNHEALTHY",
                        "last_error": "GET /nope answered 404"}]},
        {"backend": "Service gemma/vllm-gemma-3-4b:8000", "namespace": "gemma", "health_check": "HTTP /health on port 8000",
         "endpoints": [{"address": "10.244.0.6:8000", "state": "HEALTHY"}, {"address": "10.244.0.7:8000", "state": "UNKNOWN"}]},
        {"backend": "Service gemma/gradio:8080", "namespace": "gemma", "problem": "Service gemma/gradio not found"},
        {"backend": "Service other/x:80", "namespace": "other", "endpoints": []},
    ]}
    lines = FilterModule().filters()["backend_health_lines"](report, "gemma")
    assert lines == [
        "UNHEALTHY InferencePool gemma/vllm-gemma-3-1b: 0/1 endpoints healthy, health check HTTP /nope on port 8000: "
        "10.244.0.5:8000 (gemma/p1) UNHEALTHY: GET /nope answered 404",
        "DEGRADED Service gemma/vllm-gemma-3-4b:8000: 1/2 endpoints healthy, health check HTTP /health on port 8000: "
        "10.244.0.7:8000 UNKNOWN",
        "BROKEN Service gemma/gradio:8080: Service gemma/gradio not found",
    ]
    assert _smoke.backend_health_lines(report)[-1] == "NO ENDPOINTS Service other/x:80, health check None"


# --------------------------------------------------------------------------- on real sockets

class _Handler(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append((self.headers["Host"], body["model"]))
        model = body["model"] if not self.headers["Host"].startswith("4b.") else "wrong/model"
        data = json.dumps({"model": model, "choices": [{"text": "ok"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Infgw-Local-Pod", "ns/pod-" + self.headers["Host"].split(".")[0])
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def lb():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.seen = []
    yield server
    server.shutdown()
    server.server_close()


def test_run_connects_to_the_address_with_each_host(lb):
    probes = [dict(p, port=lb.server_address[1]) for p in _smoke.route_probes(MODELS[:2], GATEWAY, bbr=False, pools=False)]
    results = _smoke.run(probes, address="127.0.0.1", timeout=5)
    assert _Handler.seen == [("1b.example.com:%d" % lb.server_address[1], "google/gemma-3-1b-it"),
                             ("4b.example.com:%d" % lb.server_address[1], "google/gemma-3-4b-it")]
    assert [r["ok"] for r in results] == [True, False]
    assert results[0]["pod"] == "ns/pod-1b" and results[0]["seconds"] >= 0
    # Nothing listening: the route is named with the error, the others still run.
    gone = _smoke.run([dict(probes[0], address="127.0.0.1", port=1)], timeout=2)
    assert not gone[0]["ok"] and gone[0]["error"].startswith("no answer")


def test_run_over_https_sends_the_host_as_server_name(self_signed_cert):
    cert, key = self_signed_cert("api.example.com")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    names = []
    ctx.sni_callback = lambda sock, name, _ctx: names.append(name)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        probe = dict(_smoke.route_probes(MODELS[:1], GATEWAY, bbr=False, selected_header="")[-1], scheme="https", port=server.server_address[1])
        trusted = ssl.create_default_context(cafile=cert)
        (result,) = _smoke.run([probe], address="127.0.0.1", tls_context=trusted, timeout=5)
        assert result["ok"], result
        assert names == ["api.example.com"]
    finally:
        server.shutdown()
        server.server_close()


def test_routes_behind_cloud_armor_may_be_denied():
    armor = {"enabled": True, "policy": "uc1-security-policy", "pools": ["gemma-3-1b"]}
    probes = _smoke.route_probes(MODELS, GATEWAY, cloud_armor=armor)
    protected = [p for p in probes if p.get("protected_by")]
    assert [p["route"] for p in protected] == ["infp-gemma3-1b"]
    assert protected[0]["status_code"] == [200, 403]
    denied = _smoke.evaluate(protected[0], 403, {}, "403 Forbidden by security policy uc1-security-policy", 0.01)
    assert denied["ok"] and "denied by Cloud Armor policy uc1-security-policy" in _smoke.report_line(denied)
    # gateway_ready cannot tell a client outside the allow-list from a broken route: those probes are left out.
    assert len(_smoke.ready_probes(probes)) == len(probes) - 1
    assert not any(p.get("protected_by") for p in _smoke.route_probes(MODELS, GATEWAY, cloud_armor=dict(armor, enabled=False)))
