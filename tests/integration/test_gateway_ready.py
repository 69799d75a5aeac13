# -*- coding: utf-8 -*-
# Integration tests of gke_ai.inference_gateway.gateway_ready against the local environment, where
# hack/gke_sim writes GKE-like status: Gateways of GKE classes get Accepted at once, then Programmed
# with an address of the environment's block (127.<slot>.128.x) after the program delay (annotation gke-sim.gke-ai.dev/program-delay),
# routes get parent status (BackendNotFound for missing backends), policies Attached/TargetNotFound.
# The module runs through ansible-playbook with the json stdout callback, like a user's playbook.
from __future__ import annotations

import datetime
import json
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
COLLECTIONS = REPO / ".local" / "collections"
SIM = "gke-sim.gke-ai.dev/"
GW_CLASS = "gke-l7-regional-external-managed"


# --------------------------------------------------------------------------- helpers


def run_gateway_ready(local_env, tmp_path, args, check_mode=False, timeout=300):
    """Run the module in a one-task playbook; return (task result dict, seconds ansible-playbook took)."""
    args = dict(args, kubeconfig=local_env.kubeconfig)
    play = [{
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{
            "name": "gateway_ready",
            "gke_ai.inference_gateway.gateway_ready": args,
            "check_mode": check_mode,
            "register": "r",
            "ignore_errors": True,
        }],
    }]
    playbook = tmp_path / ("play-%s.json" % uuid.uuid4().hex[:8])
    playbook.write_text(json.dumps(play))
    cfg = tmp_path / "ansible.cfg"  # keep the repository's ansible.cfg (inventory, callbacks) out of it
    cfg.write_text("[defaults]\n")
    env = dict(local_env.env,
               ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_CONFIG=str(cfg),
               ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_PYTHON_INTERPRETER=str(VENV_BIN / "python"))
    started = time.monotonic()
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook)],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=timeout,
                          check=False)
    took = time.monotonic() - started
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("ansible-playbook output is not JSON (rc %s):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr))
    result = out["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return result, took


def apply(local_env, *objs):
    local_env.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


@pytest.fixture
def ns(local_env):
    name = "gwr-" + uuid.uuid4().hex[:6]
    local_env.kubectl("create", "namespace", name)
    yield name
    local_env.kubectl("delete", "namespace", name, "--wait=false", check=False)


def served(local_env, resource):
    return local_env.kubectl("get", "crd", resource, check=False).returncode == 0


def gateway(ns, name="vllm-xlb", program_delay=None, never_program=None):
    ann = {}
    if program_delay is not None:
        ann[SIM + "program-delay"] = str(program_delay)
    if never_program is not None:
        ann[SIM + "never-program"] = never_program
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": ns, "annotations": ann},
            "spec": {"gatewayClassName": GW_CLASS, "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}}


def service(ns, name, port=8000):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": port}]}}


def route(ns, name, backend, header_value=None, gw="vllm-xlb", pool_group=None):
    br = {"name": backend, "port": 8000}
    if pool_group:
        br = {"name": backend, "group": pool_group, "kind": "InferencePool"}
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"parentRefs": [{"name": gw}], "hostnames": ["bbr.example.com"],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                "backendRefs": [br],
                                "filters": [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                                    "add": [{"name": "x-infgw-selected", "value": header_value or name}]}}]}]}}


def health_check_policy(ns, name, target_kind, target_name, group=""):
    return {"apiVersion": "networking.gke.io/v1", "kind": "HealthCheckPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"targetRef": {"group": group, "kind": target_kind, "name": target_name},
                     "default": {"config": {"type": "HTTP",
                                            "httpHealthCheck": {"requestPath": "/health", "port": 8000}}}}}


def inference_pool_v1(ns, name):
    return {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": name}}, "targetPorts": [{"number": 8000}],
                     "endpointPickerRef": {"name": name + "-epp", "port": {"number": 9002}}}}


def inference_pool_v1alpha2(ns, name):
    return {"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferencePool",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"app": name}, "targetPortNumber": 8000, "extensionRef": {"name": name + "-epp"}}}


def parse_time(value):
    return datetime.datetime.strptime(value.replace("Z", "+0000"),
                                      "%Y-%m-%dT%H:%M:%S.%f%z" if "." in value else "%Y-%m-%dT%H:%M:%S%z")


