#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: compute_security_policy
short_description: Manage a Cloud Armor security policy and its rules, regional or global
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Creates, updates and deletes a Cloud Armor backend security policy through the Compute Engine API,
    regional (C(regionSecurityPolicies), when O(region) is set, as regional external and internal Application
    Load Balancers need) or global (C(securityPolicies)).
  - Rules are identified by their priority. On an existing policy, a rule whose priority is new is added
    (C(addRule)), one that differs is replaced (C(patchRule)), and with O(purge_rules=true) one that is not
    listed is removed (C(removeRule)). The default rule (priority V(2147483647)) always exists; it can be
    changed but never removed.
  - A new policy is created with all its rules in one request.
  - Check mode reports what would change; C(--diff) shows the description and the rules before and after.
  - To attach the policy to a GKE Gateway's backends, reference it from a C(GCPBackendPolicy) (the collection's
    C(cloud_armor) role does that).
options:
  name:
    description:
      - Name of the security policy.
    type: str
    required: true
  region:
    description:
      - Region of a regional security policy, for example C(us-central1). Omit for a global policy.
    type: str
  state:
    description:
      - V(present) creates or updates the policy; V(absent) deletes it (it must not be in use by a backend
        service).
    type: str
    choices: [ present, absent ]
    default: present
  description:
    description:
      - Description of the policy. Compared and updated only when set.
    type: str
  type:
    description:
      - The policy type. V(CLOUD_ARMOR) (backend security policy) when not set at creation.
      - Cannot change on an existing policy; a difference fails the task.
    type: str
    choices: [ CLOUD_ARMOR, CLOUD_ARMOR_EDGE, CLOUD_ARMOR_NETWORK ]
  rules:
    description:
      - The rules of the policy, by priority. When not set, the rules are not managed.
      - A rule matches either source IP ranges (O(rules[].src_ip_ranges), the C(SRC_IPS_V1) expression) or a
        Common Expression Language O(rules[].expression).
    type: list
    elements: dict
    suboptions:
      priority:
        description:
          - Priority of the rule, V(0) (evaluated first) to V(2147483647) (the default rule). Unique in the policy.
        type: int
        required: true
      action:
        description:
          - What a matching request gets. V(allow), or a denial with the given HTTP status.
        type: str
        required: true
        choices: [ allow, deny(403), deny(404), deny(502) ]
      src_ip_ranges:
        description:
          - Source CIDR ranges (at most ten), or C(*) for any source. The order does not matter.
          - For the default rule, C(["*"]) when neither this nor O(rules[].expression) is set.
        type: list
        elements: str
      expression:
        description:
          - A CEL match expression, for example C(origin.region_code == 'CH').
        type: str
      description:
        description:
          - Description of the rule.
        type: str
        default: ""
      preview:
        description:
          - Log what the rule would do without enforcing it.
        type: bool
        default: false
  purge_rules:
    description:
      - Remove rules whose priority is not in O(rules) (the default rule excepted).
      - With V(false), rules not listed are left alone.
    type: bool
    default: true
attributes:
  idempotent:
    description: Run twice with the same options, the second run changes nothing and reports no change.
    support: full
extends_documentation_fragment:
  - gke_ai.inference_gateway.gcp
  - gke_ai.inference_gateway.gcp.wait
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.full_support
notes:
  - Rule changes are made one operation at a time, each waited for, so a failure leaves the policy at a known
    step. Rules are changed before others are added, and removed last.
  - Creations, deletions and description changes carry a C(requestId), so a retried request is applied once. A
    description change that meets a stale fingerprint (HTTP 412, someone changed the policy meanwhile) is tried
    once more with the new one.
  - Permissions needed - C(compute.securityPolicies.get), C(compute.securityPolicies.create),
    C(compute.securityPolicies.update), C(compute.securityPolicies.delete) (global) or the
    C(compute.regionSecurityPolicies.*) ones (regional), and C(compute.globalOperations.get) or
    C(compute.regionOperations.get); role C(roles/compute.securityAdmin).
seealso:
  - name: Cloud Armor security policies
    description: Concepts, actions and rules language.
    link: https://cloud.google.com/armor/docs/security-policy-overview
