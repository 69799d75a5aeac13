#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gke_node_pool
short_description: Create, update in place, recreate or delete a GKE node pool, including GPU node pools
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Manages one node pool of a GKE Standard cluster through the GKE API (C(container/v1)
    C(projects.locations.clusters.nodePools)), including accelerators with GKE's managed GPU driver
    installation (C(gpuDriverInstallationConfig)), which the google.cloud collection does not offer.
  - Only the fields the task sets are managed; a field left unset is neither compared nor changed.
  - B(In place) the module updates what the API can update without a new pool, each with its own API call
    and operation, in this order - node locations, node labels and taints (C(nodePools.update)),
    autoscaling (C(nodePools.setAutoscaling)) and the node count (C(nodePools.setSize)).
  - B(New pool needed.) O(machine_type), O(accelerator), O(disk_size_gb), O(disk_type), O(spot) and
    O(service_account) cannot change on an existing pool. A difference there makes the task fail with a
    message naming each field with its current and wanted value, unless O(recreate=true), in which case the
    pool is deleted (with its nodes and the Pods on them) and created again.
  - Check mode reports what would change, and with C(--diff) shows the managed fields before and after,
    without calling any method that changes something.
  - The equivalent of the walkthrough's C(gcloud container node-pools create gpupool --cluster=my-gke-cluster
    --machine-type=g2-standard-8 --accelerator type=nvidia-l4,count=1,gpu-driver-version=latest
    --location=us-central1 --node-locations=us-central1-a,us-central1-b,us-central1-c --enable-autoscaling
    --total-min-nodes=0 --total-max-nodes=5 --num-nodes=0) is the first example below.
