# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters on GIE version profiles (module_utils/_profiles.py does the work).

chart_value_problems
    Chart values the profile's chart is known to mishandle (its known bugs), one text each.
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._profiles import (
    chart_value_problems as _chart_value_problems)


def _plain(obj):
    return json.loads(json.dumps(obj, default=str))


def chart_value_problems(values, profile, where="values"):
    if not isinstance(values, dict) or not isinstance(profile, dict):
        raise AnsibleFilterError("chart_value_problems expects the chart values and the profile as dicts")
    return _chart_value_problems(_plain(values), _plain(profile), str(where))


class FilterModule:
    def filters(self):
        return {"chart_value_problems": chart_value_problems}
