"""Make kwok fake nodes exist: the one place that knows what a local node looks like.

Used by `localenv.py up` for the default pools, by tests, and later by the GCP fake
when it creates or resizes a GPU node pool. A node is fake (kwok manages it through
the `kwok.x-k8s.io/node: fake` annotation) but it is a real Node object: the real
scheduler fits pods on it by its capacity, labels and taints.

Command line:
    python nodes.py --kubeconfig K ensure --pool gpupool --count 5 [--shape g2-standard-8]
    python nodes.py --kubeconfig K list
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
POOL_LABEL = "cloud.google.com/gke-nodepool"
ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
ZONE_LABEL = "topology.kubernetes.io/zone"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "gke-ai-localenv"


@dataclasses.dataclass(frozen=True)
class Shape:
    """What one node offers, named like the GCE machine type it imitates."""

    machine_type: str
    cpu: str
    memory: str
    accelerator: str | None = None
    accelerator_count: int = 0
    pods: str = "110"


SHAPES = {
    "g2-standard-8": Shape("g2-standard-8", cpu="8", memory="32Gi", accelerator="nvidia-l4", accelerator_count=1),
    "g2-standard-24": Shape("g2-standard-24", cpu="24", memory="96Gi", accelerator="nvidia-l4", accelerator_count=2),
    "e2-standard-4": Shape("e2-standard-4", cpu="4", memory="16Gi"),
}
# Every machine type the GCP fake accepts in a node pool: GPU machines come with their GPUs
# (a fixed accelerator type and count); n1 machines take attached GPUs from the pool's config.
MACHINE_TYPES = dict(SHAPES, **{
    "e2-medium": Shape("e2-medium", cpu="2", memory="4Gi"),
    "e2-standard-2": Shape("e2-standard-2", cpu="2", memory="8Gi"),
    "e2-standard-8": Shape("e2-standard-8", cpu="8", memory="32Gi"),
    "e2-standard-16": Shape("e2-standard-16", cpu="16", memory="64Gi"),
    "n2-standard-4": Shape("n2-standard-4", cpu="4", memory="16Gi"),
    "n2-standard-8": Shape("n2-standard-8", cpu="8", memory="32Gi"),
    "n1-standard-4": Shape("n1-standard-4", cpu="4", memory="15Gi"),
    "n1-standard-8": Shape("n1-standard-8", cpu="8", memory="30Gi"),
    "n1-standard-16": Shape("n1-standard-16", cpu="16", memory="60Gi"),
    "g2-standard-4": Shape("g2-standard-4", cpu="4", memory="16Gi", accelerator="nvidia-l4", accelerator_count=1),
    "g2-standard-12": Shape("g2-standard-12", cpu="12", memory="48Gi", accelerator="nvidia-l4", accelerator_count=1),
    "g2-standard-16": Shape("g2-standard-16", cpu="16", memory="64Gi", accelerator="nvidia-l4", accelerator_count=1),
    "g2-standard-32": Shape("g2-standard-32", cpu="32", memory="128Gi", accelerator="nvidia-l4", accelerator_count=1),
    "g2-standard-48": Shape("g2-standard-48", cpu="48", memory="192Gi", accelerator="nvidia-l4", accelerator_count=4),
    "g2-standard-96": Shape("g2-standard-96", cpu="96", memory="384Gi", accelerator="nvidia-l4", accelerator_count=8),
    "a2-highgpu-1g": Shape("a2-highgpu-1g", cpu="12", memory="85Gi", accelerator="nvidia-tesla-a100",
                           accelerator_count=1),
    "a2-highgpu-2g": Shape("a2-highgpu-2g", cpu="24", memory="170Gi", accelerator="nvidia-tesla-a100",
                           accelerator_count=2),
    "a2-ultragpu-1g": Shape("a2-ultragpu-1g", cpu="12", memory="170Gi", accelerator="nvidia-a100-80gb",
                            accelerator_count=1),
    "a3-highgpu-8g": Shape("a3-highgpu-8g", cpu="208", memory="1872Gi", accelerator="nvidia-h100-80gb",
                           accelerator_count=8),
})
# GPUs that attach to n1 machines.
ATTACHABLE_ACCELERATORS = ("nvidia-tesla-t4", "nvidia-tesla-v100", "nvidia-tesla-p4", "nvidia-tesla-p100")

DEFAULT_ZONES = ("us-central1-a", "us-central1-b", "us-central1-c")


def node_name(pool: str, index: int) -> str:
    return f"gke-local-{pool}-{index}"


def member_number(name: str) -> int:
    """The index of a node in its pool (gke-local-<pool>-<index>); 0 when the name has none."""
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def node_manifest(pool: str, index: int, shape: Shape, zones=DEFAULT_ZONES, extra_labels=None, taints=None) -> dict:
    """The Node object for member `index` of `pool`, status included (kwok keeps given capacity)."""
    name = node_name(pool, index)
    zone = zones[index % len(zones)]
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": shape.machine_type,
        POOL_LABEL: pool,
        ZONE_LABEL: zone,
        "topology.kubernetes.io/region": zone.rsplit("-", 1)[0],
        "type": "kwok",
        MANAGED_BY_LABEL: MANAGED_BY,
    }
    capacity = {"cpu": shape.cpu, "memory": shape.memory, "pods": shape.pods, "ephemeral-storage": "100Gi"}
    if shape.accelerator:
        labels[ACCELERATOR_LABEL] = shape.accelerator
        capacity["nvidia.com/gpu"] = str(shape.accelerator_count)
    labels.update(extra_labels or {})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"providerID": f"kwok://{name}", "taints": list(taints or [])},
        "status": {"capacity": capacity, "allocatable": dict(capacity)},
    }


def pool_nodes(core: client.CoreV1Api, pool: str) -> list:
    selector = f"{POOL_LABEL}={pool},{MANAGED_BY_LABEL}={MANAGED_BY}"
    return core.list_node(label_selector=selector).items


def ensure_pool(core: client.CoreV1Api, pool: str, count: int, shape: Shape, zones=DEFAULT_ZONES,
                extra_labels=None, taints=None) -> dict:
    """Make exactly `count` nodes exist in `pool`; returns the names created and deleted.

    Nodes are numbered 0..count-1, so growing adds the next numbers and shrinking
    removes the highest ones, the way a resize would pick its victims.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    existing = {n.metadata.name for n in pool_nodes(core, pool)}
    wanted = {node_name(pool, i): i for i in range(count)}
    created, deleted = [], []
    for name, index in sorted(wanted.items(), key=lambda kv: kv[1]):
        if name in existing:
            continue
        body = node_manifest(pool, index, shape, zones, extra_labels, taints)
        try:
            node = core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        else:
            # Creating a Node drops its status; write capacity through the status subresource
            # before kwok initialises it, so the scheduler never sees the 1Ti defaults.
            core.patch_node_status(node.metadata.name, {"status": body["status"]})
        created.append(name)
    for name in sorted(existing - set(wanted)):
        try:
            core.delete_node(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
        deleted.append(name)
    return {"pool": pool, "created": created, "deleted": deleted, "count": count}


def resize_pool(core: client.CoreV1Api, pool: str, count: int, shape: Shape, zones=DEFAULT_ZONES,
                extra_labels=None, taints=None, victims=()) -> dict:
    """Grow or shrink `pool` to `count` nodes without touching the nodes that stay.

    Growing takes the lowest free member numbers; shrinking removes `victims` first (the
    autoscaler's idle nodes), then the highest numbers. Unlike ensure_pool, a pool whose
    members are 0, 1 and 3 resized to 3 keeps node 3.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    existing = {n.metadata.name for n in pool_nodes(core, pool)}
    created, deleted = [], []
    if len(existing) > count:
        order = [v for v in victims if v in existing]
        order += sorted(existing - set(order), key=lambda n: -member_number(n))
        for name in order[:len(existing) - count]:
            try:
                core.delete_node(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
            deleted.append(name)
    index = 0
    while len(existing) + len(created) < count:
        name = node_name(pool, index)
        if name not in existing:
            body = node_manifest(pool, index, shape, zones, extra_labels, taints)
            try:
                node = core.create_node(body)
            except ApiException as exc:
                if exc.status != 409:
                    raise
            else:
                core.patch_node_status(node.metadata.name, {"status": body["status"]})
            created.append(name)
        index += 1
    return {"pool": pool, "created": created, "deleted": deleted, "count": count}


def relabel_pool(core: client.CoreV1Api, pool: str, labels: dict, taints: list, removed_labels=()) -> list:
    """Set `labels` (and remove `removed_labels`) and replace the taints on every node of `pool`."""
    names = []
    for node in pool_nodes(core, pool):
        patch_labels = dict(labels)
        patch_labels.update({k: None for k in removed_labels if k not in labels})
        core.patch_node(node.metadata.name, {"metadata": {"labels": patch_labels}, "spec": {"taints": list(taints)}})
        names.append(node.metadata.name)
    return names


def _core(kubeconfig: str) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    ensure = sub.add_parser("ensure", help="make exactly COUNT nodes exist in POOL")
    ensure.add_argument("--pool", required=True)
    ensure.add_argument("--count", type=int, required=True)
    ensure.add_argument("--shape", default="g2-standard-8", choices=sorted(SHAPES))
    ensure.add_argument("--zones", default=",".join(DEFAULT_ZONES))
    sub.add_parser("list", help="list the local nodes by pool")
    args = parser.parse_args(argv)
    core = _core(args.kubeconfig)
    if args.command == "ensure":
        result = ensure_pool(core, args.pool, args.count, SHAPES[args.shape], tuple(args.zones.split(",")))
        print(json.dumps(result))
    else:
        nodes = core.list_node(label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}").items
        for n in nodes:
            ready = next((c.status for c in n.status.conditions or [] if c.type == "Ready"), "Unknown")
            print(f"{n.metadata.labels.get(POOL_LABEL, '-'):12} {n.metadata.name:32} Ready={ready}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
