# -*- coding: utf-8 -*-
# Integration test of the monitoring role on the local environment: site.yml --tags monitoring applies a PodMonitoring
# per model server and creates the dashboard in the GCP fake's Cloud Monitoring (checked against Google's v1
# schema); a second run changes nothing. No model server runs: the step needs only its namespace. Check mode is the
# module's unit test (and test_site's check runs); status.yml's link and teardown are test_site's status and teardown
# tests, on the whole stack.
from __future__ import annotations

import pytest

from test_site import delete_namespace, kget, new_namespace, playbook

pytestmark = pytest.mark.integration

MODELS = ("gemma-3-1b", "gemma-3-4b", "llama-3-3b")  # the local inventory's
STEP_SCRAPE = "Converge a PodMonitoring per model server (vLLM's /metrics)"
STEP_DASHBOARD = "Create or update the Cloud Monitoring dashboard"


def test_scraping_and_dashboard_created_then_unchanged(local_env, tmp_path):
    namespace = new_namespace("mon")
    dashboard_id = "infgw-local-cluster-%s" % namespace
    dashboard_path = "/monitoring/v1/projects/local-project/dashboards/%s" % dashboard_id
    local_env.kubectl("create", "namespace", namespace)
    try:
        run = playbook(local_env, tmp_path, "site.yml", namespace, "--tags", "monitoring")
        assert run.rc == 0, run.failures()
        assert run.changed_tasks() == [STEP_SCRAPE, STEP_DASHBOARD]
        monitorings = {m["metadata"]["name"]: m for m in kget(local_env, "podmonitoring", namespace)["items"]}
        assert sorted(monitorings) == ["vllm-%s-model-server" % m for m in MODELS]
        spec = monitorings["vllm-gemma-3-1b-model-server"]["spec"]
        assert spec["selector"] == {"matchLabels": {"app": "vllm-gemma-3-1b"}}
        assert [(e["port"], e["path"], e["interval"]) for e in spec["endpoints"]] == [("http", "/metrics", "15s")]
        got = local_env.gcp("GET", dashboard_path)
        assert got.status_code == 200, got.text
        dashboard = got.json()
        assert dashboard["displayName"] == "Inference gateway local-cluster/%s" % namespace
        titles = [t["widget"]["title"] for t in dashboard["mosaicLayout"]["tiles"]]
        assert titles[0] == "Requests per second by model" and titles[-1] == "GPU nodes" and len(titles) == 8
        facts = [r for name, r in run.results() if name.startswith("Export the dashboard's link")][0]
        url = facts["ansible_facts"]["infgw_dashboard_url"]
        assert url == ("https://console.cloud.google.com/monitoring/dashboards/builder/%s?project=local-project"
                       % dashboard_id)

        run = playbook(local_env, tmp_path, "site.yml", namespace, "--tags", "monitoring")
        assert run.rc == 0, run.failures()
        assert run.stats["changed"] == 0, run.changed_tasks()
        assert local_env.gcp("GET", dashboard_path).json()["etag"] == dashboard["etag"]  # not rewritten
    finally:
        local_env.gcp("DELETE", dashboard_path)
        delete_namespace(local_env, namespace)
