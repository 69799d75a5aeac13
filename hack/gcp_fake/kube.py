"""The local cluster side of node pools: kwok nodes made with hack/localcluster/nodes.py, pods and events."""

from __future__ import annotations

import datetime
import json
import logging
import secrets

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from .nodeshapes import nodes, shape_for
from .world import ZONES

LOG = logging.getLogger("gcp_fake.kube")
MANAGED_LABELS = "gcp-fake.local/labels"  # annotation: the config.labels keys the fake set on the node
MANAGED_TAINTS = "gcp-fake.local/taints"  # annotation: the config.taints keys the fake set on the node
EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
DRIVER_LABEL = "cloud.google.com/gke-gpu-driver-version"


def template(pool: dict):
    """(shape, extra labels, k8s taints, zones) of a NodePool's nodes."""
    cfg = pool.get("config") or {}
    zones = tuple(pool.get("locations") or ZONES)
    shape = shape_for(cfg.get("machineType", "e2-medium"), cfg.get("accelerators") or [], zones[0])
    labels = dict(cfg.get("labels") or {})
    if cfg.get("spot"):
        labels["cloud.google.com/gke-spot"] = "true"
    if cfg.get("preemptible"):
        labels["cloud.google.com/gke-preemptible"] = "true"
    labels["cloud.google.com/machine-family"] = shape.machine_type.split("-", 1)[0]
    accelerators = cfg.get("accelerators") or []
    driver = ((accelerators[0].get("gpuDriverInstallationConfig") or {}).get("gpuDriverVersion")
              if accelerators else None)
    if driver in ("LATEST", "DEFAULT"):
        labels[DRIVER_LABEL] = driver.lower()
    taints = [{"key": t["key"], "value": t.get("value", ""), "effect": EFFECTS.get(t.get("effect"), "NoSchedule")}
              for t in cfg.get("taints") or []]
    return shape, labels, taints, zones


def template_labels(pool: dict) -> dict:
    """The labels every node of the pool has (not hostname or zone, which differ per node)."""
    shape, labels, taints, zones = template(pool)
    manifest = nodes.node_manifest(pool["name"], 0, shape, zones, labels, taints)
    out = dict(manifest["metadata"]["labels"])
    for key in ("kubernetes.io/hostname", nodes.ZONE_LABEL, "topology.kubernetes.io/region"):
        out.pop(key, None)
    return out


class KubeNodes:
    def __init__(self, kubeconfig: str):
        self.core = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))

    # ------------------------------------------------------------------ nodes

    def resize(self, pool_name: str, count: int, pool: dict | None, victims=()) -> dict:
        if pool is None:
            result = nodes.resize_pool(self.core, pool_name, 0, nodes.SHAPES["e2-standard-4"])
        else:
            shape, labels, taints, zones = template(pool)
            result = nodes.resize_pool(self.core, pool_name, count, shape, zones, labels, taints, victims=victims)
            self.relabel(pool_name, labels, taints)
        if result["created"] or result["deleted"]:
            LOG.info("pool %s: %d nodes (created %s, deleted %s)", pool_name, count, result["created"],
                     result["deleted"])
        return result

    def relabel(self, pool_name: str, labels: dict, taints: list) -> None:
        """Labels and taints from the pool's config on every node, removing the ones the config no longer has."""
        for node in nodes.pool_nodes(self.core, pool_name):
            annotations = node.metadata.annotations or {}
            old_labels = set(json.loads(annotations.get(MANAGED_LABELS, "[]")))
            old_taints = set(json.loads(annotations.get(MANAGED_TAINTS, "[]")))
            want_taint_keys = {t["key"] for t in taints}
            current = [t.to_dict() for t in node.spec.taints or []]
            kept = [{k: v for k, v in t.items() if k in ("key", "value", "effect") and v is not None}
                    for t in current if t["key"] not in old_taints and t["key"] not in want_taint_keys]
            new_taints = kept + list(taints)
            patch_labels = {k: None for k in old_labels - set(labels)}
            patch_labels.update(labels)
            same_labels = all((node.metadata.labels or {}).get(k) == v for k, v in patch_labels.items())
            same_taints = sorted(json.dumps(t, sort_keys=True) for t in new_taints) == sorted(
                json.dumps({k: v for k, v in t.items() if k in ("key", "value", "effect") and v is not None},
                           sort_keys=True) for t in current)
            if same_labels and same_taints and old_labels == set(labels) and old_taints == want_taint_keys:
                continue
            self.core.patch_node(node.metadata.name, {
                "metadata": {"labels": patch_labels, "annotations": {
                    MANAGED_LABELS: json.dumps(sorted(labels)), MANAGED_TAINTS: json.dumps(sorted(want_taint_keys))}},
                "spec": {"taints": new_taints}})

    def pools_present(self) -> dict:
        """{pool name: [node names]} of the nodes the local environment manages."""
        out: dict = {}
        for node in self.core.list_node(label_selector=f"{nodes.MANAGED_BY_LABEL}={nodes.MANAGED_BY}").items:
            out.setdefault((node.metadata.labels or {}).get(nodes.POOL_LABEL, ""), []).append(node.metadata.name)
        return out

    # ------------------------------------------------------------------ autoscaler reads and writes

    def pods(self) -> list:
        return self.core.list_pod_for_all_namespaces().items

    def nodes(self) -> list:
        return self.core.list_node(label_selector=f"{nodes.MANAGED_BY_LABEL}={nodes.MANAGED_BY}").items

    def event(self, pod, reason: str, message: str) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        body = {
            "metadata": {"name": f"{pod.metadata.name}.{secrets.token_hex(8)}", "namespace": pod.metadata.namespace},
            "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": pod.metadata.namespace,
                               "name": pod.metadata.name, "uid": pod.metadata.uid,
                               "resourceVersion": pod.metadata.resource_version},
            "reason": reason, "message": message, "type": "Normal", "count": 1,
            "source": {"component": "cluster-autoscaler"},
            "reportingComponent": "cluster-autoscaler", "reportingInstance": "gcp-fake",
            "firstTimestamp": now, "lastTimestamp": now,
        }
        try:
            self.core.create_namespaced_event(pod.metadata.namespace, body)
        except ApiException as exc:
            if exc.status != 404:  # the namespace went away meanwhile
                raise
