# -*- coding: utf-8 -*-
# Integration tests of the roles bbr, inference_pool, hpa_metrics and cloud_armor against the local environment
# (real kube-apiserver, helm, OCI registry with the GIE charts, GKE status simulator), for both GIE profiles.
#
# Each test works in a fresh namespace with the few objects the roles expect from the vllm_model and gateway
# roles (the Gateway vllm-xlb and the model Services), runs small playbooks with the local inventory
# (inventories/local: charts from the local registry, CRDs from $LOCAL_GIE_MANIFESTS, the metrics adapter) and
# asserts on the real API objects: routes with model header and path in ONE match, pools in the profile's API
# group, objectives, HPAs, the single GCPBackendPolicy per pool with the security policy merged and owned by one
# field manager, helm upgrades without conflicts, idempotence (second run changed=0) and check mode (creates
# nothing).
from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
COLLECTIONS = REPO / ".local" / "collections"
INVENTORY = REPO / "inventories" / "local" / "hosts.yml"
FIELD_MANAGER = "gke-ai-inference-gateway"
MODEL_HEADER = "X-Gateway-Model-Name"
METRIC = "prometheus.googleapis.com|inference_pool_average_kv_cache_utilization|gauge"
# The local inventory's variables: its HPA target and scale-down window are tuned for the local loop (the roles'
# defaults, 500m and 300 s, are production's; the v0.4.0 stack's own models get the default target).
LOCAL_VARS = {k: v for f in sorted((REPO / "inventories" / "local" / "group_vars" / "all").glob("*.yml"))
              for k, v in (yaml.safe_load(f.read_text()) or {}).items()}
DEFAULT_TARGET = yaml.safe_load((REPO / "roles" / "common" / "defaults" / "main.yml").read_text())[
    "infgw_model_defaults"]["autoscaling"]["target_kv_cache_utilization"]

# The walkthrough's models (roles/common defaults): name -> served model.
MODELS = {
    "gemma-3-1b": "google/gemma-3-1b-it",
    "gemma-3-4b": "google/gemma-3-4b-it",
    "llama-3-3b": "meta-llama/Llama-3.2-3B-Instruct",
}
SHORT = {"gemma-3-1b": "gemma3-1b", "gemma-3-4b": "gemma3-4b", "llama-3-3b": "llama3-3b"}

PROFILES = {
    "v1.1.0": {"pool_group": "inference.networking.k8s.io", "pool_version": "v1",
               "objective_kind": "InferenceObjective", "objective_plural": "inferenceobjectives"},
    "v0.4.0": {"pool_group": "inference.networking.x-k8s.io", "pool_version": "v1alpha2",
               "objective_kind": "InferenceModel", "objective_plural": "inferencemodels"},
}
ALL_ROLES = ["bbr", "inference_pool", "hpa_metrics", "cloud_armor"]


class Stack(object):
    """The deployment a test makes: namespace, profile and model names.

    The v0.4.0 inferencepool chart names its EPP ClusterRole/Binding after the release only (<pool>-epp, no
    namespace; fixed upstream in v1.0.2), so two namespaces of one cluster cannot hold the same pool name. The
    v0.4.0 tests therefore suffix the walkthrough's model names (and pass infgw_models); the v1.1.0 tests use
    the data model's defaults as they are.
    """

    def __init__(self, ns, profile):
        self.ns, self.profile = ns, profile
        self.suffix = "" if profile == "v1.1.0" else "-" + ns.rsplit("-", 1)[-1]
        self.p = PROFILES[profile]

    def name(self, base):
        return base + self.suffix

    def pool(self, base):
        return "vllm-" + self.name(base)

    @property
    def pools(self):
        return sorted(self.pool(b) for b in MODELS)

    def short(self, base):
        return SHORT[base] + self.suffix

    def cloud_armor(self, enabled=True):
        return {"enabled": enabled, "policy": "uc1-security-policy", "pools": [self.name("gemma-3-1b")],
                "allowed_ip_ranges": ["203.0.113.0/24"]}

    def models(self, only=None, **changes):
        """The walkthrough's models (roles/common defaults) with this stack's names; `changes` per base name."""
        walkthrough = [
            {"name": "gemma-3-1b", "host": "1b.example.com", "default_backend": True,
             "objective": {"name": "small-model", "priority": 0}, "autoscaling": {"enabled": True, "min": 1, "max": 3}},
            {"name": "gemma-3-4b", "host": "4b.example.com",
             "objective": {"name": "medium-model", "priority": 10}, "autoscaling": {"enabled": True, "min": 1, "max": 3}},
            {"name": "llama-3-3b", "host": "3b.example.com", "autoscaling": {"enabled": False, "min": 1, "max": 3}},
        ]
        out = []
        for m in walkthrough:
            base = m["name"]
            if only and base not in only:
                continue
            m = dict(m, name=self.name(base), short_name=self.short(base), model=MODELS[base])
            m.update(changes.get(base.replace("-", "_"), {}))
            out.append(m)
        return out

    def play_vars(self):
        extra = {"infgw_namespace": self.ns, "infgw_profile": self.profile, "infgw_cloud_armor": self.cloud_armor()}
        if self.suffix:
            extra["infgw_models"] = self.models()
        return extra


