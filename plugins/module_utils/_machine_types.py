# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""The Compute Engine machine types and GPUs a GKE node pool may ask for, and which go together.

A maintained table (Google's "GPU machine types" and "machine families" pages): when Google adds a machine type or
an accelerator, add it here. Until then an inventory accepts it with ``infgw_extra_machine_types`` or
``infgw_extra_accelerators``, which skip the checks for what they name.
"""

from __future__ import annotations

import re

# Accelerator-optimized machine types come with their GPUs: machine type -> (accelerator, count).
BUNDLED_GPUS = {}
for _acc, _shapes in (
    ("nvidia-l4", {"g2-standard-4": 1, "g2-standard-8": 1, "g2-standard-12": 1, "g2-standard-16": 1,
                   "g2-standard-24": 2, "g2-standard-32": 1, "g2-standard-48": 4, "g2-standard-96": 8}),
    ("nvidia-tesla-a100", {"a2-highgpu-1g": 1, "a2-highgpu-2g": 2, "a2-highgpu-4g": 4, "a2-highgpu-8g": 8,
                           "a2-megagpu-16g": 16}),
    ("nvidia-a100-80gb", {"a2-ultragpu-1g": 1, "a2-ultragpu-2g": 2, "a2-ultragpu-4g": 4, "a2-ultragpu-8g": 8}),
    ("nvidia-h100-80gb", {"a3-highgpu-1g": 1, "a3-highgpu-2g": 2, "a3-highgpu-4g": 4, "a3-highgpu-8g": 8,
                          "a3-edgegpu-8g": 8}),
    ("nvidia-h100-mega-80gb", {"a3-megagpu-8g": 8}),
    ("nvidia-h200-141gb", {"a3-ultragpu-8g": 8}),
    ("nvidia-b200", {"a4-highgpu-8g": 8}),
    ("nvidia-gb200", {"a4x-highgpu-4g": 4}),
    ("nvidia-rtx-pro-6000", {"g4-standard-48": 1, "g4-standard-96": 2, "g4-standard-192": 4, "g4-standard-384": 8}),
):
    for _name, _count in _shapes.items():
        BUNDLED_GPUS[_name] = (_acc, _count)

# GPUs attached to N1 machine types, with the counts a VM may have.
ATTACHABLE_GPUS = {
    "nvidia-tesla-t4": (1, 2, 4),
    "nvidia-tesla-p4": (1, 2, 4),
    "nvidia-tesla-p100": (1, 2, 4),
    "nvidia-tesla-v100": (1, 2, 4, 8),
}

# Every GKE accelerator type (node label cloud.google.com/gke-accelerator) a model or node pool may name.
KNOWN_ACCELERATORS = tuple(sorted(set(acc for acc, _count in BUNDLED_GPUS.values()) | set(ATTACHABLE_GPUS)))

# Predefined general-purpose and compute-optimized machine types: family -> {shape: vCPU counts}.
_PREDEFINED = {
    "e2": {"standard": (2, 4, 8, 16, 32), "highmem": (2, 4, 8, 16), "highcpu": (2, 4, 8, 16, 32)},
    "n1": {"standard": (1, 2, 4, 8, 16, 32, 64, 96), "highmem": (2, 4, 8, 16, 32, 64, 96),
           "highcpu": (2, 4, 8, 16, 32, 64, 96)},
    "n2": {"standard": (2, 4, 8, 16, 32, 48, 64, 80, 96, 128), "highmem": (2, 4, 8, 16, 32, 48, 64, 80, 96, 128),
           "highcpu": (2, 4, 8, 16, 32, 48, 64, 80, 96)},
    "n2d": {"standard": (2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224), "highmem": (2, 4, 8, 16, 32, 48, 64, 80, 96),
            "highcpu": (2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224)},
    "n4": {"standard": (2, 4, 8, 16, 32, 48, 64, 80), "highmem": (2, 4, 8, 16, 32, 48, 64, 80),
           "highcpu": (2, 4, 8, 16, 32, 48, 64, 80)},
    "c2": {"standard": (4, 8, 16, 30, 60)},
    "c2d": {"standard": (2, 4, 8, 16, 32, 56, 112), "highmem": (2, 4, 8, 16, 32, 56, 112),
            "highcpu": (2, 4, 8, 16, 32, 56, 112)},
    "c3": {"standard": (4, 8, 22, 44, 88, 176), "highmem": (4, 8, 22, 44, 88, 176),
           "highcpu": (4, 8, 22, 44, 88, 176)},
    "c3d": {"standard": (4, 8, 16, 30, 60, 90, 180, 360), "highmem": (4, 8, 16, 30, 60, 90, 180, 360),
            "highcpu": (4, 8, 16, 30, 60, 90, 180, 360)},
    "c4": {"standard": (2, 4, 8, 16, 32, 48, 96, 144, 192, 288), "highmem": (2, 4, 8, 16, 32, 48, 96, 144, 192, 288),
           "highcpu": (2, 4, 8, 16, 32, 48, 96, 144, 192, 288)},
    "t2d": {"standard": (1, 2, 4, 8, 16, 32, 48, 60)},
}
PREDEFINED_MACHINE_TYPES = frozenset(
    "%s-%s-%d" % (family, shape, cpus)
    for family, shapes in _PREDEFINED.items() for shape, counts in shapes.items() for cpus in counts
) | frozenset(("e2-micro", "e2-small", "e2-medium"))
# Custom machine types: <family>-custom-<vCPUs>-<MiB> (N1 also plain custom-<vCPUs>-<MiB>), -ext for extended memory.
_CUSTOM = re.compile(r"^(?:(e2|n1|n2|n2d|n4)-)?custom-([0-9]+)-([0-9]+)(-ext)?$")


def is_known_machine_type(machine_type):
    return machine_type in BUNDLED_GPUS or machine_type in PREDEFINED_MACHINE_TYPES or bool(
        _CUSTOM.match(machine_type or ""))


def is_n1(machine_type):
    match = _CUSTOM.match(machine_type)
    return machine_type.startswith("n1-") or bool(match and match.group(1) in (None, "n1"))


def node_pool_problems(field, machine_type, accelerator, count, extra_machine_types=(), extra_accelerators=()):
    """What is wrong with a node pool's machine type and GPU (accelerator type and count, or None for no GPU):
    a list of messages, each naming `field` (for example ``infgw_nodepools[0]``)."""
    problems = []
    if machine_type in extra_machine_types:
        return problems
    if not is_known_machine_type(machine_type):
        problems.append("%s.machine_type: unknown machine type %s (add a machine type this table does not know yet "
                        "to infgw_extra_machine_types)" % (field, _quote(machine_type)))
        return problems
    if accelerator is None or accelerator in extra_accelerators:
        return problems
    bundled = BUNDLED_GPUS.get(machine_type)
    if bundled:
        if (accelerator, count) != bundled:
            problems.append("%s.accelerator: %s comes with %d x %s, not %s x %s" % (
                field, machine_type, bundled[1], bundled[0], count, accelerator))
    elif accelerator in ATTACHABLE_GPUS:
        if not is_n1(machine_type):
            problems.append("%s.accelerator: %s attaches to N1 machine types only, not %s" % (
                field, accelerator, machine_type))
        elif count not in ATTACHABLE_GPUS[accelerator]:
            problems.append("%s.accelerator.count: %s attaches %s at a time, not %s" % (
                field, accelerator, " or ".join(str(c) for c in ATTACHABLE_GPUS[accelerator]), count))
    else:
        owners = sorted(name for name, (acc, _count) in BUNDLED_GPUS.items() if acc == accelerator)
        problems.append("%s.accelerator: %s comes only with its own machine types (%s), not %s" % (
            field, accelerator, ", ".join(owners), machine_type))
    return problems


def _quote(value):
    return '"%s"' % value if isinstance(value, str) else str(value)
