# -*- coding: utf-8 -*-
# Integration tests of playbooks/loadtest.yml (roles/loadtest) on the local environment: the real gateway data plane,
# BBR, the endpoint picker and llm-d-inference-sim processes (the pod runner), the Service's ClusterIP on the host,
# hey from the tool cache and inference-perf from its virtualenv (make loadtest-venv) with the offline tokenizer.
#
# The numbers are checkable: the model servers run with a known time to first token and inter-token latency
# (INFGW_SIM_* in the model's env, which the pod runner turns into simulator flags), and what inference-perf measures
# must match them within the tolerances below, through the InferencePool route and straight to the Service.
#
# The stack is one CPU-only model (gpus: 0, two replicas) in this module's own namespace, so it takes no GPU capacity
# from the other suites.
from __future__ import annotations

import glob
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import LOCAL

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("gpu_pool")]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
COLLECTIONS = REPO / ".local" / "collections"
TTFT_S, ITL_S = 0.200, 0.020
# Tolerances of the medians (p50). The simulator sleeps exactly these times; on top come the client's and, through the
# pool route, the gateway's work (BBR and endpoint picker calls over ext_proc), on a shared 2-core machine.
TTFT_TOLERANCE_S = {"service": (-0.005, 0.050), "pool": (-0.005, 0.100)}
ITL_TOLERANCE_S = (-0.002, 0.006)
OUTPUT_TOKENS = 20
MODEL = {"name": "gemma-3-1b", "short_name": "gemma3-1b", "model": "google/gemma-3-1b-it", "host": "1b.example.com",
         "default_backend": True, "gpus": 0, "replicas": 2, "autoscaling": {"enabled": False},
         "resources": {"cpu": "100m", "memory": "128Mi", "ephemeral_storage": "100Mi"},
         "env": {"INFGW_SIM_TIME_TO_FIRST_TOKEN": "%dms" % (TTFT_S * 1000),
                 "INFGW_SIM_INTER_TOKEN_LATENCY": "%dms" % (ITL_S * 1000)}}
STACK = {"infgw_models": [MODEL], "infgw_gateway": {"https": False, "tls": {"mode": "none"}}}


