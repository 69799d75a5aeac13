# -*- coding: utf-8 -*-
# Unit tests for the pure parts of plugins/module_utils/_k8s_converge.py: ApplySet identities and prune selection,
# the replicas hand-over and autoscaler release decisions, taking fields over from another manager, diffs that never
# show a Secret's values, and the wait's verdicts on scripted reads. The requests themselves run against the local
# API server (tests/integration/test_k8s_converge.py and the role tests).
from __future__ import annotations

import base64
import copy
import hashlib
import json

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _k8s_converge as engine
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._k8s_converge import (
    ConvergeError,
    Converger,
    Item,
    applyset_id,
    applyset_parent,
    as_member,
    co_owned,
    fields_without,
    group_kind,
    hide_secret_values,
    identity,
    object_diff,
    ownership_patch,
    parse_group_kinds,
    replicas_handover,
    scales,
    stale,
    takes_replicas_back,
)

MANAGER = "gke-ai-inference-gateway"


def obj(api_version, kind, name, namespace=None, **rest):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return dict({"apiVersion": api_version, "kind": kind, "metadata": meta}, **rest)


# --------------------------------------------------------------------------- ApplySet

def test_applyset_id_is_the_kep_3659_hash_of_the_parent():
    digest = hashlib.sha256(b"infgw-vllm-model.gemma.ConfigMap.").digest()
    expected = "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"
    assert applyset_id("infgw-vllm-model", "gemma") == expected
    assert len(expected) <= 63  # a label value
    assert applyset_id("infgw-vllm-model", "other") != expected


def test_group_kinds_round_trip_through_the_parent_annotation():
    kinds = {("", "Service"), ("apps", "Deployment"), ("gateway.networking.k8s.io", "HTTPRoute")}
    parent = applyset_parent("p", "ns", "applyset-x-v1", kinds, {"custom-metrics"})
    annotations = parent["metadata"]["annotations"]
    assert annotations[engine.APPLYSET_KINDS] == "Deployment.apps,HTTPRoute.gateway.networking.k8s.io,Service"
    assert annotations[engine.APPLYSET_NAMESPACES] == "custom-metrics"
    assert parent["metadata"]["labels"] == {engine.APPLYSET_ID: "applyset-x-v1"}
    assert parse_group_kinds(annotations[engine.APPLYSET_KINDS]) == kinds
    assert group_kind("", "Secret") == "Secret" and parse_group_kinds("") == set()


def test_a_member_is_labelled_on_a_copy():
    deployment = obj("apps/v1", "Deployment", "d", "ns", spec={})
    member = as_member(deployment, "applyset-x-v1")
    assert member["metadata"]["labels"] == {engine.APPLYSET_PART_OF: "applyset-x-v1"}
    assert "labels" not in deployment["metadata"]


def test_stale_members_are_those_no_longer_wanted_namespace_included():
    """A Service of the same name in another namespace is another object: it is stale when not wanted."""
    wanted = {identity(obj("v1", "Service", "s", "a")), identity(obj("apps/v1", "Deployment", "d", "a"))}
    members = [obj("v1", "Service", "s", "a"), obj("v1", "Service", "s", "b"),
               obj("apps/v1", "Deployment", "d", "a"), obj("apps/v1beta1", "Deployment", "d", "a"),
               obj("rbac.authorization.k8s.io/v1", "ClusterRole", "r")]
    assert [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in stale(members, wanted)] == [
        ("Service", "b", "s"), ("ClusterRole", None, "r")]


def test_identity_ignores_the_version_but_not_the_group():
    v1 = obj("inference.networking.k8s.io/v1", "InferencePool", "p", "n")
    alpha = obj("inference.networking.x-k8s.io/v1alpha2", "InferencePool", "p", "n")
    assert identity(v1) == ("inference.networking.k8s.io", "InferencePool", "n", "p")
    assert identity(v1) != identity(alpha)
    assert identity(obj("apps/v1", "Deployment", "d", "n")) == identity(obj("apps/v1beta2", "Deployment", "d", "n"))


# --------------------------------------------------------------------------- spec.replicas hand-over

def deployment(replicas=None, owned=True, live_replicas=3):
    desired = obj("apps/v1", "Deployment", "vllm-tiny", "ns", spec={"template": {}})
    if replicas is not None:
        desired["spec"]["replicas"] = replicas
    fields = {"f:spec": {"f:template": {}}}
    if owned:
        fields["f:spec"]["f:replicas"] = {}
    live = obj("apps/v1", "Deployment", "vllm-tiny", "ns", spec={"replicas": live_replicas, "template": {}})
    live["metadata"]["managedFields"] = [
        {"manager": MANAGER, "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
         "fieldsV1": fields},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
         "subresource": "scale", "fieldsV1": {"f:spec": {"f:replicas": {}}}} if not owned else
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
         "subresource": "status", "fieldsV1": {"f:status": {}}}]
    return desired, live