# --------------------------------------------------------------------------- helpers


class Run(object):
    """One ansible-playbook run (json stdout callback): stats and per-task results."""

    def __init__(self, proc):
        self.proc = proc
        try:
            self.out = json.loads(proc.stdout)
        except ValueError:
            pytest.fail("ansible-playbook output is not JSON (rc %s):\n%s\n%s"
                        % (proc.returncode, proc.stdout[-5000:], proc.stderr[-5000:]))
        self.stats = self.out["stats"]["localhost"]

    @property
    def changed(self):
        return self.stats.get("changed", 0)

    def tasks(self):
        """(task name without the "<role> : " prefix, result) in the order they ran."""
        for play in self.out["plays"]:
            for task in play["tasks"]:
                yield task["task"]["name"].split(" : ", 1)[-1], task["hosts"].get("localhost", {})

    def changed_tasks(self):
        return [name for name, res in self.tasks() if res.get("changed")]

    def failures(self):
        out = []
        for name, res in self.tasks():
            if res.get("failed"):
                out.append("%s: %s" % (name, res.get("msg")))
                for item in res.get("results", []):
                    if item.get("failed"):
                        out.append("  item %s: %s %s" % (item.get("item", {}).get("name", item.get("item")),
                                                         item.get("msg"), (item.get("stderr") or "")[-1500:]))
        return out

    def result(self, task_name):
        for name, res in self.tasks():
            if name == task_name:
                return res
        raise KeyError(task_name)

    def assert_ok(self):
        assert self.proc.returncode == 0 and not self.stats.get("failures"), (
            "playbook failed:\n%s\n%s" % ("\n".join(self.failures()), self.proc.stderr[-3000:]))
        return self


def run_roles(local_env, tmp_path, stack, roles=tuple(ALL_ROLES), extra=None, check=False, diff=False, timeout=900):
    play_vars = stack.play_vars()
    play_vars.update({"bbr_ready_timeout": 120, "inference_pool_ready_timeout": 120})
    play_vars.update(extra or {})
    play = [{"hosts": "localhost", "gather_facts": False, "vars": play_vars,
             "roles": ["gke_ai.inference_gateway." + r for r in roles]}]
    playbook = tmp_path / ("play-%s.json" % uuid.uuid4().hex[:8])
    playbook.write_text(json.dumps(play))
    env = dict(local_env.env,
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_PYTHON_INTERPRETER=str(VENV_BIN / "python"),
               LOCAL_GIE_MANIFESTS=str(Path(local_env.kubeconfig).parent / "gie"))
    args = [str(VENV_BIN / "ansible-playbook"), "-i", str(INVENTORY), str(playbook)]
    if check:
        args.append("--check")
    if diff:
        args.append("--diff")
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=str(REPO), timeout=timeout, check=False)
    return Run(proc)


def kget(local_env, resource, ns=None, name=None, check=True):
    args = ["get", resource] + ([name] if name else []) + (["-n", ns] if ns else [])
    args += ["-o", "json", "--show-managed-fields"]
    proc = local_env.kubectl(*args, check=False)
    if proc.returncode != 0:
        if check:
            pytest.fail("kubectl %s: %s" % (" ".join(args), proc.stderr))
        return None
    obj = json.loads(proc.stdout)
    return obj["items"] if not name else obj


