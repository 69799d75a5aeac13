# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smoke requests through the gateway: one per route the collection creates, and what their answers mean.

Pure functions (which requests to send for a data model, how to judge an answer, how to report it) and one
function that sends them (``run``) over ``_http.KeepAliveSession`` with curl-style ``--resolve``. Used by the
``gateway_smoke`` module, the ``smoke_probes`` filters (``gateway_ready``'s probes in site.yml's final wait) and
the status report's backend health lines.
"""

from __future__ import annotations

import json
import time

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._http import (
    HttpReadTimeout, HttpTransportError, KeepAliveSession)

DEFAULT_PROMPT = "Say hello in one short sentence."
DEFAULT_MAX_TOKENS = 8
SELECTED_HEADER = "x-infgw-selected"
# Local-only response headers of the local environment's load balancer simulator (hack/dataplane); GKE sends
# nothing like them, so on GKE the pod is reported as unknown.
LOCAL_POD_HEADER = "x-infgw-local-pod"
LOCAL_ENDPOINT_HEADER = "x-infgw-local-endpoint"
# gateway_ready's probe options: what ready_probes keeps of a smoke probe.
READY_PROBE_KEYS = ("name", "scheme", "host", "port", "path", "method", "headers", "body", "status_code",
                    "response_headers", "response_contains", "validate_certs", "request_timeout")


class SmokeError(Exception):
    """Bad input to the smoke helpers (converted to a module or filter failure at the edge)."""


def gateway_scheme(gateway):
    """The scheme and port requests take: HTTP unless the gateway has no HTTP listener or redirects it."""
    if gateway.get("http", True) and not gateway.get("redirect_http_to_https", False):
        return "http", 80
    if gateway.get("https", True):
        return "https", 443
    raise SmokeError("the gateway has neither an HTTP nor an HTTPS listener")


def _completion(model, prompt, max_tokens):
    return {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}


def route_probes(models, gateway, prompt=DEFAULT_PROMPT, max_tokens=DEFAULT_MAX_TOKENS, path="/v1/completions",
                 selected_header=SELECTED_HEADER, bbr=True, pools=True, cloud_armor=None):
    """One request per route, from the resolved data model (infgw_models_resolved, infgw_gateway_resolved).

    - each model's rule of the host-based route: its host, its model in the body;
    - each model's BBR route (bbr-<short_name>): the BBR hostname, the model only in the body (BBR copies it into
      the X-Gateway-Model-Name header the route matches);
    - each model's pool route (infp-<short_name>): the API hostname, the model in the body, the endpoint picker
      choosing the pod.
    Every probe expects status 200 and an answer naming its model. A pool that Cloud Armor protects
    (``cloud_armor``: infgw_cloud_armor_resolved, when enabled) may also answer 403: whether the client is in the
    allow-list is the policy's business, not the route's; such a probe carries ``protected_by``.
    """
    if not isinstance(models, list) or not models:
        raise SmokeError("no models: pass infgw_models_resolved (a non-empty list)")
    if not isinstance(gateway, dict):
        raise SmokeError("gateway must be infgw_gateway_resolved (a dict)")
    scheme, port = gateway_scheme(gateway)
    hosts = gateway.get("hosts") or {}
    armor = cloud_armor if isinstance(cloud_armor, dict) and cloud_armor.get("enabled") else {}
    probes = []

    def probe(kind, route, host, model, label, protected_by=None):
        p = {"name": "%s %s" % (label, host), "kind": kind, "route": route, "scheme": scheme, "host": host,
             "port": port, "path": path, "method": "POST", "body": _completion(model, prompt, max_tokens),
             "status_code": [200], "expected_model": model, "response_contains": '"model":"%s"' % model}
        if selected_header and kind in ("bbr", "pool"):
            p["response_headers"] = {selected_header: route}
        if protected_by:
            p["protected_by"] = protected_by
            p["status_code"] = [200, 403]
        probes.append(p)

    for m in models:
        for key in ("name", "model"):
            if not m.get(key):
                raise SmokeError("model entry without %s: %r" % (key, m))
    for m in models:
        if m.get("host"):
            probe("host", gateway.get("host_route") or "host route", m["host"], m["model"],
                  "host route %s:" % (gateway.get("host_route") or ""))
    if bbr and hosts.get("bbr"):
        for m in models:
            route = m.get("bbr_route_name") or "bbr-" + (m.get("short_name") or m["name"])
            probe("bbr", route, hosts["bbr"], m["model"], "BBR route %s:" % route)
    if pools and hosts.get("api"):
        for m in models:
            route = m.get("infp_route_name") or "infp-" + (m.get("short_name") or m["name"])
            policy = armor.get("policy") if m["name"] in (armor.get("pools") or []) else None
            probe("pool", route, hosts["api"], m["model"], "pool route %s:" % route, protected_by=policy)
    return probes


def ready_probes(probes):
    """The probes as gateway_ready takes them (its option names only). Routes behind Cloud Armor are left out: a
    wait cannot tell an allow-list that excludes the controller from a broken route."""
    return [dict((k, v) for k, v in p.items() if k in READY_PROBE_KEYS) for p in probes if not p.get("protected_by")]


def _env(container, name):
    for e in container.get("env") or []:
        if e.get("name") == name:
            return e.get("value")
    return None


def chat_ui_probe(deployment, prompt=DEFAULT_PROMPT, max_tokens=DEFAULT_MAX_TOKENS):
    """The request the chat UI's backend makes, read from its Deployment (the walkthrough's gradio app).

    The app posts to HOST + CONTEXT_PATH; with LLM_ENGINE openai-chat the body is a chat completion of MODEL_ID.
    When HOST's name is in the pod's hostAliases (infgw_chat_ui.target: gateway), the request connects to that
    address, as the pod would.
    """
    try:
        spec = deployment["spec"]["template"]["spec"]
        container = spec["containers"][0]
    except (KeyError, IndexError, TypeError):
        raise SmokeError("not a Deployment with a container: %r" % (deployment,))
    base, context = _env(container, "HOST"), _env(container, "CONTEXT_PATH") or "/v1/chat/completions"
    model, engine = _env(container, "MODEL_ID"), _env(container, "LLM_ENGINE") or "openai-chat"
    if not base or "://" not in base or not model:
        raise SmokeError("the chat UI's container has no HOST (scheme://host[:port]) or MODEL_ID environment")
    scheme, _sep, hostport = base.partition("://")
    host, _sep, port = hostport.rstrip("/").partition(":")
    address = None
    for alias in spec.get("hostAliases") or []:
        if host in (alias.get("hostnames") or []):
            address = alias.get("ip")
    if engine == "openai-chat":
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                "temperature": 0}
    else:
        body = _completion(model, prompt, max_tokens)
    return {"name": "chat UI %s%s" % (base.rstrip("/"), context), "kind": "chat_ui", "route": "chat UI",
            "scheme": scheme, "host": host, "port": int(port) if port else (443 if scheme == "https" else 80),
            "path": context, "method": "POST", "body": body, "status_code": [200], "expected_model": model,
            "address": address}


# --------------------------------------------------------------------------- judging an answer

def _documents(text):
    text = (text or "").strip()
    candidates = [text]
    if text.startswith("data:"):
        candidates = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    for c in candidates:
        try:
            doc = json.loads(c)
        except ValueError:
            continue
        if isinstance(doc, dict):
            yield doc


def answered_model(text):
    """The ``model`` field of an OpenAI-style answer: a JSON object, or the first data event of a stream."""
    for doc in _documents(text):
        if isinstance(doc.get("model"), str):
            return doc["model"]
    return None


def answer_text(text, limit=80):
    """The generated text of a completion or chat completion (streamed deltas joined), shortened."""
    parts = []
    for doc in _documents(text):
        for choice in doc.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            message = choice.get("message") or choice.get("delta") or {}
            piece = choice.get("text") if choice.get("text") is not None else message.get("content")
            if isinstance(piece, str):
                parts.append(piece)
    joined = " ".join("".join(parts).split())
    return joined if len(joined) <= limit else joined[:limit - 3] + "..."


def _header(headers, name):
    for k, v in (headers or {}).items():
        if k.lower() == name.lower():
            return v
    return None


def evaluate(probe, status, headers, text, seconds, error=None):
    """One result line's data: what answered and whether it is what the route should answer."""
    result = {"name": probe.get("name"), "route": probe.get("route"), "kind": probe.get("kind"),
              "host": probe.get("host"), "status": status, "seconds": round(seconds, 3),
              "expected_model": probe.get("expected_model"), "model": None, "answer": None,
              "pod": _header(headers, LOCAL_POD_HEADER), "endpoint": _header(headers, LOCAL_ENDPOINT_HEADER),
              "ok": False, "error": None}
    if error:
        result["error"] = error
        return result
    result["model"] = answered_model(text)
    result["answer"] = answer_text(text)
    if status == 403 and probe.get("protected_by"):
        result["ok"] = True
        result["answer"] = "denied by Cloud Armor policy %s (this client is not in its allow-list)" % probe["protected_by"]
        return result
    problems = []
    if status not in (probe.get("status_code") or [200]):
        excerpt = " ".join((text or "").split())[:120]
        problems.append("status %s%s" % (status, (": " + excerpt) if excerpt else ""))
    expected = probe.get("expected_model")
    if expected and status in (probe.get("status_code") or [200]) and result["model"] != expected:
        problems.append("answered by model %s, expected %s" % (result["model"], expected))
    for name, value in (probe.get("response_headers") or {}).items():
        got = _header(headers, name)
        if got != value:
            problems.append("header %s is %s, expected %s" % (name, got, value))
    result["error"] = "; ".join(problems) or None
    result["ok"] = not problems
    return result


