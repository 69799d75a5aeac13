# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of playbooks/upgrade.yml: what is deployed (from one read of the namespace and the CRDs), and the plan
that takes it side by side to a target profile, resumable from any point.

The plan is a pure function of what is live, so a re-run after an interruption (or after the upgrade finished)
computes what is left: nothing, when the target is reached. A rollback is the same plan towards the previous
profile while its pools still exist.

Names: a profile's pools, EPPs and helm releases are ``vllm-<model><pool_suffix>``; the model servers, their
Services, HPAs and routes keep their names across profiles (they do not depend on the GIE version).
"""

from __future__ import annotations

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._k8s_converge import version_key

POOL_GROUPS = ("inference.networking.k8s.io", "inference.networking.x-k8s.io")
CRD_GROUPS = ("inference.networking.k8s.io", "inference.networking.x-k8s.io")
BUNDLE_ANNOTATION = "inference.networking.k8s.io/bundle-version"


class UpgradeError(Exception):
    """Input the plan cannot be made from (a bug or a cluster this collection did not set up)."""


def _meta(obj):
    return obj.get("metadata") or {}


def _group(api_version):
    return api_version.split("/")[0] if "/" in (api_version or "") else ""


def crd_file_to_name(filename):
    """inference.networking.k8s.io_inferencepools.yaml -> inferencepools.inference.networking.k8s.io"""
    group, rest = filename.split("_", 1)
    return "%s.%s" % (rest.rsplit(".", 1)[0], group)


def profile_of_image(image, profiles):
    """The profile whose EPP image is ``image`` (None when none is)."""
    for name, data in profiles.items():
        if (data.get("images") or {}).get("epp") == image:
            return name
    return None


def detect(namespace, selected, profiles):
    """What is deployed, from the lists k8s_converge read (``select`` in this order): InferencePools of the two
    groups, Deployments, HTTPRoutes, InferenceObjectives, InferenceModels, HPAs of the namespace, then the CRDs and,
    cluster-wide, the InferencePools (v1alpha2), InferenceModels and InferenceObjectives (to know what deleting a
    CRD would lose)."""
    if len(selected) != 10:
        raise UpgradeError("detect expects 10 lists, got %d" % len(selected))
    pools_v1, pools_alpha, deployments, routes, objectives, models, hpas, crds, alpha_all, models_all = selected
    images = {}
    for d in deployments or []:
        containers = (((d.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        status = d.get("status") or {}
        images[_meta(d).get("name")] = {
            "image": containers[0].get("image") if containers else None,
            "ready": int(status.get("readyReplicas") or 0) >= 1 and int(status.get("availableReplicas") or 0) >= 1,
        }
    pools = []
    for group, items in ((POOL_GROUPS[0], pools_v1), (POOL_GROUPS[1], pools_alpha)):
        for p in items or []:
            name = _meta(p).get("name")
            spec = p.get("spec") or {}
            epp = (spec.get("endpointPickerRef") or spec.get("extensionRef") or {}).get("name") or name + "-epp"
            dep = images.get(epp) or {}
            profile = profile_of_image(dep.get("image"), profiles)
            if profile is None and group == POOL_GROUPS[1]:
                profile = next((n for n, d in profiles.items() if d["pool"]["group"] == group), None)
            pools.append({"name": name, "group": group, "profile": profile, "epp": epp,
                          "epp_ready": bool(dep.get("ready")), "release": (_meta(p).get("annotations") or {}).get(
                              "meta.helm.sh/release-name")})
    route_refs, probes = {}, []
    for r in routes or []:
        if (_meta(r).get("name") or "").startswith(PROBE_PREFIX):
            probes.append(_meta(r).get("name"))
            continue
        rules = (r.get("spec") or {}).get("rules") or []
        refs = []
        for rule in rules:
            for ref in rule.get("backendRefs") or []:
                if ref.get("kind") == "InferencePool":
                    refs.append({"group": ref.get("group", ""), "name": ref.get("name"),
                                 "weight": int(ref.get("weight", 1))})
        if refs:
            route_refs[_meta(r).get("name")] = refs
    objs = []
    for kind, items in (("InferenceObjective", objectives), ("InferenceModel", models)):
        for o in items or []:
            ref = (o.get("spec") or {}).get("poolRef") or {}
            objs.append({"kind": kind, "name": _meta(o).get("name"), "pool": ref.get("name"),
                         "group": ref.get("group")})
    hpa_pools = {}
    for h in hpas or []:
        for metric in (h.get("spec") or {}).get("metrics") or []:
            ext = metric.get("external") or {}
            labels = ((ext.get("metric") or {}).get("selector") or {}).get("matchLabels") or {}
            if "metric.labels.name" in labels:
                hpa_pools[_meta(h).get("name")] = {"pool": labels["metric.labels.name"],
                                                   "metric": (ext.get("metric") or {}).get("name")}
    crd_info = {}
    for c in crds or []:
        name = _meta(c).get("name") or ""
        # k8s_converge returns CRDs without their spec (megabytes of schema): the group is in the name
        if name.split(".", 1)[-1] in CRD_GROUPS:
            crd_info[name] = {"bundle_version": (_meta(c).get("annotations") or {}).get(BUNDLE_ANNOTATION),
                              "stored_versions": (c.get("status") or {}).get("storedVersions") or []}
    cluster = {
        "inferencepools.inference.networking.x-k8s.io": sorted(
            "%s/%s" % (_meta(o).get("namespace"), _meta(o).get("name")) for o in alpha_all or []),
        "inferencemodels.inference.networking.x-k8s.io": sorted(
            "%s/%s" % (_meta(o).get("namespace"), _meta(o).get("name")) for o in models_all or []),
    }
    return {"namespace": namespace, "pools": sorted(pools, key=lambda p: (p["name"], p["group"])),
            "routes": route_refs, "objectives": sorted(objs, key=lambda o: (o["kind"], o["name"])),
            "hpas": hpa_pools, "crds": crd_info, "cluster_objects": cluster, "probe_routes": sorted(probes)}


def _target_pct(refs, target_names, group):
    total = sum(r["weight"] for r in refs)
    if total <= 0:
        return 0
    return round(100 * sum(r["weight"] for r in refs if r["name"] in target_names and r["group"] == group) / total)


def plan(detected, target, profiles, models, steps=(50, 100), delete_crds=False):
    """The upgrade (or rollback) from what is deployed to ``target`` (a profile name of ``profiles``) for the
    resolved ``models`` (their ``pool_name`` and ``infp_route_name`` under the target profile).

    Returns a dict: ``source`` (profiles deployed), ``create``/``change``/``delete`` (texts), ``releases_to_remove``,
    ``shift`` (remaining weights of the target pools, in percent), ``backend_refs`` (per step: model name ->
    backendRefs of its pool route), ``apply_crds``, ``crds`` (applied/kept/deleted/refused), ``irreversible``,
    ``errors`` (refusals: nothing may be done), ``noop`` and ``report`` (lines for a person)."""
    if target not in profiles:
        raise UpgradeError("unknown target profile %r (known: %s)" % (target, ", ".join(sorted(profiles))))
    steps = sorted({int(s) for s in steps})
    if not steps or steps[-1] != 100 or steps[0] <= 0:
        raise UpgradeError("shift steps must be percentages in (0, 100] ending with 100, got %r" % (list(steps),))
    tp = profiles[target]
    group = tp["pool"]["group"]
    suffixes = {d.get("pool_suffix", "") for d in profiles.values()}
    target_names = {m["name"]: m["pool_name"] for m in models}
    pools = detected["pools"]
    by_key = {(p["name"], p["group"]): p for p in pools}

    def model_of(pool_name):
        for m in models:
            base = "vllm-" + m["name"]
            if any(pool_name == base + s for s in suffixes):
                return m["name"]
        return None

    errors, create, change, delete, irreversible = [], [], [], [], []
    old = [p for p in pools if model_of(p["name"]) and (p["name"], p["group"]) not in
           {(n, group) for n in target_names.values()}]
    for p in old:
        if p["name"] in target_names.values():
            errors.append(
                "pool %s (%s, profile %s) has the name the %s profile gives its pool: helm releases and EPPs of both "
                "would collide; set infgw_profile_overrides.pool_suffix (e.g. -%s) for the target"
                % (p["name"], p["group"], p["profile"] or "?", target, target.replace(".", "")[:3]))
    source = sorted({p["profile"] or "unknown" for p in old})
    for p in old:
        if p["profile"] is None:
            errors.append("pool %s (%s): its EPP image matches no profile; upgrade.yml handles only pools this "
                          "collection installed" % (p["name"], p["group"]))

    for m in models:
        name = m["pool_name"]
        live = by_key.get((name, group))
        if live is None:
            create.append("helm release %s (inferencepool %s): InferencePool %s/%s, EPP %s-epp, HealthCheckPolicy, "
                          "GCPBackendPolicy" % (name, tp["chart_version"], group, name, name))
        elif live["profile"] not in (target, None):
            errors.append("pool %s is profile %s, not %s" % (name, live["profile"], target))

    # The routes: the target's share now, and the steps still to take.
    shift_models = {}
    current = {}
    for m in models:
        refs = detected["routes"].get(m["infp_route_name"])
        if refs is None:
            continue
        current[m["name"]] = _target_pct(refs, {m["pool_name"]}, group)
    low = min(current.values()) if current else 100
    remaining = [s for s in steps if s > low]
    old_by_model = {}
    for p in old:
        old_by_model.setdefault(model_of(p["name"]), []).append(p)
    backend_refs = []
    for s in remaining:
        step = {}
        for m in models:
            if m["name"] not in current:
                continue
            olds = old_by_model.get(m["name"]) or []
            refs = [{"group": group, "kind": "InferencePool", "name": m["pool_name"], "weight": s}]
            if s < 100:
                # the old pool(s) share the rest; one old pool is the usual case
                share = 100 - s
                for i, p in enumerate(olds):
                    w = share // len(olds) + (1 if i < share % len(olds) else 0)
                    refs.append({"group": p["group"], "kind": "InferencePool", "name": p["name"], "weight": w})
            step[m["name"]] = refs
        backend_refs.append({"weight": s, "backend_refs": step})
        shift_models.update({k: True for k in step})
    if remaining and current:
        change.append("HTTPRoutes %s: traffic to the %s pools in steps %s%% (now %s%%), readiness and a request "
                      "through the gateway checked at each step" % (
                          ", ".join(sorted(m["infp_route_name"] for m in models if m["name"] in current)), target,
                          ", ".join(str(s) for s in remaining), low))
    # Single backendRef to the target once shifted (what site.yml renders).
    final_routes = [m["infp_route_name"] for m in models if m["name"] in current and (
        len(detected["routes"][m["infp_route_name"]]) != 1 or remaining)]

    for h, info in sorted(detected["hpas"].items()):
        m = next((m for m in models if m.get("deployment_name", "vllm-" + m["name"]) == h), None)
        if m and info["pool"] != m["pool_name"]:
            change.append("HPA %s: metric %s of pool %s instead of %s (after the shift)" % (
                h, tp.get("hpa_metric", info["metric"]), m["pool_name"], info["pool"]))
        elif m and tp.get("hpa_metric") and info["metric"] != tp["hpa_metric"]:
            change.append("HPA %s: metric %s instead of %s" % (h, tp["hpa_metric"], info["metric"]))

    releases = [p["release"] or p["name"] for p in old]
    for p in old:
        delete.append("helm release %s (profile %s): InferencePool %s/%s, its EPP and policies" % (
            p["release"] or p["name"], p["profile"] or "?", p["group"], p["name"]))
    old_pool_names = {p["name"] for p in old}
    target_pool_names = set(target_names.values())
    for o in detected["objectives"]:
        if o["kind"] != tp["objective"]["kind"] and o["pool"] in old_pool_names:
            replaced = tp["objective"]["kind"]
            delete.append("%s %s (pool %s; replaced by %s of the target)" % (o["kind"], o["name"], o["pool"], replaced))
        elif o["kind"] == tp["objective"]["kind"] and o["pool"] not in target_pool_names and \
                o["pool"] in old_pool_names:
            change.append("%s %s: poolRef %s -> the target pool" % (o["kind"], o["name"], o["pool"]))
    if old:
        irreversible.append("removing the old releases deletes their pools, EPPs and policies: before that step a "
                            "rollback is upgrade.yml -e infgw_target_profile=%s; after it, the same command installs "
                            "them anew side by side" % (source[0] if source else "<previous>"))

    # CRDs: the target's bundle is applied unless the cluster holds a newer bundle of the same CRD (a rollback
    # never downgrades a schema); CRDs the target does not ship are kept unless asked and empty.
    target_crds = [crd_file_to_name(f) for f in tp["crds"]]
    newer = sorted(n for n in target_crds if n in detected["crds"] and detected["crds"][n]["bundle_version"]
                   and version_key(detected["crds"][n]["bundle_version"]) > version_key(tp["gie_version"]))
    apply_crds = not newer
    missing_crds = [n for n in target_crds if n not in detected["crds"]]
    for n in missing_crds:
        create.append("CRD %s (GIE %s)" % (n, tp["gie_version"]))
    others = sorted(n for n in detected["crds"] if n not in target_crds)
    crd_delete, crd_refused = [], []
    leaving = {"%s/%s" % (detected["namespace"], p["name"]) for p in old if p["group"] == POOL_GROUPS[1]}
    leaving_models = {"%s/%s" % (detected["namespace"], o["name"]) for o in detected["objectives"]
                      if o["kind"] == "InferenceModel" and o["pool"] in old_pool_names}
    for n in others:
        remaining_objs = [o for o in detected["cluster_objects"].get(n, []) if o not in leaving | leaving_models]
        if not delete_crds:
            continue
        if n not in detected["cluster_objects"]:
            crd_refused.append("%s: this playbook does not count its objects; delete it by hand" % n)
        elif remaining_objs:
            crd_refused.append("%s: %d object(s) would be lost (%s)" % (n, len(remaining_objs),
                                                                        ", ".join(remaining_objs[:5])))
        else:
            crd_delete.append(n)
            irreversible.append("deleting CRD %s" % n)
    if crd_refused:
        errors.extend("refusing to delete CRD " + r for r in crd_refused)
    for n in crd_delete:
        delete.append("CRD %s (asked; no object left)" % n)

    if detected.get("probe_routes") and not old:
        delete.append("upgrade probe HTTPRoutes %s (left by an interrupted run)" % ", ".join(detected["probe_routes"]))
    noop = not (create or change or delete or remaining or final_routes or errors)
    report = ["Deployed: %s; target: %s (GIE %s, chart %s)" % (
        ", ".join(source) if source else (target if not create else "nothing of a known profile"),
        target, tp["gie_version"], tp["chart_version"])]
    for title, items in (("Create", create), ("Change", change), ("Delete", delete),
                         ("Cannot be undone", irreversible), ("Refused", errors)):
        report.append("%s:%s" % (title, "" if items else " nothing"))
        report.extend("  - " + i for i in items)
    report.append("CRDs: apply %s; kept %s%s" % (
        "the " + tp["gie_version"] + " bundle" if apply_crds else "nothing (newer bundle installed: %s)"
        % ", ".join(newer), ", ".join(others) or "none", "; delete " + ", ".join(crd_delete) if crd_delete else ""))
    if noop:
        report.append("Nothing to do: the namespace is at %s." % target)
    return {"source": source, "target": target, "create": create, "change": change, "delete": delete,
            "irreversible": irreversible, "errors": errors, "shift": remaining, "current_pct": low,
            "backend_refs": backend_refs, "final_routes": final_routes, "releases_to_remove": releases,
            "release_removals": [{"name": r, "state": "absent"} for r in releases],
            "apply_crds": apply_crds, "crds": {"apply": target_crds if apply_crds else [], "kept": others,
                                               "delete": crd_delete, "refused": crd_refused},
            "old_pools": [{"name": p["name"], "group": p["group"]} for p in old], "noop": noop, "report": report}


PROBE_HEADER = "X-Infgw-Upgrade-Probe"
PROBE_PREFIX = "infgw-upgrade-probe-"


def probe_routes(models, target, group, namespace, parent_refs, hostname, model_header, labels, selected_header):
    """One temporary HTTPRoute per model that sends requests carrying ``X-Infgw-Upgrade-Probe: <target>`` (and the
    model's header) to the model's target pool: the new pools answer through the gateway before any user request
    goes to them. They live in their own ApplySet and are deleted when the upgrade ends."""
    routes = []
    for m in models:
        name = PROBE_PREFIX + m["short_name"]
        rule = {"matches": [{"path": {"type": "PathPrefix", "value": "/"},
                             "headers": [{"type": "Exact", "name": model_header, "value": m["model"]},
                                         {"type": "Exact", "name": PROBE_HEADER, "value": target}]}],
                "backendRefs": [{"group": group, "kind": "InferencePool", "name": m["pool_name"]}]}
        if selected_header:
            rule["filters"] = [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                "add": [{"name": selected_header, "value": name}]}}]
        routes.append({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                       "metadata": {"name": name, "namespace": namespace,
                                    "labels": dict(labels, **{"app.kubernetes.io/component": "upgrade-probe"})},
                       "spec": {"parentRefs": parent_refs, "hostnames": [hostname], "rules": [rule]}})
    return routes


def probe_requests(pool_probes, target, selected_header):
    """The pool routes' probes (smoke_probes of kind pool) turned to the probe routes: the same request plus the probe
    header, expecting the probe route to have answered."""
    out = []
    for p in pool_probes:
        q = dict(p)
        q["name"] = "%s (upgrade probe, %s pool)" % (p["name"], target)
        q["headers"] = dict(p.get("headers") or {}, **{PROBE_HEADER: target})
        if selected_header:
            short = p["route"][len("infp-"):] if p["route"].startswith("infp-") else p["route"]
            q["response_headers"] = {selected_header: PROBE_PREFIX + short}
        out.append(q)
    return out
