# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_status_report.py (the report of playbooks/status.yml) on objects recorded
# from the local environment after site.yml (fixtures/status_inputs_local.json: the inputs status.yml assembles,
# trimmed to the fields the report reads), and on variations of them.
from __future__ import annotations

import copy
import json
import os

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.filter.status_report import status_report
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _status_report

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "status_inputs_local.json")
ADAPTER = ("principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/"
           "local-project.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter")


@pytest.fixture
def recorded():
    with open(FIXTURE) as f:
        return json.load(f)


def test_recorded_stack_report(recorded):
    out = _status_report.build(recorded)
    text = out["report"]
    assert out["ready"] is True and out["address"] == "127.0.0.2" and out["blockers"] == []
    assert text[0] == "Gateway gemma/vllm-xlb (gke-l7-regional-external-managed): address 127.0.0.2, READY"
    assert "  listener https: 7 route(s) attached" in text
    assert "  gemma-host-based-routing [1b.example.com, 4b.example.com, 3b.example.com] ok" in text
    assert "    parent vllm-xlb: Accepted=True Reconciled=True ResolvedRefs=True" in text  # as recorded (keys sorted)
    assert "  vllm-llama-3-3b: accepted by the gateway" in text
    assert "GKE policies: 10, 0 not attached" in text
    assert "  vllm-gemma-3-1b-epp (endpoint picker): 1/1 available" in text
    assert "  body-based-router (body-based routing): 1/1 available" in text
    assert out["deployments"]["vllm-gemma-3-1b"] == {"replicas": 1, "available": 1}
    hpa = [line for line in text if line.startswith("  vllm-gemma-3-1b: replicas")][0]
    assert hpa.startswith('  vllm-gemma-3-1b: replicas 1 (min 1, max 3), metric <unknown> / target {"type": "Value", '
                          '"value": "500m"}, ScalingActive=False FailedGetExternalMetric: ')
    assert hpa.endswith("...") and len(hpa) < 320  # the adapter's long message, truncated as the template did
    assert text[-15] == "Recent warning events: 14"

    names = [s["name"] for s in out["sections"]]
    assert names == ["gateway", "routes", "inference_pools", "policies", "deployments", "hpas", "google_cloud",
                     "events"]
    assert out["report"] == [line for s in out["sections"] for line in s["lines"]]


def test_recorded_google_cloud_side(recorded):
    out = _status_report.build(recorded)
    gcp = [s["lines"] for s in out["sections"] if s["name"] == "google_cloud"][0]
    assert gcp == [
        "Google Cloud (project local-project, cluster us-central1/local-cluster):",
        "  node pool default-pool: RUNNING, e2-standard-4, 2 node(s), 2 Ready, fixed size (no autoscaling), "
        "zones us-central1-a, us-central1-b",
        "  node pool gpupool: RUNNING, g2-standard-8, 1 x nvidia-l4 (driver LATEST), 3 node(s), 3 Ready, "
        "autoscaling 0..5 in total (BALANCED), zones us-central1-a, us-central1-b, us-central1-c",
        "  Cloud Armor policy uc1-security-policy (us-central1): CLOUD_ARMOR, 2 rule(s)",
        "    1000 allow 203.0.113.0/24",
        "    2147483647 deny(403) * (default rule)",
        "  IAM roles/monitoring.viewer granted to the custom metrics adapter " + ADAPTER,
        "  proxy-only subnet proxy-only-subnet (us-central1): 10.129.0.0/23, REGIONAL_MANAGED_PROXY ACTIVE, READY",
        "  certificate uc1-wildcard (us-central1): *.example.com, example.com, expires 2027-12-04T12:39:30Z "
        "(in 364 days)",
    ]
    data = out["google_cloud"]
    assert data["problems"] == []
    assert data["node_pools"]["gpupool"]["gpu_driver_version"] == "LATEST"
    assert data["node_pools"]["gpupool"]["ready_nodes"] == 3
    assert data["security_policy"]["rules"] == [{"priority": 1000, "action": "allow"},
                                                {"priority": 2147483647, "action": "deny(403)"}]
    assert data["iam"] == [{"role": "roles/monitoring.viewer", "member": ADAPTER, "present": True}]
    assert data["certificates"]["uc1-wildcard"]["days_left"] == 364


def test_no_namespace_still_reports_google_cloud(recorded):
    recorded["namespace_exists"] = False
    out = _status_report.build(recorded)
    assert out["report"][0] == "namespace gemma: does not exist (nothing deployed; run site.yml)"
    assert [s["name"] for s in out["sections"]] == ["namespace", "google_cloud"]
    assert out["ready"] is False and out["deployments"] == {}


