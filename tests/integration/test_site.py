# -*- coding: utf-8 -*-
# Integration tests of site.yml and the playbooks around it (status, scale_down, teardown) on the local
# environment: a real control plane with kwok nodes (2 CPU nodes, and up to 5 GPU nodes with one nvidia.com/gpu each
# in conftest's `gpu_pool`, the walkthrough's node pool in the GCP fake, whose autoscaler adds them as GPU pods ask)
# and the GKE status simulator. Playbooks run exactly as a user runs them: from the repository root, with its
# ansible.cfg and the local inventory, each test in its own namespace (-e infgw_namespace=...).
#
# GPU capacity is cluster-wide (at most 5 GPUs) and the default stack takes 3: only the module-scoped `stack` fixture
# deploys GPU models; every other test uses CPU-only models or never schedules. Do not run this module in
# parallel with another suite that deploys the default models (molecule's default scenario does).
from __future__ import annotations

import base64
import dataclasses
import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("gpu_pool")]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
COLLECTIONS = REPO / ".local" / "collections"
FIELD_MANAGER = "gke-ai-inference-gateway"
MODELS = {  # name -> (model, startup failureThreshold, ephemeral storage, extra args), the walkthrough's files
    "gemma-3-1b": ("google/gemma-3-1b-it", 3600, "10Gi", []),
    "gemma-3-4b": ("google/gemma-3-4b-it", 7200, "25Gi", ["--dtype=bfloat16"]),
    "llama-3-3b": ("meta-llama/Llama-3.2-3B-Instruct", 10800, "25Gi",
                   ["--gpu-memory-utilization", "0.90", "--max-model-len", "16384"]),
}
# A model that needs no GPU, for tests that must not take GPU capacity from the stack.
CPU_MODEL = {"name": "tiny", "model": "example/tiny", "gpus": 0,
             "resources": {"cpu": "100m", "memory": "128Mi", "ephemeral_storage": "100Mi"}}


# --------------------------------------------------------------------------- helpers

@dataclasses.dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    data: dict | None  # the json callback's document, when used

    @property
    def stats(self) -> dict:
        return self.data["stats"]["localhost"]

    def results(self):
        """(task name without its role, result) of every task."""
        for play in self.data["plays"]:
            for task in play["tasks"]:
                result = task["hosts"].get("localhost")
                if result is not None:  # "<role> : <task>" -> "<task>"
                    yield task["task"]["name"].split(" : ", 1)[-1], result

    def failures(self) -> str:
        if self.data is None:
            return self.stdout + self.stderr
        lines = []
        for name, result in self.results():
            if result.get("failed"):
                lines.append("%s: %s" % (name, result.get("msg")))
                lines += ["  %s: %s" % (item.get("item", {}).get("name", item.get("item")), item.get("msg"))
                          for item in result.get("results", []) if isinstance(item, dict) and item.get("failed")]
        return "\n".join(lines) or (self.stdout[-3000:] + self.stderr[-3000:])

    def changed_tasks(self) -> list[str]:
        return [name for name, result in self.results() if result.get("changed")]


def playbook(local_env, tmp_path, path, namespace, *args, extra=None, json_out=True, timeout=1200) -> Run:
    """ansible-playbook <path> from the repository root, into `namespace`; extra vars as a JSON file."""
    cmd = [str(VENV_BIN / "ansible-playbook"), path, "-e", "infgw_namespace=%s" % namespace]
    if extra:
        vars_file = tmp_path / ("vars-%s.json" % uuid.uuid4().hex[:8])
        vars_file.write_text(json.dumps(extra))
        cmd += ["-e", "@%s" % vars_file]
    cmd += list(args)
    env = dict(local_env.env, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0")
    env.pop("LOCAL_GIE_MANIFESTS", None)  # the local inventory finds .local/gie by itself
    env.pop("HF_TOKEN", None)  # the local inventory's dummy token, unless a test sets one
    if json_out:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.monotonic() - started
    data = None
    if json_out:
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            pytest.fail("ansible-playbook output is not JSON (rc %s):\n%s\n%s" % (proc.returncode, proc.stdout[-5000:],
                                                                                  proc.stderr[-5000:]))
    return Run(proc.returncode, proc.stdout, proc.stderr, seconds, data)


def kget(local_env, kind, namespace=None, name=None, check=True):
    args = ["get", kind] + ([name] if name else []) + (["-n", namespace] if namespace else []) + ["-o", "json", "--show-managed-fields"]
    proc = local_env.kubectl(*args, check=False)
    if proc.returncode != 0:
        if check:
            pytest.fail("kubectl %s: %s" % (" ".join(args), proc.stderr))
        return None
    return json.loads(proc.stdout)


def namespace_exists(local_env, namespace) -> bool:
    return local_env.kubectl("get", "namespace", namespace, check=False).returncode == 0


def delete_namespace(local_env, namespace):
    local_env.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=180s",
                      check=False)