def test_replicas_left_out_are_first_applied_at_their_live_value():
    desired, live = deployment(replicas=None, owned=True, live_replicas=3)
    assert replicas_handover(desired, live, MANAGER) == {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "vllm-tiny", "namespace": "ns"},
        "spec": {"replicas": 3}}


@pytest.mark.parametrize("replicas, owned", [(3, True), (None, False), (2, False)])
def test_no_hand_over_while_configured_or_once_handed_over(replicas, owned):
    desired, live = deployment(replicas=replicas, owned=owned)
    assert replicas_handover(desired, live, MANAGER) is None


def test_no_hand_over_for_new_objects_or_kinds_without_a_scale():
    desired, _live = deployment(replicas=None)
    assert replicas_handover(desired, None, MANAGER) is None
    service = obj("v1", "Service", "s", "ns", spec={})
    live = copy.deepcopy(service)
    live["metadata"]["managedFields"] = [{"manager": MANAGER, "operation": "Apply", "apiVersion": "v1",
                                          "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    assert replicas_handover(service, live, MANAGER) is None


def test_setting_replicas_again_takes_them_back_from_the_autoscaler():
    desired, live = deployment(replicas=3, owned=False)
    assert takes_replicas_back(desired, live, MANAGER)
    desired, live = deployment(replicas=3, owned=True)
    assert not takes_replicas_back(desired, live, MANAGER)
    desired, live = deployment(replicas=None, owned=False)
    assert not takes_replicas_back(desired, live, MANAGER)


def test_which_autoscaler_scales_which_workload():
    desired, _live = deployment(replicas=3)
    hpa = obj("autoscaling/v2", "HorizontalPodAutoscaler", "vllm-tiny", "ns",
              spec={"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllm-tiny"}})
    assert scales(hpa, desired)
    other = copy.deepcopy(hpa)
    other["spec"]["scaleTargetRef"]["name"] = "vllm-other"
    elsewhere = copy.deepcopy(hpa)
    elsewhere["metadata"]["namespace"] = "other"
    assert not scales(other, desired) and not scales(elsewhere, desired)


# --------------------------------------------------------------------------- taking fields over from helm

HELM_SPEC = {"f:spec": {".": {}, "f:default": {".": {}, "f:logging": {".": {}, "f:enabled": {}}, "f:timeoutSec": {}},
                        "f:targetRef": {".": {}, "f:group": {}, "f:kind": {}, "f:name": {}}}}
HELM_METADATA = {"f:metadata": {"f:labels": {".": {}, "f:app.kubernetes.io/managed-by": {}}}}
OURS = {"f:spec": {"f:default": {"f:logging": {"f:enabled": {}}, "f:securityPolicy": {}, "f:timeoutSec": {}},
                   "f:targetRef": {"f:group": {}, "f:kind": {}, "f:name": {}}}}


def policy(helm_fields):
    live = obj("networking.gke.io/v1", "GCPBackendPolicy", "vllm-a", "ns")
    live["metadata"]["managedFields"] = [
        {"manager": "helm", "operation": "Update", "apiVersion": "networking.gke.io/v1", "fieldsV1": helm_fields},
        {"manager": "gke-sim", "operation": "Update", "apiVersion": "networking.gke.io/v1", "subresource": "status",
         "fieldsV1": {"f:status": {}}},
        {"manager": MANAGER, "operation": "Apply", "apiVersion": "networking.gke.io/v1", "fieldsV1": OURS}]
    return live


def test_fields_without_keeps_what_the_other_manager_alone_owns():
    assert fields_without(dict(HELM_SPEC, **HELM_METADATA), OURS) == HELM_METADATA
    assert fields_without(HELM_SPEC, {"f:spec": {"f:default": {"f:timeoutSec": {}}}}) == {
        "f:spec": {".": {}, "f:default": {".": {}, "f:logging": {".": {}, "f:enabled": {}}},
                   "f:targetRef": {".": {}, "f:group": {}, "f:kind": {}, "f:name": {}}}}
    assert fields_without(HELM_SPEC, {}) == HELM_SPEC


def test_co_owned_fields_name_the_manager_and_the_paths():
    shared = co_owned(policy(dict(HELM_SPEC, **HELM_METADATA)), MANAGER, ["helm"])
    assert shared == {"helm": ["spec.default.logging.enabled", "spec.default.timeoutSec", "spec.targetRef.group",
                               "spec.targetRef.kind", "spec.targetRef.name"]}
    assert co_owned(policy(HELM_METADATA), MANAGER, ["helm"]) == {}
    assert co_owned(policy(HELM_SPEC), MANAGER, ["someone-else"]) == {}


def test_the_ownership_patch_tests_the_entry_before_replacing_or_removing_it():
    assert ownership_patch(policy(dict(HELM_SPEC, **HELM_METADATA)), MANAGER, ["helm"]) == [
        {"op": "test", "path": "/metadata/managedFields/0/manager", "value": "helm"},
        {"op": "test", "path": "/metadata/managedFields/0/operation", "value": "Update"},
        {"op": "replace", "path": "/metadata/managedFields/0/fieldsV1", "value": HELM_METADATA}]
    assert ownership_patch(policy(HELM_SPEC), MANAGER, ["helm"])[-1] == {
        "op": "remove", "path": "/metadata/managedFields/0"}  # helm owned nothing else: its entry goes
    assert ownership_patch(policy(HELM_METADATA), MANAGER, ["helm"]) == []


# --------------------------------------------------------------------------- diffs

def test_a_secret_diff_never_shows_a_value_but_tells_a_changed_one():
    before = obj("v1", "Secret", "hf-secret", "ns", data={"hf_api_token": "b2xk", "other": "c2FtZQ=="})
    after = obj("v1", "Secret", "hf-secret", "ns", data={"hf_api_token": "bmV3", "other": "c2FtZQ=="})
    shown_before, shown_after = hide_secret_values(before, after)
    assert shown_before["data"] == {"hf_api_token": "(hidden)", "other": "(hidden)"}
    assert shown_after["data"] == {"hf_api_token": "(hidden, changed)", "other": "(hidden)"}
    text = json.dumps(object_diff(before, after, "Secret ns/hf-secret"))
    for value in ("b2xk", "bmV3", "c2FtZQ==", "old", "new"):
        assert value not in text
    assert before["data"]["hf_api_token"] == "b2xk"  # the inputs are untouched


def test_a_diff_leaves_out_what_changes_on_every_write():
    before = obj("v1", "ConfigMap", "c", "ns", data={"a": "1"}, status={"x": 1})
    before["metadata"].update(resourceVersion="1", uid="u", managedFields=[{}], creationTimestamp="t", generation=1)
    after = copy.deepcopy(before)
    after["data"]["a"] = "2"
    after["metadata"]["resourceVersion"] = "2"
    diff = object_diff(before, after, "ConfigMap ns/c")
    assert diff["before_header"] == diff["after_header"] == "ConfigMap ns/c"
    assert "a: '1'" in diff["before"] and "a: '2'" in diff["after"]
    for noise in ("resourceVersion", "uid", "managedFields", "creationTimestamp", "generation", "status"):
        assert noise not in diff["before"] + diff["after"]
    assert object_diff(before, None, "ConfigMap ns/c")["after"] == ""  # a deletion


# --------------------------------------------------------------------------- waiting, on scripted reads

class ScriptedClient(object):
    """Answers reads from a script of documents (the API's own shapes): get(name) pops the next version."""

    def __init__(self, versions, pods, events=()):
        self.versions, self.pods, self.events = list(versions), pods, list(events)

    def resource(self, api_version, kind):
        return ("" if api_version == "v1" else api_version.split("/")[0], "v1", kind.lower() + "s", True)

    def get(self, resource, name, namespace=None):
        return self.versions.pop(0) if len(self.versions) > 1 else self.versions[0]

    def list(self, resource, namespace=None, label_selector=None):
        return self.pods if resource[2] == "pods" else self.events


class Clock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def _waiting_on(documents, pods, events=(), timeout=60):
    clock = Clock()
    client = ScriptedClient(documents[1:] or documents, pods, events)  # the first is what the step read
    converger = Converger(client, MANAGER, "ns", clock=clock, sleep=clock.sleep)
    item = Item(copy.deepcopy(documents[0]))
    item.resource = client.resource("apps/v1", "Deployment")
    item.live = documents[0]
    converger.wait([item], timeout, 2, {"vllm-tiny": "model tiny"})
    return clock.now


def _deployment(available, generation=1, observed=1, replicas=1):
    d = obj("apps/v1", "Deployment", "vllm-tiny", "ns", spec={"replicas": replicas,
                                                              "selector": {"matchLabels": {"app": "vllm-tiny"}}})
    d["metadata"]["generation"] = generation
    d["status"] = {"observedGeneration": observed, "replicas": replicas, "updatedReplicas": replicas,
                   "availableReplicas": available, "readyReplicas": available}
    if available < replicas:
        d["status"]["unavailableReplicas"] = replicas - available
    return d


def test_a_ready_deployment_needs_no_read_and_no_wait():
    assert _waiting_on([_deployment(1)], pods=[]) == 0


def test_the_wait_reads_until_ready():
    assert _waiting_on([_deployment(0), _deployment(0), _deployment(1)], pods=[]) == 4


def test_a_crash_looping_model_server_fails_the_wait_at_once_naming_the_model():
    pod = {"metadata": {"name": "vllm-tiny-abc"}, "status": {"phase": "Running", "containerStatuses": [{
        "name": "inference-server", "ready": False, "restartCount": 2,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                                     "message": "api_server.py: error: unrecognized arguments: --bogus-flag"}}}]}}
    with pytest.raises(ConvergeError) as raised:
        _waiting_on([_deployment(0)], pods=[pod], timeout=1800)
    text = str(raised.value)
    assert "model tiny, Deployment ns/vllm-tiny: pod vllm-tiny-abc container inference-server is crash-looping" in text
    assert "exit code 2: api_server.py: error: unrecognized arguments: --bogus-flag" in text