class FakeLoadBalancer(object):
    """Stands in for the data plane behind the Gateway address: 'fault filter abort' while routes propagate."""

    def __init__(self, abort_first=2):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append((self.headers.get("Host"), self.path, body))
                if len(outer.requests) <= abort_first:
                    code, payload, extra = 404, b"fault filter abort", {}
                else:
                    code, payload, extra = 200, b'{"object": "text_completion"}', {"x-infgw-selected": "bbr-gemma3-1b"}
                self.send_response(code)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- tests


def test_success_path_reports_seconds_per_gate(local_env, ns, tmp_path):
    apply(local_env,
          gateway(ns, program_delay=4),
          service(ns, "vllm-gemma-3-1b"),
          route(ns, "bbr-gemma3-1b", "vllm-gemma-3-1b"),
          health_check_policy(ns, "vllm-gemma-3-1b-hc", "Service", "vllm-gemma-3-1b"),
          health_check_policy(ns, "unrelated-hc", "Service", "nobody-uses-this"))  # ignored: targets nothing of ours
    lb = FakeLoadBalancer(abort_first=2)
    try:
        result, took = run_gateway_ready(local_env, tmp_path, {
            "name": "vllm-xlb", "namespace": ns, "timeout": 120,
            "probe_address": "127.0.0.1:%d" % lb.port, "probe_interval": 0.5,
            "probes": [{"name": "bbr-1b", "host": "bbr.example.com", "path": "/v1/completions", "method": "POST",
                        "body": {"model": "google/gemma-3-1b-it", "prompt": "Why is the sky blue?"},
                        "response_headers": {"x-infgw-selected": "bbr-gemma3-1b"}}],
        })
    finally:
        lb.close()
    assert not result.get("failed"), result.get("msg")
    assert result["ready"] is True and result["changed"] is False
    gates = result["gates"]
    print("\ngate seconds:", {k: v["seconds"] for k, v in gates.items()}, "ansible-playbook took %.1fs" % took)
    print("\n".join(result["wait_log"]))
    assert [gates[g]["state"] for g in ("gateway_accepted", "gateway_programmed", "routes", "policies", "probes")] == \
        ["passed"] * 5
    assert gates["gateway_accepted"]["seconds"] <= gates["gateway_programmed"]["seconds"]
    assert gates["gateway_programmed"]["seconds"] > 0.5  # it really waited for the 4 s program delay
    assert gates["probes"]["seconds"] >= gates["gateway_programmed"]["seconds"]
    assert result["address"].startswith(local_env.state["gateway_address_base"])
    assert result["gateway"]["conditions"]["Programmed"]["status"] == "True"
    (rt,) = result["routes"]
    assert rt["name"] == "bbr-gemma3-1b" and rt["parents"][0]["conditions"]["ResolvedRefs"]["status"] == "True"
    assert [p["name"] for p in result["policies"]] == ["vllm-gemma-3-1b-hc"]
    (probe,) = result["probes"]
    assert probe["ok"] and probe["attempts"] == 3 and probe["status"] == 200
    assert [r[0] for r in lb.requests] == ["bbr.example.com"] * 3
    assert any("gate gateway_programmed passed" in line for line in result["wait_log"])


def test_timeout_names_route_with_backend_not_found(local_env, ns, tmp_path):
    apply(local_env, gateway(ns, program_delay=0), route(ns, "bbr-gemma3-1b", "vllm-gemma-3-9b"))
    result, took = run_gateway_ready(local_env, tmp_path, {"name": "vllm-xlb", "namespace": ns, "timeout": 8})
    assert result.get("failed")
    print("\n" + result["msg"])
    expected = ('HTTPRoute %s/bbr-gemma3-1b parent vllm-xlb: ResolvedRefs=False BackendNotFound: ' % ns)
    assert expected in result["msg"]
    assert 'services %s/vllm-gemma-3-9b not found' % ns in result["msg"]
    assert result["msg"].startswith("Timed out after 8s waiting for Gateway %s/vllm-xlb; still blocking: " % ns)
    assert any(b.startswith(expected) for b in result["blockers"])
    assert result["gates"]["routes"]["state"] == "blocked"
    assert result["gates"]["gateway_programmed"]["state"] == "passed"
    assert took < 60


