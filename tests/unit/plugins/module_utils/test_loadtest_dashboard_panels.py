# -*- coding: utf-8 -*-
# The dashboard's panels in the load test report: read back with the dashboard's own queries from the GCP fake's Cloud
# Monitoring (hack/gcp_fake, in process; series written as its Managed Prometheus collector writes them), and drawn
# in the HTML report, checked in headless Chromium: every panel with data is a chart whose marks are the points read.
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _inference_dashboard as dash
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _loadtest_report as rl
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    AccessTokenCredentials,
    GcpClient,
    RetryPolicy,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._loadtest_runner import (
    _parse_rfc3339,
    _rfc3339,
)
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.module_utils import (
    test_loadtest_report as report_tests,
)

REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(REPO / "hack"))

from gcp_fake.server import Fake, serve  # noqa: E402  pylint: disable=import-error,wrong-import-position
from gcp_fake.world import World  # noqa: E402  pylint: disable=import-error,wrong-import-position

chromium = report_tests.chromium  # the report test's Chromium fixture
perf_run = report_tests.perf_run
render_in_chromium = report_tests.render_in_chromium
TOKEN = "unit-token"
NAMESPACE = "gemma"
MODELS = [{"name": "gemma-3-1b", "pool_name": "vllm-gemma-3-1b", "deployment_name": "vllm-gemma-3-1b",
           "autoscaling": {"enabled": True, "target_kv_cache_utilization": "500m"}}]


def target(job, pod):
    return {"project_id": "local-project", "location": "us-central1", "cluster": "local-cluster",
            "namespace": NAMESPACE, "job": job, "instance": "%s:9090" % pod}


@pytest.fixture(scope="module")
def panels_read():
    """The panels over the last four minutes of a fake whose collector saw 3 requests/s and a 40 % KV cache."""
    world = World(TOKEN)
    world.reset()
    server = serve(Fake(world))
    now = time.time()
    start = now - 240
    store = world.monitoring
    epp = target("vllm-gemma-3-1b", "vllm-gemma-3-1b-epp-0")
    for step in range(-120, 241, 10):  # from before the window: every minute's rate has the point before it
        t = start + step
        store.write("prometheus.googleapis.com/inference_objective_request_total/counter", "CUMULATIVE", "DOUBLE",
                    {"model_name": "google/gemma-3-1b-it", "target_model_name": "google/gemma-3-1b-it"},
                    "prometheus_target", epp, t, 3.0 * step)
        store.write("prometheus.googleapis.com/inference_pool_average_kv_cache_utilization/gauge", "GAUGE", "DOUBLE",
                    {"name": "vllm-gemma-3-1b"}, "prometheus_target", epp, t, 0.4)
    client = GcpClient(AccessTokenCredentials(TOKEN), endpoint="http://127.0.0.1:%d/{service}/"
                       % server.server_address[1], retry=RetryPolicy(max_retries=0), timeout=10)
    panels = dash.read_panels(client, "local-project", dash.panels(MODELS, NAMESPACE, "local-cluster"), start, now,
                              start, _rfc3339, _parse_rfc3339)
    yield {p["id"]: p for p in panels}
    server.shutdown()


def test_panels_are_read_back_with_the_dashboards_queries(panels_read):
    requests = panels_read["requests"]
    assert [line["legend"] for line in requests["series"]] == ["google/gemma-3-1b-it"]
    points = requests["series"][0]["points"]
    assert len(points) >= 3 and all(abs(value - 3.0) < 1e-9 for _t, value in points), points
    assert all(0 < t <= 240.5 for t, _value in points)  # seconds from the origin, at the end of each minute
    kv_cache = panels_read["kv_cache"]
    assert kv_cache["series"][0]["legend"] == "vllm-gemma-3-1b"
    assert all(abs(value - 0.4) < 1e-9 for _t, value in kv_cache["series"][0]["points"])
    assert kv_cache["thresholds"] == [{"value": 0.5, "label": "HPA target vllm-gemma-3-1b"}]
    # Nothing wrote errors or node capacity: an empty panel, not an error.
    assert panels_read["errors"]["series"] == [] and panels_read["errors"]["errors"] == []
    # The fake's Cloud Monitoring has no percentile reducer: the latency panel says so instead of failing.
    assert panels_read["latency"]["series"] == [] and len(panels_read["latency"]["errors"]) == 2


def test_the_report_draws_every_panel_with_data(chromium, panels_read, tmp_path):
    run = perf_run("pool", "pool")
    run["panels"] = list(panels_read.values())
    page = rl.render_html(rl.build_report([run], title="panels"))
    assert '<section id="dashboard">' in page and "not available: pool: p50 ${metric.labels.model_name}" in page
    seen = {c["id"]: c for c in render_in_chromium(chromium, page, tmp_path)["charts"]}
    for panel_id in ("requests", "kv_cache"):
        chart = seen["panel-" + panel_id]
        expected = sum(len(line["points"]) for line in panels_read[panel_id]["series"])
        assert chart["marks"] == expected and chart["drawn"] == expected and chart["width"] > 400, chart
    assert seen["panel-kv_cache"]["lines"] == 1  # the HPA target is a dotted guide, not a series
    assert "panel-errors" not in seen  # no data: a captioned empty figure