"""

EXAMPLES = r"""
- name: The walkthrough's regional policy, an allow-list at priority 1000 and a default deny-403
  gke_ai.inference_gateway.compute_security_policy:
    project: my-project
    region: us-central1
    name: vllm-armor
    description: Allow only the office to the inference gateway
    rules:
      - priority: 1000
        action: allow
        src_ip_ranges: [203.0.113.0/24, 198.51.100.7/32]
        description: office
      - priority: 2147483647
        action: deny(403)
        description: default deny

- name: A global policy that blocks one country, in preview first
  gke_ai.inference_gateway.compute_security_policy:
    project: my-project
    name: edge-policy
    rules:
      - priority: 500
        action: deny(404)
        expression: "origin.region_code == 'XX'"
        preview: true

- name: Add a rule without touching the others
  gke_ai.inference_gateway.compute_security_policy:
    project: my-project
    region: us-central1
    name: vllm-armor
    purge_rules: false
    rules:
      - priority: 900
        action: allow
        src_ip_ranges: [192.0.2.10/32]

- name: Delete the policy
  gke_ai.inference_gateway.compute_security_policy:
    project: my-project
    region: us-central1
    name: vllm-armor
    state: absent
"""

RETURN = r"""
security_policy:
  description:
    - The policy as the Compute Engine API returns it after the task (in check mode, before it). Empty when it
      does not exist.
  returned: always
  type: dict
  sample:
    name: vllm-armor
    type: CLOUD_ARMOR
    region: https://www.googleapis.com/compute/v1/projects/my-project/regions/us-central1
    selfLink: https://www.googleapis.com/compute/v1/projects/my-project/regions/us-central1/securityPolicies/vllm-armor
    rules:
      - priority: 1000
        action: allow
        match:
          versionedExpr: SRC_IPS_V1
          config:
            srcIpRanges: [203.0.113.0/24]
actions:
  description:
    - What the task did (or would do), in order - C(create), C(delete), C(update_description),
      C(patch_rule:<priority>), C(add_rule:<priority>), C(remove_rule:<priority>).
  returned: always
  type: list
  elements: str
  sample: ["patch_rule:2147483647", "add_rule:1000"]
operations:
  description: Names of the long-running operations the task started.
  returned: always
  type: list
  elements: str
  sample: [operation-1764158400000-abcdef]
api_log:
  description: Retries of API requests and operations waited for during the run (no request bodies).
  returned: always
  type: list
  elements: dict
  sample: [{event: operation, action: add rule 1000 to security policy vllm-armor, operation: op-1, polls: 1,
            seconds: 1.2}]
