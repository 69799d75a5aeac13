#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: monitoring_dashboard
short_description: Manage a Cloud Monitoring dashboard as code
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Creates, replaces or deletes a custom dashboard through the Cloud Monitoring API (C(monitoring) v1,
    C(projects.dashboards)), with the id O(name), so the same task always manages the same dashboard.
  - The dashboard is compared as a whole - display name, labels and O(definition) - with the stored one, in the
    API's JSON form (fields at their default value, such as a zero C(xPos) or C(false), count as absent). When they
    differ the dashboard is replaced (C(dashboards.patch)) with the etag it was read with; a dashboard changed by
    someone else in between (HTTP 409 C(ABORTED)) is read and compared again before it is written.
  - Check mode reads the dashboard and reports what would change; C(--diff) shows the managed fields before and
    after.
  - The role C(gke_ai.inference_gateway.monitoring) builds the inference gateway's dashboard with this module.
options:
  name:
    description:
      - The dashboard id (the last segment of C(projects/PROJECT/dashboards/ID)); letters, digits, C(-) and C(_).
    type: str
    required: true
  display_name:
    description:
      - The dashboard's title. Required with O(state=present).
    type: str
  definition:
    description:
      - The dashboard's content in the API's JSON (camelCase) - exactly one layout (C(mosaicLayout), C(gridLayout),
        C(rowLayout), C(columnLayout)), and optionally C(dashboardFilters) and C(annotations). See the
        C(Dashboard) resource of the API reference.
      - Required with O(state=present).
    type: dict
  labels:
    description:
      - Labels of the dashboard (string values).
    type: dict
    default: {}
  state:
    description:
      - V(present) creates or replaces the dashboard; V(absent) deletes it.
    type: str
    choices: [ present, absent ]
    default: present
attributes:
  idempotent:
    description: Run twice with the same options, the second run changes nothing and reports no change.
    support: full
extends_documentation_fragment:
  - gke_ai.inference_gateway.gcp
  - gke_ai.inference_gateway.gcp.render
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.full_support
notes:
  - Permissions needed - C(monitoring.dashboards.get), C(monitoring.dashboards.create), C(monitoring.dashboards.update),
    C(monitoring.dashboards.delete) (role C(roles/monitoring.dashboardEditor)).
  - Edits made in the console are replaced on the next run; copy the dashboard's JSON into O(definition) to keep them.
seealso:
  - name: Cloud Monitoring dashboards API
    description: The Dashboard resource and its widgets.
    link: https://cloud.google.com/monitoring/api/ref_v3/rest/v1/projects.dashboards
"""

EXAMPLES = r"""
- name: A dashboard with one chart of the pools' KV-cache use
  gke_ai.inference_gateway.monitoring_dashboard:
    project: my-project
    name: inference-gateway
    display_name: Inference gateway
    definition:
      mosaicLayout:
        columns: 48
        tiles:
          - xPos: 0
            yPos: 0
            width: 24
            height: 16
            widget:
              title: KV-cache use by pool
              xyChart:
                dataSets:
                  - plotType: LINE
                    timeSeriesQuery:
                      timeSeriesFilter:
                        filter: metric.type="prometheus.googleapis.com/inference_pool_average_kv_cache_utilization/gauge"
                        aggregation:
                          alignmentPeriod: 60s
                          perSeriesAligner: ALIGN_MEAN
                          crossSeriesReducer: REDUCE_MEAN
                          groupByFields: [metric.label.name]
  register: dashboard

- name: Show where it is
  ansible.builtin.debug:
    msg: "{{ dashboard.url }}"

- name: Remove it
  gke_ai.inference_gateway.monitoring_dashboard:
    project: my-project
    name: inference-gateway
    state: absent
"""

RETURN = r"""
dashboard:
  description:
    - The dashboard as the API returns it after the task (in check mode, before it); Google names it by project
      number. Empty when it does not exist.
  returned: always
  type: dict
  sample:
    name: projects/123456789012/dashboards/inference-gateway
    displayName: Inference gateway
    etag: 0f8a5e2c6d1b4a7e9c3f2b1a0d9e8c7b
    mosaicLayout: {columns: 48, tiles: []}
url:
  description: The dashboard in the Google Cloud console (null with O(state=absent)).
  returned: always
  type: str
  sample: https://console.cloud.google.com/monitoring/dashboards/builder/inference-gateway?project=my-project
actions:
  description: What the task did (or would do) - C(create), C(update), C(delete).
  returned: always
  type: list
  elements: str
  sample: [create]
api_log:
  description: Retries and conflicts of API requests during the run (no request bodies).
  returned: always
  type: list
  elements: dict
  sample: []
"""

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import GcpModule
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._monitoring_dashboard import (
    Dashboard,
    argument_spec,
)


def main():
    GcpModule(argument_spec(), render=True).run_resource(Dashboard)


if __name__ == "__main__":
    main()
