"""The local inventory adds the simulator's settings to the walkthrough's models and changes nothing else."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_local_models_are_the_defaults_plus_simulator_settings():
    defaults = yaml.safe_load((REPO / "roles/common/defaults/main.yml").read_text())["infgw_models"]
    local = yaml.safe_load((REPO / "inventories/local/group_vars/all/dataplane.yml").read_text())["infgw_models"]
    assert [m["name"] for m in local] == [m["name"] for m in defaults]
    for want, got in zip(defaults, local):
        env = got.pop("env")
        # the HPA target may be lower locally (the simulator's KV cache is not a GPU's; hpa_metrics.yml)
        target = got["autoscaling"].pop("target_kv_cache_utilization", None)
        assert got == want, "inventories/local changes a model beyond its simulator settings: " + want["name"]
        assert env and all(key.startswith("INFGW_SIM_") for key in env), env
        if target is not None:
            assert want["autoscaling"]["enabled"] and target == "100m", (want["name"], target)


def test_local_epp_flags_end_parsing_last():
    values = yaml.safe_load((REPO / "inventories/local/group_vars/all/dataplane.yml").read_text())
    flags = values["local_epp_chart_values"]["v1.1.0"]["inferenceExtension"]["flags"]
    assert flags[-1] == {"name": "tracing=false", "value": "--"}, "flags after it would be ignored by the EPP"
    assert {"name": "kv-cache-usage-percentage-metric", "value": "vllm:kv_cache_usage_perc"} in flags
