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
    and operation, in this order - node locations, node labels and taints, the GPU driver version
    (C(nodePools.update), as C(gcloud container node-pools update --accelerator type=...,gpu-driver-version=...)
    does), autoscaling (C(nodePools.setAutoscaling)) and the node count (C(nodePools.setSize)).
  - B(New pool needed.) O(machine_type), the accelerator type and count (O(accelerator.type),
    O(accelerator.count)), O(disk_size_gb), O(disk_type), O(spot), O(service_account) and O(oauth_scopes) cannot
    change on an existing pool. A difference there makes the task fail with a message naming each field with its
    current and wanted value, unless O(recreate=true), in which case the pool is deleted (with its nodes and the
    Pods on them) and created again.
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
      - The GPUs attached to each node. Their type and count cannot change in place (see O(recreate)); the GPU
        driver version can.
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
          - Changed in place on an existing pool (GKE updates its nodes with the new driver).
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
  oauth_scopes:
    description:
      - The OAuth scopes of the nodes' service account, as full URLs (C(https://www.googleapis.com/auth/cloud-platform))
        or gcloud's aliases (C(cloud-platform), C(storage-ro), C(gke-default)...; any other short name C(X) means
        C(https://www.googleapis.com/auth/X)).
      - When not set, a new pool gets gcloud's defaults (C(gke-default) - C(devstorage.read_only),
        C(logging.write), C(monitoring), C(service.management.readonly), C(servicecontrol), C(trace.append)), as
        C(gcloud container node-pools create) gives it, and the scopes of an existing pool are not compared. (GKE
        itself gives a pool created with no scopes only the logging and monitoring ones.)
      - Compared as a set when set. Cannot change in place, see O(recreate).
    type: list
    elements: str
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
  - gke_ai.inference_gateway.gcp.render
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

- name: Let GKE install the latest GPU driver on an existing pool, in place (no new pool, no lost nodes)
  gke_ai.inference_gateway.gke_node_pool:
    project: my-project
    location: us-central1
    cluster: my-gke-cluster
    name: gpupool
    accelerator:
      type: nvidia-l4
      count: 1
      gpu_driver_version: LATEST

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
      C(update_labels), C(update_taints), C(update_accelerator), C(set_autoscaling), C(set_size).
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

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import GcpModule
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gke_node_pool import NodePool, argument_spec


def main():
    GcpModule(argument_spec(), wait=True, render=True).run_resource(NodePool)


if __name__ == "__main__":
    main()
