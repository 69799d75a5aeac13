"""Unit tests of the local Google API fake (hack/gcp_fake): routing, strict validation, operations, IAM, faults.

The fake is driven through Fake.handle (no socket) with delay 0 unless a test is about timing.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "hack"))

from gcp_fake import discovery  # noqa: E402
from gcp_fake.server import Fake, ServiceAccount, serve  # noqa: E402
from gcp_fake.world import World  # noqa: E402

TOKEN = "test-token"
C = "/container/v1/projects/local-project/locations/us-central1/clusters/local-cluster"
GLOBAL = "/compute/compute/v1/projects/local-project/global"
REGIONAL = "/compute/compute/v1/projects/local-project/regions/us-central1"


class Client:
    def __init__(self, delay: float = 0.0):
        self.world = World(TOKEN, base_url="http://fake.test/")
        self.world.config["operation_delay_seconds"] = delay
        self.fake = Fake(self.world)

    def call(self, method, path, body=None, token=TOKEN, raw=None):
        headers = {"authorization": f"Bearer {token}"} if token else {}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        status, _headers, out = self.fake.handle(method, path, headers, data)
        return status, json.loads(out)

    def ok(self, method, path, body=None):
        status, out = self.call(method, path, body)
        assert status == 200, out
        return out


@pytest.fixture
def fake():
    return Client()


def gpu_pool(name="gpupool", **extra):
    pool = {"name": name, "initialNodeCount": 1, "locations": ["us-central1-a"],
            "config": {"machineType": "g2-standard-8",
                       "accelerators": [{"acceleratorType": "nvidia-l4", "acceleratorCount": "1",
                                         "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]}}
    pool.update(extra)
    return {"nodePool": pool}


def error(out) -> dict:
    assert set(out) == {"error"}, out
    err = out["error"]
    assert {"code", "message", "status", "errors"} <= set(err)
    assert {"reason", "message", "domain"} <= set(err["errors"][0])
    return err


# --------------------------------------------------------------------------- routes

def test_routes_come_from_the_discovery_documents():
    route, params = discovery.match("container", "POST", "v1/projects/p/locations/l/clusters/c/nodePools/n:setSize")
    assert route.method_id == "container.projects.locations.clusters.nodePools.setSize"
    assert params == {"projectsId": "p", "locationsId": "l", "clustersId": "c", "nodePoolsId": "n"}
    route, _params = discovery.match("container", "GET", "v1/projects/p/locations/l/clusters/c/nodePools/n")
    assert route.method_id == "container.projects.locations.clusters.nodePools.get"
    route, params = discovery.match("compute", "POST", "compute/v1/projects/p/global/securityPolicies/sp/addRule")
    assert route.method_id == "compute.securityPolicies.addRule" and params["securityPolicy"] == "sp"
    route, _params = discovery.match("compute", "GET", "compute/v1/projects/p/global/securityPolicies/sp")
    assert route.method_id == "compute.securityPolicies.get"
    route, params = discovery.match("cloudresourcemanager", "POST", "v1/projects/p:getIamPolicy")
    assert route.method_id == "cloudresourcemanager.projects.getIamPolicy" and params == {"resource": "p"}
    route, _params = discovery.match("cloudresourcemanager", "GET", "v1/projects/p")
    assert route.method_id == "cloudresourcemanager.projects.get"
    route, _params = discovery.match("certificatemanager", "POST", "v1/projects/p/locations/global/certificates")
    assert route.method_id == "certificatemanager.projects.locations.certificates.create"
    route, allowed = discovery.match("container", "PATCH", "v1/projects/p/locations/l/clusters/c/nodePools/n")
    assert route is None and "PUT" in allowed and "GET" in allowed


def test_unknown_path_and_unimplemented_method(fake):
    status, out = fake.call("GET", "/container/v2/projects/x")
    assert status == 404 and error(out)["status"] == "NOT_FOUND"
    status, out = fake.call("GET", "/storage/v1/b")
    assert status == 404
    status, out = fake.call("POST", f"{C}:setLogging", {})
    assert status == 501 and "setLogging" in error(out)["message"]


# --------------------------------------------------------------------------- auth

def test_token_required(fake):
    for token in (None, "wrong"):
        status, out = fake.call("GET", f"{C}/nodePools", token=token)
        assert status == 401
        assert error(out)["status"] == "UNAUTHENTICATED"
    assert fake.call("GET", f"{C}/nodePools")[0] == 200


def test_service_account_jwt_grant_and_self_signed_jwt(tmp_path):
    from google.auth import jwt as gjwt
    from google.auth.crypt import RSASigner

    sys.path.insert(0, str(REPO / "hack" / "localcluster"))
    from localenv import service_account_info  # the same key material local-up writes

    info = service_account_info("http://fake.test/oauth2/token")
    client = Client()
    client.fake.service_account = ServiceAccount(info)
    signer = RSASigner.from_service_account_info(info)
    now = int(time.time())
    claims = {"iss": info["client_email"], "aud": info["token_uri"], "iat": now, "exp": now + 600,
              "scope": "https://www.googleapis.com/auth/cloud-platform"}
    assertion = gjwt.encode(signer, claims).decode()
    body = f"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}".encode()
    status, _headers, out = client.fake.handle("POST", "/oauth2/token", {}, body)
    assert status == 200 and json.loads(out)["access_token"] == TOKEN
    forged = assertion[:-6] + ("AAAAAA" if not assertion.endswith("AAAAAA") else "BBBBBB")
    status, _headers, _out = client.fake.handle("POST", "/oauth2/token", {}, body.replace(assertion.encode(), forged.encode()))
    assert status == 400
    assert client.call("GET", f"{C}/nodePools", token=assertion)[0] == 200
    assert client.call("GET", f"{C}/nodePools", token=forged)[0] == 401


# --------------------------------------------------------------------------- validation

def test_unknown_field_names_its_path(fake):
    status, out = fake.call("POST", f"{C}/nodePools", gpu_pool(config={"machineType": "g2-standard-8", "fooBar": 1}))
    assert status == 400
    err = error(out)
    assert err["status"] == "INVALID_ARGUMENT"
    assert ('Invalid JSON payload received. Unknown name "fooBar" at \'node_pool.config\': Cannot find field.'
            in err["message"])


def test_unknown_top_level_and_compute_root(fake):
    body = gpu_pool()
    body["extra"] = True
    status, out = fake.call("POST", f"{C}/nodePools", body)
    assert status == 400 and 'Unknown name "extra": Cannot find field.' in error(out)["message"]
    status, out = fake.call("POST", f"{GLOBAL}/securityPolicies", {"name": "p", "rulez": []})
    assert status == 400 and "at 'security_policy_resource'" in error(out)["message"]


@pytest.mark.parametrize("field,value,expect", [
    ("initialNodeCount", "three", "Invalid value at 'node_pool.initial_node_count' (TYPE_INT32), \"three\""),
    ("initialNodeCount", True, "Invalid value at 'node_pool.initial_node_count' (TYPE_INT32), true"),
    ("locations", "us-central1-a", "Invalid value at 'node_pool.locations' (TYPE_STRING), \"us-central1-a\""),
    ("config", [], "Invalid value at 'node_pool.config'"),
    ("autoscaling", {"enabled": "yes"}, "Invalid value at 'node_pool.autoscaling.enabled' (TYPE_BOOL), \"yes\""),
    ("autoscaling", {"enabled": True, "locationPolicy": "CLOSEST"},
     "Invalid value at 'node_pool.autoscaling.location_policy' (TYPE_ENUM), \"CLOSEST\""),
])
def test_wrong_types_and_bad_enums(fake, field, value, expect):
    status, out = fake.call("POST", f"{C}/nodePools", gpu_pool(**{field: value}))
    assert status == 400
    assert expect in error(out)["message"]


def test_enum_nested_in_arrays(fake):
    body = gpu_pool()
    body["nodePool"]["config"]["accelerators"][0]["gpuDriverInstallationConfig"]["gpuDriverVersion"] = "NEWEST"
    status, out = fake.call("POST", f"{C}/nodePools", body)
    assert status == 400
    assert ("'node_pool.config.accelerators[0].gpu_driver_installation_config.gpu_driver_version' (TYPE_ENUM), "
            "\"NEWEST\"") in error(out)["message"]


def test_output_only_fields_are_ignored(fake):
    body = gpu_pool(status="RUNNING", selfLink="http://elsewhere/", instanceGroupUrls=["x"])
    fake.ok("POST", f"{C}/nodePools", body)
    pool = fake.ok("GET", f"{C}/nodePools/gpupool")
    assert pool["status"] == "RUNNING"  # its own status after the operation, not the request's
    assert pool["selfLink"].startswith("http://fake.test/container/v1/")
    assert pool["instanceGroupUrls"] != ["x"]


def test_query_parameters_are_checked(fake):
    status, out = fake.call("GET", f"{C}/nodePools?bogus=1")
    assert status == 400 and 'Unknown name "bogus": Cannot bind query parameter' in error(out)["message"]
    status, out = fake.call("GET", f"{GLOBAL}/securityPolicies/x/getRule?priority=high")
    assert status == 400 and "(TYPE_INT32)" in error(out)["message"]
    status, out = fake.call("POST", "/certificatemanager/v1/projects/local-project/locations/global/certificates",
                            {"description": "x"})
    assert status == 400  # certificateId is required by the method (and by the fake)
    assert fake.call("GET", f"{C}/nodePools?alt=json&prettyPrint=false")[0] == 200


def test_invalid_json_and_path_param_patterns(fake):
    status, out = fake.call("POST", f"{C}/nodePools", raw=b"{not json")
    assert status == 400 and "Invalid JSON payload received" in error(out)["message"]
    status, out = fake.call("GET", f"{GLOBAL}/securityPolicies/Bad_Name")
    assert status == 400 and "Must be a match of regex" in error(out)["message"]


def test_int64_canonical_form(fake):
    fake.ok("POST", f"{C}/nodePools", gpu_pool())
    pool = fake.ok("GET", f"{C}/nodePools/gpupool")
    assert pool["config"]["accelerators"][0]["acceleratorCount"] == "1"  # int64 is a JSON string
    body = gpu_pool("p2")
    body["nodePool"]["config"]["accelerators"][0]["acceleratorCount"] = 1
    fake.ok("POST", f"{C}/nodePools", body)
    assert fake.ok("GET", f"{C}/nodePools/p2")["config"]["accelerators"][0]["acceleratorCount"] == "1"


# --------------------------------------------------------------------------- container

def test_unknown_machine_type_and_accelerator_mismatch(fake):
    status, out = fake.call("POST", f"{C}/nodePools", gpu_pool(config={"machineType": "g9-mega-1"}))
    assert status == 400 and 'Machine type "g9-mega-1" does not exist' in error(out)["message"]
    body = gpu_pool()
    body["nodePool"]["config"]["accelerators"][0]["acceleratorType"] = "nvidia-tesla-t4"
    status, out = fake.call("POST", f"{C}/nodePools", body)
    assert status == 400 and "not compatible with machine type" in error(out)["message"]
    body = gpu_pool(config={"machineType": "n1-standard-8",
                            "accelerators": [{"acceleratorType": "nvidia-tesla-t4", "acceleratorCount": "2"}]})
    fake.ok("POST", f"{C}/nodePools", body)


def test_duplicate_create_is_409(fake):
    fake.ok("POST", f"{C}/nodePools", gpu_pool())
    status, out = fake.call("POST", f"{C}/nodePools", gpu_pool())
    assert status == 409
    err = error(out)
    assert err["status"] == "ALREADY_EXISTS" and "nodePools/gpupool" in err["message"]


def test_missing_pool_is_404_naming_it(fake):
    status, out = fake.call("GET", f"{C}/nodePools/nope")
    assert status == 404 and "nodePools/nope" in error(out)["message"]
    status, out = fake.call("GET", "/container/v1/projects/local-project/locations/us-central1/clusters/other/nodePools")
    assert status == 404 and "clusters/other" in error(out)["message"]


def test_node_pool_lifecycle_with_operation_states():
    client = Client(delay=0.6)
    op = client.ok("POST", f"{C}/nodePools", gpu_pool(autoscaling={"enabled": True, "totalMinNodeCount": 0,
                                                                   "totalMaxNodeCount": 5}))
    assert op["status"] == "PENDING" and op["operationType"] == "CREATE_NODE_POOL"
    assert client.ok("GET", f"{C}/nodePools/gpupool")["status"] == "PROVISIONING"
    op_path = "/container/v1/projects/local-project/locations/us-central1/operations/" + op["name"]
    seen = set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        got = client.ok("GET", op_path)
        seen.add(got["status"])
        if got["status"] == "DONE":
            break
        time.sleep(0.05)
    assert seen == {"PENDING", "RUNNING", "DONE"}
    assert "error" not in got and got["endTime"]
    assert client.ok("GET", f"{C}/nodePools/gpupool")["status"] == "RUNNING"
    assert client.world.pool_sizes[f"{C[len('/container/v1/'):]}/nodePools/gpupool"] == 1  # clamped into 0..5

    # A second operation on the same pool while one runs is refused, as GKE does.
    client.ok("POST", f"{C}/nodePools/gpupool:setSize", {"nodeCount": 3})
    assert client.ok("GET", f"{C}/nodePools/gpupool")["status"] == "RECONCILING"
    status, out = client.call("POST", f"{C}/nodePools/gpupool:setSize", {"nodeCount": 2})
    assert status == 400 and "incompatible operation" in error(out)["message"]


def test_set_size_update_autoscaling_and_delete(fake):
    key = f"{C[len('/container/v1/'):]}/nodePools/gpupool"
    fake.ok("POST", f"{C}/nodePools", gpu_pool(locations=["us-central1-a", "us-central1-b"]))
    assert fake.world.pool_sizes[key] == 2  # initialNodeCount is per zone
    fake.ok("POST", f"{C}/nodePools/gpupool:setSize", {"nodeCount": 3})
    assert fake.world.pool_sizes[key] == 6
    fake.ok("POST", f"{C}/nodePools/gpupool:setAutoscaling",
            {"autoscaling": {"enabled": True, "minNodeCount": 0, "maxNodeCount": 2}})
    assert fake.world.pool_sizes[key] == 4  # clamped to max 2 per zone
    etag = fake.ok("GET", f"{C}/nodePools/gpupool")["etag"]
    fake.ok("PUT", f"{C}/nodePools/gpupool", {"labels": {"labels": {"team": "ml"}},
                                              "taints": {"taints": [{"key": "k", "value": "v",
                                                                     "effect": "NO_SCHEDULE"}]},
                                              "etag": etag})
    pool = fake.ok("GET", f"{C}/nodePools/gpupool")
    assert pool["config"]["labels"] == {"team": "ml"} and pool["config"]["taints"][0]["effect"] == "NO_SCHEDULE"
    status, out = fake.call("PUT", f"{C}/nodePools/gpupool", {"labels": {"labels": {}}, "etag": etag})
    assert status == 409 and error(out)["status"] == "ABORTED"
    status, out = fake.call("POST", f"{C}/nodePools/gpupool:setAutoscaling",
                            {"autoscaling": {"enabled": True, "minNodeCount": 1, "totalMaxNodeCount": 3}})
    assert status == 400 and "cannot both be set" in error(out)["message"]
    op = fake.ok("DELETE", f"{C}/nodePools/gpupool")
    assert op["operationType"] == "DELETE_NODE_POOL" and op["status"] == "DONE"
    assert fake.call("GET", f"{C}/nodePools/gpupool")[0] == 404
    assert key not in fake.world.pool_sizes


def test_seeded_default_pool(fake):
    pools = fake.ok("GET", f"{C}/nodePools")["nodePools"]
    assert [p["name"] for p in pools] == ["default-pool"]
    assert pools[0]["config"]["machineType"] == "e2-standard-4"


# --------------------------------------------------------------------------- operation errors and faults

def test_injected_operation_error_ends_done_with_error(fake):
    fake.ok("POST", "/_fake/faults",
            {"operation_error": {"path_regex": "nodePools$", "code": 9, "message": "Insufficient regional quota for GPUs"}})
    op = fake.ok("POST", f"{C}/nodePools", gpu_pool())
    assert op["status"] == "DONE" and op["error"] == {"code": 9, "message": "Insufficient regional quota for GPUs"}
    pool = fake.ok("GET", f"{C}/nodePools/gpupool")
    assert pool["status"] == "ERROR" and "quota" in pool["statusMessage"]
    # Only the next matching operation fails.
    assert "error" not in fake.ok("POST", f"{C}/nodePools", gpu_pool("other"))


def test_compute_operation_error_shape(fake):
    fake.ok("POST", "/_fake/faults",
            {"operation_error": {"path_regex": "securityPolicies$", "code": 8, "message": "Quota 'SECURITY_POLICIES' exceeded."}})
    op = fake.ok("POST", f"{GLOBAL}/securityPolicies", {"name": "armor"})
    assert op["status"] == "DONE" and op["httpErrorStatusCode"] == 429
    assert op["error"]["errors"][0] == {"code": "RESOURCE_EXHAUSTED", "message": "Quota 'SECURITY_POLICIES' exceeded."}
    assert fake.call("GET", f"{GLOBAL}/securityPolicies/armor")[0] == 404


def test_fault_burst_then_recovery(fake):
    fake.ok("POST", "/_fake/faults", {"method": "GET", "path_regex": "/nodePools$", "status": 429, "count": 2})
    for _attempt in range(2):
        status, out = fake.call("GET", f"{C}/nodePools")
        assert status == 429 and error(out)["status"] == "RESOURCE_EXHAUSTED"
    assert fake.call("GET", f"{C}/nodePools")[0] == 200
    fake.ok("POST", "/_fake/faults", {"path_regex": ".*", "status": 503, "count": 1})
    status, out = fake.call("POST", f"{C}/nodePools", gpu_pool())
    assert status == 503 and error(out)["status"] == "UNAVAILABLE"


def test_permission_fault_names_the_permission(fake):
    fake.ok("POST", "/_fake/faults", {"method": "POST", "path_regex": "securityPolicies", "status": 403,
                                      "permission": "compute.securityPolicies.create"})
    status, out = fake.call("POST", f"{GLOBAL}/securityPolicies", {"name": "armor"})
    err = error(out)
    assert status == 403 and err["status"] == "PERMISSION_DENIED"
    assert "compute.securityPolicies.create" in err["message"]
    assert err["details"][0]["metadata"]["permission"] == "compute.securityPolicies.create"


def test_control_config_state_reset(fake):
    cfg = fake.ok("POST", "/_fake/config", {"operation_delay_seconds": 1.5, "autoscaler": {"scale_up_delay_seconds": 2}})
    assert cfg["operation_delay_seconds"] == 1.5 and cfg["autoscaler"]["scale_up_delay_seconds"] == 2
    assert fake.call("POST", "/_fake/config", {"nope": 1})[0] == 400
    fake.world.config["operation_delay_seconds"] = 0
    fake.ok("POST", f"{C}/nodePools", gpu_pool())
    state = fake.ok("GET", "/_fake/state")
    assert any(k.endswith("/gpupool") for k in state["node_pools"])
    fake.ok("POST", "/_fake/reset")
    assert [p["name"] for p in fake.ok("GET", f"{C}/nodePools")["nodePools"]] == ["default-pool"]


# --------------------------------------------------------------------------- compute

def test_security_policy_rules(fake):
    op = fake.ok("POST", f"{GLOBAL}/securityPolicies", {"name": "armor", "description": "d"})
    assert op["kind"] == "compute#operation" and op["operationType"] == "insert"
    policy = fake.ok("GET", f"{GLOBAL}/securityPolicies/armor")
    assert [r["priority"] for r in policy["rules"]] == [2147483647]
    rule = {"priority": 1000, "action": "allow", "match": {"versionedExpr": "SRC_IPS_V1",
                                                           "config": {"srcIpRanges": ["10.0.0.0/8"]}}}
    fake.ok("POST", f"{GLOBAL}/securityPolicies/armor/addRule", rule)
    status, out = fake.call("POST", f"{GLOBAL}/securityPolicies/armor/addRule", rule)
    assert status == 400 and "already exists" in error(out)["message"]
    bad = dict(rule, priority=5, action="deny")
    assert fake.call("POST", f"{GLOBAL}/securityPolicies/armor/addRule", bad)[0] == 400
    fake.ok("POST", f"{GLOBAL}/securityPolicies/armor/patchRule?priority=2147483647", {"action": "deny(403)"})
    assert fake.ok("GET", f"{GLOBAL}/securityPolicies/armor/getRule?priority=2147483647")["action"] == "deny(403)"
    fake.ok("POST", f"{GLOBAL}/securityPolicies/armor/removeRule?priority=1000")
    assert fake.call("GET", f"{GLOBAL}/securityPolicies/armor/getRule?priority=1000")[0] == 400
    assert fake.call("POST", f"{GLOBAL}/securityPolicies/armor/removeRule?priority=2147483647")[0] == 400
    items = fake.ok("GET", f"{GLOBAL}/securityPolicies")["items"]
    assert [p["name"] for p in items] == ["armor"]


def test_fingerprint_checks_on_patch(fake):
    fake.ok("POST", f"{REGIONAL}/securityPolicies", {"name": "armor"})
    policy = fake.ok("GET", f"{REGIONAL}/securityPolicies/armor")
    assert policy["region"].endswith("/regions/us-central1")
    status, out = fake.call("PATCH", f"{REGIONAL}/securityPolicies/armor", {"description": "x", "fingerprint": "AAAA"})
    assert status == 412 and error(out)["errors"][0]["reason"] == "conditionNotMet"
    assert fake.call("PATCH", f"{REGIONAL}/securityPolicies/armor", {"description": "x"})[0] == 400
    fake.ok("PATCH", f"{REGIONAL}/securityPolicies/armor", {"description": "x", "fingerprint": policy["fingerprint"]})
    after = fake.ok("GET", f"{REGIONAL}/securityPolicies/armor")
    assert after["description"] == "x" and after["fingerprint"] != policy["fingerprint"]
    fake.ok("DELETE", f"{REGIONAL}/securityPolicies/armor")
    status, out = fake.call("GET", f"{REGIONAL}/securityPolicies/armor")
    assert status == 404 and "regions/us-central1/securityPolicies/armor" in error(out)["message"]


def test_compute_duplicate_and_pending_create():
    client = Client(delay=5)
    op = client.ok("POST", f"{GLOBAL}/securityPolicies", {"name": "armor"})
    assert op["status"] == "PENDING"
    assert client.call("GET", f"{GLOBAL}/securityPolicies/armor")[0] == 404  # not there until DONE
    assert client.call("POST", f"{GLOBAL}/securityPolicies", {"name": "armor"})[0] == 409


def test_compute_request_id_is_idempotent(fake):
    first = fake.ok("POST", f"{GLOBAL}/securityPolicies?requestId=5f0c5d2e-0000-4000-8000-000000000001",
                    {"name": "armor"})
    again = fake.ok("POST", f"{GLOBAL}/securityPolicies?requestId=5f0c5d2e-0000-4000-8000-000000000001",
                    {"name": "armor"})
    assert first["name"] == again["name"]


def test_proxy_only_subnetwork(fake):
    body = {"name": "proxy-only", "network": "projects/local-project/global/networks/default",
            "ipCidrRange": "10.129.0.0/23", "purpose": "REGIONAL_MANAGED_PROXY", "role": "ACTIVE"}
    op = fake.ok("POST", f"{REGIONAL}/subnetworks", body)
    assert op["region"].endswith("regions/us-central1")
    subnet = fake.ok("GET", f"{REGIONAL}/subnetworks/proxy-only")
    assert subnet["purpose"] == "REGIONAL_MANAGED_PROXY" and subnet["network"].endswith("/global/networks/default")
    status, out = fake.call("POST", f"{REGIONAL}/subnetworks", dict(body, name="proxy-2", ipCidrRange="10.130.0.0/23"))
    assert status == 400 and "ACTIVE subnetwork" in error(out)["message"]
    overlapping = dict(body, name="overlap", ipCidrRange="10.128.4.0/23", purpose="PRIVATE", role=None)
    status, out = fake.call("POST", f"{REGIONAL}/subnetworks", overlapping)
    assert status == 400 and "conflicts with existing subnetwork 'default'" in error(out)["message"]
    status, out = fake.call("POST", f"{REGIONAL}/subnetworks", dict(body, name="x", purpose="NOPE"))
    assert status == 400 and "(TYPE_ENUM)" in error(out)["message"]
    assert fake.call("POST", f"{REGIONAL}/subnetworks", dict(body, name="x", network="global/networks/nope"))[0] == 404
    fake.ok("PATCH", f"{REGIONAL}/subnetworks/proxy-only", {"description": "d", "fingerprint": subnet["fingerprint"]})
    assert fake.call("PATCH", f"{REGIONAL}/subnetworks/proxy-only", {"description": "e"})[0] == 400
    names = [s["name"] for s in fake.ok("GET", f"{REGIONAL}/subnetworks")["items"]]
    assert names == ["default", "proxy-only"]
    fake.ok("DELETE", f"{REGIONAL}/subnetworks/proxy-only")
    assert fake.call("GET", f"{REGIONAL}/subnetworks/proxy-only")[0] == 404


def test_compute_operation_get_and_wait():
    client = Client(delay=0.4)
    op = client.ok("POST", f"{GLOBAL}/securityPolicies", {"name": "armor"})
    got = client.ok("GET", f"{GLOBAL}/operations/{op['name']}")
    assert got["status"] in ("PENDING", "RUNNING")
    started = time.monotonic()
    done = client.ok("POST", f"{GLOBAL}/operations/{op['name']}/wait")
    assert done["status"] == "DONE" and time.monotonic() - started < 2
    assert client.call("GET", f"{GLOBAL}/operations/operation-nope")[0] == 404


# --------------------------------------------------------------------------- IAM

CRM = "/cloudresourcemanager/v1/projects/local-project"


def test_project_get(fake):
    project = fake.ok("GET", CRM)
    assert project["projectNumber"] == "123456789012" and project["lifecycleState"] == "ACTIVE"
    status, out = fake.call("GET", "/cloudresourcemanager/v1/projects/someone-else")
    assert status == 403 and "resourcemanager.projects.get" in error(out)["message"]


def test_iam_read_modify_write_and_stale_etag(fake):
    policy = fake.ok("POST", f"{CRM}:getIamPolicy", {"options": {"requestedPolicyVersion": 3}})
    assert policy["etag"] and len(policy["bindings"]) >= 2
    member = ("principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/"
              "local-project.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter")
    first = json.loads(json.dumps(policy))
    first["bindings"].append({"role": "roles/monitoring.viewer", "members": [member]})
    written = fake.ok("POST", f"{CRM}:setIamPolicy", {"policy": first})
    assert written["etag"] != policy["etag"]
    assert {"role": "roles/monitoring.viewer", "members": [member]} in written["bindings"]
    # A second writer with the old etag loses.
    second = json.loads(json.dumps(policy))
    second["bindings"].append({"role": "roles/viewer", "members": ["user:someone@example.com"]})
    status, out = fake.call("POST", f"{CRM}:setIamPolicy", {"policy": second})
    err = error(out)
    assert status == 409 and err["status"] == "ABORTED" and "concurrent policy changes" in err["message"]
    status, out = fake.call("POST", f"{CRM}:setIamPolicy",
                            {"policy": {"bindings": [{"role": "roles/viewer", "members": ["bob"]}]}})
    assert status == 400 and "Invalid principal" in error(out)["message"]


def test_iam_bindings_of_one_role_and_condition_are_merged(fake):
    """A client that appends a binding for a role already bound (test_render replays a rendered request so) gets
    one binding per role and condition back, as Google returns policies."""
    policy = fake.ok("POST", f"{CRM}:getIamPolicy", {"options": {"requestedPolicyVersion": 3}})
    condition = {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}
    policy["version"] = 3
    policy["bindings"] += [{"role": "roles/monitoring.viewer", "members": ["user:a@example.com"]},
                           {"role": "roles/monitoring.viewer", "members": ["user:b@example.com", "user:a@example.com"]},
                           {"role": "roles/monitoring.viewer", "members": ["user:c@example.com"], "condition": condition}]
    written = fake.ok("POST", f"{CRM}:setIamPolicy", {"policy": policy})
    viewers = [b for b in written["bindings"] if b["role"] == "roles/monitoring.viewer"]
    assert viewers == [{"role": "roles/monitoring.viewer", "members": ["user:a@example.com", "user:b@example.com"]},
                       {"role": "roles/monitoring.viewer", "members": ["user:c@example.com"], "condition": condition}]


# --------------------------------------------------------------------------- certificate manager

def _pem_pair(hostname="chat.example.com"):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def test_certificate_lifecycle(fake):
    base = "/certificatemanager/v1/projects/local-project/locations/us-central1"
    pem, key = _pem_pair()
    op = fake.ok("POST", f"{base}/certificates?certificateId=gw-cert",
                 {"description": "d", "selfManaged": {"pemCertificate": pem, "pemPrivateKey": key}})
    assert op["done"] is True and op["response"]["@type"].endswith("Certificate")
    assert op["name"].startswith("projects/local-project/locations/us-central1/operations/")
    cert = fake.ok("GET", f"{base}/certificates/gw-cert")
    assert cert["sanDnsnames"] == ["chat.example.com"] and "selfManaged" not in cert and cert["expireTime"]
    status, out = fake.call("POST", f"{base}/certificates?certificateId=gw-cert",
                            {"selfManaged": {"pemCertificate": pem, "pemPrivateKey": key}})
    assert status == 409 and error(out)["status"] == "ALREADY_EXISTS"
    _other_cert, other_key = _pem_pair()
    status, out = fake.call("POST", f"{base}/certificates?certificateId=mismatch",
                            {"selfManaged": {"pemCertificate": pem, "pemPrivateKey": other_key}})
    assert status == 400 and "does not match" in error(out)["message"]
    fake.ok("PATCH", f"{base}/certificates/gw-cert?updateMask=description", {"description": "new"})
    assert fake.ok("GET", f"{base}/certificates/gw-cert")["description"] == "new"
    assert fake.call("PATCH", f"{base}/certificates/gw-cert?updateMask=scope", {"scope": "EDGE_CACHE"})[0] == 400
    op = fake.ok("DELETE", f"{base}/certificates/gw-cert")
    assert op["done"] and op["response"]["@type"] == "type.googleapis.com/google.protobuf.Empty"
    assert fake.ok("GET", f"{base}/operations/{op['name'].rsplit('/', 1)[-1]}")["done"] is True
    status, out = fake.call("GET", f"{base}/certificates/gw-cert")
    assert status == 404 and "certificates/gw-cert" in error(out)["message"]


def test_certificate_operation_goes_done():
    client = Client(delay=0.3)
    base = "/certificatemanager/v1/projects/local-project/locations/global"
    pem, key = _pem_pair()
    op = client.ok("POST", f"{base}/certificates?certificateId=c1",
                   {"selfManaged": {"pemCertificate": pem, "pemPrivateKey": key}})
    assert "done" not in op and "response" not in op  # proto3 JSON: false is left out
    time.sleep(0.35)
    got = client.ok("GET", f"/certificatemanager/v1/{op['name']}")
    assert got["done"] is True and got["response"]["name"].endswith("/certificates/c1")


# --------------------------------------------------------------------------- response schemas

def test_every_response_matches_its_schema(fake):
    """The server checks each response itself (a mismatch is a 500); walk the main methods to exercise that."""
    fake.ok("POST", f"{C}/nodePools", gpu_pool(autoscaling={"enabled": True, "minNodeCount": 0, "maxNodeCount": 1}))
    fake.ok("GET", f"{C}/nodePools")
    fake.ok("POST", f"{GLOBAL}/securityPolicies", {"name": "armor"})
    fake.ok("GET", f"{GLOBAL}/securityPolicies")
    fake.ok("GET", f"{REGIONAL}/subnetworks")
    fake.ok("POST", f"{CRM}:getIamPolicy", {})
    route, _params = discovery.match("container", "GET", "v1/projects/p/locations/l/clusters/c/nodePools/n")
    bad = {"name": "x", "status": "EXPLODED"}
    assert discovery.check_response("container", route, bad)
    assert not discovery.check_response("container", route, fake.ok("GET", f"{C}/nodePools/gpupool"))


def test_over_a_real_socket():
    import requests

    client = Client()
    server = serve(client.fake)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}{C}/nodePools"
        assert requests.get(url, timeout=5).status_code == 401
        resp = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    finally:
        server.shutdown()


# --------------------------------------------------------------------------- what gcloud showed (test_gcloud_*.py)

def _urlsafe(value: str) -> str:
    """An etag or fingerprint as gcloud sends it back: decoded, then encoded in the URL-safe alphabet."""
    return value.replace("+", "-").replace("/", "_")


def test_etags_hold_a_character_of_both_alphabets_and_are_compared_as_bytes(fake):
    from gcp_fake.world import new_etag, same_bytes

    assert all(set(new_etag()) & {"+", "/"} for dummy in range(50))
    assert same_bytes("a+b/cA==", "a-b_cA") and not same_bytes("a+b/cA==", "a+b/dA==") and not same_bytes("", "")
    policy = fake.ok("POST", f"{CRM}:getIamPolicy", {})
    policy["etag"] = _urlsafe(policy["etag"])
    assert fake.ok("POST", f"{CRM}:setIamPolicy", {"policy": policy})["etag"]
    fake.ok("POST", f"{REGIONAL}/securityPolicies", {"name": "armor"})
    fingerprint = fake.ok("GET", f"{REGIONAL}/securityPolicies/armor")["fingerprint"]
    fake.ok("PATCH", f"{REGIONAL}/securityPolicies/armor", {"description": "x", "fingerprint": _urlsafe(fingerprint)})


def test_clusters_update_sets_node_pool_autoscaling(fake):
    fake.ok("POST", f"{C}/nodePools", gpu_pool(autoscaling={"enabled": True, "totalMaxNodeCount": 5}))
    update = {"name": C[len("/container/v1/"):], "update": {"desiredNodePoolId": "gpupool",
                                                            "desiredNodePoolAutoscaling": {
                                                                "enabled": True, "totalMinNodeCount": 0,
                                                                "totalMaxNodeCount": 3}}}
    op = fake.ok("PUT", C, update)
    assert op["operationType"] == "UPDATE_CLUSTER" and op["status"] == "DONE"
    assert fake.ok("GET", f"{C}/nodePools/gpupool")["autoscaling"] == {"enabled": True, "totalMaxNodeCount": 3,
                                                                       "locationPolicy": "BALANCED"}
    # gcloud's --no-enable-autoscaling: zeros and LOCATION_POLICY_UNSPECIFIED; GKE keeps an empty message.
    off = {"enabled": False, "autoprovisioned": False, "locationPolicy": "LOCATION_POLICY_UNSPECIFIED",
           "minNodeCount": 0, "maxNodeCount": 0, "totalMinNodeCount": 0, "totalMaxNodeCount": 0}
    fake.ok("PUT", C, {"update": {"desiredNodePoolId": "gpupool", "desiredNodePoolAutoscaling": off}})
    assert fake.ok("GET", f"{C}/nodePools/gpupool")["autoscaling"] == {}
    status, out = fake.call("PUT", C, {"update": {"desiredNodePoolAutoscaling": {"enabled": True,
                                                                                 "maxNodeCount": 2}}})
    assert status == 400 and "desired_node_pool_id" in error(out)["message"]
    status, out = fake.call("PUT", C, {"update": {"desiredNodePoolId": "gpupool", "desiredImageType": "UBUNTU",
                                                  "desiredNodePoolAutoscaling": {"enabled": False}}})
    assert status == 400 and "Exactly one update" in error(out)["message"]
    status, out = fake.call("PUT", C, {"update": {"desiredImageType": "UBUNTU"}})
    assert status == 501 and "desiredImageType" in error(out)["message"]


def test_cluster_as_gcloud_reads_it_and_list():
    client = Client()
    client.world.cluster_endpoint = "127.0.0.1:6443"
    client.world.cluster_ca_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    cluster = client.ok("GET", C)
    assert cluster["zone"] == cluster["location"] == "us-central1"  # gcloud names the kubeconfig context with zone
    assert cluster["endpoint"] == "127.0.0.1:6443"
    assert base64_decode(cluster["masterAuth"]["clusterCaCertificate"]).startswith("-----BEGIN CERTIFICATE-----")
    assert cluster["currentNodeCount"] == 2 and cluster["nodeConfig"]["machineType"] == "e2-standard-4"
    listed = client.ok("GET", "/container/v1/projects/local-project/locations/-/clusters")["clusters"]
    assert [c["name"] for c in listed] == ["local-cluster"]
    assert client.ok("GET", "/container/v1/projects/local-project/locations/us-central1-a/clusters") == {}


def base64_decode(value: str) -> str:
    import base64

    return base64.b64decode(value).decode()


def test_oauth_scopes_unset_get_only_logging_and_monitoring(fake):
    fake.ok("POST", f"{C}/nodePools", gpu_pool())
    assert fake.ok("GET", f"{C}/nodePools/gpupool")["config"]["oauthScopes"] == [
        "https://www.googleapis.com/auth/logging.write", "https://www.googleapis.com/auth/monitoring"]
    scopes = ["https://www.googleapis.com/auth/cloud-platform"]
    body = gpu_pool(name="other")
    body["nodePool"]["config"]["oauthScopes"] = scopes
    fake.ok("POST", f"{C}/nodePools", body)
    assert fake.ok("GET", f"{C}/nodePools/other")["config"]["oauthScopes"] == scopes


def test_proto3_json_leaves_default_values_out(fake):
    fake.ok("POST", f"{C}/nodePools", gpu_pool(initialNodeCount=0))
    pool = fake.ok("GET", f"{C}/nodePools/gpupool")
    assert "initialNodeCount" not in pool  # container: 0 is left out
    assert pool["config"]["diskSizeGb"] == 100
    fake.ok("POST", f"{GLOBAL}/securityPolicies", {"name": "armor"})
    rule = fake.ok("GET", f"{GLOBAL}/securityPolicies/armor")["rules"][0]
    assert rule["preview"] is False  # compute's JSON is not proto3's


def test_aggregated_lists_and_accelerator_types(fake):
    query = "?alt=json&includeAllScopes=True&maxResults=500&returnPartialSuccess=True"  # exactly what gcloud sends
    subnets = fake.ok("GET", f"/compute/compute/v1/projects/local-project/aggregated/subnetworks{query}")
    assert [s["name"] for s in subnets["items"]["regions/us-central1"]["subnetworks"]] == ["default"]
    assert subnets["items"]["regions/us-east1"]["warning"]["code"] == "NO_RESULTS_ON_PAGE"
    fake.ok("POST", f"{REGIONAL}/securityPolicies", {"name": "armor"})
    policies = fake.ok("GET", f"/compute/compute/v1/projects/local-project/aggregated/securityPolicies{query}")
    assert [p["name"] for p in policies["items"]["regions/us-central1"]["securityPolicies"]] == ["armor"]
    types = fake.ok("GET", f"/compute/compute/v1/projects/local-project/aggregated/acceleratorTypes{query}")
    zone = types["items"]["zones/us-central1-a"]["acceleratorTypes"]
    assert {"nvidia-l4", "nvidia-l4-vws", "nvidia-tesla-t4"} <= {a["name"] for a in zone}
    l4 = fake.ok("GET", "/compute/compute/v1/projects/local-project/zones/us-west1-b/acceleratorTypes/nvidia-l4")
    assert l4["description"] == "NVIDIA L4" and l4["maximumCardsPerInstance"] == 8
    assert fake.call("GET", "/compute/compute/v1/projects/local-project/zones/mars-1a/acceleratorTypes")[0] == 404
    # A parameter the discovery document lists nowhere is still refused.
    assert fake.call("GET", "/compute/compute/v1/projects/local-project/aggregated/subnetworks?nope=1")[0] == 400


def test_patch_rule_clears_what_its_update_mask_names(fake):
    fake.ok("POST", f"{GLOBAL}/securityPolicies", {"name": "armor"})
    fake.ok("POST", f"{GLOBAL}/securityPolicies/armor/addRule", {
        "priority": 10, "action": "deny(403)", "description": "keep",
        "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["10.0.0.0/8"]}}})
    # gcloud's `rules update 10 --action=allow`: updateMask=redirect_options,rate_limit_options, body action+priority
    fake.ok("POST", f"{GLOBAL}/securityPolicies/armor/patchRule?priority=10&updateMask=redirect_options%2C"
                    "rate_limit_options%2Cdescription", {"action": "allow", "priority": 10})
    rule = fake.ok("GET", f"{GLOBAL}/securityPolicies/armor/getRule?priority=10")
    assert rule["action"] == "allow" and "description" not in rule and rule["match"]["config"]["srcIpRanges"]


def test_promoting_a_backup_proxy_only_subnet_demotes_the_active_one(fake):
    body = {"network": "projects/local-project/global/networks/default", "purpose": "REGIONAL_MANAGED_PROXY"}
    fake.ok("POST", f"{REGIONAL}/subnetworks", dict(body, name="active", ipCidrRange="10.129.0.0/23", role="ACTIVE"))
    fake.ok("POST", f"{REGIONAL}/subnetworks", dict(body, name="backup", ipCidrRange="10.131.0.0/23", role="BACKUP"))
    backup = fake.ok("GET", f"{REGIONAL}/subnetworks/backup")
    fake.ok("PATCH", f"{REGIONAL}/subnetworks/backup?drainTimeoutSeconds=0",
            {"role": "ACTIVE", "fingerprint": _urlsafe(backup["fingerprint"])})
    roles = {s["name"]: s.get("role") for s in fake.ok("GET", f"{REGIONAL}/subnetworks")["items"]}
    assert roles == {"default": None, "active": "BACKUP", "backup": "ACTIVE"}
