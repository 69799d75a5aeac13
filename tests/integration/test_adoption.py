# -*- coding: utf-8 -*-
# Adoption: a user who followed the walkthrough by hand (README.seed.md for GIE v1.1.0, history-v0.4.0 for v0.4.0)
# runs site.yml on what they built. The stack is built as they built it: Google's gcloud against the GCP fake
# (tests/integration/gcloud_cli.py), then the walkthrough's kubectl applies of its own files
# (tests/fixtures/seed/, byte copies) and its helm installs with its release names and flags, from the local OCI
# registry's copy of registry.k8s.io's charts. Then:
#   1. site.yml --check --diff lists what would change, and changes nothing;
#   2. site.yml takes everything over while the live Deployments are watched: no ready replica is lost, no
#      Deployment, pool, release, policy or node pool is deleted or recreated (uids and helm revisions kept);
#      exactly what the check listed changes; the walkthrough's OR route match and the GCPBackendPolicy helm and
#      kubectl fight over are repaired;
#   3. site.yml again: changed=0.
# One namespace per profile in the shared local environment; the Google Cloud side (node pool, proxy-only subnet,
# Cloud Armor policy, IAM binding) is built once by gcloud for both.
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from gcloud_cli import Gcloud
from test_site import delete_namespace, kget, new_namespace, playbook

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "tests" / "fixtures" / "seed"
CLUSTER = ("--cluster=local-cluster", "--project=local-project", "--location=us-central1")
ADAPTER = ("principal://iam.googleapis.com/projects/{num}/locations/global/workloadIdentityPools/"
           "local-project.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter")
MODELS = ("vllm-gemma-3-1b", "vllm-gemma-3-4b", "vllm-llama-3-3b")
# The walkthrough's epp-values.yaml (v1.1.0)
EPP_VALUES = {"provider": {"name": "gke", "gke": {"autopilot": False}},
              "inferenceExtension": {"tracing": {"enabled": False},
                                     "monitoring": {"interval": "10s",
                                                    "prometheus": {"enabled": True, "auth": {"enabled": True},
                                                                   "extraLabels": {}}}}}
# The walkthrough's files per profile, in its order (the chart installs and CRDs run between them).
PROFILES = {
    "v1.1.0": {"models": ["vllm-gemma3-1b.yaml", "gradio.yaml", "vllm-gemma3-4b.yaml", "vllm-llama3-3b.yaml"],
               "gateway": ["infgw-external.yaml", "infgw-httproute-basic.yaml"],
               "bbr": ["infgw-httproute-bbr.yaml"], "cluster": [],
               "pools": ["infgw-httproute-infp-info.yaml"],
               "after": ["vllm-infgw-hpas.yaml", "infgw-policy-cloud-armor.yaml"]},
    "v0.4.0": {"models": ["vllm-gemma3-1b.yaml", "gradio.yaml", "vllm-gemma3-4b.yaml", "vllm-llama3-3b.yaml"],
               "gateway": ["infgw-external.yaml", "infgw-httproute-basic.yaml"],
               "bbr": ["infgw-httproute-bbr.yaml"], "cluster": ["history-v0.4.0/vllm-infgw-metrics.yaml"],
               "pools": ["history-v0.4.0/infgw-httproute-infp-infm.yaml"],
               "after": ["vllm-infgw-hpas.yaml", "infgw-policy-cloud-armor.yaml"]},
}
# site.yml with the collection's defaults (the walkthrough's data model), plus what a user who did the walkthrough's
# Cloud Armor step sets. The local inventory's simulator latencies (model env) and EPP flags are left out: they
# are not the walkthrough's, and a different pod template rolls the pods (see the README on adoption).
COMMON_DEFAULTS = yaml.safe_load((REPO / "roles" / "common" / "defaults" / "main.yml").read_text())
EXTRA = {"infgw_cloud_armor_enabled": True, "infgw_models": COMMON_DEFAULTS["infgw_models"],
         "inference_pool_chart_values": {}}
# What the walkthrough made under other names than the data model's: its v0.4.0 InferenceModels (ours are named
# after the objectives, small-model...); its v1.1.0 InferenceObjectives have the data model's names.
UNADOPTED = {"v1.1.0": set(),
             "v0.4.0": {"InferenceModel %s/gemma-3-1b-it-hf", "InferenceModel %s/gemma-3-4b-it-hf",
                        "InferenceModel %s/llama-3-3b-it-hf"}}
