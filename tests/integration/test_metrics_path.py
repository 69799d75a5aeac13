# -*- coding: utf-8 -*-
# Integration tests of the local metrics path: the GCP fake's Managed Prometheus collector and Cloud Monitoring,
# the custom-metrics adapter stand-in (hack/metrics_adapter) run by the pod runner for the adapter's image, the
# kube-apiserver aggregation layer and the real HPA controller.
#
# The adapter comes from the hpa_metrics role with the local inventory (two replicas, GMP target status on), as
# site.yml applies it. Metric values are written through the fake's Monitoring API (timeSeries.create) where a
# test needs them exact; scrape targets are real processes (the simulator for the vLLM image).
from __future__ import annotations

import datetime
import json
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hack" / "localcluster"))
import podnet  # noqa: E402  pylint: disable=wrong-import-position,import-error

VENV_BIN = REPO / ".venv" / "bin"
INVENTORY = REPO / "inventories" / "local" / "hosts.yml"
METRIC = "prometheus.googleapis.com|inference_pool_average_kv_cache_utilization|gauge"
METRIC_TYPE = METRIC.replace("|", "/")
ADAPTER_NS = "custom-metrics"
APISERVICES = ("v1beta1.external.metrics.k8s.io", "v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io")
SIM_IMAGE = "vllm/vllm-openai:v0.8.5.post1"


def kubectl_json(local_env, *args):
    return json.loads(local_env.kubectl(*args, "-o", "json").stdout)


def wait_until(what, check, timeout, interval=1.0):
    """check() until it returns a truthy value; fails naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not after {timeout}s (last: {value!r})"
        time.sleep(interval)


def playbook(local_env, tmp_path, play, *args, timeout=900, json_out=False):
    path = tmp_path / f"play-{uuid.uuid4().hex[:8]}.yml"
    path.write_text(yaml.safe_dump(play) if isinstance(play, list) else play)
    env = dict(local_env.env, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(REPO / ".local" / "collections"),
               ANSIBLE_PYTHON_INTERPRETER=str(VENV_BIN / "python"))
    if json_out:
        env.update(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY), str(path), *args],
                          capture_output=True, text=True, env=env, cwd=str(REPO), timeout=timeout, check=False)


def write_metric(local_env, pool, value, namespace):
    """One point of the EPP's pool gauge, written to the fake's Cloud Monitoring as GMP would (a second ago: the
    adapter's query window ends at the current second)."""
    now = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    body = {"timeSeries": [{
        "metric": {"type": METRIC_TYPE, "labels": {"name": pool}},
        "resource": {"type": "prometheus_target", "labels": {
            "project_id": "local-project", "location": "us-central1", "cluster": "local-cluster",
            "namespace": namespace, "job": pool, "instance": f"{pool}-epp:metrics"}},
        "metricKind": "GAUGE", "points": [{"interval": {"endTime": now}, "value": {"doubleValue": value}}]}]}
    resp = local_env.gcp("POST", "/monitoring/v3/projects/local-project/timeSeries", body)
    assert resp.status_code == 200, resp.text


def adapter_pods(local_env):
    pods = kubectl_json(local_env, "get", "pods", "-n", ADAPTER_NS, "-l", "k8s-app=custom-metrics-stackdriver-adapter")
    return pods["items"]


def ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


@pytest.fixture(scope="module")
def adapter(local_env, tmp_path_factory):
    """The adapter as site.yml's hpa_metrics step applies it on the local inventory, waited for by the role."""
    tmp = tmp_path_factory.mktemp("adapter")
    namespace = f"metrics-{uuid.uuid4().hex[:6]}"
    local_env.kubectl("create", "namespace", namespace)
    started = time.monotonic()
    run = playbook(local_env, tmp, [{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"infgw_namespace": namespace, "infgw_autoscaling_enabled": False, "infgw_require_hf_token": False,
                 "hpa_metrics_adapter_iam": {"enabled": False}},
        "roles": ["gke_ai.inference_gateway.hpa_metrics"]}])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    print(f"\n[metrics] hpa_metrics applied the adapter and waited for it: {time.monotonic() - started:.1f}s")
    for name in APISERVICES:
        conditions = kubectl_json(local_env, "get", "apiservice", name)["status"]["conditions"]
        available = [c for c in conditions if c["type"] == "Available"]
        assert available and available[0]["status"] == "True", (name, conditions)
    yield namespace
    local_env.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_adapter_runs_as_two_real_processes(local_env, adapter):
    pods = adapter_pods(local_env)
    assert len(pods) == 2 and all(ready(p) for p in pods), [p["status"] for p in pods]
    env_id = local_env.state["env_id"]
    for pod in pods:
        pids = podnet.pids_in_netns(podnet.pod_netns(env_id, pod["metadata"]["uid"]))
        commands = [Path(f"/proc/{pid}/exe").resolve().name for pid in pids]
        assert "metrics-adapter" in commands, (pod["metadata"]["name"], commands)


