# -*- coding: utf-8 -*-
# Integration tests of what site.yml does before it touches anything, and after a run was killed, on the local
# environment: bad inventories fail at the data model with every problem named by its field, and create nothing (no
# namespace, no helm release, no Google Cloud resource in the fake); a helm release a killed run left pending is
# recovered by a later run, and not while the operation may still be running.
# The per-rule cases are unit tests (tests/unit/plugins/module_utils/test_data_model.py); here each run is one
# inventory with several problems of one class, since the data model reports them all at once.
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from test_site import CPU_MODEL, REPO, VENV_BIN, COLLECTIONS, delete_namespace, kget, namespace_exists, new_namespace, \
    playbook

pytestmark = [pytest.mark.integration]

GCP_KINDS = ("node_pools", "security_policies", "subnetworks", "certificates")


def _model(**overrides):
    return dict({"name": "gemma-3-1b", "model": "google/gemma-3-1b-it", "host": "1b.example.com"}, **overrides)


def gcp_resources(local_env) -> dict:
    """What the GCP fake holds (names of node pools, security policies, subnets, certificates; IAM bindings)."""
    state = local_env.gcp("GET", "/_fake/state").json()
    snapshot = {kind: sorted(state[kind]) for kind in GCP_KINDS}
    snapshot["iam_bindings"] = state["iam_policy"].get("bindings")
    return snapshot


def helm_releases(local_env) -> list:
    proc = subprocess.run([os.path.join(local_env.bin_dir, "helm"), "list", "-A", "-a", "-o", "json"],
                          env=local_env.env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout or "[]")