def test_google_cloud_off_is_no_section(recorded):
    recorded["google_cloud"]["enabled"] = False
    out = _status_report.build(recorded)
    assert "google_cloud" not in [s["name"] for s in out["sections"]] and out["google_cloud"] is None


def test_what_is_missing_or_unreadable_is_named_with_the_step_that_makes_it(recorded):
    gcp = recorded["google_cloud"]
    info = gcp["info"]
    gcp["node_pools"] = ["gpupool", "h100pool"]
    info["node_pools"][0]["status"] = "RECONCILING"
    info["security_policies"][0].update(found=False, resource={})
    info["iam_members"][0]["present"] = False
    info["subnetworks"][0].update(found=None, error="read subnetwork x failed: permission denied: the caller lacks "
                                                    "the IAM permission 'compute.subnetworks.get'")
    info["certificates"][0]["resource"]["expireTime"] = "2026-11-30T00:00:00Z"
    out = _status_report.build(recorded)
    text = "\n".join(out["report"])
    assert "node pool h100pool: MISSING (run site.yml --tags gpu_nodepool)" in text
    assert "Cloud Armor policy uc1-security-policy (us-central1): MISSING (run site.yml --tags cloud_armor)" in text
    assert "IAM roles/monitoring.viewer NOT granted to the custom metrics adapter" in text
    assert "proxy-only subnet proxy-only-subnet (us-central1): cannot read: read subnetwork x failed: permission " \
           "denied" in text
    assert "expires 2026-11-30T00:00:00Z (EXPIRED)" in text
    assert out["google_cloud"]["problems"] == [
        "node pool default-pool is RECONCILING", "node pool h100pool missing", "security policy uc1-security-policy "
        "missing", "%s not granted roles/monitoring.viewer" % ADAPTER, "subnet proxy-only-subnet unread",
        "certificate uc1-wildcard expired"]


def test_node_pools_unread(recorded):
    info = recorded["google_cloud"]["info"]
    info["node_pools"], info["node_pools_error"] = None, "list the node pools failed: HTTP 403"
    lines = _status_report.build(recorded)["report"]
    assert "  node pools: cannot read: list the node pools failed: HTTP 403" in lines
    assert not any("MISSING (run site.yml --tags gpu_nodepool)" in line for line in lines)  # unknown, not missing


def test_kubernetes_problems_are_reported(recorded):
    recorded["deployments"][1]["status"] = {}
    recorded["deployments"] = [d for d in recorded["deployments"] if d["metadata"]["name"] != "vllm-gemma-3-4b-epp"]
    recorded["gateway"]["ready"] = False
    recorded["gateway"]["blockers"] = ["HTTPRoute gemma/infp-gemma3-4b: backend vllm-gemma-3-4b has no endpoint picker"]
    recorded["gateway"]["policies"][0]["ready"] = False
    out = _status_report.build(recorded)
    text = out["report"]
    assert text[0].endswith(", not ready")
    assert "  vllm-gemma-3-1b (model server): 0/1 available  <-- not ready" in text
    assert "  vllm-gemma-3-4b-epp (endpoint picker): missing" in text
    assert "GKE policies: 10, 1 not attached" in text
    assert text[text.index("Still blocking:") + 1] == "  " + recorded["gateway"]["blockers"][0]


def test_no_gateway_no_pool_api(recorded):
    recorded["gateway"] = {"ready": False, "gateway": {"found": False}}
    recorded["inference_pools_served"] = False
    lines = _status_report.build(recorded)["report"]
    assert lines[0] == "Gateway gemma/vllm-xlb: not found (run site.yml --tags gateway)"
    assert "InferencePools: API inference.networking.k8s.io/v1 not served (CRDs not installed; run site.yml --tags " \
           "inference_pool)" in lines


def test_events_are_the_most_recent(recorded):
    recorded["events_max"] = 2
    lines = _status_report.build(recorded)["report"]
    assert lines[-3] == "Recent warning events: 2 (of 14)"
    newest = sorted(recorded["events"], key=lambda e: e["metadata"]["creationTimestamp"])[-1]
    assert lines[-1].startswith("  %s/%s %s" % (newest["involvedObject"]["kind"], newest["involvedObject"]["name"],
                                                newest["reason"]))