WATCHED = ("deployments", "inferencepools", "httproutes", "gcpbackendpolicies", "hpa", "services", "gateways")


# --------------------------------------------------------------------------- the Google Cloud side, by hand

@pytest.fixture(scope="module")
def gcloud_by_hand(local_env, tmp_path_factory):
    """The walkthrough's gcloud commands (and the proxy-only subnet and Cloud Armor policy it takes for granted,
    made as its linked guides make them), run by Google's gcloud against the fake."""
    config = requests.get(f"{local_env.gcp_url}/_fake/config", timeout=10).json()
    requests.post(f"{local_env.gcp_url}/_fake/config", json={"operation_delay_seconds": 0}, timeout=10)
    gcloud = Gcloud(local_env, tmp_path_factory.mktemp("gcloud"))
    started = time.monotonic()
    try:
        # A node pool named gpupool made earlier in this session (conftest's gpu_pool) is replaced by the
        # walkthrough's, so that site.yml meets the one gcloud made; no GPU pod runs between test modules.
        if "gpupool" in {p["name"] for p in gcloud.json("container", "node-pools", "list", *CLUSTER)}:
            gcloud("container", "node-pools", "delete", "gpupool", *CLUSTER, "--quiet")
        gcloud("container", "node-pools", "create", "gpupool", *CLUSTER[:2],
               "--machine-type=g2-standard-8", "--accelerator", "type=nvidia-l4,count=1,gpu-driver-version=latest",
               "--location=us-central1", "--node-locations=us-central1-a,us-central1-b,us-central1-c",
               "--enable-autoscaling", "--total-min-nodes=0", "--total-max-nodes=5", "--num-nodes=0")
        gcloud("compute", "accelerator-types", "list",
               '--filter=(name:nvidia-l4 AND zone:(us-central* us-west1*)) AND NOT name:*-vws')
        number = gcloud("projects", "describe", "local-project", "--format=value(projectNumber)").stdout.strip()
        gcloud("projects", "add-iam-policy-binding", "projects/local-project", "--role", "roles/monitoring.viewer",
               "--condition", "None", "--member=" + ADAPTER.format(num=number))
        # The proxy-only subnet, under the name Google's guide uses (ours is proxy-only-subnet): site.yml adopts it.
        proxies = gcloud.json("compute", "networks", "subnets", "list", "--regions=us-central1",
                              "--filter=purpose=REGIONAL_MANAGED_PROXY")
        for subnet in proxies:
            gcloud("compute", "networks", "subnets", "delete", subnet["name"], "--region=us-central1", "--quiet")
        gcloud("compute", "networks", "subnets", "create", "proxy-only", "--purpose=REGIONAL_MANAGED_PROXY",
               "--role=ACTIVE", "--region=us-central1", "--network=default", "--range=10.129.0.0/23")
        # The regional certificate infgw-external.yaml names (local-up's *.example.com pair), unless made already.
        certificates = {c["name"].rsplit("/", 1)[-1] for c in gcloud.json(
            "certificate-manager", "certificates", "list", "--location=us-central1")}
        if "uc1-wildcard" not in certificates:
            pki = Path(local_env.env["INFGW_LOCAL_TLS_CERT_FILE"]).parent
            gcloud("certificate-manager", "certificates", "create", "uc1-wildcard", "--location=us-central1",
                   "--certificate-file=%s" % (pki / "gateway-tls.crt"), "--private-key-file=%s" % (pki / "gateway-tls.key"))
        # The Cloud Armor policy infgw-policy-cloud-armor.yaml names (gke-gclb-misc/cloud-armor's steps).
        policies = {p["name"] for p in gcloud.json("compute", "security-policies", "list", "--regions=us-central1")}
        if "uc1-security-policy" in policies:
            gcloud("compute", "security-policies", "delete", "uc1-security-policy", "--region=us-central1", "--quiet")
        gcloud("compute", "security-policies", "create", "uc1-security-policy", "--region=us-central1",
               "--type=CLOUD_ARMOR")
        gcloud("compute", "security-policies", "rules", "update", "2147483647",
               "--security-policy=uc1-security-policy", "--region=us-central1", "--action=deny-403")
        pool = gcloud.json("container", "node-pools", "describe", "gpupool", *CLUSTER)
        print("\n[adoption] gcloud by hand: %.1fs" % (time.monotonic() - started))
        yield {"gcloud": gcloud, "pool": pool}
    finally:
        # The by-hand subnet goes (later modules expect site.yml's proxy-only-subnet); the rest is what site.yml
        # makes anyway.
        gcloud("compute", "networks", "subnets", "delete", "proxy-only", "--region=us-central1", "--quiet",
               check=False)
        requests.post(f"{local_env.gcp_url}/_fake/config",
                      json={"operation_delay_seconds": config["operation_delay_seconds"]}, timeout=10)
        for run in gcloud.runs:
            print("  %5.2fs rc=%s %s" % (run["seconds"], run["rc"], " ".join(run["argv"])))


