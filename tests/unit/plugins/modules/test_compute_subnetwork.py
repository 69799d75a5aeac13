# -*- coding: utf-8 -*-
# Unit tests for plugins/modules/compute_subnetwork.py: the insert body (valid per compute v1),
# network references, immutable-field failures, the role patch, and module runs.
from __future__ import annotations

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _compute_subnetwork as cs
from ansible_collections.gke_ai.inference_gateway.plugins.modules import compute_subnetwork
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules import test_gcp_support
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules.test_gcp_support import (
    assert_valid_body,
    merged,
    compute_op,
    run_module,
)

google = test_gcp_support.google  # the fixture: a scripted Google every GcpModule talks to

ARGS = dict(project="local-project", region="us-central1", name="proxy-only", network="default",
            ip_cidr_range="10.129.0.0/23")
SUBNET_RE = r"regions/us-central1/subnetworks/proxy-only$"


def params(**kw):
    out = dict(state="present", purpose="REGIONAL_MANAGED_PROXY", role=None, description=None)
    out.update(ARGS)
    out.update(kw)
    return out


def api_subnet(**kw):
    s = {"kind": "compute#subnetwork", "name": "proxy-only", "fingerprint": "ZmluZw==",
         "network": "https://www.googleapis.com/compute/v1/projects/local-project/global/networks/default",
         "ipCidrRange": "10.129.0.0/23", "purpose": "REGIONAL_MANAGED_PROXY", "role": "ACTIVE", "state": "READY",
         "region": "https://www.googleapis.com/compute/v1/projects/local-project/regions/us-central1"}
    s.update(kw)
    return s


@pytest.mark.parametrize("network, ref", [
    ("default", "projects/p/global/networks/default"),
    ("projects/other/global/networks/vpc", "projects/other/global/networks/vpc"),
    ("https://www.googleapis.com/compute/v1/projects/p/global/networks/vpc", "projects/p/global/networks/vpc"),
])
def test_network_ref(network, ref):
    assert cs.network_ref("p", network) == ref


def test_insert_body_is_the_proxy_only_subnet_and_valid():
    body = cs.insert_body("proxy-only", "local-project", params(description="for the gateway"))
    assert body == {"name": "proxy-only", "network": "projects/local-project/global/networks/default",
                    "ipCidrRange": "10.129.0.0/23", "purpose": "REGIONAL_MANAGED_PROXY", "role": "ACTIVE",
                    "description": "for the gateway"}
    assert_valid_body("compute", "Subnetwork", body)
    private = cs.insert_body("s", "p", params(purpose="PRIVATE"))
    assert "role" not in private
    assert_valid_body("compute", "Subnetwork", private)


@pytest.mark.parametrize("kw, problem", [
    ({"ip_cidr_range": "10.129.0.1/23"}, "not a CIDR range"),
    ({"ip_cidr_range": "fd00::/64"}, "must be an IPv4 range"),
    ({"network": None}, "network is required"),
    ({"purpose": "PRIVATE", "role": "ACTIVE"}, "role applies only"),
])
def test_validation(kw, problem):
    assert any(problem in p for p in cs.validate_params(params(**kw)))


def test_plan():
    desired = cs.desired_state("local-project", params())
    assert cs.plan_changes(cs.current_state(api_subnet()), desired) == ([], False)
    assert cs.plan_changes(cs.current_state(api_subnet(role="BACKUP")), desired) == ([], True)
    assert cs.plan_changes(cs.current_state(api_subnet(ipCidrRange="10.0.0.0/24", purpose="PRIVATE")), desired)[0] == \
        ["ip_cidr_range", "purpose"]


def test_create_then_noop(google, capsys):
    google.add("GET", SUBNET_RE, (404, {"error": {"code": 404, "message": "not found"}}))
    google.add("GET", r"regions/us-central1/subnetworks$", {"items": [api_subnet(name="other", purpose="PRIVATE")]})
    google.add("POST", r"regions/us-central1/subnetworks$", compute_op("op-1", "RUNNING", region="us-central1"))
    google.add("GET", r"regions/us-central1/operations/op-1$", compute_op("op-1", "DONE", region="us-central1"))
    google.add("GET", SUBNET_RE, api_subnet())
    result = run_module(compute_subnetwork, capsys, diff=True, **ARGS)
    assert result["changed"] is True and result["actions"] == ["create"]
    assert result["subnetwork"]["state"] == "READY"
    assert result["diff"]["after"]["purpose"] == "REGIONAL_MANAGED_PROXY"
    google.add("GET", SUBNET_RE, api_subnet())
    again = run_module(compute_subnetwork, capsys, **ARGS)
    assert again["changed"] is False


