"""The GKE status simulator (hack/gke_sim, started by local-up) writes GKE-like status on a real API server."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.integration

GW = ("gateway.networking.k8s.io", "v1")
GKE = ("networking.gke.io", "v1")
POOL = ("inference.networking.k8s.io", "v1")
GIE_VERSION = "v1.1.0"
CONTROLLER = "networking.gke.io/gateway"
NEVER_PROGRAM = "gke-sim.gke-ai.dev/never-program"
PROGRAM_DELAY = "gke-sim.gke-ai.dev/program-delay"


@pytest.fixture
def custom(api):
    return client.CustomObjectsApi(api)


@pytest.fixture
def ns(namespace):
    """conftest's fresh namespace, under the short name these tests use."""
    return namespace


def wait_until(predicate, what: str, timeout: float = 30, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def create(custom, group_version, ns, plural, body):
    return custom.create_namespaced_custom_object(*group_version, ns, plural, body)


def get(custom, group_version, ns, plural, name):
    return custom.get_namespaced_custom_object(*group_version, ns, plural, name)


def wait_for(fetch, ctype: str, status: str | None = None, what: str = "") -> dict:
    """Poll fetch() (a conditions dict, or None) until condition `ctype` is present, with `status` if given."""
    def check():
        conds = fetch() or {}
        found = conds.get(ctype)
        return conds if found and (status is None or found["status"] == status) else None
    return wait_until(check, what or f"{ctype}={status or 'any status'}")


def conditions(obj: dict) -> dict:
    """Conditions by type, of an object (status.conditions) or of a listener/parent entry (conditions)."""
    listed = obj.get("status", {}).get("conditions") if "metadata" in obj else obj.get("conditions")
    return {c["type"]: c for c in listed or []}


def gateway(name, annotations=None, listeners=None):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"gatewayClassName": "gke-l7-regional-external-managed",
                     "listeners": listeners or [{"name": "http", "protocol": "HTTP", "port": 80}]}}


def route(name, backend, hostnames=None, parent="gw"):
    spec = {"parentRefs": [{"name": parent}], "rules": [{"backendRefs": [backend]}]}
    if hostnames:
        spec["hostnames"] = hostnames
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": name},
            "spec": spec}


def service(api, ns, name, port):
    client.CoreV1Api(api).create_namespaced_service(ns, {
        "metadata": {"name": name}, "spec": {"selector": {"app": name}, "ports": [{"port": port}]}})


def route_parent(custom, ns, name, gateway_name="gw") -> dict | None:
    """Conditions of the simulator's status.parents entry for the Gateway, None while there is none."""
    r = get(custom, GW, ns, "httproutes", name)
    for entry in r.get("status", {}).get("parents", []):
        if entry["parentRef"]["name"] == gateway_name and entry["controllerName"] == CONTROLLER:
            return conditions(entry)
    return None


def seconds(timestamp: str) -> float:
    return datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").timestamp()


