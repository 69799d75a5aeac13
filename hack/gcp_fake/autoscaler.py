"""GKE's cluster autoscaler, for node pools with autoscaling enabled: pure decisions plus a loop that applies them.

plan_scale_up and plan_scale_down are pure functions of plain data (unit-tested); Autoscaler.step reads the
cluster and the fake's pools, calls them, and applies the result (node pool sizes, kwok nodes, pod Events).
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field

from . import container
from .errors import GoogleError

LOG = logging.getLogger("gcp_fake.autoscaler")
_SUFFIX = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
           "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "m": 1e-3}
TRIGGER_GRACE = 30.0  # seconds a pod that triggered a scale-up is left to the scheduler before it counts again


def quantity(value) -> float:
    text = str(value).strip()
    m = re.fullmatch(r"([0-9.eE+-]+?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?", text)
    if not m:
        raise ValueError(f"not a quantity: {value!r}")
    return float(m.group(1)) * _SUFFIX.get(m.group(2) or "", 1)


@dataclass(frozen=True)
class Group:
    """An autoscaled node pool as the autoscaler sees it."""

    name: str
    size: int
    min: int
    max: int
    labels: dict
    taints: tuple = ()  # k8s taint dicts
    allocatable: dict = field(default_factory=dict)  # resource -> float


@dataclass(frozen=True)
class Pending:
    """An unschedulable pod."""

    key: str  # uid
    name: str  # namespace/name, for ordering and messages
    requests: dict  # resource -> float
    node_selector: dict = field(default_factory=dict)
    tolerations: tuple = ()
    waited: float = 0.0  # seconds since first seen unschedulable


def tolerates(tolerations, taint: dict) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol["effect"] != taint["effect"]:
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol["key"] == taint["key"]:
                return True
        elif tol.get("key") == taint["key"] and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def misfit(pod: Pending, group: Group) -> str | None:
    """Why a new node of `group` cannot take `pod` (the autoscaler's wording), or None when it can."""
    if any(group.labels.get(k) != v for k, v in pod.node_selector.items()):
        return "node(s) didn't match Pod's node affinity/selector"
    for taint in group.taints:
        if taint["effect"] in ("NoSchedule", "NoExecute") and not tolerates(pod.tolerations, taint):
            return f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"
    for resource, amount in sorted(pod.requests.items()):
        if amount > group.allocatable.get(resource, 0.0) + 1e-9:
            return f"Insufficient {resource}"
    return None


def plan_scale_up(groups: list, pods: list, delay: float):
    """New sizes ({group: size}) and Events ([(pod key, reason, message)]) for the pending pods.

    Pods waited less than `delay` are left alone. Each pod goes to the first group (by name) a new node of which
    could take it, packed first-fit onto the nodes this plan adds, up to the group's max.
    """
    groups = sorted(groups, key=lambda g: g.name)
    planned = {g.name: [] for g in groups}  # group -> list of remaining-capacity dicts of new nodes
    placed: dict = {g.name: [] for g in groups}
    events = []
    for pod in sorted(pods, key=lambda p: (-p.waited, p.name)):
        if pod.waited < delay:
            continue
        reasons = Counter()
        candidates = []
        for g in groups:
            why = misfit(pod, g)
            if why:
                reasons[why] += 1
            else:
                candidates.append(g)
        target = None
        for g in candidates:
            for free in planned[g.name]:
                if all(free.get(r, 0.0) + 1e-9 >= a for r, a in pod.requests.items()):
                    target = (g, free)
                    break
            if target:
                break
        if target is None:
            for g in candidates:
                if g.size + len(planned[g.name]) < g.max:
                    free = dict(g.allocatable)
                    free["pods"] = free.get("pods", 110.0)
                    planned[g.name].append(free)
                    target = (g, free)
                    break
                reasons["max node group size reached"] += 1
        if target is None:
            detail = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
            events.append((pod.key, "NotTriggerScaleUp", f"pod didn't trigger scale-up: {detail}"))
            continue
        g, free = target
        for resource, amount in pod.requests.items():
            free[resource] = free.get(resource, 0.0) - amount
        free["pods"] = free.get("pods", 110.0) - 1
        placed[g.name].append(pod.key)
    sizes = {}
    for g in groups:
        if planned[g.name]:
            new = g.size + len(planned[g.name])
            sizes[g.name] = new
            for key in placed[g.name]:
                events.append((key, "TriggeredScaleUp", f"pod triggered scale-up: [{{{g.name} {g.size}->{new} "
                                                        f"(max: {g.max})}}]"))
    return sizes, events


def plan_scale_down(groups: list, idle_for: dict, members: dict, idle_seconds: float) -> dict:
    """{group: [node names to remove]}: nodes idle at least `idle_seconds`, highest member number first, to min.

    idle_for: node -> seconds without non-DaemonSet pods (absent when busy); members: group -> [node names].
    """
    out = {}
    for g in groups:
        idle = [n for n in members.get(g.name, []) if idle_for.get(n, -1.0) >= idle_seconds]
        idle.sort(key=lambda n: (-int(n.rsplit("-", 1)[-1]) if n.rsplit("-", 1)[-1].isdigit() else 0, n))
        room = g.size - g.min
        if idle and room > 0:
            out[g.name] = idle[:room]
    return out


# --------------------------------------------------------------------------- the loop

def _requests(pod) -> dict:
    total: dict = {}
    for c in pod.spec.containers or []:
        res = c.resources
        reqs = dict((res.limits or {}) if res else {})
        reqs.update((res.requests or {}) if res else {})
        for name, value in reqs.items():
            total[name] = total.get(name, 0.0) + quantity(value)
    total["pods"] = 1.0
    return total


def _unschedulable(pod) -> bool:
    if pod.status.phase != "Pending" or pod.spec.node_name or pod.metadata.deletion_timestamp:
        return False
    return any(c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
               for c in pod.status.conditions or [])


def _counts(pod) -> bool:
    """Whether a pod on a node keeps it from scale-down (DaemonSet and mirror pods do not)."""
    if pod.status.phase in ("Succeeded", "Failed") or pod.metadata.deletion_timestamp:
        return False
    if "kubernetes.io/config.mirror" in (pod.metadata.annotations or {}):
        return False
    return not any(o.kind == "DaemonSet" for o in pod.metadata.owner_references or [])


class Autoscaler:
    def __init__(self, world, kube):
        self.world = world
        self.kube = kube
        self.first_seen: dict = {}  # pod uid -> monotonic time first seen unschedulable
        self.triggered: dict = {}  # pod uid -> monotonic time of its TriggeredScaleUp
        self.emitted: set = set()  # (uid, reason, message) already written as Events
        self.idle_since: dict = {}  # node -> monotonic time first seen idle

    def groups(self) -> tuple[list, dict]:
        """Autoscaled RUNNING pools with no operation in flight, and their full names."""
        from .kube import template

        out, names = [], {}
        with self.world.lock:
            for full, pool in self.world.node_pools.items():
                limits = container.bounds(pool)
                if limits is None or pool.get("status") != "RUNNING" or self.world.running_on(full):
                    continue
                try:
                    shape, _labels, taints, _zones = template(pool)
                    from .kube import template_labels

                    labels = template_labels(pool)
                except GoogleError:
                    continue
                alloc = {"cpu": quantity(shape.cpu), "memory": quantity(shape.memory), "pods": quantity(shape.pods),
                         "ephemeral-storage": quantity("100Gi")}
                if shape.accelerator:
                    alloc["nvidia.com/gpu"] = float(shape.accelerator_count)
                out.append(Group(pool["name"], self.world.pool_sizes.get(full, 0), limits[0], limits[1], labels,
                                 tuple(taints), alloc))
                names[pool["name"]] = full
        return out, names

    def step(self) -> None:
        groups, names = self.groups()
        if not groups:
            return
        now = time.monotonic()
        settings = self.world.config["autoscaler"]
        pods = self.kube.pods()
        by_uid = {p.metadata.uid: p for p in pods}
        pending = []
        for pod in pods:
            uid = pod.metadata.uid
            if not _unschedulable(pod):
                continue
            self.first_seen.setdefault(uid, now)
            if now - self.triggered.get(uid, -1e9) < TRIGGER_GRACE:
                continue
            pending.append(Pending(uid, f"{pod.metadata.namespace}/{pod.metadata.name}", _requests(pod),
                                   dict(pod.spec.node_selector or {}),
                                   tuple(t.to_dict() for t in pod.spec.tolerations or []), now - self.first_seen[uid]))
        live = {p.metadata.uid for p in pods if _unschedulable(p)}
        self.first_seen = {k: v for k, v in self.first_seen.items() if k in live}
        sizes, events = plan_scale_up(groups, pending, float(settings["scale_up_delay_seconds"]))
        for name, size in sizes.items():
            self.resize(names[name], size)
        for uid, reason, message in events:
            if reason == "TriggeredScaleUp":
                self.triggered[uid] = now
            if (uid, reason, message) not in self.emitted:
                self.emitted.add((uid, reason, message))
                self.kube.event(by_uid[uid], reason, message)
                LOG.info("%s %s/%s: %s", reason, by_uid[uid].metadata.namespace, by_uid[uid].metadata.name, message)
        self.scale_down(groups, names, pods, now, float(settings["scale_down_idle_seconds"]))

    def scale_down(self, groups, names, pods, now, idle_seconds) -> None:
        busy = {p.spec.node_name for p in pods if p.spec.node_name and _counts(p)}
        members: dict = {}
        wanted = {g.name for g in groups}
        for node in self.kube.nodes():
            pool = (node.metadata.labels or {}).get("cloud.google.com/gke-nodepool")
            if pool in wanted:
                members.setdefault(pool, []).append(node.metadata.name)
        present = {n for ns in members.values() for n in ns}
        for name in present:
            if name in busy:
                self.idle_since.pop(name, None)
            else:
                self.idle_since.setdefault(name, now)
        self.idle_since = {n: t for n, t in self.idle_since.items() if n in present}
        idle_for = {n: now - t for n, t in self.idle_since.items()}
        for group, victims in plan_scale_down(groups, idle_for, members, idle_seconds).items():
            size = next(g.size for g in groups if g.name == group) - len(victims)
            LOG.info("scale-down %s: removing idle %s", group, victims)
            self.resize(names[group], size, victims)

    def resize(self, full: str, size: int, victims=()) -> None:
        with self.world.lock:
            if full not in self.world.node_pools or self.world.running_on(full):
                return
            self.world.pool_sizes[full] = size
            container.sync_nodes(self.world, full, victims)

    def after_reset(self) -> None:
        """After /_fake/reset: nodes of pools that no longer exist go; the seeded pools get their sizes back."""
        self.first_seen, self.triggered, self.emitted, self.idle_since = {}, {}, set(), {}
        with self.world.lock:
            known = {name.rsplit("/", 1)[-1]: name for name in self.world.node_pools}
            for pool in self.kube.pools_present():
                if pool and pool not in known:
                    self.kube.resize(pool, 0, None)
            for full in self.world.node_pools:
                container.sync_nodes(self.world, full)

    def run(self, stop) -> None:
        while not stop.wait(float(self.world.config["autoscaler"].get("interval_seconds", 0.5))):
            try:
                self.step()
            except Exception:  # noqa: BLE001  (keep scaling after an API hiccup)
                LOG.exception("autoscaler step failed")
