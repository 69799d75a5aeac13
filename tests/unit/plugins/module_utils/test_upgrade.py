# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_upgrade.py: detection from the lists upgrade.yml reads, and the plan - what
# a fresh upgrade does, where an interrupted one resumes, that a finished one is a no-op, that a rollback before the
# old releases go is the same plan reversed, collisions and CRD deletions refused.
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.filter.upgrade import FilterModule
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._upgrade import (
    UpgradeError, crd_file_to_name, detect, plan, probe_requests, probe_routes)

PROFILES_DIR = Path(__file__).resolve().parents[4] / "roles" / "common" / "vars" / "profiles"
PROFILES = {p.stem: yaml.safe_load(p.read_text())["infgw_profile_data"] for p in PROFILES_DIR.glob("*.yml")}
NS = "gemma"
K8S, XK8S = "inference.networking.k8s.io", "inference.networking.x-k8s.io"


def models(profile, names=("gemma-3-1b", "llama-3-3b")):
    suffix = PROFILES[profile]["pool_suffix"]
    return [{"name": n, "model": "m/" + n, "short_name": n, "pool_name": "vllm-%s%s" % (n, suffix),
             "deployment_name": "vllm-" + n, "infp_route_name": "infp-" + n} for n in names]


def pool(name, group):
    spec = {"endpointPickerRef": {"name": name + "-epp"}} if group == K8S else {"extensionRef": {"name": name + "-epp"}}
    return {"metadata": {"name": name, "namespace": NS, "annotations": {"meta.helm.sh/release-name": name}},
            "spec": spec}


def epp(pool_name, profile, ready=True):
    return {"metadata": {"name": pool_name + "-epp"},
            "spec": {"template": {"spec": {"containers": [{"image": PROFILES[profile]["images"]["epp"]}]}}},
            "status": {"readyReplicas": 1 if ready else 0, "availableReplicas": 1 if ready else 0}}


def route(name, refs):
    return {"metadata": {"name": name},
            "spec": {"rules": [{"backendRefs": [dict(kind="InferencePool", group=g, name=n, weight=w)
                                                for g, n, w in refs]}]}}


def hpa(name, pool_name):
    return {"metadata": {"name": name}, "spec": {"metrics": [{"type": "External", "external": {"metric": {
        "name": PROFILES["v1.1.0"]["hpa_metric"], "selector": {"matchLabels": {"metric.labels.name": pool_name}}}}}]}}


def crd(name, group, bundle=None):
    meta = {"name": name}
    if bundle:
        meta["annotations"] = {"inference.networking.k8s.io/bundle-version": bundle}
    return {"metadata": meta, "status": {"storedVersions": ["v1"]}}  # as k8s_converge returns it: no spec


def crds_of(profile):
    return [crd(crd_file_to_name(f), crd_file_to_name(f).split(".", 1)[1],
                None if profile == "v0.4.0" else profile) for f in PROFILES[profile]["crds"]]


def cluster(profiles_deployed, weights, hpa_pool_profile=None, extra_crds=(), objectives=(), inference_models=(),
            alpha_elsewhere=()):
    """The ten lists upgrade.yml reads, for the walkthrough's two models deployed under ``profiles_deployed``, the
    pool routes' weights {profile: weight}."""
    pools_v1, pools_alpha, deployments, crds = [], [], [], []
    for prof in profiles_deployed:
        for m in models(prof):
            (pools_v1 if PROFILES[prof]["pool"]["group"] == K8S else pools_alpha).append(
                pool(m["pool_name"], PROFILES[prof]["pool"]["group"]))
            deployments.append(epp(m["pool_name"], prof))
        crds += crds_of(prof)
    crds += list(extra_crds)
    routes = []
    for i, m in enumerate(models(profiles_deployed[0])):
        refs = [(PROFILES[p]["pool"]["group"], models(p)[i]["pool_name"], weights[p]) for p in weights]
        routes.append(route(m["infp_route_name"], refs))
    hp = hpa_pool_profile or profiles_deployed[0]
    hpas = [hpa("vllm-gemma-3-1b", models(hp)[0]["pool_name"])]
    alpha_all = [dict(p, metadata=dict(p["metadata"])) for p in pools_alpha] + list(alpha_elsewhere)
    return [pools_v1, pools_alpha, deployments, routes, list(objectives), list(inference_models), hpas,
            {n["metadata"]["name"]: n for n in crds}.values(), alpha_all, list(inference_models)]


