"""Unit tests of the GCP fake's cluster autoscaler decisions (pure functions, no cluster)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "hack"))

from gcp_fake.autoscaler import Group, Pending, misfit, plan_scale_down, plan_scale_up, quantity  # noqa: E402
from gcp_fake.kube import template, template_labels  # noqa: E402

GPU_LABELS = {"cloud.google.com/gke-nodepool": "gpupool", "cloud.google.com/gke-accelerator": "nvidia-l4",
              "node.kubernetes.io/instance-type": "g2-standard-8"}
GPU_ALLOC = {"cpu": 8.0, "memory": quantity("32Gi"), "pods": 110.0, "nvidia.com/gpu": 1.0}


def gpu_group(size=0, lo=0, hi=5, name="gpupool", taints=()):
    return Group(name, size, lo, hi, dict(GPU_LABELS, **{"cloud.google.com/gke-nodepool": name}), taints, GPU_ALLOC)


def gpu_pod(i=0, gpus=1, waited=5.0, selector=None, tolerations=()):
    return Pending(f"uid-{i}", f"ns/pod-{i}", {"nvidia.com/gpu": float(gpus), "cpu": 1.0, "pods": 1.0},
                   {"cloud.google.com/gke-accelerator": "nvidia-l4"} if selector is None else selector,
                   tolerations, waited)


def test_quantity():
    assert quantity("500m") == 0.5
    assert quantity("32Gi") == 32 * 2 ** 30
    assert quantity("1") == 1.0 and quantity(2) == 2.0
    assert quantity("1k") == 1000
    with pytest.raises(ValueError):
        quantity("lots")


def test_one_pending_gpu_pod_scales_up_by_one():
    sizes, events = plan_scale_up([gpu_group()], [gpu_pod()], delay=1.0)
    assert sizes == {"gpupool": 1}
    assert events == [("uid-0", "TriggeredScaleUp", "pod triggered scale-up: [{gpupool 0->1 (max: 5)}]")]


def test_pods_wait_for_the_delay():
    assert plan_scale_up([gpu_group()], [gpu_pod(waited=0.5)], delay=1.0) == ({}, [])


def test_one_gpu_per_node_packing_and_the_cap():
    pods = [gpu_pod(i, waited=10 - i) for i in range(4)]
    sizes, events = plan_scale_up([gpu_group(size=1, hi=3)], pods, delay=1.0)
    assert sizes == {"gpupool": 3}
    triggered = [e for e in events if e[1] == "TriggeredScaleUp"]
    capped = [e for e in events if e[1] == "NotTriggerScaleUp"]
    assert [e[0] for e in triggered] == ["uid-0", "uid-1"]
    assert triggered[0][2] == "pod triggered scale-up: [{gpupool 1->3 (max: 3)}]"
    assert [e[0] for e in capped] == ["uid-2", "uid-3"]
    assert capped[0][2] == "pod didn't trigger scale-up: 1 max node group size reached"


def test_cpu_pods_share_a_new_node():
    group = Group("cpu", 0, 0, 3, {"cloud.google.com/gke-nodepool": "cpu"}, (), {"cpu": 4.0, "memory": 1e10, "pods": 110.0})
    pods = [Pending(f"u{i}", f"ns/p{i}", {"cpu": 1.5, "pods": 1.0}, {}, (), 5.0) for i in range(3)]
    sizes, _events = plan_scale_up([group], pods, delay=1.0)
    assert sizes == {"cpu": 2}  # 1.5 + 1.5 on the first node, the third on a second


def test_reasons_when_no_group_helps():
    wrong_selector = gpu_pod(1, selector={"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"})
    two_gpus = gpu_pod(2, gpus=2)
    _plan, events = plan_scale_up([gpu_group()], [wrong_selector, two_gpus], delay=1.0)
    got = {uid: msg for uid, reason, msg in events if reason == "NotTriggerScaleUp"}
    assert got == {"uid-1": "pod didn't trigger scale-up: 1 node(s) didn't match Pod's node affinity/selector",
                   "uid-2": "pod didn't trigger scale-up: 1 Insufficient nvidia.com/gpu"}


def test_taints_need_tolerations():
    taint = {"key": "dedicated", "value": "ml", "effect": "NoSchedule"}
    group = gpu_group(taints=(taint,))
    assert misfit(gpu_pod(), group) == "node(s) had untolerated taint {dedicated: ml}"
    tolerating = gpu_pod(tolerations=({"key": "dedicated", "operator": "Equal", "value": "ml",
                                       "effect": "NoSchedule"},))
    assert misfit(tolerating, group) is None
    assert misfit(gpu_pod(tolerations=({"operator": "Exists"},)), group) is None


def test_first_group_by_name_with_room_wins():
    a, b = gpu_group(size=2, hi=2, name="a-pool"), gpu_group(name="b-pool")
    sizes, events = plan_scale_up([b, a], [gpu_pod(selector={})], delay=0)
    assert sizes == {"b-pool": 1}
    assert events == [("uid-0", "TriggeredScaleUp", "pod triggered scale-up: [{b-pool 0->1 (max: 5)}]")]


def test_scale_down_idle_nodes_to_min():
    group = gpu_group(size=4, lo=1)
    members = {"gpupool": [f"gke-local-gpupool-{i}" for i in range(4)]}
    idle_for = {"gke-local-gpupool-0": 100.0, "gke-local-gpupool-1": 100.0, "gke-local-gpupool-3": 100.0,
                "gke-local-gpupool-2": 5.0}
    assert plan_scale_down([group], idle_for, members, idle_seconds=60) == {
        "gpupool": ["gke-local-gpupool-3", "gke-local-gpupool-1", "gke-local-gpupool-0"]}
    assert plan_scale_down([gpu_group(size=4, lo=3)], idle_for, members, 60) == {"gpupool": ["gke-local-gpupool-3"]}
    assert not plan_scale_down([group], {}, members, 60)
    assert not plan_scale_down([gpu_group(size=1, lo=1)], idle_for, {"gpupool": ["gke-local-gpupool-0"]}, 60)


def test_node_template_of_a_pool():
    pool = {"name": "gpupool", "locations": ["us-central1-b"],
            "config": {"machineType": "g2-standard-8", "labels": {"team": "ml"}, "spot": True,
                       "taints": [{"key": "k", "value": "v", "effect": "NO_EXECUTE"}],
                       "accelerators": [{"acceleratorType": "nvidia-l4", "acceleratorCount": "1",
                                         "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]}}
    shape, labels, taints, zones = template(pool)
    assert shape.accelerator == "nvidia-l4" and shape.cpu == "8" and zones == ("us-central1-b",)
    assert labels["team"] == "ml" and labels["cloud.google.com/gke-spot"] == "true"
    assert labels["cloud.google.com/gke-gpu-driver-version"] == "latest"
    assert taints == [{"key": "k", "value": "v", "effect": "NoExecute"}]
    node_labels = template_labels(pool)
    assert node_labels["cloud.google.com/gke-nodepool"] == "gpupool"
    assert node_labels["cloud.google.com/gke-accelerator"] == "nvidia-l4"
    assert "kubernetes.io/hostname" not in node_labels
    n1 = {"name": "t4", "config": {"machineType": "n1-standard-8",
                                   "accelerators": [{"acceleratorType": "nvidia-tesla-t4", "acceleratorCount": "2"}]}}
    shape, _labels, _taints, _zone = template(n1)
    assert (shape.accelerator, shape.accelerator_count) == ("nvidia-tesla-t4", 2)