def managers(obj) -> set[str]:
    return {m["manager"] for m in obj["metadata"].get("managedFields", [])}


def new_namespace(prefix) -> str:
    return "%s-%s" % (prefix, uuid.uuid4().hex[:6])


# --------------------------------------------------------------------------- the converged stack

@dataclasses.dataclass
class Stack:
    namespace: str
    cold: Run


@pytest.fixture(scope="module")
def stack(local_env, tmp_path_factory):
    """site.yml converged once into a fresh namespace; torn down (teardown.yml) at the end of the module."""
    tmp = tmp_path_factory.mktemp("site")
    namespace = new_namespace("site")
    run = playbook(local_env, tmp, "site.yml", namespace)
    try:
        assert run.rc == 0, "cold converge failed:\n" + run.failures()
        print("\n[site.yml] cold converge into %s: %.1fs, changed=%s" % (namespace, run.seconds, run.stats["changed"]))
        yield Stack(namespace, run)
    finally:
        if namespace_exists(local_env, namespace):
            playbook(local_env, tmp, "playbooks/teardown.yml", namespace)
        delete_namespace(local_env, namespace)


def test_converge_model_servers_as_the_walkthrough(local_env, stack):
    ns = stack.namespace
    deployments = {d["metadata"]["name"]: d for d in kget(local_env, "deployments", ns)["items"]}
    for name, (model, startup, storage, extra_args) in MODELS.items():
        d = deployments["vllm-" + name]
        assert d["status"].get("availableReplicas") == 1, d["status"]
        assert FIELD_MANAGER in managers(d)
        spec = d["spec"]
        assert spec["selector"]["matchLabels"] == {"app": "vllm-" + name}
        assert spec["strategy"]["type"] == "Recreate"
        pod = spec["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] == 15
        assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
        assert pod["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
        (c,) = pod["containers"]
        assert c["name"] == "inference-server"
        assert c["image"] == "vllm/vllm-openai:v0.8.5.post1"
        assert c["args"] == ["--model=$(MODEL)", "--tensor-parallel-size=1"] + extra_args
        env = {e["name"]: e for e in c["env"]}
        assert env["MODEL"]["value"] == model
        assert env["HUGGING_FACE_HUB_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf-secret", "key": "hf_api_token"}
        want = {"cpu": "6", "memory": "25Gi", "ephemeral-storage": storage, "nvidia.com/gpu": "1"}
        assert c["resources"] == {"requests": want, "limits": want}
        assert c["ports"] == [{"containerPort": 8000, "name": "http", "protocol": "TCP"}]
        assert c["lifecycle"]["preStop"] == {"sleep": {"seconds": 15}}
        assert c["startupProbe"]["failureThreshold"] == startup
        assert c["startupProbe"]["httpGet"]["path"] == "/health"
        assert c["readinessProbe"]["failureThreshold"] == 1
        assert c["livenessProbe"]["failureThreshold"] == 5
    # autoscaled models leave the replica count to their HPA: the collection does not own spec.replicas there
    for name, owns in (("gemma-3-1b", False), ("gemma-3-4b", False), ("llama-3-3b", True)):
        fields = [m for m in deployments["vllm-" + name]["metadata"]["managedFields"] if m["manager"] == FIELD_MANAGER]
        assert ("f:replicas" in fields[0]["fieldsV1"]["f:spec"]) is owns, name

    services = {s["metadata"]["name"]: s for s in kget(local_env, "services", ns)["items"]}
    for name in MODELS:
        s = services["vllm-" + name]
        assert s["spec"]["type"] == "ClusterIP"
        assert s["spec"]["selector"] == {"app": "vllm-" + name}
        assert [(p["port"], p["targetPort"]) for p in s["spec"]["ports"]] == [(8000, 8000)]

    secret = kget(local_env, "secret", ns, "hf-secret")
    assert list(secret["data"]) == ["hf_api_token"]
    assert base64.b64decode(secret["data"]["hf_api_token"]).decode() == "hf_dummy-token-for-the-local-fake-cluster"


def test_converge_gateway_routes_and_health_checks(local_env, stack):
    ns = stack.namespace
    gw = kget(local_env, "gateway", ns, "vllm-xlb")
    assert gw["spec"]["gatewayClassName"] == "gke-l7-regional-external-managed"
    listeners = {lst["name"]: lst for lst in gw["spec"]["listeners"]}
    assert (listeners["http"]["protocol"], listeners["http"]["port"]) == ("HTTP", 80)
    assert (listeners["https"]["protocol"], listeners["https"]["port"]) == ("HTTPS", 443)
    assert listeners["https"]["tls"]["mode"] == "Terminate"
    assert listeners["https"]["tls"]["options"] == {"networking.gke.io/cert-manager-certs": "uc1-wildcard"}
    conditions = {c["type"]: c["status"] for c in gw["status"]["conditions"]}
    assert conditions["Programmed"] == "True"
    assert gw["status"]["addresses"][0]["value"]

    route = kget(local_env, "httproute", ns, "gemma-host-based-routing")
    assert route["spec"]["parentRefs"][0]["name"] == "vllm-xlb"
    assert "sectionName" not in route["spec"]["parentRefs"][0]  # no redirect: both listeners
    assert sorted(route["spec"]["hostnames"]) == ["1b.example.com", "3b.example.com", "4b.example.com"]
    rules = route["spec"]["rules"]
    host_rules = {r["matches"][0]["headers"][0]["value"]: r["backendRefs"][0]["name"]
                  for r in rules if r["matches"][0].get("headers")}
    assert host_rules == {"4b.example.com": "vllm-gemma-3-4b", "3b.example.com": "vllm-llama-3-3b"}
    assert rules[-1]["backendRefs"] == [{"group": "", "kind": "Service", "name": "vllm-gemma-3-1b", "port": 8000,
                                         "weight": 1}]
    assert not rules[-1]["matches"][0].get("headers")  # the default backend: no host match, last
    parents = route["status"]["parents"]
    assert {c["type"]: c["status"] for c in parents[0]["conditions"]}["Accepted"] == "True"

    for name in MODELS:
        hc = kget(local_env, "healthcheckpolicy", ns, "vllm-%s-hc" % name)
        assert hc["spec"]["targetRef"] == {"group": "", "kind": "Service", "name": "vllm-" + name}
        assert hc["spec"]["default"]["config"] == {
            "type": "HTTP",
            "httpHealthCheck": {"portSpecification": "USE_FIXED_PORT", "port": 8000, "requestPath": "/health"}}
        assert hc["spec"]["default"]["logConfig"] == {"enabled": False}


def test_converge_whole_walkthrough(local_env, stack):
    """The steps after the gateway (other roles) ran too: BBR, pools, HPAs; every route is accepted."""
    ns = stack.namespace
    routes = {r["metadata"]["name"] for r in kget(local_env, "httproutes", ns)["items"]}
    assert {"bbr-gemma3-1b", "bbr-gemma3-4b", "bbr-llama3-3b", "infp-gemma3-1b", "infp-gemma3-4b",
            "infp-llama3-3b", "gemma-host-based-routing"} <= routes
    pools = {p["metadata"]["name"] for p in kget(local_env, "inferencepools.inference.networking.k8s.io", ns)["items"]}
    assert pools == {"vllm-" + name for name in MODELS}
    hpas = {h["metadata"]["name"] for h in kget(local_env, "hpa", ns)["items"]}
    assert hpas == {"vllm-gemma-3-1b", "vllm-gemma-3-4b"}


def applies_made(run) -> set[str]:
    """The objects the k8s_converge steps applied (the reads found them different), as "Kind namespace/name"."""
    return {label for _name, result in run.results() if "reasons" in result for label in result["reasons"]}


def engine_steps(run) -> list[dict]:
    return [result for _name, result in run.results() if "reasons" in result]


def test_second_run_changes_nothing(local_env, stack, tmp_path):
    run = playbook(local_env, tmp_path, "site.yml", stack.namespace)
    assert run.rc == 0, run.failures()
    print("\n[site.yml] no-op re-run: %.1fs" % run.seconds)
    assert run.stats["changed"] == 0, run.changed_tasks()
    # every step reads the stack converged: not one apply request, not one module process for Kubernetes
    assert applies_made(run) == set()
    assert len(engine_steps(run)) >= 8


def test_drift_is_found_by_the_plan_and_repaired(local_env, stack, tmp_path):
    """Changes made by another field manager (kubectl) are applied back; a change to a field no role sets is not."""
    ns = stack.namespace
    local_env.kubectl("-n", ns, "label", "deployment", "vllm-gemma-3-1b", "app.kubernetes.io/part-of-")
    local_env.kubectl("-n", ns, "patch", "secret", "hf-secret", "--type", "merge",
                      "-p", json.dumps({"data": {"hf_api_token": "ZHJpZnQ="}}))
    local_env.kubectl("-n", ns, "patch", "httproute", "gemma-host-based-routing", "--type", "json",
                      "-p", json.dumps([{"op": "replace", "path": "/spec/hostnames/0", "value": "drift.example.com"}]))
    local_env.kubectl("-n", ns, "annotate", "httproute", "bbr-gemma3-1b", "example.com/note=not ours")
    run = playbook(local_env, tmp_path, "site.yml", ns)
    assert run.rc == 0, run.failures()
    assert applies_made(run) == {"Secret %s/hf-secret" % ns, "Deployment %s/vllm-gemma-3-1b" % ns,
                                 "HTTPRoute %s/gemma-host-based-routing" % ns}
    deployment = kget(local_env, "deployment", ns, "vllm-gemma-3-1b")
    assert deployment["metadata"]["labels"]["app.kubernetes.io/part-of"] == "gke-ai-inference-gateway"
    secret = kget(local_env, "secret", ns, "hf-secret")
    assert secret["data"]["hf_api_token"] != "ZHJpZnQ="
    route = kget(local_env, "httproute", ns, "gemma-host-based-routing")
    assert "drift.example.com" not in route["spec"]["hostnames"]
    assert kget(local_env, "httproute", ns, "bbr-gemma3-1b")["metadata"]["annotations"]["example.com/note"] == "not ours"
    again = playbook(local_env, tmp_path, "site.yml", ns)
    assert again.rc == 0, again.failures()
    assert again.stats["changed"] == 0, again.changed_tasks()
    assert applies_made(again) == set()


def test_check_diff_on_converged_stack_changes_nothing(local_env, stack, tmp_path):
    run = playbook(local_env, tmp_path, "site.yml", stack.namespace, "--check", "--diff")
    assert run.rc == 0, run.failures()
    assert run.stats["changed"] == 0, run.changed_tasks()


def test_check_diff_on_empty_namespace_lists_changes_and_creates_nothing(local_env, stack, tmp_path):
    namespace = new_namespace("site-check")
    run = playbook(local_env, tmp_path, "site.yml", namespace, "--check", "--diff")
    try:
        assert run.rc == 0, run.failures()
        assert run.stats["changed"] > 0
        listed = json.dumps([result for _task, result in run.results() if result.get("changed")])
        for name in MODELS:
            assert "Deployment %s/vllm-%s" % (namespace, name) in listed
            assert "HealthCheckPolicy %s/vllm-%s-hc" % (namespace, name) in listed
        assert "Gateway %s/vllm-xlb" % namespace in listed
        assert "HTTPRoute %s/gemma-host-based-routing" % namespace in listed
        assert not namespace_exists(local_env, namespace)
    finally:
        delete_namespace(local_env, namespace)


def test_check_diff_shows_a_pending_change(local_env, stack, tmp_path):
    """On the converged stack, a changed model shows as a diff of its Deployment and changes nothing."""
    extra = {"infgw_model_defaults": {"replicas": 1, "accelerator": "nvidia-l4", "gpus": 1,
                                      "image": "vllm/vllm-openai:v0.8.5.post1", "port": 8000,
                                      "resources": {"cpu": "6", "memory": "25Gi", "ephemeral_storage": "10Gi"},
                                      "args": None, "vllm_args": [], "env": {"VLLM_LOGGING_LEVEL": "DEBUG"},
                                      "startup_budget_seconds": 3600, "lora_adapters": [],
                                      "pool": {"epp_replicas": 1},
                                      "autoscaling": {"enabled": False, "min": 1, "max": 3,
                                                      "target_kv_cache_utilization": "500m"}}}
    run = playbook(local_env, tmp_path, "site.yml", stack.namespace, "--check", "--diff", "--tags", "vllm_model",
                   extra=extra)
    assert run.rc == 0, run.failures()
    step = "Converge the namespace, the token Secret and the model servers; wait until they are Available"
    assert run.changed_tasks() == [step]
    (result,) = [r for name, r in run.results() if name == step]
    assert sorted(result["updated"]) == sorted("Deployment %s/vllm-%s" % (stack.namespace, name) for name in MODELS)
    diffs = result["diff"]  # one per Deployment, shown by the callback as unified diffs
    assert [d["before_header"] for d in diffs] == result["updated"]
    assert all("value: DEBUG" in d["after"] and "value: DEBUG" not in d["before"] for d in diffs)
    d = kget(local_env, "deployment", stack.namespace, "vllm-gemma-3-1b")
    assert "VLLM_LOGGING_LEVEL" not in json.dumps(d["spec"])


def test_status_report(local_env, stack, tmp_path):
    # The metrics path (GMP's scrape of the endpoint pickers, the adapter, the HPA controller) gives the HPAs real
    # values within a scrape interval and an HPA sync or two.
    deadline = time.monotonic() + 90
    while True:
        hpas = kget(local_env, "hpa", stack.namespace)["items"]
        if hpas and all(h["status"].get("currentMetrics") for h in hpas):
            break
        assert time.monotonic() < deadline, [h["status"] for h in hpas]
        time.sleep(2)
    run = playbook(local_env, tmp_path, "playbooks/status.yml", stack.namespace)
    assert run.rc == 0, run.failures()
    assert run.stats["changed"] == 0
    report = [r for name, r in run.results() if name == "Report"][0]["msg"]
    text = "\n".join(report)
    gw = kget(local_env, "gateway", stack.namespace, "vllm-xlb")
    assert "address %s, READY" % gw["status"]["addresses"][0]["value"] in text
    for route in ("gemma-host-based-routing", "bbr-gemma3-1b", "infp-llama3-3b"):
        assert route in text
    assert "vllm-gemma-3-1b-epp (endpoint picker): 1/1 available" in text
    assert "HPAs: 2" in text
    for model in ("gemma-3-1b", "gemma-3-4b"):  # the autoscaled ones: a measured value, not <unknown>
        (line,) = [ln for ln in report if ln.startswith("  vllm-%s: replicas" % model)]
        assert "<unknown>" not in line and '"value":' in line, line
        assert "PodMonitoring/%s/vllm-%s/metrics: 1/1 target(s) up" % (stack.namespace, model) in text
    assert "Recent warning events" in text
    # The Google Cloud side, read from the GCP fake: the walkthrough's pool with its nodes, driver and limits, the
    # adapter's binding, the proxy-only subnet, the certificate.
    assert "Google Cloud (project local-project, cluster us-central1/local-cluster):" in text
    assert "node pool gpupool: RUNNING, g2-standard-8, 1 x nvidia-l4 (driver LATEST)" in text
    assert "autoscaling 0..5 in total" in text
    assert "IAM roles/monitoring.viewer granted to the custom metrics adapter" in text
    assert "proxy-only subnet proxy-only-subnet (us-central1): 10.129.0.0/23, REGIONAL_MANAGED_PROXY ACTIVE" in text
    assert "certificate uc1-wildcard (us-central1): *.example.com, example.com, expires" in text
    status = [r for name, r in run.results() if name == "Assemble the report"][0]["ansible_facts"]["infgw_status"]
    assert status["google_cloud"]["problems"] == [] and status["google_cloud"]["node_pools"]["gpupool"]["nodes"] >= 0


def test_scale_down_and_back(local_env, stack, tmp_path):
    ns = stack.namespace
    run = playbook(local_env, tmp_path, "playbooks/scale_down.yml", ns)
    assert run.rc == 0, run.failures()
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in kget(local_env, "deployments", ns)["items"]
                if d["metadata"]["name"] in {"vllm-" + n for n in MODELS}}
    assert replicas == {"vllm-" + n: 0 for n in MODELS}
    again = playbook(local_env, tmp_path, "playbooks/scale_down.yml", ns)
    assert again.stats["changed"] == 0
    # site.yml restores the model without autoscaling; the HPA-owned ones stay down until scaled up
    site = playbook(local_env, tmp_path, "site.yml", ns, "--tags", "vllm_model")
    assert site.rc == 0, site.failures()
    assert kget(local_env, "deployment", ns, "vllm-llama-3-3b")["spec"]["replicas"] == 1
    assert kget(local_env, "deployment", ns, "vllm-gemma-3-1b")["spec"]["replicas"] == 0
    up = playbook(local_env, tmp_path, "playbooks/scale_down.yml", ns, "-e", "infgw_scale_replicas=1")
    assert up.rc == 0, up.failures()
    for name in MODELS:
        assert kget(local_env, "deployment", ns, "vllm-" + name)["status"].get("availableReplicas") == 1


def test_teardown_reverse_order_keeps_crds(local_env, stack, tmp_path):
    ns = stack.namespace
    run = playbook(local_env, tmp_path, "playbooks/teardown.yml", ns)
    assert run.rc == 0, run.failures()
    assert not namespace_exists(local_env, ns)
    assert kget(local_env, "crd", None, "inferencepools.inference.networking.k8s.io", check=False) is not None
    releases = local_env.kubectl("get", "secrets", "-A", "-l", "owner=helm", "-o", "json", check=False)
    assert ns not in releases.stdout
    steps = ["hpa_metrics", "inference_pool", "bbr", "gateway", "vllm_model"]
    deleted = {name.split(":")[0].split()[1]: r for name, r in run.results()
               if name.startswith("Teardown") and name.endswith("delete the objects")}
    assert list(deleted) == steps  # reverse order of site.yml
    # each step deleted what its role applied, whatever the kinds (its ApplySet)
    pruned = {step: {text.split()[0] for item in r["results"] for text in item["pruned"]} for step, r in deleted.items()}
    assert pruned == {"hpa_metrics": {"HorizontalPodAutoscaler"}, "inference_pool": {"HTTPRoute", "InferenceObjective"},
                      "bbr": {"HTTPRoute"}, "gateway": {"Gateway", "HTTPRoute", "HealthCheckPolicy"},
                      "vllm_model": {"Deployment", "Service", "Secret"}}
    again = playbook(local_env, tmp_path, "playbooks/teardown.yml", ns)
    assert again.rc == 0 and again.stats["changed"] == 0


# --------------------------------------------------------------------------- the token

def test_hf_token_never_in_output(local_env, tmp_path):
    """-vvv --diff, creating and then rotating the Secret: neither the token nor its base64 form is printed."""
    namespace = new_namespace("site-token")
    extra = {"infgw_models": [CPU_MODEL]}
    try:
        outputs = []
        for token in ("hf_SECRET-create-%s" % uuid.uuid4().hex, "hf_SECRET-rotate-%s" % uuid.uuid4().hex):
            run = playbook(local_env, tmp_path, "site.yml", namespace, "-vvv", "--diff", "--tags", "vllm_model,gateway",
                           "-e", "infgw_hf_token=%s" % token, extra=extra, json_out=False)
            assert run.rc == 0, run.stdout[-3000:]
            text = run.stdout + run.stderr
            assert "changed: [localhost]" in text
            outputs.append((token, text))
            secret = kget(local_env, "secret", namespace, "hf-secret")
            assert base64.b64decode(secret["data"]["hf_api_token"]).decode() == token
        for token, text in outputs:
            for form in (token, base64.b64encode(token.encode()).decode(), token[10:]):
                assert form not in text
    finally:
        delete_namespace(local_env, namespace)


# --------------------------------------------------------------------------- what fails, and how

def _model(**overrides):
    return dict({"name": "gemma-3-1b", "model": "google/gemma-3-1b-it", "host": "1b.example.com"}, **overrides)


# Bad input: tests/integration/test_preflight.py (and the unit tests of plugins/module_utils/_data_model.py).


def test_unschedulable_model_fails_with_the_scheduler_reason(local_env, tmp_path):
    """Two GPUs per pod on one-GPU nodes: the wait fails naming FailedScheduling and the autoscaler's refusal to
    grow gpupool for it, not a bare timeout."""
    namespace = new_namespace("site-sched")
    extra = {"infgw_models": [_model(gpus=2)], "vllm_model_wait_timeout": 10}
    try:
        run = playbook(local_env, tmp_path, "site.yml", namespace, "--tags", "vllm_model", extra=extra)
        assert run.rc != 0
        msg = run.failures()
        assert "vllm-gemma-3-1b: 0/1 replicas available" in msg
        # The scheduler's words depend on whether gpupool has nodes at the moment (Insufficient nvidia.com/gpu) or
        # is scaled to zero (didn't match Pod's node affinity/selector); the autoscaler's say why it does not help.
        assert re.search(r"cannot be scheduled \(FailedScheduling\): 0/\d+ nodes are available: ", msg), msg
        # one "Insufficient" per node pool that offers GPUs (a user's cluster may have more than gpupool)
        assert re.search(r"cluster autoscaler \(NotTriggerScaleUp\): pod didn't trigger scale-up: \d+ Insufficient "
                         r"nvidia.com/gpu", msg), msg
    finally:
        delete_namespace(local_env, namespace)


def test_chat_ui_through_the_gateway(local_env, tmp_path):
    """target gateway: HOST is the API hostname, resolved to the gateway address by hostAliases."""
    namespace = new_namespace("site-ui")
    extra = {"infgw_models": [dict(CPU_MODEL, host="tiny.example.com",
                                   lora_adapters=[{"name": "food-review", "path": "org/food-review-lora"},
                                                  {"name": "sql", "path": "/adapters/sql"}])],
             "infgw_chat_ui": {"enabled": True, "target": "gateway", "model": "tiny"}}
    try:
        run = playbook(local_env, tmp_path, "site.yml", namespace, "--tags", "vllm_model,gateway,chat_ui", extra=extra)
        assert run.rc == 0, run.failures()
        address = kget(local_env, "gateway", namespace, "vllm-xlb")["status"]["addresses"][0]["value"]
        pod = kget(local_env, "deployment", namespace, "gradio")["spec"]["template"]["spec"]
        assert pod["hostAliases"] == [{"ip": address, "hostnames": ["api.example.com"]}]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["HOST"] == "http://api.example.com"
        assert env["MODEL_ID"] == "example/tiny"
        server = kget(local_env, "deployment", namespace, "vllm-tiny")["spec"]["template"]["spec"]["containers"][0]
        assert server["args"] == ["--model=$(MODEL)", "--tensor-parallel-size=1", "--enable-lora", "--lora-modules",
                                  "food-review=org/food-review-lora", "sql=/adapters/sql"]
        assert "nvidia.com/gpu" not in server["resources"]["limits"]
        again = playbook(local_env, tmp_path, "site.yml", namespace, "--tags", "vllm_model,gateway,chat_ui",
                         extra=extra)
        assert again.stats["changed"] == 0, again.changed_tasks()
    finally:
        delete_namespace(local_env, namespace)


def test_redirect_and_tls_secret(local_env, tmp_path):
    """HTTP->HTTPS redirect binds the other routes to https; TLS from a Secret becomes certificateRefs."""
    namespace = new_namespace("site-tls")
    extra = {"infgw_models": [dict(CPU_MODEL, host="tiny.example.com")],
             "infgw_gateway": {"redirect_http_to_https": True, "tls": {"mode": "secret", "certificates": ["wildcard"]},
                               "class": "internal"}}
    try:
        local_env.kubectl("create", "namespace", namespace)
        # local-up's *.example.com pair: the local load balancer serves it, and site.yml's final wait probes through it
        local_env.kubectl("create", "secret", "tls", "wildcard", "-n", namespace,
                          "--cert", local_env.env["INFGW_LOCAL_TLS_CERT_FILE"],
                          "--key", local_env.env["INFGW_LOCAL_TLS_KEY_FILE"])
        run = playbook(local_env, tmp_path, "site.yml", namespace, "--tags", "vllm_model,gateway", extra=extra)
        assert run.rc == 0, run.failures()
        gw = kget(local_env, "gateway", namespace, "vllm-xlb")
        assert gw["spec"]["gatewayClassName"] == "gke-l7-rilb"
        https = [lst for lst in gw["spec"]["listeners"] if lst["name"] == "https"][0]
        assert https["tls"]["certificateRefs"] == [{"group": "", "kind": "Secret", "name": "wildcard"}]
        redirect = kget(local_env, "httproute", namespace, "http-to-https-redirect")
        assert redirect["spec"]["parentRefs"][0]["sectionName"] == "http"
        assert redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"]["scheme"] == "https"
        route = kget(local_env, "httproute", namespace, "gemma-host-based-routing")
        assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                                "name": "vllm-xlb", "sectionName": "https"}]
    finally:
        delete_namespace(local_env, namespace)