def make_plan(selected, target, **kw):
    return plan(detect(NS, [list(x) for x in selected], PROFILES), target, PROFILES, models(target), **kw)


def test_detect_finds_pools_profiles_weights_and_hpas():
    d = detect(NS, [list(x) for x in cluster(["v1.1.0", "v1.5.0"], {"v1.1.0": 50, "v1.5.0": 50})], PROFILES)
    assert [(p["name"], p["profile"], p["epp_ready"]) for p in d["pools"]] == [
        ("vllm-gemma-3-1b", "v1.1.0", True), ("vllm-gemma-3-1b-v15", "v1.5.0", True),
        ("vllm-llama-3-3b", "v1.1.0", True), ("vllm-llama-3-3b-v15", "v1.5.0", True)]
    assert d["routes"]["infp-gemma-3-1b"] == [{"group": K8S, "name": "vllm-gemma-3-1b", "weight": 50},
                                              {"group": K8S, "name": "vllm-gemma-3-1b-v15", "weight": 50}]
    assert d["hpas"] == {"vllm-gemma-3-1b": {"pool": "vllm-gemma-3-1b", "metric": PROFILES["v1.1.0"]["hpa_metric"]}}
    assert d["crds"]["inferencepools.inference.networking.k8s.io"]["bundle_version"] == "v1.5.0"


def test_fresh_upgrade_v110_to_v150():
    p = make_plan(cluster(["v1.1.0"], {"v1.1.0": 1}), "v1.5.0")
    assert p["errors"] == [] and not p["noop"]
    assert p["source"] == ["v1.1.0"]
    assert [c.split(" (")[0] for c in p["create"] if c.startswith("helm")] == [
        "helm release vllm-gemma-3-1b-v15", "helm release vllm-llama-3-3b-v15"]
    assert "CRD inferencemodelrewrites.inference.networking.x-k8s.io (GIE v1.5.0)" in p["create"]
    assert p["shift"] == [50, 100] and p["current_pct"] == 0
    step50 = p["backend_refs"][0]
    assert step50["weight"] == 50
    assert step50["backend_refs"]["gemma-3-1b"] == [
        {"group": K8S, "kind": "InferencePool", "name": "vllm-gemma-3-1b-v15", "weight": 50},
        {"group": K8S, "kind": "InferencePool", "name": "vllm-gemma-3-1b", "weight": 50}]
    assert p["backend_refs"][1]["backend_refs"]["gemma-3-1b"] == [
        {"group": K8S, "kind": "InferencePool", "name": "vllm-gemma-3-1b-v15", "weight": 100}]
    assert p["releases_to_remove"] == ["vllm-gemma-3-1b", "vllm-llama-3-3b"]
    assert p["release_removals"][0] == {"name": "vllm-gemma-3-1b", "state": "absent"}
    assert any(c.startswith("HPA vllm-gemma-3-1b: metric") and "vllm-gemma-3-1b-v15" in c for c in p["change"])
    assert p["apply_crds"] is True
    # the x-k8s.io v1alpha2 pool CRD of v1.1.0 is not in v1.5.0's bundle: kept, never deleted unasked
    assert p["crds"]["kept"] == ["inferencepools.inference.networking.x-k8s.io"] and p["crds"]["delete"] == []
    assert any("rollback is upgrade.yml -e infgw_target_profile=v1.1.0" in i for i in p["irreversible"])
    assert p["report"][0] == "Deployed: v1.1.0; target: v1.5.0 (GIE v1.5.0, chart v1.5.0)"