def report_line(result):
    """One line for people: outcome, route, model, status, latency, pod."""
    pod = result.get("pod") or "unknown (only the local load balancer names it)"
    text = "%s %-28s model=%s status=%s %.2fs pod=%s" % (
        "PASS" if result["ok"] else "FAIL", result["name"], result.get("model") or "-",
        result.get("status") if result.get("status") is not None else "-", result.get("seconds") or 0.0, pod)
    if not result["ok"]:
        text += " -- " + (result.get("error") or "failed")
    elif result.get("answer"):
        text += ' answer="%s"' % result["answer"]
    return text


def failure_message(results):
    bad = [r for r in results if not r["ok"]]
    if not bad:
        return None
    return "%d of %d routes did not answer correctly: %s" % (
        len(bad), len(results), "; ".join("%s (%s)" % (r["name"], r["error"]) for r in bad))


# --------------------------------------------------------------------------- sending

def run(probes, address=None, validate_certs=True, timeout=30.0, tls_context=None, clock=time.monotonic):
    """Send each probe once (sequentially) and judge its answer.

    Each probe connects to its own ``address`` (the chat UI's hostAliases entry), else to ``address`` (the gateway's),
    else to its host by DNS; the host goes in the Host header and as the TLS server name.
    """
    import ssl

    results = []
    for probe in probes:
        target = probe.get("address") or address
        port = probe.get("port") or (443 if probe.get("scheme") == "https" else 80)
        ctx = tls_context
        if ctx is None and probe.get("scheme") == "https":
            ctx = ssl.create_default_context()
            if not validate_certs:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
        session = KeepAliveSession(tls_context=ctx, resolve={(probe["host"], port): target} if target else None)
        default_port = 443 if probe.get("scheme") == "https" else 80
        netloc = probe["host"] if port == default_port else "%s:%s" % (probe["host"], port)
        url = "%s://%s%s" % (probe.get("scheme") or "http", netloc, probe.get("path") or "/")
        headers = dict(probe.get("headers") or {})
        body = probe.get("body")
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        headers.setdefault("User-Agent", "gke_ai.inference_gateway.gateway_smoke")
        start = clock()
        try:
            resp = session.request(probe.get("method") or "GET", url, data=body, headers=headers,
                                   timeout=float(probe.get("request_timeout") or timeout))
            results.append(evaluate(probe, resp.status_code, dict(resp.headers.items()), resp.text, clock() - start))
        except HttpReadTimeout as e:
            results.append(evaluate(probe, None, {}, "", clock() - start, error="timed out: %s" % e))
        except HttpTransportError as e:
            results.append(evaluate(probe, None, {}, "", clock() - start, error="no answer: %s" % e))
        finally:
            session.close()
    return results


