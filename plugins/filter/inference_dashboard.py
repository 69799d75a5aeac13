# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""inference_dashboard: the inference gateway's Cloud Monitoring dashboard from the data model;
inference_dashboard_panels: its panels and their Cloud Monitoring queries (plugins/module_utils/_inference_dashboard.py)."""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _inference_dashboard


def inference_dashboard(models, namespace, cluster, model_metric_prefix="inference_objective"):
    # Plain dicts and lists: Ansible hands filters lazy and tagged containers.
    models = json.loads(json.dumps(models, default=str))
    try:
        return _inference_dashboard.dashboard(_inference_dashboard.panels(models, namespace, cluster,
                                                                          model_metric_prefix))
    except (ValueError, KeyError, TypeError) as e:
        raise AnsibleFilterError("inference_dashboard: %s" % e) from e


def inference_dashboard_panels(models, namespace, cluster, model_metric_prefix="inference_objective"):
    models = json.loads(json.dumps(models, default=str))
    try:
        return _inference_dashboard.panels(models, namespace, cluster, model_metric_prefix)
    except (ValueError, KeyError, TypeError) as e:
        raise AnsibleFilterError("inference_dashboard_panels: %s" % e) from e


class FilterModule(object):
    def filters(self):
        return {"inference_dashboard": inference_dashboard, "inference_dashboard_panels": inference_dashboard_panels}