def test_gateway_accepted_then_programmed_with_address_after_delay(custom, ns, local_env):
    create(custom, GW, ns, "gateways", gateway("gw", annotations={PROGRAM_DELAY: "3"}))

    def gateway_conditions():
        return conditions(get(custom, GW, ns, "gateways", "gw"))
    early = wait_for(gateway_conditions, "Accepted", "True")
    assert (early["Accepted"]["reason"], early["Accepted"]["observedGeneration"]) == ("Accepted", 1)
    assert early["Programmed"]["status"] != "True"  # not before the 3 s delay

    wait_for(gateway_conditions, "Programmed", "True")
    gw = get(custom, GW, ns, "gateways", "gw")
    c = conditions(gw)
    assert seconds(c["Programmed"]["lastTransitionTime"]) - seconds(c["Accepted"]["lastTransitionTime"]) >= 2
    (address,) = gw["status"]["addresses"]
    assert address["type"] == "IPAddress" and address["value"].startswith(local_env.state["gateway_address_base"])
    for ctype, reason in (("Programmed", "Programmed"), ("Ready", "Ready"),
                          ("networking.gke.io/GatewayHealthy", "Healthy")):
        assert (c[ctype]["status"], c[ctype]["reason"], c[ctype]["observedGeneration"]) == ("True", reason, 1)
    (listener,) = gw["status"]["listeners"]
    assert listener["supportedKinds"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}]
    assert {k: v["status"] for k, v in conditions(listener).items()} == {
        "ResolvedRefs": "True", "Accepted": "True", "Programmed": "True", "Ready": "True"}
    gc = custom.get_cluster_custom_object(*GW, "gatewayclasses", "gke-l7-regional-external-managed")
    assert conditions(gc)["Accepted"]["status"] == "True"

    # A spec edit bumps the generation; status follows, with the same address.
    custom.patch_namespaced_custom_object(*GW, ns, "gateways", "gw", [
        {"op": "add", "path": "/spec/listeners/-", "value": {"name": "alt", "protocol": "HTTP", "port": 8080}}],
        _content_type="application/json-patch+json")

    def programmed_gen2():
        gw = get(custom, GW, ns, "gateways", "gw")
        c = conditions(gw)
        ok = gw["metadata"]["generation"] == 2 and all(
            c[t]["observedGeneration"] == 2 and c[t]["status"] == "True" for t in ("Accepted", "Programmed"))
        return gw if ok else None
    gw = wait_until(programmed_gen2, "Gateway generation 2 Programmed")
    assert [lst["name"] for lst in gw["status"]["listeners"]] == ["http", "alt"]
    assert gw["status"]["addresses"] == [address]


def test_route_backend_not_found_until_service_exists(api, custom, ns):
    create(custom, GW, ns, "gateways", gateway("gw"))
    create(custom, GW, ns, "httproutes", route("r", {"name": "vllm-gemma-3-1b", "port": 8000}))

    c = wait_for(lambda: route_parent(custom, ns, "r"), "ResolvedRefs", what="HTTPRoute parent status")
    assert (c["Accepted"]["status"], c["Accepted"]["reason"]) == ("True", "Accepted")
    assert (c["ResolvedRefs"]["status"], c["ResolvedRefs"]["reason"]) == ("False", "BackendNotFound")
    assert f"services {ns}/vllm-gemma-3-1b not found" in c["ResolvedRefs"]["message"]

    service(api, ns, "vllm-gemma-3-1b", 8000)

    wait_for(lambda: route_parent(custom, ns, "r"), "ResolvedRefs", "True", "ResolvedRefs=True once the Service exists")
    c = wait_for(lambda: route_parent(custom, ns, "r"), "Reconciled", "True")
    assert c["ResolvedRefs"]["reason"] == "ResolvedRefs"
    assert c["ResolvedRefs"]["observedGeneration"] == get(custom, GW, ns, "httproutes", "r")["metadata"]["generation"]
    gw = get(custom, GW, ns, "gateways", "gw")
    assert gw["status"]["listeners"][0]["attachedRoutes"] == 1


def test_route_hostname_outside_listener_wildcard_not_accepted(api, custom, ns):
    create(custom, GW, ns, "gateways", gateway("gw", listeners=[
        {"name": "http", "protocol": "HTTP", "port": 80, "hostname": "*.example.com"}]))
    service(api, ns, "svc", 8000)
    create(custom, GW, ns, "httproutes", route("inside", {"name": "svc", "port": 8000}, ["api.example.com"]))
    create(custom, GW, ns, "httproutes", route("outside", {"name": "svc", "port": 8000}, ["api.example.org"]))
    inside = wait_for(lambda: route_parent(custom, ns, "inside"), "Accepted")
    outside = wait_for(lambda: route_parent(custom, ns, "outside"), "Accepted")
    assert inside["Accepted"]["status"] == "True"
    assert (outside["Accepted"]["status"], outside["Accepted"]["reason"]) == ("False", "NoMatchingListenerHostname")


