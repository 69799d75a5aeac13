# -*- coding: utf-8 -*-
# Integration tests of the Google Cloud steps of site.yml (gpu_nodepool, gcp_prerequisites, the Cloud Armor
# security policy, the custom metrics adapter's IAM binding) against the local environment's GCP fake
# (hack/gcp_fake), which validates every request against Google's discovery documents. Playbooks run as a user
# runs them: site.yml from the repository root with the local inventory, one step selected by its tag, and the
# results are read back from the fake's REST API.
from __future__ import annotations

import datetime
import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from test_site import playbook

pytestmark = pytest.mark.integration

PROJECT = "projects/local-project"
CLUSTER = f"{PROJECT}/locations/us-central1/clusters/local-cluster"
REGION = f"{PROJECT}/regions/us-central1"


def short_id() -> str:
    return uuid.uuid4().hex[:6]


def get_json(local_env, path):
    got = local_env.gcp("GET", path)
    assert got.status_code == 200, got.text
    return got.json()


def site(local_env, tmp_path, tags, extra, *args):
    """site.yml with only `tags` (the data model is validated whatever the tags), into a namespace never created."""
    return playbook(local_env, tmp_path, "site.yml", "gcp-steps", "--tags", tags, *args, extra=extra)


def test_gpu_nodepool_creates_updates_in_place_and_refuses_a_recreate(local_env, tmp_path):
    name = "np-" + short_id()
    pool = {"name": name, "machine_type": "g2-standard-8",
            "accelerator": {"type": "nvidia-l4", "count": 1, "gpu_driver_version": "LATEST"},
            "node_locations": ["us-central1-a"], "initial_node_count": 1,
            "autoscaling": {"enabled": True, "total_min_node_count": 1, "total_max_node_count": 2}}
    path = f"/container/v1/{CLUSTER}/nodePools/{name}"
    try:
        # Check mode reports the creation and creates nothing.
        run = site(local_env, tmp_path, "gpu_nodepool", {"infgw_nodepools": [pool]}, "--check", "--diff")
        assert run.rc == 0, run.failures()
        assert run.changed_tasks() == ["Create or update the GKE node pools"]
        assert local_env.gcp("GET", path).status_code == 404

        run = site(local_env, tmp_path, "gpu_nodepool", {"infgw_nodepools": [pool]})
        assert run.rc == 0, run.failures()
        assert run.changed_tasks() == ["Create or update the GKE node pools"]
        created = get_json(local_env, path)
        assert created["status"] == "RUNNING"
        assert created["config"]["machineType"] == "g2-standard-8"
        accelerator = created["config"]["accelerators"][0]
        assert accelerator["acceleratorType"] == "nvidia-l4"
        assert accelerator["gpuDriverInstallationConfig"]["gpuDriverVersion"] == "LATEST"
        assert created["autoscaling"]["totalMaxNodeCount"] == 2
        nodes = local_env.wait_nodes(name, 1)  # the fake made the pool's node a kwok node of the cluster
        assert nodes[0]["metadata"]["labels"]["cloud.google.com/gke-accelerator"] == "nvidia-l4"
        assert nodes[0]["status"]["capacity"]["nvidia.com/gpu"] == "1"

        run = site(local_env, tmp_path, "gpu_nodepool", {"infgw_nodepools": [pool]})
        assert run.rc == 0, run.failures()
        assert run.stats["changed"] == 0, run.changed_tasks()

        # Autoscaling is updated in place: same pool (createTime kept), new bounds.
        bigger = dict(pool, autoscaling=dict(pool["autoscaling"], total_max_node_count=3))
        run = site(local_env, tmp_path, "gpu_nodepool", {"infgw_nodepools": [bigger]})
        assert run.rc == 0, run.failures()
        assert run.changed_tasks() == ["Create or update the GKE node pools"]
        updated = get_json(local_env, path)
        assert updated["autoscaling"]["totalMaxNodeCount"] == 3
        assert updated.get("createTime") == created.get("createTime")

        # Another machine type needs a new pool: refused, naming the field, and nothing changes.
        other = dict(bigger, machine_type="g2-standard-12")
        run = site(local_env, tmp_path, "gpu_nodepool", {"infgw_nodepools": [other]})
        assert run.rc != 0
        assert "machine_type" in run.failures() and "recreate" in run.failures(), run.failures()
        assert get_json(local_env, path)["config"]["machineType"] == "g2-standard-8"
    finally:
        local_env.gcp("DELETE", path)