def test_a_timeout_names_every_blocker():
    pending = {"metadata": {"name": "vllm-tiny-abc"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}]}}
    events = [{"involvedObject": {"name": "vllm-tiny-abc"}, "reason": "FailedScheduling", "message": "0/3 nodes",
               "lastTimestamp": "2026-01-01T00:00:01Z"},
              {"involvedObject": {"name": "vllm-tiny-abc"}, "reason": "NotTriggerScaleUp",
               "message": "pod didn't trigger scale-up: 1 Insufficient nvidia.com/gpu",
               "lastTimestamp": "2026-01-01T00:00:02Z"}]
    with pytest.raises(ConvergeError) as raised:
        _waiting_on([_deployment(0)], pods=[pending], events=events, timeout=10)
    assert str(raised.value) == (
        "not ready after 10s:\n"
        "- model tiny, Deployment ns/vllm-tiny: 0/1 replicas available\n"
        "  pod vllm-tiny-abc cannot be scheduled (FailedScheduling): 0/3 nodes\n"
        "    cluster autoscaler (NotTriggerScaleUp): pod didn't trigger scale-up: 1 Insufficient nvidia.com/gpu")


# --------------------------------------------------------------------------- adoption (kubectl apply by hand)

KUBECTL_FIELDS = {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                                 "f:labels": {".": {}, "f:app": {}}},
                  "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                      'k:{"name":"vllm"}': {".": {}, "f:image": {}, "f:name": {}, "f:env": {
                          ".": {}, 'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}},
                          'k:{"name":"B"}': {".": {}, "f:name": {}, "f:value": {}}}}}}}}}
