"""Unit tests of the GKE status simulator's pure functions (hack/gke_sim), on plain object dicts."""

from __future__ import annotations

import copy
import sys
import threading
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "hack"))

from gke_sim import model, runner, schema, status  # noqa: E402
from gke_sim.matching import hostnames_intersect, selector_matches  # noqa: E402
from gke_sim.model import CONTROLLER_NAME, Cluster, merge_conditions, split_reason  # noqa: E402
from gke_sim.status import Settings, compute  # noqa: E402

SEED = Path("/work/shared/reference/seed")
NS = "gemma"
T0 = 1_800_000_000.0
SETTINGS = Settings(program_delay=2.0, address_base="127.0.0.")
GKE_CLASSES = ("gke-l7-regional-external-managed", "gke-l7-rilb", "gke-l7-global-external-managed", "gke-l7-gxlb")


# --------------------------------------------------------------------------- object builders

def meta(name, namespace=NS, generation=1, annotations=None, uid=None, created="2026-11-26T10:00:00Z"):
    m = {"name": name, "generation": generation, "uid": uid or f"uid-{namespace}-{name}",
         "resourceVersion": "1", "creationTimestamp": created}
    if namespace:
        m["namespace"] = namespace
    if annotations:
        m["annotations"] = annotations
    return m


def gateway_class(name, controller=CONTROLLER_NAME, generation=1):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": meta(name, namespace=None, generation=generation), "spec": {"controllerName": controller}}


def gateway(name="vllm-xlb", cls="gke-l7-regional-external-managed", listeners=None, namespace=NS, **kw):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": meta(name, namespace, **kw),
            "spec": {"gatewayClassName": cls,
                     "listeners": listeners or [{"name": "http", "protocol": "HTTP", "port": 80}]}}


def route(name="r", parents=None, backends=None, hostnames=None, namespace=NS, **kw):
    spec = {"parentRefs": parents or [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "vllm-xlb"}],
            "rules": [{"backendRefs": backends if backends is not None else [{"name": "svc", "port": 8000}]}]}
    if hostnames:
        spec["hostnames"] = hostnames
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta(name, namespace, **kw),
            "spec": spec}


def service(name="svc", namespace=NS):
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, namespace),
            "spec": {"ports": [{"port": 8000}]}}


def namespace(name, labels=None):
    m = meta(name, namespace=None)
    m["labels"] = dict(labels or {}, **{"kubernetes.io/metadata.name": name})
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": m}


def pool_v1(name="pool", epp="pool-epp", namespace=NS):
    return {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool", "metadata": meta(name, namespace),
            "spec": {"targetPorts": [{"number": 8000}], "selector": {"matchLabels": {"app": name}},
                     "endpointPickerRef": {"name": epp, "port": {"number": 9002}}}}


def pool_x(name="pool", epp="pool-epp", status_=None):
    obj = {"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferencePool", "metadata": meta(name),
           "spec": {"targetPortNumber": 8000, "selector": {"app": name}, "extensionRef": {"name": epp}}}
    if status_:
        obj["status"] = status_
    return obj


def policy(kind, name, target, created="2026-11-26T10:00:00Z", namespace=NS):
    return {"apiVersion": "networking.gke.io/v1", "kind": kind, "metadata": meta(name, namespace, created=created),
            "spec": {"targetRef": target, "default": {}}}


def extension(kind, name, targets, backend="bbr"):
    return {"apiVersion": "networking.gke.io/v1", "kind": kind, "metadata": meta(name),
            "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": t}
                                    for t in targets],
                     "extensionChains": [{"name": "chain",
                                          "matchCondition": {"celExpressions": [{"celMatcher": "true"}]},
                                          "extensions": [{"name": "ext", "authority": "bbr.example.com",
                                                          "backendRef": {"group": "", "kind": "Service",
                                                                         "name": backend, "port": 9004}}]}]}}


def classes():
    return [gateway_class(c) for c in GKE_CLASSES]


def seed(*files):
    """Seed manifests as the API server would return them in namespace `gemma`."""
    objs = []
    for f in files:
        for doc in yaml.safe_load_all((SEED / f).read_text()):
            if doc:
                doc["metadata"].setdefault("namespace", NS)
                doc["metadata"].setdefault("generation", 1)
                doc["metadata"].setdefault("uid", f"uid-{doc['kind']}-{doc['metadata']['name']}")
                objs.append(doc)
    return objs


# --------------------------------------------------------------------------- helpers over a Plan

def run(objs, now=T0, seen_at=None, settings=SETTINGS):
    return compute(Cluster.from_objects(objs), now, seen_at or {}, settings)


def desired(plan, kind, name, group=None):
    for d in plan.desired:
        if d.rtype.kind == kind and d.obj["metadata"]["name"] == name and (group is None or d.rtype.group == group):
            return d.status
    return None


def conds(conditions):
    return {c["type"]: c for c in conditions}


def cond(conditions, ctype):
    return conds(conditions)[ctype]


def parent(route_status, gateway_name="vllm-xlb"):
    entries = [p for p in route_status["parents"] if p["parentRef"]["name"] == gateway_name
               and p["controllerName"] == CONTROLLER_NAME]
    assert len(entries) == 1, route_status
    return conds(entries[0]["conditions"])


def stored(objs, plan):
    """The objects with the plan's status written back, as the API server would then return them."""
    by_id = {(d.rtype, model.key_of(d.obj)): d.status for d in plan.desired}
    out = []
    for obj in objs:
        obj = copy.deepcopy(obj)
        rtype = model._BY_GROUP_KIND.get((model.group_of(obj["apiVersion"]), obj["kind"]))
        if (rtype, model.key_of(obj)) in by_id:
            obj["status"] = dict(obj.get("status") or {}, **copy.deepcopy(by_id[(rtype, model.key_of(obj))]))
        out.append(obj)
    return out