def test_external_metric_reaches_the_hpa(local_env, adapter, namespace):
    """A value in Cloud Monitoring -> the adapter's Monitoring calls -> external.metrics.k8s.io -> the HPA scales."""
    pool = f"vllm-{namespace}"
    local_env.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "model"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "model"}},
                  "template": {"metadata": {"labels": {"app": "model"}},
                               "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "model"},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "model"},
                  "minReplicas": 1, "maxReplicas": 3,
                  "metrics": [{"type": "External", "external": {
                      "metric": {"name": METRIC, "selector": {"matchLabels": {"metric.labels.name": pool}}},
                      "target": {"type": "Value", "value": "500m"}}}],
                  "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}}]}))
    write_metric(local_env, pool, 0.9, namespace)
    raw = local_env.kubectl("get", "--raw", f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/"
                            f"{METRIC.replace('|', '%7C')}?labelSelector=metric.labels.name%3D{pool}").stdout
    (item,) = json.loads(raw)["items"]
    assert item["value"] == "900m" and item["metricLabels"]["resource.type"] == "prometheus_target", item
    wait_until("HPA scaled the Deployment up on 900m/500m",
               lambda: kubectl_json(local_env, "get", "deployment", "model", "-n", namespace)["spec"]["replicas"] >= 2,
               timeout=60)
    shown = local_env.kubectl("get", "hpa", "model", "-n", namespace).stdout
    assert "900m/500m" in shown and "<unknown>" not in shown, shown
    write_metric(local_env, pool, 0.1, namespace)
    wait_until("HPA scaled the Deployment back to 1 on 100m/500m",
               lambda: kubectl_json(local_env, "get", "deployment", "model", "-n", namespace)["spec"]["replicas"] == 1,
               timeout=60)
    events = local_env.kubectl("get", "events", "-n", namespace, "--field-selector",
                               "involvedObject.kind=HorizontalPodAutoscaler").stdout
    assert "SuccessfulRescale" in events and "above target" in events and "below target" in events, events


def test_discovery_and_namespace_deletion_while_an_adapter_restarts(local_env, adapter):
    """Kill one adapter process: discovery stays complete and a namespace deletion finishes while its pod restarts."""
    pods = adapter_pods(local_env)
    victim = pods[0]
    restarts = victim["status"]["containerStatuses"][0].get("restartCount", 0)
    pids = [pid for pid in podnet.pids_in_netns(podnet.pod_netns(local_env.state["env_id"], victim["metadata"]["uid"]))
            if Path(f"/proc/{pid}/exe").resolve().name == "metrics-adapter"]
    assert pids, f"no metrics-adapter process in pod {victim['metadata']['name']}"
    for pid in pids:
        podnet.os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    name = victim["metadata"]["name"]
    doomed = f"doomed-{uuid.uuid4().hex[:6]}"
    local_env.kubectl("create", "namespace", doomed)
    local_env.kubectl("create", "configmap", "c", "-n", doomed, "--from-literal=a=b")
    local_env.kubectl("delete", "namespace", doomed, "--wait=false")
    checks, gone_at, back_at = 0, None, None
    while back_at is None or gone_at is None:
        pod = kubectl_json(local_env, "get", "pod", name, "-n", ADAPTER_NS)
        status = pod["status"]["containerStatuses"][0]
        if back_at is None and status.get("restartCount", 0) > restarts and ready(pod):
            back_at = time.monotonic() - killed
        # A stale or failed group makes both fail ("unable to retrieve the complete list of server APIs").
        found = local_env.kubectl("api-resources", check=False)
        assert found.returncode == 0 and not found.stderr, found.stderr
        versions = local_env.kubectl("api-versions", check=False)
        assert versions.returncode == 0 and "external.metrics.k8s.io/v1beta1" in versions.stdout.split(), \
            versions.stderr
        checks += 1
        if gone_at is None and local_env.kubectl("get", "namespace", doomed, check=False).returncode != 0:
            gone_at = time.monotonic() - killed
        assert time.monotonic() - killed < 180, f"adapter pod back after {back_at}s, namespace gone after {gone_at}s"
        time.sleep(1)
    print(f"\n[metrics] adapter {name} restarted and Ready after {back_at:.1f}s; namespace {doomed} deleted after "
          f"{gone_at:.1f}s; {checks} complete discoveries meanwhile")
    # With one adapter the namespace controller's discovery fails until the adapter is back (measured: the
    # namespace went with it, after 50 s): here the other replica served it.
    assert gone_at < back_at, (gone_at, back_at)


def test_scrape_targets_and_their_failures_in_status(local_env, adapter, namespace, tmp_path):
    """GMP's collector scrapes a real pod; a wrong port and a missing secret show as failing targets."""
    local_env.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sim"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "sim"}},
                  "template": {"metadata": {"labels": {"app": "sim"}}, "spec": {"containers": [{
                      "name": "vllm", "image": SIM_IMAGE, "args": ["--model=tiny", "--port=8000"],
                      "ports": [{"name": "http", "containerPort": 8000}],
                      "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}, "periodSeconds": 1}}]}}}}]
        + [{"apiVersion": "monitoring.googleapis.com/v1", "kind": "PodMonitoring", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": "sim"}}, "endpoints": [dict(
                {"port": port, "interval": "5s"},
                **({"authorization": {"credentials": {"secret": {"name": "absent", "key": "token"}}}} if auth else {}))]}}
           for name, port, auth in (("good", "http", False), ("wrong-port", 8001, False), ("no-secret", "http", True),
                                    ("no-such-port", "metricz", False))]}))
    local_env.kubectl("rollout", "status", "deployment/sim", "-n", namespace, "--timeout=120s")

    def statuses():
        out = {}
        for pm in kubectl_json(local_env, "get", "podmonitorings", "-n", namespace)["items"]:
            out[pm["metadata"]["name"]] = pm.get("status", {}).get("endpointStatuses")
        # A scrape before the simulator listens fails once (GMP scrapes pods that have an IP): wait for "good".
        ok = all(out.get(n) for n in ("good", "wrong-port", "no-secret")) and out["good"][0]["unhealthyTargets"] == 0
        return out if ok else None

    found = wait_until("target status of every PodMonitoring, good up", statuses, timeout=60)
    (good,) = found["good"]
    assert (good["activeTargets"], good["unhealthyTargets"]) == (1, 0), good
    (port,) = found["wrong-port"]
    assert port["unhealthyTargets"] == 1
    assert "connect: connection refused" in port["sampleGroups"][0]["sampleTargets"][0]["lastError"]
    (secret,) = found["no-secret"]
    assert f"secret {namespace}/absent not found or forbidden" in secret["sampleGroups"][0]["sampleTargets"][0]["lastError"]
    assert not found["no-such-port"]  # GMP: a port name no container has gives no target at all

    # The scraped samples are in Cloud Monitoring under GMP's names and labels.
    now = datetime.datetime.now(datetime.timezone.utc)
    query = {"filter": f'metric.type = "prometheus.googleapis.com/vllm:num_requests_running/gauge" AND '
                       f'resource.labels.namespace = "{namespace}"',
             "interval.startTime": (now - datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "interval.endTime": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    resp = local_env.gcp("GET", "/monitoring/v3/projects/local-project/timeSeries?" + urllib.parse.urlencode(query))
    assert resp.status_code == 200, resp.text
    (series,) = resp.json()["timeSeries"]
    assert series["resource"]["labels"]["job"] == "good"
    assert series["resource"]["labels"]["instance"].endswith(":http")

    # The status report names the failing targets and their errors.
    run = playbook(local_env, tmp_path, "- import_playbook: %s\n" % (REPO / "playbooks" / "status.yml"),
                   "-e", f"infgw_namespace={namespace}", json_out=True)
    assert run.returncode == 0, run.stdout[-4000:]
    (report,) = [task["hosts"]["localhost"]["msg"] for play in json.loads(run.stdout)["plays"]
                 for task in play["tasks"] if task["task"]["name"] == "Report"]
    lines = [line.strip() for line in report]
    assert f"PodMonitoring/{namespace}/good/http: 1/1 target(s) up" in lines, report
    (wrong,) = [line for line in lines if line.startswith(f"PodMonitoring/{namespace}/wrong-port/8001: 0/1 target(s) up")]
    assert wrong.endswith("connect: connection refused"), wrong
    (missing,) = [line for line in lines if line.startswith(f"PodMonitoring/{namespace}/no-secret/http: 0/1")]
    assert f"secret {namespace}/absent not found or forbidden" in missing, missing
    assert "PodMonitoring no-such-port: no target (no selected pod exposes the endpoint port)  <-- not scraped" in lines
