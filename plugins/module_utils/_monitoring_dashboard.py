# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""A Cloud Monitoring dashboard (monitoring v1 ``projects.dashboards``) for ``converge`` (the
``gke_ai.inference_gateway.monitoring_dashboard`` module is its documentation and ``main()``).

The API replaces a dashboard as a whole (``patch`` takes the full definition) and guards it with an etag, so the
resource compares the whole definition the task gives with the one stored, in proto3's JSON form (fields at their
default value - ``xPos: 0``, ``false``, ``""``, ``[]`` - are what the API leaves out of its answers), and sends the
read etag with the update: a dashboard changed in between (``409 ABORTED``) is read, compared and written again.
"""

from __future__ import annotations

import copy
import re

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    Change,
    GcpResource,
    Plan,
)

DASHBOARD_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
LAYOUTS = ("mosaicLayout", "gridLayout", "rowLayout", "columnLayout")
DEFINITION_KEYS = LAYOUTS + ("dashboardFilters", "annotations")
CONSOLE_URL = "https://console.cloud.google.com/monitoring/dashboards/builder/%s?project=%s"


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        display_name=dict(type="str"),
        definition=dict(type="dict"),
        labels=dict(type="dict", default={}),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )


def dashboard_path(project, dashboard_id=None):
    path = "v1/projects/%s/dashboards" % project
    return "%s/%s" % (path, dashboard_id) if dashboard_id else path


def console_url(project, dashboard_id):
    """The dashboard in the Google Cloud console."""
    return CONSOLE_URL % (dashboard_id, project)


def validate_params(params):
    problems = []
    if not DASHBOARD_ID.match(params.get("name") or ""):
        problems.append("name %r: a dashboard id is 1 to 100 letters, digits, '-' and '_'" % params.get("name"))
    if params["state"] != "present":
        return problems
    if not params.get("display_name"):
        problems.append("display_name is required with state=present")
    definition = params.get("definition") or {}
    unknown = sorted(set(definition) - set(DEFINITION_KEYS))
    if unknown:
        problems.append("definition: unknown key(s) %s (it holds %s; name, displayName, labels and etag are options "
                        "of their own or the API's)" % (", ".join(unknown), ", ".join(DEFINITION_KEYS)))
    layouts = [k for k in LAYOUTS if definition.get(k) is not None]
    if len(layouts) != 1:
        problems.append("definition needs exactly one layout of %s (has %s)"
                        % (", ".join(LAYOUTS), ", ".join(layouts) or "none"))
    for key, value in (params.get("labels") or {}).items():
        if not isinstance(value, str):
            problems.append("labels.%s: label values are strings" % key)
    return problems


def _is_default(value):
    if value is None or value is False or value == "" or value == []:
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return True
    return isinstance(value, str) and value.endswith("_UNSPECIFIED")


def canonical(value, key=None):
    """``value`` as proto3's JSON writes it: defaults left out (empty messages are kept: ``blank: {}`` is set),
    64-bit integers as strings compared by value, empty maps (``labels``) left out."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if _is_default(v):
                continue
            v = canonical(v, k)
            if k == "labels" and v == {}:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def desired_dashboard(params):
    body = {"displayName": params["display_name"]}
    body.update(copy.deepcopy(params.get("definition") or {}))
    if params.get("labels"):
        body["labels"] = dict(params["labels"])
    return body


def managed_view(dashboard):
    """The fields this module manages, canonical (the diff and the comparison)."""
    if dashboard is None:
        return None
    keep = ("displayName", "labels") + DEFINITION_KEYS
    return canonical({k: v for k, v in dashboard.items() if k in keep})


def dashboard_id_of(dashboard):
    return (dashboard.get("name") or "").rsplit("/", 1)[-1]


class Dashboard(GcpResource):
    service = "monitoring"
    operation_style = None  # the dashboards API answers at once
    conflict_statuses = (409,)  # ABORTED: changed since read (ALREADY_EXISTS: created meanwhile) -> read, plan again
    conflict_retries = 2
    result_key = "dashboard"

    def path(self, name=True):
        return dashboard_path(self.project, self.params["name"] if name else None)

    def label(self):
        return "dashboard %s" % self.params["name"]

    def validate(self):
        return validate_params(self.params)

    def read(self):
        return self.client.get("monitoring", self.path(), action="read %s" % self.label(), resource=self.label())

    def plan(self, current):
        label = self.label()
        if self.absent:
            return self.deletion_plan(current, Change("delete", "DELETE", self.path(), description="delete %s" % label))
        desired = desired_dashboard(self.params)
        after = managed_view(desired)
        if current is None:
            body = dict(desired, name="projects/%s/dashboards/%s" % (self.project, self.params["name"]))
            return Plan([Change("create", "POST", self.path(name=False), body, description="create %s" % label,
                                resource="project %s" % self.project)], {}, after)
        before = managed_view(current)
        if before == after:
            return Plan([], before, after)
        body = dict(desired, name=current.get("name"), etag=current.get("etag"))
        return Plan([Change("update", "PATCH", self.path(), body, description="update %s" % label)], before, after)

    def after_changes(self, current, answers):
        if self.absent:
            return None
        return answers[-1] if answers and isinstance(answers[-1], dict) and answers[-1].get("name") else self.read()

    def result(self, final, plan, attempts):
        out = {"dashboard": final or {}}
        out["url"] = console_url(self.project, self.params["name"]) if not self.absent else None
        return out
