# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wait of the gateway_ready module: its argument spec, the HTTP probes through the gateway, and the loop that
watches the Gateway, its routes, InferencePools and GKE policies until every gate of ``_gateway_status`` passes.

``GatewayReadiness(logger, dynamic_client, params, check_mode, start).run()`` returns the module's result or raises
:class:`GatewayWaitError`; ``check_params`` names the first invalid parameter. Private to this collection.
"""

from __future__ import annotations

import copy
import datetime
import json
import socket
import ssl
import time

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gateway_status import (
    GATE_PROBES,
    GATEWAY_GROUP,
    GKE_NETWORKING_GROUP,
    GKE_POLICY_KINDS,
    INFERENCE_GROUPS,
    Blocker,
    GateResult,
    GateTracker,
    blockers_of,
    evaluate,
    make_gateway_ref,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._http import (
    HttpReadTimeout,
    HttpTransportError,
    KeepAliveSession,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._k8s_waiter import (
    WatchSet,
    find_resource,
)

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
BODY_EXCERPT = 512

PROBE_SPEC = dict(
    name=dict(type="str"),
    scheme=dict(type="str", choices=["http", "https"], default="http"),
    host=dict(type="str"),
    port=dict(type="int"),
    path=dict(type="str", default="/"),
    method=dict(type="str", default="GET"),
    headers=dict(type="dict", default={}),
    body=dict(type="raw"),
    status_code=dict(type="list", elements="int", default=[200]),
    response_headers=dict(type="dict", default={}),
    response_contains=dict(type="str"),
    validate_certs=dict(type="bool", default=True),
    request_timeout=dict(type="float", default=10),
)

MODULE_ARG_SPEC = dict(
    name=dict(type="str", required=True),
    namespace=dict(type="str", default="default"),
    routes=dict(type="list", elements="str"),
    route_namespaces=dict(type="list", elements="str"),
    check_inference_pools=dict(type="bool", default=True),
    check_policies=dict(type="bool", default=True),
    policy_kinds=dict(type="list", elements="str", default=list(GKE_POLICY_KINDS)),
    timeout=dict(type="int", default=900),
    probes=dict(type="list", elements="dict", default=[], options=PROBE_SPEC),
    probe_address=dict(type="str"),
    probe_interval=dict(type="float", default=5),
    probe_success_threshold=dict(type="int", default=1),
    log_path=dict(type="path"),
)


# --------------------------------------------------------------------------- HTTP probes


def parse_address(value):
    """``host``, ``host:port`` or ``[v6]:port`` -> (host, port or None)."""
    if not value:
        return None, None
    value = value.strip()
    if value.startswith("["):
        host, _sep, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, None
    return host, (int(port) if port else None)


def probe_defaults(probe):
    """Fill the defaults of a probe dict (as the argument spec would)."""
    p = dict((k, copy.deepcopy(v.get("default"))) for k, v in PROBE_SPEC.items())
    p.update(dict((k, v) for k, v in (probe or {}).items() if v is not None))
    p["method"] = (p.get("method") or "GET").upper()
    if not p.get("port"):
        p["port"] = 443 if p["scheme"] == "https" else 80
    return p


def probe_label(probe, address=None):
    if probe.get("name"):
        return probe["name"]
    return "%s %s" % (probe["method"], probe_url(probe, address))


def probe_url(probe, address=None):
    host = probe.get("host") or address or "<gateway address>"
    default_port = 443 if probe["scheme"] == "https" else 80
    hostport = host if probe["port"] == default_port else "%s:%s" % (host, probe["port"])
    return "%s://%s%s" % (probe["scheme"], hostport, probe.get("path") or "/")


def _encode_body(probe, headers):
    body = probe.get("body")
    if body is None:
        return None
    if isinstance(body, (dict, list)):
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        return json.dumps(body).encode("utf-8")
    if isinstance(body, bytes):
        return body
    return str(body).encode("utf-8")


def run_probe(probe, address, connect_port=None, timeout_cap=None):
    """Send one probe request; return a dict describing the outcome (``ok``, ``error``...)."""
    probe = probe_defaults(probe)
    port = connect_port or probe["port"]
    host = probe.get("host") or address
    default_port = 443 if probe["scheme"] == "https" else 80
    host_header = host if probe["port"] == default_port else "%s:%s" % (host, probe["port"])
    timeout = float(probe["request_timeout"])
    if timeout_cap is not None:
        timeout = max(0.5, min(timeout, timeout_cap))
    result = {
        "name": probe_label(probe, address),
        "url": probe_url(probe, address),
        "connect": "%s:%s" % (address, port),
        "method": probe["method"],
        "ok": False,
        "status": None,
        "error": None,
        "headers": {},
        "body": None,
    }
    headers = {"Host": host_header, "User-Agent": "gke_ai.inference_gateway.gateway_ready", "Connection": "close"}
    for k, v in (probe.get("headers") or {}).items():
        headers[str(k)] = str(v)
    body = _encode_body(probe, headers)
    ctx = None
    if probe["scheme"] == "https":
        ctx = ssl.create_default_context()
        if not probe["validate_certs"]:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    # to address:port, with the probe's host in the Host header and as TLS server name (curl --resolve)
    url_host = "[%s]" % host if ":" in host else host
    session = KeepAliveSession(tls_context=ctx, resolve={(host, port): address})
    try:
        resp = session.request(probe["method"], "%s://%s:%s%s" % (probe["scheme"], url_host, port,
                                                                  probe.get("path") or "/"),
                               data=body, headers=headers, timeout=timeout)
    except HttpTransportError as e:
        timed_out = isinstance(e, HttpReadTimeout) or isinstance(e.__cause__, (socket.timeout, TimeoutError))
        result["error"] = "timed out after %.1fs" % timeout if timed_out else str(e)
        return result
    finally:
        session.close()
    text = resp.content[:65536].decode("utf-8", "replace")
    result["status"] = resp.status_code
    rheaders = {}
    for k, v in resp.headers.items():
        k = k.lower()
        rheaders[k] = v if k not in rheaders else rheaders[k] + ", " + v
    result["headers"] = rheaders
    result["body"] = text[:BODY_EXCERPT]
    problems = []
    if resp.status_code not in probe["status_code"]:
        problems.append("status %s, expected %s" % (resp.status_code,
                                                    " or ".join(str(c) for c in probe["status_code"])))
    for name, expected in (probe.get("response_headers") or {}).items():
        values = resp.headers.get_all(name) or []
        if not values:
            problems.append("header %s missing, expected %r" % (name, str(expected)))
        elif str(expected) not in [v.strip() for v in values]:
            problems.append("header %s is %r, expected %r" % (name, ", ".join(values), str(expected)))
    if probe.get("response_contains") and probe["response_contains"] not in text:
        problems.append("body does not contain %r" % probe["response_contains"])
    if problems:
        excerpt = " ".join(text.split())[:160]
        result["error"] = "; ".join(problems) + ("; body: %s" % excerpt if excerpt else "")
    else:
        result["ok"] = True
    return result


class ProbeSet(object):
    """Retry state of all probes: attempts, consecutive successes, when each passed."""

    def __init__(self, probes, interval=5.0, success_threshold=1, start=None, clock=time.monotonic):
        self.probes = [probe_defaults(p) for p in probes or []]
        self.interval = float(interval)
        self.threshold = max(1, int(success_threshold))
        self.clock = clock
        self.start = clock() if start is None else start
        self.state = [{"attempts": 0, "streak": 0, "ok": False, "skipped": False, "seconds": None, "last": None}
                      for _p in self.probes]
        self._next = None
        self.address = None
        self.connect_port = None

    def __len__(self):
        return len(self.probes)

    @property
    def ready(self):
        return all(s["ok"] or s["skipped"] for s in self.state)

    @property
    def attempted(self):
        return any(s["attempts"] for s in self.state)

    def due(self, now=None):
        now = self.clock() if now is None else now
        return self._next is None or now >= self._next

    def seconds_until_due(self, now=None):
        now = self.clock() if now is None else now
        return 0.0 if self._next is None else max(0.0, self._next - now)

    def run(self, address, connect_port=None, deadline=None, only_safe=False):
        """Run every probe that has not passed yet, once. Returns a list of (label, outcome text)."""
        self.address, self.connect_port = address, connect_port
        changes = []
        for probe, st in zip(self.probes, self.state):
            if st["ok"] or st["skipped"]:
                continue
            if only_safe and probe["method"] not in SAFE_METHODS:
                st["skipped"] = True
                changes.append((probe_label(probe, address), "skipped in check mode (%s is not read-only)" % probe["method"]))
                continue
            cap = None if deadline is None else max(0.5, deadline - self.clock())
            res = run_probe(probe, address, connect_port, timeout_cap=cap)
            st["attempts"] += 1
            previous = st["last"]
            st["last"] = res
            if res["ok"]:
                st["streak"] += 1
                if st["streak"] >= self.threshold:
                    st["ok"] = True
                    st["seconds"] = round(self.clock() - self.start, 3)
                    changes.append((res["name"], "passed after %d attempt(s): HTTP %s" % (st["attempts"], res["status"])))
                else:
                    changes.append((res["name"], "success %d/%d" % (st["streak"], self.threshold)))
            else:
                st["streak"] = 0
                if previous is None or previous.get("error") != res["error"]:
                    changes.append((res["name"], "attempt %d: %s" % (st["attempts"], res["error"])))
        self._next = self.clock() + self.interval
        return changes

    def gate(self, waiting_for=None):
        if not self.probes:
            return GateResult(True, applicable=False, notes=["no probes configured"])
        blockers = []
        notes = []
        for probe, st in zip(self.probes, self.state):
            label = probe_label(probe, self.address)
            if st["skipped"]:
                notes.append("probe %s skipped in check mode" % label)
                continue
            if st["ok"]:
                continue
            if st["last"] is None:
                blockers.append(Blocker("Probe", None, label, detail="not sent yet%s" % (
                    " (waiting for %s)" % waiting_for if waiting_for else "")))
            else:
                last = st["last"]
                blockers.append(Blocker("Probe", None, label, detail="%s %s via %s after %d attempt(s): %s" % (
                    last["method"], last["url"], last["connect"], st["attempts"], last["error"])))
        return GateResult(not blockers, blockers, notes=notes)

    def results(self):
        out = []
        for probe, st in zip(self.probes, self.state):
            last = st["last"] or {}
            out.append({
                "name": probe_label(probe, self.address),
                "url": last.get("url") or probe_url(probe, self.address),
                "connect": last.get("connect"),
                "ok": st["ok"],
                "skipped": st["skipped"],
                "attempts": st["attempts"],
                "seconds": st["seconds"],
                "status": last.get("status"),
                "error": last.get("error"),
                "headers": last.get("headers") or {},
                "body": last.get("body"),
            })
        return out


# --------------------------------------------------------------------------- orchestration


def _split_ref(item, default_namespace):
    if "/" in item:
        ns, name = item.split("/", 1)
        return ns, name
    return default_namespace, item


class GatewayReadiness(object):
    def __init__(self, module, dyn_client, params, check_mode, start):
        self.module = module
        self.client = dyn_client
        self.params = params
        self.check_mode = check_mode
        self.start = start
        self.deadline = start + params["timeout"]
        self.ns = params["namespace"]
        self.ref = make_gateway_ref(self.ns, params["name"])
        self.tracker = GateTracker(start)
        self.warnings = []
        self._logger = getattr(module, "_module", module)
        self.explicit_routes = [_split_ref(r, self.ns) for r in params.get("routes") or []] or None
        host, port = parse_address(params.get("probe_address"))
        self.probe_host, self.probe_port = host, port
        self.probes = ProbeSet(params.get("probes") or [], params["probe_interval"],
                               params["probe_success_threshold"], start=start)
        self.watches = WatchSet(dyn_client, self.deadline, watch=not check_mode, on_error=self._watch_error)
        self.cluster_wide = False

    # -- logging
    def log(self, lines):
        for line in lines:
            try:
                self._logger.log("gateway_ready %s/%s %s" % (self.ns, self.params["name"], line))
            except Exception:  # pragma: no cover - syslog may be unavailable
                pass
            if self.params.get("log_path"):
                try:
                    with open(self.params["log_path"], "a") as f:
                        f.write("%s %s/%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S%z"), self.ns, self.params["name"], line))
                except (IOError, OSError) as e:
                    self.warnings.append("cannot write log_path %s: %s" % (self.params["log_path"], e))
                    self.params["log_path"] = None

    def _watch_error(self, scope, text):
        self.log([self.tracker.note(time.monotonic(), "watch %s: %s (retrying)" % (scope, text))])

    # -- discovery
    def discover(self):
        self.gw_res = find_resource(self.client, "Gateway", group=GATEWAY_GROUP)
        if self.gw_res is None:
            raise GatewayWaitError("The Gateway API (%s, kind Gateway) is not served by this cluster; "
                                   "install the Gateway API CRDs (GKE: enable the Gateway API)." % GATEWAY_GROUP)
        self.route_res = find_resource(self.client, "HTTPRoute", group=GATEWAY_GROUP)
        self.pool_res = {}
        if self.params["check_inference_pools"]:
            for group in INFERENCE_GROUPS:
                res = find_resource(self.client, "InferencePool", group=group)
                if res is not None:
                    self.pool_res[group] = res
        self.policy_res = {}
        if self.params["check_policies"]:
            for kind in self.params["policy_kinds"]:
                res = find_resource(self.client, kind, group=GKE_NETWORKING_GROUP)
                if res is not None:
                    self.policy_res[kind] = res
        return {
            "gateway": self.gw_res.group_version,
            "httproute": self.route_res.group_version if self.route_res else None,
            "inference_pools": [r.group_version for r in self.pool_res.values()],
            "policies": dict((k, r.group_version) for k, r in self.policy_res.items()),
        }

    def open_watches(self):
        self.watches.ensure(self.gw_res, self.ns, self.params["name"])
        err = self.watches.scope_error(self.gw_res, self.ns, self.params["name"])
        if err:
            raise GatewayWaitError("Cannot read Gateway %s/%s: %s" % (self.ns, self.params["name"], err))
        if self.route_res is not None:
            if self.explicit_routes:
                namespaces = sorted(set(ns for ns, _n in self.explicit_routes))
            else:
                namespaces = self.params.get("route_namespaces") or [self.ns]
            if "*" in namespaces:
                namespaces = [None]
                self.cluster_wide = True  # pools and policies too: one watch per kind, not per namespace
            for ns in namespaces:
                self.watches.ensure(self.route_res, ns)

    # -- evaluation
    def snapshot(self):
        report = None
        for _round in range(5):
            gw = self.watches.get(self.gw_res, self.ns, self.params["name"])
            routes = self.watches.objects(self.route_res) if self.route_res is not None else []
            pools = {}
            for group, res in self.pool_res.items():
                for obj in self.watches.objects(res):
                    m = obj.get("metadata") or {}
                    pools[(group, m.get("namespace"), m.get("name"))] = obj
            policies = []
            for res in self.policy_res.values():
                policies.extend(self.watches.objects(res))
            report = evaluate(
                gw, self.ref, routes, pools, policies,
                explicit_routes=self.explicit_routes,
                routes_served=self.route_res is not None,
                pool_groups_served=set(self.pool_res),
                check_pools=self.params["check_inference_pools"],
                check_policies=self.params["check_policies"],
            )
            added = False
            for group, namespaces in report["needs"]["pools"].items():
                for ns in namespaces:
                    added = self.watches.ensure(self.pool_res[group], None if self.cluster_wide else ns) or added
            for ns in report["needs"]["policy_namespaces"]:
                for res in self.policy_res.values():
                    added = self.watches.ensure(res, None if self.cluster_wide else ns) or added
            if not added:
                break
        return report

    def run(self):
        api_versions = self.discover()
        self.open_watches()
        probe_safe_only = self.check_mode
        report = None
        while True:
            report = self.snapshot()
            gates = dict(report["gates"])
            now = time.monotonic()
            status_ready = all(g.ready for g in gates.values())
            address = self.probe_host or report["address"]
            if len(self.probes):
                if status_ready and address and self.probes.due(now):
                    changes = self.probes.run(address, self.probe_port, self.deadline, only_safe=probe_safe_only)
                    now = time.monotonic()
                    self.log([self.tracker.note(now, "probe %s: %s" % c) for c in changes])
                waiting_for = None if status_ready else "the status gates"
                gates[GATE_PROBES] = self.probes.gate(waiting_for)
            self.log(self.tracker.update(gates, now))
            ready = all(g.ready for g in gates.values())
            if ready or self.check_mode or now >= self.deadline:
                break
            wait = self.deadline - now
            if len(self.probes) and status_ready:
                wait = min(wait, self.probes.seconds_until_due(now))
            self.watches.wait(wait)
        self.watches.close()
        for scope, err in sorted(self.watches.failed_scopes().items()):
            self.warnings.append("could not list %s (treated as absent): %s" % (scope, err))
        for pool in report["inference_pools"]:
            if pool.get("served") is False:
                self.warnings.append("InferencePool %s/%s uses API group %s, which this cluster does not serve; "
                                     "the pool was not checked" % (pool["namespace"], pool["name"], pool["group"]))
        summary = self.tracker.summary()
        gate_out = {}
        for name, gate in gates.items():
            entry = gate.to_dict()
            entry["seconds"] = summary.get(name, {}).get("seconds") if gate.state != "blocked" else None
            entry.pop("ready", None)
            gate_out[name] = entry
        finished_mono, finished_wall = time.monotonic(), time.time()
        result = dict(
            changed=False,
            ready=ready,
            address=report["address"],
            addresses=report["addresses"],
            elapsed=round(finished_mono - self.start, 3),
            started_at=_rfc3339(finished_wall - (finished_mono - self.start)),
            finished_at=_rfc3339(finished_wall),
            gates=gate_out,
            blockers=blockers_of(gates),
            wait_log=list(self.tracker.log),
            gateway=report["gateway"],
            routes=report["routes"],
            inference_pools=report["inference_pools"],
            policies=report["policies"],
            probes=self.probes.results(),
            api_versions=api_versions,
        )
        return result


class GatewayWaitError(Exception):
    """The wait cannot go on (the Gateway API is not served, the Gateway cannot be read)."""


def _rfc3339(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_params(params):
    """The first problem with the module's parameters, or None."""
    if params["timeout"] < 0:
        return "timeout must be >= 0"
    if params["probe_interval"] <= 0:
        return "probe_interval must be > 0"
    if params["probe_success_threshold"] < 1:
        return "probe_success_threshold must be >= 1"
    for item in params.get("routes") or []:
        ns, name = _split_ref(item, params["namespace"])
        if not ns or not name or "/" in name:
            return "routes: %r is not 'name' or 'namespace/name'" % item
    try:
        parse_address(params.get("probe_address"))
    except ValueError:
        return "probe_address: %r is not host, host:port or [v6]:port" % params["probe_address"]
    return None
