"""Survey answers, in the shapes AWX 24.6.1 sends them (strings for multiple choice, a list for multiselect, an int
for integer, null or nothing for a blank optional question), become the data model the roles deploy: checked through
roles/common, which every role runs first, with no cluster."""

from __future__ import annotations

import json

import pytest

from awx_testlib import REPO, ansible_playbook

RESOLVE = REPO / "tests" / "awx" / "files" / "resolve.yml"
DEFAULT_MODELS = ["gemma-3-1b", "gemma-3-4b", "llama-3-3b"]


def _resolve(tmp_path, answers: dict, data_model: dict | None = None):
    """Answers as extra vars (what AWX makes of them) over `data_model` as inventory variables (the AWX inventory)."""
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(dict(answers, infgw_hf_token="hf_not-real")))
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {}}, "vars": data_model or {}}}))
    # The collection comes from this checkout's collections/ link, as in an AWX project; GCP_PROJECT is what AWX's
    # Google Compute Engine credential injects.
    return ansible_playbook(RESOLVE, "-i", str(inventory), extra_files=[path],
                            env={"ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"), "GCP_PROJECT": "my-project"})


def _resolved(run) -> dict:
    results = dict(run.results())
    return results["Resolved"]["msg"]


def test_deploy_answers_become_the_data_model(tmp_path):
    run = _resolve(tmp_path, {
        "infgw_namespace": "team-a", "infgw_profile": "v0.4.0", "infgw_select_models": ["gemma-3-4b", "llama-3-3b"],
        "infgw_replicas": 2, "infgw_autoscaling_enabled": "false", "infgw_gateway_class": "internal",
        "infgw_cloud_armor_enabled": "true",
    }, data_model={"infgw_cloud_armor": {"pools": ["gemma-3-1b", "gemma-3-4b"], "allowed_ip_ranges": ["203.0.113.0/24"]}})
    assert run.rc == 0, run.failure()
    assert _resolved(run) == {
        "models": ["gemma-3-4b", "llama-3-3b"], "replicas": [2, 2], "autoscaling": [False, False],
        "gateway_class": "gke-l7-rilb", "cloud_armor": True,
        "cloud_armor_pools": ["gemma-3-4b"],  # of the data model's pools, those of the chosen models
        "namespace": "team-a", "profile": "v0.4.0",
    }


@pytest.mark.parametrize("blank", [None, "absent"], ids=["null", "absent"])
def test_blank_optional_answers_keep_the_data_model(tmp_path, blank):
    optional = ("infgw_select_models", "infgw_replicas", "infgw_autoscaling_enabled", "infgw_gateway_class",
                "infgw_cloud_armor_enabled")
    answers = {"infgw_namespace": "gemma", "infgw_profile": "v1.1.0"}
    if blank is None:
        answers.update(dict.fromkeys(optional))
    run = _resolve(tmp_path, answers)
    assert run.rc == 0, run.failure()
    assert _resolved(run) == {
        "models": DEFAULT_MODELS, "replicas": [1, 1, 1], "autoscaling": [True, True, False],
        "gateway_class": "gke-l7-regional-external-managed", "cloud_armor": False, "cloud_armor_pools": ["gemma-3-1b"],
        "namespace": "gemma", "profile": "v1.1.0",
    }


@pytest.mark.parametrize("answers, expected", [
    pytest.param({"infgw_select_models": ["gemma-3-1b", "mistral-7b"]},
                 'infgw_select_models: "mistral-7b" is not the name of a model in infgw_models', id="unknown-model"),
    pytest.param({"infgw_replicas": "many"}, "argument 'infgw_replicas' is of type", id="replicas-not-int"),
    pytest.param({"infgw_cloud_armor_enabled": "maybe"}, "argument 'infgw_cloud_armor_enabled' is of type", id="not-bool"),
    pytest.param({"infgw_replicas": -1}, "infgw_replicas: must be 0 or more", id="replicas-negative"),
])
def test_bad_answers_fail_naming_the_variable(tmp_path, answers, expected):
    run = _resolve(tmp_path, answers)
    assert run.rc != 0
    assert expected in run.failure(), run.failure()