def helm(local_env, *args, check=True):
    proc = subprocess.run([str(Path(local_env.bin_dir) / "helm"), *args], capture_output=True, text=True,
                          env=local_env.env, check=False)
    if check and proc.returncode != 0:
        pytest.fail("helm %s: %s" % (" ".join(args), proc.stderr))
    return proc


def releases(local_env, ns):
    return sorted(json.loads(helm(local_env, "list", "-n", ns, "-a", "-o", "json").stdout or "[]"),
                  key=lambda r: r["name"])


def owners(obj, path, subresource=None):
    """Managers whose managedFields entry owns the dotted path (same rule as the gcp_backend_policy_problems filter)."""
    found = []
    for entry in obj["metadata"].get("managedFields", []):
        if entry.get("subresource") != subresource:
            continue
        node = entry.get("fieldsV1", {})
        for part in path.split("."):
            node = node.get("f:" + part) if isinstance(node, dict) else None
            if node is None:
                break
        if node is not None and entry["manager"] not in found:
            found.append(entry["manager"])
    return found


def prerequisites(stack):
    """What the gateway and vllm_model roles would have created: the Gateway and one Service per model."""
    ns = stack.ns
    objs = [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
             "metadata": {"name": "vllm-xlb", "namespace": ns},
             "spec": {"gatewayClassName": "gke-l7-regional-external-managed",
                      "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}}]
    for pool in stack.pools:
        objs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": pool, "namespace": ns},
                     "spec": {"selector": {"app": pool}, "ports": [{"port": 8000, "targetPort": 8000}]}})
    return {"apiVersion": "v1", "kind": "List", "items": objs}


def cleanup(local_env, ns):
    """Uninstall the releases (their cluster-wide RBAC goes with them), then the namespace and this role's
    own cluster-scoped objects (v0.4.0 metrics reader)."""
    for rel in releases(local_env, ns):
        helm(local_env, "uninstall", rel["name"], "-n", ns, check=False)
    local_env.kubectl("delete", "clusterrolebinding", ns + "-inference-gateway-metrics-reader-role-binding",
                      "--ignore-not-found", check=False)
    local_env.kubectl("delete", "clusterrole", ns + "-inference-gateway-metrics-reader", "--ignore-not-found",
                      check=False)
    local_env.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def ns(local_env):
    name = "gie-" + uuid.uuid4().hex[:6]
    yield name
    cleanup(local_env, name)


def make_stack(local_env, ns, profile, create=True):
    stack = Stack(ns, profile)
    if create:
        local_env.kubectl("create", "namespace", ns)
        local_env.kubectl("apply", "-f", "-", stdin=json.dumps(prerequisites(stack)))
    return stack


def ours(objs):
    return [o for o in objs if o["metadata"].get("labels", {}).get("app.kubernetes.io/part-of")
            == "gke-ai-inference-gateway"]


# --------------------------------------------------------------------------- assertions on the real objects


def assert_routes(local_env, stack):
    routes = {r["metadata"]["name"]: r for r in kget(local_env, "httproutes.gateway.networking.k8s.io", stack.ns)}
    for model, served in MODELS.items():
        for prefix, backend in (("bbr-", {"kind": "Service", "group": "", "name": stack.pool(model), "port": 8000}),
                                ("infp-", {"kind": "InferencePool", "group": stack.p["pool_group"],
                                           "name": stack.pool(model)})):
            name = prefix + stack.short(model)
            assert name in routes, (name, sorted(routes))
            spec = routes[name]["spec"]
            assert spec["hostnames"] == [("bbr" if prefix == "bbr-" else "api") + ".example.com"]
            assert [p["name"] for p in spec["parentRefs"]] == ["vllm-xlb"]
            (rule,) = spec["rules"]
            # the walkthrough's bug fixed: header AND path in ONE match entry, no match without the header
            assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"},
                                        "headers": [{"type": "Exact", "name": MODEL_HEADER, "value": served}]}], name
            (ref,) = rule["backendRefs"]
            assert {k: ref.get(k) for k in backend} == backend, (name, ref)
            assert rule["filters"] == [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                "add": [{"name": "x-infgw-selected", "value": name}]}}]


