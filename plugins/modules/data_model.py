#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# The documentation of the data_model action plugin (plugins/action/data_model.py), which runs on the controller:
# there is no module code. The rules are in plugins/module_utils/_data_model.py and _machine_types.py.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: data_model
short_description: Validate and resolve the data model of gke_ai.inference_gateway before anything is touched
version_added: 0.2.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - The first task of every role (role C(gke_ai.inference_gateway.common), a dependency of all of them). Reads the
    data model's variables (C(infgw_*), see C(ansible-doc -t role gke_ai.inference_gateway.common)) from the task's
    variables, merges the dict-shaped ones over C(roles/common/defaults/main.yml) (the one place of every default),
    loads the GIE profile, checks everything and returns the resolved facts.
  - B(Every problem at once), each line naming its inventory field - values the Kubernetes API server would reject
    (DNS-1123 names, resource quantities such as C(25 GB), ports, negative counts, empty images or TLS Secret names,
    environment variable names), values Google Cloud would reject (CIDR ranges such as C(10.0.0.0/33), node pool
    zones outside the cluster's region, machine types that do not exist or do not go with the pool's GPUs, project,
    region and resource names), and conflicts between fields (a KV-cache target above 100%, a LoRA adapter or model
    served by two pools, two models on one host, duplicate names, Cloud Armor rule priorities, TLS without
    certificates, a Hugging Face token missing when models are deployed...).
  - With O(check_cluster) and when the C(gateway) step runs (per C(--tags) and C(--skip-tags)), one read of the
    cluster - its GatewayClasses - checks that C(infgw_gateway.class) names one of them, and the
    failure lists those the cluster has, together with every other problem. When the cluster cannot be read
    and other problems were found, those are reported and the read's error is a warning. In check mode it also
    reads whether C(infgw_namespace) exists.
  - The cluster connection is the one C(kubernetes.core) takes from the environment (C(K8S_AUTH_*), C(KUBECONFIG)).
  - Writes nothing. Runs on the controller; no module process.
options:
  check_cluster:
    description:
      - Check C(infgw_gateway.class) against the cluster's GatewayClasses when the gateway step runs.
      - Role C(common) passes C(infgw_preflight_cluster), which the playbooks that deploy nothing turn off.
      - When listing GatewayClasses is forbidden, the check is skipped with a warning.
    type: bool
    default: true
attributes:
  action:
    description: Runs as an action plugin on the controller.
    support: full
  check_mode:
    support: full
    details:
      - Writes nothing either way; in check mode it also reads whether the namespace exists.
  diff_mode:
    support: none
extends_documentation_fragment:
  - gke_ai.inference_gateway.attributes
notes:
  - The known machine types and accelerators are a table in C(plugins/module_utils/_machine_types.py); types newer
    than it are accepted with C(infgw_extra_machine_types) and C(infgw_extra_accelerators).
seealso:
  - module: gke_ai.inference_gateway.gke_node_pool
"""

EXAMPLES = r"""
- name: Validate and resolve the data model (what roles/common does)
  gke_ai.inference_gateway.data_model:
    check_cluster: "{{ infgw_preflight_cluster | bool }}"
  register: data_model

- name: Use a resolved fact
  ansible.builtin.debug:
    msg: "{{ data_model.facts.infgw_models_resolved | map(attribute='pool_name') }}"
"""

RETURN = r"""
facts:
  description:
    - The resolved data model, which role C(common) sets as facts of the same names.
  returned: success
  type: dict
  contains:
    infgw_profile_data:
      description: The GIE profile (C(roles/common/vars/profiles/<infgw_profile>.yml)) merged with C(infgw_profile_overrides).
      type: dict
    infgw_models_resolved:
      description:
        - The models taking part (C(infgw_select_models)), each merged over C(infgw_model_defaults) and the flat
          launch-time choices, with derived names - C(short_name), C(resource_name), C(deployment_name),
          C(service_name), C(pool_name), C(epp_name), C(labels), C(health_check_policy_name), C(bbr_route_name),
          C(infp_route_name) - and C(replicas_managed_by_hpa), C(startup_failure_threshold), C(served_model_names).
      type: list
      elements: dict
    infgw_gateway_resolved:
      description: C(infgw_gateway) merged over its defaults, plus C(class_name) and C(parent_refs).
      type: dict
    infgw_chat_ui_resolved:
      description: C(infgw_chat_ui) over its defaults.
      type: dict
    infgw_cloud_armor_resolved:
      description: C(infgw_cloud_armor) over its defaults (pools restricted to the models taking part).
      type: dict
    infgw_gcp_resolved:
      description: C(infgw_gcp) over its defaults, C(cluster_location) defaulting to C(region).
      type: dict
    infgw_proxy_subnet_resolved:
      description: C(infgw_proxy_subnet) over its defaults.
      type: dict
    infgw_metrics_adapter_principal:
      description: The custom metrics adapter's Workload Identity principal.
      type: str
    infgw_check_mode_new_namespace:
      description: True only in check mode when the namespace does not exist yet.
      type: bool
"""
