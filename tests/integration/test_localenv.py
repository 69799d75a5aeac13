"""The local environment does what the collection's tests rely on, against the real binaries."""

from __future__ import annotations

import json
import time

import pytest

from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.integration


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def gpu_deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
                    "containers": [{
                        "name": "vllm", "image": "vllm/vllm-openai:latest",
                        "resources": {"requests": {"nvidia.com/gpu": "1", "cpu": "1", "memory": "1Gi"},
                                      "limits": {"nvidia.com/gpu": "1"}},
                    }],
                },
            },
        },
    }


def test_api_server_ready_and_version_stamped(local_env, api):
    version = client.VersionApi(api).get_code()
    assert version.git_version == local_env.state["versions"]["K8S_VERSION"]
    out = json.loads(local_env.kubectl("version", "-o", "json").stdout)
    assert out["clientVersion"]["gitVersion"] == local_env.state["versions"]["K8S_VERSION"]
    assert out["serverVersion"]["minor"] == local_env.state["versions"]["K8S_VERSION"].split(".")[1]
    readyz = local_env.kubectl("get", "--raw", "/readyz").stdout
    assert readyz.strip() == "ok"


def assert_gpu_node_shape(node):
    """A g2-standard-8 kwok node of gpupool: one nvidia.com/gpu, 8 CPUs, 32Gi, the GKE labels, Ready."""
    assert node.status.capacity["nvidia.com/gpu"] == "1"
    assert node.status.allocatable["cpu"] == "8"
    assert node.status.allocatable["memory"] == "32Gi"
    assert node.metadata.labels["cloud.google.com/gke-accelerator"] == "nvidia-l4"
    assert node.metadata.labels["topology.kubernetes.io/zone"].startswith("us-central1-")
    ready = {c.type: c.status for c in node.status.conditions}["Ready"]
    assert ready == "True", node.metadata.name