# --------------------------------------------------------------------------- the Kubernetes side, by hand

def kubectl(local_env, *args, stdin=None):
    done = local_env.kubectl(*args, stdin=stdin, check=False)
    assert done.returncode == 0, "kubectl %s: %s" % (" ".join(args), done.stderr)
    return done.stdout


def helm(local_env, *args):
    import subprocess  # pylint: disable=import-outside-toplevel
    done = subprocess.run([f"{local_env.bin_dir}/helm", *args], capture_output=True, text=True, env=local_env.env,
                          check=False, timeout=600)
    assert done.returncode == 0, "helm %s: %s" % (" ".join(args), done.stderr)
    return done.stdout


def chart(local_env, name):
    return "oci://%s/gateway-api-inference-extension/charts/%s" % (local_env.registry, name)


def wait_available(local_env, ns, *names, timeout=300):
    kubectl(local_env, "wait", "-n", ns, "--for=condition=Available", "--timeout=%ds" % timeout,
            *["deployment/%s" % n for n in names])


def build_by_hand(local_env, ns, profile, tmp_path):
    """The walkthrough's kubectl and helm steps, in its order, into `ns` (its `gemma`)."""
    files = PROFILES[profile]

    def apply(name, namespaced=True):
        kubectl(local_env, "apply", *(["-n", ns] if namespaced else []), "-f", str(SEED / name))

    kubectl(local_env, "create", "ns", ns)
    kubectl(local_env, "create", "secret", "generic", "hf-secret", "-n", ns, "--from-literal=hf_api_token=hf_by_hand")
    for name in files["models"]:
        apply(name)
    wait_available(local_env, ns, *MODELS)
    for name in files["gateway"]:
        apply(name)
    helm(local_env, "install", "bbr", "--namespace", ns, "--set", "provider.name=gke",
         "--set", "inferenceGateway.name=vllm-xlb", "--version", profile, "--plain-http",
         chart(local_env, "body-based-routing"))
    for name in files["bbr"]:
        apply(name)
    kubectl(local_env, "apply", "-f", str(Path(local_env.env["LOCAL_GIE_MANIFESTS"]) / profile / "manifests.yaml"))
    for name in files["cluster"]:
        apply(name, namespaced=False)
    values = tmp_path / "epp-values.yaml"
    values.write_text(yaml.safe_dump(EPP_VALUES))
    for pool in MODELS:
        flags = (["-f", str(values)] if profile == "v1.1.0" else ["--set", "provider.name=gke"])
        helm(local_env, "install", pool, "-n", ns, "--version", profile, *flags,
             "--set", "inferencePool.modelServers.matchLabels.app=%s" % pool, "--plain-http",
             chart(local_env, "inferencepool"))
    apply("infgw-external.yaml")
    for name in files["pools"] + files["after"]:
        apply(name)


# --------------------------------------------------------------------------- watching

class ReadyWatch(threading.Thread):
    """Polls the namespace's Deployments; records the lowest ready replicas each had."""

    def __init__(self, local_env, ns):
        super().__init__(daemon=True)
        self.local_env, self.ns = local_env, ns
        self.stop = threading.Event()
        self.lowest: dict[str, int] = {}
        self.samples = 0

    def run(self):
        while not self.stop.is_set():
            done = self.local_env.kubectl("get", "deployments", "-n", self.ns, "-o", "json", check=False)
            if done.returncode == 0:
                self.samples += 1
                for d in json.loads(done.stdout)["items"]:
                    name, ready = d["metadata"]["name"], d["status"].get("readyReplicas", 0)
                    self.lowest[name] = min(ready, self.lowest.get(name, ready))
            self.stop.wait(0.5)


