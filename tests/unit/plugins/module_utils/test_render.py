# -*- coding: utf-8 -*-
# Unit tests of render mode's pure parts: a step's objects in apply order with their ApplySet (the engine's
# rendered_step), a chart's objects as helm install creates them, the numbering of the files, and the Google Cloud
# modules writing their requests without one request sent. The round trip runs in
# tests/integration/test_render.py.
from __future__ import annotations

import json
import os

import pytest
import yaml

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _render
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._k8s_converge import (
    APPLYSET_ID,
    APPLYSET_KINDS,
    APPLYSET_PART_OF,
    ConvergeError,
    applyset_id,
    rendered_step,
)
from ansible_collections.gke_ai.inference_gateway.plugins.modules import compute_subnetwork, gke_node_pool, \
    project_iam_member
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules import test_gcp_support
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules.test_gcp_support import (
    assert_valid_request,
    run_module,
)

google = test_gcp_support.google  # the fixture: a scripted Google; an empty script fails on any request


def obj(api_version, kind, name, namespace=None, **rest):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return dict({"apiVersion": api_version, "kind": kind, "metadata": meta}, **rest)


def test_rendered_step_orders_namespace_parent_then_objects_and_labels_members():
    objects = [obj("apps/v1", "Deployment", "vllm-a"), obj("v1", "Service", "vllm-a"),
               obj("v1", "Namespace", "gemma"), obj("rbac.authorization.k8s.io/v1", "ClusterRole", "reader")]
    out = rendered_step(objects, "gemma", "infgw-vllm-model")
    assert [(o["kind"], o["metadata"]["name"]) for o in out] == [
        ("Namespace", "gemma"), ("ConfigMap", "infgw-vllm-model"), ("Deployment", "vllm-a"), ("Service", "vllm-a"),
        ("ClusterRole", "reader")]
    set_id = applyset_id("infgw-vllm-model", "gemma")
    parent = out[1]
    assert parent["metadata"]["labels"] == {APPLYSET_ID: set_id}
    assert parent["metadata"]["annotations"][APPLYSET_KINDS] == "ClusterRole.rbac.authorization.k8s.io,Deployment.apps,Service"
    assert "labels" not in out[0]["metadata"]  # the namespace holding the parent is never a member
    assert all(o["metadata"]["labels"][APPLYSET_PART_OF] == set_id for o in out[2:])
    assert out[2]["metadata"]["namespace"] == "gemma" and "namespace" not in out[4]["metadata"]
    assert "labels" not in objects[0]["metadata"]  # the caller's objects are not changed


def test_rendered_step_without_applyset_or_objects():
    crd = obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "x.example.com", namespace="stray")
    assert rendered_step([crd]) == [obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "x.example.com")]
    assert rendered_step([], "gemma", "infgw-bbr") == []  # nothing to apply: no parent either
    with pytest.raises(ConvergeError, match="Service vllm-a.*needs metadata.namespace"):
        rendered_step([obj("v1", "Service", "vllm-a")])


def test_chart_objects_are_what_helm_install_creates():
    manifest = """---
# Source: chart/templates/empty.yaml
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: epp
---
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: gemma-epp, labels: {app: epp}}
"""
    out = _render.chart_objects(manifest, "vllm-a", "gemma")
    assert [o["kind"] for o in out] == ["ServiceAccount", "ClusterRole"]
    assert out[0]["metadata"]["namespace"] == "gemma" and "namespace" not in out[1]["metadata"]
    for o in out:
        assert o["metadata"]["annotations"] == {"meta.helm.sh/release-name": "vllm-a",
                                                "meta.helm.sh/release-namespace": "gemma"}
        assert o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert out[1]["metadata"]["labels"]["app"] == "epp"


