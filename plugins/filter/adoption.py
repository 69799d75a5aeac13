# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""unadopted_pool_objects: the InferencePools and objectives of a namespace that the data model does not name
(made by hand, for instance by the walkthrough under other names), each with the way to migrate."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

RELEASE_ANNOTATION = "meta.helm.sh/release-name"


def _pool_of(objective):
    spec = objective.get("spec") or {}
    return (spec.get("poolRef") or {}).get("name")


def unadopted_pool_objects(selected, pools, objectives, namespace, objective_kind):
    """One text per object the data model does not name: an InferencePool (with the helm release that made it)
    whose name is none of ``pools``, and an objective (InferenceObjective or InferenceModel) whose name is none of
    ``objectives`` that targets one of ``pools`` (two objectives of one model on one pool: the older one wins on
    v0.4.0). ``selected`` is k8s_converge's RV(selected): [pools as read, objectives as read], or [] when nothing was
    read."""
    if not isinstance(selected, list) or len(selected) > 2:
        raise AnsibleFilterError("unadopted_pool_objects expects [pools, objectives] as k8s_converge selects them")
    live_pools, live_objectives = (list(selected) + [[], []])[:2]  # nothing selected (check mode, no CRDs): none
    pools, objectives = set(pools), set(objectives)
    out = []
    for pool in sorted(live_pools or [], key=lambda o: o["metadata"]["name"]):
        name = pool["metadata"]["name"]
        if name in pools:
            continue
        release = (pool["metadata"].get("annotations") or {}).get(RELEASE_ANNOTATION)
        out.append("InferencePool %s/%s is not in the data model%s: routes to it keep their own endpoint picker; "
                   "once the routes point to the data model's pools (%s), remove it with %s"
                   % (namespace, name, " (helm release %s)" % release if release else "",
                      ", ".join(sorted(pools)) or "none",
                      "`helm uninstall %s -n %s`" % (release, namespace) if release
                      else "`kubectl delete inferencepool -n %s %s`" % (namespace, name)))
    for objective in sorted(live_objectives or [], key=lambda o: o["metadata"]["name"]):
        name, pool = objective["metadata"]["name"], _pool_of(objective)
        if name in objectives or pool not in pools:
            continue
        model = (objective.get("spec") or {}).get("modelName")
        out.append("%s %s/%s is not in the data model but targets its pool %s%s: remove it with "
                   "`kubectl delete %s -n %s %s`"
                   % (objective_kind, namespace, name, pool, " (model %s)" % model if model else "",
                      objective_kind.lower(), namespace, name))
    return out


class FilterModule(object):
    def filters(self):
        return {"unadopted_pool_objects": unadopted_pool_objects}
