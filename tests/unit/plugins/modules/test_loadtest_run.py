# -*- coding: utf-8 -*-
# Unit tests for plugins/modules/loadtest_run.py and loadtest_report.py, with real processes and real HTTP on
# loopback: a stand-in for hey (a script printing hey's CSV, or hanging until interrupted), a small HTTP server
# playing the target (preflight) and Cloud Monitoring (the KV-cache samples). hey itself, inference-perf and the
# cluster are exercised by tests/integration/test_loadtest.py.
from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _loadtest_runner as loadtest_runner
from ansible_collections.gke_ai.inference_gateway.plugins.modules import loadtest_report, loadtest_run

CSV_HEADER = "response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset"


class Target(object):
    """An HTTP server on 127.0.0.1 answering completions (status ``status``) and timeSeries.list."""

    def __init__(self):
        self.status = 200
        self.statuses = []  # answered first, one per completion request, before ``status``
        self.requests = []
        self.kv_points = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target.requests.append({"path": self.path, "host": self.headers.get("Host"),
                                        "body": json.loads(body)})
                status = target.statuses.pop(0) if target.statuses else target.status
                self._answer(status, {"choices": [{"text": "x"}]} if status == 200 else {"error": "no route"})

            def do_GET(self):  # noqa: N802
                url = urllib.parse.urlsplit(self.path)
                target.requests.append({"path": url.path, "query": urllib.parse.parse_qs(url.query),
                                        "auth": self.headers.get("Authorization")})
                points = [{"interval": {"endTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + "Z"},
                           "value": {"doubleValue": v}} for t, v in target.kv_points]
                self._answer(200, {"timeSeries": [{"points": points}]} if points else {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target():
    server = Target()
    yield server
    server.close()


def fake_hey(tmp_path, rows, hang=False):
    """An executable that checks hey's arguments, prints hey's CSV and exits (or, with ``hang``, prints one row and
    waits for SIGINT, then prints the rest, as hey does when interrupted)."""
    script = tmp_path / "hey"
    script.write_text(textwrap.dedent("""\
        #!%s
        import json, signal, sys, time
        args = sys.argv[1:]
        assert args[-1].endswith("/v1/completions"), args
        body = json.load(open(args[args.index("-D") + 1]))
        open(%r, "w").write(json.dumps({"args": args, "body": body}))
        rows = %r
        def finish(*_):
            print(%r)
            print("\\n".join(rows))
            sys.exit(0)
        if %r:
            signal.signal(signal.SIGINT, finish)
            time.sleep(120)
        finish()
        """) % (sys.executable, str(tmp_path / "hey-args.json"), rows, CSV_HEADER, hang))
    script.chmod(0o755)
    return str(script)


def run(capsys, module, **params):
    with patch_module_args(params):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def base_params(tmp_path, target, binary, **hey):
    return dict(name="pool", tool="hey", url=target.url, host="api.example.com", model="google/gemma-3-1b-it",
                output_dir=str(tmp_path / "out"), hey=dict(dict(binary=binary, concurrency=2, requests=4), **hey),
                labels={"route": "pool"})


def test_a_hey_run_is_written_with_its_stage_timeline_and_samples(tmp_path, target, capsys, monkeypatch):
    rows = ["0.2892,0.0031,0.0000,0.0003,0.2856,0.0002,200,0.0003", "0.2866,0.0004,0.0000,0.0002,0.2859,0.0000,200,0.0030",
            "0.0120,0.0000,0.0000,0.0000,0.0119,0.0000,503,1.2896"]
    target.kv_points = [(time.time() + 60, 0.25), (time.time() - 600, 0.9)]  # one point after the start, one before
    monkeypatch.setenv("INFGW_GCP_API_ENDPOINT", target.url + "/{service}/")
    params = base_params(tmp_path, target, fake_hey(tmp_path, rows))
    result = run(capsys, loadtest_run, sample={"pool": "vllm-gemma-3-1b", "interval": 0.2}, project="p1",
                 auth_kind="accesstoken", access_token="secret-token", **params)
    assert not result.get("failed"), result
    hey = json.loads((tmp_path / "hey-args.json").read_text())
    assert hey["args"][:4] == ["-c", "2", "-n", "4"] and hey["args"][-3:] == ["-host", "api.example.com",
                                                                              target.url + "/v1/completions"]
    assert hey["body"] == {"model": "google/gemma-3-1b-it", "max_tokens": 200,
                           "prompt": "What are the top 5 most popular programming languages? Please be brief."}
    # the preflight went through the same route before the load
    first = target.requests[0]
    assert first["path"] == "/v1/completions" and first["host"] == "api.example.com"
    assert first["body"] == {"model": "google/gemma-3-1b-it", "prompt": "ping", "max_tokens": 1}
    written = json.loads((tmp_path / "out" / "pool.json").read_text())
    assert written == json.loads(json.dumps(result["run"]))
    stage = written["stages"][0]
    assert stage["status_codes"] == {"200": 2, "503": 1, "no-response": 1}  # 4 asked, 3 answered
    assert written["totals"]["failures"] == 2 and written["capped"] is False and written["exit_code"] == 0
    assert written["timeline"]["codes"]["200"][0] == 2 and written["timeline"]["codes"]["503"][1] == 1
    assert written["labels"] == {"route": "pool"}
    # the KV-cache came from timeSeries.list with the pool's filter and the token
    reads = [r for r in target.requests if r["path"] == "/monitoring/v3/projects/p1/timeSeries"]
    assert reads and reads[0]["auth"] == "Bearer secret-token"
    assert reads[0]["query"]["filter"] == ['metric.type = "prometheus.googleapis.com/inference_pool_average_kv_cache'
                                           '_utilization/gauge" AND metric.labels.name = "vllm-gemma-3-1b"']
    assert [row[1] for row in written["samples"]["kv_cache"]] == [0.25]
    assert written["samples"]["errors"] == {}
    assert "secret-token" not in json.dumps(result)


def test_a_run_still_going_at_the_time_cap_is_interrupted_and_kept(tmp_path, target, capsys):
    rows = ["0.1,0,0,0,0.1,0,200,0.01", "0.1,0,0,0,0.1,0,200,0.02"]
    started = time.monotonic()
    # a request count without a rate: only the time cap bounds the run's time
    result = run(capsys, loadtest_run, time_cap=1, **base_params(tmp_path, target, fake_hey(tmp_path, rows, hang=True)))
    elapsed = time.monotonic() - started
    assert not result.get("failed"), result
    assert result["run"]["capped"] is True and result["run"]["totals"]["requests"] == 2
    assert 1 <= elapsed < 1 + loadtest_runner.INTERRUPT_GRACE_S


def test_the_caps_and_the_preflight_refuse_before_any_load(tmp_path, target, capsys):
    binary = fake_hey(tmp_path, [])
    result = run(capsys, loadtest_run, max_requests=100, **base_params(tmp_path, target, binary, requests=1000))
    assert result["failed"] and "would send 1000 requests, more than max_requests (100)" in result["msg"]
    result = run(capsys, loadtest_run, time_cap=30, **base_params(tmp_path, target, binary, requests=10, rate=1.0))
    assert result["failed"] and "more than time_cap (30 s)" in result["msg"]
    assert target.requests == []  # not even the preflight
    target.status = 404
    result = run(capsys, loadtest_run, **base_params(tmp_path, target, binary))
    assert result["failed"] and "answered HTTP 404" in result["msg"] and "(Host api.example.com)" in result["msg"]
    assert not (tmp_path / "hey-args.json").exists()  # hey never ran
    params = base_params(tmp_path, target, binary)
    params["url"] = "http://127.0.0.1:1"
    result = run(capsys, loadtest_run, preflight_wait=0, **params)
    assert result["failed"] and "preflight: no answer from http://127.0.0.1:1/v1/completions" in result["msg"]
    result = run(capsys, loadtest_run, **base_params(tmp_path, target, str(tmp_path / "no-such-hey")))
    assert result["failed"] and "no-such-hey not found" in result["msg"]


def test_the_preflight_waits_out_a_warming_gateway_and_gives_up_at_its_deadline(tmp_path, target, capsys,
                                                                              monkeypatch):
    monkeypatch.setattr(loadtest_runner, "PREFLIGHT_RETRY_S", 0.05)
    binary = fake_hey(tmp_path, [])
    target.statuses = [500, 503]  # the endpoint picker and the backends warming up
    result = run(capsys, loadtest_run, plan=True, preflight_wait=5, **base_params(tmp_path, target, binary))
    assert not result.get("failed"), result
    assert len(target.requests) == 3
    target.requests.clear()
    target.status = 503
    started = time.monotonic()
    result = run(capsys, loadtest_run, plan=True, preflight_wait=1, **base_params(tmp_path, target, binary))
    assert result["failed"] and "answered HTTP 503" in result["msg"] and "after 1 s of retries" in result["msg"]
    assert 1 <= len(target.requests) <= 21 and time.monotonic() - started < 3


def test_check_mode_plans_and_sends_nothing(tmp_path, target, capsys):
    params = base_params(tmp_path, target, "hey")
    params.update(tool="inference_perf", inference_perf={"binary": "/venv/bin/inference-perf", "rates": [1, 2],
                                                         "stage_duration": 10, "tokenizer": str(tmp_path)})
    result = run(capsys, loadtest_run, _ansible_check_mode=True, **params)
    assert result["changed"] and result["command"][0] == "/venv/bin/inference-perf"
    assert result["expected"] == {"requests": 30, "seconds": 10 + 1 + 10 + 60 + 60}
    assert target.requests == [] and not (tmp_path / "out").exists()


def test_plan_checks_the_executable_and_the_target_and_sends_no_load(tmp_path, target, capsys):
    binary = fake_hey(tmp_path, [])
    result = run(capsys, loadtest_run, plan=True, **base_params(tmp_path, target, binary))
    assert result["changed"] is False and result["command"][0] == binary and result["command"][-1].endswith(
        "/v1/completions")
    assert [r["body"]["prompt"] for r in target.requests] == ["ping"]  # the preflight only
    assert not (tmp_path / "hey-args.json").exists() and not (tmp_path / "out").exists()


def test_a_tool_failing_fails_the_task_with_its_error(tmp_path, target, capsys):
    script = tmp_path / "broken"
    script.write_text("#!/bin/sh\necho 'flag provided but not defined: -x' >&2\nexit 2\n")
    script.chmod(0o755)
    result = run(capsys, loadtest_run, **base_params(tmp_path, target, str(script)))
    assert result["failed"] and "hey exited with 2" in result["msg"] and "flag provided but not defined" in result["msg"]


def test_the_report_module_writes_json_and_html(tmp_path, target, capsys):
    rows = ["0.2,0,0,0,0.2,0,200,0.0", "0.3,0,0,0,0.3,0,200,0.1"]
    paths = []
    for name in ("pool", "service"):
        params = base_params(tmp_path, target, fake_hey(tmp_path, rows))
        params["name"] = name
        assert not run(capsys, loadtest_run, **params).get("failed")
        paths.append(str(tmp_path / "out" / ("%s.json" % name)))
    result = run(capsys, loadtest_report, runs=paths, output_dir=str(tmp_path / "out"), title="t",
                 ab={"a": "pool", "b": "service"})
    assert not result.get("failed"), result
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [r["name"] for r in report["runs"]] == ["pool", "service"] and report["comparison"]["a"] == "pool"
    assert os.path.getsize(result["html"]) > 5000 and result["summary"][-1] == "report: %s" % result["html"]
    result = run(capsys, loadtest_report, runs=paths[:1], output_dir=str(tmp_path / "out"),
                 ab={"a": "pool", "b": "service"})
    assert result["failed"] and "not among the runs" in result["msg"]
    result = run(capsys, loadtest_report, runs=[str(tmp_path / "missing.json")], output_dir=str(tmp_path))
    assert result["failed"] and "cannot read the run" in result["msg"]
