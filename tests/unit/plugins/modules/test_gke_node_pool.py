# -*- coding: utf-8 -*-
# Unit tests for plugins/modules/gke_node_pool.py: request bodies (valid per the container v1
# discovery document), normalisation of API answers, the in-place / recreate plan, and whole
# module runs against a scripted Google.
from __future__ import annotations

import copy

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _gke_node_pool as gnp
from ansible_collections.gke_ai.inference_gateway.plugins.modules import gke_node_pool
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules import test_gcp_support
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules.test_gcp_support import (
    assert_valid_body,
    merged,
    container_op,
    run_module,
)

google = test_gcp_support.google  # the fixture: a scripted Google every GcpModule talks to

BASE = dict(project="local-project", location="us-central1", cluster="local-cluster", name="gpupool")
WALKTHROUGH = merged(BASE, machine_type="g2-standard-8",
                     accelerator={"type": "nvidia-l4", "count": 1, "gpu_driver_version": "LATEST"},
                     node_locations=["us-central1-a", "us-central1-b", "us-central1-c"],
                     autoscaling={"enabled": True, "total_min_node_count": 0, "total_max_node_count": 5},
                     initial_node_count=0)
POOL_RE = r"clusters/local-cluster/nodePools/gpupool$"
OPS_RE = r"locations/us-central1/operations/"


def params(**kw):
    """Module params as AnsibleModule would hand them over (every option present)."""
    out = dict(state="present", machine_type=None, accelerator=None, node_locations=None, autoscaling=None,
               initial_node_count=None, node_count=None, spot=None, labels=None, taints=None, service_account=None,
               oauth_scopes=None, disk_size_gb=None, disk_type=None, recreate=False)
    out.update(BASE)
    out.update(kw)
    if out["accelerator"] is not None:
        out["accelerator"] = dict({"count": 1, "gpu_driver_version": None}, **out["accelerator"])
    if out["autoscaling"] is not None:
        auto = {"enabled": True, "min_node_count": None, "max_node_count": None, "total_min_node_count": None,
                "total_max_node_count": None, "location_policy": None}
        auto.update(out["autoscaling"])
        out["autoscaling"] = auto
    return out


