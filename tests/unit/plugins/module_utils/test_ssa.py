# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_ssa.py: would a server-side apply change a live object?
# The fixtures are objects read back from the local environment's kube-apiserver after site.yml applied them
# (field manager gke-ai-inference-gateway), so the managedFields encoding is the API server's own.
from __future__ import annotations

import copy
import json
import pathlib

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._ssa import (
    apply_pending,
    canonical_quantity,
    crd_version_schema,
    is_quantity_path,
    object_label,
    values_equal,
    with_schema_defaults,
)

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "ssa"
MANAGER = "gke-ai-inference-gateway"


def live(name):
    return json.loads((FIXTURES / (name + ".json")).read_text())


def _owned_items(live_list, entries):
    out = []
    for item in live_list:  # in the live order, as the last apply left it
        for entry, sub in entries.items():
            if entry.startswith("k:"):
                key = json.loads(entry[2:])
                if all(item.get(k) == v for k, v in key.items()):
                    out.append(project(item, sub))
            elif entry.startswith("v:") and json.loads(entry[2:]) == item:
                out.append(item)
    return out


def project(value, owned):
    """The configuration the field manager applied: the live object cut down to the fields it owns."""
    children = {k: v for k, v in owned.items() if k != "."}
    if not children:
        return copy.deepcopy(value)
    if isinstance(value, dict):
        return {k[2:]: project(value[k[2:]], v) for k, v in children.items()}
    return _owned_items(value, children)


def configuration(obj, manager=MANAGER):
    """What the last apply sent, rebuilt from the live object (identity fields + owned fields)."""
    entry = [m for m in obj["metadata"]["managedFields"] if m["manager"] == manager and m["operation"] == "Apply"][0]
    desired = project(obj, entry["fieldsV1"])
    desired["apiVersion"], desired["kind"] = obj["apiVersion"], obj["kind"]
    desired.setdefault("metadata", {})["name"] = obj["metadata"]["name"]
    if obj["metadata"].get("namespace"):
        desired["metadata"]["namespace"] = obj["metadata"]["namespace"]
    return desired


@pytest.mark.parametrize("name", ["deployment", "secret", "httproute"])
def test_the_last_applied_configuration_changes_nothing(name):
    obj = live(name)
    assert apply_pending(configuration(obj), obj, MANAGER) is None


def test_the_fixtures_carry_server_side_state_that_the_configuration_does_not_set():
    obj = live("deployment")
    desired = configuration(obj)
    assert "status" in obj and "status" not in desired
    # defaulted by the API server inside owned maps: not part of the configuration, no reason for an apply
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["terminationMessagePolicy"] == "File"
    assert "terminationMessagePolicy" not in desired["spec"]["template"]["spec"]["containers"][0]


def _deployment_change(mutate):
    obj = live("deployment")
    desired = configuration(obj)
    mutate(desired["spec"]["template"]["spec"])
    return apply_pending(desired, obj, MANAGER)


def test_a_changed_scalar_is_a_change_named_by_its_path():
    def new_image(pod):
        pod["containers"][0]["image"] = "vllm/vllm-openai:v0.9.0"
    assert _deployment_change(new_image) == "spec.template.spec.containers[0].image differs"


def test_a_changed_atomic_list_is_a_change():
    def new_args(pod):
        pod["containers"][0]["args"].append("--max-model-len=2048")
    assert _deployment_change(new_args) == "spec.template.spec.containers[0].args differs"


def test_a_changed_atomic_map_is_a_change():
    def new_selector(pod):
        pod["nodeSelector"] = {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}
    assert _deployment_change(new_selector) == "spec.template.spec.nodeSelector differs"


def test_a_field_no_longer_configured_would_be_removed():
    def drop_probe(pod):
        del pod["containers"][0]["startupProbe"]
    assert _deployment_change(drop_probe) == (
        "spec.template.spec.containers[0].startupProbe is owned but no longer configured (an apply would remove it)")


def test_a_new_field_is_a_change():
    def add_priority(pod):
        pod["priorityClassName"] = "high"
    assert _deployment_change(add_priority) == "spec.template.spec.priorityClassName is not owned by the field manager yet"


