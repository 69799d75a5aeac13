#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: project_iam_member
short_description: Grant or revoke one IAM role for one member on a Google Cloud project
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Adds one member to, or removes it from, the binding of one role in a project's IAM policy, leaving every
    other binding and member as it is (like C(gcloud projects add-iam-policy-binding)).
  - Read-modify-write with the policy's etag - the policy is read (C(getIamPolicy), policy version 3), changed,
    and written back (C(setIamPolicy)) with the etag it was read with. When another writer changed the policy in
    between, Google answers HTTP 409 (C(ABORTED)); the module then reads the policy again and re-applies its
    change, up to O(conflict_retries) times.
  - Members are validated before any request, including workload identity principals such as the walkthrough's
    custom metrics adapter,
    C(principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-project.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter).
  - Only the binding without a condition is managed; conditional bindings of the same role are left alone.
  - Check mode reads the policy and reports the change; C(--diff) shows the role's members before and after.
options:
  role:
    description:
      - The role, as C(roles/NAME) (predefined), C(projects/PROJECT/roles/NAME) or
        C(organizations/ORG/roles/NAME) (custom).
    type: str
    required: true
  member:
    description:
      - The principal, one of C(user:EMAIL), C(serviceAccount:EMAIL), C(group:EMAIL), C(domain:DOMAIN),
        C(principal://iam.googleapis.com/...) (one workload or workforce identity) or
        C(principalSet://iam.googleapis.com/...) (a set of them).
      - In C(principal://) and C(principalSet://) members of workload identity pools, the project is its
        B(number), not its ID.
      - E-mail addresses and domains are compared without regard to case.
    type: str
    required: true
  state:
    description:
      - V(present) adds the member to the role's binding; V(absent) removes it (and the binding when it becomes
        empty).
    type: str
    choices: [ present, absent ]
    default: present
  conflict_retries:
    description:
      - How many times to read the policy again and re-apply the change after a concurrent modification
        (HTTP 409 on C(setIamPolicy)).
    type: int
    default: 5
attributes:
  idempotent:
    description: Run twice with the same options, the second run changes nothing and reports no change.
    support: full
extends_documentation_fragment:
  - gke_ai.inference_gateway.gcp
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.full_support
notes:
  - Permissions needed - C(resourcemanager.projects.getIamPolicy) and C(resourcemanager.projects.setIamPolicy)
    (role C(roles/resourcemanager.projectIamAdmin)).
  - IAM changes take up to a few minutes to be effective everywhere.
seealso:
  - name: Principal identifiers
    description: The member forms IAM accepts.
    link: https://cloud.google.com/iam/docs/principal-identifiers
"""

EXAMPLES = r"""
- name: Let the custom metrics adapter (workload identity) read Cloud Monitoring, as the walkthrough does
  gke_ai.inference_gateway.project_iam_member:
    project: my-project
    role: roles/monitoring.viewer
    member: >-
      principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-project.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter

- name: Grant a service account a role
  gke_ai.inference_gateway.project_iam_member:
    project: my-project
    role: roles/container.developer
    member: serviceAccount:deployer@my-project.iam.gserviceaccount.com

- name: Revoke it
  gke_ai.inference_gateway.project_iam_member:
    project: my-project
    role: roles/container.developer
    member: serviceAccount:deployer@my-project.iam.gserviceaccount.com
    state: absent
"""

RETURN = r"""
binding:
  description:
    - The role's binding (without condition) after the task; in check mode, as it would be.
      C(members) is empty when the role has no such binding.
  returned: always
  type: dict
  contains:
    role:
      description: The role.
      type: str
      sample: roles/monitoring.viewer
    members:
      description: Every member of the binding, sorted.
      type: list
      elements: str
      sample: ["serviceAccount:deployer@my-project.iam.gserviceaccount.com"]
etag:
  description: The etag of the policy after the task (before it when nothing changed or in check mode).
  returned: always
  type: str
  sample: BwYlL0h0w9Y=
attempts:
  description: Number of read-modify-write rounds (more than one after concurrent modifications).
  returned: always
  type: int
  sample: 1
api_log:
  description: Retries of API requests during the run (no request bodies).
  returned: always
  type: list
  elements: dict
  sample: []
"""

import random
import re

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    GcpError,
    GcpModule,
    diff_result,
)

POLICY_VERSION = 3
_EMAIL = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,}"
_SEG = r"[^/\s]+"
_WIP = r"projects/(?P<project>[^/\s]+)/locations/global/workloadIdentityPools/" + _SEG
_WFP = r"locations/global/workforcePools/" + _SEG
MEMBER_PATTERNS = (
    ("user", re.compile(r"^user:%s$" % _EMAIL)),
    ("serviceAccount", re.compile(r"^serviceAccount:%s$" % _EMAIL)),
    ("group", re.compile(r"^group:%s$" % _EMAIL)),
    ("domain", re.compile(r"^domain:%s$" % _DOMAIN)),
    ("principal", re.compile(r"^principal://iam\.googleapis\.com/(?:%s|%s)/subject/\S+$" % (_WIP, _WFP))),
    ("principalSet", re.compile(
        r"^principalSet://iam\.googleapis\.com/(?:(?:%s|%s)/(?:\*|group/\S+|attribute\.[A-Za-z0-9_.-]+/\S+|"
        r"kubernetes\.\S+)|projects/(?P<project2>[^/\s]+)/type/\S+)$" % (_WIP, _WFP))),
)
ROLE_RE = re.compile(r"^(?:roles/[A-Za-z0-9_.]+|(?:projects|organizations)/[^/\s]+/roles/[A-Za-z0-9_.]+)$")


def argument_spec():
    return dict(
        role=dict(type="str", required=True),
        member=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        conflict_retries=dict(type="int", default=5),
    )


# --------------------------------------------------------------------------------------
# pure functions


def validate_member(member):
    """None when ``member`` is a principal identifier IAM accepts on a project, else why not."""
    if not member or member != member.strip():
        return "member %r is empty or has surrounding spaces" % member
    if member in ("allUsers", "allAuthenticatedUsers"):
        return "member %s cannot be granted roles on a project" % member
    prefix = member.split(":", 1)[0]
    for kind, pattern in MEMBER_PATTERNS:
        if prefix != kind:
            continue
        m = pattern.match(member)
        if not m:
            return "member %r is not a valid %s member (%s)" % (member, kind, _FORMS[kind])
        project = m.groupdict().get("project") or m.groupdict().get("project2")
        if project is not None and not project.isdigit():
            return ("member %r names project %r; workload identity members need the project number (for "
                    "example 123456789012), not its ID" % (member, project))
        return None
    return ("member %r must start with user:, serviceAccount:, group:, domain:, principal:// or principalSet://"
            % member)


_FORMS = {
    "user": "user:EMAIL",
    "serviceAccount": "serviceAccount:EMAIL",
    "group": "group:EMAIL",
    "domain": "domain:DOMAIN",
    "principal": "principal://iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/"
                 "subject/SUBJECT or principal://iam.googleapis.com/locations/global/workforcePools/POOL/subject/"
                 "SUBJECT",
    "principalSet": "principalSet://iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/"
                    "POOL/(group/G|attribute.NAME/VALUE|*|kubernetes...) or the workforcePools form",
}


def validate_role(role):
    if not ROLE_RE.match(role or ""):
        return ("role %r must be roles/NAME, projects/PROJECT/roles/NAME or organizations/ORG/roles/NAME" % role)
    return None


def member_key(member):
    """Comparison key: e-mail and domain members are case-insensitive, principals are not."""
    kind, sep, rest = member.partition(":")
    if sep and kind in ("user", "serviceAccount", "group", "domain"):
        return "%s:%s" % (kind, rest.lower())
    return member


def _unconditional(binding, role):
    return binding.get("role") == role and not binding.get("condition")


def binding_members(policy, role):
    members = []
    for binding in (policy or {}).get("bindings") or []:
        if _unconditional(binding, role):
            members.extend(binding.get("members") or [])
    return sorted(set(members))


def apply_member(policy, role, member, state):
    """(changed, new policy) with ``member`` added to or removed from the role's unconditional binding.

    The input is not modified. The new policy keeps every other binding, the audit configs and the etag.
    """
    policy = dict(policy or {})
    bindings = [dict(b, members=list(b.get("members") or [])) for b in policy.get("bindings") or []]
    key = member_key(member)
    targets = [b for b in bindings if _unconditional(b, role)]
    present = any(member_key(m) == key for b in targets for m in b["members"])
    if state == "present":
        if present:
            return False, policy
        if targets:
            targets[0]["members"].append(member)
        else:
            bindings.append({"role": role, "members": [member]})
    else:
        if not present:
            return False, policy
        for b in targets:
            b["members"] = [m for m in b["members"] if member_key(m) != key]
        bindings = [b for b in bindings if b["members"] or not _unconditional(b, role)]
    policy["bindings"] = bindings
    policy["version"] = POLICY_VERSION
    return True, policy


def get_policy_request():
    return {"options": {"requestedPolicyVersion": POLICY_VERSION}}


def set_policy_request(policy):
    body = {k: v for k, v in policy.items() if k in ("bindings", "auditConfigs", "etag", "version")}
    return {"policy": body}


# --------------------------------------------------------------------------------------
# the module


def run(module):
    p = module.params
    for problem in (validate_role(p["role"]), validate_member(p["member"])):
        if problem:
            raise GcpError(problem, kind="invalid")
    if p["conflict_retries"] < 0:
        raise GcpError("conflict_retries must be >= 0", kind="invalid")
    project = module.project
    client = module.client
    base = "v1/projects/%s" % project
    label = "project %s" % project
    what = "%s %s for %s" % ("grant" if p["state"] == "present" else "revoke", p["role"], p["member"])
    attempts = 0
    while True:
        attempts += 1
        policy = client.request("POST", "cloudresourcemanager", base + ":getIamPolicy", body=get_policy_request(),
                                action="%s: read the IAM policy of %s" % (what, label), resource=label)
        before = binding_members(policy, p["role"])
        changed, new_policy = apply_member(policy, p["role"], p["member"], p["state"])
        after = binding_members(new_policy, p["role"])
        result = dict(changed=changed, binding={"role": p["role"], "members": after}, etag=policy.get("etag", ""),
                      attempts=attempts)
        if module._diff:
            result["diff"] = diff_result({"role": p["role"], "members": before}, {"role": p["role"], "members": after},
                                         header="IAM policy of %s" % label)
        if not changed or module.check_mode:
            return result
        try:
            written = client.request("POST", "cloudresourcemanager", base + ":setIamPolicy",
                                     body=set_policy_request(new_policy),
                                     action="%s: write the IAM policy of %s" % (what, label), resource=label)
        except GcpError as e:
            if e.http_status == 409 and attempts <= p["conflict_retries"]:
                delay = 0.5 * attempts + random.random() * 0.5
                client.log.append({"event": "conflict", "action": what, "reason": e.status or "ABORTED",
                                   "delay": round(delay, 3)})
                client.sleep(delay)
                continue
            if e.http_status == 409:
                raise GcpError("%s: the IAM policy of %s kept changing under us; gave up after %d attempts (%s)"
                               % (what, label, attempts, e.message or e.msg), kind="conflict", http_status=409,
                               status=e.status, resource=label, attempts=attempts)
            raise
        result["etag"] = written.get("etag", "")
        result["binding"]["members"] = binding_members(written, p["role"]) if written.get("bindings") is not None \
            else after
        return result


def main():
    module = GcpModule(argument_spec())
    module.run(run)


if __name__ == "__main__":
    main()