def assert_pools(local_env, stack):
    p, ns, profile = stack.p, stack.ns, stack.profile
    pools = {x["metadata"]["name"]: x for x in kget(local_env, "inferencepools.%s" % p["pool_group"], ns)}
    assert sorted(pools) == stack.pools
    for name, pool in pools.items():
        assert pool["apiVersion"] == "%s/%s" % (p["pool_group"], p["pool_version"])
        selector = pool["spec"]["selector"]
        assert selector.get("matchLabels", selector) == {"app": name}
    other = "inference.networking.x-k8s.io" if p["pool_group"] == "inference.networking.k8s.io" \
        else "inference.networking.k8s.io"
    assert (kget(local_env, "inferencepools.%s" % other, ns, check=False) or []) == []
    rels = releases(local_env, ns)
    assert [r["name"] for r in rels] == ["bbr"] + stack.pools
    assert {r["status"] for r in rels} == {"deployed"}
    assert {r["chart"] for r in rels} == {"body-based-routing-" + profile, "inferencepool-" + profile}


def assert_objectives(local_env, stack):
    p, ns = stack.p, stack.ns
    objs = {o["metadata"]["name"]: o for o in kget(local_env, "%s.inference.networking.x-k8s.io" % p["objective_plural"], ns)}
    if p["objective_kind"] == "InferenceObjective":
        # only the models with an objective in the data model
        assert sorted(objs) == ["medium-model", "small-model"]
        assert objs["small-model"]["spec"]["priority"] == 0 and objs["medium-model"]["spec"]["priority"] == 10
        assert objs["medium-model"]["spec"]["poolRef"]["name"] == stack.pool("gemma-3-4b")
        assert objs["medium-model"]["spec"]["poolRef"]["group"] == p["pool_group"]
    else:
        # v0.4.0's EPP rejects models without an InferenceModel, so every model has one
        llama = stack.name("llama-3-3b")
        assert sorted(objs) == sorted([llama, "medium-model", "small-model"])
        assert objs["medium-model"]["spec"]["criticality"] == "Critical"
        assert objs["small-model"]["spec"]["criticality"] == "Standard"
        assert objs[llama]["spec"] == {"modelName": MODELS["llama-3-3b"], "criticality": "Standard",
                                       "poolRef": {"group": p["pool_group"], "kind": "InferencePool",
                                                   "name": stack.pool("llama-3-3b")}}


def assert_metrics(local_env, stack):
    ns, profile = stack.ns, stack.profile
    if profile == "v1.1.0":  # the chart's monitoring values: one PodMonitoring and scrape secret per pool
        pms = sorted(x["metadata"]["name"] for x in kget(local_env, "podmonitorings.monitoring.googleapis.com", ns))
        assert pms == stack.pools
        for pool in stack.pools:
            kget(local_env, "secret", ns, pool + "-metrics-reader-secret")
    else:  # the walkthrough's vllm-infgw-metrics.yaml, in the namespace, and the chart pointed at it
        secret = kget(local_env, "secret", ns, "inference-gateway-sa-metrics-reader-secret")
        assert secret["type"] == "kubernetes.io/service-account-token"
        kget(local_env, "clusterrole", None, ns + "-inference-gateway-metrics-reader")
        rb = kget(local_env, "rolebinding", ns, "gmp-system:collector:inference-gateway-sa-metrics-reader-secret-read")
        assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "collector", "namespace": "gmp-system"}]
        for pool in stack.pools:
            cpm = kget(local_env, "clusterpodmonitorings.monitoring.googleapis.com", None, "%s-%s" % (ns, pool))
            cred = cpm["spec"]["endpoints"][0]["authorization"]["credentials"]["secret"]
            assert cred == {"name": "inference-gateway-sa-metrics-reader-secret", "namespace": ns, "key": "token"}


