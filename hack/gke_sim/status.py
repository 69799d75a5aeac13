"""Desired status of every object GKE's gateway controller manages, computed from a cluster snapshot.

Everything here is a pure function of (Cluster, now, seen_at, Settings): no I/O, no clock reads.
The whole cluster is recomputed on every change, so dependencies (a Service created after the
route that needs it, a policy target appearing, a Gateway spec edit) need no bookkeeping.

What GKE writes is taken from shared/reference/notes/gke-gateway-status.md: condition types,
reasons and the GWCER-style messages. Where the note marks behaviour as inferred, the choice
made here is documented at the function that implements it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping

from .matching import (listener_allows_kind, listener_allows_namespace, reference_permitted,
                       route_matches_listener_hostname)
from .model import (ANN_NEVER_PROGRAM, ANN_PROGRAM_DELAY, ANN_RECONCILE_ERROR, ATTACHED_POLICY_TYPES,
                    BACKEND_POLICY, CONTROLLER_NAME, EXTENSION_TYPES, GATEWAY, GATEWAY_CLASS, GATEWAY_GROUP,
                    GATEWAY_POLICY, HEALTH_CHECK_POLICY, HTTPROUTE, POOL_GROUP_V1, POOL_GROUP_X, POOL_TYPES,
                    POOL_V1, POOL_X, ROUTING_EXTENSION, SECRET, SERVICE, TRAFFIC_EXTENSION, Cluster, Key,
                    ResourceType, annotations, condition, creation_order, find_condition, generation, ignored,
                    key_of, merge_conditions, split_reason)

# Classes that serve InferencePool backends and GCPRoutingExtension (GKE docs: the regional ALBs only);
# GCPTrafficExtension also works on the global external managed ALB. Not in GKE's docs for the classic
# gke-l7-gxlb, so rejected there.
POOL_CLASSES = frozenset({"gke-l7-regional-external-managed", "gke-l7-rilb"})
EXTENSION_CLASSES = {
    ROUTING_EXTENSION: POOL_CLASSES,
    TRAFFIC_EXTENSION: POOL_CLASSES | {"gke-l7-global-external-managed"},
}
# spec.addresses types per class; gke-l7-rilb only takes NamedAddress (GWCER106 in the note).
ADDRESS_TYPES = {"gke-l7-rilb": ("NamedAddress",)}
DEFAULT_ADDRESS_TYPES = ("IPAddress", "NamedAddress")

HTTPROUTE_KIND = {"group": GATEWAY_GROUP, "kind": "HTTPRoute"}
SCHEDULED_MESSAGE = "The OSS Gateway API has deprecated this condition, do not depend on it."
READY_MESSAGE = ('The OSS Gateway API has altered the "Ready" condition semantics and reserved it for future use.  '
                 'GKE Gateway will stop emitting it in a future update, use "Programmed" instead.')
HEALTHY = "networking.gke.io/GatewayHealthy"
PENDING_PROGRAMMED = condition("Programmed", "Unknown", "Pending", "Waiting for controller")


@dataclasses.dataclass(frozen=True)
class Settings:
    program_delay: float = 2.0
    address_base: str = "127.0.0."


@dataclasses.dataclass(frozen=True)
class Desired:
    """The status keys this controller owns for one object, with their complete desired values."""

    rtype: ResourceType
    obj: dict
    status: dict


@dataclasses.dataclass(frozen=True)
class Plan:
    desired: list[Desired]
    wake_at: float | None  # when a delayed change (Gateway programming) becomes due


def generation_key(obj: Mapping) -> tuple[str, int]:
    """Identifies one generation of one object: the runner records when it first saw it."""
    meta = obj["metadata"]
    return meta.get("uid") or f"{meta.get('namespace', '')}/{meta['name']}", generation(obj)


# --------------------------------------------------------------------------- GatewayClass / Gateway

def gke_classes(cluster: Cluster) -> dict[str, dict]:
    return {gc["metadata"]["name"]: gc for gc in cluster.all(GATEWAY_CLASS)
            if (gc.get("spec") or {}).get("controllerName") == CONTROLLER_NAME and not ignored(gc)}


def managed_gateway(cluster: Cluster, classes: Mapping[str, dict], namespace: str, name: str) -> dict | None:
    gw = cluster.get(GATEWAY, namespace, name)
    if gw is None or ignored(gw) or gw["spec"].get("gatewayClassName") not in classes:
        return None
    return gw


def gatewayclass_status(gc: dict, now: float) -> dict:
    existing = (gc.get("status") or {}).get("conditions")
    return {"conditions": merge_conditions(existing, [condition("Accepted", True, "Accepted")], generation(gc), now)}


@dataclasses.dataclass(frozen=True)
class ListenerCheck:
    supported_kinds: list
    accepted: dict
    resolved: dict
    error: str | None  # a problem that blocks programming of the whole Gateway (GKE translates it as one)


def _address_error(gw: dict) -> str | None:
    ns, name = key_of(gw)
    allowed = ADDRESS_TYPES.get(gw["spec"]["gatewayClassName"], DEFAULT_ADDRESS_TYPES)
    for address in gw["spec"].get("addresses") or []:
        kind = address.get("type", "IPAddress")
        if kind not in allowed:
            only = " or ".join(f'"{t}"' for t in allowed)
            return (f'Error GWCER106: Gateway "{ns}/{name}" is invalid, err: unsupported address type "{kind}", '
                    f"only {only} is supported..")
    return None


def check_listener(gw: dict, listener: dict, cluster: Cluster, address_error: str | None) -> ListenerCheck:
    ns = gw["metadata"]["namespace"]
    name, protocol = listener["name"], listener["protocol"]
    if protocol not in ("HTTP", "HTTPS"):
        message = f'Error GWCER105: Listener "{name}" is invalid, err: protocol "{protocol}" is not supported.'
        return ListenerCheck([], condition("Accepted", False, "UnsupportedProtocol", message),
                             condition("ResolvedRefs", True, "ResolvedRefs"), message)

    accepted = condition("Accepted", True, "Accepted")
    if address_error:
        accepted = condition("Accepted", False, "UnsupportedAddress", address_error)
    requested = (listener.get("allowedRoutes") or {}).get("kinds") or [HTTPROUTE_KIND]
    kinds = [dict(HTTPROUTE_KIND) for k in requested
             if k.get("group", GATEWAY_GROUP) == GATEWAY_GROUP and k["kind"] == "HTTPRoute"][:1]
    resolved = condition("ResolvedRefs", True, "ResolvedRefs")
    invalid = [k["kind"] for k in requested if k.get("group", GATEWAY_GROUP) != GATEWAY_GROUP
               or k["kind"] != "HTTPRoute"]
    if invalid:
        resolved = condition("ResolvedRefs", False, "InvalidRouteKinds",
                             f"Route kinds {', '.join(invalid)} are not supported; supported: HTTPRoute")

    error = None
    for ref in ((listener.get("tls") or {}).get("certificateRefs") or []) if protocol == "HTTPS" else []:
        group, kind = ref.get("group", ""), ref.get("kind", "Secret")
        secret_ns, secret = ref.get("namespace", ns), ref["name"]
        if group != "" or kind != "Secret":
            reason = "InvalidCertificateRef"
            error = (f'Error GWCER105: Listener "{name}" is invalid, err: You specified '
                     f"{{Group: {group}, Kind: {kind}}} in the certificate reference, "
                     "{Group: , Kind: Secret} are the supported values.")
        elif not reference_permitted(cluster, from_group=GATEWAY_GROUP, from_kind="Gateway", from_namespace=ns,
                                     to_group="", to_kind="Secret", to_namespace=secret_ns, to_name=secret):
            reason = "RefNotPermitted"
            error = (f'Error GWCER105: Listener "{name}" is invalid, err: certificate reference to Secret '
                     f"{secret_ns}/{secret} is not permitted by a ReferenceGrant.")
        elif cluster.get(SECRET, secret_ns, secret) is None:
            reason = "InvalidCertificateRef"
            error = f"Error GWCER102: Secret {secret_ns}/{secret} not found."
        else:
            continue
        resolved = condition("ResolvedRefs", False, reason, error)
        break
    return ListenerCheck(kinds, accepted, resolved, error)


@dataclasses.dataclass(frozen=True)
class GatewayOutcome:
    """Where a Gateway stands in GKE's (simulated) load balancer programming."""

    due_at: float
    due: bool  # the programming result is visible
    failure: tuple[str, str] | None  # (reason, message) when programming fails
    checks: dict  # listener name -> ListenerCheck