def programmed_world(objs):
    """Run until every Gateway's programming is due; returns (objects with status, last plan)."""
    seen = {status.generation_key(o): T0 for o in objs if o["kind"] == "Gateway"}
    first = run(objs, T0, seen)
    objs = stored(objs, first)
    plan = run(objs, T0 + 2.5, seen)
    return stored(objs, plan), plan


# --------------------------------------------------------------------------- GatewayClass

def test_gatewayclasses_of_gke_controller_accepted_with_generation():
    plan = run([gateway_class("gke-l7-rilb", generation=3), gateway_class("istio", controller="istio.io/gateway")])
    accepted = cond(desired(plan, "GatewayClass", "gke-l7-rilb")["conditions"], "Accepted")
    assert (accepted["status"], accepted["reason"], accepted["observedGeneration"]) == ("True", "Accepted", 3)
    assert accepted["lastTransitionTime"] == "2027-01-15T08:00:00Z"
    assert desired(plan, "GatewayClass", "istio") is None


# --------------------------------------------------------------------------- Gateway lifecycle

def test_gateway_accepted_at_once_programmed_with_address_after_delay():
    objs = classes() + [gateway()]
    seen = {status.generation_key(objs[-1]): T0}

    first = run(objs, T0, seen)
    gw = desired(first, "Gateway", "vllm-xlb")
    c = conds(gw["conditions"])
    accepted = c["Accepted"]
    assert (accepted["status"], accepted["reason"], accepted["observedGeneration"]) == ("True", "Accepted", 1)
    assert (c["Programmed"]["status"], c["Programmed"]["reason"]) == ("Unknown", "Pending")
    assert c["Scheduled"]["message"] == status.SCHEDULED_MESSAGE
    assert "Ready" not in c and status.HEALTHY not in c
    assert "addresses" not in gw
    assert first.wake_at == T0 + 2.0
    listener = gw["listeners"][0]
    assert listener["name"] == "http" and listener["attachedRoutes"] == 0
    assert listener["supportedKinds"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}]
    assert [x["type"] for x in listener["conditions"]] == ["ResolvedRefs", "Accepted", "Programmed"]

    objs = stored(objs, first)
    assert run(objs, T0 + 1.9, seen).wake_at == T0 + 2.0
    later = run(objs, T0 + 2.0, seen)
    gw = desired(later, "Gateway", "vllm-xlb")
    c = conds(gw["conditions"])
    assert [c[t]["status"] for t in ("Accepted", "Programmed", "Scheduled", "Ready", status.HEALTHY)] == ["True"] * 5
    assert c["Programmed"]["reason"] == "Programmed" and c[status.HEALTHY]["reason"] == "Healthy"
    assert c["Ready"]["message"] == status.READY_MESSAGE
    assert all(x["observedGeneration"] == 1 for x in gw["conditions"])
    assert gw["addresses"] == [{"type": "IPAddress", "value": "127.0.0.2"}]
    assert {x["type"]: x["status"] for x in gw["listeners"][0]["conditions"]} == {
        "ResolvedRefs": "True", "Accepted": "True", "Programmed": "True", "Ready": "True"}
    # The Accepted transition time is kept; Programmed moved when it became True.
    assert c["Accepted"]["lastTransitionTime"] == model.timestamp(T0)
    assert c["Programmed"]["lastTransitionTime"] == model.timestamp(T0 + 2.0)
    assert later.wake_at is None


def test_status_is_stable_once_written_so_nothing_is_patched_again():
    objs, plan = programmed_world(classes() + seed("infgw-external.yaml", "infgw-httproute-basic.yaml"))
    again = run(objs, T0 + 60, {status.generation_key(o): T0 for o in objs if o["kind"] == "Gateway"})
    for d in again.desired:
        assert schema.changed_keys(d.obj.get("status"), d.status) == [], (d.rtype, d.obj["metadata"]["name"])


def test_spec_change_bumps_generation_programmed_follows_after_delay():
    objs, _plan = programmed_world(classes() + [gateway()])
    gw = next(o for o in objs if o["kind"] == "Gateway")
    gw["metadata"]["generation"] = 2
    gw["spec"]["listeners"].append({"name": "alt", "protocol": "HTTP", "port": 8080})
    seen = {status.generation_key(gw): T0 + 10}

    now = run(objs, T0 + 10, seen)
    c = conds(desired(now, "Gateway", "vllm-xlb")["conditions"])
    assert c["Accepted"]["observedGeneration"] == 2
    # Like GKE, Programmed stays at the old generation until the new one is programmed.
    assert (c["Programmed"]["status"], c["Programmed"]["observedGeneration"]) == ("True", 1)
    alt = desired(now, "Gateway", "vllm-xlb")["listeners"][1]
    assert alt["name"] == "alt"
    assert cond(alt["conditions"], "Programmed")["status"] == "Unknown"
    assert cond(alt["conditions"], "Accepted")["observedGeneration"] == 2

    objs = stored(objs, now)
    later = desired(run(objs, T0 + 12, seen), "Gateway", "vllm-xlb")
    c = conds(later["conditions"])
    assert (c["Programmed"]["status"], c["Programmed"]["observedGeneration"]) == ("True", 2)
    assert c["Programmed"]["lastTransitionTime"] == model.timestamp(T0 + 2.5)  # status never changed
    assert later["addresses"] == [{"type": "IPAddress", "value": "127.0.0.2"}]  # the address is kept


def test_non_gke_and_ignored_gateways_get_no_status():
    objs = classes() + [gateway_class("istio", controller="istio.io/gateway"), gateway("mesh", cls="istio"),
                        gateway("hands-off", annotations={model.ANN_IGNORE: "true"}),
                        route(parents=[{"name": "hands-off"}])]
    plan = run(objs)
    assert desired(plan, "Gateway", "mesh") is None
    assert desired(plan, "Gateway", "hands-off") is None
    assert desired(plan, "HTTPRoute", "r") is None


