# -*- coding: utf-8 -*-
# Integration tests of the Google Cloud modules, run through ansible-playbook against the local fake of the
# Google APIs (hack/gcp_fake): create, no-op re-run, update in place, check mode, the recreate-required
# failure, the IAM etag race, a 429 burst, an operation that ends in error, 403/404 messages, and service
# account auth through the fake's token endpoint.
#
# The fake is the local environment's (the `local_env` fixture, its `gcp_env`) when the environment runs
# one; with INFGW_GCP_FAKE_STANDALONE=1, or while the environment does not have it, the tests start their
# own instance on a free port. Either way they never reset the fake: every resource name carries a per-run
# suffix and every injected fault matches only those names, so other tests sharing the fake are not disturbed.
from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from kubernetes import client as kubernetes_client

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
COLLECTIONS = REPO / ".local" / "collections"
FQ = "gke_ai.inference_gateway."
PROJECT = "local-project"
REGION = "us-central1"
CLUSTER = "local-cluster"
ROLE = "roles/monitoring.viewer"
RUN = uuid.uuid4().hex[:6]


class Fake(object):
    """The GCP fake: its URL, the environment variables env.sh exports for it, and its control endpoints."""

    def __init__(self, url, env, token):
        self.url = url
        self.env = env
        self.token = token

    def api(self, method, path, body=None):
        return requests.request(method, self.url + path, json=body, timeout=60,
                                headers={"Authorization": "Bearer %s" % self.token})

    def fault(self, **fault):
        r = requests.post(self.url + "/_fake/faults", json=fault, timeout=10)
        assert r.status_code == 200, r.text

    def clear_faults(self):
        requests.delete(self.url + "/_fake/faults", timeout=10)

    def config(self, **config):
        r = requests.post(self.url + "/_fake/config", json=config, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _service_account_info(token_uri):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": PROJECT, "private_key_id": uuid.uuid4().hex, "private_key": pem,
            "client_email": "infgw-test@%s.iam.gserviceaccount.com" % PROJECT, "client_id": "1",
            "token_uri": token_uri}


@pytest.fixture(scope="module")
def fake(request, tmp_path_factory):
    if os.environ.get("INFGW_GCP_FAKE_STANDALONE") != "1":
        local_env = request.getfixturevalue("local_env")
        if hasattr(local_env, "gcp_env"):
            env = dict(local_env.gcp_env)
            yield Fake(local_env.gcp_url, env, env["GCP_ACCESS_TOKEN"])
            return
    tmp = tmp_path_factory.mktemp("gcp-fake")
    port = _free_port()
    token = "ya29.test-" + uuid.uuid4().hex
    sa_file = tmp / "sa.json"
    sa_file.write_text(json.dumps(_service_account_info("http://127.0.0.1:%d/oauth2/token" % port)))
    log = open(tmp / "fake.log", "w")
    proc = subprocess.Popen([sys.executable, str(REPO / "hack" / "gcp_fake" / "run.py"), "--port", str(port),
                             "--token", token, "--service-account-file", str(sa_file), "--operation-delay", "0.5"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + "/_fake/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (tmp / "fake.log").read_text()
        time.sleep(0.2)
    env = {"INFGW_GCP_API_ENDPOINT": url + "/{service}/", "GCP_AUTH_KIND": "accesstoken", "GCP_ACCESS_TOKEN": token,
           "GCP_PROJECT": PROJECT, "INFGW_LOCAL_GCP_PROJECT": PROJECT, "INFGW_LOCAL_GCP_LOCATION": REGION,
           "INFGW_LOCAL_GCP_CLUSTER": CLUSTER, "INFGW_LOCAL_GCP_SERVICE_ACCOUNT_FILE": str(sa_file)}
    try:
        yield Fake(url, env, token)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def run_many(fake, tmp_path):
    """run_many([(module, args, opts), ...], env=None) -> the registered results, one ansible-playbook run.

    ``opts`` may set ``check`` and ``diff`` (task keywords ``check_mode`` and ``diff``). Failed tasks do not
    stop the play; their results say ``failed``. Batching keeps the tests quick: ansible-playbook's start-up
    costs seconds on a busy two-core machine.
    """
    counter = [0]

    def _run(steps, env=None):
        counter[0] += 1
        out = tmp_path / ("result-%d.json" % counter[0])
        tasks = []
        for index, step in enumerate(steps):
            module, args = step[0], step[1]
            opts = step[2] if len(step) > 2 else {}
            tasks.append({"name": "step %d: %s" % (index, module), FQ + module: args, "register": "r%d" % index,
                          "ignore_errors": True, "check_mode": bool(opts.get("check")),
                          "diff": bool(opts.get("diff"))})
        tasks.append({"name": "save the results", "ansible.builtin.copy": {
            "content": "{{ [%s] | to_json }}" % ", ".join("r%d" % i for i in range(len(steps))), "dest": str(out)},
            "check_mode": False, "diff": False})
        playbook = tmp_path / ("play-%d.yml" % counter[0])
        playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
        cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)]
        penv = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
                    ANSIBLE_RETRY_FILES_ENABLED="False", **fake.env)
        for key in ("GCP_SERVICE_ACCOUNT_FILE", "GCP_SERVICE_ACCOUNT_CONTENTS", "GCP_SCOPES"):
            penv.pop(key, None)
        penv.update(env or {})
        proc = subprocess.run(cmd, cwd=str(tmp_path), env=penv, capture_output=True, text=True, timeout=900,
                              check=False)
        assert out.exists(), "ansible-playbook did not run the tasks:\n%s\n%s" % (proc.stdout, proc.stderr)
        results = json.loads(out.read_text())
        for result in results:
            result["_stdout"] = proc.stdout
        return results

    return _run


