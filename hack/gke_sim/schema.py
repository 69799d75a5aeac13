"""Compare desired status with stored status the way the API server sees it, and describe changes.

The API server prunes fields a CRD's structural schema does not declare (for example `group` in a
GIE v0.4.0 InferencePool parentRef, which is a corev1.ObjectReference) and fills scalar defaults
(`group`/`kind` of a route parentRef). Comparing raw desired status with stored status would then
differ forever and the simulator would patch in a loop; normalising the desired status with the
CRD's own status schema first makes the comparison exact.
"""

from __future__ import annotations

from collections.abc import Mapping

from .model import CONTROLLER_NAME


def normalize(value, schema: Mapping | None):
    """`value` as the API server would store it under `schema`: unknown fields pruned, scalar defaults set.

    Object/array defaults are not applied: they only fill fields that are absent as a whole, which
    this controller never leaves absent in what it writes.
    """
    if schema is None or value is None:
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is None:
            extra = schema.get("additionalProperties")
            return {k: normalize(v, extra) for k, v in value.items()} if isinstance(extra, Mapping) else value
        keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields", False)
        out = {k: normalize(v, props[k]) if k in props else v
               for k, v in value.items() if k in props or keep_unknown}
        for k, prop in props.items():
            if k not in out and "default" in prop and prop.get("type") not in ("object", "array"):
                out[k] = prop["default"]
        return out
    if isinstance(value, list):
        items = schema.get("items")
        return [normalize(v, items) for v in value] if isinstance(items, Mapping) else value
    return value


def status_schema(crd: Mapping, version: str) -> Mapping | None:
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return ((v.get("schema") or {}).get("openAPIV3Schema") or {}).get("properties", {}).get("status")
    return None


def changed_keys(stored: Mapping | None, desired: Mapping) -> list[str]:
    """Top-level status keys whose desired value differs from the stored one."""
    stored = stored or {}
    return [k for k, v in desired.items() if stored.get(k) != v]


def _conditions(conditions) -> str:
    return " ".join(f"{c.get('type')}={c.get('status')}/{c.get('reason')}" for c in conditions or [])


def summarize(status: Mapping) -> str:
    """One-line description of a status for the change log."""
    parts = []
    if status.get("conditions"):
        parts.append(_conditions(status["conditions"]))
    parts += [f"address={a.get('value')}" for a in status.get("addresses") or []]
    parts += [f"listener {lst['name']}: attachedRoutes={lst['attachedRoutes']} {_conditions(lst['conditions'])}"
              for lst in status.get("listeners") or []]
    for field, ref_field in (("parents", "parentRef"), ("parent", "parentRef"), ("ancestors", "ancestorRef")):
        for entry in status.get(field) or []:
            if entry.get("controllerName", CONTROLLER_NAME) != CONTROLLER_NAME:
                continue
            ref = entry.get(ref_field) or {}
            where = f"{ref.get('namespace', '')}/{ref.get('name', '')}".lstrip("/")
            section = f"#{ref['sectionName']}" if ref.get("sectionName") else ""
            parts.append(f"{ref.get('kind', 'Gateway')} {where}{section}: {_conditions(entry.get('conditions'))}")
    return "; ".join(parts) or "(no entries)"