OUR_FIELDS = {"f:metadata": {"f:labels": {"f:app": {}}},
              "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"vllm"}': {
                  ".": {}, "f:image": {}, "f:name": {}, "f:env": {'k:{"name":"A"}': {".": {}, "f:name": {},
                                                                                     "f:value": {}}}}}}}}}


def by_hand_deployment(ours=True):
    entries = [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1",
                "fieldsV1": KUBECTL_FIELDS},
               {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
                "subresource": "status", "fieldsV1": {"f:status": {}}}]
    if ours:
        entries.append({"manager": MANAGER, "operation": "Apply", "apiVersion": "apps/v1", "fieldsV1": OUR_FIELDS})
    return obj("apps/v1", "Deployment", "vllm-gemma-3-1b", "gemma", spec={
        "replicas": 2, "template": {"spec": {"containers": [{
            "name": "vllm", "image": "vllm/vllm-openai:v0",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}}},
        metadata={"name": "vllm-gemma-3-1b", "namespace": "gemma", "resourceVersion": "7", "labels": {"app": "x"},
                  "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                  "managedFields": entries})


def test_managers_to_adopt_match_by_name_or_pattern_never_ours():
    assert engine.manager_matches("kubectl-client-side-apply", ["kubectl-*"])
    assert not engine.manager_matches("helm", ["kubectl", "kubectl-*"])
    assert [e["manager"] for e in engine.adopted_entries(by_hand_deployment(), MANAGER, ["*"])] == \
        ["kubectl-client-side-apply"]  # the status subresource and our own entry are never adopted


def test_leftovers_are_what_only_adopted_managers_set_list_items_whole():
    paths = engine.leftovers(by_hand_deployment(), MANAGER, ["kubectl-client-side-apply"])
    assert paths == [("f:spec", "f:replicas"),
                     ("f:metadata", "f:annotations", "f:kubectl.kubernetes.io/last-applied-configuration"),
                     ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"vllm"}', "f:env",
                      'k:{"name":"B"}')]
    keep = engine.workload_keep({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}})
    kept = engine.leftovers(by_hand_deployment(), MANAGER, ["kubectl-client-side-apply"], keep)
    assert ("f:spec", "f:replicas") not in kept
    assert engine.workload_keep({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1}}) == []
    assert engine.leftovers(by_hand_deployment(), MANAGER, ["kubectl-create"]) == []