def test_removed_model_and_redirect_are_pruned(local_env, tmp_path):
    """What the data model no longer has goes: a removed model's Deployment, Service and health check, a disabled
    redirect route."""
    namespace = new_namespace("site-prune")
    two = {"infgw_models": [dict(CPU_MODEL, host="tiny.example.com"),
                            dict(CPU_MODEL, name="small", model="example/small", host="s.example.com")],
           "infgw_gateway": {"redirect_http_to_https": True}}
    one = {"infgw_models": [dict(CPU_MODEL, host="tiny.example.com")]}
    try:
        run = playbook(local_env, tmp_path, "site.yml", namespace, "--tags", "vllm_model,gateway", extra=two)
        assert run.rc == 0, run.failures()
        assert kget(local_env, "deployment", namespace, "vllm-small", check=False) is not None
        check = playbook(local_env, tmp_path, "site.yml", namespace, "--tags", "vllm_model,gateway", "--check",
                         extra=one)
        assert check.rc == 0, check.failures()
        would_delete = {text for _name, r in check.results() for text in r.get("pruned", [])}
        assert would_delete == {"Deployment %s/vllm-small" % namespace, "Service %s/vllm-small" % namespace,
                                "HealthCheckPolicy %s/vllm-small-hc" % namespace,
                                "HTTPRoute %s/http-to-https-redirect" % namespace}
        assert kget(local_env, "deployment", namespace, "vllm-small", check=False) is not None  # check mode
        run = playbook(local_env, tmp_path, "site.yml", namespace, "--tags", "vllm_model,gateway", extra=one)
        assert run.rc == 0, run.failures()
        for kind, name in (("deployment", "vllm-small"), ("service", "vllm-small"),
                           ("healthcheckpolicy", "vllm-small-hc"), ("httproute", "http-to-https-redirect")):
            assert kget(local_env, kind, namespace, name, check=False) is None, (kind, name)
        assert kget(local_env, "deployment", namespace, "vllm-tiny", check=False) is not None
        route = kget(local_env, "httproute", namespace, "gemma-host-based-routing")
        assert route["spec"]["hostnames"] == ["tiny.example.com"]
        assert "sectionName" not in route["spec"]["parentRefs"][0]
    finally:
        delete_namespace(local_env, namespace)


