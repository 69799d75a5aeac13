#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# The documentation of the k8s_converge action plugin (plugins/action/k8s_converge.py), which runs on the
# controller: there is no module code.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: k8s_converge
short_description: Converge a set of Kubernetes objects from one read, prune what the set no longer has
version_added: 0.2.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - One Kubernetes step of a role as one task. Reads the live counterpart of every object in O(objects), decides
    which of them a server-side apply by O(field_manager) would change (every configured value and the manager's
    C(metadata.managedFields), with the defaults of a custom resource's schema; anything undecidable counts as a
    change), and applies only those, in the order given, with conflicts forced. A converged step makes reads
    only, and no module process runs (this is an action plugin executed on the controller).
  - With O(applyset), the objects are the members of an ApplySet (Kubernetes KEP 3659) whose parent is the
    ConfigMap O(applyset) in O(namespace); each member is labelled C(applyset.kubernetes.io/part-of). What carries
    the label and is no longer in O(objects) (same group, kind, namespace and name) is deleted (O(prune)), and
    O(state=absent) deletes every member, whatever its kind, then the parent. The namespace that holds the parent
    is never a member.
  - "C(spec.replicas) of a Deployment, StatefulSet or ReplicaSet that the configuration stops setting is handed
    over without a reset: it is first applied at its live value by the manager C(<field_manager>-handover) (see
    Transferring ownership in Kubernetes' server-side apply documentation), so the API server does not default it
    to 1 before an autoscaler writes it. Setting it again first deletes the autoscalers of O(autoscaler_selector)
    that target the workload."
  - With O(take_ownership_from), fields this manager applies are removed from the C(Update) entries of those
    managers in C(metadata.managedFields) (a JSON patch guarded by tests of each entry), so that one manager owns
    them; for instance the GCPBackendPolicy a helm chart renders and a role completes.
  - "With O(adopt_from), objects that other field managers made (C(kubectl apply), C(kubectl create), another
    tool) are adopted: after the apply, what only those managers set and this configuration does not is removed,
    and their C(metadata.managedFields) entries with it (one update guarded by the C(resourceVersion), as
    C(kubectl apply --server-side) migrates a client-side applied object), so the object becomes exactly what
    O(objects) says and this manager alone owns what it sets. A field the API server defaults comes back at its
    default. The C(spec.replicas) of a workload the configuration leaves to an autoscaler is kept at its live
    value. Check mode dry-runs both writes, so its diff is the real run's."
  - In check mode nothing is written. What would be created or changed is dry-run on the server (for the diff)
    where it can be; objects in a namespace or of a kind that does not exist yet are listed as they are
    configured. What would be pruned, handed over or taken over is listed.
  - The C(data) and C(stringData) of Secrets never appear in the result or the diff.
  - With O(wait), waits for every object that has a readiness rule (a Deployment Available as
    M(kubernetes.core.k8s) judges it, a CustomResourceDefinition Established, an APIService Available) and fails at
    once, naming it, when a pod is crash-looping; on timeout the message names each blocker (the scheduler's and the
    cluster autoscaler's reasons for a pending pod, image pull errors, probes, an APIService's condition). Progress
    is printed while waiting.