def program_delay(gw: dict, settings: Settings) -> float:
    """The per-Gateway annotation overrides --program-delay; an unparsable value falls back to it."""
    try:
        return max(0.0, float(annotations(gw)[ANN_PROGRAM_DELAY]))
    except (KeyError, ValueError):
        return settings.program_delay


def gateway_outcome(gw: dict, cluster: Cluster, now: float, seen_at: Mapping, settings: Settings) -> GatewayOutcome:
    """Programming result of the current generation, visible `program_delay` after it was first seen.

    Failures become visible after the same delay as success, as GKE reports them from the sync that
    tries to program the load balancer. Failure precedence: the never-program annotation, then
    spec.addresses, then the first listener problem.
    """
    due_at = seen_at.get(generation_key(gw), now) + program_delay(gw, settings)
    address_error = _address_error(gw)
    checks = {lst["name"]: check_listener(gw, lst, cluster, address_error) for lst in gw["spec"].get("listeners", [])}
    failure = None
    if ANN_NEVER_PROGRAM in annotations(gw):
        failure = split_reason(annotations(gw)[ANN_NEVER_PROGRAM], "Invalid")
    elif address_error:
        failure = ("Invalid", address_error)
    else:
        failure = next((("Invalid", c.error) for c in checks.values() if c.error), None)
    return GatewayOutcome(due_at, now >= due_at, failure, checks)


