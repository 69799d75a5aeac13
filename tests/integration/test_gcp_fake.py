"""The GCP fake inside the local environment: auth, node pools as kwok nodes, the cluster autoscaler."""

from __future__ import annotations

import time
import uuid

import pytest
from kubernetes import client

pytestmark = pytest.mark.integration

POOLS = "/container/v1/projects/local-project/locations/us-central1/clusters/local-cluster/nodePools"


def wait_until(predicate, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(name="pool_name")
def fixture_pool_name(local_env):
    """A unique node pool name; the pool (and so its nodes) is deleted after the test."""
    name = f"t-{uuid.uuid4().hex[:6]}"
    yield name
    if local_env.gcp("GET", f"{POOLS}/{name}").status_code == 200:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait out an operation still running on it
            resp = local_env.gcp("DELETE", f"{POOLS}/{name}")
            if resp.status_code == 200:
                local_env.gcp_wait(resp.json())
                break
            time.sleep(0.5)
    local_env.wait_nodes(name, 0)


def node_pool(name, **extra):
    pool = {"name": name, "initialNodeCount": 1, "locations": ["us-central1-a", "us-central1-b"],
            "config": {"machineType": "g2-standard-24", "labels": {"team": "ml"},
                       "taints": [{"key": "dedicated", "value": "ml", "effect": "NO_SCHEDULE"}],
                       "accelerators": [{"acceleratorType": "nvidia-l4", "acceleratorCount": "2",
                                         "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]}}
    pool.update(extra)
    return {"nodePool": pool}


def events(api, namespace, pod, reason):
    items = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={pod},reason={reason}").items
    return [e.message for e in items]


def gpu_pod(name, pool, gpus=1):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeSelector": {"cloud.google.com/gke-nodepool": pool},
                     "containers": [{"name": "vllm", "image": "vllm/vllm-openai:latest",
                                     "resources": {"requests": {"nvidia.com/gpu": str(gpus), "cpu": "1"},
                                                   "limits": {"nvidia.com/gpu": str(gpus)}}}]}}


def test_fake_reachable_with_the_environment_settings(local_env):
    env = local_env.gcp_env
    assert env["INFGW_GCP_API_ENDPOINT"].endswith("/{service}/")
    env_sh = local_env.kubeconfig.rsplit("/", 1)[0] + "/env.sh"
    with open(env_sh, encoding="utf-8") as f:
        text = f.read()
    for key, value in env.items():
        assert f"export {key}='{value}'" in text, key
    resp = local_env.gcp("GET", POOLS)
    assert resp.status_code == 200, resp.text
    assert "default-pool" in [p["name"] for p in resp.json()["nodePools"]]
    project = local_env.gcp("GET", "/cloudresourcemanager/v1/projects/local-project").json()
    assert project["projectNumber"] == "123456789012"


def test_token_required(local_env):
    for token in ("", "not-the-token"):
        resp = local_env.gcp("GET", POOLS, token=token)
        assert resp.status_code == 401
        assert resp.json()["error"]["status"] == "UNAUTHENTICATED"


def test_service_account_file_gets_a_token(local_env):
    import google.auth.transport.requests
    from google.oauth2 import service_account

    creds = service_account.Credentials.from_service_account_file(
        local_env.gcp_env["INFGW_LOCAL_GCP_SERVICE_ACCOUNT_FILE"],
        scopes=["https://www.googleapis.com/auth/cloud-platform"])
    creds.refresh(google.auth.transport.requests.Request())
    assert creds.token == local_env.state["gcp_token"]
    session = google.auth.transport.requests.AuthorizedSession(creds)
    resp = session.get(local_env.gcp_url + POOLS, timeout=30)
    assert resp.status_code == 200, resp.text


def test_node_pool_create_resize_delete_as_kwok_nodes(local_env, pool_name):
    resp = local_env.gcp("POST", POOLS, node_pool(pool_name))
    assert resp.status_code == 200, resp.text
    op = local_env.gcp_wait(resp.json())
    assert op["operationType"] == "CREATE_NODE_POOL"
    nodes = local_env.wait_nodes(pool_name, 2)  # one per zone
    for node in nodes:
        labels = node["metadata"]["labels"]
        assert labels["cloud.google.com/gke-nodepool"] == pool_name
        assert labels["cloud.google.com/gke-accelerator"] == "nvidia-l4"
        assert labels["node.kubernetes.io/instance-type"] == "g2-standard-24"
        assert labels["team"] == "ml"
        assert node["status"]["capacity"]["nvidia.com/gpu"] == "2"
        assert node["status"]["allocatable"]["cpu"] == "24"
        assert {"key": "dedicated", "value": "ml", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert sorted(n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes) == [
        "us-central1-a", "us-central1-b"]
    assert local_env.gcp("GET", f"{POOLS}/{pool_name}").json()["status"] == "RUNNING"

    resp = local_env.gcp("POST", f"{POOLS}/{pool_name}:setSize", {"nodeCount": 2})
    assert resp.status_code == 200, resp.text
    local_env.gcp_wait(resp.json())
    local_env.wait_nodes(pool_name, 4)

    etag = local_env.gcp("GET", f"{POOLS}/{pool_name}").json()["etag"]
    resp = local_env.gcp("PUT", f"{POOLS}/{pool_name}", {"labels": {"labels": {"team": "infer"}},
                                                         "taints": {"taints": []}, "etag": etag})
    assert resp.status_code == 200, resp.text
    local_env.gcp_wait(resp.json())
    for node in local_env.wait_nodes(pool_name, 4):
        assert node["metadata"]["labels"]["team"] == "infer"
        assert not [t for t in node["spec"].get("taints", []) if t["key"] == "dedicated"]

    resp = local_env.gcp("POST", f"{POOLS}/{pool_name}:setSize", {"nodeCount": 0})
    local_env.gcp_wait(resp.json())
    local_env.wait_nodes(pool_name, 0)
    resp = local_env.gcp("DELETE", f"{POOLS}/{pool_name}")
    assert local_env.gcp_wait(resp.json())["operationType"] == "DELETE_NODE_POOL"
    assert local_env.gcp("GET", f"{POOLS}/{pool_name}").status_code == 404


def test_unknown_machine_type_is_400(local_env, pool_name):
    resp = local_env.gcp("POST", POOLS, node_pool(pool_name, config={"machineType": "g2-enormous-1"}))
    assert resp.status_code == 400
    assert 'Machine type "g2-enormous-1" does not exist' in resp.json()["error"]["message"]


def test_autoscaler_scale_up_cap_and_idle_scale_down(local_env, api, namespace, pool_name):
    core = client.CoreV1Api(api)
    autoscaling = {"enabled": True, "totalMinNodeCount": 0, "totalMaxNodeCount": 1}
    resp = local_env.gcp("POST", POOLS, node_pool(pool_name, initialNodeCount=0, autoscaling=autoscaling,
                                                  config={"machineType": "g2-standard-8"}))
    assert resp.status_code == 200, resp.text
    local_env.gcp_wait(resp.json())
    local_env.wait_nodes(pool_name, 0)

    core.create_namespaced_pod(namespace, gpu_pod("first", pool_name))
    wait_until(lambda: events(api, namespace, "first", "TriggeredScaleUp"), 30, "TriggeredScaleUp on pod first")
    assert events(api, namespace, "first", "TriggeredScaleUp") == [
        f"pod triggered scale-up: [{{{pool_name} 0->1 (max: 1)}}]"]
    assert any("Insufficient nvidia.com/gpu" in m or "didn't match" in m
               for m in events(api, namespace, "first", "FailedScheduling"))
    local_env.wait_nodes(pool_name, 1)
    pod = wait_until(lambda: (p := core.read_namespaced_pod("first", namespace)).status.phase == "Running" and p,
                     60, "pod first Running on the new node")
    assert pod.spec.node_name == f"gke-local-{pool_name}-0"

    # The pool is at its maximum: the next GPU pod cannot trigger a scale-up.
    core.create_namespaced_pod(namespace, gpu_pod("second", pool_name))
    messages = wait_until(lambda: events(api, namespace, "second", "NotTriggerScaleUp"), 30,
                          "NotTriggerScaleUp on pod second")
    # (other autoscaled pools of the environment, such as site.yml's gpupool, add "N node(s) didn't match ...")
    assert len(messages) == 1 and messages[0].startswith("pod didn't trigger scale-up: ")
    assert "1 max node group size reached" in messages[0].split(": ", 1)[1].split(", ")
    assert core.read_namespaced_pod("second", namespace).status.phase == "Pending"

    # Idle nodes go back down to the minimum (0) after scale_down_idle_seconds.
    assert local_env.gcp("POST", "/_fake/config", {"autoscaler": {"scale_down_idle_seconds": 2}}).status_code == 200
    try:
        for name in ("first", "second"):
            core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        wait_until(lambda: not core.list_namespaced_pod(namespace).items, 60, "pods gone")
        local_env.wait_nodes(pool_name, 0, timeout=30)
    finally:
        local_env.gcp("POST", "/_fake/config", {"autoscaler": {"scale_down_idle_seconds": 60}})
    state = local_env.gcp("GET", "/_fake/state").json()
    full = f"projects/local-project/locations/us-central1/clusters/local-cluster/nodePools/{pool_name}"
    assert state["pool_sizes"][full] == 0