def test_the_adoption_update_removes_leftovers_and_the_adopted_entries_only():
    live = by_hand_deployment()
    keep = [("f:spec", "f:replicas")]
    body, removed = engine.adoption_update(live, live, MANAGER, ["kubectl-*"], keep)
    assert body["metadata"]["resourceVersion"] == "7"
    assert "annotations" not in body["metadata"]  # emptied, so gone
    assert body["spec"]["replicas"] == 2
    assert body["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    assert [e["manager"] for e in body["metadata"]["managedFields"]] == ["kube-controller-manager", MANAGER]
    assert len(removed) == 2 and live["spec"]["template"]["spec"]["containers"][0]["env"][1]["name"] == "B"
    adopted_already = dict(live, metadata=dict(live["metadata"], managedFields=live["metadata"]["managedFields"][1:]))
    assert engine.adoption_update(adopted_already, live, MANAGER, ["kubectl-*"]) == (None, [])


def test_without_fields_finds_list_items_by_key_value_and_index():
    doc = {"spec": {"matches": [{"path": {"value": "/"}}, {"headers": [{"name": "h"}]}], "tags": ["a", "b"]}}
    out, removed = engine.without_fields(doc, [("f:spec", "f:matches", "i:1"), ("f:spec", "f:tags", 'v:"b"'),
                                               ("f:spec", "f:nothing")])
    assert out == {"spec": {"matches": [{"path": {"value": "/"}}], "tags": ["a"]}}
    assert removed == [("f:spec", "f:matches", "i:1"), ("f:spec", "f:tags", 'v:"b"')]
    assert engine.has_field(doc, ("f:spec", "f:matches", "i:1", "f:headers"))
    assert not engine.has_field(out, ("f:spec", "f:matches", "i:1"))


def _crd(release, versions, served=True):
    meta = {"name": "inferencepools.example.com"}
    if release:
        meta["annotations"] = {"bundle": release}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": meta,
            "spec": {"versions": [{"name": v, "served": served} for v in versions]}}


@pytest.mark.parametrize("live, kept", [
    (_crd("v1.5.0", ["v1", "v1alpha2"]), True),  # newer, still serves v1alpha2
    (_crd("v1.10.0", ["v1alpha2"]), True),  # compared as numbers, not text
    (_crd("v1.1.0", ["v1alpha2"]), False),  # the same release: applied as any object
    (_crd("v1.0.1", ["v1alpha2"]), False),  # older: applied
    (_crd(None, ["v1alpha2"]), False),  # no release recorded
    (_crd("v1.5.0", ["v1"]), False),  # newer, but no longer serves v1alpha2: the older release needs it
    (_crd("v1.5.0", ["v1alpha2"], served=False), False),
    (None, False),  # not there yet
])
def test_a_newer_crd_is_kept_only_while_it_serves_what_ours_serves(live, kept):
    desired = _crd("v1.1.0", ["v1alpha2"])
    why = engine.newer_crd_kept(desired, live, "bundle", "v1.1.0")
    assert bool(why) is kept
    if kept:
        assert why.startswith("the cluster's bundle (%s) is newer than v1.1.0" % live["metadata"]["annotations"]["bundle"])


def test_only_crds_are_kept_and_only_when_asked():
    newer = _crd("v1.5.0", ["v1alpha2"])
    assert engine.newer_crd_kept(dict(_crd("v1.1.0", ["v1alpha2"]), kind="ConfigMap"), newer, "bundle", "v1.1.0") is None
    assert engine.newer_crd_kept(_crd("v1.1.0", ["v1alpha2"]), newer, None, "v1.1.0") is None
    assert engine.version_key("v1.10.0") > engine.version_key("v1.5.0") > engine.version_key("not-a-version")