def test_a_new_keyed_list_item_is_a_change():
    def add_env(pod):
        pod["containers"][0]["env"].append({"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"})
    assert "the field manager owns 2 items, the configuration has 3" in _deployment_change(add_env)


def test_keyed_list_items_in_another_order_are_a_change():
    def swap_env(pod):
        pod["containers"][0]["env"].reverse()
    assert _deployment_change(swap_env) == "spec.template.spec.containers[0].env is in another order in the live object"


def test_a_keyed_item_may_leave_out_a_defaulted_key_field():
    def no_protocol(pod):
        for port in pod["containers"][0]["ports"]:
            port.pop("protocol", None)
    obj = live("deployment")
    ports = obj["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert all(port["protocol"] == "TCP" for port in ports)  # the server's default, part of the list key
    assert _deployment_change(no_protocol) == (
        "spec.template.spec.containers[0].ports[0].protocol is owned but no longer configured (an apply would remove it)")


def test_a_null_in_the_configuration_is_undecidable():
    obj = live("deployment")
    desired = configuration(obj)
    desired["spec"]["strategy"] = None
    assert apply_pending(desired, obj, MANAGER) == "spec.strategy is null in the configuration"


def test_a_null_creation_timestamp_and_a_status_are_ignored():
    obj = live("deployment")
    desired = configuration(obj)
    desired["metadata"]["creationTimestamp"] = None
    desired["status"] = {"replicas": 7}
    assert apply_pending(desired, obj, MANAGER) is None


def test_nothing_live_another_manager_or_another_version_is_a_change():
    obj = live("deployment")
    desired = configuration(obj)
    assert apply_pending(desired, None, MANAGER) == "does not exist"
    assert apply_pending(desired, obj, "kubectl") == "not applied by kubectl as apps/v1 yet"
    desired["apiVersion"] = "apps/v1beta2"
    assert apply_pending(desired, obj, MANAGER) == "not applied by gke-ai-inference-gateway as apps/v1beta2 yet"


def test_a_value_changed_by_someone_else_is_a_change():
    obj = live("deployment")
    desired = configuration(obj)
    obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 50
    assert apply_pending(desired, obj, MANAGER) == "spec.template.spec.terminationGracePeriodSeconds differs"


def test_a_secret_reason_names_the_key_never_the_value():
    obj = live("secret")
    desired = configuration(obj)
    desired["data"]["hf_api_token"] = "bmV3LXRva2Vu"
    reason = apply_pending(desired, obj, MANAGER)
    assert reason == "data.hf_api_token differs"
    assert "bmV3" not in reason and "c2Vj" not in reason


def test_a_removed_label_would_be_removed_from_the_object():
    obj = live("secret")
    desired = configuration(obj)
    del desired["metadata"]["labels"]["app.kubernetes.io/part-of"]
    assert apply_pending(desired, obj, MANAGER) == (
        "metadata.labels.app.kubernetes.io/part-of is owned but no longer configured (an apply would remove it)")


# --- custom resources: atomic lists compared with the schema's defaults (Gateway API HTTPRoute) -----------------

HTTPROUTE_SCHEMA = {  # the defaults of gateway.networking.k8s.io/v1 HTTPRoute (standard channel, v1.4.1)
    "type": "object",
    "properties": {"spec": {"type": "object", "properties": {
        "parentRefs": {"type": "array", "items": {"type": "object", "properties": {
            "group": {"type": "string", "default": "gateway.networking.k8s.io"},
            "kind": {"type": "string", "default": "Gateway"},
            "name": {"type": "string"}}}},
        "rules": {"type": "array", "default": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}],
                  "items": {"type": "object", "properties": {
                      "backendRefs": {"type": "array", "items": {"type": "object", "properties": {
                          "group": {"type": "string", "default": ""},
                          "kind": {"type": "string", "default": "Service"},
                          "weight": {"type": "integer", "default": 1}}}},
                      "matches": {"type": "array", "default": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                  "items": {"type": "object", "properties": {
                                      "headers": {"type": "array", "items": {"type": "object", "properties": {
                                          "type": {"type": "string", "default": "Exact"}}}},
                                      "path": {"type": "object", "default": {"type": "PathPrefix", "value": "/"},
                                               "properties": {"type": {"type": "string", "default": "PathPrefix"},
                                                              "value": {"type": "string", "default": "/"}}}}}}}}}}}},
}


