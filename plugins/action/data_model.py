# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data_model action: validates and resolves the data model on the controller, no module process
(documentation: plugins/modules/data_model.py; the rules: plugins/module_utils/_data_model.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._data_model import (
    gateway_class_problems,
    resolve,
    step_runs,
    validate,
)

# The data model's variables (roles/common/meta/argument_specs.yml), read from the task's variables.
VARIABLES = (
    "infgw_namespace", "infgw_profile", "infgw_profile_overrides", "infgw_hf_secret_name", "infgw_require_hf_token",
    "infgw_models", "infgw_model_defaults", "infgw_extra_accelerators", "infgw_extra_machine_types", "infgw_gateway",
    "infgw_chat_ui", "infgw_cloud_armor", "infgw_gcp", "infgw_nodepools", "infgw_proxy_subnet", "infgw_certificates",
    "infgw_select_models", "infgw_replicas", "infgw_autoscaling_enabled", "infgw_gateway_class",
    "infgw_cloud_armor_enabled", "infgw_scale_replicas", "infgw_monitoring",
)
# The settings an inventory overrides key by key: merged over roles/common/defaults/main.yml.
MERGED = ("infgw_model_defaults", "infgw_gateway", "infgw_chat_ui", "infgw_cloud_armor", "infgw_gcp",
          "infgw_proxy_subnet", "infgw_monitoring")
COMMON_ROLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "roles", "common")
GATEWAY_CLASSES = ("gateway.networking.k8s.io/v1", "GatewayClass")
# The read connects where the roles' Kubernetes steps do: the module_defaults of k8s_converge (its group
# gke_ai.inference_gateway.k8s) and of kubernetes.core.k8s, then the environment.
CONNECTION_DEFAULTS_OF = ("gke_ai.inference_gateway.k8s_converge", "kubernetes.core.k8s")


def plain(value):
    """Ansible's tagged and lazy containers as plain JSON data."""
    return json.loads(json.dumps(value, default=to_native))


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _spec, args = self.validate_argument_spec(argument_spec=dict(
            check_cluster=dict(type="bool", default=True),
        ))
        task_vars = task_vars or {}
        values = {name: plain(self._templar.template(task_vars[name])) for name in VARIABLES if name in task_vars}
        defaults = self._loader.load_from_file(os.path.join(COMMON_ROLE, "defaults", "main.yml"),
                                               trusted_as_template=True)
        defaults = {name: plain(self._templar.template(defaults.get(name))) for name in MERGED}
        profiles_dir = os.path.join(COMMON_ROLE, "vars", "profiles")
        profiles = sorted(name[:-len(".yml")] for name in os.listdir(profiles_dir) if name.endswith(".yml"))
        profile = None
        if values.get("infgw_profile") in profiles:
            data = self._loader.load_from_file(os.path.join(profiles_dir, values["infgw_profile"] + ".yml"))
            profile = plain(data["infgw_profile_data"])
        token = self._templar.template(task_vars.get("infgw_hf_token")) if "infgw_hf_token" in task_vars else ""
        run_tags, skip_tags = task_vars.get("ansible_run_tags"), task_vars.get("ansible_skip_tags")

        facts = resolve(values, defaults, profile)
        problems = validate(values, facts, profiles, hf_token_set=bool(str(token or "").strip()),
                            run_tags=run_tags, skip_tags=skip_tags)
        facts["infgw_check_mode_new_namespace"] = False
        # The GatewayClass is checked whatever else is wrong, so that every problem is reported at once (a class
        # that is not even a name is one of `problems` already).
        class_field = "infgw_gateway.class:"
        read_classes = (args["check_cluster"] and step_runs("gateway", run_tags, skip_tags)
                        and not any(p.startswith(class_field) for p in problems))
        read_namespace = self._task.check_mode and not problems
        if read_classes or read_namespace:
            try:
                class_problems, new_namespace, warnings = self._read_cluster(facts, values, read_classes,
                                                                             read_namespace)
            except AnsibleActionFail as error:
                if not problems:
                    raise
                # the input is bad anyway: report it, and say the class could not be checked
                class_problems, new_namespace, warnings = [], False, [to_native(error)]
            problems.extend(class_problems)
            facts["infgw_check_mode_new_namespace"] = new_namespace
            if warnings:
                result["warnings"] = warnings
        if problems:
            raise AnsibleActionFail("Invalid data model (%d problem(s)):\n- %s" % (len(problems), "\n- ".join(problems)))
        result.update(changed=False, facts=facts)
        return result

    def _read_cluster(self, facts, values, read_classes, read_namespace):
        """One connection: the GatewayClasses (the class must exist before anything is applied) and, in check
        mode, whether the namespace exists (roles list what they would create instead of dry-running)."""
        # imported here: a run that reads nothing (status, teardown, resolution tests) needs no Kubernetes client
        from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._kube_http import (
            KubeApiError,
            open_client,
        )
        from ansible_collections.gke_ai.inference_gateway.plugins.plugin_utils._k8s_connection import (
            connection_options,
        )

        problems, warnings, new_namespace = [], [], False
        try:
            client = open_client(connection_options(self, CONNECTION_DEFAULTS_OF))
            try:
                if read_classes:
                    resource = client.resource(*GATEWAY_CLASSES)
                    try:
                        names = [] if resource is None else [c["metadata"]["name"] for c in client.list(resource)]
                        problems.extend(gateway_class_problems(facts["infgw_gateway_resolved"], names))
                    except KubeApiError as error:
                        if getattr(error, "status", None) != 403:
                            raise
                        warnings.append("infgw_gateway.class not checked: listing GatewayClasses is forbidden (%s)"
                                        % error)
                if read_namespace:
                    namespaces = client.resource("v1", "Namespace")
                    new_namespace = client.get(namespaces, values.get("infgw_namespace")) is None
            finally:
                client.close()
        except AnsibleActionFail:
            raise
        except Exception as error:  # one error at the edge, naming what was being checked
            checked = [field for field, read in (("infgw_gateway.class", read_classes),
                                                 ("infgw_namespace", read_namespace)) if read]
            raise AnsibleActionFail("Could not read the cluster to check the data model (%s): %s"
                                    % (", ".join(checked), to_native(error)))
        return problems, new_namespace, warnings
