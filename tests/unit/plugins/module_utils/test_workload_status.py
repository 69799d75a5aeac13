# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_workload_status.py on status documents recorded from the local environment
# (fixtures/workload: a model server Available; one asking 2 GPUs of one-GPU nodes, with the scheduler's and the GCP
# fake's cluster autoscaler's events). The crash-looping pod is the recorded ready pod with the container status the
# kubelet writes for a container that exited on a bad flag (CrashLoopBackOff, lastState.terminated).
from __future__ import annotations

import copy
import json
import pathlib

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._workload_status import (
    apiservice_blockers,
    blockers,
    crash_loop,
    crd_blockers,
    deployment_blockers,
    explain,
    has_predicate,
    pod_blockers,
    selector_text,
)

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "workload"


def fixture(name):
    return json.loads((FIXTURES / (name + ".json")).read_text())


def crash_looping_pod(restarts=3, waiting="CrashLoopBackOff"):
    pod = fixture("pod-ready")
    (status,) = pod["status"]["containerStatuses"]
    status.update(ready=False, started=False, restartCount=restarts, lastState={"terminated": {
        "exitCode": 1, "reason": "Error", "startedAt": "2026-12-04T12:00:00Z", "finishedAt": "2026-12-04T12:00:05Z",
        "message": "INFO starting\nvllm: error: unrecognized arguments: --max-modle-len 2048\n"}})
    status["state"] = {"waiting": {"reason": waiting, "message": "back-off 40s restarting failed container"}} \
        if waiting else {"running": {"startedAt": "2026-12-04T12:00:06Z"}}
    return pod


def test_a_ready_deployment_has_no_blocker():
    assert deployment_blockers(fixture("deployment-ready")) == []
    assert has_predicate(fixture("deployment-ready"))


@pytest.mark.parametrize("change, blocker", [
    (lambda d: d["status"].update(availableReplicas=0, unavailableReplicas=1), "0/1 replicas available"),
    (lambda d: d["metadata"].update(generation=d["metadata"]["generation"] + 1),
     "the controller has not observed generation"),
    (lambda d: d["spec"].update(replicas=3), "1/3 replicas available, 1/3 updated"),
    (lambda d: d.update(status={}), "0/1 replicas available"),
])
def test_what_keeps_a_deployment_from_being_ready(change, blocker):
    d = fixture("deployment-ready")
    change(d)
    (text,) = deployment_blockers(d, "model gemma-3-1b, Deployment eng1/vllm-gemma-3-1b")
    assert text.startswith("model gemma-3-1b, Deployment eng1/vllm-gemma-3-1b: ") and blocker in text


def test_scaled_to_zero_is_ready():
    d = fixture("deployment-ready")
    d["spec"]["replicas"] = 0
    d["status"] = {"observedGeneration": d["metadata"]["generation"]}
    assert deployment_blockers(d) == []


def test_the_scheduler_and_the_autoscaler_explain_a_pending_model_server():
    d = fixture("deployment-unschedulable")
    fatal, lines = explain(d, fixture("pods-unschedulable")["items"], fixture("events-unschedulable")["items"])
    assert fatal == []
    assert lines[0] == "Deployment wl-fix/vllm-big: 0/1 replicas available"
    assert lines[1].startswith("  pod vllm-big-") and "cannot be scheduled (FailedScheduling): 0/5 nodes are available: " \
        "2 node(s) didn't match Pod's node affinity/selector, 3 Insufficient nvidia.com/gpu." in lines[1]
    assert lines[2] == "    cluster autoscaler (NotTriggerScaleUp): pod didn't trigger scale-up: 1 Insufficient nvidia.com/gpu"


@pytest.mark.parametrize("restarts, waiting", [(3, "CrashLoopBackOff"), (0, "CrashLoopBackOff"), (1, None)])
def test_a_crash_loop_is_fatal_and_names_the_exit(restarts, waiting):
    pod = crash_looping_pod(restarts, waiting)
    if restarts == 0:
        pod["status"]["containerStatuses"][0]["lastState"] = {}
    text = crash_loop(pod)
    assert text.startswith("container inference-server is crash-looping (%d restart" % restarts)
    fatal, waiting_lines = pod_blockers(pod)
    assert fatal == ["pod %s %s" % (pod["metadata"]["name"], text)] and waiting_lines == []
    if restarts:
        assert text.endswith("last exit: Error, exit code 1: INFO starting vllm: error: unrecognized arguments: "
                             "--max-modle-len 2048")


def test_a_ready_or_merely_starting_pod_is_not_crash_looping():
    assert crash_loop(fixture("pod-ready")) is None
    pulling = fixture("pod-ready")
    pulling["status"]["containerStatuses"][0].update(ready=False, state={"waiting": {
        "reason": "ImagePullBackOff", "message": "Back-off pulling image \"vllm/vllm-openai:nope\""}})
    assert crash_loop(pulling) is None
    assert pod_blockers(pulling)[1] == ["pod %s container inference-server: ImagePullBackOff: Back-off pulling image "
                                        "\"vllm/vllm-openai:nope\"" % pulling["metadata"]["name"]]


def test_a_deployment_explained_by_a_crash_loop_is_fatal_and_ignores_pods_going_away():
    d = fixture("deployment-ready")
    d["status"].update(availableReplicas=0, unavailableReplicas=1)
    old = copy.deepcopy(crash_looping_pod())
    old["metadata"].update(name="old", deletionTimestamp="2026-12-04T12:00:00Z")
    assert explain(d, [old], [], "model gemma-3-1b")[0] == []
    fatal, _lines = explain(d, [crash_looping_pod()], [], "model gemma-3-1b")
    assert fatal and fatal[0].startswith("model gemma-3-1b: pod vllm-gemma-3-1b-")


def test_crd_established():
    crd = {"kind": "CustomResourceDefinition", "metadata": {"name": "inferencepools.inference.networking.k8s.io"},
           "status": {"conditions": [{"type": "NamesAccepted", "status": "True"},
                                     {"type": "Established", "status": "True"}]}}
    assert crd_blockers(crd) == []
    crd["status"]["conditions"][1].update(status="False", reason="Installing", message="the initial names have not been accepted")
    assert crd_blockers(crd) == ["CustomResourceDefinition inferencepools.inference.networking.k8s.io: Established=False "
                                 "the initial names have not been accepted"]
    assert "not Established yet" in crd_blockers({"kind": "CustomResourceDefinition", "metadata": {"name": "x"}})[0]


def test_apiservice_available():
    """The custom metrics adapter's APIService, as kube-apiserver's aggregator reports it while the adapter starts."""
    svc = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
           "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
           "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints",
                                      "message": "endpoints for service/custom-metrics-stackdriver-adapter in "
                                                 "\"custom-metrics\" have no addresses with port name \"https\""}]}}
    assert has_predicate(svc)
    assert blockers(svc) == apiservice_blockers(svc) == [
        "APIService v1beta1.external.metrics.k8s.io: Available=False endpoints for "
        "service/custom-metrics-stackdriver-adapter in \"custom-metrics\" have no addresses with port name \"https\""]
    svc["status"]["conditions"][0].update(status="True", reason="Passed", message="all checks passed")
    assert blockers(svc) == []
    assert blockers(dict(svc, status={})) == ["APIService v1beta1.external.metrics.k8s.io: not Available yet"]


def test_selector_text():
    assert selector_text(fixture("deployment-ready")) == "app=vllm-gemma-3-1b"
    d = {"spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["x", "y"]}, {"key": "gone", "operator": "DoesNotExist"}]}}}
    assert selector_text(d) == "a=1,b=2,tier in (x,y),!gone"
