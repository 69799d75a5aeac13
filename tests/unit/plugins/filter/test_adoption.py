# -*- coding: utf-8 -*-
# Unit tests for plugins/filter/adoption.py: the adoption report of the inference_pool role.
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.filter.adoption import unadopted_pool_objects


def pool(name, release=None):
    meta = {"name": name}
    if release:
        meta["annotations"] = {"meta.helm.sh/release-name": release}
    return {"kind": "InferencePool", "metadata": meta}


def objective(name, pool_name, model=None):
    spec = {"poolRef": {"name": pool_name}}
    if model:
        spec["modelName"] = model
    return {"kind": "InferenceModel", "metadata": {"name": name}, "spec": spec}


def test_the_walkthroughs_objects_under_other_names_are_named_with_their_removal():
    selected = [[pool("vllm-gemma-3-1b", "vllm-gemma-3-1b"), pool("gemma-1b", "gemma-1b"), pool("by-hand")],
                [objective("small-model", "vllm-gemma-3-1b", "google/gemma-3-1b-it"),
                 objective("gemma-3-1b-it-hf", "vllm-gemma-3-1b", "google/gemma-3-1b-it"),
                 objective("other-team", "their-pool")]]
    out = unadopted_pool_objects(selected, ["vllm-gemma-3-1b"], ["small-model"], "gemma", "InferenceModel")
    assert len(out) == 3
    assert out[0].startswith("InferencePool gemma/by-hand is not in the data model: ")
    assert out[0].endswith("`kubectl delete inferencepool -n gemma by-hand`")
    assert "(helm release gemma-1b)" in out[1] and out[1].endswith("`helm uninstall gemma-1b -n gemma`")
    assert out[2] == ("InferenceModel gemma/gemma-3-1b-it-hf is not in the data model but targets its pool "
                      "vllm-gemma-3-1b (model google/gemma-3-1b-it): remove it with "
                      "`kubectl delete inferencemodel -n gemma gemma-3-1b-it-hf`")


def test_nothing_to_report_when_everything_is_the_data_models_or_nothing_was_read():
    selected = [[pool("vllm-a", "vllm-a")], [objective("a", "vllm-a")]]
    assert unadopted_pool_objects(selected, ["vllm-a"], ["a"], "ns", "InferenceObjective") == []
    assert unadopted_pool_objects([], ["vllm-a"], ["a"], "ns", "InferenceObjective") == []
    with pytest.raises(AnsibleFilterError):
        unadopted_pool_objects({"not": "a list"}, [], [], "ns", "InferenceObjective")
