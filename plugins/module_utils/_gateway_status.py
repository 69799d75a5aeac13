# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure readiness predicates over Gateway API, InferencePool and GKE policy objects.

Everything here works on plain ``dict`` objects as returned by the Kubernetes API
(``ResourceInstance.to_dict()`` or a watch event's ``raw_object``). There is no I/O,
no clock and no Kubernetes client: the functions are unit-tested on recorded status
documents. Private to this collection (leading underscore); no stability promise.

Where status lives (see the GKE status notes):

* Gateway: ``status.conditions`` (Accepted, Programmed; each carrying ``observedGeneration``)
  and ``status.addresses``; listeners in ``status.listeners[].conditions``.
* HTTPRoute: ``status.parents[]`` keyed by ``parentRef`` (+ ``controllerName``), with
  Accepted, ResolvedRefs and GKE's own ``Reconciled``.
* InferencePool: ``status.parents[]`` (v1, ``inference.networking.k8s.io``) or
  ``status.parent[]`` (v1alpha2, ``inference.networking.x-k8s.io``), with placeholder
  entries (``kind: Status, name: default`` or an empty parentRef) to ignore.
* GKE policies: ``status.conditions[]`` with ``Attached`` (HealthCheckPolicy,
  GCPBackendPolicy, GCPGatewayPolicy, ...) and/or Gateway API ``status.ancestors[]``
  with ``Accepted`` (GCPRoutingExtension, GCPTrafficExtension, GCPBackendPolicy).
"""

from __future__ import annotations

GATEWAY_GROUP = "gateway.networking.k8s.io"
INFERENCE_GROUP = "inference.networking.k8s.io"
INFERENCE_ALPHA_GROUP = "inference.networking.x-k8s.io"
INFERENCE_GROUPS = (INFERENCE_GROUP, INFERENCE_ALPHA_GROUP)
GKE_NETWORKING_GROUP = "networking.gke.io"

# GKE policy kinds whose status we understand, in networking.gke.io.
GKE_POLICY_KINDS = (
    "HealthCheckPolicy",
    "GCPBackendPolicy",
    "GCPGatewayPolicy",
    "GCPSessionAffinityPolicy",
    "GCPRoutingExtension",
    "GCPTrafficExtension",
)

# Gate names, in evaluation order.
GATE_GATEWAY_ACCEPTED = "gateway_accepted"
GATE_GATEWAY_PROGRAMMED = "gateway_programmed"
GATE_ROUTES = "routes"
GATE_POOLS = "inference_pools"
GATE_POLICIES = "policies"
GATE_PROBES = "probes"
STATUS_GATES = (
    GATE_GATEWAY_ACCEPTED,
    GATE_GATEWAY_PROGRAMMED,
    GATE_ROUTES,
    GATE_POOLS,
    GATE_POLICIES,
)

STATE_PASSED = "passed"
STATE_BLOCKED = "blocked"
STATE_NOT_APPLICABLE = "not_applicable"


# --------------------------------------------------------------------------- result types


class Blocker(object):
    """One object/condition that keeps a gate closed."""

    __slots__ = ("kind", "namespace", "name", "scope", "condition", "status", "reason", "message", "detail")

    def __init__(self, kind, namespace, name, scope=None, condition=None, status=None,
                 reason=None, message=None, detail=None):
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.scope = scope
        self.condition = condition
        self.status = status
        self.reason = reason
        self.message = message
        self.detail = detail

    def __str__(self):
        return format_blocker(self.kind, self.namespace, self.name, scope=self.scope,
                              condition=self.condition, status=self.status, reason=self.reason,
                              message=self.message, detail=self.detail)

    __repr__ = __str__

    def to_dict(self):
        d = dict((k, getattr(self, k)) for k in self.__slots__)
        d["text"] = str(self)
        return d


class GateResult(object):
    """Outcome of one gate: ``ready`` plus the blockers that explain why not.

    ``applicable`` is False when there is nothing to wait on (no routes, no
    InferencePool referenced or no InferencePool CRD served, no policies...);
    such a gate counts as passed.
    """

    __slots__ = ("ready", "blockers", "applicable", "notes")

    def __init__(self, ready, blockers=None, applicable=True, notes=None):
        self.ready = bool(ready)
        self.blockers = list(blockers or [])
        self.applicable = applicable
        self.notes = list(notes or [])

    def __bool__(self):
        return self.ready

    __nonzero__ = __bool__

    @property
    def state(self):
        if not self.applicable:
            return STATE_NOT_APPLICABLE
        return STATE_PASSED if self.ready else STATE_BLOCKED

    def to_dict(self):
        return {
            "ready": self.ready,
            "state": self.state,
            "blockers": [str(b) for b in self.blockers],
            "notes": list(self.notes),
        }

    @classmethod
    def combine(cls, results, applicable=None):
        results = list(results)
        blockers = []
        notes = []
        for r in results:
            blockers.extend(r.blockers)
            notes.extend(r.notes)
        if applicable is None:
            applicable = any(r.applicable for r in results) if results else False
        ready = all(r.ready for r in results)
        return cls(ready, blockers, applicable=applicable, notes=notes)


def format_blocker(kind, namespace, name, scope=None, condition=None, status=None, reason=None,
                   message=None, detail=None):
    """Render one blocker as a single line.

    ``HTTPRoute gemma/bbr-gemma3-1b parent vllm-xlb: ResolvedRefs=False BackendNotFound: service "x" not found``
    """
    head = "%s %s/%s" % (kind, namespace, name) if namespace else "%s %s" % (kind, name)
    if scope:
        head += " " + scope
    if condition and status is not None:
        text = "%s=%s" % (condition, status)
        if reason:
            text += " " + reason
        if message:
            text += ": " + _one_line(message)
        if detail:
            text += " (%s)" % detail
    elif condition:
        text = "%s %s" % (condition, detail or "condition not reported yet")
    else:
        text = detail or "not ready"
    return "%s: %s" % (head, text)


def _one_line(text):
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- small helpers


def _meta(obj):
    return (obj or {}).get("metadata") or {}


def _status(obj):
    return (obj or {}).get("status") or {}


def _spec(obj):
    return (obj or {}).get("spec") or {}


def obj_key(obj):
    m = _meta(obj)
    return m.get("namespace"), m.get("name")


def generation(obj):
    return _meta(obj).get("generation")


def find_condition(conditions, ctype):
    for cond in conditions or []:
        if cond.get("type") == ctype:
            return cond
    return None


def condition_view(cond):
    """The fields of a condition worth returning to the user."""
    return {
        "status": cond.get("status"),
        "reason": cond.get("reason"),
        "message": cond.get("message") or "",
        "observedGeneration": cond.get("observedGeneration"),
        "lastTransitionTime": cond.get("lastTransitionTime"),
    }


def conditions_view(conditions):
    return dict((c.get("type"), condition_view(c)) for c in conditions or [] if c.get("type"))


def check_condition(kind, namespace, name, conditions, ctype, obj_generation=None, scope=None,
                    expect="True", strict_generation=False, allow_missing=False):
    """Return a :class:`Blocker` if condition ``ctype`` is not ``expect`` and fresh, else None.

    Freshness: a condition whose ``observedGeneration`` is lower than the object's
    ``metadata.generation`` describes an older spec (the controller has not caught up).
    With ``strict_generation`` an absent ``observedGeneration`` also blocks (the Gateway
    API requires it on Gateway conditions; the CRD defaults carry none).
    """
    cond = find_condition(conditions, ctype)
    if cond is None:
        if allow_missing:
            return None
        return Blocker(kind, namespace, name, scope=scope, condition=ctype,
                       detail="condition not reported yet")
    status = cond.get("status")
    if status != expect:
        return Blocker(kind, namespace, name, scope=scope, condition=ctype, status=status,
                       reason=cond.get("reason"), message=cond.get("message"))
    if obj_generation:
        observed = cond.get("observedGeneration")
        if observed is None or observed == 0:
            if strict_generation:
                return Blocker(kind, namespace, name, scope=scope, condition=ctype, status=status,
                               reason=cond.get("reason"),
                               detail="observedGeneration not set; generation %s not observed yet" % obj_generation)
        elif observed < obj_generation:
            return Blocker(kind, namespace, name, scope=scope, condition=ctype, status=status,
                           reason=cond.get("reason"),
                           detail="stale: observedGeneration %s < metadata.generation %s" % (observed, obj_generation))
    return None


def make_gateway_ref(namespace, name):
    return {"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": namespace, "name": name}


def _group_of_api_version(api_version):
    if not api_version or "/" not in api_version:
        return ""
    return api_version.split("/", 1)[0]


def _norm_group(group):
    return "" if group in (None, "core") else group


def ref_label(gateway_ref, from_namespace=None):
    """``vllm-xlb`` when seen from the Gateway's namespace, else ``gw-ns/vllm-xlb``."""
    if from_namespace and gateway_ref.get("namespace") == from_namespace:
        return gateway_ref["name"]
    return "%s/%s" % (gateway_ref.get("namespace"), gateway_ref["name"])


# --------------------------------------------------------------------------- Gateway


def gateway_addresses(gw):
    return [a.get("value") for a in _status(gw).get("addresses") or [] if a.get("value")]


def gateway_accepted_gate(gw, gateway_ref=None):
    if not gw:
        ref = gateway_ref or {}
        return GateResult(False, [Blocker("Gateway", ref.get("namespace"), ref.get("name"), detail="not found")])
    ns, name = obj_key(gw)
    b = check_condition("Gateway", ns, name, _status(gw).get("conditions"), "Accepted",
                        generation(gw), strict_generation=True)
    return GateResult(b is None, [b] if b else [])


def _listener_blockers(gw, skip_message=None):
    """Failing listener conditions (a listener Programmed repeating ``skip_message`` is left out)."""
    ns, name = obj_key(gw)
    out = []
    for listener in _status(gw).get("listeners") or []:
        lname = listener.get("name")
        for cond in listener.get("conditions") or []:
            ctype = cond.get("type")
            positive = ctype in ("Accepted", "Programmed", "ResolvedRefs")
            negative = ctype in ("Conflicted",)
            if ctype == "Programmed" and skip_message and _one_line(cond.get("message") or "") == _one_line(skip_message):
                continue
            if (positive and cond.get("status") == "False") or (negative and cond.get("status") == "True"):
                out.append(Blocker("Gateway", ns, name, scope="listener %s" % lname, condition=ctype,
                                   status=cond.get("status"), reason=cond.get("reason"),
                                   message=cond.get("message")))
    return out


def gateway_programmed_gate(gw, gateway_ref=None):
    """Programmed=True at the current generation, and at least one address."""
    if not gw:
        ref = gateway_ref or {}
        return GateResult(False, [Blocker("Gateway", ref.get("namespace"), ref.get("name"), detail="not found")])
    ns, name = obj_key(gw)
    blockers = []
    b = check_condition("Gateway", ns, name, _status(gw).get("conditions"), "Programmed",
                        generation(gw), strict_generation=True)
    if b:
        blockers.append(b)
        # Listener failures explain a Programmed=False; they are reported, not gated on.
        blockers.extend(_listener_blockers(gw, skip_message=b.message))
    if not gateway_addresses(gw):
        blockers.append(Blocker("Gateway", ns, name, detail="no address in status.addresses yet"))
    return GateResult(not blockers, blockers)


def gateway_gate(gw, gateway_ref=None):
    """Accepted and Programmed at ``metadata.generation``, with at least one address."""
    return GateResult.combine([gateway_accepted_gate(gw, gateway_ref), gateway_programmed_gate(gw, gateway_ref)])


def gateway_details(gw, gateway_ref=None):
    if not gw:
        ref = gateway_ref or {}
        return {"namespace": ref.get("namespace"), "name": ref.get("name"), "found": False}
    ns, name = obj_key(gw)
    st = _status(gw)
    return {
        "namespace": ns,
        "name": name,
        "found": True,
        "generation": generation(gw),
        "gateway_class": _spec(gw).get("gatewayClassName"),
        "addresses": list(st.get("addresses") or []),
        "conditions": conditions_view(st.get("conditions")),
        "listeners": [
            {
                "name": li.get("name"),
                "attached_routes": li.get("attachedRoutes"),
                "conditions": conditions_view(li.get("conditions")),
            }
            for li in st.get("listeners") or []
        ],
    }


# --------------------------------------------------------------------------- HTTPRoute


def parent_ref_matches(ref, gateway_ref, default_namespace):
    """Does a route ``parentRef`` (spec or status) name this Gateway?"""
    if not ref:
        return False
    group = ref.get("group", GATEWAY_GROUP)
    kind = ref.get("kind") or "Gateway"
    namespace = ref.get("namespace") or default_namespace
    return (
        group == GATEWAY_GROUP
        and kind == "Gateway"
        and ref.get("name") == gateway_ref["name"]
        and namespace == gateway_ref["namespace"]
    )


def route_parent_refs_for(route, gateway_ref):
    ns = _meta(route).get("namespace")
    return [r for r in _spec(route).get("parentRefs") or [] if parent_ref_matches(r, gateway_ref, ns)]


def route_references_gateway(route, gateway_ref):
    return bool(route_parent_refs_for(route, gateway_ref))


def _same_section(spec_ref, status_ref):
    return (spec_ref.get("sectionName") == status_ref.get("sectionName")
            and spec_ref.get("port") == status_ref.get("port"))


def _parent_scope(gateway_ref, route_ns, spec_ref=None):
    scope = "parent " + ref_label(gateway_ref, route_ns)
    if spec_ref and spec_ref.get("sectionName"):
        scope += " section %s" % spec_ref["sectionName"]
    if spec_ref and spec_ref.get("port"):
        scope += " port %s" % spec_ref["port"]
    return scope


def _route_entry_blockers(route, entry, scope):
    ns, name = obj_key(route)
    gen = generation(route)
    conds = entry.get("conditions")
    blockers = []
    for ctype in ("Accepted", "ResolvedRefs"):
        b = check_condition("HTTPRoute", ns, name, conds, ctype, gen, scope=scope)
        if b:
            blockers.append(b)
    # GKE-specific: Reconciled=False/ReconciliationFailed (e.g. missing EPP Service). It repeats the
    # Accepted/ResolvedRefs problem when there is one, so it only counts on its own.
    rec = find_condition(conds, "Reconciled")
    if rec is not None and rec.get("status") == "False" and not blockers:
        blockers.append(Blocker("HTTPRoute", ns, name, scope=scope, condition="Reconciled",
                                status="False", reason=rec.get("reason"), message=rec.get("message")))
    return blockers


def route_parent_gate(route, gateway_ref):
    """Every ``parentRef`` of this route that names the Gateway is Accepted and ResolvedRefs."""
    if not route:
        return GateResult(False, [Blocker("HTTPRoute", None, "?", detail="not found")])
    ns, name = obj_key(route)
    refs = route_parent_refs_for(route, gateway_ref)
    if not refs:
        return GateResult(False, [Blocker(
            "HTTPRoute", ns, name,
            detail="spec.parentRefs does not reference Gateway %s/%s" % (gateway_ref["namespace"], gateway_ref["name"]))])
    entries = [p for p in _status(route).get("parents") or []
               if parent_ref_matches(p.get("parentRef"), gateway_ref, ns)]
    blockers = []
    for spec_ref in refs:
        scope = _parent_scope(gateway_ref, ns, spec_ref)
        candidates = [e for e in entries if _same_section(spec_ref, e.get("parentRef") or {})]
        if not candidates:
            blockers.append(Blocker("HTTPRoute", ns, name, scope=scope,
                                    detail="no status.parents entry for this parent yet"))
            continue
        per_entry = [_route_entry_blockers(route, e, scope) for e in candidates]
        if any(not b for b in per_entry):
            continue  # one controller entry is fully happy
        for b in per_entry:
            blockers.extend(b)
    return GateResult(not blockers, blockers)


def route_backend_refs(route):
    """Normalised ``spec.rules[].backendRefs[]``: group, kind, namespace, name, port."""
    ns = _meta(route).get("namespace")
    out = []
    for rule in _spec(route).get("rules") or []:
        for br in rule.get("backendRefs") or []:
            out.append({
                "group": _norm_group(br.get("group")),
                "kind": br.get("kind") or "Service",
                "namespace": br.get("namespace") or ns,
                "name": br.get("name"),
                "port": br.get("port"),
            })
    return out


def is_inference_pool_ref(ref):
    return ref.get("kind") == "InferencePool" and ref.get("group") in INFERENCE_GROUPS


def route_details(route, gateway_ref):
    ns, name = obj_key(route)
    entries = [p for p in _status(route).get("parents") or []
               if parent_ref_matches(p.get("parentRef"), gateway_ref, ns)]
    return {
        "namespace": ns,
        "name": name,
        "generation": generation(route),
        "hostnames": list(_spec(route).get("hostnames") or []),
        "parents": [
            {
                "parentRef": e.get("parentRef"),
                "controllerName": e.get("controllerName"),
                "conditions": conditions_view(e.get("conditions")),
            }
            for e in entries
        ],
        "backends": route_backend_refs(route),
    }


# --------------------------------------------------------------------------- InferencePool


def _pool_parent_entries(pool):
    st = _status(pool)
    entries = st.get("parents")
    if entries is None:
        entries = st.get("parent")  # v1alpha2 (GIE <= v0.5) spelling
    out = []
    for e in entries or []:
        ref = e.get("parentRef") or {}
        if not ref or not ref.get("name"):
            continue  # empty placeholder seen on v0.4-era pools
        if ref.get("kind") == "Status" and ref.get("name") == "default":
            continue  # v0.5 CRD default "Waiting for controller" placeholder
        out.append(e)
    return out


def pool_parent_matches(ref, gateway_ref, pool_namespace):
    kind = ref.get("kind") or "Gateway"
    group = ref.get("group")
    if group is None and ref.get("apiVersion"):  # v0.4 ObjectReference
        group = _group_of_api_version(ref.get("apiVersion"))
    return (
        kind == "Gateway"
        and group in (None, "", GATEWAY_GROUP)
        and ref.get("name") == gateway_ref["name"]
        and (ref.get("namespace") or pool_namespace) == gateway_ref["namespace"]
    )


def pool_gate(pool, gateway_ref):
    """The pool's parent entry for this Gateway is Accepted (and ResolvedRefs, when reported)."""
    if not pool:
        return GateResult(False, [Blocker("InferencePool", None, "?", detail="not found")])
    ns, name = obj_key(pool)
    scope = "parent " + ref_label(gateway_ref, ns)
    entries = [e for e in _pool_parent_entries(pool)
               if pool_parent_matches(e.get("parentRef") or {}, gateway_ref, ns)]
    if not entries:
        return GateResult(False, [Blocker("InferencePool", ns, name, scope=scope,
                                          detail="no status parent entry for this Gateway yet")])
    gen = generation(pool)
    per_entry = []
    for e in entries:
        conds = e.get("conditions")
        bl = []
        b = check_condition("InferencePool", ns, name, conds, "Accepted", gen, scope=scope)
        if b:
            bl.append(b)
        b = check_condition("InferencePool", ns, name, conds, "ResolvedRefs", gen, scope=scope,
                            allow_missing=True)
        if b:
            bl.append(b)
        if not bl:
            return GateResult(True)
        per_entry.append(bl)
    return GateResult(False, [b for bl in per_entry for b in bl])


def pool_details(pool, gateway_ref, group=None):
    ns, name = obj_key(pool)
    entries = [e for e in _pool_parent_entries(pool)
               if pool_parent_matches(e.get("parentRef") or {}, gateway_ref, ns)]
    return {
        "namespace": ns,
        "name": name,
        "api_version": (pool or {}).get("apiVersion"),
        "group": group or _group_of_api_version((pool or {}).get("apiVersion")),
        "generation": generation(pool),
        "parents": [
            {
                "parentRef": e.get("parentRef"),
                "controllerName": e.get("controllerName"),
                "conditions": conditions_view(e.get("conditions")),
            }
            for e in entries
        ],
    }


# --------------------------------------------------------------------------- GKE policies


def policy_target_refs(policy):
    """Normalised targets of a policy: (group, kind, namespace, name) tuples."""
    ns = _meta(policy).get("namespace")
    spec = _spec(policy)
    refs = []
    if spec.get("targetRef"):
        refs.append(spec["targetRef"])
    refs.extend(spec.get("targetRefs") or [])
    out = []
    for r in refs:
        out.append((_norm_group(r.get("group")), r.get("kind"), r.get("namespace") or ns, r.get("name")))
    return out


def policy_targets_any(policy, targets):
    wanted = set(targets)
    return any(t in wanted for t in policy_target_refs(policy))


def _ancestor_matches(ref, gateway_ref, policy_ns):
    if not ref:
        return False
    kind = ref.get("kind") or "Gateway"
    group = ref.get("group", GATEWAY_GROUP)
    return (kind == "Gateway" and group == GATEWAY_GROUP and ref.get("name") == gateway_ref["name"]
            and (ref.get("namespace") or policy_ns) == gateway_ref["namespace"])


def policy_gate(policy, gateway_ref=None):
    """GKE policy status: ``Attached=True`` and/or ``ancestors[]`` Accepted for the Gateway.

    * ``status.conditions[type=Attached]`` (HealthCheckPolicy, GCPBackendPolicy,
      GCPGatewayPolicy...) must be True when present.
    * ``status.ancestors[]`` entries for this Gateway (GCPRoutingExtension,
      GCPTrafficExtension, GCPBackendPolicy) must be ``Accepted=True`` and, when
      reported, ``ResolvedRefs=True``. Without ``gateway_ref`` every ancestor counts.
    * With neither, the controller has not written status yet: blocked.
    """
    kind = (policy or {}).get("kind") or "Policy"
    ns, name = obj_key(policy)
    st = _status(policy)
    gen = generation(policy)
    blockers = []
    attached = find_condition(st.get("conditions"), "Attached")
    if attached is not None:
        b = check_condition(kind, ns, name, st.get("conditions"), "Attached", gen)
        if b:
            blockers.append(b)
    ancestors = st.get("ancestors") or []
    if gateway_ref is not None:
        ancestors = [a for a in ancestors if _ancestor_matches(a.get("ancestorRef"), gateway_ref, ns)]
    for a in ancestors:
        ref = a.get("ancestorRef") or {}
        scope = "ancestor %s" % (ref_label(gateway_ref, ns) if gateway_ref else ref.get("name"))
        for ctype, allow_missing in (("Accepted", False), ("ResolvedRefs", True)):
            b = check_condition(kind, ns, name, a.get("conditions"), ctype, gen, scope=scope,
                                allow_missing=allow_missing)
            if b:
                blockers.append(b)
    if attached is None and not ancestors:
        detail = "no status from the controller yet"
        if gateway_ref is not None and st.get("ancestors"):
            detail = "no status.ancestors entry for Gateway %s/%s yet" % (gateway_ref["namespace"], gateway_ref["name"])
        blockers.append(Blocker(kind, ns, name, condition="Attached", detail=detail))
    return GateResult(not blockers, blockers)


def policy_details(policy, gateway_ref=None):
    ns, name = obj_key(policy)
    st = _status(policy)
    ancestors = st.get("ancestors") or []
    if gateway_ref is not None:
        ancestors = [a for a in ancestors if _ancestor_matches(a.get("ancestorRef"), gateway_ref, ns)]
    return {
        "kind": (policy or {}).get("kind"),
        "namespace": ns,
        "name": name,
        "generation": generation(policy),
        "targets": [
            {"group": g, "kind": k, "namespace": n, "name": nm} for (g, k, n, nm) in policy_target_refs(policy)
        ],
        "conditions": conditions_view(st.get("conditions")),
        "ancestors": [
            {
                "ancestorRef": a.get("ancestorRef"),
                "controllerName": a.get("controllerName"),
                "conditions": conditions_view(a.get("conditions")),
            }
            for a in ancestors
        ],
    }


# --------------------------------------------------------------------------- whole report


def evaluate(gateway, gateway_ref, routes, pools=None, policies=None, explicit_routes=None,
             routes_served=True, pool_groups_served=None, check_pools=True, check_policies=True):
    """Evaluate every status gate from a snapshot of objects.

    :arg gateway: the Gateway object or None.
    :arg gateway_ref: :func:`make_gateway_ref` of the Gateway waited on.
    :arg routes: candidate HTTPRoute objects (those of the watched namespaces).
    :arg pools: mapping ``(group, namespace, name) -> InferencePool object``.
    :arg policies: GKE policy objects (any kind) of the watched namespaces.
    :arg explicit_routes: list of ``(namespace, name)``; when given only these routes
        are gated (and each must reference the Gateway), otherwise every candidate
        route whose ``parentRefs`` name the Gateway is.
    :arg routes_served: False when the HTTPRoute API is not served.
    :arg pool_groups_served: InferencePool API groups served by the cluster.
    :returns: dict with ``gates`` (name -> :class:`GateResult`), per-object details,
        ``address``/``addresses`` and ``needs`` (namespaces whose pools/policies must
        be watched for a complete answer).
    """
    pools = pools or {}
    policies = policies or []
    pool_groups_served = set(pool_groups_served or ())
    gates = {}
    gates[GATE_GATEWAY_ACCEPTED] = gateway_accepted_gate(gateway, gateway_ref)
    gates[GATE_GATEWAY_PROGRAMMED] = gateway_programmed_gate(gateway, gateway_ref)

    # ---- routes
    route_index = dict((obj_key(r), r) for r in routes or [])
    selected = []  # (namespace, name, obj or None)
    if explicit_routes:
        for key in explicit_routes:
            selected.append((key[0], key[1], route_index.get(tuple(key))))
    else:
        for key in sorted(k for k, r in route_index.items() if route_references_gateway(r, gateway_ref)):
            selected.append((key[0], key[1], route_index[key]))
    route_results = []
    route_details_list = []
    for ns, name, route in selected:
        if route is None:
            route_results.append(GateResult(False, [Blocker("HTTPRoute", ns, name, detail="not found")]))
            route_details_list.append({"namespace": ns, "name": name, "found": False})
            continue
        route_results.append(route_parent_gate(route, gateway_ref))
        d = route_details(route, gateway_ref)
        d["found"] = True
        d["ready"] = route_results[-1].ready
        route_details_list.append(d)
    route_notes = []
    if not routes_served:
        route_notes.append("HTTPRoute API (%s) is not served by the cluster" % GATEWAY_GROUP)
    elif not selected:
        route_notes.append("no HTTPRoute references Gateway %s/%s" % (gateway_ref["namespace"], gateway_ref["name"]))
    if route_results:
        gates[GATE_ROUTES] = GateResult.combine(route_results, applicable=True)
        gates[GATE_ROUTES].notes.extend(route_notes)
    else:
        gates[GATE_ROUTES] = GateResult(True, applicable=False, notes=route_notes)

    # ---- backends of the gated routes
    attached_routes = [r for (_ns, _n, r) in selected if r is not None]
    backend_refs = []
    for r in attached_routes:
        for br in route_backend_refs(r):
            if br not in backend_refs:
                backend_refs.append(br)
    pool_refs = []
    for br in backend_refs:
        if is_inference_pool_ref(br):
            key = (br["group"], br["namespace"], br["name"])
            if key not in pool_refs:
                pool_refs.append(key)

    # ---- inference pools
    pool_results = []
    pool_details_list = []
    pool_notes = []
    needs_pools = {}
    if check_pools:
        for group, ns, name in pool_refs:
            if group not in pool_groups_served:
                pool_notes.append("InferencePool %s/%s: API group %s is not served by the cluster; pool gate not applicable"
                                  % (ns, name, group))
                pool_details_list.append({"namespace": ns, "name": name, "group": group, "found": False,
                                          "served": False})
                continue
            needs_pools.setdefault(group, set()).add(ns)
            pool = pools.get((group, ns, name))
            if pool is None:
                pool_results.append(GateResult(False, [Blocker("InferencePool", ns, name, detail="not found (%s)" % group)]))
                pool_details_list.append({"namespace": ns, "name": name, "group": group, "found": False, "served": True})
                continue
            res = pool_gate(pool, gateway_ref)
            pool_results.append(res)
            d = pool_details(pool, gateway_ref, group)
            d.update(found=True, served=True, ready=res.ready)
            pool_details_list.append(d)
        if not pool_refs:
            pool_notes.append("no InferencePool backends referenced by the gated routes")
    else:
        pool_notes.append("InferencePool checks disabled")
    if pool_results:
        gates[GATE_POOLS] = GateResult.combine(pool_results, applicable=True)
        gates[GATE_POOLS].notes.extend(pool_notes)
    else:
        gates[GATE_POOLS] = GateResult(True, applicable=False, notes=pool_notes)

    # ---- GKE policies targeting the Gateway, its routes, or their backends
    targets = set()
    targets.add((GATEWAY_GROUP, "Gateway", gateway_ref["namespace"], gateway_ref["name"]))
    for r in attached_routes:
        ns, name = obj_key(r)
        targets.add((GATEWAY_GROUP, "HTTPRoute", ns, name))
    for br in backend_refs:
        targets.add((br["group"], br["kind"], br["namespace"], br["name"]))
    policy_namespaces = set([gateway_ref["namespace"]])
    policy_namespaces.update(t[2] for t in targets if t[2])
    policy_results = []
    policy_details_list = []
    if check_policies:
        for pol in sorted(policies, key=lambda p: ((p.get("kind") or ""),) + tuple(x or "" for x in obj_key(p))):
            if not policy_targets_any(pol, targets):
                continue
            res = policy_gate(pol, gateway_ref)
            policy_results.append(res)
            d = policy_details(pol, gateway_ref)
            d["ready"] = res.ready
            policy_details_list.append(d)
    if policy_results:
        gates[GATE_POLICIES] = GateResult.combine(policy_results, applicable=True)
    else:
        gates[GATE_POLICIES] = GateResult(True, applicable=False, notes=[
            "GKE policy checks disabled" if not check_policies else "no GKE policy targets the Gateway, its routes or their backends"])

    addresses = gateway_addresses(gateway)
    return {
        "gates": gates,
        "gateway": gateway_details(gateway, gateway_ref),
        "address": addresses[0] if addresses else None,
        "addresses": addresses,
        "routes": route_details_list,
        "inference_pools": pool_details_list,
        "policies": policy_details_list,
        "needs": {
            "pools": dict((g, sorted(v)) for g, v in needs_pools.items()),
            "policy_namespaces": sorted(policy_namespaces) if check_policies else [],
        },
    }


def blockers_of(gates, names=None):
    """Flat list of blocker strings of the gates that are not ready (in gate order)."""
    out = []
    for name, gate in gates.items():
        if names is not None and name not in names:
            continue
        if gate.applicable and not gate.ready:
            out.extend(str(b) for b in gate.blockers)
    return out


# --------------------------------------------------------------------------- timing


class GateTracker(object):
    """Records when each gate passed (seconds since ``start``) and a human wait log.

    Time is passed in, so this stays pure and testable.
    """

    def __init__(self, start):
        self.start = start
        self.states = {}
        self.log = []
        self._last_blocker = {}

    def _line(self, now, text):
        line = "+%.1fs %s" % (max(0.0, now - self.start), text)
        self.log.append(line)
        return line

    def update(self, gates, now):
        """Feed the current gate results; returns the new log lines."""
        new = []
        for name, gate in gates.items():
            state = gate.state
            prev = self.states.get(name)
            first = str(gate.blockers[0]) if gate.blockers else None
            if prev is None or prev["state"] != state:
                rec = {"state": state, "seconds": None}
                if state == STATE_PASSED:
                    rec["seconds"] = round(now - self.start, 3)
                    new.append(self._line(now, "gate %s passed" % name))
                elif state == STATE_NOT_APPLICABLE:
                    rec["seconds"] = round(now - self.start, 3)
                    note = ("; ".join(gate.notes)) if gate.notes else "nothing to check"
                    new.append(self._line(now, "gate %s not applicable: %s" % (name, note)))
                elif prev is not None and prev["state"] == STATE_PASSED:
                    new.append(self._line(now, "gate %s regressed: %s" % (name, first)))
                else:
                    extra = " (+%d more)" % (len(gate.blockers) - 1) if len(gate.blockers) > 1 else ""
                    new.append(self._line(now, "waiting on %s: %s%s" % (name, first, extra)))
                self.states[name] = rec
                self._last_blocker[name] = first
            elif state == STATE_BLOCKED and first != self._last_blocker.get(name):
                extra = " (+%d more)" % (len(gate.blockers) - 1) if len(gate.blockers) > 1 else ""
                new.append(self._line(now, "still waiting on %s: %s%s" % (name, first, extra)))
                self._last_blocker[name] = first
        return new

    def note(self, now, text):
        return self._line(now, text)

    def summary(self):
        return dict((name, dict(rec)) for name, rec in self.states.items())