def test_health_check_policy_target_not_found_then_attached(api, custom, ns):
    create(custom, GKE, ns, "healthcheckpolicies", {
        "apiVersion": "networking.gke.io/v1", "kind": "HealthCheckPolicy", "metadata": {"name": "vllm-hc"},
        "spec": {"default": {"config": {"type": "HTTP", "httpHealthCheck": {"port": 8000, "requestPath": "/health"}}},
                 "targetRef": {"group": "", "kind": "Service", "name": "vllm"}}})

    def policy_conditions():
        return conditions(get(custom, GKE, ns, "healthcheckpolicies", "vllm-hc"))
    c = wait_for(policy_conditions, "Attached")["Attached"]
    assert (c["status"], c["reason"]) == ("False", "TargetNotFound")
    assert f"{ns}/vllm" in c["message"]

    service(api, ns, "vllm", 8000)
    assert wait_for(policy_conditions, "Attached", "True")["Attached"]["reason"] == "Attached"


def test_never_program_annotation_keeps_gateway_unprogrammed(custom, ns):
    message = f"Error GWCER102: Secret {ns}/uc1-wildcard not found."
    annotations = {NEVER_PROGRAM: f"Invalid: {message}", PROGRAM_DELAY: "1"}
    create(custom, GW, ns, "gateways", gateway("gw", annotations=annotations))

    def gateway_conditions():
        return conditions(get(custom, GW, ns, "gateways", "gw"))
    c = wait_for(gateway_conditions, "Programmed", "False")
    assert (c["Accepted"]["status"], c["Accepted"]["reason"]) == ("True", "Accepted")
    assert (c["Programmed"]["reason"], c["Programmed"]["message"]) == ("Invalid", message)
    assert c["networking.gke.io/GatewayHealthy"]["status"] == "False"
    time.sleep(3)  # several program delays later it is still not programmed and has no address
    gw = get(custom, GW, ns, "gateways", "gw")
    assert conditions(gw)["Programmed"]["status"] == "False"
    assert not gw["status"].get("addresses")

    custom.patch_namespaced_custom_object(*GW, ns, "gateways", "gw",
                                          {"metadata": {"annotations": {NEVER_PROGRAM: None}}})
    wait_for(gateway_conditions, "Programmed", "True", "Programmed once the annotation is gone")


def test_inferencepool_parent_status(local_env, api, custom, ns):
    local_env.install_gie_crds(GIE_VERSION)
    create(custom, GW, ns, "gateways", gateway("gw"))
    pool_ref = {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "vllm-llama3-8b-instruct"}
    create(custom, GW, ns, "httproutes", route("to-pool", pool_ref))

    c = wait_for(lambda: route_parent(custom, ns, "to-pool"), "ResolvedRefs", what="route to a missing pool")
    assert (c["ResolvedRefs"]["status"], c["ResolvedRefs"]["reason"]) == ("False", "BackendNotFound")

    # The simulator may only now have started watching pools (the CRD can appear after it started).
    def create_pool():
        try:
            return create(custom, POOL, ns, "inferencepools", {
                "apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
                "metadata": {"name": "vllm-llama3-8b-instruct"},
                "spec": {"targetPorts": [{"number": 8000}], "selector": {"matchLabels": {"app": "vllm"}},
                         "endpointPickerRef": {"name": "vllm-llama3-8b-instruct-epp", "port": {"number": 9002}}}})
        except ApiException as e:
            if e.status == 404:  # CRD established but its endpoint not yet served
                return None
            raise
    wait_until(create_pool, "InferencePool created")

    def pool_parent():
        pool = get(custom, POOL, ns, "inferencepools", "vllm-llama3-8b-instruct")
        parents = pool.get("status", {}).get("parents") or []
        return parents[0] if parents else None
    entry = wait_until(pool_parent, "InferencePool parent status")
    assert entry["parentRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": ns,
                                  "name": "gw"}
    assert entry["controllerName"] == CONTROLLER
    c = conditions(entry)
    assert (c["Accepted"]["status"], c["Accepted"]["reason"]) == ("True", "Accepted")
    assert (c["ResolvedRefs"]["status"], c["ResolvedRefs"]["reason"]) == ("False", "InvalidExtensionRef")
    wait_for(lambda: route_parent(custom, ns, "to-pool"), "ResolvedRefs", "True", "route resolved once the pool exists")

    service(api, ns, "vllm-llama3-8b-instruct-epp", 9002)
    c = wait_for(lambda: conditions(pool_parent() or {}), "ResolvedRefs", "True", "pool resolved once the EPP exists")
    assert c["Accepted"]["observedGeneration"] == 1