def _spec_ip(gw: dict) -> str | None:
    return next((a["value"] for a in gw["spec"].get("addresses") or []
                 if a.get("type", "IPAddress") == "IPAddress" and a.get("value")), None)


def _status_ips(gw: dict) -> list[str]:
    return [a["value"] for a in (gw.get("status") or {}).get("addresses") or [] if a.get("value")]


def allocate_addresses(needing: list[dict], all_gateways: list[dict], base: str) -> dict[Key, str | None]:
    """Addresses for Gateways about to be Programmed: stable across restarts and unique.

    A requested spec IPAddress is used as-is. Otherwise a Gateway keeps the `base` address already in
    its status; new ones get the lowest free `base`N, N in 2..254 (.1 is left to the host), in
    creation order. None means the range is exhausted.
    """
    taken = {ip for gw in all_gateways for ip in _status_ips(gw)}
    result: dict[Key, str | None] = {}
    fresh = []
    for gw in sorted(needing, key=creation_order):
        current = [ip for ip in _status_ips(gw) if ip.startswith(base) and ip not in result.values()]
        if ip := _spec_ip(gw) or (current[0] if current else None):
            result[key_of(gw)] = ip
        else:
            fresh.append(gw)
    taken |= {ip for ip in result.values() if ip}
    free = (f"{base}{n}" for n in range(2, 255) if f"{base}{n}" not in taken)
    for gw in fresh:
        result[key_of(gw)] = next(free, None)
    return result


def gateway_status(gw: dict, outcome: GatewayOutcome, address: str | None, attached: Mapping[str, int],
                   now: float) -> dict:
    """Accepted at once; Programmed, Ready, GatewayHealthy and the address once the outcome is due.

    Until then the previous Programmed condition stays as it was (GKE leaves it at the older
    observedGeneration after a spec edit), or Unknown/Pending when there is none.
    """
    gen = generation(gw)
    existing = gw.get("status") or {}
    failure = outcome.failure or (None if address else ("AddressNotAssigned", "No free address in the address pool"))
    wanted = [condition("Accepted", True, "Accepted"), condition("Scheduled", True, "Scheduled", SCHEDULED_MESSAGE)]
    if outcome.due and failure:
        reason, message = failure
        wanted += [condition("Programmed", False, reason, message),
                   condition("Ready", False, "NotReady", READY_MESSAGE),
                   condition(HEALTHY, False, "Error", f"Gateway: {reason} : {message}")]
    elif outcome.due:
        wanted += [condition("Programmed", True, "Programmed"), condition("Ready", True, "Ready", READY_MESSAGE),
                   condition(HEALTHY, True, "Healthy")]
    status = {"conditions": _with_pending_programmed(merge_conditions(existing.get("conditions"), wanted, gen, now),
                                                     gen, now),
              "listeners": []}

    existing_listeners = {lst.get("name"): lst for lst in existing.get("listeners") or []}
    for listener in gw["spec"].get("listeners", []):
        name = listener["name"]
        check = outcome.checks[name]
        wanted = [check.resolved, check.accepted]
        if outcome.due and failure:
            wanted += [condition("Programmed", False, "Invalid", failure[1]),
                       condition("Ready", False, "NotReady", READY_MESSAGE)]
        elif outcome.due:
            wanted += [condition("Programmed", True, "Programmed"), condition("Ready", True, "Ready", READY_MESSAGE)]
        old = (existing_listeners.get(name) or {}).get("conditions")
        status["listeners"].append({
            "name": name,
            "supportedKinds": check.supported_kinds,
            "attachedRoutes": attached.get(name, 0),
            "conditions": _with_pending_programmed(merge_conditions(old, wanted, gen, now), gen, now),
        })
    if outcome.due and not failure:
        status["addresses"] = [{"type": "IPAddress", "value": address}]
    return status


