"""Machine types and accelerators a node pool may ask for, mapped to kwok node shapes (hack/localcluster/nodes.py)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from .errors import invalid

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "localcluster"))
# hack/localcluster/nodes.py: the one place that knows what a local node looks like.
import nodes  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order


def shape_for(machine_type: str, accelerators: list, zone: str) -> "nodes.Shape":
    """The node shape for a pool's config, or a 400 like GKE's for what GCE would refuse."""
    shape = nodes.MACHINE_TYPES.get(machine_type)
    if shape is None:
        raise invalid(f"Machine type \"{machine_type}\" does not exist in zone \"{zone}\".")
    accelerators = accelerators or []
    if len(accelerators) > 1:
        raise invalid("Only one accelerator type per node pool is supported.")
    if not accelerators:
        return shape
    acc = accelerators[0]
    kind, count = acc.get("acceleratorType", ""), int(acc.get("acceleratorCount", 0) or 0)
    if count < 1:
        raise invalid(f"Accelerator count for \"{kind}\" must be at least 1.")
    if shape.accelerator:
        if kind != shape.accelerator or count != shape.accelerator_count:
            raise invalid(f"Accelerator \"{kind}\" x {count} is not compatible with machine type \"{machine_type}\", "
                          f"which comes with {shape.accelerator_count} x \"{shape.accelerator}\".")
        return shape
    if machine_type.startswith("n1-") and kind in nodes.ATTACHABLE_ACCELERATORS:
        return dataclasses.replace(shape, accelerator=kind, accelerator_count=count)
    if kind in nodes.ATTACHABLE_ACCELERATORS or any(kind == s.accelerator for s in nodes.MACHINE_TYPES.values()):
        raise invalid(f"Accelerator \"{kind}\" cannot be attached to machine type \"{machine_type}\".")
    raise invalid(f"Accelerator type \"{kind}\" does not exist in zone \"{zone}\".")
