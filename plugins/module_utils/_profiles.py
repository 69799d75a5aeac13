# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules about GIE version profiles (roles/common/vars/profiles/*.yml) that are not data: checks of the chart
values a user merges over a profile against the known bugs of that profile's charts."""

from __future__ import annotations


def _at(values, path):
    node = values
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _boolean_flags(flags):
    """Names of the flags given a boolean value, in the map form (v1.2+) or the [{name, value}] form (v1.0-v1.1)."""
    if isinstance(flags, dict):
        return sorted(str(k) for k, v in flags.items() if isinstance(v, bool) or str(v).lower() in ("true", "false"))
    if isinstance(flags, list):
        return [str(f.get("name")) for f in flags
                if isinstance(f, dict) and (isinstance(f.get("value"), bool) or str(f.get("value")).lower() in ("true", "false"))]
    return []


def chart_value_problems(values, profile, where):
    """One text per value in ``values`` (the chart values as they will be installed) that the profile's chart
    mishandles: keys the profile forbids (``forbidden_chart_values``: dotted path -> why) set to anything but an empty
    value, and boolean flags under the ``boolean_flags_broken`` paths (the charts render ``--flag "false"``, which the
    binary reads as the flag set, then a stray argument)."""
    problems = []
    version = profile.get("gie_version", "?")
    for path, why in sorted((profile.get("forbidden_chart_values") or {}).items()):
        value = _at(values, path)
        if value not in (None, [], {}, ""):
            problems.append(f"{where}.{path}: not supported with the {version} chart: {why}")
    for path in profile.get("boolean_flags_broken") or []:
        for name in _boolean_flags(_at(values, path)):
            problems.append(
                f"{where}.{path}.{name}: the {version} chart renders a flag as two arguments (--{name} \"<value>\"), "
                f"so a boolean flag is always on and cannot be turned off (upstream #2881, fixed after v1.5.0); "
                f"leave it at the binary's default or set it through env")
    return problems