def _route_as_templated():
    """The host-based route as roles/gateway renders it: no defaulted field spelled out."""
    desired = configuration(live("httproute"))
    spec = desired["spec"]
    spec["parentRefs"] = [{"name": ref["name"]} for ref in spec["parentRefs"]]
    for rule in spec["rules"]:
        rule["backendRefs"] = [{"name": ref["name"], "port": ref["port"]} for ref in rule["backendRefs"]]
        for match in rule.get("matches", []):
            for header in match.get("headers", []):
                header.pop("type", None)
            if match.get("path") == {"type": "PathPrefix", "value": "/"}:
                del match["path"]
        if rule.get("matches") == [{"path": {"type": "PathPrefix", "value": "/"}}] or rule.get("matches") == [{}]:
            del rule["matches"]
    return desired


def test_an_atomic_list_with_server_defaults_needs_the_schema():
    obj = live("httproute")
    desired = _route_as_templated()
    assert apply_pending(desired, obj, MANAGER) == "spec.parentRefs differs"
    assert apply_pending(desired, obj, MANAGER, HTTPROUTE_SCHEMA) is None


def test_a_default_spelled_out_differently_is_still_a_change():
    obj = live("httproute")
    desired = _route_as_templated()
    desired["spec"]["rules"][0]["backendRefs"][0]["weight"] = 5
    assert apply_pending(desired, obj, MANAGER, HTTPROUTE_SCHEMA) == "spec.rules differs"


def test_schema_defaults_fill_absent_fields_only_and_recurse_into_them():
    value = {"spec": {"rules": [{"backendRefs": [{"name": "a", "weight": 3}]}]}}
    out = with_schema_defaults(value, HTTPROUTE_SCHEMA)
    assert out["spec"]["rules"][0]["backendRefs"] == [{"name": "a", "weight": 3, "group": "", "kind": "Service"}]
    assert out["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert value == {"spec": {"rules": [{"backendRefs": [{"name": "a", "weight": 3}]}]}}  # not modified
    assert with_schema_defaults(value, None) is value


def test_crd_version_schema_picks_the_served_version():
    crd = {"spec": {"versions": [{"name": "v1beta1", "schema": {"openAPIV3Schema": {"title": "old"}}},
                                 {"name": "v1", "schema": {"openAPIV3Schema": {"title": "new"}}}]}}
    assert crd_version_schema(crd, "v1") == {"title": "new"}
    assert crd_version_schema(crd, "v2") is None


# --- sets, unknown encodings, equality ----------------------------------------------------------------------

def _with_finalizers(owned_values, live_values, desired_values):
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "c", "namespace": "n", "finalizers": live_values,
        "managedFields": [{"manager": MANAGER, "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:finalizers": {
                               "v:" + json.dumps(v): {} for v in owned_values}}}}]}}
    desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n",
                                                                     "finalizers": desired_values}}
    return apply_pending(desired, obj, MANAGER)


def test_a_set_is_compared_item_by_item():
    assert _with_finalizers(["a/x", "b/y"], ["a/x", "other/z", "b/y"], ["a/x", "b/y"]) is None
    assert _with_finalizers(["a/x"], ["a/x", "b/y"], ["a/x", "b/y"]) == (
        "metadata.finalizers: the field manager owns 1 items, the configuration has 2")
    assert _with_finalizers(["a/x", "b/y"], ["b/y", "a/x"], ["a/x", "b/y"]) == (
        "metadata.finalizers is in another order in the live object")


