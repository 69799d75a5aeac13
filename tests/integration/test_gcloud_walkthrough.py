"""Google's gcloud CLI as the judge of the GCP fake: the walkthrough's gcloud commands and their companions.

The walkthrough (README.seed.md, and the v0.4.0 variant in history-v0.4.0/) makes its Google Cloud side with gcloud:
`projects describe`, `container node-pools create gpupool ...`, `compute accelerator-types list --filter=...`,
`projects add-iam-policy-binding ... --condition None`. A user then reads, changes and deletes what they made with
the natural companions (describe, list, update, resize, delete, get-iam-policy, get-credentials, operations wait),
and makes the resources the walkthrough takes for granted (the Cloud Armor policy, the proxy-only subnet, the
certificate). Every command here runs the real gcloud (528) against hack/gcp_fake, with an isolated configuration
(hack/gcp_fake/gcloud_config.py), and each run is traced: a connection anywhere but the fake fails the test.

The fake's long-running operations are made instant for this module (gcloud polls container operations every 5 s),
except where a test is about operations, which sets a delay itself.
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests

# tests/integration is on sys.path under pytest
from gcloud_cli import Gcloud  # pylint: disable=import-error

pytestmark = pytest.mark.integration

CLUSTER = ("--cluster=local-cluster", "--location=us-central1")
GCP_CLUSTER = "projects/local-project/locations/us-central1/clusters/local-cluster"
REGIONAL = "/compute/compute/v1/projects/local-project/regions/us-central1"
GCLOUD_DEFAULT_SCOPES = sorted([
    "https://www.googleapis.com/auth/devstorage.read_only", "https://www.googleapis.com/auth/logging.write",
    "https://www.googleapis.com/auth/monitoring", "https://www.googleapis.com/auth/service.management.readonly",
    "https://www.googleapis.com/auth/servicecontrol", "https://www.googleapis.com/auth/trace.append"])
ADAPTER = ("principal://iam.googleapis.com/projects/{num}/locations/global/workloadIdentityPools/local-project.svc.id."
           "goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter")


@pytest.fixture(scope="module")
def gcloud(local_env, tmp_path_factory):
    config = requests.get(f"{local_env.gcp_url}/_fake/config", timeout=10).json()
    requests.post(f"{local_env.gcp_url}/_fake/config", json={"operation_delay_seconds": 0}, timeout=10)
    cli = Gcloud(local_env, tmp_path_factory.mktemp("gcloud"))
    yield cli
    requests.post(f"{local_env.gcp_url}/_fake/config",
                  json={"operation_delay_seconds": config["operation_delay_seconds"]}, timeout=10)
    total = sum(run["seconds"] for run in cli.runs)
    print(f"\n{len(cli.runs)} gcloud/kubectl runs, {total:.1f}s:")
    for run in cli.runs:
        print(f"  {run['seconds']:5.2f}s rc={run['rc']} {' '.join(run['argv'])}")


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _pool(gcloud, name):
    return gcloud.json("container", "node-pools", "describe", name, *CLUSTER)


def _fake_pool(local_env, name):
    """The pool read from the fake directly (a gcloud describe costs a second; one per test proves it parses)."""
    got = local_env.gcp("GET", f"/container/v1/{GCP_CLUSTER}/nodePools/{name}")
    assert got.status_code == 200, got.text
    return got.json()


def _described(value):
    """gcloud compute security-policies describe --format=json prints a one-element list."""
    return value[0] if isinstance(value, list) else value


def test_walkthrough_node_pool_and_its_companions(gcloud, local_env):
    """README.seed.md's `node-pools create gpupool` (total limits, three zones, latest driver), then what a user does
    with it: describe, list, raise the limit in place (clusters.update), resize without the autoscaler, delete.
    (Its `projects describe` for the project number runs in the IAM test, which uses the number.)"""
    name = _name("gpupool")
    gcloud("container", "node-pools", "create", name, "--cluster=local-cluster", "--project=local-project",
           "--machine-type=g2-standard-8", "--accelerator", "type=nvidia-l4,count=1,gpu-driver-version=latest",
           "--location=us-central1", "--node-locations=us-central1-a,us-central1-b,us-central1-c",
           "--enable-autoscaling", "--total-min-nodes=0", "--total-max-nodes=5", "--num-nodes=0")
    try:
        pool = _pool(gcloud, name)
        assert pool["status"] == "RUNNING"
        assert pool["autoscaling"] == {"enabled": True, "totalMaxNodeCount": 5, "locationPolicy": "BALANCED"}
        assert pool["config"]["accelerators"] == [{"acceleratorCount": "1", "acceleratorType": "nvidia-l4",
                                                   "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]
        assert sorted(pool["config"]["oauthScopes"]) == GCLOUD_DEFAULT_SCOPES  # gcloud sends its six defaults
        assert sorted(pool["locations"]) == ["us-central1-a", "us-central1-b", "us-central1-c"]
        assert "initialNodeCount" not in pool  # proto3 JSON: 0 is left out, as GKE does
        listed = gcloud.json("container", "node-pools", "list", *CLUSTER)
        assert {"default-pool", name} <= {p["name"] for p in listed}

        # Raise the limit in place: gcloud sends clusters.update with desiredNodePoolAutoscaling.
        gcloud("container", "node-pools", "update", name, *CLUSTER, "--enable-autoscaling", "--total-max-nodes=3")
        assert _fake_pool(local_env, name)["autoscaling"]["totalMaxNodeCount"] == 3
        # A label in place (nodePools.update).
        gcloud("container", "node-pools", "update", name, *CLUSTER, "--node-labels=team=ml")
        assert _fake_pool(local_env, name)["config"]["labels"] == {"team": "ml"}

        # Fixed size: the autoscaler off, then one node per zone; the fake makes them kwok nodes.
        gcloud("container", "node-pools", "update", name, *CLUSTER, "--no-enable-autoscaling")
        assert _fake_pool(local_env, name)["autoscaling"] == {}
        gcloud("container", "clusters", "resize", "local-cluster", f"--node-pool={name}", "--num-nodes=1",
               "--location=us-central1", "--quiet")
        nodes = local_env.wait_nodes(name, 3)
        assert {n["metadata"]["labels"]["team"] for n in nodes} == {"ml"}
        assert {n["metadata"]["labels"]["cloud.google.com/gke-accelerator"] for n in nodes} == {"nvidia-l4"}
    finally:
        gcloud("container", "node-pools", "delete", name, *CLUSTER, "--quiet")
    assert name not in {p["name"] for p in gcloud.json("container", "node-pools", "list", *CLUSTER)}
    local_env.wait_nodes(name, 0)


def test_v040_node_pool_per_zone_limits_driver_update_and_operations(gcloud, local_env):
    """history-v0.4.0's variant (one zone, per-zone limits), the GPU driver changed in place as gcloud does it, the
    switch to total limits refused as the API reference says, and the operations of an --async delete."""
    name = _name("gpupool")
    gcloud("container", "node-pools", "create", name, "--cluster=local-cluster", "--project=local-project",
           "--machine-type=g2-standard-8", "--accelerator", "type=nvidia-l4,count=1,gpu-driver-version=latest",
           "--location=us-central1", "--node-locations=us-central1-c",
           "--num-nodes=0", "--enable-autoscaling", "--min-nodes=0", "--max-nodes=5")
    deleted = False
    try:
        assert _fake_pool(local_env, name)["autoscaling"] == {"enabled": True, "maxNodeCount": 5,
                                                              "locationPolicy": "BALANCED"}
        # A minimum of one node per zone: the pool grows to it.
        gcloud("container", "node-pools", "update", name, *CLUSTER, "--enable-autoscaling", "--min-nodes=1",
               "--max-nodes=2")
        assert _fake_pool(local_env, name)["autoscaling"] == {"enabled": True, "minNodeCount": 1, "maxNodeCount": 2,
                                                              "locationPolicy": "BALANCED"}
        local_env.wait_nodes(name, 1)
        # gcloud keeps the pool's per-zone limits and adds the total ones: the two kinds are mutually exclusive.
        err = gcloud.fails("container", "node-pools", "update", name, *CLUSTER, "--enable-autoscaling",
                           "--total-max-nodes=3")
        assert "cannot both be set" in err

        # The driver version in place: nodePools.update with the accelerator.
        gcloud("container", "node-pools", "update", name, *CLUSTER,
               "--accelerator", "type=nvidia-l4,count=1,gpu-driver-version=default")
        driver = _pool(gcloud, name)["config"]["accelerators"][0]["gpuDriverInstallationConfig"]
        assert driver == {"gpuDriverVersion": "DEFAULT"}

        # An --async delete, its operation described and waited for, as a user following it would.
        requests.post(f"{local_env.gcp_url}/_fake/config", json={"operation_delay_seconds": 1.5}, timeout=10)
        try:
            op_name = gcloud("container", "node-pools", "delete", name, *CLUSTER, "--quiet", "--async",
                             "--format=value(name)").stdout.strip()
            deleted = True
            assert op_name.startswith("operation-")
            described = gcloud.json("container", "operations", "describe", op_name, "--location=us-central1")
            assert described["operationType"] == "DELETE_NODE_POOL"
            assert described["targetLink"].endswith(f"/nodePools/{name}")
            listed = gcloud.json("container", "operations", "list", "--location=us-central1")
            assert op_name in {o["name"] for o in listed}
            gcloud("container", "operations", "wait", op_name, "--location=us-central1")
        finally:
            requests.post(f"{local_env.gcp_url}/_fake/config", json={"operation_delay_seconds": 0}, timeout=10)
        assert "not found" in gcloud.fails("container", "node-pools", "describe", name, *CLUSTER).lower()
    finally:
        if not deleted:
            gcloud("container", "node-pools", "delete", name, *CLUSTER, "--quiet")
    local_env.wait_nodes(name, 0)


def test_accelerator_types_filter_of_the_walkthrough(gcloud):
    found = gcloud.json("compute", "accelerator-types", "list",
                        "--filter=(name:nvidia-l4 AND zone:(us-central* us-west1*)) AND NOT name:*-vws")
    zones = sorted(a["zone"].rsplit("/", 1)[-1] for a in found)
    assert {a["name"] for a in found} == {"nvidia-l4"}
    assert "us-central1-a" in zones and "us-west1-b" in zones and not any(z.startswith("us-east") for z in zones)
    assert gcloud.json("compute", "accelerator-types", "describe", "nvidia-l4",
                       "--zone=us-central1-a")["maximumCardsPerInstance"] == 8


def test_walkthrough_iam_binding_and_its_companions(gcloud):
    """The custom metrics adapter's binding exactly as the walkthrough grants it (its project number read with
    gcloud), read back, granted again, revoked; and a stale etag refused. The fake's etags always hold a '+' or
    '/', which gcloud sends back in the URL-safe alphabet."""
    number = gcloud("projects", "describe", "local-project", "--format=value(projectNumber)").stdout.strip()
    member = ADAPTER.format(num=number)

    def members(policy):
        return {m for b in policy.get("bindings", []) if b["role"] == "roles/monitoring.viewer" for m in b["members"]}

    before = gcloud.json("projects", "get-iam-policy", "local-project")
    had = member in members(before)
    for dummy in range(2):  # the second grant changes nothing and still succeeds
        granted = gcloud.json("projects", "add-iam-policy-binding", "projects/local-project", "--role",
                              "roles/monitoring.viewer", "--condition", "None", f"--member={member}")
        assert member in members(granted)
    gcloud("projects", "remove-iam-policy-binding", "local-project", "--role", "roles/monitoring.viewer",
           "--condition", "None", f"--member={member}")
    policy = gcloud.json("projects", "get-iam-policy", "local-project")
    assert member not in members(policy)

    # set-iam-policy with the etag it read; a second write with that (now stale) etag is refused.
    policy_file = gcloud.workdir / "policy.json"
    policy_file.write_text(json.dumps(policy))
    gcloud("projects", "set-iam-policy", "local-project", str(policy_file))
    assert "concurrent policy changes" in gcloud.fails("projects", "set-iam-policy", "local-project", str(policy_file))
    if had:
        gcloud("projects", "add-iam-policy-binding", "local-project", "--role", "roles/monitoring.viewer",
               "--condition", "None", f"--member={member}")


def test_cloud_armor_policy_rules_and_fingerprints(gcloud, local_env):
    name = _name("uc1-security-policy")
    where = ("--region=us-central1",)
    gcloud("compute", "security-policies", "create", name, *where, "--type=CLOUD_ARMOR", "--description=walkthrough")
    try:
        gcloud("compute", "security-policies", "rules", "create", "1000", f"--security-policy={name}", *where,
               "--src-ip-ranges=203.0.113.0/24,198.51.100.7/32", "--action=allow")
        gcloud("compute", "security-policies", "rules", "update", "2147483647", f"--security-policy={name}", *where,
               "--action=deny-403")
        policy = _described(gcloud.json("compute", "security-policies", "describe", name, *where))
        rules = {r["priority"]: r for r in policy["rules"]}
        assert set(rules) == {1000, 2147483647}
        assert rules[1000]["action"] == "allow" and rules[2147483647]["action"] == "deny(403)"
        assert sorted(rules[1000]["match"]["config"]["srcIpRanges"]) == ["198.51.100.7/32", "203.0.113.0/24"]
        # update reads the fingerprint and sends it back (URL-safe alphabet): accepted.
        gcloud("compute", "security-policies", "update", name, *where, "--description=office only")
        assert local_env.gcp("GET", f"{REGIONAL}/securityPolicies/{name}").json()["description"] == "office only"
        assert name in {p["name"] for p in gcloud.json("compute", "security-policies", "list", "--regions=us-central1")}
        assert name in {p["name"] for p in gcloud.json("compute", "security-policies", "list")}  # aggregated
        assert _described(gcloud.json("compute", "security-policies", "rules", "describe", "1000",
                                      f"--security-policy={name}", *where))["action"] == "allow"
        assert "default rule cannot be removed" in gcloud.fails(
            "compute", "security-policies", "rules", "delete", "2147483647", f"--security-policy={name}", *where)
        gcloud("compute", "security-policies", "rules", "delete", "1000", f"--security-policy={name}", *where)
        policy = local_env.gcp("GET", f"{REGIONAL}/securityPolicies/{name}").json()
        assert [r["priority"] for r in policy["rules"]] == [2147483647]
    finally:
        gcloud("compute", "security-policies", "delete", name, *where)


def test_proxy_only_subnets_one_active_per_region(gcloud):
    """Proxy-only subnets in us-west1 (site.yml's is in us-central1): one ACTIVE per region and network; promoting
    the BACKUP one demotes the ACTIVE one."""
    active, backup = _name("proxy-only"), _name("proxy-backup")
    where = ("--region=us-west1",)
    create = ("compute", "networks", "subnets", "create")
    gcloud(*create, active, "--purpose=REGIONAL_MANAGED_PROXY", "--role=ACTIVE", *where, "--network=default",
           "--range=10.140.0.0/23")
    try:
        assert "ACTIVE subnetwork with purpose" in gcloud.fails(
            *create, _name("proxy-second"), "--purpose=REGIONAL_MANAGED_PROXY", "--role=ACTIVE", *where,
            "--network=default", "--range=10.142.0.0/23")
        gcloud(*create, backup, "--purpose=REGIONAL_MANAGED_PROXY", "--role=BACKUP", *where, "--network=default",
               "--range=10.144.0.0/23")
        gcloud("compute", "networks", "subnets", "update", backup, *where, "--role=ACTIVE", "--drain-timeout=0s")
        roles = {s["name"]: s.get("role") for s in gcloud.json(
            "compute", "networks", "subnets", "list", "--network=default", "--regions=us-west1",
            "--filter=purpose=REGIONAL_MANAGED_PROXY")}
        assert roles == {active: "BACKUP", backup: "ACTIVE"}
        subnet = gcloud.json("compute", "networks", "subnets", "describe", backup, *where)
        assert subnet["ipCidrRange"] == "10.144.0.0/23" and subnet["state"] == "READY"
    finally:
        for name in (backup, active):
            gcloud("compute", "networks", "subnets", "delete", name, *where, "--quiet", check=False)
    assert not {active, backup} & {s["name"] for s in gcloud.json("compute", "networks", "subnets", "list")}


def test_certificate_manager_certificate(gcloud, local_env):
    pki = local_env.kubeconfig.rsplit("/", 1)[0] + "/pki"
    name = _name("uc1-wildcard")
    where = ("--location=us-central1",)
    gcloud("certificate-manager", "certificates", "create", name, f"--certificate-file={pki}/gateway-tls.crt",
           f"--private-key-file={pki}/gateway-tls.key", *where)
    try:
        cert = gcloud.json("certificate-manager", "certificates", "describe", name, *where)
        assert sorted(cert["sanDnsnames"]) == ["*.example.com", "example.com"]
        gcloud("certificate-manager", "certificates", "update", name, *where, "--description=gateway",
               "--update-labels=app=inference-gateway")
        cert = gcloud.json("certificate-manager", "certificates", "describe", name, *where)
        assert cert["description"] == "gateway" and cert["labels"] == {"app": "inference-gateway"}
        gcloud("certificate-manager", "certificates", "update", name, *where,
               f"--certificate-file={pki}/gateway-tls.crt", f"--private-key-file={pki}/gateway-tls.key")
        assert name in {c["name"].rsplit("/", 1)[-1]
                        for c in gcloud.json("certificate-manager", "certificates", "list", *where)}
    finally:
        gcloud("certificate-manager", "certificates", "delete", name, *where, "--quiet")


def test_get_credentials_reaches_the_local_api_server(gcloud):
    cluster = gcloud.json("container", "clusters", "describe", "local-cluster", "--location=us-central1")
    assert cluster["zone"] == cluster["location"] == "us-central1"
    assert cluster["endpoint"] == f"127.0.0.1:{gcloud.apiserver_port}" and cluster["masterAuth"]["clusterCaCertificate"]
    assert [c["name"] for c in gcloud.json("container", "clusters", "list")] == ["local-cluster"]
    gcloud("container", "clusters", "get-credentials", "local-cluster", "--location=us-central1")
    context = gcloud.kubectl("config", "current-context").stdout.strip()
    assert context == "gke_local-project_us-central1_local-cluster"
    # The exec plugin gets gcloud's token; TLS is verified against the CA gcloud wrote.
    assert json.loads(gcloud.kubectl("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]["username"] \
        == "gcloud-user"
    nodes = json.loads(gcloud.kubectl("get", "nodes", "-l", "cloud.google.com/gke-nodepool=default-pool",
                                      "-o", "json").stdout)["items"]
    assert len(nodes) == 2