def snapshot(local_env, ns) -> dict:
    """uid and resourceVersion of every object that must survive, by "kind/name"."""
    out = {}
    for kind in WATCHED + ("inferencepools.inference.networking.x-k8s.io",):
        got = kget(local_env, kind, ns, check=False)
        for item in (got or {}).get("items", []):
            out["%s/%s" % (item["kind"], item["metadata"]["name"])] = item["metadata"]["uid"]
    return out


def helm_revisions(local_env, ns) -> dict:
    return {r["name"]: int(r["revision"]) for r in json.loads(helm(local_env, "list", "-n", ns, "-o", "json"))}


ENGINE_KEYS = ("created", "updated", "pruned", "released", "handed_over", "taken_over", "adopted")


def changes(run) -> set[str]:
    """What a run changed (or, in check mode, would change): every object a k8s_converge step lists, every helm
    release an install or upgrade would touch, and every other changed task."""
    out = set()
    for name, result in run.results():
        if not result.get("changed"):
            continue
        if any(key in result for key in ENGINE_KEYS):
            for key in ENGINE_KEYS:
                out.update("%s %s" % (key, label.split(" from ")[0].split(";")[0]) for label in result.get(key, []))
        elif "releases" in result:
            out.update("release %s" % r["release"]["name"] if isinstance(r.get("release"), dict) else
                       "release %s" % r.get("name") for r in result["releases"] if r.get("changed"))
        elif isinstance(result.get("release"), dict):
            out.add("release %s" % result["release"].get("name"))
        else:
            out.add("task %s" % name)
    return out


# --------------------------------------------------------------------------- the test