options:
  location:
    description:
      - The cluster's location, a region (C(us-central1)) for a regional cluster or a zone for a zonal one.
    type: str
    required: true
  cluster:
    description:
      - Name of the GKE cluster.
    type: str
    required: true
  name:
    description:
      - Name of the node pool.
    type: str
    required: true
  state:
    description:
      - V(present) creates the pool or brings it to the requested settings; V(absent) deletes it.
    type: str
    choices: [ present, absent ]
    default: present
  machine_type:
    description:
      - Compute Engine machine type of the nodes, for example C(g2-standard-8) (one NVIDIA L4).
      - GKE's default (C(e2-medium)) when not set at creation. Cannot change in place, see O(recreate).
    type: str
  accelerator:
    description:
      - The GPUs attached to each node. Cannot change in place, see O(recreate).
    type: dict
    suboptions:
      type:
        description:
          - Accelerator type, for example C(nvidia-l4), C(nvidia-tesla-t4) or C(nvidia-h100-80gb).
        type: str
        required: true
      count:
        description:
          - Number of accelerators per node.
        type: int
        default: 1
      gpu_driver_version:
        description:
          - GKE's managed NVIDIA driver installation. V(LATEST) installs the newest driver for the GKE version,
            V(DEFAULT) the default one, V(INSTALLATION_DISABLED) none (install it yourself, for example with
            the NVIDIA GPU operator).
          - When not set, the pool gets GKE's default behaviour and the field is not compared.
        type: str
        choices: [ LATEST, DEFAULT, INSTALLATION_DISABLED ]
  node_locations:
    description:
      - Zones of the cluster's region to put nodes in, for example C([us-central1-a, us-central1-b]).
      - GKE's default (the cluster's node locations) when not set. Updated in place; the order does not matter.
    type: list
    elements: str
  autoscaling:
    description:
      - The cluster autoscaler settings of the pool. Updated in place (C(setAutoscaling)).
      - Limits are either per zone (O(autoscaling.min_node_count), O(autoscaling.max_node_count)) or for the
        whole pool (O(autoscaling.total_min_node_count), O(autoscaling.total_max_node_count)), not both.
    type: dict
    suboptions:
      enabled:
        description:
          - Whether the cluster autoscaler manages the pool's size. V(false) turns it off; the limits are
            then ignored.
        type: bool
        default: true
      min_node_count:
        description:
          - Minimum number of nodes per zone. Defaults to V(0) when O(autoscaling.max_node_count) is set.
        type: int
        aliases: [ min_nodes ]
      max_node_count:
        description:
          - Maximum number of nodes per zone.
        type: int
        aliases: [ max_nodes ]
      total_min_node_count:
        description:
          - Minimum number of nodes in the whole pool (gcloud's C(--total-min-nodes)).
            Defaults to V(0) when O(autoscaling.total_max_node_count) is set.
        type: int
        aliases: [ total_min_nodes ]
      total_max_node_count:
        description:
          - Maximum number of nodes in the whole pool (gcloud's C(--total-max-nodes)).
        type: int
        aliases: [ total_max_nodes ]
      location_policy:
        description:
          - How the autoscaler spreads nodes over zones, V(BALANCED) or V(ANY) (prefers zones with capacity;
            GKE's default for Spot VMs). Compared only when set.
        type: str
        choices: [ BALANCED, ANY ]
  initial_node_count:
    description:
      - Number of nodes per zone the pool is created with (gcloud's C(--num-nodes)). Used only at creation.
      - Defaults to O(node_count) when that is set, else V(0) with autoscaling and V(1) without.
    type: int
  node_count:
    description:
      - Number of nodes per zone to keep when the autoscaler is off. Resized in place (C(setSize)).
      - The current size is read from the pool's managed instance groups (C(targetSize)); when the API lists
        none, from the pool's C(initialNodeCount).
      - Cannot be combined with O(autoscaling.enabled=true), where the autoscaler owns the size.
    type: int
  spot:
    description:
      - Whether the nodes are Spot VMs. Cannot change in place, see O(recreate).
    type: bool
  labels:
    description:
      - Kubernetes labels of the pool's nodes (C(config.labels)), the complete set. Updated in place.
    type: dict
  taints:
    description:
      - Kubernetes taints of the pool's nodes, the complete list. Updated in place.
      - GKE taints accelerator nodes with C(nvidia.com/gpu) itself; such a taint is ignored in comparisons
        unless it is listed here.
    type: list
    elements: dict
    suboptions:
      key:
        description: Taint key.
        type: str
        required: true
      value:
        description: Taint value.
        type: str
        default: ""
      effect:
        description: Taint effect.
        type: str
        required: true
        choices: [ NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE ]
  service_account:
    description:
      - E-mail of the Google service account the nodes run as. The Compute Engine default service account
        when not set at creation. Cannot change in place, see O(recreate).
    type: str
  disk_size_gb:
    description:
      - Boot disk size of each node in GB. Cannot change in place, see O(recreate).
    type: int
  disk_type:
    description:
      - Boot disk type, for example C(pd-balanced), C(pd-ssd) or C(hyperdisk-balanced). Cannot change in
        place, see O(recreate).
    type: str
  recreate:
    description:
      - When a field that cannot change in place differs, delete the pool and create it again with the
        requested settings. Its nodes and the Pods on them go away in between.
      - With V(false) such a difference fails the task and changes nothing.
    type: bool
    default: false
attributes:
  idempotent:
    description: Run twice with the same options, the second run changes nothing and reports no change.
    support: full
extends_documentation_fragment:
  - gke_ai.inference_gateway.gcp
  - gke_ai.inference_gateway.gcp.wait
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.full_support
notes:
  - GKE runs one operation at a time on a node pool. Changes are applied one after another, each waited for;
    a pool that is still provisioning or reconciling from an earlier run is waited for before it is changed,
    and a change GKE refuses because the cluster is running another operation (C(Cluster is running
    incompatible operation)) is tried again until O(timeout) (both when O(wait=true)).
  - Permissions needed - C(container.nodePools.get), C(container.nodePools.create), C(container.nodePools.update),
    C(container.nodePools.delete), C(container.operations.get) (role C(roles/container.clusterAdmin) or
    C(roles/container.admin)); C(iam.serviceAccounts.actAs) on O(service_account); O(node_count) also reads the
    instance groups (C(compute.instanceGroupManagers.get)).
seealso:
  - name: GKE node pools API
    description: The REST resource the module manages.
    link: https://cloud.google.com/kubernetes-engine/docs/reference/rest/v1/projects.locations.clusters.nodePools
  - name: Run GPUs in GKE Standard node pools
    description: GPU node pools and driver installation.
    link: https://cloud.google.com/kubernetes-engine/docs/how-to/gpus
"""

EXAMPLES = r"""
- name: The walkthrough's GPU node pool (L4, latest driver, 0..5 nodes in total over three zones)
  gke_ai.inference_gateway.gke_node_pool:
    project: my-project
    location: us-central1
    cluster: my-gke-cluster
    name: gpupool
    machine_type: g2-standard-8
    accelerator:
      type: nvidia-l4
      count: 1
      gpu_driver_version: LATEST
    node_locations: [us-central1-a, us-central1-b, us-central1-c]
    autoscaling:
      enabled: true
      total_min_node_count: 0
      total_max_node_count: 5
    initial_node_count: 0

- name: Raise the autoscaling limit in place
  gke_ai.inference_gateway.gke_node_pool:
    project: my-project
    location: us-central1
    cluster: my-gke-cluster
    name: gpupool
    autoscaling:
      total_max_node_count: 10

- name: A fixed-size CPU pool with labels and a taint, credentials from a service account key
  gke_ai.inference_gateway.gke_node_pool:
    auth_kind: serviceaccount
    service_account_file: /etc/gcp/deployer.json
    project: my-project
    location: us-central1
    cluster: my-gke-cluster
    name: tools
    machine_type: e2-standard-4
    node_count: 1
    labels:
      workload: tools
    taints:
      - key: dedicated
        value: tools
        effect: NO_SCHEDULE

- name: Move to H100s; the pool must be recreated for a new machine type and accelerator
  gke_ai.inference_gateway.gke_node_pool:
    project: my-project
    location: us-central1
    cluster: my-gke-cluster
    name: gpupool
    machine_type: a3-highgpu-1g
    accelerator:
      type: nvidia-h100-80gb
      count: 1
      gpu_driver_version: LATEST
    recreate: true

- name: Delete the pool
  gke_ai.inference_gateway.gke_node_pool:
    project: my-project
    location: us-central1
    cluster: my-gke-cluster
    name: gpupool
    state: absent
"""

RETURN = r"""
node_pool:
  description:
    - The node pool as the GKE API returns it after the task (C(NodePool) resource); in check mode, as it was
      before. Empty when it does not exist.
  returned: always
  type: dict
  sample:
    name: gpupool
    status: RUNNING
    initialNodeCount: 0
    locations: [us-central1-a, us-central1-b, us-central1-c]
    config:
      machineType: g2-standard-8
      accelerators:
        - acceleratorType: nvidia-l4
          acceleratorCount: "1"
          gpuDriverInstallationConfig:
            gpuDriverVersion: LATEST
    autoscaling:
      enabled: true
      totalMaxNodeCount: 5
actions:
  description:
    - What the task did (or would do, in check mode), in order - C(create), C(delete), C(update_locations),
      C(update_labels), C(update_taints), C(set_autoscaling), C(set_size).
  returned: always
  type: list
  elements: str
  sample: [set_autoscaling]
changed_fields:
  description: The managed fields whose value differed (option names).
  returned: always
  type: list
  elements: str
  sample: [autoscaling]
operations:
  description: Names of the long-running operations the task started.
  returned: always
  type: list
  elements: str
  sample: [operation-1764158400000-abcdef]
api_log:
  description: Retries of API requests and operations waited for during the run (no request bodies).
  returned: always
  type: list
  elements: dict
  sample:
    - {event: retry, action: create node pool gpupool, reason: HTTP 429, delay: 0.7}
    - {event: operation, action: create node pool gpupool, operation: operation-1, polls: 12, seconds: 61.3}
"""

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    GcpError,
    GcpModule,
    diff_result,
    managed_view,
)

RECREATE_FIELDS = ("machine_type", "accelerator", "disk_size_gb", "disk_type", "spot", "service_account")
IN_PLACE_FIELDS = ("node_locations", "labels", "taints", "autoscaling", "node_count")
MANAGED_FIELDS = RECREATE_FIELDS + IN_PLACE_FIELDS
BUSY_STATUSES = ("PROVISIONING", "RECONCILING", "STOPPING")
INCOMPATIBLE_OPERATION = "incompatible operation"
GPU_TAINT_KEY = "nvidia.com/gpu"


def argument_spec():
    return dict(
        location=dict(type="str", required=True),
        cluster=dict(type="str", required=True),
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        machine_type=dict(type="str"),
        accelerator=dict(type="dict", options=dict(
            type=dict(type="str", required=True),
            count=dict(type="int", default=1),
            gpu_driver_version=dict(type="str", choices=["LATEST", "DEFAULT", "INSTALLATION_DISABLED"]),
        )),
        node_locations=dict(type="list", elements="str"),
        autoscaling=dict(type="dict", options=dict(
            enabled=dict(type="bool", default=True),
            min_node_count=dict(type="int", aliases=["min_nodes"]),
            max_node_count=dict(type="int", aliases=["max_nodes"]),
            total_min_node_count=dict(type="int", aliases=["total_min_nodes"]),
            total_max_node_count=dict(type="int", aliases=["total_max_nodes"]),
            location_policy=dict(type="str", choices=["BALANCED", "ANY"]),
        ), mutually_exclusive=[("min_node_count", "total_min_node_count"), ("min_node_count", "total_max_node_count"),
                               ("max_node_count", "total_min_node_count"), ("max_node_count", "total_max_node_count")]),
        initial_node_count=dict(type="int"),
        node_count=dict(type="int"),
        spot=dict(type="bool"),
        labels=dict(type="dict"),
        taints=dict(type="list", elements="dict", options=dict(
            key=dict(type="str", required=True, no_log=False),
            value=dict(type="str", default=""),
            effect=dict(type="str", required=True, choices=["NO_SCHEDULE", "PREFER_NO_SCHEDULE", "NO_EXECUTE"]),
        )),
        service_account=dict(type="str"),
        disk_size_gb=dict(type="int"),
        disk_type=dict(type="str"),
        recreate=dict(type="bool", default=False),
    )


# --------------------------------------------------------------------------------------
# pure functions: paths, normalisation, plans, request bodies


def cluster_path(project, location, cluster):
    return "v1/projects/%s/locations/%s/clusters/%s" % (project, location, cluster)


def pool_path(project, location, cluster, name):
    return "%s/nodePools/%s" % (cluster_path(project, location, cluster), name)


def validate_params(params):
    """Cross-field checks argument_spec cannot express; returns a list of messages."""
    problems = []
    for key in ("initial_node_count", "node_count", "disk_size_gb"):
        if params.get(key) is not None and params[key] < 0:
            problems.append("%s must be >= 0" % key)
    acc = params.get("accelerator")
    if acc and acc.get("count") is not None and acc["count"] < 1:
        problems.append("accelerator.count must be >= 1")
    auto = params.get("autoscaling")
    if auto and auto.get("enabled", True):
        per_zone = auto.get("min_node_count") is not None or auto.get("max_node_count") is not None
        total = auto.get("total_min_node_count") is not None or auto.get("total_max_node_count") is not None
        if per_zone and auto.get("max_node_count") is None:
            problems.append("autoscaling.max_node_count is required with autoscaling.min_node_count")
        if total and auto.get("total_max_node_count") is None:
            problems.append("autoscaling.total_max_node_count is required with autoscaling.total_min_node_count")
        if not per_zone and not total:
            problems.append("autoscaling with enabled=true needs max_node_count (per zone) or total_max_node_count")
        for lo, hi in (("min_node_count", "max_node_count"), ("total_min_node_count", "total_max_node_count")):
            low, high = auto.get(lo) or 0, auto.get(hi)
            if low < 0:
                problems.append("autoscaling.%s must be >= 0" % lo)
            if high is not None and high < max(low, 1):
                problems.append("autoscaling.%s must be >= 1 and >= autoscaling.%s" % (hi, lo))
        if params.get("node_count") is not None:
            problems.append("node_count cannot be combined with autoscaling.enabled=true (the autoscaler owns the "
                            "size); use initial_node_count for the size at creation")
    if params.get("node_locations") is not None and not params["node_locations"]:
        problems.append("node_locations must not be empty")
    return problems


def normalize_autoscaling(auto):
    """Autoscaling in option shape, whether from the options or from the API (already converted)."""
    if auto is None:
        return None
    if not auto.get("enabled"):
        return {"enabled": False}
    out = {"enabled": True}
    if auto.get("total_max_node_count") is not None:
        out["total_min_node_count"] = auto.get("total_min_node_count") or 0
        out["total_max_node_count"] = auto["total_max_node_count"]
    else:
        out["min_node_count"] = auto.get("min_node_count") or 0
        out["max_node_count"] = auto.get("max_node_count") or 0
    if auto.get("location_policy"):
        out["location_policy"] = auto["location_policy"]
    return out


def normalize_taints(taints):
    if taints is None:
        return None
    out = [{"key": t["key"], "value": t.get("value") or "", "effect": t["effect"]} for t in taints]
    return sorted(out, key=lambda t: (t["key"], t["effect"], t["value"]))


def desired_state(params):
    """The managed fields the task sets, in option shape (unset ones are absent)."""
    desired = {}
    for key in ("machine_type", "spot", "service_account", "disk_size_gb", "disk_type", "node_count"):
        if params.get(key) is not None:
            desired[key] = params[key]
    if params.get("labels") is not None:
        desired["labels"] = {str(k): str(v) for k, v in params["labels"].items()}
    if params.get("node_locations") is not None:
        desired["node_locations"] = sorted(set(params["node_locations"]))
    if params.get("taints") is not None:
        desired["taints"] = normalize_taints(params["taints"])
    if params.get("autoscaling") is not None:
        desired["autoscaling"] = normalize_autoscaling(params["autoscaling"])
    acc = params.get("accelerator")
    if acc is not None:
        desired["accelerator"] = {"type": acc["type"], "count": acc.get("count") or 1}
        if acc.get("gpu_driver_version"):
            desired["accelerator"]["gpu_driver_version"] = acc["gpu_driver_version"]
    return desired


def current_state(pool, node_count=None):
    """A NodePool resource in option shape (every managed field; None where GKE reports nothing)."""
    config = pool.get("config") or {}
    accs = config.get("accelerators") or []
    accelerator = None
    if accs:
        first = accs[0]
        accelerator = {"type": first.get("acceleratorType"), "count": int(first.get("acceleratorCount") or 0)}
        driver = (first.get("gpuDriverInstallationConfig") or {}).get("gpuDriverVersion")
        if driver and driver != "GPU_DRIVER_VERSION_UNSPECIFIED":
            accelerator["gpu_driver_version"] = driver
    api_auto = pool.get("autoscaling") or {}
    auto = {"enabled": bool(api_auto.get("enabled"))}
    if "totalMaxNodeCount" in api_auto or "totalMinNodeCount" in api_auto:
        auto["total_min_node_count"] = int(api_auto.get("totalMinNodeCount") or 0)
        auto["total_max_node_count"] = int(api_auto.get("totalMaxNodeCount") or 0)
    else:
        auto["min_node_count"] = int(api_auto.get("minNodeCount") or 0)
        auto["max_node_count"] = int(api_auto.get("maxNodeCount") or 0)
    policy = api_auto.get("locationPolicy")
    if policy and policy != "LOCATION_POLICY_UNSPECIFIED":
        auto["location_policy"] = policy
    return {
        "machine_type": config.get("machineType"),
        "accelerator": accelerator,
        "disk_size_gb": config.get("diskSizeGb"),
        "disk_type": config.get("diskType"),
        "spot": bool(config.get("spot")),
        "service_account": config.get("serviceAccount"),
        "node_locations": sorted(pool.get("locations") or []),
        "labels": dict(config.get("labels") or {}),
        "taints": normalize_taints(config.get("taints") or []),
        "autoscaling": normalize_autoscaling(auto),
        "node_count": node_count if node_count is not None else int(pool.get("initialNodeCount") or 0),
    }


def comparable(current, desired):
    """``current`` reduced to what ``desired`` manages, so equal means nothing to do."""
    view = {}
    for key, want in desired.items():
        have = current.get(key)
        if key == "accelerator" and have is not None and "gpu_driver_version" not in want:
            have = {k: v for k, v in have.items() if k != "gpu_driver_version"}
        elif key == "autoscaling" and have is not None and want.get("enabled"):
            if "location_policy" not in want:
                have = {k: v for k, v in have.items() if k != "location_policy"}
        elif key == "autoscaling" and have is not None and not want.get("enabled"):
            have = {"enabled": have.get("enabled", False)} if not have.get("enabled") else have
        elif key == "taints" and have is not None:
            wanted_keys = set(t["key"] for t in want)
            have = [t for t in have if t["key"] != GPU_TAINT_KEY or GPU_TAINT_KEY in wanted_keys]
        view[key] = have
    return view


def plan_changes(current, desired):
    """(fields needing a new pool, fields updatable in place), both sorted, from option-shape dicts."""
    have = comparable(current, desired)
    changed = [k for k in desired if have.get(k) != desired[k]]
    if "autoscaling" in changed and not desired["autoscaling"].get("enabled") and \
            not (have.get("autoscaling") or {}).get("enabled"):
        changed.remove("autoscaling")
    recreate = sorted(k for k in changed if k in RECREATE_FIELDS)
    in_place = [k for k in IN_PLACE_FIELDS if k in changed]
    return recreate, in_place


def recreate_message(name, fields, have, desired):
    parts = ["%s (is %s, wanted %s)" % (f, _show(have.get(f)), _show(desired.get(f))) for f in fields]
    return ("node pool %s: %s cannot change on an existing node pool (GKE needs a new pool for %s). Set "
            "recreate: true to delete and recreate the pool (its nodes and their Pods go away), or keep the current "
            "values" % (name, "; ".join(parts), "it" if len(fields) == 1 else "them"))


def _show(value):
    if isinstance(value, dict):
        return "{%s}" % ", ".join("%s: %s" % (k, value[k]) for k in sorted(value))
    return str(value)


def autoscaling_body(auto):
    """NodePoolAutoscaling from the option shape."""
    if not auto.get("enabled"):
        return {"enabled": False}
    body = {"enabled": True}
    if "total_max_node_count" in auto:
        body["totalMinNodeCount"] = auto.get("total_min_node_count") or 0
        body["totalMaxNodeCount"] = auto["total_max_node_count"]
    else:
        body["minNodeCount"] = auto.get("min_node_count") or 0
        body["maxNodeCount"] = auto["max_node_count"]
    if auto.get("location_policy"):
        body["locationPolicy"] = auto["location_policy"]
    return body


def taints_body(taints):
    return [{"key": t["key"], "value": t["value"], "effect": t["effect"]} for t in taints]


def create_body(name, params):
    """CreateNodePoolRequest for the options."""
    desired = desired_state(params)
    config = {}
    if desired.get("machine_type"):
        config["machineType"] = desired["machine_type"]
    if desired.get("disk_size_gb") is not None:
        config["diskSizeGb"] = desired["disk_size_gb"]
    if desired.get("disk_type"):
        config["diskType"] = desired["disk_type"]
    if desired.get("spot") is not None:
        config["spot"] = desired["spot"]
    if desired.get("service_account"):
        config["serviceAccount"] = desired["service_account"]
    if desired.get("labels") is not None:
        config["labels"] = desired["labels"]
    if desired.get("taints") is not None:
        config["taints"] = taints_body(desired["taints"])
    acc = desired.get("accelerator")
    if acc:
        item = {"acceleratorType": acc["type"], "acceleratorCount": str(acc["count"])}
        if acc.get("gpu_driver_version"):
            item["gpuDriverInstallationConfig"] = {"gpuDriverVersion": acc["gpu_driver_version"]}
        config["accelerators"] = [item]
    pool = {"name": name}
    if config:
        pool["config"] = config
    if desired.get("node_locations"):
        pool["locations"] = desired["node_locations"]
    auto = desired.get("autoscaling")
    if auto is not None and auto.get("enabled"):
        pool["autoscaling"] = autoscaling_body(auto)
    initial = params.get("initial_node_count")
    if initial is None:
        initial = params.get("node_count")
    if initial is None:
        initial = 0 if auto and auto.get("enabled") else 1
    pool["initialNodeCount"] = initial
    return {"nodePool": pool}


def update_requests(path, desired, fields):
    """The in-place changes as [(action, http method, path, body)], in the order GKE should get them."""
    out = []
    for field in fields:
        if field == "node_locations":
            out.append(("update_locations", "PUT", path, {"locations": desired["node_locations"]}))
        elif field == "labels":
            out.append(("update_labels", "PUT", path, {"labels": {"labels": desired["labels"]}}))
        elif field == "taints":
            out.append(("update_taints", "PUT", path, {"taints": {"taints": taints_body(desired["taints"])}}))
        elif field == "autoscaling":
            out.append(("set_autoscaling", "POST", path + ":setAutoscaling",
                        {"autoscaling": autoscaling_body(desired["autoscaling"])}))
        elif field == "node_count":
            out.append(("set_size", "POST", path + ":setSize", {"nodeCount": desired["node_count"]}))
    return out


def instance_group_manager_path(url):
    """An instanceGroupUrls entry -> Google's path of its instance group manager, or None."""
    marker = "/projects/"
    if marker not in (url or ""):
        return None
    rest = url[url.index(marker) + 1:]
    parts = rest.split("/")
    # projects/P/zones/Z/instanceGroupManagers|instanceGroups/NAME
    if len(parts) != 6 or parts[2] != "zones" or parts[4] not in ("instanceGroupManagers", "instanceGroups"):
        return None
    return "compute/v1/projects/%s/zones/%s/instanceGroupManagers/%s" % (parts[1], parts[3], parts[5])


# --------------------------------------------------------------------------------------
# the module


class NodePoolRunner(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.name = self.params["name"]
        self.actions = []
        self.operations = []

    @property
    def client(self):
        return self.module.client

    def path(self):
        p = self.params
        return pool_path(self.module.project, p["location"], p["cluster"], self.name)

    def read(self):
        return self.client.get("container", self.path(), action="read node pool %s" % self.name,
                               resource="node pool %s" % self.path()[3:])

    def read_node_count(self, pool):
        paths = [p for p in (instance_group_manager_path(u) for u in pool.get("instanceGroupUrls") or []) if p]
        if not paths:
            return None
        sizes = []
        for path in paths:
            try:
                mig = self.client.request("GET", "compute", path, action="read the size of node pool %s" % self.name,
                                          resource="instance group manager %s" % path.split("/", 2)[2])
            except GcpError as e:
                if e.http_status not in (404, 501):
                    raise
                self.module.warn("node pool %s: cannot read the size of its instance groups (HTTP %s); comparing "
                                 "node_count with the pool's initialNodeCount instead" % (self.name, e.http_status))
                return None
            sizes.append(int(mig.get("targetSize") or 0))
        return max(sizes) if sizes else None

    def wait_op(self, op, action, must_wait):
        name = op.get("name")
        if name:
            self.operations.append(name.rsplit("/", 1)[-1])
        if must_wait or self.params["wait"]:
            return self.client.wait_operation(op, "container", "container", self.params["timeout"], action,
                                              project=self.module.project, location=self.params["location"])
        return op

    def wait_settled(self, pool):
        """A pool still provisioning or reconciling cannot take another change: wait until it settled."""
        if pool.get("status") not in BUSY_STATUSES or not self.params["wait"]:
            return pool
        clock, sleep = self.client.clock, self.client.sleep
        deadline = clock() + self.params["timeout"]
        intervals = self.client.poll.intervals()
        while pool and pool.get("status") in BUSY_STATUSES:
            if clock() >= deadline:
                raise GcpError("node pool %s is still %s after %ss; run the task again later"
                               % (self.name, pool.get("status"), self.params["timeout"]), kind="timeout")
            sleep(next(intervals))
            pool = self.read()
        return pool

    def mutate(self, method, path, body, action, resource):
        """A changing request; while GKE runs another operation on the cluster (HTTP 400 FAILED_PRECONDITION
        "Cluster is running incompatible operation"), wait and try again, up to ``timeout`` when waiting."""
        clock, sleep = self.client.clock, self.client.sleep
        deadline = clock() + self.params["timeout"]
        intervals = self.client.poll.intervals()
        while True:
            try:
                return self.client.request(method, "container", path, body=body, action=action, resource=resource)
            except GcpError as e:
                busy = e.http_status == 400 and INCOMPATIBLE_OPERATION in (e.message or "")
                if not busy or not self.params["wait"] or clock() >= deadline:
                    raise
                delay = min(next(intervals), max(0.0, deadline - clock()))
                self.client.log.append({"event": "cluster_busy", "action": action, "reason": e.message,
                                        "delay": round(delay, 3)})
                sleep(delay)

    def create(self):
        body = create_body(self.name, self.params)
        parent = cluster_path(self.module.project, self.params["location"], self.params["cluster"])
        op = self.mutate("POST", parent + "/nodePools", body, "create node pool %s" % self.name,
                         "cluster %s" % parent[3:])
        self.actions.append("create")
        return self.wait_op(op, "create node pool %s" % self.name, must_wait=False)

    def delete(self, must_wait):
        op = self.mutate("DELETE", self.path(), None, "delete node pool %s" % self.name,
                         "node pool %s" % self.path()[3:])
        self.actions.append("delete")
        return self.wait_op(op, "delete node pool %s" % self.name, must_wait=must_wait)

    def result(self, changed, pool, fields, before=None, after=None):
        result = dict(changed=changed, node_pool=pool or {}, actions=self.actions, changed_fields=fields,
                      operations=self.operations)
        if self.module._diff:
            result["diff"] = diff_result(before, after, header="node pool %s" % self.path()[3:])
        return result

    def run(self):
        p = self.params
        problems = validate_params(p) if p["state"] == "present" else []
        if problems:
            raise GcpError("; ".join(problems), kind="invalid")
        pool = self.read()
        check = self.module.check_mode
        if p["state"] == "absent":
            if pool is None:
                return self.result(False, None, [])
            if check:
                self.actions.append("delete")
            else:
                pool = self.wait_settled(pool)
                self.delete(must_wait=False)
            return self.result(True, {} if not check else pool, [], before={"exists": True},
                               after={"exists": False})

        desired = desired_state(p)
        keys = sorted(desired)
        if pool is None:
            if check:
                self.actions.append("create")
                return self.result(True, None, keys, before={}, after=desired)
            self.create()
            after = self.read() if p["wait"] else None
            return self.result(True, after, keys, before={}, after=desired)

        count = self.read_node_count(pool) if "node_count" in desired else None
        have = current_state(pool, count)
        recreate, in_place = plan_changes(have, desired)
        fields = sorted(recreate + in_place)
        before = managed_view(comparable(have, desired), keys)
        after = managed_view(desired, keys)
        if not fields:
            return self.result(False, pool, [], before=before, after=after)
        if recreate and not p["recreate"]:
            raise GcpError(recreate_message(self.name, recreate, comparable(have, desired), desired), kind="invalid",
                           resource="node pool %s" % self.path()[3:])
        if check:
            if recreate:
                self.actions.extend(["delete", "create"])
            else:
                self.actions.extend(a for a, _m, _p, _b in update_requests(self.path(), desired, in_place))
            return self.result(True, pool, fields, before=before, after=after)

        pool = self.wait_settled(pool)
        if recreate:
            self.delete(must_wait=True)
            self.create()
        else:
            requests_ = update_requests(self.path(), desired, in_place)
            for index, (action, method, path, body) in enumerate(requests_):
                label = "%s of node pool %s" % (action.replace("_", " "), self.name)
                op = self.mutate(method, path, body, label, "node pool %s" % self.path()[3:])
                self.actions.append(action)
                self.wait_op(op, label, must_wait=index < len(requests_) - 1)
        final = self.read() if p["wait"] else pool
        return self.result(True, final, fields, before=before, after=after)


def main():
    module = GcpModule(argument_spec(), wait=True)
    module.run(lambda m: NodePoolRunner(m).run())


if __name__ == "__main__":
    main()