def test_files_are_numbered_in_run_order_across_the_gcp_directory(tmp_path):
    first = _render.numbered_path(str(tmp_path), "GKE Node Pool/gpupool", ".json", subdir="gcp")
    _render.write_text(first, "{}")
    second = _render.numbered_path(str(tmp_path), "infgw-vllm-model", ".yaml")
    _render.write_text(second, _render.dump_yaml([{"b": 1, "a": "x"}]), private=True)
    assert os.path.basename(first) == "001-gke-node-pool-gpupool.json"
    assert os.path.basename(second) == "002-infgw-vllm-model.yaml"
    assert open(second).read() == "---\na: x\nb: 1\n"
    assert os.stat(second).st_mode & 0o777 == 0o600 and os.stat(first).st_mode & 0o777 == 0o644
    assert _render.next_number(str(tmp_path / "missing")) == 1
    assert _render.clean_query({"requestId": "r", "x": "1"}) == {"x": "1"} and _render.clean_query({"requestId": 1}) is None


def rendered_requests(path):
    with open(path) as f:
        return json.load(f)


def test_gcp_module_renders_its_create_without_a_request(google, capsys, tmp_path):
    # google's script is empty: any request fails the test; no credentials are set up either
    result = run_module(gke_node_pool, capsys, render_dir=str(tmp_path), project="p1", location="us-central1",
                        cluster="c1", name="gpupool", machine_type="g2-standard-8",
                        accelerator={"type": "nvidia-l4", "count": 1, "gpu_driver_version": "LATEST"},
                        autoscaling={"enabled": True, "total_min_node_count": 0, "total_max_node_count": 5},
                        auth_kind="serviceaccount")
    assert google.calls == []
    assert result["changed"] is False and result["actions"] == ["create"]
    assert result["rendered"] == str(tmp_path / "gcp" / "001-gke_node_pool-gpupool.json")
    rendered = rendered_requests(result["rendered"])
    (request,) = rendered["requests"]
    assert request["method"] == "POST"
    assert request["url"] == "https://container.googleapis.com/v1/projects/p1/locations/us-central1/clusters/c1/nodePools"
    assert_valid_request("container", "POST", request["url"].split(".googleapis.com/")[1], request["body"])
    assert request["body"]["nodePool"]["name"] == "gpupool"

    result = run_module(compute_subnetwork, capsys, render_dir=str(tmp_path), project="p1", region="us-central1",
                        network="default", name="proxy-only-subnet", ip_cidr_range="10.129.0.0/23",
                        purpose="REGIONAL_MANAGED_PROXY", role="ACTIVE", auth_kind="serviceaccount")
    assert os.path.basename(result["rendered"]) == "002-compute_subnetwork-proxy-only-subnet.json"
    (request,) = rendered_requests(result["rendered"])["requests"]
    assert request["query"] is None  # the random requestId is left out: a render is the same every time
    assert_valid_request("compute", "POST", request["url"].split(".googleapis.com/")[1], request["body"])
    assert google.calls == []


def test_iam_member_renders_the_binding_to_add(google, capsys, tmp_path):
    member = "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p1.svc.id.goog/subject/x"
    result = run_module(project_iam_member, capsys, render_dir=str(tmp_path), project="p1",
                        role="roles/monitoring.viewer", member=member, auth_kind="serviceaccount")
    rendered = rendered_requests(result["rendered"])
    assert "add this binding" in rendered["note"]
    assert rendered["requests"][0]["body"]["policy"]["bindings"] == [
        {"role": "roles/monitoring.viewer", "members": [member]}]
    assert google.calls == []


def test_render_of_a_deletion_is_refused(google, capsys, tmp_path):
    result = run_module(compute_subnetwork, capsys, render_dir=str(tmp_path), project="p1", region="us-central1",
                        network="default", name="s", state="absent", auth_kind="serviceaccount")
    assert result["failed"] and "state=absent has nothing to render" in result["msg"]
    assert not (tmp_path / "gcp").exists()


def test_yaml_is_plain_and_stable():
    text = _render.dump_yaml([{"metadata": {"name": "a"}, "apiVersion": "v1"}])
    assert list(yaml.safe_load_all(text)) == [{"apiVersion": "v1", "metadata": {"name": "a"}}]