# --------------------------------------------------------------------------- backend health (status report)

def _endpoint_problem(endpoint):
    pod = " (%s)" % endpoint["pod"] if endpoint.get("pod") else ""
    error = ": " + endpoint["last_error"] if endpoint.get("last_error") else ""
    return "%s%s %s%s" % (endpoint["address"], pod, endpoint.get("state"), error)


def backend_health_lines(report, namespace=None):
    """Lines for the status report from a load balancer's backend health report.

    ``report`` is the local load balancer simulator's ``/backends`` document ({backends: [{backend, healthy,
    endpoints: [{address, pod, state, last_error}], health_check, problem}]}). A backend with endpoints of which
    none is healthy is what GKE answers ``503 no healthy upstream`` for.
    """
    lines = []
    for b in (report or {}).get("backends") or []:
        if namespace and b.get("namespace") != namespace:
            continue
        eps = b.get("endpoints") or []
        if b.get("problem"):
            lines.append("BROKEN %s: %s" % (b["backend"], b["problem"]))
            continue
        bad = [e for e in eps if e.get("state") != "HEALTHY"]
        if not eps:
            lines.append("NO ENDPOINTS %s, health check %s" % (b["backend"], b.get("health_check")))
        elif bad:
            status = "UNHEALTHY" if len(bad) == len(eps) else "DEGRADED"
            why = "; ".join(_endpoint_problem(e) for e in bad)
            lines.append("%s %s: %d/%d endpoints healthy, health check %s: %s" % (
                status, b["backend"], len(eps) - len(bad), len(eps), b.get("health_check"), why))
        else:
            lines.append("HEALTHY %s: %d/%d endpoints, health check %s" % (
                b["backend"], len(eps), len(eps), b.get("health_check")))
    return lines
