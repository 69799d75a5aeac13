# -*- coding: utf-8 -*-
# Unit tests for plugins/modules/compute_security_policy.py: rule bodies valid per compute v1,
# normalisation, the add/patch/remove plan by priority, and module runs against a scripted Google.
from __future__ import annotations

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _compute_security_policy as csp
from ansible_collections.gke_ai.inference_gateway.plugins.modules import compute_security_policy
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules import test_gcp_support
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules.test_gcp_support import (
    assert_valid_body,
    compute_op,
    run_module,
)

google = test_gcp_support.google  # the fixture: a scripted Google every GcpModule talks to

DEFAULT = csp.DEFAULT_RULE_PRIORITY
WALKTHROUGH = dict(project="local-project", region="us-central1", name="vllm-armor",
                   rules=[{"priority": 1000, "action": "allow", "src_ip_ranges": ["203.0.113.0/24"],
                           "description": "office"},
                          {"priority": DEFAULT, "action": "deny(403)", "description": "default deny"}])
POLICY_RE = r"regions/us-central1/securityPolicies/vllm-armor$"
OPS_RE = r"regions/us-central1/operations/"


def rule(priority, action="allow", **kw):
    out = {"priority": priority, "action": action, "src_ip_ranges": None, "expression": None, "description": "",
           "preview": False}
    out.update(kw)
    return out


def api_rule(priority, action, ranges=None, expression=None, description=None, preview=False):
    r = {"kind": "compute#securityPolicyRule", "priority": priority, "action": action, "preview": preview}
    if description:
        r["description"] = description
    if expression:
        r["match"] = {"expr": {"expression": expression}}
    else:
        r["match"] = {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ranges or ["*"]}}
    return r


def api_policy(rules=None, description=None):
    p = {"kind": "compute#securityPolicy", "name": "vllm-armor", "type": "CLOUD_ARMOR", "fingerprint": "Zm9v",
         "region": "https://www.googleapis.com/compute/v1/projects/local-project/regions/us-central1",
         "rules": rules if rules is not None else [api_rule(1000, "allow", ["203.0.113.0/24"], description="office"),
                                                   api_rule(DEFAULT, "deny(403)", description="default deny")]}
    if description is not None:
        p["description"] = description
    return p


def test_paths():
    assert csp.policy_path("p", "x", "us-central1") == "compute/v1/projects/p/regions/us-central1/securityPolicies/x"
    assert csp.policy_path("p", "x") == "compute/v1/projects/p/global/securityPolicies/x"