def test_interrupted_mid_shift_resumes_at_the_next_step():
    p = make_plan(cluster(["v1.1.0", "v1.5.0"], {"v1.1.0": 50, "v1.5.0": 50}), "v1.5.0")
    assert p["create"] == [] and p["current_pct"] == 50 and p["shift"] == [100]
    assert [s["weight"] for s in p["backend_refs"]] == [100]


def test_shifted_but_not_cleaned_up_still_removes_the_old():
    p = make_plan(cluster(["v1.1.0", "v1.5.0"], {"v1.1.0": 0, "v1.5.0": 100}, hpa_pool_profile="v1.5.0"), "v1.5.0")
    assert p["shift"] == [] and p["backend_refs"] == []
    assert p["final_routes"] == ["infp-gemma-3-1b", "infp-llama-3-3b"]  # still two backendRefs each
    assert p["releases_to_remove"] == ["vllm-gemma-3-1b", "vllm-llama-3-3b"] and not p["noop"]


def test_finished_upgrade_is_a_noop():
    kept = crd("inferencepools.inference.networking.x-k8s.io", XK8S, "v1.1.0")
    sel = cluster(["v1.5.0"], {"v1.5.0": 1}, extra_crds=[kept])
    p = make_plan(sel, "v1.5.0")
    assert p["noop"], p["report"]
    assert p["create"] == p["change"] == p["delete"] == p["errors"] == [] and p["shift"] == []
    assert p["report"][-1] == "Nothing to do: the namespace is at v1.5.0."


def test_probe_routes_left_by_an_interrupted_run_are_cleaned():
    sel = cluster(["v1.5.0"], {"v1.5.0": 1})
    sel[3].append(route("infgw-upgrade-probe-gemma-3-1b", [(K8S, "vllm-gemma-3-1b-v15", 1)]))
    p = make_plan(sel, "v1.5.0")
    assert not p["noop"] and any("infgw-upgrade-probe-gemma-3-1b" in d for d in p["delete"])


def test_rollback_before_removal_shifts_back_and_never_downgrades_crds():
    p = make_plan(cluster(["v1.1.0", "v1.5.0"], {"v1.1.0": 50, "v1.5.0": 50}, hpa_pool_profile="v1.1.0"), "v1.1.0")
    assert p["errors"] == [] and p["create"] == []
    assert p["source"] == ["v1.5.0"] and p["shift"] == [100]
    assert p["backend_refs"][0]["backend_refs"]["gemma-3-1b"] == [
        {"group": K8S, "kind": "InferencePool", "name": "vllm-gemma-3-1b", "weight": 100}]
    assert p["releases_to_remove"] == ["vllm-gemma-3-1b-v15", "vllm-llama-3-3b-v15"]
    assert p["apply_crds"] is False and "newer bundle installed" in p["report"][-1]


def test_v040_to_v150_directly_across_groups_and_objective_kinds():
    models_v040 = [{"metadata": {"name": "vllm-gemma-3-1b"}, "spec": {"poolRef": {"group": XK8S, "name": "vllm-gemma-3-1b"}}}]
    sel = cluster(["v0.4.0"], {"v0.4.0": 1}, inference_models=models_v040)
    p = make_plan(sel, "v1.5.0")
    assert p["errors"] == [] and p["source"] == ["v0.4.0"]
    step = p["backend_refs"][0]["backend_refs"]["llama-3-3b"]
    assert step == [{"group": K8S, "kind": "InferencePool", "name": "vllm-llama-3-3b-v15", "weight": 50},
                    {"group": XK8S, "kind": "InferencePool", "name": "vllm-llama-3-3b", "weight": 50}]
    assert "InferenceModel vllm-gemma-3-1b (pool vllm-gemma-3-1b; replaced by InferenceObjective of the target)" \
        in p["delete"]
    assert sorted(p["crds"]["kept"]) == ["inferencemodels.inference.networking.x-k8s.io",
                                         "inferencepools.inference.networking.x-k8s.io"]