BAD_INVENTORIES = [
    # (id, extra vars, extra args, what the failure must say: every line, since all problems are reported at once)
    ("argument-spec-key-typo", {"infgw_models": [_model(replica=2)]}, [], ["infgw_models.replica. Supported parameters"]),
    ("argument-spec-wrong-type", {"infgw_models": [_model(gpus="two")]}, [], ["argument 'gpus' is of type"]),
    ("argument-spec-choice", {"infgw_gateway": {"tls": {"mode": "letsencrypt"}}}, [],
     ["value of mode must be one of: certificate_manager, secret, none"]),
    ("kubernetes-values", {
        "infgw_models": [_model(resources={"memory": "25 GB"}, pool={"epp_replicas": -1}, replicas=-1, port=70000),
                         _model(name="Gemma_3.1B", model="org/x", host="x.example.com", image="")],
        "infgw_gateway": {"tls": {"mode": "secret", "certificates": [""]}},
        "infgw_hf_secret_name": "HF Secret"}, ["-e", "infgw_namespace=Bad_Namespace"], [
        'infgw_namespace: "Bad_Namespace" is not a DNS-1123 label',
        'infgw_models[0].resources.memory: "25 GB" is not a Kubernetes quantity',
        "infgw_models[0].pool.epp_replicas: must be 0 or more, got -1",
        "infgw_models[0].replicas: must be 0 or more, got -1",
        "infgw_models[0].port: must be a port number (1-65535), got 70000",
        'infgw_models[1].name: "Gemma_3.1B" is not a DNS-1123 label',
        'infgw_models[1].image: "" is not a container image',
        'infgw_gateway.tls.certificates[0]: "" is not a TLS Secret name',
        'infgw_hf_secret_name: "HF Secret" is not a Secret name']),
    ("google-cloud-values", {
        "infgw_cloud_armor": {"enabled": True, "allowed_ip_ranges": ["10.0.0.0/33"]},
        "infgw_nodepools": [{"name": "preflight-pool", "machine_type": "g2-standard-7",
                             "node_locations": ["us-central1-a", "europe-west4-a"]},
                            {"name": "preflight-gpus", "machine_type": "g2-standard-8",
                             "accelerator": {"type": "nvidia-tesla-t4", "count": 1}}],
        "infgw_proxy_subnet": {"name": "preflight-subnet", "ip_cidr_range": "10.0.0.0/33"}}, [], [
        'infgw_cloud_armor.allowed_ip_ranges[0]: "10.0.0.0/33" is not an IP range',
        'infgw_nodepools[0].machine_type: unknown machine type "g2-standard-7"',
        "infgw_nodepools[0].node_locations[1]: \"europe-west4-a\" is not in the cluster's region us-central1",
        "infgw_nodepools[1].accelerator: g2-standard-8 comes with 1 x nvidia-l4, not 1 x nvidia-tesla-t4",
        'infgw_proxy_subnet.ip_cidr_range: "10.0.0.0/33" is not an IP range']),
    ("conflicts", {
        "infgw_models": [
            _model(autoscaling={"enabled": True, "min": 4, "max": 2, "target_kv_cache_utilization": "1500m"}),
            _model(name="b", model="org/b", default_backend=True,
                   lora_adapters=[{"name": "google/gemma-3-1b-it", "path": "org/lora"}]),
            _model(name="c", model="org/c", host="api.example.com", default_backend=True)],
        "infgw_chat_ui": {"enabled": True, "model": "nope"},
        "infgw_gateway": {"http": False, "redirect_http_to_https": True}}, [], [
        "infgw_models[0].autoscaling.target_kv_cache_utilization: 1500m is 150% of the KV cache",
        "infgw_models[0].autoscaling: min (4) is greater than max (2)",
        'infgw_models[1].host: duplicate hostname "1b.example.com" (also infgw_models[0].host): two models on one host',
        'infgw_models[1].lora_adapters[0].name: "google/gemma-3-1b-it" is also served by infgw_models[0].model',
        "infgw_models[2].default_backend: only one model can be the default backend",
        'infgw_gateway.hosts.api: duplicate hostname "api.example.com" (also infgw_models[2].host)',
        'infgw_chat_ui.model: "nope" is not the name of a model',
        "infgw_gateway.redirect_http_to_https: needs both listeners"]),
    ("token-tls-profile", {"infgw_hf_token": "", "infgw_gateway": {"tls": {"mode": "none"}}}, ["-e", "infgw_profile=v9.9"],
     ["infgw_hf_token: empty, but 3 model(s) are deployed", "infgw_gateway.tls.mode: none",
      'infgw_profile: unknown profile "v9.9"']),
    ("validated-whatever-the-tags", {"infgw_models": [_model(replicas=-1)]}, ["--tags", "gateway"],
     ["infgw_models[0].replicas"]),
    ("gateway-class-not-in-cluster", {"infgw_gateway": {"class": "gke-l7-regional-external-manged"},
                                      "infgw_models": [_model(resources={"memory": "25 GB"})]}, [],
     ['infgw_models[0].resources.memory: "25 GB" is not a Kubernetes quantity',  # reported with the class
      'infgw_gateway.class: no GatewayClass "gke-l7-regional-external-manged" in the cluster; the cluster has: '
      "gke-l7-global-external-managed, gke-l7-gxlb, gke-l7-regional-external-managed, gke-l7-rilb"]),
    ("gateway-class-in-check-mode", {}, ["--check", "-e", "infgw_gateway_class=intrenal"],
     ['infgw_gateway.class: no GatewayClass "intrenal" in the cluster']),
]


@pytest.mark.parametrize("extra, args, expected", [pytest.param(e, a, x, id=i) for i, e, a, x in BAD_INVENTORIES])
def test_bad_inventory_fails_before_anything_is_created(local_env, tmp_path, extra, args, expected):
    namespace = new_namespace("site-bad")
    gcp_before, releases_before = gcp_resources(local_env), helm_releases(local_env)
    run = playbook(local_env, tmp_path, "site.yml", namespace, *args, extra=extra)
    assert run.rc != 0
    failures = run.failures()
    missing = [text for text in expected if text not in failures]
    assert not missing, "not reported: %s\nin:\n%s" % (missing, failures)
    assert run.stats["changed"] == 0 and run.stats["failures"] == 1
    failed = [name for name, r in run.results() if r.get("failed")]
    assert failed[0].startswith(("Validate and resolve the data model", "Validating arguments")), failed
    assert not namespace_exists(local_env, namespace)
    # no release installed or upgraded (earlier tests' namespaces may still be going away meanwhile, with their releases)
    assert [r for r in helm_releases(local_env) if r not in releases_before] == []
    assert gcp_resources(local_env) == gcp_before


# --------------------------------------------------------------------------- recovery of a killed run