def _with_pending_programmed(conditions: list, gen: int, now: float) -> list:
    if find_condition(conditions, "Programmed"):
        return conditions
    return merge_conditions(conditions, [PENDING_PROGRAMMED], gen, now)


# --------------------------------------------------------------------------- HTTPRoute

@dataclasses.dataclass(frozen=True)
class ParentResult:
    """One parentRef of a route that points at a GKE-managed Gateway."""

    parent_ref: dict
    gateway: dict
    accepted: dict
    listeners: list  # names of the listeners the route is attached to (counted in attachedRoutes)
    resolved: dict


def _format_parent_ref(ref: Mapping) -> str:
    def val(field):
        return "nil" if ref.get(field) is None else (f'"{ref[field]}"' if isinstance(ref[field], str) else ref[field])
    return (f'{{Group: "{ref.get("group", GATEWAY_GROUP)}", Kind: "{ref.get("kind", "Gateway")}", '
            f'Namespace: {val("namespace")}, Name: "{ref["name"]}", SectionName: {val("sectionName")}, '
            f'Port: {val("port")}}}')


def _route_acceptance(route: dict, ref: dict, gw: dict, cluster: Cluster) -> tuple[dict, list]:
    """Accepted per Gateway API: the named section/port exists, allowedRoutes admit the route, hostnames meet.

    Attachment (and so attachedRoutes) depends only on parentRef and allowedRoutes, as the spec
    says; a route attached to a listener whose hostname does not intersect still counts there.
    """
    route_ns = route["metadata"]["namespace"]
    gw_ns, gw_name = key_of(gw)
    candidates = gw["spec"].get("listeners", [])
    if ref.get("sectionName") is not None:
        candidates = [lst for lst in candidates if lst["name"] == ref["sectionName"]]
    if ref.get("port") is not None:
        candidates = [lst for lst in candidates if lst["port"] == ref["port"]]
    if not candidates:
        return condition("Accepted", False, "NoMatchingParent",
                         f"Gateway {gw_ns}/{gw_name} has no listener matching {_format_parent_ref(ref)}"), []
    allowed = [lst for lst in candidates
               if lst["protocol"] in ("HTTP", "HTTPS") and listener_allows_kind(lst, "HTTPRoute")
               and listener_allows_namespace(lst, gw_ns, route_ns, cluster)]
    if not allowed:
        return condition("Accepted", False, "NotAllowedByListeners",
                         f"No listener of Gateway {gw_ns}/{gw_name} allows HTTPRoute from namespace {route_ns}"), []
    names = [lst["name"] for lst in allowed]
    hostnames = route["spec"].get("hostnames") or []
    if not any(route_matches_listener_hostname(lst, hostnames) for lst in allowed):
        return condition("Accepted", False, "NoMatchingListenerHostname",
                         f"No hostname of the route ({', '.join(hostnames)}) matches a listener hostname of "
                         f"Gateway {gw_ns}/{gw_name}"), names
    return condition("Accepted", True, "Accepted"), names


def _backend_refs(route: dict):
    for rule in route["spec"].get("rules") or []:
        yield from rule.get("backendRefs") or []


def _backend_problem(route: dict, ref: dict, gw: dict, cluster: Cluster) -> tuple[str, str] | None:
    route_ns = route["metadata"]["namespace"]
    group, kind = ref.get("group", ""), ref.get("kind", "Service")
    ns, name = ref.get("namespace", route_ns), ref["name"]
    if group == "" and kind == "Service":
        rtype = SERVICE
    elif kind == "InferencePool" and group in POOL_TYPES:
        rtype = POOL_TYPES[group]
    else:
        return "InvalidKind", f"unsupported backendRef {{Group: {group}, Kind: {kind}}} for {ns}/{name}"
    if not reference_permitted(cluster, from_group=GATEWAY_GROUP, from_kind="HTTPRoute", from_namespace=route_ns,
                               to_group=group, to_kind=kind, to_namespace=ns, to_name=name):
        return "RefNotPermitted", f"reference to {kind} {ns}/{name} is not permitted by a ReferenceGrant"
    if cluster.get(rtype, ns, name) is None:
        plural = rtype.plural if rtype is SERVICE else f"{rtype.plural}.{rtype.group}"
        return "BackendNotFound", f"Error GWCER102: {plural} {ns}/{name} not found"
    gateway_class = gw["spec"]["gatewayClassName"]
    if rtype is not SERVICE and gateway_class not in POOL_CLASSES:
        return "InvalidKind", f"InferencePool backends are not supported by GatewayClass {gateway_class}"
    return None


