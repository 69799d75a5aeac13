# -*- coding: utf-8 -*-
# Unit tests of plugins/module_utils/_monitoring_dashboard.py: the canonical comparison, input checks, and converge
# runs against the local fake's dashboards API (hack/gcp_fake, in process on a loopback port): create, no-op, update,
# check mode, a concurrent edit between read and write (a real 409 ABORTED), delete.
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _monitoring_dashboard as md
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    AccessTokenCredentials,
    GcpClient,
    GcpError,
    RetryPolicy,
    converge,
)

REPO = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(REPO / "hack"))

from gcp_fake.server import Fake, serve  # noqa: E402  pylint: disable=import-error,wrong-import-position
from gcp_fake.world import World  # noqa: E402  pylint: disable=import-error,wrong-import-position

TOKEN = "unit-token"


def layout(title="Requests per second by model"):
    return {"mosaicLayout": {"columns": 48, "tiles": [{"xPos": 0, "yPos": 0, "width": 24, "height": 16, "widget": {
        "title": title, "xyChart": {"dataSets": [{"plotType": "LINE", "targetAxis": "Y1", "timeSeriesQuery": {
            "timeSeriesFilter": {
                "filter": 'metric.type="prometheus.googleapis.com/inference_objective_request_total/counter"',
                "aggregation": {"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_RATE",
                                "crossSeriesReducer": "REDUCE_SUM", "groupByFields": ["metric.label.model_name"]}}}}],
            "yAxis": {"label": "", "scale": "LINEAR"}}}}]}}


class Module(object):
    """What converge needs of a GcpModule."""

    def __init__(self, url, check_mode=False, **params):
        self.params = dict(name="infgw", display_name="Inference gateway", definition=layout(), labels={},
                           state="present")
        self.params.update(params)
        self.check_mode = check_mode
        self._diff = True
        self.project = "local-project"
        self.client = GcpClient(AccessTokenCredentials(TOKEN), endpoint=url + "/{service}/",
                                retry=RetryPolicy(max_retries=0), timeout=10)


@pytest.fixture(scope="module")
def fake():
    world = World(TOKEN)
    world.reset()
    server = serve(Fake(world))
    yield world, "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


def test_canonical_drops_proto3_defaults_and_keeps_set_messages():
    assert md.canonical({"xPos": 0, "width": 24.0, "blank": {}, "labels": {}, "plotType": "PLOT_TYPE_UNSPECIFIED",
                         "y": False, "t": "", "l": [], "n": None}) == {"width": 24, "blank": {}}


@pytest.mark.parametrize("params, problem", [
    ({"name": "bad/id"}, "a dashboard id is"),
    ({"display_name": None}, "display_name is required"),
    ({"definition": {}}, "exactly one layout"),
    ({"definition": dict(layout(), gridLayout={"widgets": []})}, "exactly one layout"),
    ({"definition": dict(layout(), displayName="x")}, "unknown key(s) displayName"),
    ({"labels": {"team": 1}}, "label values are strings"),
])
def test_validation(params, problem):
    full = dict(name="infgw", display_name="x", definition=layout(), labels={}, state="present")
    full.update(params)
    assert any(problem in p for p in md.validate_params(full)), md.validate_params(full)


def test_lifecycle_against_the_fake(fake):
    world, url = fake
    planned = converge(md.Dashboard(Module(url, check_mode=True)))
    assert planned["changed"] and planned["actions"] == ["create"] and world.dashboards == {}
    created = converge(md.Dashboard(Module(url)))
    assert created["actions"] == ["create"] and created["dashboard"]["name"].endswith("/dashboards/infgw")
    assert created["url"] == ("https://console.cloud.google.com/monitoring/dashboards/builder/infgw"
                              "?project=local-project")
    # The API's answer lacks xPos 0, yAxis.label "" and other defaults: still the same dashboard.
    assert "xPos" not in created["dashboard"]["mosaicLayout"]["tiles"][0]
    again = converge(md.Dashboard(Module(url)))
    assert again["changed"] is False and again["diff"]["before"] == again["diff"]["after"]
    renamed = converge(md.Dashboard(Module(url, definition=layout("Errors"), labels={"app": "infgw"})))
    assert renamed["actions"] == ["update"]
    assert world.dashboards["infgw"]["mosaicLayout"]["tiles"][0]["widget"]["title"] == "Errors"
    assert world.dashboards["infgw"]["labels"] == {"app": "infgw"}
    gone = converge(md.Dashboard(Module(url, state="absent")))
    assert gone["actions"] == ["delete"] and "infgw" not in world.dashboards
    assert converge(md.Dashboard(Module(url, state="absent")))["changed"] is False


def test_a_concurrent_edit_is_read_again_not_overwritten_blindly(fake):
    world, url = fake
    converge(md.Dashboard(Module(url, name="race")))

    class EditedMeanwhile(md.Dashboard):
        def before_changes(self, current):
            # Someone saves the dashboard in the console after the task read it: the etag the task holds is stale.
            with world.lock:
                world.dashboards["race"] = dict(world.dashboards["race"], displayName="console edit", etag="newer")
            return current

    module = Module(url, name="race", definition=layout("Latency"))
    result = converge(EditedMeanwhile(module))
    assert result["actions"] == ["update"]
    assert [e["reason"] for e in module.client.log if e.get("event") == "conflict"] == ["ABORTED"]
    stored = world.dashboards["race"]
    assert stored["displayName"] == "Inference gateway" and stored["etag"] != "newer"


def test_an_unknown_project_is_a_clear_error(fake):
    url = fake[1]
    module = Module(url)
    module.project = "someone-else"
    with pytest.raises(GcpError) as err:
        converge(md.Dashboard(module))
    assert err.value.http_status == 403 and err.value.permission == "monitoring.dashboards.get"
