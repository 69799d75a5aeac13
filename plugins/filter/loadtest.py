# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the loadtest role.

loadtest_targets
    Where each load test run sends its requests: the URL and Host header of a route of the data model (the
    host-based route, BBR, the InferencePool route) through the Gateway, or the model's Service directly.
"""

from __future__ import annotations

import ipaddress
import json

from ansible.errors import AnsibleFilterError

ROUTES = ("host", "bbr", "pool", "service")


def _plain(obj):
    return json.loads(json.dumps(obj, default=str))


def _authority(address, port, default_port):
    """``address[:port]`` (IPv6 in brackets), the port left out when it is the scheme's default."""
    try:
        if ipaddress.ip_address(address).version == 6:
            address = "[%s]" % address
    except ValueError:
        pass  # a host name
    return address if not port or int(port) == default_port else "%s:%d" % (address, int(port))


def loadtest_targets(model, gateway, routes, gateway_address="", scheme="", port=None, service=None,
                     service_url="", hosts=None):
    """``[{"name", "route", "url", "host"}]``, one per route in ``routes`` (the A/B pair, or one)."""
    model, gateway = _plain(model or {}), _plain(gateway or {})
    hosts = dict(_plain(gateway.get("hosts") or {}), **_plain(hosts or {}))
    routes = [r for r in _plain(routes or []) if r]
    if not routes:
        raise AnsibleFilterError("loadtest_targets: no route given (one of %s)" % ", ".join(ROUTES))
    if len(set(routes)) != len(routes):
        raise AnsibleFilterError("loadtest_targets: the A/B comparison needs two different routes, got %s"
                                 % " and ".join(routes))
    scheme = scheme or ("https" if not gateway.get("http", True) or gateway.get("redirect_http_to_https")
                        else "http")
    if scheme not in ("http", "https"):
        raise AnsibleFilterError("loadtest_targets: the scheme must be http or https, got %r" % scheme)
    out = []
    for route in routes:
        if route not in ROUTES:
            raise AnsibleFilterError("loadtest_targets: unknown route %r (one of %s)" % (route, ", ".join(ROUTES)))
        if route == "service":
            url = service_url
            if not url:
                cluster_ip = ((service or {}).get("spec") or {}).get("clusterIP")
                if not cluster_ip or cluster_ip == "None":
                    raise AnsibleFilterError(
                        "loadtest_targets: the Service %s has no ClusterIP; set loadtest_service_url"
                        % model.get("service_name"))
                url = "http://%s" % _authority(cluster_ip, model.get("port") or 8000, 80)
            out.append({"name": route, "route": route, "url": url.rstrip("/"), "host": None})
            continue
        if not gateway_address:
            raise AnsibleFilterError(
                "loadtest_targets: the Gateway %s has no address (status.addresses is empty: is it programmed?); "
                "set loadtest_gateway_address" % gateway.get("name"))
        if route == "host":
            host = model.get("host")
            if not host:
                raise AnsibleFilterError("loadtest_targets: model %s has no host, so the host-based route does not "
                                         "serve it; use the bbr or pool route" % model.get("name"))
        else:
            host = hosts.get("bbr" if route == "bbr" else "api")
            if not host:
                raise AnsibleFilterError("loadtest_targets: no host name for the %s route (infgw_gateway.hosts)"
                                         % route)
        url = "%s://%s" % (scheme, _authority(gateway_address, port, 443 if scheme == "https" else 80))
        out.append({"name": route, "route": route, "url": url, "host": host})
    return out


class FilterModule(object):
    def filters(self):
        return {"loadtest_targets": loadtest_targets}
