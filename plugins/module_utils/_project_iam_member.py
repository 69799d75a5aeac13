# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""One member of one role in a project's IAM policy for ``converge``: member validation and the read-modify-write
with the policy's etag (the ``gke_ai.inference_gateway.project_iam_member`` module is its documentation and
``main()``)."""

from __future__ import annotations

import random
import re

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    Change,
    GcpResource,
    Plan,
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
# the resource


class ProjectIamMember(GcpResource):
    """The policy is the resource: read with getIamPolicy, written whole with setIamPolicy and the etag it was read
    with. A concurrent writer makes Google answer 409 ABORTED: read again, apply the member again, write again."""

    service = "cloudresourcemanager"
    conflict_statuses = (409,)

    def __init__(self, module):
        super(ProjectIamMember, self).__init__(module)
        self.written = None
        self.conflict_retries = self.params["conflict_retries"]
        verb = "revoke" if self.absent else "grant"
        self.what = "%s %s for %s" % (verb, self.params["role"], self.params["member"])

    def base(self):
        return "v1/projects/%s" % self.project

    def label(self):
        return "project %s" % self.project

    def validate(self):
        problems = [m for m in (validate_role(self.params["role"]), validate_member(self.params["member"])) if m]
        if self.params["conflict_retries"] < 0:
            problems.append("conflict_retries must be >= 0")
        return problems

    def read(self):
        return self.client.request("POST", "cloudresourcemanager", self.base() + ":getIamPolicy",
                                   body=get_policy_request(),
                                   action="%s: read the IAM policy of %s" % (self.what, self.label()),
                                   resource=self.label())

    def plan(self, current):
        role = self.params["role"]
        changed, new_policy = apply_member(current, role, self.params["member"], self.params["state"])
        after = binding_members(new_policy, role)
        plan = Plan([], {"role": role, "members": binding_members(current, role)}, {"role": role, "members": after},
                    binding={"role": role, "members": after}, etag=current.get("etag", ""))
        if changed:
            plan.changes.append(Change("set_iam_policy", "POST", self.base() + ":setIamPolicy",
                                       set_policy_request(new_policy),
                                       description="%s: write the IAM policy of %s" % (self.what, self.label())))
        return plan

    def conflict_delay(self, attempt):
        return 0.5 * attempt + random.random() * 0.5

    def render_current(self):
        return {}  # render mode: the request adds the binding to an empty policy (see render_note)

    def render_note(self):
        return ("setIamPolicy replaces the whole policy: add this binding to the policy getIamPolicy returns and"
                " send it with that policy's etag")

    def after_changes(self, current, answers):
        self.written = answers[-1] if answers else None  # setIamPolicy answers with the policy it wrote
        return self.written

    def result(self, final, plan, attempts):
        """The plan says the binding and etag as read (and as it would be); a write says them as written."""
        out = {"attempts": attempts}
        written = self.written
        if written is not None:
            out["etag"] = written.get("etag", "")
            if written.get("bindings") is not None:
                out["binding"] = {"role": self.params["role"],
                                  "members": binding_members(written, self.params["role"])}
        return out