def _route_resolution(route: dict, ref: dict, gw: dict, cluster: Cluster) -> dict:
    ns, name = key_of(route)
    for backend in _backend_refs(route):
        problem = _backend_problem(route, backend, gw, cluster)
        if problem is None:
            continue
        reason, err = problem
        message = f'Error GWCER104: HTTPRoute "{ns}/{name}" is misconfigured, err: {err}'
        if reason == "BackendNotFound":
            message = (f'Object reference of HTTPRoute "{ns}/{name}" bound to ParentRef {_format_parent_ref(ref)} '
                       f"failed to be resolved: error cause: reference-not-found: {message}")
        return condition("ResolvedRefs", False, reason, message)
    return condition("ResolvedRefs", True, "ResolvedRefs")


def evaluate_route(route: dict, cluster: Cluster, classes: Mapping[str, dict]) -> list[ParentResult]:
    """One result per parentRef that names a GKE-managed Gateway; other parentRefs are not ours to report."""
    results = []
    for ref in route["spec"].get("parentRefs") or []:
        if ref.get("group", GATEWAY_GROUP) != GATEWAY_GROUP or ref.get("kind", "Gateway") != "Gateway":
            continue
        gw = managed_gateway(cluster, classes, ref.get("namespace", route["metadata"]["namespace"]), ref["name"])
        if gw is None:
            continue
        accepted, listeners = _route_acceptance(route, ref, gw, cluster)
        results.append(ParentResult(ref, gw, accepted, listeners, _route_resolution(route, ref, gw, cluster)))
    return results


def _pool_ref(route: dict, backend: dict) -> tuple[ResourceType, str, str] | None:
    if backend.get("kind") != "InferencePool" or backend.get("group") not in POOL_TYPES:
        return None
    return POOL_TYPES[backend["group"]], backend.get("namespace", route["metadata"]["namespace"]), backend["name"]


def _reconciled(route: dict, result: ParentResult, outcome: GatewayOutcome, cluster: Cluster) -> dict:
    """GKE's own route condition, written by the Gateway sync, i.e. once the Gateway outcome is due."""
    ns, name = key_of(route)
    if ANN_RECONCILE_ERROR in annotations(route):
        return condition("Reconciled", False, "ReconciliationFailed", annotations(route)[ANN_RECONCILE_ERROR])
    if outcome.failure:
        gw_ns, gw_name = key_of(result.gateway)
        return condition("Reconciled", False, "ReconciliationFailed",
                         f"Gateway {gw_ns}/{gw_name} is not programmed: {outcome.failure[1]}")
    for cond in (result.accepted, result.resolved):
        if cond["status"] != "True":
            return condition("Reconciled", False, "ReconciliationFailed", cond["message"])
    for backend in _backend_refs(route):
        pool_ref = _pool_ref(route, backend)
        pool = cluster.get(*pool_ref) if pool_ref else None
        epp = _pool_resolution(pool, pool_ref[0], cluster) if pool else None
        if epp and epp["status"] != "True":
            return condition("Reconciled", False, "ReconciliationFailed",
                             f'Error GWCER104: HTTPRoute "{ns}/{name}" is misconfigured, err: InferencePool '
                             f'"{pool_ref[1]}/{pool_ref[2]}": {epp["message"]}')
    return condition("Reconciled", True, "ReconciliationSucceeded")


def _ref_identity(ref: Mapping, default_ns: str) -> tuple:
    return (ref.get("group", GATEWAY_GROUP), ref.get("kind", "Gateway"), ref.get("namespace") or default_ns,
            ref["name"], ref.get("sectionName"), ref.get("port"))