# --------------------------------------------------------------------------- failure injection

def test_never_program_annotation_keeps_gateway_accepted_but_not_programmed():
    reason_message = "Invalid: Error GWCER102: Secret gemma/uc1-wildcard not found."
    objs = classes() + [gateway(annotations={model.ANN_NEVER_PROGRAM: reason_message}), route(), service()]
    objs, plan = programmed_world(objs)
    gw = desired(plan, "Gateway", "vllm-xlb")
    c = conds(gw["conditions"])
    assert (c["Accepted"]["status"], c["Accepted"]["reason"]) == ("True", "Accepted")
    assert (c["Programmed"]["status"], c["Programmed"]["reason"], c["Programmed"]["message"]) == (
        "False", "Invalid", "Error GWCER102: Secret gemma/uc1-wildcard not found.")
    assert (c["Ready"]["status"], c["Ready"]["reason"]) == ("False", "NotReady")
    assert (c[status.HEALTHY]["status"], c[status.HEALTHY]["reason"], c[status.HEALTHY]["message"]) == (
        "False", "Error", "Gateway: Invalid : Error GWCER102: Secret gemma/uc1-wildcard not found.")
    assert "addresses" not in gw
    assert cond(gw["listeners"][0]["conditions"], "Programmed")["status"] == "False"
    reconciled = parent(desired(plan, "HTTPRoute", "r"))["Reconciled"]
    assert (reconciled["status"], reconciled["reason"]) == ("False", "ReconciliationFailed")
    assert plan.wake_at is None  # failing for good: nothing left to wait for


@pytest.mark.parametrize("value, reason, message", [
    ("NoResources: quota exhausted", "NoResources", "quota exhausted"),
    ("Error GWCER105: Listener \"https\" is invalid", "Invalid", "Error GWCER105: Listener \"https\" is invalid"),
    ("certificate missing", "Invalid", "certificate missing"),
])
def test_never_program_value_reason_parsing(value, reason, message):
    assert split_reason(value, "Invalid") == (reason, message)


def test_program_delay_annotation_overrides_default():
    gw = gateway(annotations={model.ANN_PROGRAM_DELAY: "5"})
    seen = {status.generation_key(gw): T0}
    assert run(classes() + [gw], T0, seen).wake_at == T0 + 5
    assert cond(desired(run(classes() + [gw], T0 + 4, seen), "Gateway", "vllm-xlb")["conditions"],
                "Programmed")["status"] == "Unknown"
    assert cond(desired(run(classes() + [gw], T0 + 5, seen), "Gateway", "vllm-xlb")["conditions"],
                "Programmed")["status"] == "True"
    broken = gateway(annotations={model.ANN_PROGRAM_DELAY: "soon"})
    assert run(classes() + [broken], T0, {status.generation_key(broken): T0}).wake_at == T0 + 2


def test_reconcile_error_annotation_on_route():
    objs = classes() + [gateway(), service(), route(annotations={model.ANN_RECONCILE_ERROR: "Error GWCER104: boom"})]
    _objs, plan = programmed_world(objs)
    p = parent(desired(plan, "HTTPRoute", "r"))
    assert (p["Accepted"]["status"], p["ResolvedRefs"]["status"]) == ("True", "True")
    assert (p["Reconciled"]["status"], p["Reconciled"]["message"]) == ("False", "Error GWCER104: boom")


# --------------------------------------------------------------------------- addresses and listeners

def test_addresses_unique_stable_and_from_spec():
    a = gateway("a", created="2026-11-26T10:00:01Z")
    b = gateway("b", created="2026-11-26T10:00:02Z")
    b["status"] = {"addresses": [{"type": "IPAddress", "value": "127.0.0.2"}]}  # b was programmed before
    c = gateway("c", created="2026-11-26T10:00:03Z")
    c["spec"]["addresses"] = [{"type": "IPAddress", "value": "10.0.0.7"}]
    got = status.allocate_addresses([a, b, c], [a, b, c], "127.0.0.")
    assert got == {(NS, "a"): "127.0.0.3", (NS, "b"): "127.0.0.2", (NS, "c"): "10.0.0.7"}

    full = [gateway(f"g{n}") for n in range(2, 255)]
    for n, gw in enumerate(full, start=2):
        gw["status"] = {"addresses": [{"type": "IPAddress", "value": f"127.0.0.{n}"}]}
    assert status.allocate_addresses([a], full + [a], "127.0.0.") == {(NS, "a"): None}


def test_rilb_rejects_ip_address_type_like_gke():
    gw = gateway("internal-https-gateway", cls="gke-l7-rilb", namespace="default")
    gw["spec"]["addresses"] = [{"type": "IPAddress", "value": "10.0.0.9"}]
    _objs, plan = programmed_world(classes() + [gw])
    st = desired(plan, "Gateway", "internal-https-gateway")
    c = conds(st["conditions"])
    assert c["Accepted"]["status"] == "True"
    assert (c["Programmed"]["status"], c["Programmed"]["reason"]) == ("False", "Invalid")
    assert c["Programmed"]["message"] == ('Error GWCER106: Gateway "default/internal-https-gateway" is invalid, err: '
                                          'unsupported address type "IPAddress", only "NamedAddress" is supported..')
    listener = cond(st["listeners"][0]["conditions"], "Accepted")
    assert (listener["status"], listener["reason"]) == ("False", "UnsupportedAddress")


def https_gateway(cert_ns=None):
    ref = {"kind": "Secret", "group": "", "name": "tls-cert"}
    if cert_ns:
        ref["namespace"] = cert_ns
    return gateway(listeners=[{"name": "http", "protocol": "HTTP", "port": 80},
                              {"name": "https", "protocol": "HTTPS", "port": 443,
                               "tls": {"mode": "Terminate", "certificateRefs": [ref]}}])