def test_policy_without_target_is_named_in_failure_then_heals(local_env, ns, tmp_path):
    apply(local_env, gateway(ns, program_delay=0),
          route(ns, "bbr-gemma3-9b", "vllm-gemma-3-9b"),
          health_check_policy(ns, "vllm-gemma-3-9b-hc", "Service", "vllm-gemma-3-9b"))
    result, _took = run_gateway_ready(local_env, tmp_path, {"name": "vllm-xlb", "namespace": ns, "timeout": 6})
    assert result.get("failed")
    print("\n" + result["msg"])
    assert ("HealthCheckPolicy %s/vllm-gemma-3-9b-hc: Attached=False TargetNotFound: Service %s/vllm-gemma-3-9b not found"
            % (ns, ns)) in result["msg"]
    assert result["gates"]["policies"]["state"] == "blocked"
    # Create the missing Service while the module waits: the route resolves, the policy attaches.
    timer = threading.Timer(2.0, apply, args=(local_env, service(ns, "vllm-gemma-3-9b")))
    timer.start()
    try:
        result, _took = run_gateway_ready(local_env, tmp_path, {"name": "vllm-xlb", "namespace": ns, "timeout": 60})
    finally:
        timer.join()
    assert not result.get("failed"), result.get("msg")
    assert result["gates"]["policies"]["state"] == "passed"
    assert result["policies"][0]["conditions"]["Attached"]["status"] == "True"


def test_inference_pool_gate_or_not_applicable(local_env, ns, tmp_path):
    """InferencePools of either API group behind the routes; a group whose CRD is absent is not applicable."""
    v1 = served(local_env, "inferencepools.inference.networking.k8s.io")
    alpha = served(local_env, "inferencepools.inference.networking.x-k8s.io")
    objs = [gateway(ns, program_delay=0),
            route(ns, "infp-gemma3-1b", "vllm-gemma-3-1b", pool_group="inference.networking.k8s.io"),
            route(ns, "infp-gemma3-4b", "vllm-gemma-3-4b", pool_group="inference.networking.x-k8s.io")]
    if v1:
        objs += [service(ns, "vllm-gemma-3-1b-epp", 9002), inference_pool_v1(ns, "vllm-gemma-3-1b"),
                 health_check_policy(ns, "vllm-gemma-3-1b", "InferencePool", "vllm-gemma-3-1b",
                                     group="inference.networking.k8s.io")]
    if alpha:
        objs += [service(ns, "vllm-gemma-3-4b-epp", 9002), inference_pool_v1alpha2(ns, "vllm-gemma-3-4b")]
    apply(local_env, *objs)
    result, _took = run_gateway_ready(local_env, tmp_path, {"name": "vllm-xlb", "namespace": ns, "timeout": 20})
    print("\napi_versions:", result.get("api_versions"), "\n" + "\n".join(result.get("wait_log", [])))
    pools = dict((p["group"], p) for p in result["inference_pools"])
    assert set(pools) == {"inference.networking.k8s.io", "inference.networking.x-k8s.io"}
    for group, is_served in (("inference.networking.k8s.io", v1), ("inference.networking.x-k8s.io", alpha)):
        assert pools[group]["served"] is is_served
        if is_served:
            assert pools[group]["ready"] is True
            assert pools[group]["parents"][0]["conditions"]["Accepted"]["status"] == "True"
        else:
            # No CRD: the pool is not checked (a warning says so) and nothing crashes; the route's own
            # ResolvedRefs=False BackendNotFound still blocks.
            assert any(group in w for w in result.get("warnings", []))
    if v1 and alpha:
        assert not result.get("failed"), result.get("msg")
        assert result["gates"]["inference_pools"]["state"] == "passed"
        assert pools["inference.networking.x-k8s.io"]["api_version"] == "inference.networking.x-k8s.io/v1alpha2"
        assert [p["kind"] for p in result["policies"]] == ["HealthCheckPolicy"]
    elif not v1 and not alpha:
        assert result["gates"]["inference_pools"]["state"] == "not_applicable"


