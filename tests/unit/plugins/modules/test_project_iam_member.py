# -*- coding: utf-8 -*-
# Unit tests for plugins/modules/project_iam_member.py: member and role validation, the policy
# edit, request bodies valid per cloudresourcemanager v1, and the etag conflict retry loop.
from __future__ import annotations

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _project_iam_member as pim
from ansible_collections.gke_ai.inference_gateway.plugins.modules import project_iam_member
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules import test_gcp_support
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules.test_gcp_support import (
    assert_valid_body,
    run_module,
)

google = test_gcp_support.google  # the fixture: a scripted Google every GcpModule talks to

ADAPTER = ("principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/"
           "local-project.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter")
GET_RE = r"v1/projects/local-project:getIamPolicy$"
SET_RE = r"v1/projects/local-project:setIamPolicy$"


@pytest.mark.parametrize("member", [
    "user:alice@example.com",
    "serviceAccount:deployer@local-project.iam.gserviceaccount.com",
    "group:admins@example.com",
    "domain:example.com",
    ADAPTER,
    "principal://iam.googleapis.com/locations/global/workforcePools/corp/subject/alice@example.com",
    "principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/"
    "local-project.svc.id.goog/kubernetes.cluster/https://container.googleapis.com/v1/projects/local-project/"
    "locations/us-central1/clusters/local-cluster",
    "principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/pool/"
    "attribute.repository/org/repo",
    "principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/pool/*",
    "principalSet://iam.googleapis.com/locations/global/workforcePools/corp/group/admins",
])
def test_valid_members(member):
    assert pim.validate_member(member) is None


@pytest.mark.parametrize("member, problem", [
    ("alice@example.com", "must start with user:"),
    ("user:alice", "not a valid user member"),
    ("serviceAccount:not an email", "not a valid serviceAccount member"),
    ("domain:-bad-.com", "not a valid domain member"),
    ("allUsers", "cannot be granted roles on a project"),
    (" user:alice@example.com", "surrounding spaces"),
    (ADAPTER.replace("123456789012", "local-project"), "need the project number"),
    ("principal://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/p", "not a valid principal"),
    ("principal://sts.googleapis.com/projects/123/locations/global/workloadIdentityPools/p/subject/x",
     "not a valid principal"),
    ("principalSet://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/p/subject/x",
     "not a valid principalSet"),
    ("deleted:user:alice@example.com?uid=1", "must start with"),
])
def test_invalid_members(member, problem):
    assert problem in pim.validate_member(member)


@pytest.mark.parametrize("role, ok", [
    ("roles/monitoring.viewer", True), ("projects/p/roles/custom_1", True), ("organizations/1/roles/x.y", True),
    ("monitoring.viewer", False), ("roles/", False), ("roles/a b", False),
])
def test_roles(role, ok):
    assert (pim.validate_role(role) is None) is ok


POLICY = {"version": 1, "etag": "BwYA", "bindings": [
    {"role": "roles/owner", "members": ["user:owner@example.com"]},
    {"role": "roles/monitoring.viewer", "members": ["user:Bob@Example.com"],
     "condition": {"expression": "request.time < timestamp('2030-01-01T00:00:00Z')", "title": "until 2030"}},
]}


def test_add_member_creates_the_unconditional_binding_and_keeps_the_rest():
    changed, new = pim.apply_member(POLICY, "roles/monitoring.viewer", ADAPTER, "present")
    assert changed is True
    assert new["bindings"][:2] == POLICY["bindings"]
    assert new["bindings"][2] == {"role": "roles/monitoring.viewer", "members": [ADAPTER]}
    assert new["etag"] == "BwYA" and new["version"] == 3
    assert len(POLICY["bindings"]) == 2  # input untouched
    assert_valid_body("cloudresourcemanager", "SetIamPolicyRequest", pim.set_policy_request(new))


def test_members_compare_emails_without_case_and_conditional_bindings_are_ignored():
    assert pim.apply_member(POLICY, "roles/owner", "user:OWNER@example.com", "present")[0] is False
    changed, new = pim.apply_member(POLICY, "roles/monitoring.viewer", "user:bob@example.com", "absent")
    assert changed is False and new == POLICY


def test_remove_member_drops_an_empty_binding():
    changed, new = pim.apply_member(POLICY, "roles/owner", "user:owner@example.com", "absent")
    assert changed is True
    assert [b["role"] for b in new["bindings"]] == ["roles/monitoring.viewer"]