def test_range_change_fails_clearly(google, capsys):
    google.add("GET", SUBNET_RE, api_subnet())
    args = merged(ARGS, ip_cidr_range="10.130.0.0/23")
    result = run_module(compute_subnetwork, capsys, **args)
    assert result["failed"] is True
    assert "ip_cidr_range (is 10.129.0.0/23, wanted 10.130.0.0/23) cannot change on an existing subnet" in \
        result["msg"]


def test_role_is_patched_with_the_fingerprint(google, capsys):
    google.add("GET", SUBNET_RE, api_subnet(role="BACKUP"))
    google.add("PATCH", SUBNET_RE, compute_op("op-2", "DONE", region="us-central1"))
    google.add("GET", SUBNET_RE, api_subnet())
    result = run_module(compute_subnetwork, capsys, **ARGS)
    assert result["actions"] == ["set_role"]
    assert google.calls[1].body == {"role": "ACTIVE", "fingerprint": "ZmluZw=="}


def test_check_mode_and_absent(google, capsys):
    google.add("GET", SUBNET_RE, api_subnet())
    result = run_module(compute_subnetwork, capsys, check_mode=True, state="absent", project="local-project", region="us-central1",
                        name="proxy-only")
    assert result["changed"] is True and len(google.calls) == 1
    google.add("GET", SUBNET_RE, api_subnet())
    google.add("DELETE", SUBNET_RE, compute_op("op-3", "DONE", region="us-central1"))
    result = run_module(compute_subnetwork, capsys, state="absent", project="local-project", region="us-central1", name="proxy-only")
    assert result["changed"] is True and result["subnetwork"] == {}


def test_description_difference_is_a_warning(google, capsys, monkeypatch):
    warnings = []
    monkeypatch.setattr(test_gcp_support._gcp.GcpModule, "warn", lambda self, msg: warnings.append(msg))
    google.add("GET", SUBNET_RE, api_subnet(description="old"))
    result = run_module(compute_subnetwork, capsys, description="new", **ARGS)
    assert result["changed"] is False and "cannot change it after creation" in warnings[0]


def test_the_regions_active_proxy_subnet_made_by_hand_is_adopted_whatever_its_name(google, capsys, monkeypatch):
    warnings = []
    monkeypatch.setattr(test_gcp_support._gcp.GcpModule, "warn", lambda self, msg: warnings.append(msg))
    by_hand = api_subnet(name="my-proxy-subnet", ipCidrRange="10.0.0.0/23")
    google.add("GET", SUBNET_RE, (404, {"error": {"code": 404, "message": "not found"}}))
    first_page = {"items": [api_subnet(name="a", purpose="PRIVATE")], "nextPageToken": "p2"}
    google.add("GET", r"regions/us-central1/subnetworks$", first_page)
    google.add("GET", r"regions/us-central1/subnetworks$", {"items": [api_subnet(name="b", role="BACKUP"), by_hand]})
    result = run_module(compute_subnetwork, capsys, diff=True, **ARGS)
    assert result["changed"] is False and result["actions"] == []
    assert result["adopted"] == "my-proxy-subnet"
    assert google.calls[2].query == {"pageToken": "p2"}
    assert "adopted" in warnings[0] and "range 10.0.0.0/23 is left as it is (wanted 10.129.0.0/23" in warnings[0]


def test_without_adoption_a_second_active_proxy_subnet_is_asked_for(google, capsys):
    google.add("GET", SUBNET_RE, (404, {"error": {"code": 404, "message": "not found"}}))
    google.add("POST", r"regions/us-central1/subnetworks$", compute_op("op-1", "DONE", region="us-central1"))
    google.add("GET", SUBNET_RE, api_subnet())
    result = run_module(compute_subnetwork, capsys, adopt_active=False, **ARGS)
    assert result["actions"] == ["create"] and result["adopted"] is None


def test_active_proxy_subnet_matches_purpose_role_and_network():
    subnets = [api_subnet(name="x", purpose="GLOBAL_MANAGED_PROXY"), api_subnet(name="y", role="BACKUP"),
               api_subnet(name="z", network="projects/local-project/global/networks/other"), api_subnet(name="w")]
    assert cs.active_proxy_subnet(subnets, "local-project", "default", "REGIONAL_MANAGED_PROXY")["name"] == "w"
    assert cs.active_proxy_subnet(subnets[:3], "local-project", "default", "REGIONAL_MANAGED_PROXY") is None
