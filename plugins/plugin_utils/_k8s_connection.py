# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where an action plugin running on the controller connects: as a kubernetes.core module of the same task would."""
from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._kube_http import (
    AUTH_OPTIONS,
    task_environment_auth,
)

try:  # what ansible.builtin.service and .package use to apply the module_defaults of the module they run
    from ansible.executor.module_common import _apply_action_arg_defaults
except ImportError:  # pragma: no cover - another ansible-core
    _apply_action_arg_defaults = None

# kubernetes.core's aliases of the connection options
ALIASES = {"verify_ssl": "validate_certs", "ssl_ca_cert": "ca_cert", "cert_file": "client_cert",
           "key_file": "client_key"}
BOOLEAN_OPTIONS = ("validate_certs", "persist_config")


def connection_options(action, defaults_of, own=None):
    """The connection options of ``action``'s task: ``own`` first (the task's arguments), then what the
    module_defaults of the modules ``defaults_of`` give in this task, first one first, then the ``K8S_AUTH_*``
    variables of the task's environment (a play per cluster), which modules would read and an action plugin, in the
    controller's own environment, does not see."""
    merged = dict(own or {})
    if _apply_action_arg_defaults is not None:
        for module in defaults_of:
            for name, value in _apply_action_arg_defaults(module, action._task, {}, action._templar).items():
                name = ALIASES.get(name, name)
                if name in AUTH_OPTIONS and value is not None and name not in merged:
                    merged[name] = boolean(value) if name in BOOLEAN_OPTIONS else value
    for name, value in task_environment_auth(action).items():
        merged.setdefault(name, value)
    return merged
