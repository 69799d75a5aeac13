# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the resolved data model (the rules: plugins/module_utils/_data_model.py).

inference_pool_releases
    One inferencepool chart release per model (name, values, typed set_values), for helm_oci_chart's ``releases``.
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._data_model import pool_releases


def _plain(obj):
    """Plain dicts, lists and scalars (Ansible hands filters tagged and lazy container subclasses)."""
    return json.loads(json.dumps(obj, default=str))


def inference_pool_releases(models, profile, chart_values=None, values_by_model=None, metrics_secret=None,
                            namespace=None):
    try:
        return pool_releases(_plain(models), _plain(profile), _plain(chart_values or {}),
                             _plain(values_by_model or {}), metrics_secret, namespace)
    except (KeyError, TypeError, ValueError) as error:
        raise AnsibleFilterError("inference_pool_releases: %s: %s" % (type(error).__name__, error)) from error


class FilterModule(object):
    def filters(self):
        return {"inference_pool_releases": inference_pool_releases}