def test_create_body_of_the_walkthrough_is_valid():
    params = dict(WALKTHROUGH, description=None, type=None,
                  rules=[dict(rule(0), **r) for r in WALKTHROUGH["rules"]])
    body = csp.create_body("vllm-armor", params)
    assert body == {"name": "vllm-armor", "type": "CLOUD_ARMOR", "rules": [
        {"priority": 1000, "action": "allow", "description": "office", "preview": False,
         "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["203.0.113.0/24"]}}},
        {"priority": DEFAULT, "action": "deny(403)", "description": "default deny", "preview": False,
         "match": {"versionedExpr": "SRC_IPS_V1", "config": {"srcIpRanges": ["*"]}}}]}
    assert_valid_body("compute", "SecurityPolicy", body)


def test_expression_rule_body_is_valid():
    body = csp.rule_body(csp.normalize_rule(rule(500, "deny(404)", expression="origin.region_code == 'XX'",
                                                 preview=True)))
    assert body["match"] == {"expr": {"expression": "origin.region_code == 'XX'"}}
    assert_valid_body("compute", "SecurityPolicyRule", body)


def test_api_rules_normalise_like_option_rules():
    assert csp.rule_from_api(api_rule(1000, "allow", ["10.0.0.0/8", "1.2.3.4/32"])) == \
        csp.normalize_rule(rule(1000, src_ip_ranges=["1.2.3.4/32", "10.0.0.0/8", "10.0.0.0/8"]))
    assert csp.rule_from_api(api_rule(DEFAULT, "deny(403)")) == csp.normalize_rule(rule(DEFAULT, "deny(403)"))


def test_plan_rules_by_priority():
    current = [csp.rule_from_api(r) for r in (api_rule(1000, "allow", ["1.1.1.1/32"]), api_rule(2000, "allow"),
                                              api_rule(DEFAULT, "allow"))]
    desired = [csp.normalize_rule(r) for r in (rule(1000, src_ip_ranges=["2.2.2.2/32"]),
                                               rule(1500, src_ip_ranges=["3.3.3.3/32"]), rule(DEFAULT, "deny(403)"))]
    patch, add, remove = csp.plan_rules(current, desired, purge=True)
    assert [r["priority"] for r in patch] == [1000, DEFAULT]
    assert [r["priority"] for r in add] == [1500]
    assert remove == [2000]
    assert csp.plan_rules(current, desired, purge=False)[2] == []


def test_default_rule_is_never_removed():
    current = [csp.rule_from_api(api_rule(DEFAULT, "allow"))]
    assert csp.plan_rules(current, [], purge=True) == ([], [], [])


@pytest.mark.parametrize("rules, problem", [
    ([rule(5), rule(5, src_ip_ranges=["1.1.1.1/32"])], "listed twice"),
    ([rule(5)], "rule 5 needs src_ip_ranges or expression"),
    ([rule(-1, src_ip_ranges=["*"])], "outside"),
    ([rule(1, src_ip_ranges=["10.0.0.%d/32" % i for i in range(11)])], "at most 10"),
])
def test_rule_validation(rules, problem):
    assert any(problem in p for p in csp.validate_rules(rules))


def test_create_runs_one_insert(google, capsys):
    google.add("GET", POLICY_RE, (404, {"error": {"code": 404, "message": "not found"}}))
    google.add("POST", r"regions/us-central1/securityPolicies$", compute_op("op-1", "RUNNING", region="us-central1"))
    google.add("GET", OPS_RE + "op-1$", compute_op("op-1", "DONE", region="us-central1"))
    google.add("GET", POLICY_RE, api_policy())
    result = run_module(compute_security_policy, capsys, diff=True, **WALKTHROUGH)
    assert result["changed"] is True and result["actions"] == ["create"]
    assert [r["priority"] for r in google.calls[1].body["rules"]] == [1000, DEFAULT]
    assert result["diff"]["after"]["rules"][1] == {"priority": DEFAULT, "action": "deny(403)",
                                                   "description": "default deny", "preview": False,
                                                   "src_ip_ranges": ["*"]}


def test_rerun_is_a_no_op(google, capsys):
    google.add("GET", POLICY_RE, api_policy())
    result = run_module(compute_security_policy, capsys, **WALKTHROUGH)
    assert result["changed"] is False and len(google.calls) == 1


def test_rules_added_patched_removed_in_order(google, capsys):
    google.add("GET", POLICY_RE, api_policy(rules=[api_rule(900, "allow", ["192.0.2.1/32"]),
                                                   api_rule(1000, "allow", ["198.51.100.0/24"], description="office"),
                                                   api_rule(DEFAULT, "allow")]))
    google.add("POST", POLICY_RE[:-1] + "/patchRule$", compute_op("op-p1", "DONE", region="us-central1"))
    google.add("POST", POLICY_RE[:-1] + "/patchRule$", compute_op("op-p2", "DONE", region="us-central1"))
    google.add("POST", POLICY_RE[:-1] + "/removeRule$", compute_op("op-r", "DONE", region="us-central1"))
    google.add("GET", POLICY_RE, api_policy())
    result = run_module(compute_security_policy, capsys, diff=True, **WALKTHROUGH)
    assert result["actions"] == ["patch_rule:1000", "patch_rule:%d" % DEFAULT, "remove_rule:900"]
    assert google.calls[1].query == {"priority": 1000}
    assert google.calls[1].body["match"]["config"]["srcIpRanges"] == ["203.0.113.0/24"]
    assert google.calls[3].query == {"priority": 900} and google.calls[3].body is None
    assert [r["priority"] for r in result["diff"]["before"]["rules"]] == [900, 1000, DEFAULT]


def test_check_mode_changes_nothing(google, capsys):
    google.add("GET", POLICY_RE, api_policy(rules=[api_rule(DEFAULT, "allow")]))
    result = run_module(compute_security_policy, capsys, check_mode=True, **WALKTHROUGH)
    assert result["changed"] is True
    assert result["actions"] == ["patch_rule:%d" % DEFAULT, "add_rule:1000"]
    assert [c.method for c in google.calls] == ["GET"]


def test_unlisted_default_rule_is_left_alone(google, capsys):
    google.add("GET", POLICY_RE, api_policy(rules=[api_rule(1000, "allow", ["203.0.113.0/24"]),
                                                   api_rule(DEFAULT, "allow")]))
    result = run_module(compute_security_policy, capsys, diff=True, project="local-project", region="us-central1", name="vllm-armor",
                        rules=[{"priority": 1000, "action": "allow", "src_ip_ranges": ["203.0.113.0/24"]}])
    assert result["changed"] is False
    assert result["diff"]["before"] == result["diff"]["after"]


def test_description_patch_carries_the_fingerprint(google, capsys):
    google.add("GET", r"global/securityPolicies/edge$", dict(api_policy(description="old"), name="edge",
                                                             region=None))
    google.add("PATCH", r"global/securityPolicies/edge$", compute_op("op-d", "DONE"))
    google.add("GET", r"global/securityPolicies/edge$", dict(api_policy(description="new"), name="edge"))
    result = run_module(compute_security_policy, capsys, project="local-project", name="edge", description="new")
    assert result["actions"] == ["update_description"]
    assert google.calls[1].body == {"description": "new", "fingerprint": "Zm9v"}


def test_type_cannot_change(google, capsys):
    google.add("GET", POLICY_RE, api_policy())
    result = run_module(compute_security_policy, capsys, type="CLOUD_ARMOR_EDGE", **WALKTHROUGH)
    assert result["failed"] is True and "type cannot change" in result["msg"]


def test_absent(google, capsys):
    google.add("GET", POLICY_RE, api_policy())
    google.add("DELETE", POLICY_RE, compute_op("op-del", "DONE", region="us-central1"))
    result = run_module(compute_security_policy, capsys, state="absent", project="local-project", region="us-central1",
                        name="vllm-armor")
    assert result["changed"] is True and result["actions"] == ["delete"]


def test_operation_error_names_the_rule(google, capsys):
    google.add("GET", POLICY_RE, api_policy(rules=[api_rule(DEFAULT, "deny(403)", description="default deny")]))
    google.add("POST", POLICY_RE[:-1] + "/addRule$", compute_op("op-a", "RUNNING", region="us-central1"))
    google.add("GET", OPS_RE + "op-a$", compute_op("op-a", "DONE", region="us-central1", error={
        "code": "INVALID_FIELD_VALUE", "message": "Invalid value for field 'resource.match.config.srcIpRanges'"}))
    result = run_module(compute_security_policy, capsys, **WALKTHROUGH)
    assert result["failed"] is True
    assert result["msg"].startswith("add rule 1000 to regional (us-central1) security policy vllm-armor failed: "
                                    "operation op-a ended in error INVALID_FIELD_VALUE")


def test_a_retried_insert_carries_the_same_request_id(google, capsys):
    google.add("GET", POLICY_RE, (404, {"error": {"code": 404, "message": "not found"}}))
    google.add("POST", r"regions/us-central1/securityPolicies$", (503, {"error": {"code": 503, "message": "later"}}))
    google.add("POST", r"regions/us-central1/securityPolicies$", compute_op("op-1", "DONE", region="us-central1"))
    google.add("GET", POLICY_RE, api_policy())
    result = run_module(compute_security_policy, capsys, **WALKTHROUGH)
    assert result["changed"] is True
    first, second = google.calls[1].query["requestId"], google.calls[2].query["requestId"]
    assert first == second and len(first) == 36


def test_a_stale_fingerprint_is_refreshed_once(google, capsys):
    google.add("GET", POLICY_RE, api_policy(description="old"))
    google.add("PATCH", POLICY_RE, (412, {"error": {"code": 412, "status": "FAILED_PRECONDITION",
                                                    "message": "Supplied fingerprint does not match current metadata "
                                                               "fingerprint."}}))
    google.add("GET", POLICY_RE, dict(api_policy(description="other"), fingerprint="YmFy"))
    google.add("PATCH", POLICY_RE, compute_op("op-d", "DONE", region="us-central1"))
    google.add("GET", POLICY_RE, api_policy(description="new"))
    result = run_module(compute_security_policy, capsys, project="local-project", region="us-central1", name="vllm-armor",
                        description="new")
    assert result["changed"] is True
    assert [c.body.get("fingerprint") for c in google.calls if c.method == "PATCH"] == ["Zm9v", "YmFy"]