# --------------------------------------------------------------------------- manual replicas <-> autoscaling

class DeploymentWatch:
    """(spec.replicas, status.readyReplicas) of one Deployment at every change, from a watch in a thread."""

    def __init__(self, api, namespace, name):
        from kubernetes import client, watch
        self.apps = client.AppsV1Api(api)
        self.namespace, self.name = namespace, name
        self.seen = []
        self.watch = watch.Watch()
        current = self.apps.read_namespaced_deployment(name, namespace)
        self.seen.append((current.spec.replicas, current.status.ready_replicas or 0))
        self.resource_version = current.metadata.resource_version
        self.stopped = False
        import threading
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for event in self.watch.stream(self.apps.list_namespaced_deployment, self.namespace,
                                           field_selector="metadata.name=%s" % self.name,
                                           resource_version=self.resource_version, timeout_seconds=300):
                obj = event["object"]
                self.seen.append((obj.spec.replicas, obj.status.ready_replicas or 0))
        except Exception:  # the stream ends when stop() closes it
            if not self.stopped:
                raise

    def stop(self, settle=3.0):
        time.sleep(settle)  # the controllers (ReplicaSet, HPA) act right after the run
        self.stopped = True
        self.watch.stop()
        self.thread.join(10)
        return self.seen


def test_switching_between_manual_replicas_and_autoscaling_keeps_every_serving_pod(local_env, api, tmp_path):
    """spec.replicas goes from the collection to the HPA (and back) without the API server resetting it to 1: the
    Deployment's replicas and ready replicas never drop (Kubernetes' "Transferring ownership" of server-side
    apply)."""
    namespace = new_namespace("site-handover")
    manual = {"infgw_models": [dict(CPU_MODEL, host="tiny.example.com", replicas=3)]}
    autoscaled = {"infgw_models": [dict(CPU_MODEL, host="tiny.example.com", replicas=3,
                                        autoscaling={"enabled": True, "min": 2, "max": 3})]}
    tags = ("--tags", "vllm_model,hpa_metrics")
    try:
        run = playbook(local_env, tmp_path, "site.yml", namespace, *tags, extra=manual)
        assert run.rc == 0, run.failures()
        assert kget(local_env, "deployment", namespace, "vllm-tiny")["status"]["readyReplicas"] == 3
        for extra, hpa in ((autoscaled, True), (manual, False)):
            watch = DeploymentWatch(api, namespace, "vllm-tiny")
            run = playbook(local_env, tmp_path, "site.yml", namespace, *tags, extra=extra)
            seen = watch.stop()
            assert run.rc == 0, run.failures()
            assert all(replicas >= 3 and ready >= 3 for replicas, ready in seen), seen
            assert (kget(local_env, "hpa", namespace, "vllm-tiny", check=False) is not None) is hpa
        deployment = kget(local_env, "deployment", namespace, "vllm-tiny")
        fields = [m for m in deployment["metadata"]["managedFields"] if m["manager"] == FIELD_MANAGER
                  and m["operation"] == "Apply"]
        assert "f:replicas" in fields[0]["fieldsV1"]["f:spec"]  # manual again: the collection owns the field
    finally:
        delete_namespace(local_env, namespace)