def test_check_mode_returns_snapshot_without_waiting(local_env, ns, tmp_path):
    apply(local_env, gateway(ns, never_program="Invalid: Error GWCER106: simulated failure"),
          service(ns, "vllm-gemma-3-1b"), route(ns, "bbr-gemma3-1b", "vllm-gemma-3-1b"))
    time.sleep(1)
    result, took = run_gateway_ready(local_env, tmp_path, {"name": "vllm-xlb", "namespace": ns, "timeout": 600},
                                     check_mode=True)
    print("\ncheck mode took %.1fs; blockers: %s" % (took, result.get("blockers")))
    assert not result.get("failed"), result.get("msg")
    assert result["ready"] is False and result["changed"] is False
    assert result["elapsed"] < 5 and took < 60  # no waiting on the 600 s timeout
    assert result["gates"]["gateway_accepted"]["state"] == "passed"
    assert result["gates"]["gateway_programmed"]["state"] == "blocked"
    assert result["gateway"]["conditions"]["Accepted"]["status"] == "True"
    # the same injected failure, waited on for real, fails naming the condition
    real, _took = run_gateway_ready(local_env, tmp_path, {"name": "vllm-xlb", "namespace": ns, "timeout": 5})
    assert real.get("failed")
    assert "Gateway %s/vllm-xlb: Programmed=False Invalid: Error GWCER106: simulated failure" % ns in real["msg"]


class ProgrammedObserver(object):
    """Independent watch on the Gateway: wall-clock time at which Programmed=True was first seen."""

    def __init__(self, local_env, ns, name):
        from kubernetes import config, watch
        from kubernetes.client import CustomObjectsApi

        self.api = CustomObjectsApi(config.new_client_from_config(config_file=local_env.kubeconfig))
        self.watch = watch.Watch()
        self.ns, self.name = ns, name
        self.seen_at = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for ev in self.watch.stream(self.api.list_namespaced_custom_object, "gateway.networking.k8s.io", "v1",
                                    self.ns, "gateways", field_selector="metadata.name=%s" % self.name,
                                    timeout_seconds=120):
            conds = (ev["object"].get("status") or {}).get("conditions") or []
            if any(c["type"] == "Programmed" and c["status"] == "True" for c in conds):
                self.seen_at = time.time()
                self.watch.stop()
                return

    def close(self):
        self.watch.stop()


def test_readiness_latency(local_env, ns, tmp_path):
    """Seconds from the simulator setting Programmed to the module returning.

    Two measures: against the condition's lastTransitionTime (1 s resolution, truncated), and against
    the moment an independent watch in this test saw Programmed=True (sub-second).
    """
    observer = ProgrammedObserver(local_env, ns, "vllm-xlb")
    # the program delay outlasts ansible-playbook's start-up, so the module is already watching
    apply(local_env, gateway(ns, program_delay=8), service(ns, "vllm-gemma-3-1b"),
          route(ns, "bbr-gemma3-1b", "vllm-gemma-3-1b"))
    try:
        result, took = run_gateway_ready(local_env, tmp_path, {"name": "vllm-xlb", "namespace": ns, "timeout": 60})
    finally:
        observer.thread.join(10)
        observer.close()
    assert not result.get("failed"), result.get("msg")
    programmed = result["gateway"]["conditions"]["Programmed"]["lastTransitionTime"]
    live = json.loads(local_env.kubectl("get", "gateway", "-n", ns, "vllm-xlb", "-o", "json").stdout)
    live_ltt = [c for c in live["status"]["conditions"] if c["type"] == "Programmed"][0]["lastTransitionTime"]
    assert live_ltt == programmed
    finished = parse_time(result["finished_at"])
    latency = (finished - parse_time(programmed)).total_seconds()
    assert observer.seen_at is not None
    observed = finished.timestamp() - observer.seen_at
    detected = [line for line in result["wait_log"] if "gate gateway_programmed passed" in line]
    print("\nreadiness latency: %.3fs from Programmed lastTransitionTime %s to module return %s "
          "(lastTransitionTime is truncated to the second); %.3fs from an independent watch seeing "
          "Programmed=True to module return; module log: %s; gate seconds %s; ansible-playbook took %.1fs"
          % (latency, programmed, result["finished_at"], observed, detected,
             {k: v["seconds"] for k, v in result["gates"].items()}, took))
    assert result["gates"]["gateway_programmed"]["seconds"] > 1.0  # it did wait for the simulator
    assert -1.0 <= latency < 3.0
    assert observed < 2.0
