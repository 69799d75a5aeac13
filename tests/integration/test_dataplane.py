"""Requests through the local gateway (hack/dataplane): the routes site.yml makes answer with their model, through
the real BBR and endpoint pickers and the model server simulators the pod runner starts.

One stack (site.yml, GIE v1.1.0) of two CPU-only models, `small` with two replicas and a LoRA adapter, and the chat
UI through the gateway, serves every test but the v0.4.0 one. Requests go to the Gateway's status address with the
route's host in the Host header; the local-only response header X-Infgw-Local-Pod names the pod that answered.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import REPO
from test_pod_runner import is_ready, pod_http, pods, runner_state, wait
from test_site import delete_namespace, kget, namespace_exists, new_namespace, playbook

pytestmark = pytest.mark.integration

RESOURCES = {"cpu": "100m", "memory": "128Mi", "ephemeral_storage": "100Mi"}
FAST = {"INFGW_SIM_TIME_TO_FIRST_TOKEN": "10ms", "INFGW_SIM_INTER_TOKEN_LATENCY": "2ms"}
# Fixed metrics, which the tests change at run time through the simulator's /admin/config.
FAKE_METRICS = {"INFGW_SIM_FAKE_METRICS": json.dumps({"kv-cache-usage": 0.1, "running-requests": 0, "waiting-requests": 0})}
SMALL = {"name": "small", "model": "example/small", "host": "small.example.com", "default_backend": True, "gpus": 0,
         "replicas": 2, "resources": RESOURCES, "env": dict(FAST, **FAKE_METRICS),
         "lora_adapters": [{"name": "food-review", "path": "org/food-review"}]}
LARGE = {"name": "large", "model": "example/large", "host": "large.example.com", "gpus": 0, "resources": RESOURCES,
         "env": FAST}
STACK = {"infgw_models": [SMALL, LARGE], "infgw_chat_ui": {"enabled": True, "target": "gateway", "model": "small"}}


def hey_binary():
    """hey from build-tools.sh's cache, at versions.env's version."""
    versions = dict(line.split("=", 1) for line in (REPO / "hack" / "localcluster" / "versions.env").read_text()
                    .splitlines() if "=" in line and not line.startswith("#"))
    cache = os.environ.get("GKE_AI_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gke-ai-infgw")
    return os.path.join(cache, "bin", "hey-" + versions["HEY_VERSION"].strip('"'), "hey")


class Stack:
    def __init__(self, local_env, namespace, address):
        self.env, self.namespace, self.address = local_env, namespace, address

    def request(self, host, model=None, path="/v1/completions", body=None, timeout=30):
        """POST through the gateway: (status, headers (lower-case), parsed JSON or text)."""
        conn = http.client.HTTPConnection(self.address, 80, timeout=timeout)
        try:
            payload = body if body is not None else {"model": model, "prompt": "hello", "max_tokens": 4}
            conn.request("POST", path, body=json.dumps(payload),
                         headers={"Host": host, "Content-Type": "application/json"})
            resp = conn.getresponse()
            text = resp.read().decode(errors="replace")
            headers = {k.lower(): v for k, v in resp.getheaders()}
            try:
                return resp.status, headers, json.loads(text)
            except ValueError:
                return resp.status, headers, text
        finally:
            conn.close()

    def pods(self, model):
        found = pods(self.env, self.namespace, f"app=vllm-{model}")
        return {p["metadata"]["name"]: p for p in found}

    def served_by(self, host, model):
        status, headers, body = self.request(host, model)
        assert status == 200, (status, headers, body)
        return headers["x-infgw-local-pod"].split("/", 1)[1]


@pytest.fixture(scope="module")
def stack(local_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dataplane")
    namespace = new_namespace("dp")
    run = playbook(local_env, tmp, "site.yml", namespace, extra=STACK)
    try:
        assert run.rc == 0, "converge failed:\n" + run.failures()
        address = kget(local_env, "gateway", namespace, "vllm-xlb")["status"]["addresses"][0]["value"]
        wait(lambda: all(is_ready(p) for p in pods(local_env, namespace, "app=vllm-small"))
             and len(pods(local_env, namespace, "app=vllm-small")) == 2, 120, "two ready replicas of small")
        print(f"\n[site.yml] {namespace}: {run.seconds:.1f}s, gateway {address}")
        yield Stack(local_env, namespace, address)
    finally:
        if namespace_exists(local_env, namespace):
            playbook(local_env, tmp, "playbooks/teardown.yml", namespace, extra=STACK)
        delete_namespace(local_env, namespace)


def smoke_results(run):
    for name, result in run.results():
        if name.startswith("Send one request per route"):
            return result["results"]
    pytest.fail("no gateway_smoke task in the run:\n" + run.failures())


def test_every_route_and_the_chat_ui_answer_with_their_model(local_env, stack, tmp_path):
    run = playbook(local_env, tmp_path, "playbooks/smoke.yml", stack.namespace, extra=STACK)
    assert run.rc == 0, run.failures()
    results = smoke_results(run)
    small_pods = {f"{stack.namespace}/{p}" for p in stack.pods("small")}
    large_pods = {f"{stack.namespace}/{p}" for p in stack.pods("large")}
    seen = {(r["kind"], r["expected_model"]) for r in results}
    assert seen == {(k, m) for k in ("host", "bbr", "pool") for m in ("example/small", "example/large")} | \
        {("chat_ui", "example/small")}
    for r in results:
        assert r["ok"] and r["status"] == 200 and r["model"] == r["expected_model"], r
        assert r["pod"] in (small_pods if r["expected_model"] == "example/small" else large_pods), r
    # The status report: every backend healthy, as the load balancer sees it.
    status = playbook(local_env, tmp_path, "playbooks/status.yml", stack.namespace, extra=STACK)
    health = [r for name, r in status.results() if name.startswith("Assemble the report")]
    lines = health[0]["ansible_facts"]["infgw_status"]["backend_health"]
    assert any(line.startswith(f"HEALTHY InferencePool {stack.namespace}/vllm-small: 2/2 endpoints") for line in lines), lines
    assert not [line for line in lines if not line.startswith("HEALTHY")], lines


def test_bbr_routes_by_the_body_and_unknown_models_get_404(stack):
    small, large = set(stack.pods("small")), set(stack.pods("large"))
    # The BBR hostname: the model only in the body picks the route.
    for model, pods_of_model in (("example/small", small), ("example/large", large)):
        status, headers, body = stack.request("bbr.example.com", model)
        assert status == 200 and body["model"] == model, (status, body)
        assert headers["x-infgw-local-pod"].split("/", 1)[1] in pods_of_model
    # A LoRA adapter name goes to its base model, on the BBR route and through the pool's endpoint picker.
    for host, selected in (("bbr.example.com", "bbr-small"), ("api.example.com", "infp-small")):
        status, headers, body = stack.request(host, "food-review")
        assert status == 200 and body["model"] == "food-review", (host, status, body)
        assert headers["x-infgw-local-pod"].split("/", 1)[1] in small and headers["x-infgw-selected"] == selected
    for host in ("bbr.example.com", "api.example.com"):
        status, body = stack.request(host, "example/unknown")[::2]
        assert status == 404, (host, status, body)
    assert stack.request("nowhere.example.com", "example/small")[0] == 404


def set_kv_cache(stack, pod, usage):
    ip = pod["status"]["podIP"]
    status, text = pod_http(stack.env, ip, 8000, "POST", "/admin/config",
                            body={"fake-metrics": {"kv-cache-usage": usage, "running-requests": 0, "waiting-requests": 0}})
    assert status == 200, text


def completions_by_pod(stack, pods_by_name):
    """Successful requests each simulator has counted (vllm:request_success_total, read from the pod)."""
    counts = {}
    for name, pod in pods_by_name.items():
        status, text = pod_http(stack.env, pod["status"]["podIP"], 8000, "GET", "/metrics")
        assert status == 200, text
        counts[name] = sum(float(m) for m in re.findall(r'^vllm:request_success_total\{[^}]*\} ([0-9.e+]+)$', text, re.M))
    return counts


def hey(stack, model, n=300, c=10):
    data = json.dumps({"model": model, "prompt": "hello", "max_tokens": 4})
    proc = subprocess.run([hey_binary(), "-n", str(n), "-c", str(c), "-m", "POST", "-T", "application/json", "-d", data,
                           "-host", "api.example.com", f"http://{stack.address}/v1/completions"],
                          capture_output=True, text=True, timeout=300, check=True)
    codes = dict((int(code), int(count)) for code, count in re.findall(r"\[(\d+)\]\s+(\d+) responses", proc.stdout))
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", proc.stdout).group(1))
    return codes, rps, proc.stdout


def test_endpoint_picker_prefers_low_kv_cache_and_hey_has_no_errors(stack):
    pods_by_name = stack.pods("small")
    (a, pod_a), (b, pod_b) = sorted(pods_by_name.items())
    set_kv_cache(stack, pod_a, 0.9)
    set_kv_cache(stack, pod_b, 0.05)
    time.sleep(1.0)  # the picker scrapes every 50 ms
    before = completions_by_pod(stack, pods_by_name)
    codes, rps, out = hey(stack, "example/small")
    after = completions_by_pod(stack, pods_by_name)
    served = {name: after[name] - before[name] for name in pods_by_name}
    print(f"\n[hey -n 300 -c 10, pool route, KV {a}=0.9 {b}=0.05] {rps:.0f} req/s, per pod {served}")
    assert codes == {200: 300}, out
    assert served[a] + served[b] == 300 and served[b] >= 0.95 * 300, served
    # Swapped: new requests go to the other replica.
    set_kv_cache(stack, pod_a, 0.05)
    set_kv_cache(stack, pod_b, 0.9)
    time.sleep(1.0)
    assert {stack.served_by("api.example.com", "example/small") for attempt in range(10)} == {a}
    # Equal use: both replicas share the load.
    set_kv_cache(stack, pod_a, 0.1)
    set_kv_cache(stack, pod_b, 0.1)
    time.sleep(1.0)
    before = completions_by_pod(stack, pods_by_name)
    codes, rps, out = hey(stack, "example/small")
    after = completions_by_pod(stack, pods_by_name)
    served = {name: after[name] - before[name] for name in pods_by_name}
    print(f"[hey -n 300 -c 10, pool route, equal KV] {rps:.0f} req/s, per pod {served}")
    assert codes == {200: 300}, out
    assert min(served.values()) >= 0.1 * 300, served


def test_killed_model_server_restarts_while_traffic_moves_to_the_other(stack):
    pods_by_name = stack.pods("small")
    for pod in pods_by_name.values():
        set_kv_cache(stack, pod, 0.1)
    victim, other = sorted(pods_by_name)
    container = next(iter(runner_state()[f"{stack.namespace}/{victim}"]["containers"].values()))
    restarts = pods_by_name[victim]["status"]["containerStatuses"][0].get("restartCount", 0)
    samples, requests, done = [], [], threading.Event()  # (seconds since the kill, ...)

    def watch_victim():  # the pod as the API shows it, every 0.2 s
        while not done.is_set():
            pod = kget(stack.env, "pod", stack.namespace, victim)
            samples.append((time.monotonic() - killed_at, is_ready(pod),
                            pod["status"]["containerStatuses"][0].get("restartCount", 0)))
            time.sleep(0.2)

    os.kill(container["pid"], signal.SIGKILL)
    killed_at = time.monotonic()
    watcher = threading.Thread(target=watch_victim, daemon=True)
    watcher.start()
    try:
        while time.monotonic() - killed_at < 60:
            status, headers = stack.request("api.example.com", "example/small", timeout=10)[:2]
            requests.append((time.monotonic() - killed_at, status, headers.get("x-infgw-local-pod", "").split("/")[-1]))
            if samples and samples[-1][2] > restarts and samples[-1][1]:
                break
    finally:
        done.set()
        watcher.join()
    not_ready = [sample[0] for sample in samples if not sample[1]]
    back = next((t for t, ready, count in samples if ready and count > restarts), None)
    failed = [r for r in requests if r[1] != 200]
    print(f"\n[kill {victim}] not Ready from {not_ready[:1]}s, Ready again (restarted) at {back}s; "
          f"{len(requests)} requests, {len(failed)} failed {failed}")
    assert back is not None, (samples, requests)
    assert not_ready, f"the pod never showed as not Ready: {samples}"
    # While the pod is not Ready (between the first and the last look that saw it so), what is served is served by
    # the other replica.
    meanwhile = [r for r in requests if not_ready[0] <= r[0] <= not_ready[-1] and r[1] == 200]
    assert meanwhile and all(r[2] == other for r in meanwhile), meanwhile
    # Until the kill shows in the pod's status (and the picker sees it), a request may still reach the dead process:
    # only then, in the first seconds.
    assert all(r[0] < 2.0 for r in failed), failed


def test_health_check_path_not_served_means_no_healthy_upstream_and_the_report_says_so(local_env, stack, tmp_path):
    ns = stack.namespace

    def patch(path):
        local_env.kubectl("patch", "healthcheckpolicy", "-n", ns, "vllm-large", "--type", "merge", "-p",
                          json.dumps({"spec": {"default": {"config": {"httpHealthCheck": {"requestPath": path}}}}}))

    patch("/not-served")
    try:
        def unhealthy():
            status, body = stack.request("api.example.com", "example/large")[::2]
            return status == 503 and body == "no healthy upstream"
        wait(unhealthy, 20, "503 no healthy upstream on the large pool's route")
        # GKE keeps every status green: only the load balancer knows.
        hcp = kget(local_env, "healthcheckpolicy", ns, "vllm-large")
        assert [c["status"] for c in hcp["status"]["conditions"] if c["type"] == "Attached"] == ["True"]
        status = playbook(local_env, tmp_path, "playbooks/status.yml", ns, extra=STACK)
        health = [r for name, r in status.results() if name.startswith("Assemble the report")]
        lines = health[0]["ansible_facts"]["infgw_status"]["backend_health"]
        bad = [line for line in lines if line.startswith(f"UNHEALTHY InferencePool {ns}/vllm-large")]
        assert bad and "GET /not-served answered 404" in bad[0], lines
        # The model's own host route (its Service, another health check) still answers.
        assert stack.request("large.example.com", "example/large")[0] == 200
    finally:
        patch("/health")
    wait(lambda: stack.request("api.example.com", "example/large")[0] == 200, 20, "the large pool healthy again")


def test_cloud_armor_allow_list(local_env, stack, tmp_path):
    def armor(ranges):
        extra = dict(STACK, infgw_cloud_armor={"enabled": True, "policy": "dp-test-policy", "pools": ["small"],
                                               "allowed_ip_ranges": ranges})
        run = playbook(local_env, tmp_path, "site.yml", stack.namespace, "--tags", "cloud_armor", extra=extra)
        assert run.rc == 0, run.failures()

    armor(["203.0.113.0/24"])  # an allow-list without this client (127.0.0.1)
    wait(lambda: stack.request("api.example.com", "example/small")[0] == 403, 20, "403 from Cloud Armor")
    status, headers, body = stack.request("api.example.com", "example/small")
    assert body.endswith("<title>403</title>403 Forbidden") and headers["x-infgw-selected"] == "infp-small", (headers, body)
    assert stack.request("api.example.com", "example/large")[0] == 200  # an unprotected pool
    armor(["203.0.113.0/24", "127.0.0.0/8"])
    wait(lambda: stack.request("api.example.com", "example/small")[0] == 200, 20, "200 once the client is allowed")


@pytest.mark.parametrize("profile", ["v0.4.0", "v1.5.0"])
def test_other_profile_routes(local_env, tmp_path, profile):
    """GIE v0.4.0 (InferencePool v1alpha2, InferenceModel) and v1.5.0 (the epplib chart, pools named vllm-<model>-v15),
    each with its own EPP and BBR binaries: every route answers; v1.5.0 (the newest, least covered elsewhere) also
    re-runs at changed=0."""
    namespace = new_namespace("dp-" + profile.replace(".", ""))
    extra = {"infgw_profile": profile, "infgw_models": [dict(LARGE, default_backend=True)]}
    try:
        run = playbook(local_env, tmp_path, "site.yml", namespace, extra=extra)
        assert run.rc == 0, run.failures()
        print("\n[site.yml %s] %.1fs" % (profile, run.seconds))
        if profile == "v1.5.0":
            pool = kget(local_env, "inferencepools.inference.networking.k8s.io", namespace, "vllm-large-v15")
            assert pool["spec"]["endpointPickerRef"]["name"] == "vllm-large-v15-epp"
            epp = kget(local_env, "deployment", namespace, "vllm-large-v15-epp")
            assert epp["spec"]["template"]["spec"]["containers"][0]["image"] == \
                "registry.k8s.io/gateway-api-inference-extension/epp:v1.5.0"
            rerun = playbook(local_env, tmp_path, "site.yml", namespace, extra=extra)
            assert rerun.rc == 0 and rerun.stats["changed"] == 0, (rerun.failures(), rerun.changed_tasks())
            print("[site.yml %s re-run] %.1fs" % (profile, rerun.seconds))
        smoke = playbook(local_env, tmp_path, "playbooks/smoke.yml", namespace, extra=extra)
        assert smoke.rc == 0, smoke.failures()
        results = smoke_results(smoke)
        assert sorted(r["kind"] for r in results) == ["bbr", "host", "pool"]
        assert all(r["ok"] and r["model"] == "example/large" and r["pod"].startswith(namespace + "/vllm-large-")
                   for r in results), results
    finally:
        if namespace_exists(local_env, namespace):
            playbook(local_env, tmp_path, "playbooks/teardown.yml", namespace, extra=extra)
        delete_namespace(local_env, namespace)