def httproute_status(route: dict, results: list[ParentResult], outcomes: Mapping[Key, GatewayOutcome],
                     cluster: Cluster, now: float) -> dict | None:
    """status.parents: our entries (one per managed parentRef) after other controllers' entries, which stay."""
    ns = route["metadata"]["namespace"]
    gen = generation(route)
    existing = (route.get("status") or {}).get("parents") or []
    foreign = [copy.deepcopy(p) for p in existing if p.get("controllerName") != CONTROLLER_NAME]
    old_ours = {_ref_identity(p["parentRef"], ns): p for p in existing if p.get("controllerName") == CONTROLLER_NAME}
    ours = []
    for result in results:
        outcome = outcomes[key_of(result.gateway)]
        wanted = [result.accepted, result.resolved]
        if outcome.due:
            wanted.append(_reconciled(route, result, outcome, cluster))
        old = old_ours.get(_ref_identity(result.parent_ref, ns), {}).get("conditions")
        ours.append({"parentRef": copy.deepcopy(result.parent_ref), "controllerName": CONTROLLER_NAME,
                     "conditions": merge_conditions(old, wanted, gen, now)})
    if not ours and not old_ours:
        return None
    return {"parents": foreign + ours}


# --------------------------------------------------------------------------- InferencePool

def _pool_resolution(pool: dict, rtype: ResourceType, cluster: Cluster) -> dict:
    """ResolvedRefs of the endpoint picker reference (v1 endpointPickerRef, v1alpha2 extensionRef)."""
    field = "endpointPickerRef" if rtype is POOL_V1 else "extensionRef"
    ref = (pool.get("spec") or {}).get(field)
    if not ref:
        return condition("ResolvedRefs", True, "ResolvedRefs")
    group, kind = ref.get("group", ""), ref.get("kind", "Service")
    if group != "" or kind != "Service":
        return condition("ResolvedRefs", False, "InvalidExtensionRef",
                         f"{field}: unsupported reference {{Group: {group}, Kind: {kind}}}")
    ns = pool["metadata"]["namespace"]
    if cluster.get(SERVICE, ns, ref["name"]) is None:
        return condition("ResolvedRefs", False, "InvalidExtensionRef",
                         f"{field}: missing Service {ns}/{ref['name']}")
    return condition("ResolvedRefs", True, "ResolvedRefs")


def inferencepool_status(pool: dict, rtype: ResourceType, routes: Mapping[Key, tuple[dict, list[ParentResult]]],
                         cluster: Cluster, classes: Mapping[str, dict], now: float) -> dict | None:
    """One parent entry per GKE Gateway that a route sends this pool's traffic through.

    v1 writes `status.parents` (with controllerName); v1alpha2 writes `status.parent`. The parentRef
    always names the Gateway's namespace, as GIE conformance requires. Entries of Gateways that other
    controllers own stay; the v1alpha2 CRD's `kind: Status` placeholder is replaced once there is a
    real entry.
    """
    field = "parents" if rtype is POOL_V1 else "parent"
    pool_ns, pool_name = key_of(pool)
    gen = generation(pool)
    by_gateway: dict[Key, list[ParentResult]] = {}
    for (route_ns, _), (route, results) in sorted(routes.items()):
        refs_pool = any(_pool_ref(route, b) == (rtype, pool_ns, pool_name) and reference_permitted(
            cluster, from_group=GATEWAY_GROUP, from_kind="HTTPRoute", from_namespace=route_ns,
            to_group=rtype.group, to_kind="InferencePool", to_namespace=pool_ns, to_name=pool_name)
            for b in _backend_refs(route))
        if refs_pool:
            for result in results:
                by_gateway.setdefault(key_of(result.gateway), []).append(result)

    existing = (pool.get("status") or {}).get(field) or []
    foreign, old_ours = [], {}
    for entry in existing:
        ref = entry.get("parentRef") or {}
        gw = cluster.get(GATEWAY, ref.get("namespace", ""), ref.get("name", "")) \
            if ref.get("kind") == "Gateway" else None
        other_controller = entry.get("controllerName") not in (None, CONTROLLER_NAME)
        other_gateway = gw is not None and gw["spec"].get("gatewayClassName") not in classes
        placeholder = ref.get("kind") == "Status"
        if other_controller or other_gateway or (placeholder and not by_gateway):
            foreign.append(copy.deepcopy(entry))
        elif not placeholder:
            old_ours[(ref.get("namespace"), ref.get("name"))] = entry

    resolved = _pool_resolution(pool, rtype, cluster)
    ours = []
    for (gw_ns, gw_name), results in sorted(by_gateway.items()):
        gateway_class = results[0].gateway["spec"]["gatewayClassName"]
        if gateway_class not in POOL_CLASSES:
            reason = "NotSupportedByParent" if rtype is POOL_V1 else "NotSupportedByGateway"
            accepted = condition("Accepted", False, reason,
                                 f"GatewayClass {gateway_class} does not support InferencePool backends")
        elif any(r.accepted["status"] == "True" for r in results):
            accepted = condition("Accepted", True, "Accepted")
        else:
            accepted = condition("Accepted", False, "HTTPRouteNotAccepted",
                                 f"No HTTPRoute referencing this pool is accepted by Gateway {gw_ns}/{gw_name}")
        old = old_ours.get((gw_ns, gw_name), {}).get("conditions")
        entry = {"parentRef": {"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": gw_ns, "name": gw_name}}
        if rtype is POOL_V1:
            entry["controllerName"] = CONTROLLER_NAME
        entry["conditions"] = merge_conditions(old, [accepted, resolved], gen, now)
        ours.append(entry)
    if not ours and not old_ours:
        return None
    return {field: foreign + ours}