@pytest.fixture
def run(run_many):
    """run(module, args, check=False, diff=False, env=None) -> the registered result of one task."""
    def _run(module, args, check=False, diff=False, env=None):
        return run_many([(module, args, {"check": check, "diff": diff})], env=env)[0]
    return _run


def cluster_path():
    return "/container/v1/projects/%s/locations/%s/clusters/%s" % (PROJECT, REGION, CLUSTER)


def pool_args(name, **kw):
    args = dict(location=REGION, cluster=CLUSTER, name=name, machine_type="g2-standard-8",
                accelerator={"type": "nvidia-l4", "count": 1, "gpu_driver_version": "LATEST"},
                node_locations=["us-central1-a", "us-central1-b", "us-central1-c"],
                autoscaling={"enabled": True, "total_min_node_count": 0, "total_max_node_count": 5},
                initial_node_count=0)
    args.update(kw)
    return args


@pytest.fixture
def pool_name(fake):
    name = "t%s-%s" % (RUN, uuid.uuid4().hex[:4])
    yield name
    fake.clear_faults()
    path = "%s/nodePools/%s" % (cluster_path(), name)
    for dummy in range(60):  # delete what the test left (a busy pool answers 400 until its operation is done)
        r = fake.api("DELETE", path)
        if r.status_code in (200, 404):
            break
        time.sleep(0.5)


# --------------------------------------------------------------------------------------
# gke_node_pool