def test_an_unknown_list_encoding_is_a_change():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "c", "managedFields": [{"manager": MANAGER, "operation": "Apply", "apiVersion": "v1",
                                        "fieldsV1": {"f:data": {"f:x": {"i:0": {}}}}}]}, "data": {"x": ["a"]}}
    desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": ["a"]}}
    assert apply_pending(desired, obj, MANAGER) == "data.x: list ownership encoded as i: is not compared here"


@pytest.mark.parametrize("desired, served, equal", [
    (4, "4", False),            # a number is not a string, unless the field is a quantity (below)
    ("8000", 8000, False),
    (1, 1.0, True),
    (True, 1, False),           # a boolean is never a number
    ("true", True, False),
    (None, None, True),
    (None, "", False),
    ("16Gi", "17179869184", False),
    ({"a": [1, {"b": "2"}]}, {"a": [1, {"b": 2}]}, False),
    ({"a": [1, {"b": "2"}]}, {"a": [1, {"b": "2"}]}, True),
    ({"a": 1}, {"a": 1, "b": 2}, False),
    ([1, 2], [2, 1], False),
])
def test_values_equal(desired, served, equal):
    assert values_equal(desired, served) is equal


@pytest.mark.parametrize("written, stored", [
    (4, "4"), ("4", "4"), (0.5, "500m"), ("0.5", "500m"), ("0.7", "700m"), (1000, "1k"), ("1500m", "1500m"),
    ("2048Mi", "2Gi"), ("1536Mi", "1536Mi"), ("0.5Gi", "512Mi"), ("1.5", "1500m"), ("100m", "100m"),
    ("25Gi", "25Gi"), ("10G", "10G"), ("1e3", "1e3"), (1e-05, "10e-6"), ("512", "512"), ("0", "0"), (0, "0"),
    ("-1", "-1"), ("1k", "1k"), ("1000k", "1M"), ("0.000000001", "1n"), ("1Ki", "1Ki"), ("0.5Ki", "512"),
])
def test_canonical_quantity_is_what_the_api_server_stores(written, stored):
    assert canonical_quantity(written) == stored


@pytest.mark.parametrize("value", ["25 GB", "lots", "", True, None, [], "0.0000000001", "1Zi"])
def test_canonical_quantity_refuses_what_it_cannot_decide(value):
    assert canonical_quantity(value) is None


@pytest.mark.parametrize("path, quantity", [
    (("spec", "template", "spec", "containers", 0, "resources", "limits", "cpu"), True),
    (("spec", "resources", "requests", "storage"), True),
    (("spec", "hard", "pods"), True),
    (("spec", "limits", 0, "defaultRequest", "memory"), True),
    (("spec", "metrics", 0, "external", "target", "averageValue"), True),
    (("spec", "template", "spec", "volumes", 0, "emptyDir", "sizeLimit"), True),
    (("spec", "ports", 0, "targetPort"), False),
    (("spec", "replicas"), False),
    (("spec", "strategy", "rollingUpdate", "maxUnavailable"), False),
    (("spec", "default", "timeoutSec"), False),
])
def test_quantity_paths(path, quantity):
    assert is_quantity_path(path) is quantity


def test_quantities_of_built_in_kinds_compare_in_canonical_form():
    obj = live("deployment")
    desired = configuration(obj)
    limits = desired["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    limits["cpu"] = 6  # served as "6"
    assert apply_pending(desired, obj, MANAGER, builtin=True) is None
    assert apply_pending(desired, obj, MANAGER) == "spec.template.spec.containers[0].resources.limits.cpu differs"
    limits["memory"] = "26843545600"  # 25Gi, but stored as written: an apply changes the object
    assert apply_pending(desired, obj, MANAGER, builtin=True) == (
        "spec.template.spec.containers[0].resources.limits.memory differs")


def test_an_hpa_target_written_as_a_fraction_is_its_milli_form():
    obj = _owned_scalars("autoscaling/v2", "HorizontalPodAutoscaler",
                         {"metrics": [{"type": "External", "external": {"target": {"type": "Value", "value": "700m"}}}]},
                         {"f:metrics": {}})
    desired = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "x", "namespace": "n"},
               "spec": {"metrics": [{"type": "External", "external": {"target": {"type": "Value", "value": "0.7"}}}]}}
    assert apply_pending(desired, obj, MANAGER, builtin=True) is None
    desired["spec"]["metrics"][0]["external"]["target"]["value"] = "0.75"
    assert apply_pending(desired, obj, MANAGER, builtin=True) == "spec.metrics differs"


