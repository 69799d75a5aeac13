# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""The status report of ``playbooks/status.yml``: the walkthrough's troubleshooting section as one report.

``build(inputs)`` turns what the playbook read into the fact ``infgw_status``::

    {"namespace", "ready", "address", "blockers", "deployments", "hpas", "scrape_targets", "google_cloud",
     "dashboards", "backend_health", "sections": [{"name", "title", "lines"}],
     "report": [every section's lines, in order]}

The report is a list of sections (``SECTIONS``, in order). A section is a function ``(inputs, out)`` that returns
its lines (the first one is its heading; an empty list leaves it out) and may put structured data into ``out``.
A new section (say, the data plane's backends) is one function added to ``SECTIONS`` where it belongs, reading its
own key of ``inputs``, which the playbook fills.

``inputs`` (every key optional; missing reads give an empty section rather than an error):

* ``namespace``, ``namespace_exists``; ``gateway_name``; ``gateway`` (a ``gateway_ready`` result);
* ``deployments``, ``inference_pools``, ``hpas``, ``events`` (Kubernetes objects), ``inference_pools_served``,
  ``inference_pool_api_version``; ``models`` (``infgw_models_resolved``); ``events_max``;
* ``pod_monitorings``, ``cluster_pod_monitorings`` (Managed Prometheus objects, with GMP's target status);
* ``google_cloud``: ``enabled``, ``project``, ``location``, ``cluster``, ``info`` (a ``gcp_info`` result),
  ``nodes`` (the cluster's Node objects), ``security_policy`` / ``proxy_subnet`` (name and region, or none),
  ``iam_members`` (``{role, member, purpose}``), ``certificates`` (names), ``now`` (ISO time, for expiry).
  ``info.dashboards`` (``gcp_info``'s) make the Dashboards section, with each dashboard's console link;
* ``backend_health``: the load balancer's backend health report (the local simulator's ``/backends``), or none.
"""

from __future__ import annotations

import datetime
import json

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._smoke import backend_health_lines

ROLES_BY_NAME = {"body-based-router": "body-based routing", "gradio": "chat UI"}
DEFAULT_RULE_PRIORITY = 2147483647


def truncate(text, length):
    """Jinja's truncate: text longer than ``length`` (plus 5 of leeway) is cut at a word and ends with '...'."""
    text = text or ""
    if len(text) <= length + 5:
        return text
    cut = text[:length - 3]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "..."


def _json(value):
    return json.dumps(value)


def _get(obj, *path, **kw):
    default = kw.get("default")
    for key in path:
        if not isinstance(obj, dict) or obj.get(key) is None:
            return default
        obj = obj[key]
    return obj


# --------------------------------------------------------------------------------------
# Kubernetes sections


def namespace(inputs, out):
    if inputs.get("namespace_exists", True):
        return []
    return ["namespace %s: does not exist (nothing deployed; run site.yml)" % inputs.get("namespace")]


def _deployed(inputs):
    return inputs.get("namespace_exists", True)


def gateway(inputs, out):
    if not _deployed(inputs):
        return []
    gw = inputs.get("gateway") or {}
    out.update(ready=bool(gw.get("ready")), address=gw.get("address"), blockers=list(gw.get("blockers") or []))
    g = gw.get("gateway") or {}
    ns = inputs.get("namespace")
    if not g.get("found"):
        return ["Gateway %s/%s: not found (run site.yml --tags gateway)" % (ns, inputs.get("gateway_name"))]
    lines = ["Gateway %s/%s (%s): address %s%s" % (ns, g.get("name"), g.get("gateway_class"),
                                                   gw.get("address") or "none yet",
                                                   ", READY" if gw.get("ready") else ", not ready")]
    for kind, cond in (g.get("conditions") or {}).items():
        if kind in ("Accepted", "Programmed"):
            message = ": " + cond["message"] if cond.get("message") else ""
            lines.append("  %s=%s %s%s" % (kind, cond.get("status"), cond.get("reason"), message))
    for listener in g.get("listeners") or []:
        lines.append("  listener %s: %s route(s) attached" % (listener.get("name"), listener.get("attached_routes", 0)))
    return lines


def routes(inputs, out):
    if not _deployed(inputs):
        return []
    found = (inputs.get("gateway") or {}).get("routes") or []
    lines = ["HTTPRoutes attached to the gateway: %d" % len(found)]
    for route in found:
        lines.append("  %s [%s] %s" % (route.get("name"), ", ".join(route.get("hostnames") or []),
                                       "ok" if route.get("ready") else "NOT READY"))
        for parent in route.get("parents") or []:
            ref = parent.get("parentRef") or {}
            section = " (%s)" % ref["sectionName"] if ref.get("sectionName") is not None else ""
            conditions = " ".join("%s=%s" % (k, (v or {}).get("status")) for k, v in (parent.get("conditions") or {}).items())
            lines.append("    parent %s%s: %s" % (ref.get("name"), section, conditions))
    return lines


def inference_pools(inputs, out):
    if not _deployed(inputs):
        return []
    version = inputs.get("inference_pool_api_version")
    if not inputs.get("inference_pools_served"):
        return ["InferencePools: API %s not served (CRDs not installed; run site.yml --tags inference_pool)" % version]
    pools = inputs.get("inference_pools") or []
    used = dict((p.get("name"), p) for p in (inputs.get("gateway") or {}).get("inference_pools") or [])
    lines = ["InferencePools (%s): %d" % (version, len(pools))]
    for pool in pools:
        name = _get(pool, "metadata", "name")
        if name in used:
            state = "accepted by the gateway" if used[name].get("ready") else "NOT accepted by the gateway"
        else:
            state = "not used by any route of the gateway"
        lines.append("  %s: %s" % (name, state))
    return lines


def policies(inputs, out):
    if not _deployed(inputs):
        return []
    found = (inputs.get("gateway") or {}).get("policies") or []
    unattached = [p for p in found if not p.get("ready")]
    lines = ["GKE policies: %d, %d not attached" % (len(found), len(unattached))]
    lines.extend("  %s %s: not attached" % (p.get("kind"), p.get("name")) for p in unattached)
    return lines


def _role_of(name):
    if name in ROLES_BY_NAME:
        return ROLES_BY_NAME[name]
    if name.endswith("-epp"):
        return "endpoint picker"
    return "model server" if name.startswith("vllm-") else "workload"


def deployments(inputs, out):
    if not _deployed(inputs):
        return []
    found = sorted(inputs.get("deployments") or [], key=lambda d: _get(d, "metadata", "name", default=""))
    lines = ["Deployments:"]
    for d in found:
        name = _get(d, "metadata", "name")
        want = _get(d, "spec", "replicas", default=1)
        have = _get(d, "status", "availableReplicas", default=0)
        out["deployments"][name] = {"replicas": want, "available": have}
        lines.append("  %s (%s): %s/%s available%s" % (name, _role_of(name), have, want,
                                                       "" if have >= want else "  <-- not ready"))
    names = set(out["deployments"])
    if inputs.get("inference_pools_served") and inputs.get("inference_pools"):
        for model in inputs.get("models") or []:
            if model.get("epp_name") not in names:
                lines.append("  %s (endpoint picker): missing" % model.get("epp_name"))
    return lines


def hpas(inputs, out):
    if not _deployed(inputs):
        return []
    found = inputs.get("hpas") or []
    lines = ["HPAs: %d" % len(found)]
    for hpa in found:
        name = _get(hpa, "metadata", "name")
        status = hpa.get("status") or {}
        current = [m["external"].get("current") for m in status.get("currentMetrics") or [] if "external" in m]
        target = [(m.get("external") or {}).get("target") for m in _get(hpa, "spec", "metrics", default=[])]
        active = next((c for c in status.get("conditions") or [] if c.get("type") == "ScalingActive"), {})
        replicas = status.get("currentReplicas") or 0
        out["hpas"][name] = {"current": current, "replicas": replicas}
        line = "  %s: replicas %s (min %s, max %s), metric %s / target %s" % (
            name, replicas, _get(hpa, "spec", "minReplicas", default=1), _get(hpa, "spec", "maxReplicas"),
            ", ".join(_json(c) for c in current) or "<unknown>", ", ".join(_json(t) for t in target))
        if active and active.get("status") != "True":
            message = truncate(active.get("message") or "", 160)
            line += ", ScalingActive=%s %s: %s" % (active.get("status"), active.get("reason"), message)
        lines.append(line)
    return lines


def scrape_targets(inputs, out):
    """Managed Prometheus target status of the namespace's PodMonitorings and of the ClusterPodMonitorings named
    after it (the charts' ``<namespace>-...``), as GMP writes it when OperatorConfig's targetStatus is on."""
    if not _deployed(inputs):
        return []
    ns = inputs.get("namespace")
    monitorings = list(inputs.get("pod_monitorings") or []) + [
        m for m in inputs.get("cluster_pod_monitorings") or []
        if (_get(m, "metadata", "name", default="")).startswith("%s-" % ns)]
    if not monitorings:
        return []
    data = out["scrape_targets"] = {}
    lines = ["Metrics scrape targets (Managed Prometheus): %d scrape configuration(s)" % len(monitorings)]
    for m in sorted(monitorings, key=lambda m: (m.get("kind") or "", _get(m, "metadata", "name", default=""))):
        label = "%s %s" % (m.get("kind"), _get(m, "metadata", "name"))
        endpoints = _get(m, "status", "endpointStatuses")
        if endpoints is None:
            lines.append("  %s: no target status (off in OperatorConfig gmp-public/config, or not collected yet)"
                         % label)
            continue
        if not endpoints:
            data[label] = []
            lines.append("  %s: no target (no selected pod exposes the endpoint port)  <-- not scraped" % label)
            continue
        for e in endpoints:
            active = int(e.get("activeTargets") or 0)
            unhealthy = int(e.get("unhealthyTargets") or 0)
            errors = []
            for group in e.get("sampleGroups") or []:
                for target in group.get("sampleTargets") or []:
                    if target.get("lastError") and target["lastError"] not in errors:
                        errors.append(target["lastError"])
            data[e.get("name")] = {"active": active, "unhealthy": unhealthy, "errors": errors}
            line = "  %s: %d/%d target(s) up" % (e.get("name"), active - unhealthy, active)
            if unhealthy:
                line += "  <-- " + truncate(errors[0] if errors else "unhealthy", 200)
            lines.append(line)
    return lines


def blockers(inputs, out):
    if not _deployed(inputs) or not out["blockers"]:
        return []
    return ["Still blocking:"] + ["  %s" % b for b in out["blockers"]]


def events(inputs, out):
    if not _deployed(inputs):
        return []
    found = sorted(inputs.get("events") or [], key=lambda e: _get(e, "metadata", "creationTimestamp", default=""))
    limit = int(inputs.get("events_max", 15))
    recent = found[-limit:] if limit > 0 else []
    of = " (of %d)" % len(found) if len(found) > len(recent) else ""
    lines = ["Recent warning events: %d%s" % (len(recent), of)]
    for e in recent:
        obj = e.get("involvedObject") or {}
        lines.append("  %s/%s %s (x%s): %s" % (obj.get("kind"), obj.get("name"), e.get("reason"), e.get("count") or 1,
                                               truncate((e.get("message") or "").strip(), 240)))
    return lines


# --------------------------------------------------------------------------------------
# the Google Cloud section


def _pool_line(pool, nodes):
    config = pool.get("config") or {}
    parts = [pool.get("status") or "UNKNOWN", config.get("machineType") or "e2-medium"]
    accelerators = config.get("accelerators") or []
    driver = None
    if accelerators:
        acc = accelerators[0]
        driver = _get(acc, "gpuDriverInstallationConfig", "gpuDriverVersion")
        parts.append("%s x %s (driver %s)" % (acc.get("acceleratorCount") or 1, acc.get("acceleratorType"),
                                              driver or "GKE's default"))
    ready = [n for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                     for c in _get(n, "status", "conditions", default=[]))]
    parts.append("%d node(s), %d Ready" % (len(nodes), len(ready)))
    auto = pool.get("autoscaling") or {}
    if auto.get("enabled"):
        if "totalMaxNodeCount" in auto:
            limits = "%s..%s in total" % (auto.get("totalMinNodeCount", 0), auto.get("totalMaxNodeCount"))
        else:
            limits = "%s..%s per zone" % (auto.get("minNodeCount", 0), auto.get("maxNodeCount", 0))
        parts.append("autoscaling %s%s" % (limits, " (%s)" % auto["locationPolicy"] if auto.get("locationPolicy")
                                           else ""))
    else:
        parts.append("fixed size (no autoscaling)")
    zones = pool.get("locations") or []
    if zones:
        parts.append("zones %s" % ", ".join(zones))
    data = {"status": pool.get("status"), "machine_type": config.get("machineType"),
            "accelerator": accelerators[0].get("acceleratorType") if accelerators else None,
            "gpu_driver_version": driver, "nodes": len(nodes), "ready_nodes": len(ready),
            "autoscaling": auto, "locations": zones}
    return ", ".join(parts), data


def _rule_line(rule):
    match = rule.get("match") or {}
    what = _get(match, "expr", "expression") or ", ".join(_get(match, "config", "srcIpRanges", default=[]))
    return "    %s %s %s%s%s" % (rule.get("priority"), rule.get("action"), what,
                                 " (default rule)" if rule.get("priority") == DEFAULT_RULE_PRIORITY else "",
                                 " [preview]" if rule.get("preview") else "")


def _expiry(expire, now):
    try:
        left = (datetime.datetime.fromisoformat(expire.replace("Z", "+00:00"))
                - datetime.datetime.fromisoformat(now.replace("Z", "+00:00"))).days
    except (AttributeError, ValueError):
        return expire, None
    return "%s (%s)" % (expire, "EXPIRED" if left < 0 else "in %d days" % left), left


def _unread_or_missing(item, what, noun, where, tag, lines, problems):
    """True (with its line, and its problem named ``<noun> <name> unread|missing``) when a Google Cloud item could
    not be read or does not exist."""
    if item.get("error"):
        lines.append("  %s %s: cannot read: %s" % (what, where, item["error"]))
        problems.append("%s %s unread" % (noun, item["name"]))
        return True
    if not item.get("found"):
        lines.append("  %s %s: MISSING (run site.yml --tags %s)" % (what, where, tag))
        problems.append("%s %s missing" % (noun, item["name"]))
        return True
    return False


def google_cloud(inputs, out):
    gcp = inputs.get("google_cloud") or {}
    if not gcp.get("enabled"):
        return []
    info = gcp.get("info") or {}
    data = out["google_cloud"] = {"node_pools": {}, "problems": []}
    problems = data["problems"]
    lines = ["Google Cloud (project %s, cluster %s/%s):" % (gcp.get("project"), gcp.get("location"),
                                                            gcp.get("cluster"))]
    if info.get("node_pools_error"):
        lines.append("  node pools: cannot read: %s" % info["node_pools_error"])
        problems.append("node pools unread")
    by_pool = {}
    for node in gcp.get("nodes") or []:
        by_pool.setdefault(_get(node, "metadata", "labels", "cloud.google.com/gke-nodepool"), []).append(node)
    for pool in sorted(info.get("node_pools") or [], key=lambda p: p.get("name")):
        line, pool_data = _pool_line(pool, by_pool.get(pool.get("name"), []))
        data["node_pools"][pool.get("name")] = pool_data
        lines.append("  node pool %s: %s" % (pool.get("name"), line))
        if pool.get("status") not in ("RUNNING", None):
            problems.append("node pool %s is %s" % (pool.get("name"), pool.get("status")))
    for wanted in gcp.get("node_pools") or []:
        if info.get("node_pools") is not None and wanted not in data["node_pools"]:
            lines.append("  node pool %s: MISSING (run site.yml --tags gpu_nodepool)" % wanted)
            problems.append("node pool %s missing" % wanted)

    for item in info.get("security_policies") or []:
        where = "%s (%s)" % (item["name"], item.get("region") or "global")
        policy = item.get("resource") or {}
        if _unread_or_missing(item, "Cloud Armor policy", "security policy", where, "cloud_armor", lines, problems):
            continue
        rules = sorted(policy.get("rules") or [], key=lambda r: r.get("priority", 0))
        data["security_policy"] = {"name": item["name"], "region": item.get("region"),
                                   "rules": [{"priority": r.get("priority"), "action": r.get("action")}
                                             for r in rules]}
        kind = policy.get("type") or "CLOUD_ARMOR"
        lines.append("  Cloud Armor policy %s: %s, %d rule(s)" % (where, kind, len(rules)))
        lines.extend(_rule_line(r) for r in rules)

    for item in info.get("iam_members") or []:
        purpose = next((m.get("purpose") for m in gcp.get("iam_members") or [] if m.get("member") == item["member"]
                        and m.get("role") == item["role"]), None)
        who = "%s%s" % (purpose + " " if purpose else "", item["member"])
        data.setdefault("iam", []).append({"role": item["role"], "member": item["member"],
                                           "present": item.get("present")})
        if item.get("error"):
            lines.append("  IAM %s for %s: cannot read: %s" % (item["role"], who, item["error"]))
            problems.append("IAM policy unread")
        elif item.get("present"):
            lines.append("  IAM %s granted to %s" % (item["role"], who))
        else:
            lines.append("  IAM %s NOT granted to %s (run site.yml --tags hpa_metrics)" % (item["role"], who))
            problems.append("%s not granted %s" % (item["member"], item["role"]))

    for item in info.get("subnetworks") or []:
        where = "%s (%s)" % (item["name"], item.get("region"))
        subnet = item.get("resource") or {}
        if not _unread_or_missing(item, "proxy-only subnet", "subnet", where, "proxy_subnet", lines, problems):
            data["proxy_subnet"] = {"name": item["name"], "range": subnet.get("ipCidrRange"),
                                    "purpose": subnet.get("purpose"), "role": subnet.get("role"),
                                    "state": subnet.get("state")}
            lines.append("  proxy-only subnet %s: %s, %s %s%s" % (
                where, subnet.get("ipCidrRange"), subnet.get("purpose"), subnet.get("role") or "",
                ", " + subnet["state"] if subnet.get("state") else ""))

    for item in info.get("certificates") or []:
        where = "%s (%s)" % (item["name"], item.get("location"))
        cert = item.get("resource") or {}
        if not _unread_or_missing(item, "certificate", "certificate", where, "certificates", lines, problems):
            expiry, days = _expiry(cert.get("expireTime"), gcp.get("now") or "")
            data.setdefault("certificates", {})[item["name"]] = {
                "san_dns_names": cert.get("sanDnsnames") or [], "expire_time": cert.get("expireTime"),
                "days_left": days}
            lines.append("  certificate %s: %s, expires %s" % (where, ", ".join(cert.get("sanDnsnames") or [])
                                                               or "no DNS names", expiry))
            if days is not None and days < 0:
                problems.append("certificate %s expired" % item["name"])
    return lines


def dashboard(inputs, out):
    """The stack's Cloud Monitoring dashboard (the ``monitoring`` role's) and its console link."""
    gcp = inputs.get("google_cloud") or {}
    if not gcp.get("enabled"):
        return []
    items = (gcp.get("info") or {}).get("dashboards") or []
    if not items:
        return []
    lines = ["Dashboards (Cloud Monitoring)"]
    for item in items:
        if item.get("error"):
            lines.append("  %s: cannot read: %s" % (item["name"], item["error"]))
        elif not item.get("found"):
            lines.append("  %s: MISSING (run site.yml --tags monitoring)" % item["name"])
        else:
            board = item.get("resource") or {}
            tiles = len(((board.get("mosaicLayout") or {}).get("tiles")) or [])
            out.setdefault("dashboards", {})[item["name"]] = {"url": item.get("url"), "title": board.get("displayName")}
            lines.append("  %s: %d chart(s), %s" % (board.get("displayName") or item["name"], tiles, item.get("url")))
    return lines


def backend_health(inputs, out):
    """The load balancer's health checks (GKE reports a failing backend nowhere in Kubernetes status)."""
    if not _deployed(inputs) or inputs.get("backend_health") is None:
        return []
    lines = backend_health_lines(inputs["backend_health"], inputs.get("namespace"))
    out["backend_health"] = lines
    return ["Backend health (the load balancer's health checks)"] + ["  " + line for line in lines or ["no backend"]]


# --------------------------------------------------------------------------------------
# the report

# (name, title, function), in the order of the report. Add a section here.
SECTIONS = [
    ("namespace", "Namespace", namespace),
    ("gateway", "Gateway", gateway),
    ("routes", "HTTPRoutes", routes),
    ("inference_pools", "InferencePools", inference_pools),
    ("policies", "GKE policies", policies),
    ("deployments", "Deployments", deployments),
    ("hpas", "HPAs", hpas),
    ("scrape_targets", "Metrics scrape targets", scrape_targets),
    ("google_cloud", "Google Cloud", google_cloud),
    ("dashboard", "Dashboards", dashboard),
    ("blockers", "Still blocking", blockers),
    ("events", "Recent warning events", events),
    ("backend_health", "Backend health", backend_health),
]


def build(inputs, sections=None):
    """The fact ``infgw_status`` from what the playbook read."""
    out = {"namespace": inputs.get("namespace"), "ready": False, "address": None, "blockers": [], "deployments": {},
           "hpas": {}, "scrape_targets": {}, "google_cloud": None, "dashboards": {}, "backend_health": [],
           "sections": [], "report": []}
    for name, title, function in sections or SECTIONS:
        lines = function(inputs, out)
        if lines:
            out["sections"].append({"name": name, "title": title, "lines": lines})
            out["report"].extend(lines)
    return out