def secret(name="tls-cert", namespace_=NS):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta(name, namespace_), "type": "kubernetes.io/tls"}


def test_missing_tls_secret_blocks_programming_until_it_exists():
    _objs, plan = programmed_world(classes() + [https_gateway()])
    st = desired(plan, "Gateway", "vllm-xlb")
    programmed = cond(st["conditions"], "Programmed")
    assert (programmed["status"], programmed["reason"], programmed["message"]) == (
        "False", "Invalid", "Error GWCER102: Secret gemma/tls-cert not found.")
    https = conds(st["listeners"][1]["conditions"])
    assert (https["ResolvedRefs"]["status"], https["ResolvedRefs"]["reason"]) == ("False", "InvalidCertificateRef")
    assert cond(st["listeners"][0]["conditions"], "ResolvedRefs")["status"] == "True"

    _objs, plan = programmed_world(classes() + [https_gateway(), secret()])
    assert cond(desired(plan, "Gateway", "vllm-xlb")["conditions"], "Programmed")["status"] == "True"


def test_cross_namespace_certificate_needs_reference_grant():
    objs = classes() + [https_gateway(cert_ns="certs"), secret(namespace_="certs")]
    _objs, plan = programmed_world(objs)
    https = conds(desired(plan, "Gateway", "vllm-xlb")["listeners"][1]["conditions"])
    assert https["ResolvedRefs"]["reason"] == "RefNotPermitted"

    grant = {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
             "metadata": meta("allow-gateways", "certs"),
             "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": NS}],
                      "to": [{"group": "", "kind": "Secret"}]}}
    _objs, plan = programmed_world(objs + [grant])
    assert cond(desired(plan, "Gateway", "vllm-xlb")["conditions"], "Programmed")["status"] == "True"


def test_unsupported_protocol_and_route_kinds_on_listeners():
    gw = gateway(listeners=[{"name": "tcp", "protocol": "TCP", "port": 9000},
                            {"name": "http", "protocol": "HTTP", "port": 80,
                             "allowedRoutes": {"kinds": [{"kind": "HTTPRoute"}, {"kind": "TCPRoute"}]}}])
    _objs, plan = programmed_world(classes() + [gw])
    tcp, http = desired(plan, "Gateway", "vllm-xlb")["listeners"]
    assert tcp["supportedKinds"] == []
    assert cond(tcp["conditions"], "Accepted")["reason"] == "UnsupportedProtocol"
    assert http["supportedKinds"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}]
    assert cond(http["conditions"], "ResolvedRefs")["reason"] == "InvalidRouteKinds"


# --------------------------------------------------------------------------- HTTPRoute

def test_seed_routes_backend_not_found_until_services_exist():
    objs = classes() + seed("infgw-external.yaml", "infgw-httproute-basic.yaml", "vllm-gemma3-1b.yaml")
    objs, plan = programmed_world(objs)
    p = parent(desired(plan, "HTTPRoute", "gemma-host-based-routing"))
    assert (p["Accepted"]["status"], p["Accepted"]["reason"]) == ("True", "Accepted")
    assert (p["ResolvedRefs"]["status"], p["ResolvedRefs"]["reason"]) == ("False", "BackendNotFound")
    assert "Error GWCER102: services gemma/vllm-gemma-3-4b not found" in p["ResolvedRefs"]["message"]
    assert p["ResolvedRefs"]["message"].startswith('Object reference of HTTPRoute "gemma/gemma-host-based-routing" '
                                                   'bound to ParentRef {Group: "gateway.networking.k8s.io"')
    assert p["Reconciled"]["reason"] == "ReconciliationFailed"
    gw = desired(plan, "Gateway", "vllm-xlb")
    assert [(lst["name"], lst["attachedRoutes"]) for lst in gw["listeners"]] == [("http", 1), ("https", 1)]

    objs += seed("vllm-gemma3-4b.yaml", "vllm-llama3-3b.yaml")
    p = parent(desired(run(objs, T0 + 10, {status.generation_key(o): T0 for o in objs if o["kind"] == "Gateway"}),
                       "HTTPRoute", "gemma-host-based-routing"))
    assert (p["ResolvedRefs"]["status"], p["ResolvedRefs"]["reason"]) == ("True", "ResolvedRefs")
    assert (p["Reconciled"]["status"], p["Reconciled"]["reason"]) == ("True", "ReconciliationSucceeded")
    assert p["ResolvedRefs"]["observedGeneration"] == 1


@pytest.mark.parametrize("listener, route_host, expected", [
    ("api.example.com", "api.example.com", True),
    ("API.example.com", "api.EXAMPLE.com", True),
    ("*.example.com", "api.example.com", True),
    ("*.example.com", "a.b.example.com", True),
    ("*.example.com", "example.com", False),
    ("*.example.com", "api.example.org", False),
    ("api.example.com", "*.example.com", True),
    ("api.example.com", "*.other.com", False),
    ("*.example.com", "*.api.example.com", True),
    ("*.api.example.com", "*.example.com", True),
    ("*.example.com", "*.example.org", False),
    ("foo.example.com", "bar.example.com", False),
    (None, "anything.test", True),
    ("", "*.anything.test", True),
])
def test_hostname_intersection_rules(listener, route_host, expected):
    assert hostnames_intersect(listener, route_host) is expected