def test_object_label():
    assert object_label({"kind": "Deployment", "metadata": {"name": "d", "namespace": "n"}}) == "Deployment n/d"
    assert object_label({"kind": "CustomResourceDefinition", "metadata": {"name": "x.y"}}) == "CustomResourceDefinition x.y"


def test_a_bare_object_that_exists_is_not_a_change():
    """A Namespace or ServiceAccount with nothing but its name: the API server records no ownership for its apply
    (the custom metrics adapter's manifest has both), and an apply could change nothing."""
    desired = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "ns"}}
    other = {"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:labels": {"f:x": {}}}}}
    existing = {"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "sa", "namespace": "ns", "labels": {"x": "y"}, "managedFields": [other]}}
    assert apply_pending(desired, existing, MANAGER) is None
    assert apply_pending(desired, None, MANAGER) == "does not exist"
    labelled = dict(desired, metadata=dict(desired["metadata"], labels={"a": "b"}))
    assert apply_pending(labelled, existing, MANAGER) == "not applied by %s as v1 yet" % MANAGER


# --- "unchanged" errs towards "changed": a number and its decimal string are equal only for quantities -----------

def _owned_scalars(api_version, kind, spec, owned_spec):
    """A live object whose spec our manager owns field by field (owned_spec: the fieldsV1 of spec)."""
    return {"apiVersion": api_version, "kind": kind, "metadata": {
        "name": "x", "namespace": "n", "managedFields": [{
            "manager": MANAGER, "operation": "Apply", "apiVersion": api_version, "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": owned_spec}}]}, "spec": spec}


SERVICE_PORT = 'k:{"port":8000,"protocol":"TCP"}'


@pytest.mark.parametrize("desired_spec, live_spec, owned, reason", [
    # an int-or-string is kept as given: "8000" names a port, 8000 is a number; an apply would change it
    ({"ports": [{"port": 8000, "protocol": "TCP", "targetPort": "8000"}]},
     {"ports": [{"port": 8000, "protocol": "TCP", "targetPort": 8000}]},
     {"f:ports": {SERVICE_PORT: {".": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}}},
     "spec.ports[0].targetPort differs"),
    ({"ports": [{"port": 8000, "protocol": "TCP", "targetPort": 8000}]},
     {"ports": [{"port": 8000, "protocol": "TCP", "targetPort": "8000"}]},
     {"f:ports": {SERVICE_PORT: {".": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}}},
     "spec.ports[0].targetPort differs"),
])
def test_an_int_or_string_is_not_a_quantity(desired_spec, live_spec, owned, reason):
    obj = _owned_scalars("v1", "Service", live_spec, owned)
    desired = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "n"}, "spec": desired_spec}
    assert apply_pending(desired, obj, MANAGER) == reason
    assert apply_pending(desired, obj, MANAGER, builtin=True) == reason


@pytest.mark.parametrize("desired_spec, reason", [
    ({"replicas": "3", "strategy": {"rollingUpdate": {"maxUnavailable": 1}}}, "spec.replicas differs"),
    ({"replicas": 3, "strategy": {"rollingUpdate": {"maxUnavailable": "1"}}},
     "spec.strategy.rollingUpdate.maxUnavailable differs"),
])
def test_replicas_and_max_unavailable_are_not_quantities(desired_spec, reason):
    obj = _owned_scalars("apps/v1", "Deployment", {"replicas": 3, "strategy": {"rollingUpdate": {"maxUnavailable": 1}}},
                         {"f:replicas": {}, "f:strategy": {"f:rollingUpdate": {"f:maxUnavailable": {}}}})
    desired = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "n"},
               "spec": desired_spec}
    assert apply_pending(desired, obj, MANAGER) == reason
    assert apply_pending(desired, obj, MANAGER, builtin=True) == reason
