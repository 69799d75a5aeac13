# -*- coding: utf-8 -*-
# Unit tests of plugins/module_utils/_inference_dashboard.py and the inference_dashboard filter: the panels and their
# queries per GIE profile, the HPA lines, and a definition Cloud Monitoring takes (checked by the GCP fake's v1
# schema validator and its dashboard rules).
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.filter.inference_dashboard import FilterModule
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _inference_dashboard as dash

REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(REPO / "hack"))

from gcp_fake import dashboards as fake_dashboards  # noqa: E402  pylint: disable=import-error,wrong-import-position
from gcp_fake import discovery  # noqa: E402  pylint: disable=import-error,wrong-import-position

MODELS = [
    {"name": "gemma-3-1b", "pool_name": "vllm-gemma-3-1b", "deployment_name": "vllm-gemma-3-1b",
     "autoscaling": {"enabled": True, "min": 1, "max": 5, "target_kv_cache_utilization": "500m"}},
    {"name": "gemma-3-4b", "pool_name": "vllm-gemma-3-4b", "deployment_name": "vllm-gemma-3-4b", "autoscaling": {}},
]


def by_id(panels):
    return {p["id"]: p for p in panels}


def test_the_panels_users_look_at_on_the_metrics_the_stack_exports():
    panels = by_id(dash.panels(MODELS, "gemma", "my-cluster"))
    assert list(panels) == ["requests", "errors", "latency", "ttft", "kv_cache", "queue", "replicas", "gpu_nodes"]
    metric_types = {p: [s["metric_type"] for s in panel["series"]] for p, panel in panels.items()}
    assert metric_types["requests"] == ["prometheus.googleapis.com/inference_objective_request_total/counter"]
    assert metric_types["errors"] == ["prometheus.googleapis.com/inference_objective_request_error_total/counter"]
    assert metric_types["kv_cache"] == [
        "prometheus.googleapis.com/inference_pool_average_kv_cache_utilization/gauge"]
    assert metric_types["ttft"] == ["prometheus.googleapis.com/vllm:time_to_first_token_seconds/histogram"]
    assert metric_types["replicas"] == [
        "prometheus.googleapis.com/inference_pool_ready_pods/gauge",
        "prometheus.googleapis.com/kube_deployment_status_replicas_ready/gauge",
        "prometheus.googleapis.com/kube_horizontalpodautoscaler_status_desired_replicas/gauge"]
    requests = panels["requests"]["series"][0]
    assert requests["filter"] == ('metric.type = "prometheus.googleapis.com/inference_objective_request_total/counter"'
                                  ' AND resource.type = "prometheus_target" AND resource.label.cluster = "my-cluster"'
                                  ' AND resource.label.namespace = "gemma"')
    assert requests["aggregation"] == {"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_RATE",
                                       "crossSeriesReducer": "REDUCE_SUM",
                                       "groupByFields": ["metric.label.model_name"]}
    assert 'metric.label.name = one_of("vllm-gemma-3-1b", "vllm-gemma-3-4b")' in panels["kv_cache"]["series"][0]["filter"]
    # Only the autoscaled model has an HPA: its target is the line on the KV-cache chart.
    assert panels["kv_cache"]["thresholds"] == [{"value": 0.5, "label": "HPA target vllm-gemma-3-1b"}]
    assert 'metric.label.horizontalpodautoscaler = "vllm-gemma-3-1b"' in panels["replicas"]["series"][2]["filter"]
    assert [s["aggregation"]["crossSeriesReducer"] for s in panels["latency"]["series"]] == \
        ["REDUCE_PERCENTILE_50", "REDUCE_PERCENTILE_95"]


def test_the_v0_4_0_profile_counts_requests_per_inference_model_and_no_hpa_means_no_hpa_series():
    panels = by_id(dash.panels(MODELS[1:], "ns", "c", "inference_model"))
    assert panels["requests"]["series"][0]["metric_type"] == \
        "prometheus.googleapis.com/inference_model_request_total/counter"
    legends = [s["legend"] for s in panels["replicas"]["series"]]
    assert legends == ["ready pods ${metric.labels.name}", "ready ${metric.labels.deployment}"]
    assert panels["kv_cache"]["thresholds"] == []


def test_the_definition_is_a_dashboard_cloud_monitoring_takes():
    definition = FilterModule().filters()["inference_dashboard"](MODELS, "gemma", "my-cluster")
    body = dict(definition, displayName="Inference gateway")
    checked, errors = discovery.Validator("monitoring@v1").validate(body, "Dashboard")
    assert errors == [] and checked == body
    assert fake_dashboards.check_dashboard(body) == []
    tiles = definition["mosaicLayout"]["tiles"]
    cells = [(t["xPos"] + dx, t["yPos"] + dy) for t in tiles for dx in range(t["width"]) for dy in range(t["height"])]
    assert len(cells) == len(set(cells)), "tiles overlap"
    assert max(t["xPos"] + t["width"] for t in tiles) == 48 and len(tiles) == 8
    kv = tiles[4]["widget"]["xyChart"]
    assert kv["thresholds"][0]["value"] == 0.5 and kv["dataSets"][0]["timeSeriesQuery"]["unitOverride"] == "10^2.%"


@pytest.mark.parametrize("args, message", [
    (([], "ns", "c"), "at least one model"),
    ((MODELS, "ns", "c", "inference_pool"), "model_metric_prefix"),
    (([{"name": "x"}], "ns", "c"), "pool_name"),
])
def test_bad_input_is_a_filter_error(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        FilterModule().filters()["inference_dashboard"](*args)