def test_another_section_is_one_function(recorded):
    """How the data plane's section plugs in: a function over its own input key, placed in SECTIONS."""
    def backends(inputs, out):
        failing = inputs.get("data_plane", {}).get("failing", [])
        out["data_plane"] = {"failing": failing}
        return ["Backends failing their health checks: %d" % len(failing)] + ["  %s" % b for b in failing]

    sections = list(_status_report.SECTIONS)
    sections.insert([s[0] for s in sections].index("google_cloud"), ("data_plane", "Data plane", backends))
    recorded["data_plane"] = {"failing": ["vllm-gemma-3-4b 10.4.0.7:8000"]}
    out = _status_report.build(recorded, sections)
    assert [s["name"] for s in out["sections"]][6:8] == ["data_plane", "google_cloud"]
    assert out["data_plane"] == {"failing": ["vllm-gemma-3-4b 10.4.0.7:8000"]}


def test_filter_takes_ansible_values_and_rejects_what_is_not_a_dict(recorded):
    assert status_report(copy.deepcopy(recorded))["report"] == _status_report.build(recorded)["report"]
    with pytest.raises(Exception, match="takes a dictionary"):
        status_report(["not", "a", "dict"])


@pytest.mark.parametrize("text, length, expected", [
    ("short", 160, "short"), ("x" * 165, 160, "x" * 165), ("word " * 40, 20, "word word word..."),
])
def test_truncate_is_jinjas(text, length, expected):
    assert _status_report.truncate(text, length) == expected


def _monitoring(kind, name, endpoints=None, status=True):
    obj = {"kind": kind, "metadata": {"name": name}}
    if status:
        obj["status"] = {"conditions": [{"type": "ConfigurationCreateSuccess", "status": "True"}]}
        if endpoints is not None:
            obj["status"]["endpointStatuses"] = endpoints
    return obj


def test_scrape_targets_as_gmp_reports_them(recorded):
    """GMP's target status (recorded from the fake's collector): up, a wrong port, no target, status off."""
    refused = "Get \"http://10.244.0.7:8001/metrics\": dial tcp 10.244.0.7:8001: connect: connection refused"
    recorded["pod_monitorings"] = [
        _monitoring("PodMonitoring", "wrong-port", [{
            "name": "PodMonitoring/gemma/wrong-port/8001", "activeTargets": 1, "unhealthyTargets": 1,
            "sampleGroups": [{"count": 1, "sampleTargets": [{"health": "down", "lastError": refused}]}]}]),
        _monitoring("PodMonitoring", "vllm-gemma-3-1b", [{
            "name": "PodMonitoring/gemma/vllm-gemma-3-1b/metrics", "activeTargets": 2, "unhealthyTargets": 0,
            "sampleGroups": [{"count": 2, "sampleTargets": [{"health": "up"}]}]}]),
        _monitoring("PodMonitoring", "no-such-port", []),
        _monitoring("PodMonitoring", "fresh", status=False)]
    recorded["cluster_pod_monitorings"] = [_monitoring("ClusterPodMonitoring", "other-namespace-epp", [])]
    out = _status_report.build(recorded)
    (section,) = [s for s in out["sections"] if s["name"] == "scrape_targets"]
    assert section["lines"] == [
        "Metrics scrape targets (Managed Prometheus): 4 scrape configuration(s)",
        "  PodMonitoring fresh: no target status (off in OperatorConfig gmp-public/config, or not collected yet)",
        "  PodMonitoring no-such-port: no target (no selected pod exposes the endpoint port)  <-- not scraped",
        "  PodMonitoring/gemma/vllm-gemma-3-1b/metrics: 2/2 target(s) up",
        "  PodMonitoring/gemma/wrong-port/8001: 0/1 target(s) up  <-- " + refused]
    assert out["scrape_targets"]["PodMonitoring/gemma/wrong-port/8001"] == {"active": 1, "unhealthy": 1,
                                                                            "errors": [refused]}
    assert [s["name"] for s in out["sections"]].index("scrape_targets") == 6  # after the HPAs


def test_cluster_pod_monitorings_named_after_the_namespace(recorded):
    recorded["cluster_pod_monitorings"] = [_monitoring("ClusterPodMonitoring", "gemma-epp", [{
        "name": "ClusterPodMonitoring/gemma-epp/metrics", "activeTargets": 1, "unhealthyTargets": 0}])]
    lines = _status_report.build(recorded)["report"]
    assert "  ClusterPodMonitoring/gemma-epp/metrics: 1/1 target(s) up" in lines