def playbook(local_env, tmp_path, path, namespace, extra, *args, timeout=900):
    """ansible-playbook from the repository root with the local inventory; (rc, json callback document, seconds)."""
    vars_file = tmp_path / ("vars-%s.json" % uuid.uuid4().hex[:8])
    vars_file.write_text(json.dumps(dict(STACK, infgw_namespace=namespace, **extra)))
    env = dict(local_env.env, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOCALHOST_WARNING="0")
    env.pop("LOCAL_GIE_MANIFESTS", None)
    started = time.monotonic()
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), path, "-e", "@%s" % vars_file, *args], cwd=str(REPO),
                          env=env, capture_output=True, text=True, timeout=timeout, check=False)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("ansible-playbook output is not JSON (rc %s):\n%s\n%s"
                    % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc.returncode, data, time.monotonic() - started


def task_results(data, name):
    return [task["hosts"]["localhost"] for play in data["plays"] for task in play["tasks"]
            if task["task"]["name"].split(" : ", 1)[-1] == name and "localhost" in task["hosts"]]


def failures(data):
    """The failed tasks' messages, then the local load balancer's last log lines (its reasons for a 5xx)."""
    lines = []
    for play in data["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get("localhost", {})
            if result.get("failed"):
                lines.append("%s: %s" % (task["task"]["name"], result.get("msg")))
                lines += ["  %s" % item.get("msg") for item in result.get("results", []) if item.get("failed")]
    log = LOCAL / "logs" / "gateway-dataplane.log"
    if lines and log.is_file():
        lines += ["gateway-dataplane.log, last lines:"] + log.read_text(errors="replace").splitlines()[-15:]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def stack(local_env, tmp_path_factory):
    """site.yml with the one CPU model, in a namespace of its own; deleted afterwards."""
    namespace = "lt-%s" % uuid.uuid4().hex[:6]
    # no GPU, HPA, certificate or Cloud Armor here: only the model, the gateway, BBR and the pool
    rc, data, _seconds = playbook(local_env, tmp_path_factory.mktemp("site"), "site.yml", namespace, {},
                                  "--skip-tags", "gpu_nodepool,gcp_prerequisites,hpa_metrics,cloud_armor")
    assert rc == 0, failures(data)
    yield namespace
    local_env.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def report_of(output_dir):
    found = glob.glob(str(output_dir / "*" / "report.json"))
    assert len(found) == 1, found
    return json.loads(Path(found[0]).read_text()), Path(found[0]).parent


def test_inference_perf_through_the_pool_and_the_service_measures_the_simulators_latencies(
        local_env, stack, tmp_path):
    out = tmp_path / "results"
    rc, data, seconds = playbook(local_env, tmp_path, "playbooks/loadtest.yml", stack, {
        "loadtest_tool": "inference_perf", "loadtest_output_dir": str(out),
        "loadtest_inference_perf": {"rates": [2], "stage_duration": 6, "overrides": {"data": {
            "output_distribution": {"type": "fixed", "mean": OUTPUT_TOKENS, "min": OUTPUT_TOKENS,
                                    "max": OUTPUT_TOKENS}}}}})
    assert rc == 0, failures(data)
    report, run_dir = report_of(out)
    assert [run["name"] for run in report["runs"]] == ["pool", "service"]
    for run in report["runs"]:
        stage = run["stages"][0]
        measured = "%s: TTFT p50 %.1f ms, ITL p50 %.2f ms" % (
            run["name"], stage["latency"]["ttft"]["p50"] * 1000, stage["latency"]["itl"]["p50"] * 1000)
        assert stage["requests"] >= 10 and stage["failures"] == 0, stage
        low, high = TTFT_TOLERANCE_S[run["name"]]
        assert TTFT_S + low <= stage["latency"]["ttft"]["p50"] <= TTFT_S + high, measured
        assert ITL_S + ITL_TOLERANCE_S[0] <= stage["latency"]["itl"]["p50"] <= ITL_S + ITL_TOLERANCE_S[1], measured
        # end to end = TTFT + the other tokens' ITL: the three numbers describe the same requests
        expected_e2e = stage["latency"]["ttft"]["p50"] + (OUTPUT_TOKENS - 1) * stage["latency"]["itl"]["p50"]
        assert stage["latency"]["e2e"]["p50"] == pytest.approx(expected_e2e, rel=0.15), stage["latency"]
        assert stage["throughput"]["output_tokens_per_s"] == pytest.approx(
            stage["throughput"]["requests_per_s"] * OUTPUT_TOKENS, rel=0.1)
        # both replicas stayed up the whole run, as sampled from the API
        assert run["samples"]["replicas"] and all(row[1:] == [2, 2] for row in run["samples"]["replicas"])
        assert run["exit_code"] == 0 and not run["capped"]
        assert (run_dir / run["name"] / "config.yml").is_file()
    pool, service = (run["stages"][0]["latency"]["ttft"]["p50"] for run in report["runs"])
    rows = {row["metric"]: row for row in report["comparison"]["rows"]}
    assert rows["TTFT p50"]["a"] == pool and rows["TTFT p50"]["b"] == service
    assert rows["TTFT p50"]["b_over_a"] == pytest.approx(service / pool)
    html = (run_dir / "report.html").read_text()
    assert 'data-chart="ttft-vs-qps"' in html and 'data-key="comparison.rows.0.a"' in html
    summary = task_results(data, "Summary")[0]["msg"]
    assert summary[0].startswith("pool (inference_perf, route pool): ") and "TTFT p50" in summary[1]
    assert any(line.startswith("A/B stage 0: TTFT p50 pool ") for line in summary)
    print("inference-perf A/B in %.0f s: pool TTFT p50 %.1f ms, service %.1f ms"
          % (seconds, pool * 1000, service * 1000))
    # the pool's KV-cache use came from Cloud Monitoring, where the GCP fake's Managed Prometheus collector writes
    # what it scrapes from the endpoint picker every 10 s (hack/gcp_fake monitoring.py and gmp.py)
    for run in report["runs"]:
        assert run["samples"]["errors"] == {} and run["samples"]["kv_cache"], run["samples"]
        assert all(0.0 <= value <= 1.0 for _t, value in run["samples"]["kv_cache"])


def test_hey_through_bbr_against_the_host_route(local_env, stack, tmp_path):
    out = tmp_path / "results"
    rc, data, _seconds = playbook(local_env, tmp_path, "playbooks/loadtest.yml", stack, {
        "loadtest_route": "bbr", "loadtest_compare": "host", "loadtest_output_dir": str(out),
        "loadtest_hey": {"concurrency": 2, "requests": 20, "max_tokens": 5}})
    assert rc == 0, failures(data)
    report, _run_dir = report_of(out)
    for run, host in zip(report["runs"], ("bbr.example.com", "1b.example.com")):
        assert run["tool"] == "hey" and run["target"]["host"] == host
        assert run["totals"]["status_codes"] == {"200": 20}, run["totals"]
        assert sum(run["timeline"]["codes"]["200"]) == 20
        # hey's latencies include the simulator's 200 ms to the first token
        assert run["stages"][0]["latency"]["e2e"]["min"] >= TTFT_S
    assert report["comparison"]["a"] == "bbr" and report["comparison"]["b"] == "host"


def test_an_unreachable_target_fails_before_any_load(local_env, stack, tmp_path):
    out = tmp_path / "results"
    rc, data, _seconds = playbook(local_env, tmp_path, "playbooks/loadtest.yml", stack, {
        "loadtest_output_dir": str(out), "loadtest_gateway_port": 1,
        "loadtest_hey": {"concurrency": 2, "requests": 4}})
    assert rc != 0
    message = failures(data)
    assert "preflight: no answer from http://" in message and ":1/v1/completions (Host api.example.com)" in message
    assert not glob.glob(str(out / "*" / "*.json"))  # no run started


def inference_perf_venv() -> Path:
    import os

    cache = os.environ.get("GKE_AI_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gke-ai-infgw")
    venv = Path(cache) / "venv" / "inference-perf-0.7.0"
    assert (venv / ".complete").is_file(), "inference-perf's virtualenv is missing: make loadtest-venv"
    return venv


def test_presets_are_valid_inference_perf_configurations_and_the_tokenizer_counts_as_the_simulator(tmp_path):
    """Each preset's configuration passes inference-perf's own (strict) schema, and the offline tokenizer counts one
    token per word or punctuation mark: one per chunk the simulator streams, which makes the measured ITL its."""
    import sys

    sys.path.insert(0, str(COLLECTIONS))
    from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _loadtest as lt

    venv = inference_perf_venv()
    files = []
    for preset in sorted(lt.PRESETS):
        path = tmp_path / ("%s.yml" % preset)
        path.write_text(json.dumps(lt.inference_perf_config(preset, "http://127.0.0.1:1", "m", [1, 2], 10,
                                                            str(tmp_path / "out"), tokenizer=str(venv / "tokenizer"),
                                                            host="api.example.com")))
        files.append(str(path))
    check = """
import json, sys
from inference_perf.config import read_config
from transformers import AutoTokenizer
out = {}
for path in sys.argv[2:]:
    config = read_config(path)
    out[path] = [config.data.type.value, [s.rate for s in config.load.stages], config.api.headers]
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
chunks = ["I ", "am ", "fine", ", ", "twenty", "-", "five ", "centigrade", ". ", "How "]
out["counts"] = [len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in chunks]
out["prompt"] = len(tokenizer("What are the top 5 most popular programming languages? Please be brief.",
                              add_special_tokens=False)["input_ids"])
print(json.dumps(out))
"""
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", check, str(venv / "tokenizer"), *files],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    types = {Path(path).stem: value[0] for path, value in out.items() if path.endswith(".yml")}
    assert types == {"decode-heavy": "random", "prefill-heavy": "random", "shared-prefix": "shared_prefix",
                     "walkthrough": "random"}
    assert all(value[1] == [1.0, 2.0] and value[2] == {"Host": "api.example.com"}
               for path, value in out.items() if path.endswith(".yml"))
    assert out["counts"] == [1] * 10
    assert out["prompt"] == 14  # 12 words, "?" and "."
