"""Resource kinds, the cluster snapshot the status functions read, and condition helpers."""

from __future__ import annotations

import copy
import dataclasses
import re
import time
from collections.abc import Iterable, Mapping

CONTROLLER_NAME = "networking.gke.io/gateway"
GATEWAY_GROUP = "gateway.networking.k8s.io"
GKE_GROUP = "networking.gke.io"
POOL_GROUP_V1 = "inference.networking.k8s.io"
POOL_GROUP_X = "inference.networking.x-k8s.io"

ANNOTATION_PREFIX = "gke-sim.gke-ai.dev/"
ANN_IGNORE = ANNOTATION_PREFIX + "ignore"
ANN_NEVER_PROGRAM = ANNOTATION_PREFIX + "never-program"
ANN_PROGRAM_DELAY = ANNOTATION_PREFIX + "program-delay"
ANN_RECONCILE_ERROR = ANNOTATION_PREFIX + "reconcile-error"


@dataclasses.dataclass(frozen=True)
class ResourceType:
    kind: str
    group: str
    plural: str
    namespaced: bool = True
    core_version: str | None = None  # set for built-in kinds, whose version needs no CRD lookup

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    def __str__(self) -> str:
        return self.kind if not self.group or self.group == GATEWAY_GROUP else f"{self.kind}.{self.group}"


NAMESPACE = ResourceType("Namespace", "", "namespaces", namespaced=False, core_version="v1")
SERVICE = ResourceType("Service", "", "services", core_version="v1")
SECRET = ResourceType("Secret", "", "secrets", core_version="v1")
CRD = ResourceType("CustomResourceDefinition", "apiextensions.k8s.io", "customresourcedefinitions",
                   namespaced=False, core_version="v1")
GATEWAY_CLASS = ResourceType("GatewayClass", GATEWAY_GROUP, "gatewayclasses", namespaced=False)
GATEWAY = ResourceType("Gateway", GATEWAY_GROUP, "gateways")
HTTPROUTE = ResourceType("HTTPRoute", GATEWAY_GROUP, "httproutes")
REFERENCE_GRANT = ResourceType("ReferenceGrant", GATEWAY_GROUP, "referencegrants")
POOL_V1 = ResourceType("InferencePool", POOL_GROUP_V1, "inferencepools")
POOL_X = ResourceType("InferencePool", POOL_GROUP_X, "inferencepools")
HEALTH_CHECK_POLICY = ResourceType("HealthCheckPolicy", GKE_GROUP, "healthcheckpolicies")
BACKEND_POLICY = ResourceType("GCPBackendPolicy", GKE_GROUP, "gcpbackendpolicies")
GATEWAY_POLICY = ResourceType("GCPGatewayPolicy", GKE_GROUP, "gcpgatewaypolicies")
ROUTING_EXTENSION = ResourceType("GCPRoutingExtension", GKE_GROUP, "gcproutingextensions")
TRAFFIC_EXTENSION = ResourceType("GCPTrafficExtension", GKE_GROUP, "gcptrafficextensions")

BUILTIN_TYPES = (NAMESPACE, SERVICE, SECRET, CRD)
CUSTOM_TYPES = (GATEWAY_CLASS, GATEWAY, HTTPROUTE, REFERENCE_GRANT, POOL_V1, POOL_X, HEALTH_CHECK_POLICY,
                BACKEND_POLICY, GATEWAY_POLICY, ROUTING_EXTENSION, TRAFFIC_EXTENSION)
POOL_TYPES = {POOL_GROUP_V1: POOL_V1, POOL_GROUP_X: POOL_X}
ATTACHED_POLICY_TYPES = (HEALTH_CHECK_POLICY, BACKEND_POLICY, GATEWAY_POLICY)
EXTENSION_TYPES = (ROUTING_EXTENSION, TRAFFIC_EXTENSION)

_BY_GROUP_KIND = {(t.group, t.kind): t for t in BUILTIN_TYPES + CUSTOM_TYPES}

Key = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped objects


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def key_of(obj: Mapping) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


def annotations(obj: Mapping) -> dict:
    return obj.get("metadata", {}).get("annotations") or {}


def generation(obj: Mapping) -> int:
    return int(obj.get("metadata", {}).get("generation") or 1)


def ignored(obj: Mapping) -> bool:
    return annotations(obj).get(ANN_IGNORE, "").strip().lower() == "true"


def creation_order(obj: Mapping) -> tuple[str, str, str]:
    """Gateway API's tie-break: oldest creationTimestamp first, then namespace/name."""
    meta = obj["metadata"]
    return meta.get("creationTimestamp") or "", meta.get("namespace", ""), meta["name"]


class Cluster:
    """An immutable-by-convention snapshot: objects per resource type, keyed by (namespace, name)."""

    def __init__(self, objects: Mapping[ResourceType, Mapping[Key, dict]] | None = None):
        self._objects = {t: dict(objs) for t, objs in (objects or {}).items()}

    @classmethod
    def from_objects(cls, objs: Iterable[dict]) -> Cluster:
        """Build a snapshot from plain manifests (as the API returns them); unknown kinds are skipped."""
        by_type: dict[ResourceType, dict[Key, dict]] = {}
        for obj in objs:
            rtype = _BY_GROUP_KIND.get((group_of(obj["apiVersion"]), obj["kind"]))
            if rtype:
                by_type.setdefault(rtype, {})[key_of(obj)] = obj
        return cls(by_type)

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict | None:
        return self._objects.get(rtype, {}).get((namespace if rtype.namespaced else "", name))

    def all(self, rtype: ResourceType) -> list[dict]:
        """Objects of one type in a stable order (namespace, name)."""
        objs = self._objects.get(rtype, {})
        return [objs[k] for k in sorted(objs)]


# --------------------------------------------------------------------------- conditions

def timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def condition(ctype: str, status: bool | str, reason: str, message: str = "") -> dict:
    """A condition without lastTransitionTime/observedGeneration; `merge_conditions` adds both."""
    if isinstance(status, bool):
        status = "True" if status else "False"
    return {"type": ctype, "status": status, "reason": reason, "message": message}


def merge_conditions(existing: list | None, desired: Iterable[dict], generation_: int, now: float) -> list:
    """Update or append the desired conditions, keeping every other existing condition as it is.

    Conditions are a map keyed by type: existing entries keep their position, and entries of
    types not in `desired` (other controllers', or ones this controller leaves stale on purpose)
    are untouched. lastTransitionTime only moves when the status value changes.
    """
    result = [copy.deepcopy(c) for c in existing or []]
    index = {c.get("type"): i for i, c in enumerate(result)}
    for want in desired:
        entry = dict(want, observedGeneration=generation_)
        i = index.get(want["type"])
        if i is None:
            entry["lastTransitionTime"] = timestamp(now)
            index[want["type"]] = len(result)
            result.append(entry)
        else:
            old = result[i]
            same = old.get("status") == want["status"] and old.get("lastTransitionTime")
            entry["lastTransitionTime"] = old["lastTransitionTime"] if same else timestamp(now)
            result[i] = entry
    return result


def find_condition(conditions: Iterable[Mapping] | None, ctype: str) -> Mapping | None:
    return next((c for c in conditions or [] if c.get("type") == ctype), None)


_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")


def split_reason(value: str, default_reason: str) -> tuple[str, str]:
    """'<Reason>: <message>' -> (Reason, message); a value without a valid leading reason is all message."""
    head, sep, tail = value.partition(": ")
    if sep and _REASON.match(head):
        return head, tail.strip()
    return default_reason, value.strip()
