# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of playbooks/upgrade.yml (module_utils/_upgrade.py does the work).

upgrade_plan
    From the lists one k8s_converge step read, what is deployed and what is left to reach the target profile.
upgrade_probe_routes
    The temporary HTTPRoutes that reach the target pools before any user traffic does.
upgrade_probe_requests
    The pool routes' probes, sent through those probe routes.
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._upgrade import (
    UpgradeError, detect, plan, probe_requests, probe_routes)


def _plain(obj):
    return json.loads(json.dumps(obj, default=str))


def upgrade_plan(selected, namespace, target, profiles, models, steps=(50, 100), delete_crds=False):
    try:
        profiles = _plain(profiles)
        detected = detect(str(namespace), _plain(selected), profiles)
        result = plan(detected, str(target), profiles, _plain(models), [int(s) for s in steps], bool(delete_crds))
    except (UpgradeError, KeyError, TypeError, ValueError) as e:
        raise AnsibleFilterError("upgrade_plan: %s" % e)
    result["detected"] = detected
    return result


def upgrade_probe_routes(models, target, group, namespace, parent_refs, hostname, model_header, labels,
                         selected_header=""):
    return probe_routes(_plain(models), str(target), str(group), str(namespace), _plain(parent_refs), str(hostname),
                        str(model_header), _plain(labels), str(selected_header or ""))


def upgrade_probe_requests(pool_probes, target, selected_header=""):
    return probe_requests(_plain(pool_probes), str(target), str(selected_header or ""))


class FilterModule:
    def filters(self):
        return {"upgrade_plan": upgrade_plan, "upgrade_probe_routes": upgrade_probe_routes,
                "upgrade_probe_requests": upgrade_probe_requests}