def test_route_hostname_must_intersect_a_listener_hostname():
    gw = gateway(listeners=[{"name": "https", "protocol": "HTTPS", "port": 443, "hostname": "*.example.com"}])
    objs = classes() + [gw, service(), route("match", hostnames=["api.example.com"]),
                        route("wild", hostnames=["*.example.com"]), route("nomatch", hostnames=["api.example.org"]),
                        route("any")]
    _objs, plan = programmed_world(objs)
    for name in ("match", "wild", "any"):
        assert parent(desired(plan, "HTTPRoute", name))["Accepted"]["status"] == "True", name
    rejected = parent(desired(plan, "HTTPRoute", "nomatch"))["Accepted"]
    assert (rejected["status"], rejected["reason"]) == ("False", "NoMatchingListenerHostname")
    # attachedRoutes depends on parentRef + allowedRoutes only, so the rejected route still counts.
    assert desired(plan, "Gateway", "vllm-xlb")["listeners"][0]["attachedRoutes"] == 4


def allowed_gateway(namespaces):
    return gateway(listeners=[{"name": "http", "protocol": "HTTP", "port": 80,
                               "allowedRoutes": {"namespaces": namespaces}}])


def cross_ns_route(ns):
    return route(f"from-{ns}", namespace=ns, parents=[{"name": "vllm-xlb", "namespace": NS}],
                 backends=[{"name": "svc", "port": 8000}])