# --------------------------------------------------------------------------- GKE policies and extensions

_BACKEND_TARGETS = {("", "Service"): SERVICE, (POOL_GROUP_V1, "InferencePool"): POOL_V1,
                    (POOL_GROUP_X, "InferencePool"): POOL_X}
POLICY_TARGETS = {
    HEALTH_CHECK_POLICY: _BACKEND_TARGETS,
    BACKEND_POLICY: _BACKEND_TARGETS,
    GATEWAY_POLICY: {(GATEWAY_GROUP, "Gateway"): GATEWAY},
}


def _policy_target(policy: dict) -> tuple[str, str, str, str]:
    ref = policy["spec"]["targetRef"]
    return ref.get("group", ""), ref["kind"], ref.get("namespace") or policy["metadata"]["namespace"], ref["name"]


def policy_winners(cluster: Cluster) -> dict[tuple, Key]:
    """(policy type, target) -> the policy that is Attached; later ones are Conflicted.

    GKE applies one policy of a kind per target; which one is not documented, so the Gateway API
    conflict rule is used: oldest creationTimestamp, then namespace/name.
    """
    winners: dict[tuple, Key] = {}
    for rtype in ATTACHED_POLICY_TYPES:
        for policy in sorted((p for p in cluster.all(rtype) if not ignored(p)), key=creation_order):
            winners.setdefault((rtype, _policy_target(policy)), key_of(policy))
    return winners


def attached_policy_status(rtype: ResourceType, policy: dict, cluster: Cluster, winners: Mapping[tuple, Key],
                           now: float) -> dict:
    """HealthCheckPolicy, GCPBackendPolicy, GCPGatewayPolicy: one `Attached` condition."""
    group, kind, ns, name = target = _policy_target(policy)
    target_type = POLICY_TARGETS[rtype].get((group, kind))
    if target_type is None:
        wanted = condition("Attached", False, "Invalid",
                           f'{rtype.kind} cannot target {{Group: "{group}", Kind: {kind}}}')
    elif cluster.get(target_type, ns, name) is None:
        wanted = condition("Attached", False, "TargetNotFound", f"{kind} {ns}/{name} not found")
    elif winners[(rtype, target)] != key_of(policy):
        winner_ns, winner = winners[(rtype, target)]
        wanted = condition("Attached", False, "Conflicted",
                           f"{rtype.kind} {winner_ns}/{winner} already targets {kind} {ns}/{name}")
    else:
        wanted = condition("Attached", True, "Attached")
    existing = (policy.get("status") or {}).get("conditions")
    return {"conditions": merge_conditions(existing, [wanted], generation(policy), now)}