@pytest.mark.parametrize("profile", ["v1.1.0", "v0.4.0"])
def test_site_adopts_the_walkthrough_built_by_hand(local_env, gcloud_by_hand, profile, tmp_path):
    ns = new_namespace("adopt-" + profile.replace(".", ""))
    extra = dict(EXTRA, infgw_profile=profile)
    times = {}
    try:
        started = time.monotonic()
        build_by_hand(local_env, ns, profile, tmp_path)
        times["by hand"] = time.monotonic() - started
        before, revisions = snapshot(local_env, ns), helm_revisions(local_env, ns)
        assert set(revisions) == {"bbr", *MODELS}

        check = playbook(local_env, tmp_path, "site.yml", ns, "--check", "--diff", extra=extra)
        times["check"] = check.seconds
        assert check.rc == 0, check.failures()
        listed = changes(check)
        (tmp_path / "check-diff.json").write_text(json.dumps(
            [(name, r.get("diff")) for name, r in check.results() if r.get("changed")], indent=1, default=str))
        assert snapshot(local_env, ns) == before and helm_revisions(local_env, ns) == revisions

        watch = ReadyWatch(local_env, ns)
        ready_before = {d["metadata"]["name"]: d["status"].get("readyReplicas", 0)
                        for d in kget(local_env, "deployments", ns)["items"]}
        watch.start()
        try:
            run = playbook(local_env, tmp_path, "site.yml", ns, extra=extra)
        finally:
            watch.stop.set()
            watch.join()
        times["adopt"] = run.seconds
        assert run.rc == 0, run.failures()
        made = changes(run)
        print("\n[adoption %s] check listed %d, run changed %d:\n  %s" % (
            profile, len(listed), len(made), "\n  ".join(sorted(listed | made))))
        assert made == listed, "check listed but not done: %s; done but not listed: %s" % (
            sorted(listed - made), sorted(made - listed))

        # Serving capacity: no Deployment ever had fewer ready replicas than before the run.
        assert watch.samples > 5
        dropped = {n: (ready_before[n], low) for n, low in watch.lowest.items()
                   if n in ready_before and low < ready_before[n]}
        assert not dropped, "ready replicas fell during the run: %s" % dropped
        # Nothing deleted and recreated: every object of the walkthrough is still the same object; releases upgraded.
        after = snapshot(local_env, ns)
        assert {k: v for k, v in after.items() if k in before} == before
        now = helm_revisions(local_env, ns)
        assert set(now) == set(revisions) and all(now[r] >= revisions[r] for r in revisions)

        # Every object we manage is ours alone: no kubectl manager left on it.
        for kind in ("deployments", "services", "httproutes", "hpa", "gcpbackendpolicies"):
            for item in kget(local_env, kind, ns)["items"]:
                kubectl_managers = {m["manager"] for m in item["metadata"].get("managedFields", [])
                                    if m["manager"].startswith("kubectl") and m.get("operation") != "Apply"}
                if "gke-ai-inference-gateway" in {m["manager"] for m in item["metadata"]["managedFields"]}:
                    assert not kubectl_managers, "%s %s still managed by %s" % (
                        item["kind"], item["metadata"]["name"], kubectl_managers)
                    assert "kubectl.kubernetes.io/last-applied-configuration" not in \
                        item["metadata"].get("annotations", {})
        # The walkthrough's OR match (header or path) is one match (header and path): unknown models get a 404.
        for route in ("bbr-gemma3-1b", "bbr-gemma3-4b", "bbr-llama3-3b"):
            matches = [m for rule in kget(local_env, "httproute", ns, route)["spec"]["rules"] for m in rule["matches"]]
            assert len(matches) == 1 and "headers" in matches[0] and "path" in matches[0], matches
        # The GCPBackendPolicy both helm and kubectl wrote has one owner for its spec, and keeps Cloud Armor.
        policy = kget(local_env, "gcpbackendpolicy", ns, "vllm-gemma-3-1b")
        assert policy["spec"]["default"]["securityPolicy"] == "uc1-security-policy"
        owners = {m["manager"] for m in policy["metadata"]["managedFields"] if "f:spec" in m.get("fieldsV1", {})}
        assert owners == {"gke-ai-inference-gateway"}, owners

        # Objects the walkthrough made under names the data model does not use are named, with their removal.
        (report,) = [r.get("msg") or [] for name, r in run.results()
                     if name.startswith("Name the pools and objectives the data model does not")]
        print("[adoption %s] not adopted:\n  %s" % (profile, "\n  ".join(report)))
        unadopted = {line.split(" is not in the data model")[0] for line in report}
        assert unadopted == {line % ns for line in UNADOPTED[profile]}, report

        again = playbook(local_env, tmp_path, "site.yml", ns, extra=extra)
        times["again"] = again.seconds
        assert again.rc == 0, again.failures()
        assert again.stats["changed"] == 0, again.changed_tasks()
        assert helm_revisions(local_env, ns) == now
        # The node pool gcloud made is the same pool, untouched: no container operation on it after gcloud's create.
        gcloud = gcloud_by_hand["gcloud"]
        operations = [op for op in gcloud.json("container", "operations", "list", "--location=us-central1",
                                               "--project=local-project")
                      if op.get("targetLink", "").endswith("/nodePools/gpupool")]
        kinds = [op["operationType"] for op in sorted(operations, key=lambda op: op["startTime"])]
        assert kinds[-1] == "CREATE_NODE_POOL", kinds  # gcloud's create (earlier modules' pools came and went)
        assert gcloud.json("container", "node-pools", "describe", "gpupool", *CLUSTER)["etag"] == \
            gcloud_by_hand["pool"]["etag"]
        # Google Cloud: only the Cloud Armor steps change what gcloud made; the dashboard is new (the walkthrough only
        # points to Cloud Monitoring's templates, it makes none)
        assert not [c for c in made if c.startswith("task ") and "Cloud Armor" not in c
                    and c != "task Create or update the Cloud Monitoring dashboard"], made
    finally:
        print("\n[adoption %s] %s" % (profile, ", ".join("%s %.1fs" % kv for kv in times.items())))
        for release in ("bbr", *MODELS):
            helm(local_env, "uninstall", release, "-n", ns, "--ignore-not-found", "--wait", "--timeout", "120s") \
                if local_env.kubectl("get", "ns", ns, check=False).returncode == 0 else None
        delete_namespace(local_env, ns)