def api_pool(**overrides):
    """The walkthrough's pool the way GKE returns it (int64 as strings, zero values left out)."""
    pool = {
        "name": "gpupool",
        "config": {"machineType": "g2-standard-8", "diskSizeGb": 100, "diskType": "pd-balanced",
                   "imageType": "COS_CONTAINERD", "serviceAccount": "default",
                   "accelerators": [{"acceleratorCount": "1", "acceleratorType": "nvidia-l4",
                                     "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}],
                   "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]},
        "locations": ["us-central1-c", "us-central1-a", "us-central1-b"],
        "autoscaling": {"enabled": True, "totalMaxNodeCount": 5, "locationPolicy": "ANY"},
        "status": "RUNNING",
        "version": "1.33.5-gke.1080000",
        "etag": "abc",
    }
    for key, value in overrides.items():
        if key == "config":
            pool["config"].update(value)
        else:
            pool[key] = value
    return pool


# --------------------------------------------------------------------------------------
# bodies


def test_walkthrough_create_body_is_the_gcloud_command_and_valid():
    body = gnp.create_body("gpupool", params(**{k: v for k, v in WALKTHROUGH.items() if k not in BASE}))
    assert body == {"nodePool": {
        "name": "gpupool",
        "config": {"machineType": "g2-standard-8",
                   "accelerators": [{"acceleratorType": "nvidia-l4", "acceleratorCount": "1",
                                     "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}],
                   "oauthScopes": list(gnp.GCLOUD_DEFAULT_SCOPES)},
        "locations": ["us-central1-a", "us-central1-b", "us-central1-c"],
        "autoscaling": {"enabled": True, "totalMinNodeCount": 0, "totalMaxNodeCount": 5},
        "initialNodeCount": 0,
    }}
    assert_valid_body("container", "CreateNodePoolRequest", body)


def test_default_scopes_are_gclouds_six():
    """What `gcloud container node-pools create` sends without --scopes (gke-default), sorted like gcloud's."""
    assert list(gnp.GCLOUD_DEFAULT_SCOPES) == [
        "https://www.googleapis.com/auth/devstorage.read_only", "https://www.googleapis.com/auth/logging.write",
        "https://www.googleapis.com/auth/monitoring", "https://www.googleapis.com/auth/service.management.readonly",
        "https://www.googleapis.com/auth/servicecontrol", "https://www.googleapis.com/auth/trace.append"]


@pytest.mark.parametrize("given, expanded", [
    (["cloud-platform"], ["https://www.googleapis.com/auth/cloud-platform"]),
    (["storage-ro", "https://www.googleapis.com/auth/devstorage.read_only", " logging.write "],
     ["https://www.googleapis.com/auth/devstorage.read_only", "https://www.googleapis.com/auth/logging.write"]),
    (["gke-default"], sorted(gnp.GCLOUD_DEFAULT_SCOPES)),
])
def test_scopes_take_full_urls_and_gcloud_aliases(given, expanded):
    assert gnp.expand_scopes(given) == expanded
    body = gnp.create_body("p", params(oauth_scopes=given))
    assert body["nodePool"]["config"]["oauthScopes"] == expanded
    assert_valid_body("container", "CreateNodePoolRequest", body)


def test_scopes_compared_as_a_set_only_when_set_and_need_a_new_pool():
    scopes = ["https://www.googleapis.com/auth/logging.write", "https://www.googleapis.com/auth/monitoring"]
    have = gnp.current_state(api_pool(config={"oauthScopes": scopes}))
    assert gnp.plan_changes(have, gnp.desired_state(params())) == ([], [])
    assert gnp.plan_changes(have, gnp.desired_state(params(oauth_scopes=["monitoring", "logging.write"]))) == ([], [])
    assert gnp.plan_changes(have, gnp.desired_state(params(oauth_scopes=["cloud-platform"]))) == (["oauth_scopes"], [])


def test_driver_version_update_body_is_what_gcloud_sends():
    """`gcloud container node-pools update --accelerator type=nvidia-l4,count=1,gpu-driver-version=latest` sends
    nodePools.update with the accelerator (the name field aside)."""
    desired = gnp.desired_state(params(accelerator={"type": "nvidia-l4", "gpu_driver_version": "LATEST"}))
    reqs = gnp.update_requests("v1/p", desired, ["accelerator"])
    assert reqs == [("update_accelerator", "PUT", "v1/p", {"accelerators": [
        {"acceleratorType": "nvidia-l4", "acceleratorCount": "1",
         "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]})]
    assert_valid_body("container", "UpdateNodePoolRequest", reqs[0][3])


def test_create_body_with_every_field_is_valid():
    body = gnp.create_body("tools", params(
        machine_type="e2-standard-4", spot=True, service_account="sa@p.iam.gserviceaccount.com", disk_size_gb=50,
        disk_type="pd-ssd", labels={"workload": "tools", "tier": 1},
        taints=[{"key": "dedicated", "value": "tools", "effect": "NO_SCHEDULE"}],
        autoscaling={"min_node_count": 1, "max_node_count": 3, "location_policy": "BALANCED"}))
    pool = body["nodePool"]
    assert pool["config"]["labels"] == {"workload": "tools", "tier": "1"}
    assert pool["autoscaling"] == {"enabled": True, "minNodeCount": 1, "maxNodeCount": 3, "locationPolicy": "BALANCED"}
    assert pool["initialNodeCount"] == 0
    assert_valid_body("container", "CreateNodePoolRequest", body)


@pytest.mark.parametrize("kw, initial", [
    ({}, 1), ({"node_count": 2}, 2), ({"initial_node_count": 4, "node_count": 2}, 4),
    ({"autoscaling": {"max_node_count": 2}}, 0),
])
def test_initial_node_count_defaults(kw, initial):
    assert gnp.create_body("p", params(**kw))["nodePool"]["initialNodeCount"] == initial


def test_update_requests_are_valid_and_ordered():
    desired = gnp.desired_state(params(node_locations=["us-central1-b", "us-central1-a"], labels={"a": "b"},
                                       taints=[{"key": "k", "value": "", "effect": "NO_EXECUTE"}],
                                       autoscaling={"enabled": False}))
    path = gnp.pool_path("p", "l", "c", "n")
    reqs = gnp.update_requests(path, dict(desired, node_count=2),
                               ["node_locations", "labels", "taints", "autoscaling", "node_count"])
    assert [r[0] for r in reqs] == ["update_locations", "update_labels", "update_taints", "set_autoscaling",
                                    "set_size"]
    refs = {"PUT": "UpdateNodePoolRequest"}
    for action, method, rpath, body in reqs:
        ref = refs.get(method) or ("SetNodePoolAutoscalingRequest" if rpath.endswith(":setAutoscaling")
                                   else "SetNodePoolSizeRequest")
        assert_valid_body("container", ref, body)
    assert reqs[0][3] == {"locations": ["us-central1-a", "us-central1-b"]}
    assert reqs[3][3] == {"autoscaling": {"enabled": False}}
    assert reqs[4][2].endswith("/nodePools/n:setSize") and reqs[4][3] == {"nodeCount": 2}


# --------------------------------------------------------------------------------------
# normalisation and plans


def test_current_state_of_the_walkthrough_pool():
    have = gnp.current_state(api_pool())
    assert have["accelerator"] == {"type": "nvidia-l4", "count": 1, "gpu_driver_version": "LATEST"}
    assert have["autoscaling"] == {"enabled": True, "total_min_node_count": 0, "total_max_node_count": 5,
                                   "location_policy": "ANY"}
    assert have["node_locations"] == ["us-central1-a", "us-central1-b", "us-central1-c"]
    assert have["spot"] is False and have["node_count"] == 0


def test_walkthrough_against_its_own_pool_is_a_no_op():
    desired = gnp.desired_state(params(**{k: v for k, v in WALKTHROUGH.items() if k not in BASE}))
    assert gnp.plan_changes(gnp.current_state(api_pool()), desired) == ([], [])


def test_gpu_taint_added_by_gke_is_ignored_unless_listed():
    have = gnp.current_state(api_pool())
    assert gnp.plan_changes(have, gnp.desired_state(params(taints=[]))) == ([], [])
    listed = gnp.desired_state(params(taints=[{"key": "other", "value": "x", "effect": "NO_SCHEDULE"}]))
    assert gnp.plan_changes(have, listed) == ([], ["taints"])


def test_driver_version_and_location_policy_compared_only_when_set():
    have = gnp.current_state(api_pool())
    assert gnp.plan_changes(have, gnp.desired_state(params(accelerator={"type": "nvidia-l4"}))) == ([], [])
    assert gnp.plan_changes(have, gnp.desired_state(params(
        accelerator={"type": "nvidia-l4", "gpu_driver_version": "DEFAULT"}))) == ([], ["accelerator"])
    without_driver = gnp.current_state(api_pool(config={"accelerators": [{"acceleratorCount": "1",
                                                                          "acceleratorType": "nvidia-l4"}]}))
    assert gnp.plan_changes(without_driver, gnp.desired_state(params(
        accelerator={"type": "nvidia-l4", "gpu_driver_version": "LATEST"}))) == ([], ["accelerator"])
    assert gnp.plan_changes(without_driver, gnp.desired_state(params(
        accelerator={"type": "nvidia-tesla-t4", "gpu_driver_version": "LATEST"}))) == (["accelerator"], [])
    assert gnp.plan_changes(have, gnp.desired_state(params(
        autoscaling={"total_max_node_count": 5, "location_policy": "BALANCED"}))) == ([], ["autoscaling"])


@pytest.mark.parametrize("kw, recreate, in_place", [
    ({"machine_type": "g2-standard-16"}, ["machine_type"], []),
    ({"accelerator": {"type": "nvidia-l4", "count": 2}}, ["accelerator"], []),
    ({"disk_size_gb": 200, "disk_type": "pd-ssd"}, ["disk_size_gb", "disk_type"], []),
    ({"spot": True}, ["spot"], []),
    ({"service_account": "sa@p.iam.gserviceaccount.com"}, ["service_account"], []),
    ({"autoscaling": {"total_max_node_count": 8}}, [], ["autoscaling"]),
    ({"autoscaling": {"min_node_count": 0, "max_node_count": 2}}, [], ["autoscaling"]),
    ({"autoscaling": {"enabled": False}, "node_count": 1}, [], ["autoscaling", "node_count"]),
    ({"labels": {"a": "b"}, "node_locations": ["us-central1-a"]}, [], ["node_locations", "labels"]),
    ({"machine_type": "n1-standard-4", "labels": {"a": "b"}}, ["machine_type"], ["labels"]),
])
def test_plan_separates_recreate_from_in_place(kw, recreate, in_place):
    assert gnp.plan_changes(gnp.current_state(api_pool()), gnp.desired_state(params(**kw))) == (recreate, in_place)


def test_disabled_autoscaling_against_disabled_is_a_no_op():
    have = gnp.current_state(api_pool(autoscaling={}))
    assert gnp.plan_changes(have, gnp.desired_state(params(autoscaling={"enabled": False}))) == ([], [])


def test_recreate_message_names_fields_with_values():
    have = gnp.current_state(api_pool())
    desired = gnp.desired_state(params(machine_type="g2-standard-16", spot=True))
    msg = gnp.recreate_message("gpupool", ["machine_type", "spot"], have, desired)
    assert msg.startswith("node pool gpupool: machine_type (is g2-standard-8, wanted g2-standard-16); spot (is False, "
                          "wanted True) cannot change on an existing node pool")
    assert "recreate: true" in msg


@pytest.mark.parametrize("kw, problem", [
    ({"autoscaling": {"enabled": True}}, "needs max_node_count (per zone) or total_max_node_count"),
    ({"autoscaling": {"min_node_count": 1}}, "max_node_count is required"),
    ({"autoscaling": {"total_min_node_count": 3, "total_max_node_count": 2}}, "total_max_node_count must be >= 1"),
    ({"autoscaling": {"max_node_count": 2}, "node_count": 1}, "node_count cannot be combined"),
    ({"node_count": -1}, "node_count must be >= 0"),
    ({"accelerator": {"type": "nvidia-l4", "count": 0}}, "accelerator.count must be >= 1"),
    ({"node_locations": []}, "node_locations must not be empty"),
])
def test_validation(kw, problem):
    assert any(problem in p for p in gnp.validate_params(params(**kw)))


def test_instance_group_manager_path():
    url = ("https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/instanceGroupManagers/"
           "gke-c-gpupool-grp")
    assert gnp.instance_group_manager_path(url) == \
        "compute/v1/projects/p/zones/us-central1-a/instanceGroupManagers/gke-c-gpupool-grp"
    assert gnp.instance_group_manager_path(url.replace("instanceGroupManagers", "instanceGroups")) == \
        "compute/v1/projects/p/zones/us-central1-a/instanceGroupManagers/gke-c-gpupool-grp"
    assert gnp.instance_group_manager_path("nonsense") is None


# --------------------------------------------------------------------------------------
# whole module runs


def test_create_waits_for_the_operation_and_returns_the_pool(google, capsys):
    google.add("GET", POOL_RE, (404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}))
    google.add("POST", r"clusters/local-cluster/nodePools$", container_op("op-create", "RUNNING"))
    google.add("GET", OPS_RE + "op-create$", container_op("op-create", "DONE"))
    google.add("GET", POOL_RE, api_pool())
    result = run_module(gke_node_pool, capsys, diff=True, **WALKTHROUGH)
    assert result["changed"] is True and result["actions"] == ["create"]
    assert result["operations"] == ["op-create"]
    assert result["node_pool"]["name"] == "gpupool"
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["autoscaling"] == {"enabled": True, "total_min_node_count": 0,
                                                      "total_max_node_count": 5}
    create = google.calls[1]
    assert create.body["nodePool"]["config"]["accelerators"][0]["gpuDriverInstallationConfig"] == \
        {"gpuDriverVersion": "LATEST"}
    assert result["api_log"][-1]["event"] == "operation"


def test_rerun_is_a_no_op(google, capsys):
    google.add("GET", POOL_RE, api_pool())
    result = run_module(gke_node_pool, capsys, **WALKTHROUGH)
    assert result["changed"] is False and result["actions"] == [] and len(google.calls) == 1


def test_check_mode_reports_in_place_changes_and_calls_nothing(google, capsys):
    google.add("GET", POOL_RE, api_pool())
    wanted = merged(WALKTHROUGH, autoscaling={"total_max_node_count": 8}, labels={"gpu": "l4"})
    result = run_module(gke_node_pool, capsys, check_mode=True, diff=True, **wanted)
    assert result["changed"] is True
    assert result["actions"] == ["update_labels", "set_autoscaling"]
    assert result["diff"]["before"]["labels"] == {} and result["diff"]["after"]["labels"] == {"gpu": "l4"}
    assert result["diff"]["before"]["autoscaling"]["total_max_node_count"] == 5
    assert [c.method for c in google.calls] == ["GET"]


def test_in_place_updates_run_one_after_another(google, capsys):
    google.add("GET", POOL_RE, api_pool())
    google.add("PUT", POOL_RE, container_op("op-labels", "RUNNING"))
    google.add("GET", OPS_RE + "op-labels$", container_op("op-labels", "DONE"))
    google.add("POST", POOL_RE[:-1] + ":setAutoscaling$", container_op("op-auto", "DONE"))
    google.add("GET", POOL_RE, api_pool(autoscaling={"enabled": True, "totalMaxNodeCount": 8}))
    args = merged(WALKTHROUGH, autoscaling={"total_max_node_count": 8}, labels={"gpu": "l4"})
    result = run_module(gke_node_pool, capsys, **args)
    assert result["changed"] is True and result["actions"] == ["update_labels", "set_autoscaling"]
    assert result["changed_fields"] == ["autoscaling", "labels"]
    assert google.calls[1].body == {"labels": {"labels": {"gpu": "l4"}}}
    assert google.calls[3].body == {"autoscaling": {"enabled": True, "totalMinNodeCount": 0, "totalMaxNodeCount": 8}}


def test_gpu_driver_added_in_place(google, capsys):
    """A pool made without a driver version (gcloud's --accelerator type=nvidia-l4,count=1) gets LATEST in place:
    one nodePools.update, no delete, no create."""
    google.add("GET", POOL_RE, api_pool(config={"accelerators": [{"acceleratorCount": "1",
                                                                  "acceleratorType": "nvidia-l4"}]}))
    google.add("PUT", POOL_RE, container_op("op-driver", "RUNNING"))
    google.add("GET", OPS_RE + "op-driver$", container_op("op-driver", "DONE"))
    google.add("GET", POOL_RE, api_pool())
    result = run_module(gke_node_pool, capsys, diff=True, **WALKTHROUGH)
    assert result["changed"] is True and result["actions"] == ["update_accelerator"]
    assert result["changed_fields"] == ["accelerator"]
    assert [c.method for c in google.calls] == ["GET", "PUT", "GET", "GET"]
    assert google.calls[1].body == {"accelerators": [{"acceleratorType": "nvidia-l4", "acceleratorCount": "1",
                                                      "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]}
    assert result["diff"]["before"]["accelerator"] == {"type": "nvidia-l4", "count": 1}
    assert result["diff"]["after"]["accelerator"]["gpu_driver_version"] == "LATEST"


def test_recreate_required_fails_without_changing_anything(google, capsys):
    google.add("GET", POOL_RE, api_pool())
    args = merged(WALKTHROUGH, machine_type="g2-standard-16")
    result = run_module(gke_node_pool, capsys, **args)
    assert result["failed"] is True
    assert "machine_type (is g2-standard-8, wanted g2-standard-16)" in result["msg"]
    assert result["error"]["kind"] == "invalid"
    assert len(google.calls) == 1


def test_recreate_true_deletes_then_creates(google, capsys):
    google.add("GET", POOL_RE, api_pool())
    google.add("DELETE", POOL_RE, container_op("op-del", "DONE"))
    google.add("POST", r"nodePools$", container_op("op-new", "DONE"))
    google.add("GET", POOL_RE, api_pool(config={"machineType": "g2-standard-16"}))
    args = merged(WALKTHROUGH, machine_type="g2-standard-16", recreate=True)
    result = run_module(gke_node_pool, capsys, **args)
    assert result["changed"] is True and result["actions"] == ["delete", "create"]
    assert google.calls[2].body["nodePool"]["config"]["machineType"] == "g2-standard-16"


def test_operation_error_is_the_task_error(google, capsys):
    google.add("GET", POOL_RE, (404, {"error": {"code": 404, "message": "not found"}}))
    google.add("POST", r"nodePools$", container_op("op-x", "RUNNING"))
    google.add("GET", OPS_RE + "op-x$", container_op("op-x", "DONE", error={
        "code": 8, "message": "Insufficient regional quota to satisfy request: resource \"NVIDIA_L4_GPUS\""}))
    result = run_module(gke_node_pool, capsys, **WALKTHROUGH)
    assert result["failed"] is True and result["error"]["kind"] == "operation"
    assert "NVIDIA_L4_GPUS" in result["msg"] and "op-x" in result["msg"]


def test_missing_cluster_is_named(google, capsys):
    google.add("GET", POOL_RE, (404, {"error": {"code": 404, "message": "Not found: cluster local-cluster"}}))
    google.add("POST", r"nodePools$", (404, {"error": {"code": 404, "status": "NOT_FOUND",
                                                       "message": "Not found: projects/local-project/locations/"
                                                                  "us-central1/clusters/local-cluster."}}))
    result = run_module(gke_node_pool, capsys, **WALKTHROUGH)
    assert result["msg"].startswith("create node pool gpupool failed: cluster "
                                    "projects/local-project/locations/us-central1/clusters/local-cluster not found")


def test_permission_denied_names_the_permission(google, capsys):
    google.add("GET", POOL_RE, (403, {"error": {
        "code": 403, "status": "PERMISSION_DENIED",
        "message": "Permission 'container.nodePools.get' denied on resource (or it may not exist).",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                     "metadata": {"permission": "container.nodePools.get"}}]}}))
    result = run_module(gke_node_pool, capsys, **WALKTHROUGH)
    assert "lacks the IAM permission 'container.nodePools.get'" in result["msg"]
    assert "deployer@local-project.iam.gserviceaccount.com" in result["msg"]
    assert result["error"]["permission"] == "container.nodePools.get"


def test_node_count_read_from_instance_groups_and_resized(google, capsys):
    urls = ["https://www.googleapis.com/compute/v1/projects/local-project/zones/us-central1-%s/"
            "instanceGroupManagers/gke-gpupool-%s-grp" % (z, z) for z in "ab"]
    google.add("GET", POOL_RE, api_pool(autoscaling={}, instanceGroupUrls=urls, initialNodeCount=3))
    google.add("GET", r"zones/us-central1-a/instanceGroupManagers/", {"targetSize": 1})
    google.add("GET", r"zones/us-central1-b/instanceGroupManagers/", {"targetSize": 1})
    google.add("POST", POOL_RE[:-1] + ":setSize$", container_op("op-size", "DONE"))
    google.add("GET", POOL_RE, api_pool(autoscaling={}))
    args = merged(BASE, node_count=2)
    result = run_module(gke_node_pool, capsys, diff=True, **args)
    assert result["actions"] == ["set_size"]
    assert result["diff"] == {"before": {"node_count": 1}, "after": {"node_count": 2},
                              "before_header": "node pool projects/local-project/locations/us-central1/clusters/"
                                               "local-cluster/nodePools/gpupool",
                              "after_header": "node pool projects/local-project/locations/us-central1/clusters/"
                                              "local-cluster/nodePools/gpupool"}


def test_busy_pool_is_waited_for_before_a_change(google, capsys):
    google.add("GET", POOL_RE, api_pool(status="PROVISIONING"))
    google.add("GET", POOL_RE, api_pool(status="RUNNING"))
    google.add("POST", POOL_RE[:-1] + ":setAutoscaling$", container_op("op-auto", "DONE"))
    google.add("GET", POOL_RE, api_pool())
    args = merged(BASE, autoscaling={"total_max_node_count": 6})
    result = run_module(gke_node_pool, capsys, **args)
    assert result["actions"] == ["set_autoscaling"] and google.sleeps == [0.5]


def test_absent(google, capsys):
    google.add("GET", POOL_RE, api_pool())
    google.add("DELETE", POOL_RE, container_op("op-del", "RUNNING"))
    google.add("GET", OPS_RE + "op-del$", container_op("op-del", "DONE"))
    result = run_module(gke_node_pool, capsys, state="absent", **BASE)
    assert result["changed"] is True and result["actions"] == ["delete"] and result["node_pool"] == {}
    google.add("GET", POOL_RE, (404, {"error": {"code": 404, "message": "gone"}}))
    result = run_module(gke_node_pool, capsys, state="absent", **BASE)
    assert result["changed"] is False


def test_no_wait_returns_after_the_last_change_is_accepted(google, capsys):
    google.add("GET", POOL_RE, (404, {"error": {"code": 404, "message": "not found"}}))
    google.add("POST", r"nodePools$", container_op("op-create", "RUNNING"))
    result = run_module(gke_node_pool, capsys, wait=False, **WALKTHROUGH)
    assert result["changed"] is True and result["operations"] == ["op-create"] and len(google.calls) == 2


def test_secrets_are_not_in_the_output(google, capsys):
    google.add("GET", POOL_RE, api_pool())
    result = run_module(gke_node_pool, capsys, auth_kind="accesstoken", access_token="ya29.very-secret", **WALKTHROUGH)
    assert "very-secret" not in result["_raw"]


def test_params_helper_matches_the_argument_spec():
    spec = gnp.argument_spec()
    assert set(params()) - set(BASE) == set(spec) - set(BASE)
    assert copy.deepcopy(spec["autoscaling"]["options"]).keys() == params(autoscaling={})["autoscaling"].keys()


def test_node_count_falls_back_to_initial_count_when_instance_groups_are_unreadable(google, capsys, monkeypatch):
    warnings = []
    monkeypatch.setattr(test_gcp_support._gcp.GcpModule, "warn", lambda self, msg: warnings.append(msg))
    urls = ["https://www.googleapis.com/compute/v1/projects/local-project/zones/us-central1-a/"
            "instanceGroupManagers/gke-gpupool-a-grp"]
    google.add("GET", POOL_RE, api_pool(autoscaling={}, instanceGroupUrls=urls, initialNodeCount=2))
    google.add("GET", r"instanceGroupManagers/", (501, {"error": {"code": 501, "message": "not implemented"}}))
    args = merged(BASE, node_count=2)
    result = run_module(gke_node_pool, capsys, **args)
    assert result["changed"] is False
    assert "comparing node_count with the pool's initialNodeCount" in warnings[0]


def test_a_busy_cluster_is_waited_out(google, capsys):
    busy = (400, {"error": {"code": 400, "status": "FAILED_PRECONDITION",
                            "message": "Cluster is running incompatible operation operation-other."}})
    google.add("GET", POOL_RE, api_pool())
    google.add("POST", POOL_RE[:-1] + ":setAutoscaling$", busy)
    google.add("POST", POOL_RE[:-1] + ":setAutoscaling$", busy)
    google.add("POST", POOL_RE[:-1] + ":setAutoscaling$", container_op("op-auto", "DONE"))
    google.add("GET", POOL_RE, api_pool())
    args = merged(BASE, autoscaling={"total_max_node_count": 6})
    result = run_module(gke_node_pool, capsys, **args)
    assert result["actions"] == ["set_autoscaling"] and google.sleeps == [0.5, 0.75]
    assert [e["event"] for e in result["api_log"]][:2] == ["cluster_busy", "cluster_busy"]


def test_a_busy_cluster_is_an_error_without_wait(google, capsys):
    google.add("GET", POOL_RE, api_pool())
    google.add("POST", POOL_RE[:-1] + ":setAutoscaling$", (400, {"error": {
        "code": 400, "status": "FAILED_PRECONDITION", "message": "Cluster is running incompatible operation op-1."}}))
    args = merged(BASE, autoscaling={"total_max_node_count": 6}, wait=False)
    result = run_module(gke_node_pool, capsys, **args)
    assert result["failed"] is True and "incompatible operation" in result["msg"]