def extension_status(rtype: ResourceType, ext: dict, cluster: Cluster, classes: Mapping[str, dict],
                     now: float) -> dict:
    """GCPRoutingExtension / GCPTrafficExtension: Gateway API PolicyStatus, one ancestor per target Gateway.

    Accepted is True, TargetNotFound (no such Gateway) or NotAllowed (class without support; the
    reason is the note's inference). ResolvedRefs checks the extension Services.
    """
    ns = ext["metadata"]["namespace"]
    gen = generation(ext)
    resolved = condition("ResolvedRefs", True, "ResolvedRefs")
    for chain in ext["spec"].get("extensionChains") or []:
        for extension in chain.get("extensions") or []:
            ref = extension.get("backendRef")
            if ref and ref.get("group", "") == "" and ref.get("kind", "Service") == "Service" \
                    and cluster.get(SERVICE, ns, ref["name"]) is None:
                resolved = condition("ResolvedRefs", False, "ExtensionServiceNotFound",
                                     f"Service {ns}/{ref['name']} of extension {extension.get('name')} not found")
                break
        if resolved["status"] == "False":
            break

    existing = (ext.get("status") or {}).get("ancestors") or []
    foreign = [copy.deepcopy(a) for a in existing if a.get("controllerName") != CONTROLLER_NAME]
    old_ours = {a["ancestorRef"].get("name"): a for a in existing if a.get("controllerName") == CONTROLLER_NAME}
    ours = []
    for name in dict.fromkeys(t["name"] for t in ext["spec"].get("targetRefs") or []):
        gw = cluster.get(GATEWAY, ns, name)
        if gw is None:
            accepted = condition("Accepted", False, "TargetNotFound", f"Gateway {ns}/{name} not found")
        elif managed_gateway(cluster, classes, ns, name) is None:
            continue
        elif gw["spec"]["gatewayClassName"] not in EXTENSION_CLASSES[rtype]:
            accepted = condition("Accepted", False, "NotAllowed",
                                 f"{rtype.kind} is not supported by GatewayClass {gw['spec']['gatewayClassName']}")
        else:
            accepted = condition("Accepted", True, "Accepted")
        old = old_ours.get(name, {}).get("conditions")
        ours.append({"ancestorRef": {"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": ns, "name": name},
                     "controllerName": CONTROLLER_NAME,
                     "conditions": merge_conditions(old, [accepted, resolved], gen, now)})
    return {"ancestors": foreign + ours}


# --------------------------------------------------------------------------- everything

def compute(cluster: Cluster, now: float, seen_at: Mapping, settings: Settings) -> Plan:
    """Desired status of every managed object, and when the next delayed change is due.

    `seen_at` maps generation_key(gateway) to the time that generation was first seen; a missing
    entry counts as now. Objects annotated gke-sim.gke-ai.dev/ignore are left alone entirely, and
    objects being deleted get no status writes.
    """
    desired: list[Desired] = []
    classes = gke_classes(cluster)
    for gc in classes.values():
        desired.append(Desired(GATEWAY_CLASS, gc, gatewayclass_status(gc, now)))

    gateways = [gw for gw in cluster.all(GATEWAY) if managed_gateway(cluster, classes, *key_of(gw))]
    outcomes = {key_of(gw): gateway_outcome(gw, cluster, now, seen_at, settings) for gw in gateways}
    programmable = [gw for gw in gateways if outcomes[key_of(gw)].due and not outcomes[key_of(gw)].failure]
    addresses = allocate_addresses(programmable, cluster.all(GATEWAY), settings.address_base)

    routes = {key_of(r): (r, evaluate_route(r, cluster, classes)) for r in cluster.all(HTTPROUTE) if not ignored(r)}
    attached: dict[Key, dict[str, int]] = {}
    for _, results in routes.values():
        for result in results:
            counts = attached.setdefault(key_of(result.gateway), {})
            for name in result.listeners:
                counts[name] = counts.get(name, 0) + 1

    for gw in gateways:
        key = key_of(gw)
        desired.append(Desired(GATEWAY, gw, gateway_status(gw, outcomes[key], addresses.get(key),
                                                           attached.get(key, {}), now)))
    for route, results in routes.values():
        if (status := httproute_status(route, results, outcomes, cluster, now)) is not None:
            desired.append(Desired(HTTPROUTE, route, status))
    for rtype in (POOL_V1, POOL_X):
        for pool in cluster.all(rtype):
            if not ignored(pool) and (status := inferencepool_status(pool, rtype, routes, cluster, classes, now)):
                desired.append(Desired(rtype, pool, status))
    winners = policy_winners(cluster)
    for rtype in ATTACHED_POLICY_TYPES:
        for policy in cluster.all(rtype):
            if not ignored(policy):
                desired.append(Desired(rtype, policy, attached_policy_status(rtype, policy, cluster, winners, now)))
    for rtype in EXTENSION_TYPES:
        for ext in cluster.all(rtype):
            if not ignored(ext):
                desired.append(Desired(rtype, ext, extension_status(rtype, ext, cluster, classes, now)))

    pending = [o.due_at for o in outcomes.values() if not o.due]
    live = [d for d in desired if not d.obj["metadata"].get("deletionTimestamp")]  # being deleted: leave alone
    return Plan(live, min(pending) if pending else None)