"""

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    GcpError,
    GcpModule,
    diff_result,
    request_id,
)

DEFAULT_RULE_PRIORITY = 2147483647
MAX_SRC_IP_RANGES = 10


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        region=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        description=dict(type="str"),
        type=dict(type="str", choices=["CLOUD_ARMOR", "CLOUD_ARMOR_EDGE", "CLOUD_ARMOR_NETWORK"]),
        rules=dict(type="list", elements="dict", options=dict(
            priority=dict(type="int", required=True),
            action=dict(type="str", required=True, choices=["allow", "deny(403)", "deny(404)", "deny(502)"]),
            src_ip_ranges=dict(type="list", elements="str"),
            expression=dict(type="str"),
            description=dict(type="str", default=""),
            preview=dict(type="bool", default=False),
        ), mutually_exclusive=[("src_ip_ranges", "expression")]),
        purge_rules=dict(type="bool", default=True),
    )


# --------------------------------------------------------------------------------------
# pure functions


def policies_path(project, region=None):
    if region:
        return "compute/v1/projects/%s/regions/%s/securityPolicies" % (project, region)
    return "compute/v1/projects/%s/global/securityPolicies" % project


def policy_path(project, name, region=None):
    return "%s/%s" % (policies_path(project, region), name)


def normalize_rule(rule):
    """A rule from the options -> option shape with defaults filled in and ranges sorted."""
    out = {"priority": rule["priority"], "action": rule["action"], "description": rule.get("description") or "",
           "preview": bool(rule.get("preview"))}
    if rule.get("expression"):
        out["expression"] = rule["expression"]
    elif rule.get("src_ip_ranges"):
        out["src_ip_ranges"] = sorted(set(rule["src_ip_ranges"]))
    elif rule["priority"] == DEFAULT_RULE_PRIORITY:
        out["src_ip_ranges"] = ["*"]
    return out


def rule_from_api(rule):
    """A SecurityPolicyRule from the API -> option shape."""
    match = rule.get("match") or {}
    out = {"priority": int(rule.get("priority", 0)), "action": rule.get("action"),
           "description": rule.get("description") or "", "preview": bool(rule.get("preview"))}
    expr = (match.get("expr") or {}).get("expression")
    if expr:
        out["expression"] = expr
    else:
        out["src_ip_ranges"] = sorted(set((match.get("config") or {}).get("srcIpRanges") or []))
    return out


def rule_body(rule):
    """Option shape -> SecurityPolicyRule request body."""
    body = {"priority": rule["priority"], "action": rule["action"], "description": rule.get("description", ""),
            "preview": bool(rule.get("preview"))}
    if rule.get("expression"):
        body["match"] = {"expr": {"expression": rule["expression"]}}
    else:
        body["match"] = {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": list(rule["src_ip_ranges"])}}
    return body


def validate_rules(rules):
    problems = []
    seen = set()
    for rule in rules or []:
        prio = rule["priority"]
        if prio < 0 or prio > DEFAULT_RULE_PRIORITY:
            problems.append("rule priority %s is outside 0..%d" % (prio, DEFAULT_RULE_PRIORITY))
        if prio in seen:
            problems.append("rule priority %s is listed twice" % prio)
        seen.add(prio)
        if not rule.get("expression") and not rule.get("src_ip_ranges") and prio != DEFAULT_RULE_PRIORITY:
            problems.append("rule %s needs src_ip_ranges or expression" % prio)
        if len(rule.get("src_ip_ranges") or []) > MAX_SRC_IP_RANGES:
            problems.append("rule %s has %d src_ip_ranges; Cloud Armor takes at most %d per rule"
                            % (prio, len(rule["src_ip_ranges"]), MAX_SRC_IP_RANGES))
    return problems


def plan_rules(current, desired, purge):
    """(to patch, to add, to remove) as lists of option-shape rules (remove: priorities), by priority."""
    have = dict((r["priority"], r) for r in current)
    want = dict((r["priority"], r) for r in desired)
    patch = [want[p] for p in sorted(want) if p in have and have[p] != want[p]]
    add = [want[p] for p in sorted(want) if p not in have]
    remove = []
    if purge:
        remove = [p for p in sorted(have) if p not in want and p != DEFAULT_RULE_PRIORITY]
    return patch, add, remove


def create_body(name, params):
    body = {"name": name, "type": params.get("type") or "CLOUD_ARMOR"}
    if params.get("description") is not None:
        body["description"] = params["description"]
    if params.get("rules"):
        body["rules"] = [rule_body(normalize_rule(r)) for r in sorted(params["rules"], key=lambda r: r["priority"])]
    return body


def policy_view(policy, params):
    """The managed fields of a policy (API shape in, option shape out) for diffs."""
    if policy is None:
        return {}
    view = {}
    if params.get("description") is not None:
        view["description"] = policy.get("description") or ""
    if params.get("type") is not None:
        view["type"] = policy.get("type")
    if params.get("rules") is not None:
        rules = sorted((rule_from_api(r) for r in policy.get("rules") or []), key=lambda r: r["priority"])
        if not params.get("purge_rules", True):
            wanted = set(r["priority"] for r in params["rules"])
            rules = [r for r in rules if r["priority"] in wanted]
        view["rules"] = rules
    return view


def desired_view(params, current_view=None):
    view = {}
    if params.get("description") is not None:
        view["description"] = params["description"]
    if params.get("type") is not None:
        view["type"] = params["type"]
    if params.get("rules") is not None:
        rules = [normalize_rule(r) for r in params["rules"]]
        if current_view is not None and "rules" in current_view:
            # the default rule always exists: an unlisted one stays as it is
            if DEFAULT_RULE_PRIORITY not in set(r["priority"] for r in rules):
                rules += [r for r in current_view["rules"] if r["priority"] == DEFAULT_RULE_PRIORITY]
        view["rules"] = sorted(rules, key=lambda r: r["priority"])
    return view


# --------------------------------------------------------------------------------------
# the module


class SecurityPolicyRunner(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.name = self.params["name"]
        self.region = self.params["region"]
        self.actions = []
        self.operations = []

    def path(self):
        return policy_path(self.module.project, self.name, self.region)

    def label(self):
        return "%s security policy %s" % ("regional (%s)" % self.region if self.region else "global", self.name)

    def call(self, method, path, action, body=None, query=None, last=False, resource=None):
        op = self.module.client.request(method, "compute", path, body=body, query=query, action=action,
                                        resource=resource or self.label())
        self.operations.append(op.get("name", ""))
        if self.params["wait"] or not last:
            self.module.client.wait_operation(op, "compute", "compute", self.params["timeout"], action,
                                              project=self.module.project)
        return op

    def result(self, changed, policy, before, after):
        result = dict(changed=changed, security_policy=policy or {}, actions=self.actions,
                      operations=self.operations)
        if self.module._diff:
            result["diff"] = diff_result(before, after, header=self.label())
        return result

    def run(self):
        p = self.params
        client = self.module.client
        policy = client.get("compute", self.path(), action="read %s" % self.label(), resource=self.label())
        check = self.module.check_mode
        if p["state"] == "absent":
            if policy is None:
                return self.result(False, None, {}, {})
            self.actions.append("delete")
            if not check:
                self.call("DELETE", self.path(), "delete %s" % self.label(), query={"requestId": request_id()},
                          last=True)
            return self.result(True, policy if check else None, {"exists": True}, {"exists": False})

        problems = validate_rules(p["rules"])
        if problems:
            raise GcpError("; ".join(problems), kind="invalid")
        if policy is None:
            after = desired_view(p)
            self.actions.append("create")
            if not check:
                self.call("POST", policies_path(self.module.project, self.region), "create %s" % self.label(),
                          body=create_body(self.name, p), query={"requestId": request_id()}, last=True,
                          resource="project %s" % self.module.project)
                policy = client.get("compute", self.path(), action="read %s" % self.label(), resource=self.label())
            return self.result(True, policy if not check else None, {}, after)

        before = policy_view(policy, p)
        after = desired_view(p, before)
        if p.get("type") is not None and policy.get("type") and policy["type"] != p["type"]:
            raise GcpError("%s: type cannot change on an existing policy (is %s, wanted %s); delete it first "
                           "(state: absent)" % (self.label(), policy["type"], p["type"]), kind="invalid")
        steps = []
        if p.get("description") is not None and (policy.get("description") or "") != p["description"]:
            steps.append(("update_description", "PATCH", self.path(), {"requestId": request_id()},
                          {"description": p["description"], "fingerprint": policy.get("fingerprint")},
                          "update the description of %s" % self.label()))
        if p.get("rules") is not None:
            current = [rule_from_api(r) for r in policy.get("rules") or []]
            patch, add, remove = plan_rules(current, [normalize_rule(r) for r in p["rules"]], p["purge_rules"])
            for rule in patch:
                steps.append(("patch_rule:%d" % rule["priority"], "POST", self.path() + "/patchRule",
                              {"priority": rule["priority"]}, rule_body(rule),
                              "change rule %d of %s" % (rule["priority"], self.label())))
            for rule in add:
                steps.append(("add_rule:%d" % rule["priority"], "POST", self.path() + "/addRule", None,
                              rule_body(rule), "add rule %d to %s" % (rule["priority"], self.label())))
            for prio in remove:
                steps.append(("remove_rule:%d" % prio, "POST", self.path() + "/removeRule", {"priority": prio},
                              None, "remove rule %d from %s" % (prio, self.label())))
        if not steps:
            return self.result(False, policy, before, after)
        for index, (name, method, path, query, body, action) in enumerate(steps):
            self.actions.append(name)
            if not check:
                if body is not None and body.get("fingerprint") is None:
                    body.pop("fingerprint", None)
                try:
                    self.call(method, path, action, body=body, query=query, last=index == len(steps) - 1)
                except GcpError as e:
                    if e.http_status != 412 or "fingerprint" not in (body or {}):
                        raise
                    # someone changed the policy since it was read: take its new fingerprint, try once more
                    fresh = client.request("GET", "compute", self.path(), action="read %s" % self.label(),
                                           resource=self.label())
                    body["fingerprint"] = fresh.get("fingerprint")
                    self.call(method, path, action, body=body, query={"requestId": request_id()},
                              last=index == len(steps) - 1)
        if not check:
            policy = client.get("compute", self.path(), action="read %s" % self.label(), resource=self.label())
        return self.result(True, policy, before, after)


def main():
    module = GcpModule(argument_spec(), wait=True)
    module.run(lambda m: SecurityPolicyRunner(m).run())


if __name__ == "__main__":
    main()