def test_gpu_scheduling_real_scheduler(api, namespace, gpu_pool):
    """gpupool (autoscaling 0..5) grows for one GPU replica, which becomes Available on a node of the right shape;
    six replicas leave one Pending for nvidia.com/gpu, and the autoscaler says the pool is at its maximum."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(namespace, gpu_deployment("one-gpu", 1))

    def available():
        d = apps.read_namespaced_deployment("one-gpu", namespace)
        return (d.status.available_replicas or 0) == 1
    wait_until(available, 90, "Deployment one-gpu Available")
    pod = core.list_namespaced_pod(namespace, label_selector="app=one-gpu").items[0]
    assert pod.status.phase == "Running"
    assert pod.spec.node_name.startswith("gke-local-gpupool-")
    assert_gpu_node_shape(core.read_node(pod.spec.node_name))
    cpu_nodes = core.list_node(label_selector="cloud.google.com/gke-nodepool=default-pool").items
    assert cpu_nodes and all("nvidia.com/gpu" not in n.status.capacity for n in cpu_nodes)

    apps.patch_namespaced_deployment("one-gpu", namespace, {"spec": {"replicas": 6}})

    def one_pending_for_gpu():
        pods = core.list_namespaced_pod(namespace, label_selector="app=one-gpu").items
        pending = [p for p in pods if p.status.phase == "Pending"]
        running = [p for p in pods if p.status.phase == "Running"]
        if len(pods) != 6 or len(pending) != 1 or len(running) != 5:
            return None
        events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pending[0].metadata.name}").items
        reasons = {e.reason for e in events}
        if not {"FailedScheduling", "NotTriggerScaleUp"} <= reasons:
            return None
        return [e.message for e in events]
    messages = wait_until(one_pending_for_gpu, 120, "one Pending pod with FailedScheduling and NotTriggerScaleUp events")
    assert any("Insufficient nvidia.com/gpu" in m for m in messages), messages
    assert any("max node group size reached" in m for m in messages), messages
    gpu_nodes = core.list_node(label_selector="cloud.google.com/gke-nodepool=gpupool").items
    assert len(gpu_nodes) == 5
    for node in gpu_nodes:
        assert_gpu_node_shape(node)

    apps.delete_namespaced_deployment("one-gpu", namespace)
    wait_until(lambda: not core.list_namespaced_pod(namespace, label_selector="app=one-gpu").items, 60,
               "GPU pods gone (they hold cluster-wide GPU capacity)")


def test_helm_pull_and_install_inferencepool_chart_from_local_registry(local_env, api, namespace, tmp_path):
    local_env.install_gie_crds("v1.1.0")
    chart = f"oci://{local_env.registry}/gateway-api-inference-extension/charts/inferencepool"
    helm = f"{local_env.bin_dir}/helm"
    import subprocess

    env = dict(local_env.env, HELM_CACHE_HOME=str(tmp_path / "cache"), HELM_CONFIG_HOME=str(tmp_path / "config"))
    pulled = subprocess.run([helm, "pull", chart, "--version", "v1.1.0", "--plain-http", "-d", str(tmp_path)],
                            capture_output=True, text=True, env=env, check=False)
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "inferencepool-v1.1.0.tgz").exists()

    installed = subprocess.run([helm, "install", "vllm-llama3-8b-instruct", chart, "--version", "v1.1.0",
                                "--plain-http", "-n", namespace, "--set", "provider.name=gke",
                                "--set", "inferencePool.modelServers.matchLabels.app=vllm-llama3-8b-instruct",
                                "-o", "json"], capture_output=True, text=True, env=env, check=False)
    assert installed.returncode == 0, installed.stderr
    release = json.loads(installed.stdout)
    assert release["info"]["status"] == "deployed"
    assert release["chart"]["metadata"]["version"] == "v1.1.0"

    custom = client.CustomObjectsApi(api)
    pool = custom.get_namespaced_custom_object("inference.networking.k8s.io", "v1", namespace, "inferencepools",
                                               "vllm-llama3-8b-instruct")
    assert pool["spec"]["selector"]["matchLabels"] == {"app": "vllm-llama3-8b-instruct"}
    # provider.name=gke renders GKE's own policy objects; the API server accepted them against the GKE CRDs.
    hcp = custom.list_namespaced_custom_object("networking.gke.io", "v1", namespace, "healthcheckpolicies")["items"]
    bp = custom.list_namespaced_custom_object("networking.gke.io", "v1", namespace, "gcpbackendpolicies")["items"]
    assert hcp and bp
    epp = client.AppsV1Api(api).read_namespaced_deployment("vllm-llama3-8b-instruct-epp", namespace)
    assert epp.spec.template.spec.containers[0].args
    subprocess.run([helm, "uninstall", "vllm-llama3-8b-instruct", "-n", namespace], check=True, env=env,
                   capture_output=True)


def gateway(name: str, gateway_class: str = "gke-l7-regional-external-managed") -> dict:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {"gatewayClassName": gateway_class,
                 "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
    }


def test_gateway_programmed_with_address(api, namespace, local_env):
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "gateways",
                                           gateway("vllm-xlb"))

    def programmed():
        gw = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "gateways",
                                                 "vllm-xlb")
        conds = {c["type"]: c for c in gw.get("status", {}).get("conditions", [])}
        ok = conds.get("Programmed", {}).get("status") == "True"
        return gw if ok and gw["status"].get("addresses") else None
    gw = wait_until(programmed, 30, "Gateway Programmed")
    assert gw["status"]["addresses"][0]["value"].startswith(local_env.state["gateway_address_base"])
    conds = {c["type"]: c for c in gw["status"]["conditions"]}
    assert conds["Accepted"]["status"] == "True"
    assert conds["Programmed"]["observedGeneration"] == gw["metadata"]["generation"]


def test_route_to_missing_service_is_backend_not_found(api, namespace):
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "gateways",
                                           gateway("vllm-xlb"))
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "to-nowhere"},
        "spec": {"parentRefs": [{"name": "vllm-xlb"}],
                 "rules": [{"backendRefs": [{"name": "vllm-gemma-3-9b", "port": 8000}]}]},
    }
    custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "httproutes", route)

    def resolved_refs():
        r = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "httproutes",
                                                "to-nowhere")
        for parent in r.get("status", {}).get("parents", []):
            if parent["parentRef"]["name"] == "vllm-xlb":
                return {c["type"]: c for c in parent["conditions"]}.get("ResolvedRefs")
        return None
    cond = wait_until(resolved_refs, 30, "HTTPRoute parent status")
    assert cond["status"] == "False"
    assert cond["reason"] == "BackendNotFound"
    assert "vllm-gemma-3-9b" in cond["message"]


def test_gke_gateway_classes_and_crds_installed(api):
    custom = client.CustomObjectsApi(api)
    classes = custom.list_cluster_custom_object("gateway.networking.k8s.io", "v1", "gatewayclasses")["items"]
    names = {c["metadata"]["name"]: c["spec"]["controllerName"] for c in classes}
    for expected in ("gke-l7-regional-external-managed", "gke-l7-rilb", "gke-l7-global-external-managed",
                     "gke-l7-gxlb"):
        assert names[expected] == "networking.gke.io/gateway"
    ext = client.ApiextensionsV1Api(api)
    crds = {c.metadata.name for c in ext.list_custom_resource_definition().items}
    for expected in ("httproutes.gateway.networking.k8s.io", "healthcheckpolicies.networking.gke.io",
                     "gcpbackendpolicies.networking.gke.io", "podmonitorings.monitoring.googleapis.com",
                     "clusterpodmonitorings.monitoring.googleapis.com"):
        assert expected in crds


def test_charts_of_both_profiles_in_registry(local_env):
    import urllib.request

    for chart in ("inferencepool", "body-based-routing"):
        url = f"http://{local_env.registry}/v2/gateway-api-inference-extension/charts/{chart}/tags/list"
        with urllib.request.urlopen(url, timeout=5) as resp:
            tags = json.loads(resp.read())["tags"]
        assert {"v0.4.0", "v1.1.0"} <= set(tags), (chart, tags)


def test_api_server_validates_against_crd_schemas(api):
    """An HTTPRoute with an invalid enum value is rejected by the real CRD schema."""
    custom = client.CustomObjectsApi(api)
    bad = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "bad"},
           "spec": {"rules": [{"matches": [{"path": {"type": "Bogus", "value": "/"}}]}]}}
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", "default", "httproutes", bad)
    assert err.value.status == 422


def test_gie_v1_1_0_crds_applied_over_v0_4_0_keep_existing_objects(local_env, api, namespace):
    """Both releases define inferencepools.inference.networking.x-k8s.io: the upgrade path must not lose pools.

    Found here: v1.1.0's copy of that CRD serves the same v1alpha2 schema (descriptions differ), so
    server-side apply replaces it in place; v1alpha2 pools and InferenceModels (a CRD v1.1.0 no longer
    ships, so applying v1.1.0 never deletes it) survive, and the v1 pool is a separate CRD beside them.
    """
    local_env.install_gie_crds("v0.4.0")
    custom = client.CustomObjectsApi(api)
    group = "inference.networking.x-k8s.io"
    custom.create_namespaced_custom_object(group, "v1alpha2", namespace, "inferencepools", {
        "apiVersion": f"{group}/v1alpha2", "kind": "InferencePool", "metadata": {"name": "vllm-gemma-3-1b"},
        "spec": {"targetPortNumber": 8000, "selector": {"app": "vllm-gemma-3-1b"},
                 "extensionRef": {"name": "vllm-gemma-3-1b-epp"}}})
    custom.create_namespaced_custom_object(group, "v1alpha2", namespace, "inferencemodels", {
        "apiVersion": f"{group}/v1alpha2", "kind": "InferenceModel", "metadata": {"name": "gemma-3-1b"},
        "spec": {"modelName": "google/gemma-3-1b-it", "criticality": "Critical",
                 "poolRef": {"name": "vllm-gemma-3-1b"}}})

    names = local_env.install_gie_crds("v1.1.0")
    assert "inferencepools.inference.networking.k8s.io" in names

    pool = custom.get_namespaced_custom_object(group, "v1alpha2", namespace, "inferencepools", "vllm-gemma-3-1b")
    assert pool["spec"]["targetPortNumber"] == 8000
    assert pool["spec"]["extensionRef"]["failureMode"] == "FailClose"  # v0.4.0 default, kept
    model = custom.get_namespaced_custom_object(group, "v1alpha2", namespace, "inferencemodels", "gemma-3-1b")
    assert model["spec"]["criticality"] == "Critical"
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(f"inferencepools.{group}")
    assert [v.name for v in crd.spec.versions] == ["v1alpha2"]
    assert crd.metadata.annotations["inference.networking.k8s.io/bundle-version"] == "v1.1.0"