def test_node_pool_lifecycle(fake, run, run_many, pool_name):
    args = pool_args(pool_name)
    checked = run("gke_node_pool", args, check=True, diff=True)
    assert checked["changed"] is True and checked["actions"] == ["create"], checked
    assert fake.api("GET", "%s/nodePools/%s" % (cluster_path(), pool_name)).status_code == 404

    created, again = run_many([("gke_node_pool", args), ("gke_node_pool", args)])
    assert created.get("failed") is not True, created
    assert created["changed"] is True and created["node_pool"]["status"] == "RUNNING"
    accel = created["node_pool"]["config"]["accelerators"][0]
    assert accel["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "LATEST"}
    assert created["node_pool"]["autoscaling"]["totalMaxNodeCount"] == 5
    assert again["changed"] is False and again["actions"] == [], again

    wider = pool_args(pool_name, autoscaling={"total_max_node_count": 8}, labels={"team": "ml"},
                      taints=[{"key": "dedicated", "value": "gpu", "effect": "NO_SCHEDULE"}])
    preview = run("gke_node_pool", wider, check=True, diff=True)
    assert preview["changed"] is True
    assert preview["actions"] == ["update_labels", "update_taints", "set_autoscaling"]
    assert preview["diff"]["before"]["autoscaling"]["total_max_node_count"] == 5
    assert preview["diff"]["after"]["autoscaling"]["total_max_node_count"] == 8
    unchanged = fake.api("GET", "%s/nodePools/%s" % (cluster_path(), pool_name)).json()
    assert unchanged["autoscaling"]["totalMaxNodeCount"] == 5

    absent = dict(location=REGION, cluster=CLUSTER, name=pool_name, state="absent")
    updated, unchanged_again, gone, gone_again = run_many([
        ("gke_node_pool", wider), ("gke_node_pool", wider), ("gke_node_pool", absent), ("gke_node_pool", absent)])
    assert updated["changed"] is True and updated["actions"] == ["update_labels", "update_taints", "set_autoscaling"]
    assert updated["node_pool"]["autoscaling"]["totalMaxNodeCount"] == 8
    assert updated["node_pool"]["config"]["labels"] == {"team": "ml"}
    assert len(updated["operations"]) == 3
    assert unchanged_again["changed"] is False
    assert gone["changed"] is True and gone_again["changed"] is False
    assert fake.api("GET", "%s/nodePools/%s" % (cluster_path(), pool_name)).status_code == 404


def test_node_pool_recreate_required_then_recreate(fake, run, run_many, pool_name):
    bigger = pool_args(pool_name, machine_type="g2-standard-16", disk_size_gb=200)
    created, refused = run_many([("gke_node_pool", pool_args(pool_name)), ("gke_node_pool", bigger)])
    assert created["changed"] is True
    assert refused.get("failed") is True
    assert "machine_type (is g2-standard-8, wanted g2-standard-16)" in refused["msg"]
    assert "disk_size_gb" in refused["msg"] and "recreate: true" in refused["msg"]
    pool = fake.api("GET", "%s/nodePools/%s" % (cluster_path(), pool_name)).json()
    assert pool["config"]["machineType"] == "g2-standard-8"

    recreated, again = run_many([("gke_node_pool", dict(bigger, recreate=True)),
                                 ("gke_node_pool", dict(bigger, recreate=True))])
    assert recreated.get("failed") is not True, recreated
    assert recreated["actions"] == ["delete", "create"]
    assert recreated["node_pool"]["config"]["machineType"] == "g2-standard-16"
    assert again["changed"] is False


def test_node_pool_rides_out_a_429_burst(fake, run, pool_name):
    fake.fault(method="GET", path_regex="/nodePools/%s$" % pool_name, status=503, count=1)
    fake.fault(method="POST", path_regex="/clusters/%s/nodePools$" % CLUSTER, status=429, count=1, retry_after=2,
               message="Quota exceeded for quota metric 'Requests'")
    fake.fault(method="POST", path_regex="/clusters/%s/nodePools$" % CLUSTER, status=429, count=1,
               message="Quota exceeded for quota metric 'Requests'")
    created = run("gke_node_pool", pool_args(pool_name))
    assert created.get("failed") is not True, created
    retries = [e for e in created["api_log"] if e["event"] == "retry"]
    assert [e["reason"] for e in retries] == ["HTTP 503", "HTTP 429", "HTTP 429"]
    assert retries[1]["delay"] >= 2  # Retry-After: 2 honoured
    assert created["node_pool"]["name"] == pool_name


def test_node_pool_operation_error_is_surfaced(fake, run, pool_name):
    fake.fault(operation_error={"path_regex": "/nodePools$", "code": 8, "count": 1,
                                "message": "Insufficient regional quota to satisfy request: resource "
                                           "\"NVIDIA_L4_GPUS\": request requires '3.0' and is short '2.0'."})
    failed = run("gke_node_pool", pool_args(pool_name, initial_node_count=1))
    assert failed.get("failed") is True
    assert failed["error"]["kind"] == "operation"
    assert "create node pool %s failed: operation" % pool_name in failed["msg"]
    assert "NVIDIA_L4_GPUS" in failed["msg"]


def test_missing_cluster_and_invalid_member_fail_with_clear_messages(run_many):
    cluster, member = run_many([
        ("gke_node_pool", pool_args("p" + RUN, cluster="no-such-cluster")),
        ("project_iam_member", dict(role=ROLE, member="principal://iam.googleapis.com/projects/local-project/"
                                                      "locations/global/workloadIdentityPools/p/subject/x"))])
    assert cluster.get("failed") is True
    assert "cluster projects/%s/locations/%s/clusters/no-such-cluster not found" % (PROJECT, REGION) in cluster["msg"]
    assert member.get("failed") is True and "project number" in member["msg"]


def test_node_pool_with_service_account_auth(fake, run, pool_name):
    sa_file = fake.env["INFGW_LOCAL_GCP_SERVICE_ACCOUNT_FILE"]
    created = run("gke_node_pool", dict(pool_args(pool_name), auth_kind="serviceaccount",
                                        service_account_file=sa_file),
                  env={"GCP_ACCESS_TOKEN": "not-a-valid-token"})
    assert created.get("failed") is not True, created
    assert created["changed"] is True
    key = json.loads(Path(sa_file).read_text())["private_key"]
    assert key.splitlines()[1] not in created["_stdout"]


def test_bad_token_is_a_clear_401(run):
    failed = run("gke_node_pool", dict(location=REGION, cluster=CLUSTER, name="x" + RUN),
                 env={"GCP_ACCESS_TOKEN": "ya29.wrong-token-value"})
    assert failed.get("failed") is True and "credentials were rejected" in failed["msg"]
    assert "wrong-token-value" not in failed["_stdout"] and "wrong-token-value" not in json.dumps(failed)


# --------------------------------------------------------------------------------------
# compute_security_policy


def policy_args(name, **kw):
    args = dict(region=REGION, name=name, description="allow-list for the inference gateway",
                rules=[{"priority": 1000, "action": "allow", "src_ip_ranges": ["203.0.113.0/24"],
                        "description": "office"},
                       {"priority": 2147483647, "action": "deny(403)", "description": "default deny"}])
    args.update(kw)
    return args


def test_security_policy_lifecycle(fake, run, run_many):
    name = "armor-" + RUN
    path = "/compute/compute/v1/projects/%s/regions/%s/securityPolicies/%s" % (PROJECT, REGION, name)
    checked = run("compute_security_policy", policy_args(name), check=True)
    assert checked["changed"] is True and fake.api("GET", path).status_code == 404

    changed_rules = policy_args(name, rules=[
        {"priority": 900, "action": "allow", "src_ip_ranges": ["192.0.2.10/32"]},
        {"priority": 1000, "action": "allow", "src_ip_ranges": ["203.0.113.0/24", "198.51.100.0/24"],
         "description": "office"},
        {"priority": 2147483647, "action": "deny(404)", "description": "default deny"}])
    created, again, updated, updated_again, removed = run_many([
        ("compute_security_policy", policy_args(name), {"diff": True}),
        ("compute_security_policy", policy_args(name)),
        ("compute_security_policy", changed_rules, {"diff": True}),
        ("compute_security_policy", changed_rules),
        ("compute_security_policy", policy_args(name, rules=changed_rules["rules"][1:]))])
    assert created.get("failed") is not True, created
    rules = {r["priority"]: r for r in created["security_policy"]["rules"]}
    assert rules[2147483647]["action"] == "deny(403)"
    assert rules[1000]["match"]["config"]["srcIpRanges"] == ["203.0.113.0/24"]
    assert again["changed"] is False
    assert updated.get("failed") is not True, updated
    assert updated["actions"] == ["patch_rule:1000", "patch_rule:2147483647", "add_rule:900"]
    assert [r["priority"] for r in updated["diff"]["before"]["rules"]] == [1000, 2147483647]
    assert updated_again["changed"] is False
    assert removed["actions"] == ["remove_rule:900"]
    assert sorted(r["priority"] for r in fake.api("GET", path).json()["rules"]) == [1000, 2147483647]

    assert run("compute_security_policy", dict(region=REGION, name=name, state="absent"))["changed"] is True
    assert fake.api("GET", path).status_code == 404


def test_global_security_policy_and_a_403_naming_the_permission(fake, run_many):
    name = "edge-" + RUN
    fake.fault(method="POST", path_regex="/global/securityPolicies$", status=403, count=1,
               permission="compute.securityPolicies.create")
    args = dict(name=name, rules=[
        {"priority": 100, "action": "deny(404)", "expression": "origin.region_code == 'XX'", "preview": True}])
    denied, created, again, deleted = run_many([
        ("compute_security_policy", args), ("compute_security_policy", args), ("compute_security_policy", args),
        ("compute_security_policy", dict(name=name, state="absent"))])
    assert denied.get("failed") is True
    assert "lacks the IAM permission 'compute.securityPolicies.create'" in denied["msg"]
    assert denied["error"]["permission"] == "compute.securityPolicies.create"
    assert created.get("failed") is not True, created
    assert again["changed"] is False and deleted["changed"] is True


# --------------------------------------------------------------------------------------
# project_iam_member

def iam_members(fake, role):
    policy = fake.api("POST", "/cloudresourcemanager/v1/projects/%s:getIamPolicy" % PROJECT,
                      {"options": {"requestedPolicyVersion": 3}}).json()
    return sorted(m for b in policy.get("bindings", []) if b["role"] == role and not b.get("condition")
                  for m in b["members"])


def test_iam_member_grant_noop_revoke(fake, run, run_many):
    member = ("principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/"
              "local-project.svc.id.goog/subject/ns/custom-metrics-%s/sa/custom-metrics-stackdriver-adapter" % RUN)
    args = dict(role=ROLE, member=member)
    checked = run("project_iam_member", args, check=True, diff=True)
    assert checked["changed"] is True and member in checked["diff"]["after"]["members"]
    assert member not in iam_members(fake, ROLE)
    granted, again = run_many([("project_iam_member", args), ("project_iam_member", args)])
    assert granted["changed"] is True and again["changed"] is False and member in iam_members(fake, ROLE)
    revoked = run("project_iam_member", dict(args, state="absent"))
    assert revoked["changed"] is True and member not in iam_members(fake, ROLE)


def test_iam_conflict_is_retried(fake, run_many):
    member = "serviceAccount:conflict-%s@local-project.iam.gserviceaccount.com" % RUN
    fake.fault(method="POST", path_regex=":setIamPolicy$", status=409, count=1,
               message="There were concurrent policy changes. Please retry the whole read-modify-write with "
                       "exponential backoff.")
    granted, revoked = run_many([("project_iam_member", dict(role=ROLE, member=member)),
                                 ("project_iam_member", dict(role=ROLE, member=member, state="absent"))])
    assert granted.get("failed") is not True, granted
    assert granted["attempts"] == 2 and [e["event"] for e in granted["api_log"]] == ["conflict"]
    assert revoked["changed"] is True and member not in iam_members(fake, ROLE)


def test_iam_concurrent_writers_lose_nothing(fake, run):
    members = ["serviceAccount:writer%d-%s@local-project.iam.gserviceaccount.com" % (i, RUN) for i in range(3)]
    with concurrent.futures.ThreadPoolExecutor(len(members)) as pool:
        results = list(pool.map(lambda m: run("project_iam_member", dict(role=ROLE, member=m)), members))
    assert all(r.get("failed") is not True for r in results), results
    assert set(members) <= set(iam_members(fake, ROLE))
    with concurrent.futures.ThreadPoolExecutor(len(members)) as pool:
        list(pool.map(lambda m: run("project_iam_member", dict(role=ROLE, member=m, state="absent")), members))
    assert not set(members) & set(iam_members(fake, ROLE))


# --------------------------------------------------------------------------------------
# compute_subnetwork


def test_proxy_only_subnet(run_many):
    name = "proxy-" + RUN
    # a distinct /23 per run, outside the seeded default subnet (10.128.0.0/20)
    third = 130 + 2 * (int(RUN, 16) % 60)
    args = dict(region=REGION, name=name, network="default", ip_cidr_range="10.%d.0.0/23" % third, role="BACKUP")
    created, again, refused, deleted = run_many([
        ("compute_subnetwork", args), ("compute_subnetwork", args),
        ("compute_subnetwork", dict(args, ip_cidr_range="10.%d.0.0/24" % third)),
        ("compute_subnetwork", dict(args, state="absent"))])
    assert created.get("failed") is not True, created
    assert created["subnetwork"]["purpose"] == "REGIONAL_MANAGED_PROXY" and created["subnetwork"]["role"] == "BACKUP"
    assert again["changed"] is False
    assert refused.get("failed") is True and "ip_cidr_range (is 10.%d.0.0/23" % third in refused["msg"]
    assert deleted["changed"] is True


# --------------------------------------------------------------------------------------
# certificate_manager_certificate


def self_signed(host):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def test_certificate_lifecycle(run_many):
    name = "cert-" + RUN
    cert, key = self_signed("vllm.example.com")
    args = dict(location=REGION, name=name, certificate=cert, private_key=key, labels={"app": "gw"})
    new_cert, new_key = self_signed("vllm2.example.com")
    renew = dict(args, certificate=new_cert, private_key=new_key)
    created, again, renewed, deleted = run_many([
        ("certificate_manager_certificate", args, {"diff": True}), ("certificate_manager_certificate", args),
        ("certificate_manager_certificate", renew, {"diff": True}),
        ("certificate_manager_certificate", dict(location=REGION, name=name, state="absent"))])
    assert created.get("failed") is not True, created
    assert created["certificate"]["sanDnsnames"] == ["vllm.example.com"]
    assert again["changed"] is False
    assert renewed["update_mask"] == ["selfManaged"]
    assert renewed["certificate"]["sanDnsnames"] == ["vllm2.example.com"]
    assert renewed["diff"]["before"]["certificate_sha256"] != renewed["diff"]["after"]["certificate_sha256"]
    assert deleted["changed"] is True
    for secret in (key.splitlines()[1], new_key.splitlines()[1]):
        assert secret not in created["_stdout"] and secret not in json.dumps([created, renewed])


# --------------------------------------------------------------------------------------
# gke_node_pool: the GPU driver in place, gcloud's default scopes


def test_gpu_driver_added_in_place_keeps_the_pool_and_its_nodes(local_env, api, fake, run, pool_name):
    """A pool made as `gcloud container node-pools create --accelerator type=nvidia-l4,count=1` makes it (no driver
    version, GKE's default scopes) gets gpu_driver_version LATEST from the module in place: a watcher sees the pool
    and its two nodes the whole time, and the nodes get GKE's driver label."""
    pool = {"name": pool_name, "initialNodeCount": 1, "locations": ["us-central1-a", "us-central1-b"],
            "config": {"machineType": "g2-standard-8",
                       "accelerators": [{"acceleratorType": "nvidia-l4", "acceleratorCount": "1"}]}}
    created = local_env.gcp("POST", "%s/nodePools" % cluster_path(), {"nodePool": pool})
    assert created.status_code == 200, created.text
    local_env.gcp_wait(created.json())
    before = sorted(n["metadata"]["name"] for n in local_env.wait_nodes(pool_name, 2))
    assert fake.api("GET", "%s/nodePools/%s" % (cluster_path(), pool_name)).json()["config"]["oauthScopes"] == [
        "https://www.googleapis.com/auth/logging.write", "https://www.googleapis.com/auth/monitoring"]

    seen, stop = [], [False]
    core = kubernetes_client.CoreV1Api(api)

    def watch():
        while not stop[0]:
            got = fake.api("GET", "%s/nodePools/%s" % (cluster_path(), pool_name))
            nodes = core.list_node(label_selector="cloud.google.com/gke-nodepool=%s" % pool_name).items
            seen.append((got.status_code, sorted(n.metadata.name for n in nodes)))
            time.sleep(0.1)

    args = dict(location=REGION, cluster=CLUSTER, name=pool_name,
                accelerator={"type": "nvidia-l4", "count": 1, "gpu_driver_version": "LATEST"})
    with concurrent.futures.ThreadPoolExecutor(1) as pool_watcher:
        watching = pool_watcher.submit(watch)
        try:
            updated = run("gke_node_pool", args, diff=True)
        finally:
            stop[0] = True
        watching.result()
    assert updated.get("failed") is not True, updated
    assert updated["actions"] == ["update_accelerator"] and updated["changed_fields"] == ["accelerator"]
    assert updated["node_pool"]["config"]["accelerators"][0]["gpuDriverInstallationConfig"] == \
        {"gpuDriverVersion": "LATEST"}
    assert len(seen) >= 2 and all(status == 200 and names == before for status, names in seen), seen
    nodes = local_env.wait_nodes(pool_name, 2)
    assert {n["metadata"]["labels"]["cloud.google.com/gke-gpu-driver-version"] for n in nodes} == {"latest"}
    assert run("gke_node_pool", args)["changed"] is False

    # Its scopes are GKE's defaults for "none given"; asking for gcloud's needs a new pool, and says so.
    refused = run("gke_node_pool", dict(args, oauth_scopes=["gke-default"]))
    assert refused.get("failed") is True and "oauth_scopes (is [" in refused["msg"], refused


def test_new_pool_gets_gclouds_default_scopes(fake, run, pool_name):
    created = run("gke_node_pool", pool_args(pool_name))
    assert created.get("failed") is not True, created
    assert created["node_pool"]["config"]["oauthScopes"] == [
        "https://www.googleapis.com/auth/devstorage.read_only", "https://www.googleapis.com/auth/logging.write",
        "https://www.googleapis.com/auth/monitoring", "https://www.googleapis.com/auth/service.management.readonly",
        "https://www.googleapis.com/auth/servicecontrol", "https://www.googleapis.com/auth/trace.append"]
    assert run("gke_node_pool", pool_args(pool_name, oauth_scopes=["gke-default"]))["changed"] is False
