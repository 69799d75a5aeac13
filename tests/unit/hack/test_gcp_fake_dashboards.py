"""Unit tests of the fake's Cloud Monitoring dashboards v1 (hack/gcp_fake/dashboards.py), through Fake.handle."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "hack"))

from gcp_fake import discovery  # noqa: E402
from gcp_fake.server import Fake  # noqa: E402
from gcp_fake.world import World  # noqa: E402

TOKEN = "test-token"
BASE = "/monitoring/v1/projects/local-project/dashboards"


class Client:
    def __init__(self):
        self.world = World(TOKEN, base_url="http://fake.test/")
        self.world.reset()
        self.fake = Fake(self.world)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        status, _headers, out = self.fake.handle(method, path, {"authorization": f"Bearer {TOKEN}"}, data)
        return status, json.loads(out)


@pytest.fixture
def fake():
    return Client()


def chart(title="Requests", metric="prometheus.googleapis.com/inference_pool_ready_pods/gauge"):
    return {"title": title, "xyChart": {"dataSets": [{"plotType": "LINE", "timeSeriesQuery": {"timeSeriesFilter": {
        "filter": f'metric.type="{metric}"',
        "aggregation": {"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_MEAN",
                        "crossSeriesReducer": "REDUCE_SUM", "groupByFields": ["metric.label.name"]}}}}]}}


def dashboard(**extra):
    body = {"displayName": "Inference gateway", "name": "projects/local-project/dashboards/infgw",
            "mosaicLayout": {"columns": 48, "tiles": [
                {"xPos": 0, "yPos": 0, "width": 24, "height": 16, "widget": chart()}]}}
    body.update(extra)
    return body


def test_monitoring_serves_the_v1_document_beside_the_metrics_one():
    route, params = discovery.match("monitoring", "PATCH", "v1/projects/p/dashboards/d")
    assert route.method_id == "monitoring.projects.dashboards.patch" and route.service == "monitoring@v1"
    assert params == {"projectsId": "p", "dashboardsId": "d"}
    assert discovery.served("monitoring")


def test_create_get_patch_delete(fake):
    status, created = fake.call("POST", BASE, dashboard())
    assert status == 200, created
    # Google names the dashboard by project number, and leaves proto3 defaults (xPos 0) out.
    assert created["name"] == "projects/123456789012/dashboards/infgw"
    assert "xPos" not in created["mosaicLayout"]["tiles"][0] and created["etag"]
    status, got = fake.call("GET", f"{BASE}/infgw")
    assert status == 200 and got == created
    changed = dashboard(displayName="Renamed", etag=created["etag"])
    status, patched = fake.call("PATCH", f"{BASE}/infgw", changed)
    assert status == 200 and patched["displayName"] == "Renamed" and patched["etag"] != created["etag"]
    status, listed = fake.call("GET", BASE)
    assert [d["displayName"] for d in listed["dashboards"]] == ["Renamed"]
    assert fake.call("DELETE", f"{BASE}/infgw") == (200, {})
    status, err = fake.call("GET", f"{BASE}/infgw")
    assert status == 404 and err["error"]["status"] == "NOT_FOUND"


def test_stale_etag_duplicate_and_generated_ids(fake):
    created = fake.call("POST", BASE, dashboard())[1]
    fake.call("PATCH", f"{BASE}/infgw", dashboard(etag=created["etag"]))
    status, err = fake.call("PATCH", f"{BASE}/infgw", dashboard(displayName="late", etag=created["etag"]))
    assert status == 409 and err["error"]["status"] == "ABORTED"
    status, err = fake.call("POST", BASE, dashboard())
    assert status == 409 and err["error"]["status"] == "ALREADY_EXISTS"
    status, other = fake.call("POST", BASE, {"displayName": "x", "gridLayout": {"widgets": [chart()]}})
    assert status == 200 and other["name"].startswith("projects/123456789012/dashboards/")


@pytest.mark.parametrize("body, message", [
    ({"mosaicLayout": {"columns": 48, "tiles": []}}, "displayName is required"),
    (dashboard(mosaicLayout={"columns": 48, "tiles": [{"xPos": 30, "width": 24, "height": 4, "widget": chart()}]}),
     "does not fit in 48 columns"),
    (dashboard(mosaicLayout={"columns": 60, "tiles": []}), "between 1 and 48"),
    (dashboard(gridLayout={"widgets": []}), "one layout"),
    (dashboard(mosaicLayout={"columns": 4, "tiles": [{"width": 4, "height": 4, "widget": {"title": "empty"}}]}),
     "exactly one content"),
    (dashboard(mosaicLayout={"columns": 4, "tiles": [{"width": 4, "height": 4, "widget": {"xyChart": {
        "dataSets": [{"plotType": "CURVY", "timeSeriesQuery": {"prometheusQuery": "up"}}]}}}]}),
     "plot_type"),
    (dashboard(mosaicLayout={"columns": 4, "tiles": [{"width": 4, "height": 4, "widget": {"xyChart": {
        "dataSets": [{"timeSeriesQuery": {"timeSeriesFilter": {"filter": 'resource.type="x"'}}}]}}}]}),
     "must name a metric.type"),
    (dashboard(colour="red"), 'Unknown name "colour"'),
])
def test_invalid_dashboards_are_refused(fake, body, message):
    status, err = fake.call("POST", BASE, body)
    assert status == 400 and message in err["error"]["message"], err
    assert fake.world.dashboards == {}
