# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gcp_backend_policy_problems: what is wrong with the GCPBackendPolicies of a namespace after the cloud_armor step."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def field_managers(obj, path):
    """Managers whose entry of the main resource in ``metadata.managedFields`` owns the dotted ``path``."""
    keys = ["f:" + part for part in path.split(".")]
    owners = []
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if entry.get("subresource"):
            continue
        node = entry.get("fieldsV1") or {}
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                break
        if node is not None and entry.get("manager") not in owners:
            owners.append(entry.get("manager"))
    return owners


def _targets(policy, pool, group):
    ref = (policy.get("spec") or {}).get("targetRef") or {}
    return ref.get("kind") == "InferencePool" and ref.get("name") == pool and ref.get("group") == group


def gcp_backend_policy_problems(policies, updated, pools, group, field_manager, secured):
    """Problems, one text each: a pool targeted by no or by several GCPBackendPolicies (GKE applies only one), or a
    field the role writes (targetRef, timeoutSec, logging, and securityPolicy on ``secured`` pools) owned by
    another manager than ``field_manager``. ``updated`` (the objects after the step) replace ``policies`` (as read
    before) by name."""
    if not isinstance(policies, list) or not isinstance(updated, list):
        raise AnsibleFilterError("gcp_backend_policy_problems expects lists of GCPBackendPolicy objects")
    current = {(p.get("metadata") or {}).get("name"): p for p in policies}
    current.update({(p.get("metadata") or {}).get("name"): p for p in updated if p.get("kind") == "GCPBackendPolicy"})
    problems = []
    for pool in pools:
        targeting = sorted(name for name, policy in current.items() if _targets(policy, pool, group))
        if len(targeting) != 1:
            problems.append("InferencePool %s is targeted by %d GCPBackendPolicies %s; GKE applies only one"
                            % (pool, len(targeting), targeting))
        if pool not in current:
            continue
        paths = ["spec.targetRef", "spec.default.timeoutSec", "spec.default.logging"]
        if pool in secured:
            paths.append("spec.default.securityPolicy")
        for path in paths:
            owners = field_managers(current[pool], path)
            if owners != [field_manager]:
                problems.append("GCPBackendPolicy %s %s is owned by %s, expected only %s"
                                % (pool, path, owners, field_manager))
    return problems


class FilterModule(object):
    def filters(self):
        return {"gcp_backend_policy_problems": gcp_backend_policy_problems}
