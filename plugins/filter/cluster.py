# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""k8s_auth_environment: a cluster's Kubernetes connection (inventory host variable infgw_k8s_auth) as the
K8S_AUTH_* environment of the plays, which modules and the collection's actions read as kubernetes.core does."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

# kubernetes.core's connection options (k8s_auth_options), by the names K8S_AUTH_<NAME> gives them
K8S_AUTH_OPTIONS = ("kubeconfig", "context", "host", "api_key", "username", "password", "validate_certs", "ca_cert",
                    "client_cert", "client_key", "proxy", "no_proxy", "impersonate_user", "impersonate_groups",
                    "persist_config")


def k8s_auth_environment(auth):
    """``{kubeconfig: /x, context: c}`` -> ``{K8S_AUTH_KUBECONFIG: /x, K8S_AUTH_CONTEXT: c}``; unset (None, empty)
    options are left out, so the controller's own environment still applies to them."""
    if auth is None:
        return {}
    if not isinstance(auth, dict):
        raise AnsibleFilterError("infgw_k8s_auth must be a dictionary of kubernetes.core connection options, got %s"
                                 % type(auth).__name__)
    unknown = sorted(set(auth) - set(K8S_AUTH_OPTIONS))
    if unknown:
        raise AnsibleFilterError("infgw_k8s_auth: unknown option(s) %s; known: %s"
                                 % (", ".join(unknown), ", ".join(K8S_AUTH_OPTIONS)))
    out = {}
    for name, value in auth.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(item) for item in value)
        out["K8S_AUTH_" + name.upper()] = str(value)
    return out


class FilterModule(object):
    def filters(self):
        return {"k8s_auth_environment": k8s_auth_environment}