def test_bad_node_pool_input_fails_before_any_request(local_env, tmp_path):
    name = "np-" + short_id()
    pool = {"name": name, "machine_type": "g2-standard-8", "accelerator": {"type": "nvidia-l5", "count": 1},
            "autoscaling": {"enabled": True, "total_min_node_count": 4, "total_max_node_count": 2}}
    run = site(local_env, tmp_path, "gpu_nodepool", {"infgw_nodepools": [pool]})
    assert run.rc != 0
    assert "infgw_nodepools[0].accelerator.type: unknown accelerator \"nvidia-l5\"" in run.failures(), run.failures()
    assert "infgw_nodepools[0].autoscaling: total_min_node_count (4) is greater than total_max_node_count (2)" \
        in run.failures()
    assert local_env.gcp("GET", f"/container/v1/{CLUSTER}/nodePools/{name}").status_code == 404


def test_cloud_armor_policy_rules_follow_the_data_model(local_env, tmp_path):
    name = "ca-" + short_id()
    ranges = [f"198.51.100.{i}/32" for i in range(12)]  # 12 ranges: two allow rules (at most 10 per rule)
    armor = {"enabled": True, "policy": name, "pools": ["gemma-3-1b"], "allowed_ip_ranges": ranges}
    path = f"/compute/compute/v1/{REGION}/securityPolicies/{name}"
    try:
        run = site(local_env, tmp_path, "cloud_armor_policy", {"infgw_cloud_armor": armor})
        assert run.rc == 0, run.failures()
        assert [t for t in run.changed_tasks() if t.startswith("Create or update the Cloud Armor security policy")]
        policy = get_json(local_env, path)
        rules = {r["priority"]: r for r in policy["rules"]}
        assert sorted(rules) == [1000, 1001, 2147483647]
        assert rules[1000]["action"] == "allow" and rules[1000]["match"]["config"]["srcIpRanges"] == ranges[:10]
        assert rules[1001]["match"]["config"]["srcIpRanges"] == ranges[10:]
        assert rules[2147483647]["action"] == "deny(403)"

        run = site(local_env, tmp_path, "cloud_armor_policy", {"infgw_cloud_armor": armor})
        assert run.rc == 0, run.failures()
        assert run.stats["changed"] == 0, run.changed_tasks()

        fewer = dict(armor, allowed_ip_ranges=ranges[:3], default_action="deny(404)")
        run = site(local_env, tmp_path, "cloud_armor_policy", {"infgw_cloud_armor": fewer})
        assert run.rc == 0, run.failures()
        rules = {r["priority"]: r for r in get_json(local_env, path)["rules"]}
        assert sorted(rules) == [1000, 2147483647]
        assert rules[2147483647]["action"] == "deny(404)"

        # An allow-list left empty would deny everything: refused before any request.
        run = site(local_env, tmp_path, "cloud_armor_policy", {"infgw_cloud_armor": dict(armor, allowed_ip_ranges=[])})
        assert run.rc != 0
        assert "infgw_cloud_armor.allowed_ip_ranges: empty" in run.failures(), run.failures()
    finally:
        local_env.gcp("DELETE", path)


def test_adapter_iam_binding_is_added_once(local_env, tmp_path):
    number = "9" + str(uuid.uuid4().int)[:11]  # a member of its own, so the test owns its binding
    member = (f"principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/"
              "local-project.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter")
    gcp = {"project": "local-project", "project_number": number, "region": "us-central1", "cluster": "local-cluster"}

    def members():
        policy = local_env.gcp("POST", "/cloudresourcemanager/v1/projects/local-project:getIamPolicy", {}).json()
        return [m for b in policy.get("bindings", []) if b["role"] == "roles/monitoring.viewer" for m in b["members"]]

    run = site(local_env, tmp_path, "hpa_metrics_iam", {"infgw_gcp": gcp})
    assert run.rc == 0, run.failures()
    assert "Grant the adapter's Workload Identity principal its role on the project" in run.changed_tasks()
    assert members().count(member) == 1
    run = site(local_env, tmp_path, "hpa_metrics_iam", {"infgw_gcp": gcp})
    assert run.rc == 0, run.failures()
    assert run.stats["changed"] == 0, run.changed_tasks()

    run = site(local_env, tmp_path, "hpa_metrics_iam", {"infgw_gcp": dict(gcp, project_number="")})
    assert run.rc != 0
    assert "infgw_gcp.project_number: empty" in run.failures(), run.failures()


def self_signed(tmp_path, host="*.example.com"):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    (tmp_path / "tls.crt").write_text(cert.public_bytes(serialization.Encoding.PEM).decode())
    (tmp_path / "tls.key").write_text(key_pem)
    return str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"), key_pem