def test_get_request_asks_for_version_3():
    assert pim.get_policy_request() == {"options": {"requestedPolicyVersion": 3}}
    assert_valid_body("cloudresourcemanager", "GetIamPolicyRequest", pim.get_policy_request())


def test_grant_then_noop(google, capsys):
    google.add("POST", GET_RE, dict(POLICY))
    google.add("POST", SET_RE, lambda call: dict(call.body["policy"], etag="BwYB"))
    result = run_module(project_iam_member, capsys, diff=True, project="local-project", role="roles/monitoring.viewer",
                        member=ADAPTER)
    assert result["changed"] is True and result["attempts"] == 1 and result["etag"] == "BwYB"
    assert result["binding"] == {"role": "roles/monitoring.viewer", "members": [ADAPTER]}
    assert result["diff"]["before"]["members"] == [] and result["diff"]["after"]["members"] == [ADAPTER]
    sent = google.calls[1].body["policy"]
    assert sent["etag"] == "BwYA" and sent["version"] == 3
    google.add("POST", GET_RE, dict(google.calls[1].body["policy"], etag="BwYB"))
    again = run_module(project_iam_member, capsys, project="local-project", role="roles/monitoring.viewer", member=ADAPTER)
    assert again["changed"] is False and len(google.calls) == 3


def test_etag_conflict_rereads_and_reapplies(google, capsys):
    other = {"version": 3, "etag": "BwYC", "bindings": POLICY["bindings"] + [
        {"role": "roles/viewer", "members": ["user:carol@example.com"]}]}
    aborted = (409, {"error": {"code": 409, "status": "ABORTED",
                               "message": "There were concurrent policy changes. Please retry the whole "
                                          "read-modify-write with exponential backoff."}})
    google.add("POST", GET_RE, dict(POLICY))
    google.add("POST", SET_RE, aborted)
    google.add("POST", GET_RE, other)
    google.add("POST", SET_RE, lambda call: dict(call.body["policy"], etag="BwYD"))
    result = run_module(project_iam_member, capsys, project="local-project", role="roles/monitoring.viewer", member=ADAPTER)
    assert result["changed"] is True and result["attempts"] == 2
    second = google.calls[3].body["policy"]
    assert second["etag"] == "BwYC"
    assert {"role": "roles/viewer", "members": ["user:carol@example.com"]} in second["bindings"]  # not lost
    assert [e["event"] for e in result["api_log"]] == ["conflict"]


def test_conflicts_are_bounded(google, capsys):
    aborted = (409, {"error": {"code": 409, "status": "ABORTED", "message": "concurrent policy changes"}})
    for dummy in range(3):
        google.add("POST", GET_RE, dict(POLICY))
        google.add("POST", SET_RE, aborted)
    result = run_module(project_iam_member, capsys, project="local-project", role="roles/viewer", member="user:x@example.com",
                        conflict_retries=2)
    assert result["failed"] is True and result["error"]["kind"] == "conflict"
    assert "gave up after 3 attempts" in result["msg"]


def test_check_mode_reads_only(google, capsys):
    google.add("POST", GET_RE, dict(POLICY))
    result = run_module(project_iam_member, capsys, check_mode=True, project="local-project", role="roles/owner",
                        member="user:owner@example.com", state="absent")
    assert result["changed"] is True and result["binding"]["members"] == [] and len(google.calls) == 1


def test_invalid_member_fails_before_any_request(google, capsys):
    result = run_module(project_iam_member, capsys, project="local-project", role="roles/viewer", member="alice@example.com")
    assert result["failed"] is True and "must start with user:" in result["msg"] and google.calls == []


def test_permission_denied_on_set(google, capsys):
    google.add("POST", GET_RE, dict(POLICY))
    google.add("POST", SET_RE, (403, {"error": {
        "code": 403, "status": "PERMISSION_DENIED",
        "message": "Policy update access denied.",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                     "metadata": {"permission": "resourcemanager.projects.setIamPolicy"}}]}}))
    result = run_module(project_iam_member, capsys, project="local-project", role="roles/viewer", member="user:x@example.com")
    assert "lacks the IAM permission 'resourcemanager.projects.setIamPolicy' on project local-project" in result["msg"]
