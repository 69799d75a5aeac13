# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_gateway_status.py, on status documents shaped like
# those the GKE Gateway controller writes (see the GKE gateway status notes, sections 0, 2 and 3).
from __future__ import annotations

import copy

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _gateway_status as gs

NS = "gemma"
GW = "vllm-xlb"
REF = gs.make_gateway_ref(NS, GW)
GKE = "networking.gke.io/gateway"
READY_MSG = ('The OSS Gateway API has altered the "Ready" condition semantics and reserved it for future use.  '
             'GKE Gateway will stop emitting it in a future update, use "Programmed" instead.')


def cond(ctype, status="True", reason=None, message="", gen=1, ltt="2025-12-04T03:00:56Z"):
    c = {"type": ctype, "status": status, "reason": reason or ctype, "message": message,
         "lastTransitionTime": ltt}
    if gen is not None:
        c["observedGeneration"] = gen
    return c


def healthy_gateway(generation=1):
    """A Gateway as GKE writes it once programmed (notes section 2.2, verbatim condition set)."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": GW, "namespace": NS, "generation": generation,
                     "finalizers": ["gateway.finalizer.networking.gke.io"],
                     "annotations": {"networking.gke.io/last-reconcile-time": "2025-12-04T03:00:56Z"}},
        "spec": {"gatewayClassName": "gke-l7-regional-external-managed",
                 "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
        "status": {
            "addresses": [{"type": "IPAddress", "value": "34.8.79.182"}],
            "conditions": [
                cond("Scheduled", message="The OSS Gateway API has deprecated this condition, do not depend on it.",
                     gen=generation, ltt="2025-12-04T02:59:21Z"),
                cond("Accepted", gen=generation, ltt="2025-12-04T02:59:21Z"),
                cond("Programmed", gen=generation),
                cond("Ready", message=READY_MSG, gen=generation),
                cond("networking.gke.io/GatewayHealthy", reason="Healthy", gen=generation),
            ],
            "listeners": [{
                "name": "http", "attachedRoutes": 3,
                "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
                "conditions": [cond("ResolvedRefs", gen=generation), cond("Accepted", gen=generation),
                               cond("Programmed", gen=generation), cond("Ready", message=READY_MSG, gen=generation)],
            }],
        },
    }


def fresh_gateway():
    """Brand-new Gateway: CRD defaults only (notes section 1.1)."""
    gw = healthy_gateway()
    gw["status"] = {"conditions": [
        {"type": "Accepted", "status": "Unknown", "reason": "Pending", "message": "Waiting for controller",
         "lastTransitionTime": "1970-01-01T00:00:00Z"},
        {"type": "Programmed", "status": "Unknown", "reason": "Pending", "message": "Waiting for controller",
         "lastTransitionTime": "1970-01-01T00:00:00Z"},
    ]}
    return gw


def failing_gateway():
    """GWCER106 on a gke-l7-rilb Gateway (notes section 2.6): Accepted stays True, Programmed False/Invalid."""
    msg = ('Error GWCER106: Gateway "gemma/vllm-xlb" is invalid, err: unsupported address type "IPAddress", '
           'only "NamedAddress" is supported..')
    gw = healthy_gateway()
    gw["status"] = {
        "conditions": [
            cond("Scheduled", message="The OSS Gateway API has deprecated this condition, do not depend on it."),
            cond("Accepted"),
            cond("Programmed", status="False", reason="Invalid", message=msg),
            cond("Ready", status="False", reason="NotReady", message=READY_MSG),
            cond("networking.gke.io/GatewayHealthy", status="False", reason="Error",
                 message="Gateway: Invalid : " + msg),
        ],
        "listeners": [{"name": "https", "attachedRoutes": 1, "conditions": [
            cond("Detached", reason="UnsupportedAddress",
                 message="The Detached condition has been deprecated by the OSS API, use Accepted instead."),
            cond("Accepted", status="False", reason="UnsupportedAddress", message=msg),
        ]}],
    }
    return gw


def route(name, parents_status=None, backend="vllm-gemma-3-1b", parent_refs=None, generation=1, ns=NS,
          backend_kind=None, backend_group=None):
    br = {"name": backend, "port": 8000}
    if backend_kind:
        br = {"name": backend, "kind": backend_kind, "group": backend_group}
    r = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns, "generation": generation},
        "spec": {
            "parentRefs": parent_refs if parent_refs is not None else [{"name": GW}],
            "hostnames": ["bbr.example.com"],
            "rules": [{"backendRefs": [br]}],
        },
    }
    if parents_status is not None:
        r["status"] = {"parents": parents_status}
    return r


def route_parent(conditions, gw=GW, ns=None, section=None):
    ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw}
    if ns:
        ref["namespace"] = ns
    if section:
        ref["sectionName"] = section
    return {"parentRef": ref, "controllerName": GKE, "conditions": conditions}


def ok_route_conditions(gen=1):
    return [cond("Accepted", gen=gen), cond("ResolvedRefs", gen=gen),
            cond("Reconciled", reason="ReconciliationSucceeded", gen=gen)]


def pool_v1(name="vllm-gemma-3-1b", parents=None, generation=1):
    p = {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
         "metadata": {"name": name, "namespace": NS, "generation": generation},
         "spec": {"selector": {"matchLabels": {"app": name}}, "targetPorts": [{"number": 8000}],
                  "endpointPickerRef": {"name": name + "-epp", "port": {"number": 9002}}}}
    if parents is not None:
        p["status"] = {"parents": parents}
    return p


def pool_parent(conditions, gw=GW, ns=NS):
    return {"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": ns, "name": gw},
            "controllerName": GKE, "conditions": conditions}


def policy(kind, name, target, conditions=None, ancestors=None, generation=1):
    spec_key = "targetRefs" if kind in ("GCPRoutingExtension", "GCPTrafficExtension") else "targetRef"
    p = {"apiVersion": "networking.gke.io/v1", "kind": kind,
         "metadata": {"name": name, "namespace": NS, "generation": generation},
         "spec": {spec_key: [target] if spec_key == "targetRefs" else target}}
    status = {}
    if conditions is not None:
        status["conditions"] = conditions
    if ancestors is not None:
        status["ancestors"] = ancestors
    if status:
        p["status"] = status
    return p


POOL_TARGET = {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "vllm-gemma-3-1b"}


# --------------------------------------------------------------------------- format


def test_blocker_format_matches_issue_example():
    text = gs.format_blocker("HTTPRoute", "gemma", "bbr-gemma3-1b", scope="parent vllm-xlb",
                             condition="ResolvedRefs", status="False", reason="BackendNotFound",
                             message='service "vllm-gemma-3-9b" not found')
    assert text == ('HTTPRoute gemma/bbr-gemma3-1b parent vllm-xlb: ResolvedRefs=False BackendNotFound: '
                    'service "vllm-gemma-3-9b" not found')


def test_blocker_format_variants():
    assert gs.format_blocker("Gateway", "gemma", "vllm-xlb", condition="Programmed", status="False",
                             reason="Invalid") == "Gateway gemma/vllm-xlb: Programmed=False Invalid"
    assert gs.format_blocker("Gateway", "gemma", "vllm-xlb", detail="not found") == "Gateway gemma/vllm-xlb: not found"
    assert gs.format_blocker("Gateway", "gemma", "x", condition="Programmed") == \
        "Gateway gemma/x: Programmed condition not reported yet"
    # multi-line controller messages are folded onto one line
    assert gs.format_blocker("Probe", None, "p", condition="C", status="False", reason="R", message="a\n  b") == \
        "Probe p: C=False R: a b"


# --------------------------------------------------------------------------- Gateway


def test_gateway_accepted_and_programmed():
    gw = healthy_gateway()
    assert gs.gateway_accepted_gate(gw).ready
    assert gs.gateway_programmed_gate(gw).ready
    res = gs.gateway_gate(gw)
    assert res.ready and res.blockers == [] and res.state == gs.STATE_PASSED
    assert gs.gateway_addresses(gw) == ["34.8.79.182"]
    details = gs.gateway_details(gw)
    assert details["conditions"]["Programmed"]["lastTransitionTime"] == "2025-12-04T03:00:56Z"
    assert details["listeners"][0]["attached_routes"] == 3


def test_gateway_crd_default_is_waiting_not_failure():
    res = gs.gateway_gate(fresh_gateway())
    assert not res.ready
    texts = [str(b) for b in res.blockers]
    assert "Gateway gemma/vllm-xlb: Accepted=Unknown Pending: Waiting for controller" in texts
    assert "Gateway gemma/vllm-xlb: Programmed=Unknown Pending: Waiting for controller" in texts
    assert "Gateway gemma/vllm-xlb: no address in status.addresses yet" in texts


def test_gateway_stale_observed_generation():
    gw = healthy_gateway(generation=1)
    gw["metadata"]["generation"] = 2  # spec edited, controller not caught up (notes section 5 row 12)
    acc = gs.gateway_accepted_gate(gw)
    prog = gs.gateway_programmed_gate(gw)
    assert not acc.ready and not prog.ready
    assert str(acc.blockers[0]) == ("Gateway gemma/vllm-xlb: Accepted=True Accepted "
                                    "(stale: observedGeneration 1 < metadata.generation 2)")
    assert str(prog.blockers[0]).startswith("Gateway gemma/vllm-xlb: Programmed=True Programmed (stale")


def test_gateway_missing_observed_generation_is_not_ready():
    gw = healthy_gateway()
    for c in gw["status"]["conditions"]:
        c.pop("observedGeneration")
    res = gs.gateway_accepted_gate(gw)
    assert not res.ready
    assert "observedGeneration not set" in str(res.blockers[0])


def test_gateway_programmed_but_no_address():
    gw = healthy_gateway()
    gw["status"]["addresses"] = []
    assert gs.gateway_accepted_gate(gw).ready
    res = gs.gateway_programmed_gate(gw)
    assert not res.ready
    assert [str(b) for b in res.blockers] == ["Gateway gemma/vllm-xlb: no address in status.addresses yet"]


def test_gateway_programmed_false_invalid_lists_listener():
    res = gs.gateway_programmed_gate(failing_gateway())
    texts = [str(b) for b in res.blockers]
    assert texts[0].startswith("Gateway gemma/vllm-xlb: Programmed=False Invalid: Error GWCER106: Gateway ")
    assert any(t.startswith("Gateway gemma/vllm-xlb listener https: Accepted=False UnsupportedAddress: Error GWCER106")
               for t in texts)
    # a listener condition repeating the Gateway's Programmed message is not listed again
    gw = failing_gateway()
    msg = gw["status"]["conditions"][2]["message"]
    gw["status"]["listeners"][0]["conditions"] = [cond("Programmed", "False", "Invalid", msg)]
    assert [str(b) for b in gs.gateway_programmed_gate(gw).blockers] == [
        "Gateway gemma/vllm-xlb: Programmed=False Invalid: " + msg,
        "Gateway gemma/vllm-xlb: no address in status.addresses yet"]
    # Accepted stays True on GKE failures, and that gate is fine.
    assert gs.gateway_accepted_gate(failing_gateway()).ready


def test_gateway_not_found():
    res = gs.gateway_gate(None, REF)
    assert not res.ready
    assert str(res.blockers[0]) == "Gateway gemma/vllm-xlb: not found"


def test_deprecated_conditions_do_not_matter():
    gw = healthy_gateway()
    for c in gw["status"]["conditions"]:
        if c["type"] in ("Ready", "Scheduled"):
            c["status"] = "False"
    assert gs.gateway_gate(gw).ready


# --------------------------------------------------------------------------- HTTPRoute


def test_route_accepted_resolved():
    r = route("bbr-gemma3-1b", [route_parent(ok_route_conditions())])
    res = gs.route_parent_gate(r, REF)
    assert res.ready, res.blockers


def test_route_backend_not_found_message():
    r = route("bbr-gemma3-1b", [route_parent([
        cond("Accepted"),
        cond("ResolvedRefs", status="False", reason="BackendNotFound", message='service "vllm-gemma-3-9b" not found'),
    ])], backend="vllm-gemma-3-9b")
    res = gs.route_parent_gate(r, REF)
    assert not res.ready
    assert [str(b) for b in res.blockers] == [
        'HTTPRoute gemma/bbr-gemma3-1b parent vllm-xlb: ResolvedRefs=False BackendNotFound: '
        'service "vllm-gemma-3-9b" not found']


def test_route_gke_verbatim_backend_not_found():
    msg = ('Object reference of HTTPRoute "crewai-dev/crewai-gateway-route" bound to ParentRef {Group: '
           '"gateway.networking.k8s.io", Kind: "Gateway", Namespace: nil, Name: "crewai-gateway-gateway", '
           'SectionName: "https", Port: nil} failed to be resolved: error cause: reference-not-found: Error '
           'GWCER104: HTTPRoute "crewai-dev/crewai-gateway-route" is misconfigured, err: Error GWCER102: services '
           'crewai-dev/crewai-platform-web not found')
    r = route("bbr-gemma3-1b", [route_parent([cond("Accepted"), cond("ResolvedRefs", "False", "BackendNotFound", msg)])])
    (b,) = gs.route_parent_gate(r, REF).blockers
    assert str(b).endswith("ResolvedRefs=False BackendNotFound: " + msg)


def test_route_parent_for_another_gateway_is_not_ours():
    # The route names our Gateway in spec, but the only status entry is for another Gateway.
    r = route("bbr-gemma3-1b", [route_parent(ok_route_conditions(), gw="other-gw")],
              parent_refs=[{"name": GW}, {"name": "other-gw"}])
    res = gs.route_parent_gate(r, REF)
    assert not res.ready
    assert [str(b) for b in res.blockers] == [
        "HTTPRoute gemma/bbr-gemma3-1b parent vllm-xlb: no status.parents entry for this parent yet"]
    # A route that only names another Gateway is not attached to ours at all.
    other = route("x", [route_parent(ok_route_conditions(), gw="other-gw")], parent_refs=[{"name": "other-gw"}])
    assert not gs.route_references_gateway(other, REF)
    assert "does not reference Gateway gemma/vllm-xlb" in str(gs.route_parent_gate(other, REF).blockers[0])


def test_route_parent_in_other_namespace_and_section():
    gw_ref = gs.make_gateway_ref("infra", "shared-gw")
    r = route("r", [route_parent(ok_route_conditions(), gw="shared-gw", ns="infra", section="https")],
              parent_refs=[{"name": "shared-gw", "namespace": "infra", "sectionName": "https"}])
    assert gs.route_parent_gate(r, gw_ref).ready
    # same Gateway name in the route's own namespace is a different Gateway
    assert not gs.route_references_gateway(r, gs.make_gateway_ref(NS, "shared-gw"))
    r2 = route("r", [route_parent([cond("Accepted", "False", "NotAllowedByListeners", "no listener allows it"),
                                   cond("ResolvedRefs")],
                                  gw="shared-gw", ns="infra", section="https")],
               parent_refs=[{"name": "shared-gw", "namespace": "infra", "sectionName": "https"}])
    (b,) = gs.route_parent_gate(r2, gw_ref).blockers
    assert str(b) == ("HTTPRoute gemma/r parent infra/shared-gw section https: Accepted=False NotAllowedByListeners: "
                      "no listener allows it")


def test_route_stale_and_reconcile_failed():
    r = route("r", [route_parent(ok_route_conditions(gen=1))], generation=2)
    texts = [str(b) for b in gs.route_parent_gate(r, REF).blockers]
    assert texts == [
        "HTTPRoute gemma/r parent vllm-xlb: Accepted=True Accepted (stale: observedGeneration 1 < metadata.generation 2)",
        "HTTPRoute gemma/r parent vllm-xlb: ResolvedRefs=True ResolvedRefs (stale: observedGeneration 1 < metadata.generation 2)",
    ]
    bad = route("r", [route_parent([cond("Accepted"), cond("ResolvedRefs"),
                                    cond("Reconciled", "False", "ReconciliationFailed",
                                         "missing Service gemma/vllm-gemma-3-1b-epp")])])
    (b,) = gs.route_parent_gate(bad, REF).blockers
    assert str(b) == ("HTTPRoute gemma/r parent vllm-xlb: Reconciled=False ReconciliationFailed: "
                      "missing Service gemma/vllm-gemma-3-1b-epp")
    # Reconciled=False repeating a ResolvedRefs failure is not listed twice
    msg = 'service "x" not found'
    both = route("r", [route_parent([cond("Accepted"), cond("ResolvedRefs", "False", "BackendNotFound", msg),
                                     cond("Reconciled", "False", "ReconciliationFailed", msg)])])
    assert [str(b) for b in gs.route_parent_gate(both, REF).blockers] == [
        "HTTPRoute gemma/r parent vllm-xlb: ResolvedRefs=False BackendNotFound: " + msg]


def test_route_without_status_waits():
    r = route("r")
    (b,) = gs.route_parent_gate(r, REF).blockers
    assert str(b) == "HTTPRoute gemma/r parent vllm-xlb: no status.parents entry for this parent yet"


# --------------------------------------------------------------------------- InferencePool


def test_pool_v1_accepted():
    p = pool_v1(parents=[pool_parent([cond("Accepted"), cond("ResolvedRefs")])])
    assert gs.pool_gate(p, REF).ready


def test_pool_v1_no_status_and_invalid_epp():
    (b,) = gs.pool_gate(pool_v1(), REF).blockers
    assert str(b) == "InferencePool gemma/vllm-gemma-3-1b parent vllm-xlb: no status parent entry for this Gateway yet"
    invalid = cond("ResolvedRefs", "False", "InvalidExtensionRef", "Service gemma/vllm-gemma-3-1b-epp not found")
    p = pool_v1(parents=[pool_parent([cond("Accepted"), invalid])])
    (b,) = gs.pool_gate(p, REF).blockers
    assert str(b) == ("InferencePool gemma/vllm-gemma-3-1b parent vllm-xlb: ResolvedRefs=False InvalidExtensionRef: "
                      "Service gemma/vllm-gemma-3-1b-epp not found")


def test_pool_v1alpha2_singular_parent_and_placeholders():
    placeholder = {"parentRef": {"kind": "Status", "name": "default"},
                   "conditions": [{"type": "Accepted", "status": "Unknown", "reason": "Pending",
                                   "message": "Waiting for controller", "lastTransitionTime": "1970-01-01T00:00:00Z"}]}
    empty = {"parentRef": {}, "conditions": []}
    p = {"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferencePool",
         "metadata": {"name": "vllm-gemma-3-1b", "namespace": NS, "generation": 1},
         "status": {"parent": [placeholder]}}
    (b,) = gs.pool_gate(p, REF).blockers
    assert "no status parent entry" in str(b)
    # v0.4 ObjectReference parent (apiVersion instead of group), next to an empty placeholder
    p["status"]["parent"] = [empty, {"parentRef": {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                                                   "namespace": NS, "name": GW},
                                     "conditions": [cond("Accepted")]}]
    assert gs.pool_gate(p, REF).ready


def test_pool_parent_for_other_gateway():
    p = pool_v1(parents=[pool_parent([cond("Accepted")], gw="other")])
    assert not gs.pool_gate(p, REF).ready


# --------------------------------------------------------------------------- policies


def test_policy_attached():
    p = policy("HealthCheckPolicy", "vllm-gemma-3-1b", POOL_TARGET, conditions=[cond("Attached", gen=None)])
    assert gs.policy_gate(p, REF).ready


def test_policy_target_not_found():
    p = policy("HealthCheckPolicy", "hc-missing", dict(POOL_TARGET, name="no-such-pool"),
               conditions=[cond("Attached", "False", "TargetNotFound",
                                'InferencePool "gemma/no-such-pool" not found')])
    (b,) = gs.policy_gate(p, REF).blockers
    assert str(b) == ('HealthCheckPolicy gemma/hc-missing: Attached=False TargetNotFound: '
                      'InferencePool "gemma/no-such-pool" not found')


def test_policy_without_status_waits():
    p = policy("GCPBackendPolicy", "vllm-gemma-3-1b", POOL_TARGET)
    (b,) = gs.policy_gate(p, REF).blockers
    assert str(b) == "GCPBackendPolicy gemma/vllm-gemma-3-1b: Attached no status from the controller yet"


def test_routing_extension_ancestors():
    target = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GW}
    anc = {"ancestorRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GW, "namespace": NS},
           "controllerName": GKE, "conditions": [cond("Accepted"), cond("ResolvedRefs")]}
    p = policy("GCPRoutingExtension", "body-based-router", target, ancestors=[anc])
    assert gs.policy_gate(p, REF).ready
    bad = copy.deepcopy(anc)
    bad["conditions"] = [cond("Accepted", "False", "NotAllowed", "not supported on gke-l7-global-external-managed")]
    p = policy("GCPRoutingExtension", "body-based-router", target, ancestors=[bad])
    (b,) = gs.policy_gate(p, REF).blockers
    assert str(b) == ("GCPRoutingExtension gemma/body-based-router ancestor vllm-xlb: Accepted=False NotAllowed: "
                      "not supported on gke-l7-global-external-managed")
    # entries for other Gateways do not count
    other = copy.deepcopy(anc)
    other["ancestorRef"]["name"] = "other"
    p = policy("GCPRoutingExtension", "body-based-router", target, ancestors=[other])
    (b,) = gs.policy_gate(p, REF).blockers
    assert "no status.ancestors entry for Gateway gemma/vllm-xlb yet" in str(b)


def test_policy_targets():
    p = policy("HealthCheckPolicy", "bbr-healthcheck", {"group": "", "kind": "Service", "name": "body-based-router",
                                                        "namespace": NS})
    assert gs.policy_target_refs(p) == [("", "Service", NS, "body-based-router")]
    assert gs.policy_targets_any(p, {("", "Service", NS, "body-based-router")})
    assert not gs.policy_targets_any(p, {("", "Service", NS, "other")})


# --------------------------------------------------------------------------- whole report


def _world():
    gw = healthy_gateway()
    routes = [
        route("bbr-gemma3-1b", [route_parent(ok_route_conditions())]),
        route("infp-gemma3-1b", [route_parent(ok_route_conditions())], backend="vllm-gemma-3-1b",
              backend_kind="InferencePool", backend_group="inference.networking.k8s.io"),
        route("unrelated", [route_parent(ok_route_conditions(), gw="other")], parent_refs=[{"name": "other"}]),
    ]
    pools = {("inference.networking.k8s.io", NS, "vllm-gemma-3-1b"):
             pool_v1(parents=[pool_parent([cond("Accepted"), cond("ResolvedRefs")])])}
    policies = [
        policy("HealthCheckPolicy", "vllm-gemma-3-1b", POOL_TARGET, conditions=[cond("Attached")]),
        policy("GCPBackendPolicy", "unrelated", dict(POOL_TARGET, name="someone-else"),
               conditions=[cond("Attached", "False", "TargetNotFound", "nope")]),
    ]
    return gw, routes, pools, policies


def test_evaluate_all_ready():
    gw, routes, pools, policies = _world()
    rep = gs.evaluate(gw, REF, routes, pools, policies, pool_groups_served={"inference.networking.k8s.io"})
    states = dict((k, v.state) for k, v in rep["gates"].items())
    assert states == {"gateway_accepted": "passed", "gateway_programmed": "passed", "routes": "passed",
                      "inference_pools": "passed", "policies": "passed"}
    assert [r["name"] for r in rep["routes"]] == ["bbr-gemma3-1b", "infp-gemma3-1b"]
    assert [p["name"] for p in rep["policies"]] == ["vllm-gemma-3-1b"]  # the unrelated policy is ignored
    assert rep["address"] == "34.8.79.182"
    assert rep["needs"]["pools"] == {"inference.networking.k8s.io": [NS]}
    assert gs.blockers_of(rep["gates"]) == []


def test_evaluate_pool_crd_not_served_is_not_applicable():
    gw, routes, _pools, _policies = _world()
    rep = gs.evaluate(gw, REF, routes, {}, [], pool_groups_served=set())
    g = rep["gates"]["inference_pools"]
    assert g.ready and g.state == "not_applicable"
    assert "not served" in g.notes[0]
    assert rep["inference_pools"][0]["served"] is False
    assert rep["gates"]["policies"].state == "not_applicable"


def test_evaluate_missing_pool_and_policy_blockers():
    gw, routes, _pools, _policies = _world()
    hc = policy("HealthCheckPolicy", "vllm-gemma-3-1b", POOL_TARGET,
                conditions=[cond("Attached", "False", "TargetNotFound", "target not found")])
    rep = gs.evaluate(gw, REF, routes, {}, [hc], pool_groups_served={"inference.networking.k8s.io"})
    assert gs.blockers_of(rep["gates"]) == [
        "InferencePool gemma/vllm-gemma-3-1b: not found (inference.networking.k8s.io)",
        "HealthCheckPolicy gemma/vllm-gemma-3-1b: Attached=False TargetNotFound: target not found",
    ]


def test_evaluate_explicit_routes():
    gw, routes, pools, policies = _world()
    rep = gs.evaluate(gw, REF, routes, pools, policies, explicit_routes=[(NS, "bbr-gemma3-1b"), (NS, "missing")],
                      pool_groups_served={"inference.networking.k8s.io"})
    assert gs.blockers_of(rep["gates"]) == ["HTTPRoute gemma/missing: not found"]
    # explicit routes that use no pool: pool gate not applicable
    assert rep["gates"]["inference_pools"].state == "not_applicable"


def test_evaluate_no_routes():
    rep = gs.evaluate(healthy_gateway(), REF, [], pool_groups_served=set())
    assert rep["gates"]["routes"].state == "not_applicable"
    assert all(g.ready for g in rep["gates"].values())


def test_evaluate_gateway_missing():
    rep = gs.evaluate(None, REF, [], pool_groups_served=set())
    assert gs.blockers_of(rep["gates"]) == ["Gateway gemma/vllm-xlb: not found", "Gateway gemma/vllm-xlb: not found"]
    assert rep["address"] is None and rep["gateway"]["found"] is False


# --------------------------------------------------------------------------- tracker


def test_gate_tracker_records_seconds_and_log():
    t = gs.GateTracker(start=100.0)
    fresh = gs.evaluate(fresh_gateway(), REF, [], pool_groups_served=set())["gates"]
    t.update(fresh, 100.0)
    accepted = fresh_gateway()
    accepted["status"]["conditions"][0] = cond("Accepted")
    t.update(gs.evaluate(accepted, REF, [], pool_groups_served=set())["gates"], 115.0)
    t.update(gs.evaluate(healthy_gateway(), REF, [], pool_groups_served=set())["gates"], 212.5)
    s = t.summary()
    assert s["gateway_accepted"] == {"state": "passed", "seconds": 15.0}
    assert s["gateway_programmed"] == {"state": "passed", "seconds": 112.5}
    assert s["routes"]["state"] == "not_applicable"
    assert "+15.0s gate gateway_accepted passed" in t.log
    assert "+112.5s gate gateway_programmed passed" in t.log
    assert any(line.startswith("+0.0s waiting on gateway_programmed: Gateway gemma/vllm-xlb: Programmed=Unknown")
               for line in t.log)
    # regression is logged
    t.update(gs.evaluate(failing_gateway(), REF, [], pool_groups_served=set())["gates"], 300.0)
    assert any("gate gateway_programmed regressed: Gateway gemma/vllm-xlb: Programmed=False Invalid" in line
               for line in t.log)


@pytest.mark.parametrize("status", ["False", "Unknown"])
def test_check_condition_status(status):
    b = gs.check_condition("Gateway", NS, GW, [cond("Accepted", status, "Pending", "m")], "Accepted", 1)
    assert b is not None and b.status == status