def test_crd_deletion_only_when_asked_and_nothing_is_lost():
    models_v040 = [{"metadata": {"name": "vllm-gemma-3-1b", "namespace": NS},
                    "spec": {"poolRef": {"group": XK8S, "name": "vllm-gemma-3-1b"}}}]
    sel = cluster(["v0.4.0"], {"v0.4.0": 1}, inference_models=models_v040)
    p = make_plan(sel, "v1.5.0", delete_crds=True)
    assert p["errors"] == [] and sorted(p["crds"]["delete"]) == [
        "inferencemodels.inference.networking.x-k8s.io", "inferencepools.inference.networking.x-k8s.io"]
    other = {"metadata": {"name": "someone-elses", "namespace": "other"}}
    sel = cluster(["v0.4.0"], {"v0.4.0": 1}, inference_models=models_v040, alpha_elsewhere=[other])
    p = make_plan(sel, "v1.5.0", delete_crds=True)
    assert p["errors"] == ["refusing to delete CRD inferencepools.inference.networking.x-k8s.io: 1 object(s) would "
                           "be lost (other/someone-elses)"]


def test_same_names_across_groups_are_refused_with_the_fix():
    p = make_plan(cluster(["v0.4.0"], {"v0.4.0": 1}), "v1.1.0")
    assert len(p["errors"]) == 2 and "set infgw_profile_overrides.pool_suffix" in p["errors"][0]
    profiles = dict(PROFILES, **{"v1.1.0": dict(PROFILES["v1.1.0"], pool_suffix="-v11")})
    ms = [dict(m, pool_name=m["pool_name"] + "-v11") for m in models("v1.1.0")]
    d = detect(NS, [list(x) for x in cluster(["v0.4.0"], {"v0.4.0": 1})], profiles)
    p = plan(d, "v1.1.0", profiles, ms)
    assert p["errors"] == [] and p["releases_to_remove"] == ["vllm-gemma-3-1b", "vllm-llama-3-3b"]


def test_bad_input():
    with pytest.raises(UpgradeError):
        plan(detect(NS, [[]] * 10, PROFILES), "v9", PROFILES, [])
    with pytest.raises(UpgradeError):
        plan(detect(NS, [[]] * 10, PROFILES), "v1.5.0", PROFILES, [], steps=[50])
    with pytest.raises(UpgradeError):
        detect(NS, [[]] * 3, PROFILES)
    f = FilterModule().filters()["upgrade_plan"]
    with pytest.raises(AnsibleFilterError):
        f([[]] * 2, NS, "v1.5.0", PROFILES, [])


def test_probe_routes_and_requests():
    [r] = probe_routes(models("v1.5.0", ["gemma-3-1b"]), "v1.5.0", K8S, NS, [{"name": "vllm-xlb"}], "api.example.com",
                       "X-Gateway-Model-Name", {"a": "b"}, "x-infgw-selected")
    assert r["metadata"]["name"] == "infgw-upgrade-probe-gemma-3-1b"
    assert r["spec"]["rules"][0]["matches"][0]["headers"][1] == {
        "type": "Exact", "name": "X-Infgw-Upgrade-Probe", "value": "v1.5.0"}
    assert r["spec"]["rules"][0]["backendRefs"] == [{"group": K8S, "kind": "InferencePool", "name": "vllm-gemma-3-1b-v15"}]
    [q] = probe_requests([{"name": "pool api", "route": "infp-gemma-3-1b", "headers": {"A": "1"}}], "v1.5.0",
                         "x-infgw-selected")
    assert q["headers"] == {"A": "1", "X-Infgw-Upgrade-Probe": "v1.5.0"}
    assert q["response_headers"] == {"x-infgw-selected": "infgw-upgrade-probe-gemma-3-1b"}
