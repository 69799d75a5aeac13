# -*- coding: utf-8 -*-
# Unit tests for the pure parts of plugins/lookup/k8s_apply_plan.py (the reads are covered by the integration
# tests against the local API server: tests/integration/test_site.py).
from __future__ import annotations

from ansible_collections.gke_ai.inference_gateway.plugins.lookup.k8s_apply_plan import identity, reference, slim


def test_slim_drops_ownership_and_secret_data_without_touching_the_input():
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "managedFields": [{}]},
              "data": {"k": "c2VjcmV0"}, "stringData": {"k": "secret"}, "type": "Opaque"}
    out = slim(secret)
    assert out == {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"}
    assert secret["data"] == {"k": "c2VjcmV0"} and "managedFields" in secret["metadata"]


def test_slim_keeps_a_live_crd_status_only():
    crd = {"kind": "CustomResourceDefinition", "metadata": {"name": "a.b"}, "spec": {"versions": []},
           "status": {"conditions": [{"type": "Established", "status": "True"}]}}
    assert "spec" not in slim(crd, live=True) and slim(crd, live=True)["status"] == crd["status"]
    assert slim(crd)["spec"] == {"versions": []}  # a configuration keeps its spec


def test_identity_ignores_the_version_and_reference_is_enough_to_delete_by():
    v1 = {"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool", "metadata": {"name": "p"}}
    v1alpha2 = dict(v1, apiVersion="inference.networking.x-k8s.io/v1alpha2")
    assert identity(v1) == ("inference.networking.k8s.io", "InferencePool", None, "p")
    assert identity(v1) != identity(v1alpha2)  # another group is another kind
    assert identity({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}, "n") == ("", "Service", "n", "s")
    live = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n", "uid": "u"},
            "spec": {"ports": []}}
    assert reference(live) == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n"}}


def test_identity_includes_the_namespace():
    """A Service of the same name in another namespace is another object: it is stale when not wanted."""
    here = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "a"}}
    there = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "b"}}
    assert identity(here) != identity(there)
