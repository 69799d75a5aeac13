# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""status_report: the report of playbooks/status.yml from what it read (plugins/module_utils/_status_report.py)."""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _status_report


def status_report(inputs):
    if not isinstance(inputs, dict):
        raise AnsibleFilterError("status_report takes a dictionary of what the playbook read, got %s"
                                 % type(inputs).__name__)
    # Plain dicts and lists: Ansible hands filters lazy and tagged containers.
    return _status_report.build(json.loads(json.dumps(inputs, default=str)))


class FilterModule(object):
    def filters(self):
        return {"status_report": status_report}
