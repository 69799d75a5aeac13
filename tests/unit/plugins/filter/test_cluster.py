# -*- coding: utf-8 -*-
# Unit tests of the k8s_auth_environment filter: a cluster host's connection options as the play's environment.
from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.filter.cluster import k8s_auth_environment


def test_options_become_k8s_auth_variables_and_unset_ones_are_left_out():
    assert k8s_auth_environment({"kubeconfig": "/k/two", "context": "two", "host": None, "api_key": "",
                                 "validate_certs": False, "impersonate_groups": ["a", "b"]}) == {
        "K8S_AUTH_KUBECONFIG": "/k/two", "K8S_AUTH_CONTEXT": "two", "K8S_AUTH_VALIDATE_CERTS": "false",
        "K8S_AUTH_IMPERSONATE_GROUPS": "a,b"}
    assert k8s_auth_environment(None) == {} and k8s_auth_environment({}) == {}


def test_unknown_options_and_other_types_are_refused():
    with pytest.raises(AnsibleFilterError, match="unknown option.*kube_config"):
        k8s_auth_environment({"kube_config": "/k"})
    with pytest.raises(AnsibleFilterError, match="must be a dictionary"):
        k8s_auth_environment("/k/two")