@pytest.mark.parametrize("namespaces, accepted", [
    ({"from": "Same"}, {"gemma": True, "team-a": False, "team-b": False}),
    ({}, {"gemma": True, "team-a": False, "team-b": False}),
    ({"from": "All"}, {"gemma": True, "team-a": True, "team-b": True}),
    ({"from": "Selector", "selector": {"matchLabels": {"shared-gateway": "true"}}},
     {"gemma": False, "team-a": True, "team-b": False}),
    ({"from": "Selector", "selector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["gemma", "team-b"]}]}},
     {"gemma": True, "team-a": False, "team-b": True}),
])
def test_allowed_routes_namespaces(namespaces, accepted):
    objs = classes() + [allowed_gateway(namespaces), namespace("gemma"),
                        namespace("team-a", {"shared-gateway": "true"}), namespace("team-b"),
                        service(namespace="team-a"), service(namespace="team-b"), service()]
    objs += [cross_ns_route(ns) for ns in ("gemma", "team-a", "team-b")]
    _objs, plan = programmed_world(objs)
    for ns, ok in accepted.items():
        c = parent(desired(plan, "HTTPRoute", f"from-{ns}"))["Accepted"]
        assert (c["status"] == "True") is ok, (ns, c)
        if not ok:
            assert c["reason"] == "NotAllowedByListeners"
    assert desired(plan, "Gateway", "vllm-xlb")["listeners"][0]["attachedRoutes"] == sum(accepted.values())


def test_label_selector_operators():
    labels = {"env": "prod", "team": "ml"}
    assert selector_matches({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]}, labels)
    assert not selector_matches({"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}, labels)
    assert selector_matches({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, labels)
    assert not selector_matches({"matchLabels": {"env": "dev"}}, labels)
    assert selector_matches({}, labels)


def test_section_name_binds_one_listener_and_unknown_section_is_no_matching_parent():
    gw = gateway(listeners=[{"name": "http", "protocol": "HTTP", "port": 80},
                            {"name": "https", "protocol": "HTTPS", "port": 443}])
    objs = classes() + [gw, service(), route("https-only", parents=[{"name": "vllm-xlb", "sectionName": "https"}]),
                        route("bad-section", parents=[{"name": "vllm-xlb", "sectionName": "grpc"}])]
    _objs, plan = programmed_world(objs)
    assert [(lst["name"], lst["attachedRoutes"]) for lst in desired(plan, "Gateway", "vllm-xlb")["listeners"]] == [
        ("http", 0), ("https", 1)]
    c = parent(desired(plan, "HTTPRoute", "bad-section"))["Accepted"]
    assert (c["status"], c["reason"]) == ("False", "NoMatchingParent")


def test_route_parents_only_for_gke_gateways_and_foreign_entries_kept():
    r = route(parents=[{"name": "vllm-xlb"}, {"name": "missing-gw"}, {"name": "mesh"}])
    foreign = {"parentRef": {"name": "mesh"}, "controllerName": "istio.io/gateway",
               "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}]}
    stale = {"parentRef": {"name": "old-gw"}, "controllerName": CONTROLLER_NAME, "conditions": []}
    r["status"] = {"parents": [foreign, stale]}
    objs = classes() + [gateway_class("istio", controller="istio.io/gateway"), gateway(), gateway("mesh", cls="istio"),
                        service(), r]
    st = desired(run(objs), "HTTPRoute", "r")
    assert st["parents"][0] == foreign
    assert [p["parentRef"]["name"] for p in st["parents"]] == ["mesh", "vllm-xlb"]
    assert all(p["controllerName"] == CONTROLLER_NAME for p in st["parents"][1:])


def test_cross_namespace_backend_needs_reference_grant():
    r = route(backends=[{"name": "svc", "namespace": "backends", "port": 8000}])
    objs = classes() + [gateway(), service(namespace="backends"), r]
    c = parent(desired(run(objs), "HTTPRoute", "r"))["ResolvedRefs"]
    assert (c["status"], c["reason"]) == ("False", "RefNotPermitted")
    grant = {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
             "metadata": meta("routes", "backends"),
             "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": NS}],
                      "to": [{"group": "", "kind": "Service", "name": "svc"}]}}
    assert parent(desired(run(objs + [grant]), "HTTPRoute", "r"))["ResolvedRefs"]["status"] == "True"


def test_unknown_backend_kind_is_invalid_kind():
    r = route(backends=[{"group": "example.com", "kind": "Bucket", "name": "b"}])
    c = parent(desired(run(classes() + [gateway(), r]), "HTTPRoute", "r"))["ResolvedRefs"]
    assert (c["status"], c["reason"]) == ("False", "InvalidKind")


# --------------------------------------------------------------------------- InferencePool

def pool_route(group="inference.networking.k8s.io", name="pool", gw="vllm-xlb"):
    return route("to-pool", parents=[{"name": gw}],
                 backends=[{"group": group, "kind": "InferencePool", "name": name}])


def test_route_to_missing_inferencepool_is_backend_not_found():
    c = parent(desired(run(classes() + [gateway(), pool_route()]), "HTTPRoute", "to-pool"))
    assert (c["Accepted"]["status"], c["ResolvedRefs"]["status"], c["ResolvedRefs"]["reason"]) == (
        "True", "False", "BackendNotFound")
    assert "inferencepools.inference.networking.k8s.io gemma/pool not found" in c["ResolvedRefs"]["message"]


def test_inferencepool_v1_parent_status_with_namespaced_gateway_ref():
    objs = classes() + [gateway(), pool_v1(), service("pool-epp"), pool_route()]
    plan = run(objs)
    assert parent(desired(plan, "HTTPRoute", "to-pool"))["ResolvedRefs"]["status"] == "True"
    st = desired(plan, "InferencePool", "pool", group="inference.networking.k8s.io")
    assert list(st) == ["parents"]
    (entry,) = st["parents"]
    assert entry["parentRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": NS,
                                  "name": "vllm-xlb"}
    assert entry["controllerName"] == CONTROLLER_NAME
    c = conds(entry["conditions"])
    assert (c["Accepted"]["status"], c["Accepted"]["reason"]) == ("True", "Accepted")
    assert (c["ResolvedRefs"]["status"], c["ResolvedRefs"]["reason"]) == ("True", "ResolvedRefs")
    assert c["Accepted"]["observedGeneration"] == 1


def test_inferencepool_missing_epp_service():
    objs, plan = programmed_world(classes() + [gateway(), pool_v1(), pool_route()])
    entry = desired(plan, "InferencePool", "pool")["parents"][0]
    c = cond(entry["conditions"], "ResolvedRefs")
    assert (c["status"], c["reason"]) == ("False", "InvalidExtensionRef")
    reconciled = parent(desired(plan, "HTTPRoute", "to-pool"))["Reconciled"]
    assert reconciled["status"] == "False"
    assert "missing Service" in reconciled["message"] and "gemma/pool-epp" in reconciled["message"]


def test_inferencepool_v1alpha2_uses_parent_field_and_replaces_placeholder():
    placeholder = {"parent": [{"parentRef": {"kind": "Status", "name": "default"},
                               "conditions": [{"type": "Accepted", "status": "Unknown", "reason": "Pending",
                                               "message": "Waiting for controller",
                                               "lastTransitionTime": "1970-01-01T00:00:00Z"}]}]}
    lonely = pool_x("lonely", status_=copy.deepcopy(placeholder))
    objs = classes() + [gateway(), pool_x(status_=placeholder), service("pool-epp"), lonely,
                        pool_route(group="inference.networking.x-k8s.io")]
    plan = run(objs)
    st = desired(plan, "InferencePool", "pool", group="inference.networking.x-k8s.io")
    assert list(st) == ["parent"]
    (entry,) = st["parent"]
    assert "controllerName" not in entry
    assert entry["parentRef"]["name"] == "vllm-xlb" and entry["parentRef"]["namespace"] == NS
    assert cond(entry["conditions"], "Accepted")["status"] == "True"
    assert desired(plan, "InferencePool", "lonely") is None  # unreferenced: the CRD default stays


def test_inferencepool_parents_removed_when_no_route_references_it():
    objs, _plan = programmed_world(classes() + [gateway(), pool_v1(), service("pool-epp"), pool_route()])
    objs = [o for o in objs if o["kind"] != "HTTPRoute"]
    assert desired(run(objs), "InferencePool", "pool") == {"parents": []}
    assert desired(run([pool_v1()]), "InferencePool", "pool") is None  # never had parents: no status at all


def test_inferencepool_not_supported_on_global_class():
    objs = classes() + [gateway("global", cls="gke-l7-global-external-managed"), pool_v1(), service("pool-epp"),
                        pool_route(gw="global")]
    plan = run(objs)
    assert parent(desired(plan, "HTTPRoute", "to-pool"), "global")["ResolvedRefs"]["reason"] == "InvalidKind"
    entry = desired(plan, "InferencePool", "pool")["parents"][0]
    assert cond(entry["conditions"], "Accepted")["reason"] == "NotSupportedByParent"


def test_inferencepool_route_not_accepted():
    gw = gateway(listeners=[{"name": "http", "protocol": "HTTP", "port": 80, "hostname": "api.example.com"}])
    r = pool_route()
    r["spec"]["hostnames"] = ["other.example.org"]
    entry = desired(run(classes() + [gw, pool_v1(), service("pool-epp"), r]), "InferencePool", "pool")["parents"][0]
    c = cond(entry["conditions"], "Accepted")
    assert (c["status"], c["reason"]) == ("False", "HTTPRouteNotAccepted")


# --------------------------------------------------------------------------- policies and extensions

def test_seed_health_check_policies_attached_or_target_not_found():
    objs = classes() + seed("infgw-httproute-basic.yaml", "vllm-gemma3-1b.yaml")
    plan = run(objs)
    attached = cond(desired(plan, "HealthCheckPolicy", "vllm-gemma-3-1b-hc")["conditions"], "Attached")
    assert (attached["status"], attached["reason"], attached["observedGeneration"]) == ("True", "Attached", 1)
    missing = cond(desired(plan, "HealthCheckPolicy", "vllm-gemma-3-4b-hc")["conditions"], "Attached")
    assert (missing["status"], missing["reason"]) == ("False", "TargetNotFound")
    assert missing["message"] == "Service gemma/vllm-gemma-3-4b not found"


def test_seed_backend_policy_on_inferencepool():
    objs = classes() + seed("infgw-policy-cloud-armor.yaml")
    assert cond(desired(run(objs), "GCPBackendPolicy", "vllm-gemma-3-1b")["conditions"], "Attached")["reason"] == \
        "TargetNotFound"
    objs.append(pool_v1("vllm-gemma-3-1b"))
    assert cond(desired(run(objs), "GCPBackendPolicy", "vllm-gemma-3-1b")["conditions"], "Attached")["status"] == "True"


def test_policy_conflict_oldest_wins_and_foreign_conditions_kept():
    target = {"group": "", "kind": "Service", "name": "svc"}
    old = policy("HealthCheckPolicy", "chart-hc", target, created="2026-11-26T09:00:00Z")
    new = policy("HealthCheckPolicy", "my-hc", target, created="2026-11-26T10:00:00Z")
    new["status"] = {"conditions": [{"type": "example.com/Audited", "status": "True", "reason": "Audited",
                                     "message": "", "lastTransitionTime": "2026-11-26T10:00:00Z"}]}
    plan = run([service(), old, new])
    assert cond(desired(plan, "HealthCheckPolicy", "chart-hc")["conditions"], "Attached")["status"] == "True"
    conflicted = desired(plan, "HealthCheckPolicy", "my-hc")["conditions"]
    assert [c["type"] for c in conflicted] == ["example.com/Audited", "Attached"]
    assert cond(conflicted, "Attached")["reason"] == "Conflicted"


def test_gateway_policy_and_invalid_target_kind():
    objs = classes() + [gateway(),
                        policy("GCPGatewayPolicy", "gw-policy",
                               {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "vllm-xlb"}),
                        policy("HealthCheckPolicy", "odd", {"group": "apps", "kind": "Deployment", "name": "x"})]
    plan = run(objs)
    assert cond(desired(plan, "GCPGatewayPolicy", "gw-policy")["conditions"], "Attached")["status"] == "True"
    assert cond(desired(plan, "HealthCheckPolicy", "odd")["conditions"], "Attached")["reason"] == "Invalid"


def test_routing_extension_ancestors():
    objs = classes() + [gateway("regional"), gateway("global", cls="gke-l7-global-external-managed"), service("bbr"),
                        extension("GCPRoutingExtension", "ext", ["regional", "global", "gone"]),
                        extension("GCPTrafficExtension", "traffic", ["global"], backend="nope")]
    plan = run(objs)
    ancestors = {a["ancestorRef"]["name"]: (a, conds(a["conditions"]))
                 for a in desired(plan, "GCPRoutingExtension", "ext")["ancestors"]}
    assert ancestors["regional"][0]["ancestorRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                                       "namespace": NS, "name": "regional"}
    assert ancestors["regional"][0]["controllerName"] == CONTROLLER_NAME
    assert [ancestors[n][1]["Accepted"]["reason"] for n in ("regional", "global", "gone")] == [
        "Accepted", "NotAllowed", "TargetNotFound"]
    assert ancestors["regional"][1]["ResolvedRefs"]["status"] == "True"
    (traffic,) = desired(plan, "GCPTrafficExtension", "traffic")["ancestors"]
    c = conds(traffic["conditions"])
    assert (c["Accepted"]["status"], c["ResolvedRefs"]["reason"]) == ("True", "ExtensionServiceNotFound")


# --------------------------------------------------------------------------- building blocks

def test_merge_conditions_keeps_foreign_and_order_and_transition_time():
    existing = [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                 "observedGeneration": 1, "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "special.io/SomeField", "status": "True", "reason": "X", "message": "",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    merged = merge_conditions(existing, [model.condition("Accepted", True, "Accepted"),
                                         model.condition("Programmed", False, "Invalid", "no")], 2, T0)
    assert [c["type"] for c in merged] == ["Accepted", "special.io/SomeField", "Programmed"]
    assert merged[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z" and merged[0]["observedGeneration"] == 2
    assert merged[1] == existing[1]
    assert merged[2]["lastTransitionTime"] == model.timestamp(T0)
    flipped = merge_conditions(merged, [model.condition("Accepted", False, "Invalid")], 3, T0 + 5)
    assert flipped[0]["lastTransitionTime"] == model.timestamp(T0 + 5)


OBJECT_REFERENCE_STATUS_SCHEMA = {  # GIE v0.4.0 InferencePool status: parentRef is a corev1.ObjectReference
    "type": "object",
    "properties": {"parent": {"type": "array", "items": {"type": "object", "properties": {
        "conditions": {"type": "array", "items": {"type": "object", "properties": {
            k: {"type": "string"} for k in ("type", "status", "reason", "message", "lastTransitionTime")} | {
            "observedGeneration": {"type": "integer"}}}},
        "parentRef": {"type": "object", "properties": {
            k: {"type": "string"} for k in ("apiVersion", "kind", "name", "namespace", "uid")}}}}}},
}


def test_normalize_prunes_undeclared_fields_so_v040_pools_do_not_loop():
    route_x = pool_route(group="inference.networking.x-k8s.io")
    plan = run(classes() + [gateway(), pool_x(), service("pool-epp"), route_x])
    raw = desired(plan, "InferencePool", "pool")
    normalized = schema.normalize(raw, OBJECT_REFERENCE_STATUS_SCHEMA)
    assert normalized["parent"][0]["parentRef"] == {"kind": "Gateway", "namespace": NS, "name": "vllm-xlb"}
    assert schema.changed_keys(normalized, normalized) == []
    assert schema.changed_keys({"parent": normalized["parent"]}, raw) == ["parent"]  # why normalising matters


def test_normalize_applies_scalar_defaults_and_keeps_preserved_fields():
    ref_schema = {"type": "object", "properties": {
        "parentRef": {"type": "object", "properties": {
            "group": {"type": "string", "default": "gateway.networking.k8s.io"},
            "kind": {"type": "string", "default": "Gateway"},
            "name": {"type": "string"}}},
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "tags": {"type": "array", "default": ["x"]}}}
    got = schema.normalize({"parentRef": {"name": "gw"}, "extra": {"anything": 1}}, ref_schema)
    assert got == {"parentRef": {"name": "gw", "group": "gateway.networking.k8s.io", "kind": "Gateway"},
                   "extra": {"anything": 1}}


def test_status_schema_and_served_version_from_crd():
    crd = {"spec": {"versions": [
        {"name": "v1beta1", "served": True, "storage": False, "schema": {"openAPIV3Schema": {"properties": {}}}},
        {"name": "v1", "served": True, "storage": True,
         "schema": {"openAPIV3Schema": {"properties": {"status": {"type": "object"}}}}}]},
        "status": {"conditions": [{"type": "Established", "status": "True"}]}}
    assert runner.served_version(crd) == "v1"
    assert schema.status_schema(crd, "v1") == {"type": "object"}
    crd["status"]["conditions"][0]["status"] = "False"
    assert runner.served_version(crd) is None


def test_summarize_is_one_line_per_change():
    _objs, plan = programmed_world(classes() + [gateway(), service(), route()])
    assert schema.summarize(desired(plan, "Gateway", "vllm-xlb")).startswith(
        "Accepted=True/Accepted Scheduled=True/Scheduled Programmed=True/Programmed Ready=True/Ready")
    line = schema.summarize(desired(plan, "HTTPRoute", "r"))
    assert line == ("Gateway vllm-xlb: Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs "
                    "Reconciled=True/ReconciliationSucceeded")
    assert "\n" not in line


def test_objects_being_deleted_get_no_status():
    gw = gateway()
    gw["metadata"]["deletionTimestamp"] = "2026-11-26T11:00:00Z"
    assert desired(run(classes() + [gw]), "Gateway", "vllm-xlb") is None


# --------------------------------------------------------------------------- runner, with fakes for the API

def crd(rtype, version="v1", established=True):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": meta(rtype.crd_name, namespace=None),
            "spec": {"group": rtype.group, "names": {"plural": rtype.plural, "kind": rtype.kind},
                     "versions": [{"name": version, "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                       "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}]},
            "status": {"conditions": [{"type": "Established", "status": "True" if established else "False"}]}}


class FakeInformer:
    """Stands in for kube.Informer: records start/stop instead of watching."""

    events: list = []

    def __init__(self, api, rtype, version, store, on_change, resync):
        self.rtype, self.version = rtype, version
        self.synced = threading.Event()
        self.synced.set()

    def start(self):
        FakeInformer.events.append(("start", self.rtype.crd_name, self.version))

    def stop(self):
        FakeInformer.events.append(("stop", self.rtype.crd_name, self.version))


@pytest.fixture
def sim(monkeypatch):
    FakeInformer.events = []
    monkeypatch.setattr(runner, "Informer", FakeInformer)
    return runner.Simulator(api=None, settings=SETTINGS)


def test_simulator_watches_a_kind_only_while_its_crd_is_established(sim):
    sim._sync_custom_informers(Cluster.from_objects([crd(model.POOL_V1, established=False)]))
    assert FakeInformer.events == []  # absent or not yet Established: tolerated, nothing watched

    sim._sync_custom_informers(Cluster.from_objects([crd(model.POOL_V1)]))
    assert FakeInformer.events == [("start", "inferencepools.inference.networking.k8s.io", "v1")]
    sim.store.put(model.POOL_V1, pool_v1())

    sim._sync_custom_informers(Cluster.from_objects([crd(model.POOL_V1)]))
    assert len(FakeInformer.events) == 1  # unchanged CRD: the informer keeps running

    sim._sync_custom_informers(Cluster.from_objects([]))
    assert FakeInformer.events[-1] == ("stop", "inferencepools.inference.networking.k8s.io", "v1")
    assert sim.store.snapshot().all(model.POOL_V1) == []  # its objects are forgotten


def test_simulator_patches_status_only_when_it_changes_and_never_loops(sim, monkeypatch):
    calls = []
    server_status = {}

    def fake_request(api, method, path, *, body=None, content_type=None, **kw):
        calls.append((method, path, content_type, body))
        obj = copy.deepcopy(hcp)
        obj["metadata"]["resourceVersion"] = str(len(calls) + 1)
        obj["status"] = server_status or body["status"]
        return obj

    monkeypatch.setattr(runner, "request", fake_request)
    monkeypatch.setattr(runner.time, "time", lambda: T0)  # identical timestamps in every pass
    hcp = policy("HealthCheckPolicy", "hc", {"group": "", "kind": "Service", "name": "svc"})
    sim._sync_custom_informers(Cluster.from_objects([crd(model.HEALTH_CHECK_POLICY)]))
    sim.store.put(model.HEALTH_CHECK_POLICY, hcp)

    sim.reconcile()
    ((method, path, content_type, body),) = calls
    assert (method, content_type) == ("PATCH", "application/merge-patch+json")
    assert path == "/apis/networking.gke.io/v1/namespaces/gemma/healthcheckpolicies/hc/status"
    assert body["metadata"] == {"resourceVersion": "1"}  # optimistic concurrency
    assert cond(body["status"]["conditions"], "Attached")["reason"] == "TargetNotFound"

    sim.reconcile()  # the stored status now matches: nothing to write
    assert len(calls) == 1

    sim.store.put(model.SERVICE, service())
    sim.reconcile()  # the target appeared: one more patch
    assert cond(calls[-1][3]["status"]["conditions"], "Attached")["status"] == "True"

    # A server that stores something else than what was sent must not cause a patch loop.
    server_status.update({"conditions": []})
    sim.store.put(model.HEALTH_CHECK_POLICY, dict(copy.deepcopy(hcp), status={}))
    sim.reconcile()
    sim.reconcile()
    sim.reconcile()
    assert len(calls) == 3
