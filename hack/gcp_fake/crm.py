"""cloudresourcemanager v1: the seeded project and its IAM policy (read-modify-write with etags).

An unknown project answers 403, as Resource Manager does, so that existence does not leak.
"""

from __future__ import annotations

import copy
import json
import re

from .errors import GoogleError, invalid, permission_denied
from .world import PROJECT, PROJECT_NUMBER, Call, handler, new_etag, same_bytes

MEMBER = re.compile(r"^(allUsers|allAuthenticatedUsers|(user|serviceAccount|group|domain|deleted:user|"
                    r"deleted:serviceAccount|deleted:group):[^\s:]+|principal(Set)?://iam\.googleapis\.com/\S+|"
                    r"projectOwner:\S+|projectEditor:\S+|projectViewer:\S+)$")
ROLE = re.compile(r"^(roles/[A-Za-z0-9_.]+|(projects|organizations)/[^/]+/roles/[A-Za-z0-9_.]+)$")


def _project(call: Call, param: str, permission: str) -> str:
    project = call.params[param]
    if project not in (PROJECT, PROJECT_NUMBER):
        raise permission_denied(permission, f"projects/{project}")
    return PROJECT


@handler("cloudresourcemanager.projects.get")
def get_project(call: Call):
    _project(call, "projectId", "resourcemanager.projects.get")
    return copy.deepcopy(call.world.project)


@handler("cloudresourcemanager.projects.getIamPolicy")
def get_iam_policy(call: Call):
    _project(call, "resource", "resourcemanager.projects.getIamPolicy")
    requested = int(((call.body or {}).get("options") or {}).get("requestedPolicyVersion") or 1)
    if requested not in (0, 1, 3):
        raise invalid(f"Invalid requested policy version {requested}: must be 0, 1 or 3.")
    return copy.deepcopy(call.world.iam_policy)


def normalize_policy(policy: dict) -> dict:
    """Validate bindings and return the policy as stored: empty bindings dropped, members de-duplicated, and
    bindings of one role and condition merged into the first of them (a role appears once per condition in a
    policy Google returns; a client that appends a binding for a role already bound gets one binding back)."""
    bindings, has_condition, by_key = [], False, {}
    for i, binding in enumerate(policy.get("bindings") or []):
        role = binding.get("role", "")
        if not ROLE.match(role):
            raise invalid(f"Role {role or '(empty)'} is not supported for this resource (policy.bindings[{i}].role).")
        members = []
        for member in binding.get("members") or []:
            if not MEMBER.match(member):
                raise invalid(f"Invalid principal: {member}. Principals must be of the form <type>:<value> "
                              "(user:, serviceAccount:, group:, domain:) or principal://, principalSet://.")
            if member not in members:
                members.append(member)
        if not members:
            continue
        out = {"role": role, "members": members}
        if binding.get("condition"):
            has_condition = True
            if not binding["condition"].get("expression"):
                raise invalid(f"policy.bindings[{i}].condition.expression must be set.")
            out["condition"] = copy.deepcopy(binding["condition"])
        key = (role, json.dumps(out.get("condition"), sort_keys=True))
        if key in by_key:
            by_key[key]["members"].extend(m for m in members if m not in by_key[key]["members"])
            continue
        by_key[key] = out
        bindings.append(out)
    version = int(policy.get("version") or 1)
    if has_condition and version != 3:
        raise invalid("Policy version must be 3 for a policy with conditional role bindings.")
    stored = {"version": 3 if has_condition else max(version, 1), "bindings": bindings}
    if policy.get("auditConfigs"):
        stored["auditConfigs"] = copy.deepcopy(policy["auditConfigs"])
    return stored


@handler("cloudresourcemanager.projects.setIamPolicy")
def set_iam_policy(call: Call):
    _project(call, "resource", "resourcemanager.projects.setIamPolicy")
    world, body = call.world, call.body or {}
    policy = body.get("policy")
    if policy is None:
        raise invalid("policy must be set.")
    current = world.iam_policy
    if policy.get("etag") and not same_bytes(policy["etag"], current["etag"]):
        raise GoogleError(409, "There were concurrent policy changes. Please retry the whole read-modify-write with "
                               "exponential backoff. The request's ETag '" + policy["etag"] + "' did not match the "
                               "current policy's ETag '" + current["etag"] + "'.", status="ABORTED", reason="aborted")
    stored = normalize_policy(policy)
    mask = [f.strip() for f in (body.get("updateMask") or "").split(",") if f.strip()]
    if mask and "auditConfigs" not in mask and "audit_configs" not in mask and current.get("auditConfigs"):
        stored["auditConfigs"] = current["auditConfigs"]
    stored["etag"] = new_etag()
    world.iam_policy = stored
    return copy.deepcopy(stored)


@handler("cloudresourcemanager.projects.testIamPermissions")
def test_iam_permissions(call: Call):
    _project(call, "resource", "resourcemanager.projects.get")
    return {"permissions": list((call.body or {}).get("permissions") or [])}
