# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_profiles.py and its filter: the profiles' own values pass, and the values
# the v1.5.0 chart mishandles (checked by rendering it: a non-empty inferenceObjectives fails with a nil pointer,
# a boolean flag renders as `--flag "false"`) are refused with a message naming the key.
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.filter.profiles import FilterModule
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._profiles import chart_value_problems

PROFILES = Path(__file__).resolve().parents[4] / "roles" / "common" / "vars" / "profiles"


def profile(version):
    return yaml.safe_load((PROFILES / f"{version}.yml").read_text())["infgw_profile_data"]


@pytest.mark.parametrize("version", ["v0.4.0", "v1.1.0", "v1.5.0"])
def test_each_profile_passes_its_own_values(version):
    p = profile(version)
    assert chart_value_problems(p["pool_chart_values"], p, "pool") == []
    assert chart_value_problems(p["bbr_chart_values"], p, "bbr") == []


@pytest.mark.parametrize("version", ["v0.4.0", "v1.1.0", "v1.5.0"])
def test_each_profile_has_the_keys_the_roles_read(version):
    p = profile(version)
    for key in ("gie_version", "chart_version", "crds", "pool", "objective", "pool_chart_values", "bbr_chart_values",
                "pool_port_values", "pool_epp_replicas_value", "pool_suffix", "images", "hpa_metric"):
        assert key in p, key
    assert p["gie_version"] == version
    assert p["images"]["epp"].endswith(":" + version) and p["images"]["bbr"].endswith(":" + version)


def test_v150_refuses_chart_objectives():
    p = profile("v1.5.0")
    values = dict(p["pool_chart_values"], inferenceObjectives=[{"name": "hi", "priority": 1}])
    [problem] = chart_value_problems(values, p, "inference_pool_chart_values")
    assert problem.startswith("inference_pool_chart_values.inferenceObjectives: not supported with the v1.5.0 chart")


def test_boolean_flags_refused_in_map_and_list_forms():
    p = {"gie_version": "v1.5.0", "boolean_flags_broken": ["inferenceExtension.flags", "bbr.flags"]}
    values = {"inferenceExtension": {"flags": {"v": 2, "secure-serving": False, "enable-pprof": "true"}},
              "bbr": {"flags": [{"name": "streaming", "value": False}, {"name": "v", "value": 3}]}}
    problems = chart_value_problems(values, p, "x")
    assert [pr.split(":")[0] for pr in problems] == [
        "x.inferenceExtension.flags.enable-pprof", "x.inferenceExtension.flags.secure-serving", "x.bbr.flags.streaming"]
    assert "--secure-serving \"<value>\"" in problems[1]


def test_other_profiles_allow_chart_objectives():
    p = profile("v1.1.0")
    assert chart_value_problems({"inferenceObjectives": [{"name": "a"}]}, p, "v") == []


def test_filter_rejects_non_dicts():
    f = FilterModule().filters()["chart_value_problems"]
    with pytest.raises(AnsibleFilterError):
        f([], {})
    assert f({"inferenceObjectives": []}, profile("v1.5.0")) == []