options:
  objects:
    description:
      - The objects of the step, each with C(apiVersion), C(kind) and C(metadata.name); empty entries (as
        C(from_yaml_all) gives for empty documents) are ignored.
      - A CustomResourceDefinition and objects of its kind go in separate tasks.
    type: list
    elements: raw
    default: []
  state:
    description:
      - V(present) converges O(objects). V(absent) deletes every member of the ApplySet O(applyset) and its
        parent, waiting until they are gone.
    type: str
    choices: [present, absent]
    default: present
  field_manager:
    description: The field manager of the server-side applies.
    type: str
    required: true
  namespace:
    description: The namespace of namespaced objects that name none, and of the ApplySet parent.
    type: str
  applyset:
    description: The name of the ApplySet (its parent ConfigMap in O(namespace)). Without it nothing is pruned.
    type: str
  prune:
    description: Delete the members of O(applyset) that are no longer in O(objects).
    type: bool
    default: true
  take_ownership_from:
    description: Field managers whose C(Update) entries give up the fields this manager applies.
    type: list
    elements: str
    default: []
  adopt_from:
    description:
      - Field managers (names, or shell patterns such as C(kubectl-*)) whose fields are adopted (see above), for
        instance C(kubectl-client-side-apply), C(kubectl) and C(kubectl-create) for what a walkthrough made by hand.
      - Never list a controller that keeps writing the object (C(kube-controller-manager)) or the tool that owns
        it (C(helm) for a chart's objects).
    type: list
    elements: str
    default: []
  keep_newer:
    description:
      - Leave a live CustomResourceDefinition as it is when its O(keep_newer.annotation) names a newer release than
        O(keep_newer.version) and it still serves every version the object given here serves (another namespace
        may run that newer release); the result's RV(kept) says which and why. Without it, CRDs are applied as
        any object.
    type: dict
    suboptions:
      annotation:
        description: The annotation holding a CRD bundle's release, such as C(inference.networking.k8s.io/bundle-version).
        type: str
        required: true
      version:
        description: The release of the CRDs in O(objects), such as C(v1.1.0).
        type: str
        required: true
  only_existing:
    description:
      - Leave out objects that do not exist (or whose kind is not served) instead of creating them; the result's
        RV(missing) lists them.
    type: bool
    default: false
  autoscaler_selector:
    description:
      - Label selector of the HorizontalPodAutoscalers this collection manages. When a workload sets
        C(spec.replicas) again while one of them targets it, it is deleted first (it would otherwise change the
        replicas until it is deleted by its own step).
    type: str
  select:
    description:
      - Further lists read in the same pass, each with C(api_version), C(kind), C(namespace) (optional) and
        C(label_selector) (optional); the result's RV(selected) holds one list per entry.
    type: list
    elements: dict
    default: []
  wait:
    description: Wait until every object with a readiness rule is ready (not in check mode).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait.
    type: int
    default: 300
  wait_sleep:
    description: Seconds between two reads while waiting.
    type: float
    default: 2
  wait_titles:
    description: How messages name an object, by C(metadata.name), for instance the model a Deployment serves.
    type: dict
    default: {}
  delete_timeout:
    description: Seconds to wait for pruned or removed objects to be gone.
    type: int
    default: 300
  render_dir:
    description:
      - Render mode. Touch no API; write the objects as the step would apply them to an empty cluster (namespaced
        objects in O(namespace), ApplySet labels, the Namespace, then the ApplySet parent ConfigMap, then the rest in
        the given order) to one file C(NNN-<step>.yaml) of this directory, C(NNN) one above the highest number of
        its files, so that the files sort in the order of the run. C(<step>) is O(applyset), or the role and the
        last object's kind.
      - Applying the files with C(kubectl apply --server-side --field-manager=<field_manager>) gives the objects
        the step would make. Pruning and waiting are left to the tool that applies them. A Secret's values are in
        the file (written with mode 0600).
      - Roles set it from C(infgw_render_dir).
    type: path
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.full_support
attributes:
  action:
    support: full
    description: Runs on the controller as an action plugin; no module is transferred or executed.
  async:
    support: none
    description: Not supported.
notes:
  - The connection is the one kubernetes.core makes for the same options and C(K8S_AUTH_*) variables (parameters,
    kubeconfig and context, the pod's service account, host, proxies). The options also come from the
    C(module_defaults) a M(kubernetes.core.k8s) task in the same place would get. Connections that need a proxy,
    basic authentication, an auth provider or impersonation go through kubernetes.core's client.
requirements:
  - python >= 3.8
  - the kubernetes Python client, only for the connections noted above
"""

EXAMPLES = r"""
- name: Converge the model servers, prune removed models, wait until they are Available
  gke_ai.inference_gateway.k8s_converge:
    objects: "{{ lookup('ansible.builtin.template', 'model_servers.yml.j2') | ansible.builtin.from_yaml_all | list }}"
    namespace: gemma
    field_manager: my-manager
    applyset: my-model-servers
    wait: true
    wait_timeout: 1800

- name: Complete the policies a chart renders, taking their fields over from helm
  gke_ai.inference_gateway.k8s_converge:
    objects: "{{ policies }}"
    namespace: gemma
    field_manager: my-manager
    only_existing: true
    take_ownership_from: [helm]

- name: Delete what a step applied (teardown)
  gke_ai.inference_gateway.k8s_converge:
    state: absent
    namespace: gemma
    field_manager: my-manager
    applyset: my-model-servers
"""

RETURN = r"""
created:
  description: C(Kind namespace/name) of the objects created (or that would be, in check mode).
  returned: always
  type: list
  elements: str
updated:
  description: The objects an apply changed (or would change).
  returned: always
  type: list
  elements: str
pruned:
  description: The members deleted because O(objects) no longer has them (or, with O(state=absent), every member).
  returned: always
  type: list
  elements: str
handed_over:
  description: Workloads whose C(spec.replicas) was handed over to the autoscaler.
  returned: always
  type: list
  elements: str
released:
  description: Autoscalers deleted before a workload set C(spec.replicas) again.
  returned: always
  type: list
  elements: str
taken_over:
  description: Fields taken over from the managers of O(take_ownership_from), per object and manager.
  returned: always
  type: list
  elements: str
adopted:
  description: Objects adopted from the managers of O(adopt_from) (C(Kind namespace/name from manager)), with the
    fields that were removed because only those managers had set them.
  returned: always
  type: list
  elements: str
missing:
  description: Objects left out by O(only_existing), with the reason.
  returned: always
  type: list
  elements: str
kept:
  description: Live CRDs left as they are by O(keep_newer), with the release they carry.
  returned: always
  type: list
  elements: str
not_served:
  description: C(apiVersion kind) of objects whose kind the cluster does not serve (listed in check mode, left out
    with O(only_existing); otherwise the step fails).
  returned: always
  type: list
  elements: str
reasons:
  description: Why each object was applied, by C(Kind namespace/name); paths, never values.
  returned: always
  type: dict
objects:
  description: The objects as they are after the step (or as read, when nothing was applied), without Secret
    values or CRD schemas.
  returned: when O(state=present)
  type: list
  elements: dict
selected:
  description: One list of objects per O(select) entry.
  returned: when O(state=present)
  type: list
  elements: list
rendered:
  description: The file written in render mode (null when the step had nothing to render).
  returned: when O(render_dir) is set
  type: str
msg:
  description: What was done, in one line.
  returned: always
  type: str
  sample: created Deployment gemma/vllm-gemma-3-1b; deleted Deployment gemma/vllm-old
"""
