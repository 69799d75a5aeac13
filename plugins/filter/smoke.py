# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn the data model into requests through the gateway (module_utils/_smoke.py does the work).

smoke_probes
    One request per route the collection creates: each model's host route, BBR route and pool route.
ready_probes
    Those requests as gateway_ready's probes option takes them (site.yml's final wait).
chat_ui_probe
    The request the chat UI's backend makes, read from its Deployment.
backend_health_lines
    The status report's lines from a load balancer's backend health report.
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._smoke import (
    SmokeError, backend_health_lines as _backend_health_lines, chat_ui_probe as _chat_ui_probe, ready_probes as
    _ready_probes, route_probes)


def _plain(obj):
    """Plain dicts, lists and scalars (Ansible hands filters tagged and lazy container subclasses)."""
    return json.loads(json.dumps(obj, default=str))


def _wrap(fn, *args, **kwargs):
    try:
        return fn(*[_plain(a) for a in args], **kwargs)
    except SmokeError as e:
        raise AnsibleFilterError(str(e))


def smoke_probes(models, gateway, prompt=None, max_tokens=None, selected_header="x-infgw-selected", bbr=True,
                 pools=True, cloud_armor=None):
    kwargs = {"selected_header": selected_header, "bbr": bool(bbr), "pools": bool(pools),
              "cloud_armor": _plain(cloud_armor) if cloud_armor else None}
    if prompt:
        kwargs["prompt"] = prompt
    if max_tokens:
        kwargs["max_tokens"] = int(max_tokens)
    return _wrap(route_probes, models, gateway, **kwargs)


def ready_probes(probes):
    return _wrap(_ready_probes, probes)


def chat_ui_probe(deployment):
    return _wrap(_chat_ui_probe, deployment)


def backend_health_lines(report, namespace=None):
    return _wrap(_backend_health_lines, report, namespace=namespace)


class FilterModule(object):
    def filters(self):
        return {
            "smoke_probes": smoke_probes,
            "ready_probes": ready_probes,
            "chat_ui_probe": chat_ui_probe,
            "backend_health_lines": backend_health_lines,
        }