def test_certificate_from_pem_files_key_never_printed(local_env, tmp_path):
    name = "cert-" + short_id()
    crt, key, key_pem = self_signed(tmp_path)
    extra = {"infgw_certificates": [{"name": name, "certificate_file": crt, "private_key_file": key}],
             "infgw_gateway": {"tls": {"mode": "certificate_manager", "certificates": [name]}}}
    path = f"/certificatemanager/v1/{PROJECT}/locations/us-central1/certificates/{name}"
    key_body = "".join(key_pem.strip().splitlines()[1:-1])[:64]
    try:
        run = site(local_env, tmp_path, "certificates", extra, "--diff")
        assert run.rc == 0, run.failures()
        assert "Create or update the Certificate Manager certificates" in run.changed_tasks()
        got = get_json(local_env, path)
        assert "*.example.com" in got["sanDnsnames"]
        assert key_body not in run.stdout + run.stderr

        run = site(local_env, tmp_path, "certificates", extra)
        assert run.rc == 0, run.failures()
        assert run.stats["changed"] == 0, run.changed_tasks()

        # A certificate the gateway does not use is a data model error.
        extra["infgw_gateway"] = {"tls": {"mode": "certificate_manager", "certificates": ["uc1-wildcard"]}}
        run = site(local_env, tmp_path, "certificates", extra)
        assert run.rc != 0
        assert f'infgw_certificates[0].name: "{name}" is not used by infgw_gateway.tls.certificates' in run.failures()
    finally:
        local_env.gcp("DELETE", path)


def test_proxy_only_subnet_is_created_once_per_region_and_network(local_env, tmp_path):
    path = f"/compute/compute/v1/{REGION}/subnetworks/proxy-only-subnet"
    if local_env.gcp("GET", path).status_code == 200:  # made by an earlier site.yml run on this environment
        assert local_env.gcp("DELETE", path).status_code == 200
        for _attempt in range(100):
            if local_env.gcp("GET", path).status_code == 404:
                break
            time.sleep(0.2)
    run = site(local_env, tmp_path, "proxy_subnet", {})
    assert run.rc == 0, run.failures()
    assert run.changed_tasks() == ["Create the proxy-only subnet of the region and network"]
    subnet = get_json(local_env, path)
    assert subnet["purpose"] == "REGIONAL_MANAGED_PROXY" and subnet["role"] == "ACTIVE"
    assert subnet["ipCidrRange"] == "10.129.0.0/23"
    run = site(local_env, tmp_path, "proxy_subnet", {})
    assert run.rc == 0, run.failures()
    assert run.stats["changed"] == 0, run.changed_tasks()

    # A second ACTIVE proxy-only subnet in the same region and network is refused by Google: the error is shown.
    run = site(local_env, tmp_path, "proxy_subnet",
               {"infgw_proxy_subnet": {"name": "proxy-two", "ip_cidr_range": "10.131.0.0/23"}})
    assert run.rc != 0
    assert "ACTIVE" in run.failures(), run.failures()


def test_teardown_deletes_gcp_resources_only_when_asked(local_env, tmp_path):
    pool_name, policy = "np-" + short_id(), "ca-" + short_id()
    number = "8" + str(uuid.uuid4().int)[:11]
    extra = {"infgw_nodepools": [{"name": pool_name, "machine_type": "g2-standard-8",
                                  "accelerator": {"type": "nvidia-l4", "count": 1}, "node_locations": ["us-central1-a"],
                                  "initial_node_count": 0,
                                  "autoscaling": {"enabled": True, "total_min_node_count": 0, "total_max_node_count": 1}}],
             "infgw_cloud_armor": {"enabled": True, "policy": policy, "pools": ["gemma-3-1b"],
                                   "allowed_ip_ranges": ["203.0.113.0/24"]},
             "infgw_gcp": {"project": "local-project", "project_number": number, "region": "us-central1",
                           "cluster": "local-cluster"}}
    pool_path = f"/container/v1/{CLUSTER}/nodePools/{pool_name}"
    policy_path = f"/compute/compute/v1/{REGION}/securityPolicies/{policy}"

    def has_member():
        policy_doc = local_env.gcp("POST", "/cloudresourcemanager/v1/projects/local-project:getIamPolicy", {}).json()
        return any(number in m for b in policy_doc.get("bindings", []) for m in b["members"])

    try:
        run = site(local_env, tmp_path, "gpu_nodepool,cloud_armor_policy,hpa_metrics_iam", extra)
        assert run.rc == 0, run.failures()
        assert local_env.gcp("GET", pool_path).status_code == 200
        assert local_env.gcp("GET", policy_path).status_code == 200
        assert has_member()

        run = playbook(local_env, tmp_path, "playbooks/teardown.yml", "gcp-steps", extra=extra)
        assert run.rc == 0, run.failures()
        assert local_env.gcp("GET", pool_path).status_code == 200  # kept unless asked
        assert has_member()

        run = playbook(local_env, tmp_path, "playbooks/teardown.yml", "gcp-steps",
                       extra=dict(extra, infgw_teardown_gcp=True))
        assert run.rc == 0, run.failures()
        assert local_env.gcp("GET", pool_path).status_code == 404
        assert local_env.gcp("GET", policy_path).status_code == 404
        assert not has_member()
    finally:
        local_env.gcp("DELETE", pool_path)
        local_env.gcp("DELETE", policy_path)
