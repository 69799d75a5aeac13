"""Gateway API attachment rules: hostname intersection, allowedRoutes, label selectors, ReferenceGrants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .model import GATEWAY_GROUP, NAMESPACE, REFERENCE_GRANT, Cluster


def hostnames_intersect(listener_hostname: str | None, route_hostname: str) -> bool:
    """Whether a route hostname and a listener hostname can both match some request host.

    Gateway API rules: an exact name matches itself; a wildcard `*.example.com` matches any
    name with at least one more label (`a.example.com`, `a.b.example.com`, not `example.com`);
    two wildcards intersect when one suffix contains the other. An empty listener hostname
    matches everything. Comparison is case-insensitive.
    """
    if not listener_hostname:
        return True
    a, b = listener_hostname.lower(), route_hostname.lower()
    if a == b:
        return True
    if a.startswith("*.") and b.endswith(a[1:]):
        return True
    return b.startswith("*.") and a.endswith(b[1:])


def route_matches_listener_hostname(listener: Mapping, route_hostnames: Iterable[str]) -> bool:
    hostnames = list(route_hostnames)
    if not hostnames:
        return True
    return any(hostnames_intersect(listener.get("hostname"), h) for h in hostnames)


def selector_matches(selector: Mapping | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector semantics; an empty selector matches everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def namespace_labels(cluster: Cluster, namespace: str) -> dict:
    """Labels of a namespace; the API server always sets kubernetes.io/metadata.name."""
    ns = cluster.get(NAMESPACE, "", namespace)
    labels = dict((ns or {}).get("metadata", {}).get("labels") or {})
    labels.setdefault("kubernetes.io/metadata.name", namespace)
    return labels


def listener_allows_namespace(listener: Mapping, gateway_namespace: str, route_namespace: str,
                              cluster: Cluster) -> bool:
    """allowedRoutes.namespaces.from: Same (default), All, or Selector."""
    namespaces = (listener.get("allowedRoutes") or {}).get("namespaces") or {}
    source = namespaces.get("from", "Same")
    if source == "All":
        return True
    if source == "Selector":
        return selector_matches(namespaces.get("selector"), namespace_labels(cluster, route_namespace))
    return route_namespace == gateway_namespace


def listener_allows_kind(listener: Mapping, kind: str, group: str = GATEWAY_GROUP) -> bool:
    kinds = (listener.get("allowedRoutes") or {}).get("kinds")
    if not kinds:
        return True
    return any(k["kind"] == kind and k.get("group", GATEWAY_GROUP) == group for k in kinds)


def reference_permitted(cluster: Cluster, *, from_group: str, from_kind: str, from_namespace: str,
                        to_group: str, to_kind: str, to_namespace: str, to_name: str) -> bool:
    """Same-namespace references are always allowed; others need a ReferenceGrant in the target namespace."""
    if from_namespace == to_namespace:
        return True
    for grant in cluster.all(REFERENCE_GRANT):
        if grant["metadata"]["namespace"] != to_namespace:
            continue
        spec = grant.get("spec") or {}
        from_ok = any(f.get("group", "") == from_group and f["kind"] == from_kind and f["namespace"] == from_namespace
                      for f in spec.get("from") or [])
        to_ok = any(t.get("group", "") == to_group and t["kind"] == to_kind and t.get("name", to_name) == to_name
                    for t in spec.get("to") or [])
        if from_ok and to_ok:
            return True
    return False
