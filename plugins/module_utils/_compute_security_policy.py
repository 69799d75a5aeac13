# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""A Cloud Armor security policy for ``converge``: rule bodies, normalisation and the rule plan (the
``gke_ai.inference_gateway.compute_security_policy`` module is its documentation and ``main()``)."""

from __future__ import annotations

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    Change,
    GcpError,
    GcpResource,
    Plan,
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
# the resource


class SecurityPolicy(GcpResource):
    service = "compute"
    operation_style = "compute"
    conflict_statuses = (412,)  # a stale fingerprint: read the policy again, plan again, once
    result_key = "security_policy"

    def path(self):
        return policy_path(self.project, self.params["name"], self.params["region"])

    def label(self):
        region = self.params["region"]
        return "%s security policy %s" % ("regional (%s)" % region if region else "global", self.params["name"])

    def validate(self):
        return validate_rules(self.params["rules"]) if not self.absent else []

    def read(self):
        return self.client.get("compute", self.path(), action="read %s" % self.label(), resource=self.label())

    def plan(self, current):
        p, label = self.params, self.label()
        if self.absent:
            return self.deletion_plan(current, Change("delete", "DELETE", self.path(), query={"requestId": request_id()},
                                                      description="delete %s" % label))
        if current is None:
            return Plan([Change("create", "POST", policies_path(self.project, p["region"]),
                                create_body(p["name"], p), query={"requestId": request_id()},
                                description="create %s" % label, resource="project %s" % self.project)],
                        {}, desired_view(p))
        if p.get("type") is not None and current.get("type") and current["type"] != p["type"]:
            raise GcpError("%s: type cannot change on an existing policy (is %s, wanted %s); delete it first "
                           "(state: absent)" % (label, current["type"], p["type"]), kind="invalid")
        before = policy_view(current, p)
        plan = Plan([], before, desired_view(p, before))
        if p.get("description") is not None and (current.get("description") or "") != p["description"]:
            body = {"description": p["description"]}
            if current.get("fingerprint") is not None:
                body["fingerprint"] = current["fingerprint"]
            plan.changes.append(Change("update_description", "PATCH", self.path(), body,
                                       query={"requestId": request_id()},
                                       description="update the description of %s" % label))
        if p.get("rules") is not None:
            have = [rule_from_api(r) for r in current.get("rules") or []]
            patch, add, remove = plan_rules(have, [normalize_rule(r) for r in p["rules"]], p["purge_rules"])
            for rule in patch:
                plan.changes.append(Change("patch_rule:%d" % rule["priority"], "POST", self.path() + "/patchRule",
                                           rule_body(rule), query={"priority": rule["priority"]},
                                           description="change rule %d of %s" % (rule["priority"], label)))
            for rule in add:
                plan.changes.append(Change("add_rule:%d" % rule["priority"], "POST", self.path() + "/addRule",
                                           rule_body(rule), description="add rule %d to %s" % (rule["priority"], label)))
            for prio in remove:
                plan.changes.append(Change("remove_rule:%d" % prio, "POST", self.path() + "/removeRule",
                                           query={"priority": prio},
                                           description="remove rule %d from %s" % (prio, label)))
        return plan