# An affinity no node satisfies: the endpoint picker's new pod stays Pending, so `helm upgrade --wait` waits.
NEVER_SCHEDULED = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "infgw.test/never", "operator": "Exists"}]}]}}}


def helm_status(local_env, namespace, release) -> dict:
    proc = subprocess.run([os.path.join(local_env.bin_dir, "helm"), "status", release, "-n", namespace, "-o", "json"],
                          env=local_env.env, capture_output=True, text=True, check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def test_a_release_left_pending_by_a_killed_run_is_recovered_by_the_next(local_env, tmp_path):
    """site.yml killed (SIGKILL, helm included) while helm waits in an upgrade leaves the release pending-upgrade. A
    re-run within its helm timeout (60s) fails saying another operation may still run, and changes nothing; a re-run
    whose helm timeout (3s) the pending operation has outlived rolls the release back and converges, with no
    recovery option set (infgw_helm_recover_pending is on by default)."""
    namespace = new_namespace("site-pending")
    release = "vllm-tiny"
    base = {"infgw_models": [dict(CPU_MODEL, host="tiny.example.com")], "inference_pool_helm_timeout": "60s"}
    # the model server, the CRDs and the chart releases: not the routes, nor the final wait for a gateway
    tags = ("--tags", "vllm_model,inference_pool_crds,inference_pool_charts")
    try:
        first = playbook(local_env, tmp_path, "site.yml", namespace, *tags, extra=base)
        assert first.rc == 0, first.failures()
        assert helm_status(local_env, namespace, release)["info"]["status"] == "deployed"

        stuck = dict(base, inference_pool_helm_wait=True,
                     inference_pool_chart_values_by_model={"tiny": {"inferenceExtension": {"affinity": NEVER_SCHEDULED}}})
        vars_file = tmp_path / "stuck.json"
        vars_file.write_text(json.dumps(stuck))
        env = dict(local_env.env, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1")
        env.pop("LOCAL_GIE_MANIFESTS", None)
        env.pop("HF_TOKEN", None)
        started = time.monotonic()
        killed = subprocess.Popen([str(VENV_BIN / "ansible-playbook"), "site.yml", "-e", "infgw_namespace=" + namespace,
                                   "-e", "@%s" % vars_file, *tags], cwd=str(REPO), env=env, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while helm_status(local_env, namespace, release).get("info", {}).get("status") != "pending-upgrade":
                assert killed.poll() is None, "site.yml ended before helm was caught mid-upgrade"
                assert time.monotonic() < deadline, "the upgrade never became pending"
                time.sleep(0.2)
        finally:
            os.killpg(killed.pid, signal.SIGKILL)  # the playbook, its module and helm: the process group we started
            killed.wait()
        pending_since = time.monotonic()
        killed_after = pending_since - started
        assert helm_status(local_env, namespace, release)["info"]["status"] == "pending-upgrade"

        early = playbook(local_env, tmp_path, "site.yml", namespace, *tags, extra=base)
        assert early.rc != 0
        assert "may be another run's helm operation still in progress" in early.failures(), early.failures()
        assert "helm rollback %s 1 -n %s" % (release, namespace) in early.failures()
        assert helm_status(local_env, namespace, release)["info"]["status"] == "pending-upgrade"

        time.sleep(max(0.0, 4 - (time.monotonic() - pending_since)))
        again = playbook(local_env, tmp_path, "site.yml", namespace, *tags,
                         extra=dict(base, inference_pool_helm_timeout="3s"))
        assert again.rc == 0, again.failures()
        print("\n[pending] install %.1fs, killed after %.1fs, early re-run %.1fs, recovering re-run %.1fs"
              % (first.seconds, killed_after, early.seconds, again.seconds))
        (charts,) = [r for name, r in again.results() if name == "Install or upgrade one inferencepool release per model"]
        assert charts["releases"][0]["recovered"] == {"from_status": "pending-upgrade", "action": "rollback",
                                                      "revision": 1}
        status = helm_status(local_env, namespace, release)
        assert status["info"]["status"] == "deployed" and status["version"] == 3  # 1, the killed 2, the rollback
        epp = kget(local_env, "deployment", namespace, release + "-epp")
        assert "affinity" not in epp["spec"]["template"]["spec"]
    finally:
        delete_namespace(local_env, namespace)