def assert_hpas(local_env, stack):
    hpas = {h["metadata"]["name"]: h for h in kget(local_env, "hpa", stack.ns)}
    models = stack.models() if stack.suffix else [dict(m, name=stack.name(m["name"])) for m in LOCAL_VARS["infgw_models"]]
    targets = {"vllm-" + m["name"]: m["autoscaling"].get("target_kv_cache_utilization", DEFAULT_TARGET) for m in models}
    assert sorted(hpas) == [stack.pool("gemma-3-1b"), stack.pool("gemma-3-4b")]  # llama: autoscaling disabled
    for name, hpa in hpas.items():
        spec = hpa["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 3)
        (metric,) = spec["metrics"]
        assert metric["type"] == "External"
        assert metric["external"]["metric"] == {"name": METRIC, "selector": {"matchLabels": {"metric.labels.name": name}}}
        # a pool-wide average: Value, not the walkthrough's AverageValue 10m; the inventory's target and window
        assert metric["external"]["target"] == {"type": "Value", "value": targets[name]}
        assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == \
            LOCAL_VARS["hpa_metrics_behavior"]["scaleDown"]["stabilizationWindowSeconds"]


def assert_backend_policies(local_env, stack, security_policy="uc1-security-policy"):
    group = stack.p["pool_group"]
    policies = kget(local_env, "gcpbackendpolicies.networking.gke.io", stack.ns)
    for pool in stack.pools:
        targeting = [p for p in policies if p["spec"]["targetRef"] == {"group": group, "kind": "InferencePool",
                                                                       "name": pool}]
        # ONE policy per pool: the chart's own object (named like the pool), not a second one that GKE would ignore
        assert [p["metadata"]["name"] for p in targeting] == [pool]
        (policy,) = targeting
        default = policy["spec"]["default"]
        assert default["timeoutSec"] == 300 and default["logging"] == {"enabled": True}
        if pool == stack.pool("gemma-3-1b") and security_policy:
            assert default["securityPolicy"] == security_policy
        else:
            assert "securityPolicy" not in default
        # helm still owns the object's lifecycle ...
        labels = policy["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert policy["metadata"]["annotations"]["meta.helm.sh/release-name"] == pool
        assert owners(policy, "metadata.labels") == ["helm"]
        # ... and one field manager owns every spec field (no co-ownership with helm)
        for path in ("spec.targetRef", "spec.default.timeoutSec", "spec.default.logging"):
            assert owners(policy, path) == [FIELD_MANAGER], (pool, path, policy["metadata"]["managedFields"])
        if "securityPolicy" in default:
            assert owners(policy, "spec.default.securityPolicy") == [FIELD_MANAGER]


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("profile", ["v1.1.0", "v0.4.0"])
def test_roles_converge_idempotently_with_check_mode_first(local_env, ns, tmp_path, profile):
    # Check mode before the namespace exists: every role only lists what it would create.
    stack = make_stack(local_env, ns, profile, create=False)
    run_roles(local_env, tmp_path, stack, check=True, diff=True).assert_ok()
    assert local_env.kubectl("get", "namespace", ns, check=False).returncode != 0

    stack = make_stack(local_env, ns, profile)

    # Check mode in the existing namespace: dry runs (helm and server-side), nothing created.
    run = run_roles(local_env, tmp_path, stack, check=True, diff=True).assert_ok()
    assert run.changed > 0
    assert releases(local_env, ns) == []
    assert ours(kget(local_env, "httproutes.gateway.networking.k8s.io", ns)) == []
    assert kget(local_env, "hpa", ns) == []
    # Check mode installs no CRD either: on a fresh cluster the objective type does not exist yet (None).
    assert kget(local_env, "%s.inference.networking.x-k8s.io" % stack.p["objective_plural"], ns,
                check=False) in ([], None)
    assert kget(local_env, "gcpbackendpolicies.networking.gke.io", ns) == []

    # The real run.
    run = run_roles(local_env, tmp_path, stack).assert_ok()
    assert run.changed > 0
    assert_routes(local_env, stack)
    assert_pools(local_env, stack)
    assert_objectives(local_env, stack)
    assert_metrics(local_env, stack)
    assert_hpas(local_env, stack)
    assert_backend_policies(local_env, stack)
    assert run.result("Report the security policy per pool (fact cloud_armor_policies)")["ansible_facts"][
        "cloud_armor_policies"] == {stack.pool("gemma-3-1b"): "uc1-security-policy", stack.pool("gemma-3-4b"): None,
                                    stack.pool("llama-3-3b"): None}

    # Idempotent: nothing changes on the second run, in check mode or for real.
    run = run_roles(local_env, tmp_path, stack, check=True, diff=True).assert_ok()
    assert run.changed == 0, run.changed_tasks()
    run = run_roles(local_env, tmp_path, stack).assert_ok()
    assert run.changed == 0, run.changed_tasks()


@pytest.mark.parametrize("profile", ["v1.1.0", "v0.4.0"])
def test_backend_policy_single_owner_survives_helm_upgrades(local_env, ns, tmp_path, profile):
    stack = make_stack(local_env, ns, profile)
    roles = ["inference_pool", "cloud_armor"]
    no_wait = {"inference_pool_wait_ready": False}
    run_roles(local_env, tmp_path, stack, roles, extra=no_wait).assert_ok()
    assert_backend_policies(local_env, stack)

    # A helm upgrade by hand (new values, same chart) goes through without a conflict and keeps the merged spec:
    # helm 3 patches a custom resource only where its own rendered manifest changed.
    registry = "oci://%s/gateway-api-inference-extension/charts/inferencepool" % local_env.registry
    helm(local_env, "upgrade", stack.pool("gemma-3-1b"), registry, "--version", profile, "--plain-http", "-n", ns,
         "--reuse-values", "--set", "inferenceExtension.replicas=2")
    assert_backend_policies(local_env, stack)
    run = run_roles(local_env, tmp_path, stack, ["cloud_armor"]).assert_ok()
    assert run.changed == 0, run.changed_tasks()

    # An upgrade through the role (helm_oci_chart, values changed for every pool) neither; the roles then
    # converge again with nothing to change on the policies.
    more = dict(no_wait, inference_pool_chart_values={"inferenceExtension": {"flags": [{"name": "v", "value": 3}]}})
    run = run_roles(local_env, tmp_path, stack, roles, extra=more).assert_ok()
    assert "Install or upgrade one inferencepool release per model" in run.changed_tasks()
    assert "Converge timeout, logging and security policy of the pools' GCPBackendPolicies" not in run.changed_tasks()
    assert_backend_policies(local_env, stack)
    assert all(int(r["revision"]) >= 2 for r in releases(local_env, ns))

    # A chart change that does touch the policy (here: the pool group it targets) is written by helm, and
    # the next cloud_armor run takes the field back: one owner again.
    other = {"v1.1.0": "inference.networking.x-k8s.io/v1alpha2", "v0.4.0": None}[profile]
    if other:
        pool = stack.pool("gemma-3-4b")
        helm(local_env, "upgrade", pool, registry, "--version", profile, "--plain-http", "-n", ns,
             "--reuse-values", "--set", "inferencePool.apiVersion=" + other)
        policy = kget(local_env, "gcpbackendpolicies.networking.gke.io", ns, pool)
        assert policy["spec"]["targetRef"]["group"] == "inference.networking.x-k8s.io"
        assert "helm" in owners(policy, "spec.targetRef.group")
        run = run_roles(local_env, tmp_path, stack, ["cloud_armor"]).assert_ok()
        assert run.changed > 0
        helm(local_env, "rollback", pool, "-n", ns)  # the pool itself back in the v1 group
        run = run_roles(local_env, tmp_path, stack, ["cloud_armor"]).assert_ok()
        assert_backend_policies(local_env, stack)

    # Cloud Armor off: the security policy is detached, the chart's timeout and logging stay, same owner.
    run = run_roles(local_env, tmp_path, stack, ["cloud_armor"],
                    extra={"infgw_cloud_armor": stack.cloud_armor(enabled=False)}).assert_ok()
    assert run.changed > 0
    assert_backend_policies(local_env, stack, security_policy=None)


def test_pruning_follows_the_data_model(local_env, ns, tmp_path):
    """Models leaving the data model take their routes, objectives and HPAs with them (releases stay)."""
    stack = make_stack(local_env, ns, "v1.1.0")
    roles = ["bbr", "inference_pool", "hpa_metrics"]
    run_roles(local_env, tmp_path, stack, roles).assert_ok()
    assert len(kget(local_env, "hpa", ns)) == 2

    models = stack.models(only=["gemma-3-1b", "gemma-3-4b"],
                          gemma_3_1b={"autoscaling": {"enabled": False, "min": 1, "max": 3}},
                          gemma_3_4b={"objective": None,
                                      "autoscaling": {"enabled": True, "min": 2, "max": 5,
                                                      "target_kv_cache_utilization": "0.7"}})
    run = run_roles(local_env, tmp_path, stack, roles, extra={"infgw_models": models}, diff=True).assert_ok()
    routes = sorted(r["metadata"]["name"] for r in ours(kget(local_env, "httproutes.gateway.networking.k8s.io", ns)))
    assert routes == ["bbr-gemma3-1b", "bbr-gemma3-4b", "infp-gemma3-1b", "infp-gemma3-4b"]
    objectives = sorted(o["metadata"]["name"] for o in kget(local_env, "inferenceobjectives.inference.networking.x-k8s.io", ns))
    assert objectives == ["small-model"]  # medium-model went with gemma-3-4b's objective
    (hpa,) = kget(local_env, "hpa", ns)
    assert hpa["metadata"]["name"] == "vllm-gemma-3-4b"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["spec"]["metrics"][0]["external"]["target"] == {"type": "Value", "value": "700m"}
    # the step's diff is one entry per object (the callback prints them), here the HPA's new bounds
    shown = run.result("Converge one HPA per autoscaled model")["diff"]
    assert any(d["before_header"] == "HorizontalPodAutoscaler %s/vllm-gemma-3-4b" % ns and "maxReplicas: 5" in d["after"]
               and "maxReplicas: 5" not in d["before"] for d in shown), shown

    run = run_roles(local_env, tmp_path, stack, roles, extra={"infgw_models": models}).assert_ok()
    assert run.changed == 0, run.changed_tasks()


def test_metrics_adapter_check_mode_and_file_override(local_env, ns, tmp_path):
    """The adapter is dry-run in check mode (nothing registered), and hpa_metrics_adapter_src is honoured."""
    stack = make_stack(local_env, ns, "v1.1.0")
    # Other tests (and site.yml) may have applied the adapter already: check mode must leave it as it found it.
    before = kget(local_env, "apiservice", None, "v1beta1.external.metrics.k8s.io", check=False)
    run = run_roles(local_env, tmp_path, stack, ["hpa_metrics"], check=True,
                    extra={"hpa_metrics_adapter_enabled": True, "hpa_metrics_adapter_replicas": 3}).assert_ok()
    assert run.changed > 0
    after = kget(local_env, "apiservice", None, "v1beta1.external.metrics.k8s.io", check=False)
    converge = run.result("Converge the custom metrics adapter")
    if before is None:
        assert "Deployment custom-metrics/custom-metrics-stackdriver-adapter" in converge["created"]
        assert after is None
        assert local_env.kubectl("get", "namespace", "custom-metrics", check=False).returncode != 0
    else:
        assert "Deployment custom-metrics/custom-metrics-stackdriver-adapter" in converge["updated"]
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        deployment = kget(local_env, "deployment", "custom-metrics", "custom-metrics-stackdriver-adapter")
        assert deployment["spec"]["replicas"] != 3  # the dry run's change was not applied

    # A local manifest in place of the pinned adapter (harmless here: one ConfigMap), applied for real.
    manifest = tmp_path / "adapter.yaml"
    manifest.write_text("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: fake-adapter, namespace: %s}\n"
                        "data: {a: b}\n---\n" % ns)
    extra = {"hpa_metrics_adapter_enabled": True, "hpa_metrics_adapter_src": str(manifest)}
    run_roles(local_env, tmp_path, stack, ["hpa_metrics"], extra=extra).assert_ok()
    assert kget(local_env, "configmap", ns, "fake-adapter")["data"] == {"a": "b"}
    run = run_roles(local_env, tmp_path, stack, ["hpa_metrics"], extra=extra).assert_ok()
    assert run.changed == 0, run.changed_tasks()
