# -*- coding: utf-8 -*-
# Unit tests for plugins/filter/k8s_apply.py (k8s_diff, k8s_field_managers), on result and object shapes
# taken from kubernetes.core.k8s 6.x and from a GCPBackendPolicy after helm install + server-side apply.
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.filter.k8s_apply import (
    FilterModule,
    k8s_diff,
    k8s_field_managers,
    k8s_fields_without,
)


def route(name, value, rv="1"):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv, "managedFields": [{}]},
            "spec": {"hostnames": [value]}}


def single(name, changed, before=None, after=None, method="apply"):
    res = {"changed": changed, "method": method, "result": route(name, "h")}
    if before is not None or after is not None:
        res["diff"] = {"before": before or {}, "after": after or {}}
    return res


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"k8s_diff", "k8s_field_managers", "k8s_fields_without"}


def test_single_object_result_gives_one_diff_with_identity_headers():
    res = single("bbr-a", True, before={"spec": {"hostnames": ["old"]}}, after={"spec": {"hostnames": ["new"]}})
    (text,) = k8s_diff(res)
    assert "--- before: HTTPRoute ns/bbr-a" in text
    assert "+++ after: HTTPRoute ns/bbr-a" in text
    assert "-  - old" in text and "+  - new" in text


def test_multi_document_result_only_changed_objects():
    res = {"changed": True, "result": {"results": [
        single("a", False, before={}, after={}),
        single("b", True, before={"spec": {"x": 1}}, after={"spec": {"x": 2}}),
        single("c", True, before={}, after={"spec": {"x": 3}}),
    ]}}
    texts = k8s_diff(res)
    assert len(texts) == 2
    assert "HTTPRoute ns/b" in texts[0] and "HTTPRoute ns/c" in texts[1]


def test_loop_of_multi_document_results():
    inner = {"changed": True, "result": {"results": [single("b", True, before={"a": 1}, after={"a": 2})]}}
    res = {"changed": True, "results": [inner, {"changed": False, "skipped": True}]}
    assert len(k8s_diff(res)) == 1


def test_noise_fields_are_dropped_and_metadata_only_noise_gives_no_text():
    res = single("a", True, before={"metadata": {"resourceVersion": "1", "generation": 1}},
                 after={"metadata": {"resourceVersion": "2", "generation": 2}})
    assert k8s_diff(res) == []
    res = single("a", True, before={"metadata": {"labels": {"x": "1"}, "managedFields": [1]}},
                 after={"metadata": {"labels": {"x": "2"}, "managedFields": [2]}})
    (text,) = k8s_diff(res)
    assert "managedFields" not in text and "+    x: '2'" in text


def test_created_without_diff_mode_shows_the_object():
    res = single("new", True, method="create")
    (text,) = k8s_diff(res)
    assert "+kind: HTTPRoute" in text and "resourceVersion" not in text


def test_deleted_object():
    res = {"changed": True, "method": "delete", "result": {}}
    (text,) = k8s_diff(res)
    assert "+deleted: true" in text


def test_not_a_result_fails():
    with pytest.raises(AnsibleFilterError):
        k8s_diff(["not", "a", "dict"])


# A GCPBackendPolicy as the API server returns it after `helm install` (manager helm, Update) and a
# server-side apply of the spec by gke-ai-inference-gateway with force_conflicts (Apply); status by a controller.
POLICY = {
    "apiVersion": "networking.gke.io/v1",
    "kind": "GCPBackendPolicy",
    "metadata": {"name": "vllm-a", "namespace": "ns", "managedFields": [
        {"manager": "helm", "operation": "Update", "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app.kubernetes.io/version": {}}}}},
        {"manager": "gke-ai-inference-gateway", "operation": "Apply", "fieldsV1": {
            "f:spec": {"f:default": {"f:logging": {"f:enabled": {}}, "f:securityPolicy": {}, "f:timeoutSec": {}},
                       "f:targetRef": {"f:group": {}, "f:kind": {}, "f:name": {}}}}},
        {"manager": "sim", "operation": "Update", "subresource": "status", "fieldsV1": {
            "f:status": {"f:conditions": {}}}},
    ]},
}


@pytest.mark.parametrize("path, owners", [
    ("spec.default.securityPolicy", ["gke-ai-inference-gateway"]),
    ("spec.default.timeoutSec", ["gke-ai-inference-gateway"]),
    ("spec.default", ["gke-ai-inference-gateway"]),
    ("metadata.labels.app.kubernetes.io/version", []),  # dots inside a key cannot be addressed
    ("metadata.labels", ["helm"]),
    ("spec.nothing", []),
    ("status.conditions", []),  # status is a subresource
])
def test_field_managers(path, owners):
    assert k8s_field_managers(POLICY, path) == owners


def test_field_managers_of_a_subresource():
    assert k8s_field_managers(POLICY, "status.conditions", subresource="status") == ["sim"]


def test_field_managers_shared_field_lists_every_owner_once():
    obj = {"metadata": {"managedFields": [
        {"manager": "a", "fieldsV1": {"f:spec": {"f:x": {}}}},
        {"manager": "b", "fieldsV1": {"f:spec": {"f:x": {}}}},
        {"manager": "a", "operation": "Apply", "fieldsV1": {"f:spec": {"f:x": {}}}},
    ]}}
    assert k8s_field_managers(obj, "spec.x") == ["a", "b"]


def test_field_managers_bad_input():
    with pytest.raises(AnsibleFilterError):
        k8s_field_managers("x", "spec")
    with pytest.raises(AnsibleFilterError):
        k8s_field_managers({}, "")
    assert k8s_field_managers({}, "spec") == []


# helm's managedFields entry of the inferencepool chart's GCPBackendPolicy (helm 3, operation Update).
HELM_FIELDS = {
    "f:metadata": {"f:annotations": {".": {}, "f:meta.helm.sh/release-name": {}},
                   "f:labels": {".": {}, "f:app.kubernetes.io/managed-by": {}}},
    "f:spec": {".": {}, "f:default": {".": {}, "f:logging": {".": {}, "f:enabled": {}}, "f:timeoutSec": {}},
               "f:targetRef": {".": {}, "f:group": {}, "f:kind": {}, "f:name": {}}},
}


def test_fields_without_releases_the_spec_and_keeps_metadata():
    kept = k8s_fields_without(HELM_FIELDS, ["spec.targetRef", "spec.default.timeoutSec", "spec.default.logging"])
    assert kept == {"f:metadata": HELM_FIELDS["f:metadata"]}
    assert "f:spec" in HELM_FIELDS  # the input is not modified


def test_fields_without_keeps_maps_that_still_own_something():
    kept = k8s_fields_without(HELM_FIELDS, ["spec.targetRef", "spec.default.timeoutSec"])
    assert kept["f:spec"] == {".": {}, "f:default": {".": {}, "f:logging": {".": {}, "f:enabled": {}}}}


def test_fields_without_leaf_and_missing_paths():
    assert k8s_fields_without({"f:spec": {"f:x": {}}}, "spec.x") == {}
    assert k8s_fields_without({"f:spec": {"f:x": {}}}, "spec.y.z") == {"f:spec": {"f:x": {}}}
    assert k8s_fields_without({"f:spec": {"f:x": {}}}, []) == {"f:spec": {"f:x": {}}}
    assert k8s_fields_without(HELM_FIELDS, ["metadata", "spec"]) == {}


def test_fields_without_bad_input():
    with pytest.raises(AnsibleFilterError):
        k8s_fields_without(["x"], "spec")
