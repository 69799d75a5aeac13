# -*- coding: utf-8 -*-
# Support for the unit tests of the Google Cloud modules, and tests of that support:
#
# * DiscoveryValidator - checks a request body against Google's discovery document (the copies
#   google-api-python-client ships), as Google's JSON front end does: unknown field names, wrong
#   types and values outside an enum are errors.
# * ScriptedGoogle - a requests.Session stand-in that answers a script of expected calls, checks
#   each request body against the discovery document of the method, and records what was sent.
# * run_module - runs a module's main() with patch_module_args and the scripted session.
from __future__ import annotations

import functools
import json
import os
import re

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _gcp

ENDPOINT = "https://{service}.googleapis.com/"


def _documents_dir():
    import googleapiclient

    return os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents")


@functools.lru_cache(maxsize=None)
def discovery(service):
    with open(os.path.join(_documents_dir(), "%s.v1.json" % service)) as f:
        return json.load(f)


def _methods(resources, prefix=""):
    for name, res in resources.items():
        for mname, method in (res.get("methods") or {}).items():
            yield prefix + name + "." + mname, method
        yield from _methods(res.get("resources") or {}, prefix + name + ".")


@functools.lru_cache(maxsize=None)
def routes(service):
    """[(regex, http method, method id, request $ref)] from the discovery document."""
    doc = discovery(service)
    out = []
    for mid, method in _methods(doc["resources"]):
        template = doc.get("servicePath", "") + method.get("flatPath", method["path"])
        regex = "^" + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        out.append((re.compile(regex), method["httpMethod"], mid, (method.get("request") or {}).get("$ref")))
    # most specific (longest literal) first, so .../nodePools/x:setSize beats .../nodePools/x
    out.sort(key=lambda r: -len(re.sub(r"\[\^/\]\+", "", r[0].pattern)))
    return out


def find_method(service, http_method, path):
    for regex, verb, mid, ref in routes(service):
        if verb == http_method and regex.match(path):
            return mid, ref
    raise AssertionError("no %s method %s %s in the discovery document" % (service, http_method, path))


class DiscoveryValidator(object):
    """Errors of a JSON value against a discovery schema (request mode: output-only fields allowed but noted)."""

    def __init__(self, service):
        self.schemas = discovery(service)["schemas"]

    def errors(self, value, ref):
        out = []
        self._check(value, {"$ref": ref}, ref, out)
        return out

    def _check(self, value, spec, path, out):
        if "$ref" in spec:
            schema = self.schemas[spec["$ref"]]
            if not isinstance(value, dict):
                out.append("%s: expected an object" % path)
                return
            props = schema.get("properties")
            extra = schema.get("additionalProperties")
            if props is None and extra is None:
                return
            for key, item in value.items():
                if props and key in props:
                    self._check(item, props[key], "%s.%s" % (path, key), out)
                elif extra is not None:
                    self._check(item, extra, "%s[%s]" % (path, key), out)
                else:
                    out.append("%s: unknown field %r" % (path, key))
            return
        kind = spec.get("type")
        if value is None or kind in (None, "any"):
            return
        if kind == "object":
            if not isinstance(value, dict):
                out.append("%s: expected an object" % path)
                return
            extra = spec.get("additionalProperties")
            props = spec.get("properties") or {}
            for key, item in value.items():
                if key in props:
                    self._check(item, props[key], "%s.%s" % (path, key), out)
                elif extra is not None:
                    self._check(item, extra, "%s[%s]" % (path, key), out)
                elif props:
                    out.append("%s: unknown field %r" % (path, key))
        elif kind == "array":
            if not isinstance(value, list):
                out.append("%s: expected a list" % path)
                return
            for i, item in enumerate(value):
                self._check(item, spec.get("items") or {}, "%s[%d]" % (path, i), out)
        elif kind == "boolean":
            if not isinstance(value, bool):
                out.append("%s: expected a boolean, got %r" % (path, value))
        elif kind == "integer":
            if isinstance(value, bool) or not (isinstance(value, int) or re.match(r"^-?\d+$", str(value))):
                out.append("%s: expected an integer, got %r" % (path, value))
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                out.append("%s: expected a number, got %r" % (path, value))
        elif kind == "string":
            fmt = spec.get("format")
            if fmt in ("int64", "uint64"):
                if isinstance(value, bool) or not re.match(r"^-?\d+$", str(value)):
                    out.append("%s: expected an int64, got %r" % (path, value))
            elif not isinstance(value, str):
                out.append("%s: expected a string, got %r" % (path, value))
            elif spec.get("enum") and value not in spec["enum"]:
                out.append("%s: %r is not one of %s" % (path, value, ", ".join(spec["enum"])))


def assert_valid_body(service, ref, body):
    errors = DiscoveryValidator(service).errors(body, ref)
    assert not errors, "invalid %s %s body: %s" % (service, ref, errors)


def assert_valid_request(service, http_method, path, body):
    mid, ref = find_method(service, http_method, path)
    if ref is None:
        assert body in (None, {}), "%s takes no body, got %r" % (mid, body)
    else:
        assert_valid_body(service, ref, body if body is not None else {})
    return mid


# --------------------------------------------------------------------------------------
# a scripted Google


class FakeResponse(object):
    def __init__(self, status, body=None, headers=None):
        self.status_code = status
        self.headers = headers or {}
        if body is None:
            self.text = ""
        elif isinstance(body, (dict, list)):
            self.text = json.dumps(body)
        else:
            self.text = body
        self.content = self.text.encode()

    def json(self):
        return json.loads(self.text)


class Call(object):
    def __init__(self, method, url, query, body, headers):
        self.method = method
        self.url = url
        self.query = query or {}
        self.body = body
        self.headers = headers
        m = re.match(r"^https://([a-z]+)\.googleapis\.com/(.*)$", url)
        self.service, self.path = (m.group(1), m.group(2)) if m else (None, url)
        self.method_id = None

    def __repr__(self):
        return "<%s %s>" % (self.method, self.path)


class ScriptedGoogle(object):
    """A requests.Session stand-in: answers ``script`` entries in order.

    Each entry is ``(http method, path regex, answer)``; the answer is a dict (200 with that body),
    ``(status, body)``, ``(status, body, headers)``, an exception instance to raise, or a callable
    taking the Call. Every request body is checked against the discovery document.
    """

    def __init__(self, script=()):
        self.script = list(script)
        self.calls = []

    def add(self, method, path_regex, answer):
        self.script.append((method, path_regex, answer))

    def request(self, method, url, params=None, data=None, headers=None, timeout=None):
        body = json.loads(data) if data else None
        call = Call(method, url, params, body, headers or {})
        self.calls.append(call)
        if call.service:
            call.method_id = assert_valid_request(call.service, method, call.path, body)
        assert self.script, "unexpected request %s %s (script exhausted)" % (method, call.path)
        want_method, regex, answer = self.script.pop(0)
        assert method == want_method and re.search(regex, call.path), \
            "expected %s %s, got %s %s" % (want_method, regex, method, call.path)
        if callable(answer) and not isinstance(answer, Exception):
            answer = answer(call)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, tuple):
            return FakeResponse(*answer)
        return FakeResponse(200, answer)

    def close(self):
        pass


class FakeCredentials(object):
    """Enough of google.auth credentials: a bearer header, refresh counts."""

    token = "ya29.unit-test-token"
    service_account_email = "deployer@local-project.iam.gserviceaccount.com"

    def __init__(self):
        self.refreshes = 0

    def before_request(self, request, method, url, headers):
        headers["Authorization"] = "Bearer %s" % self.token

    def refresh(self, request):
        self.refreshes += 1


@pytest.fixture
def google(monkeypatch):
    """A ScriptedGoogle every GcpModule talks to, with no real sleeps."""
    fake = ScriptedGoogle()
    fake.sleeps = []

    def connect(self):
        self._project = self.params.get("project") or "local-project"
        self._client = _gcp.GcpClient(FakeCredentials(), endpoint=self.params["api_endpoint"],
                                      retry=_gcp.RetryPolicy(max_retries=self.params["max_retries"]),
                                      timeout=self.params["request_timeout"], session=fake,
                                      clock=fake_clock(fake), sleep=fake.sleeps.append, rng=lambda: 0.5)

    monkeypatch.setattr(_gcp.GcpModule, "_connect", connect)
    return fake


def fake_clock(fake):
    def clock():
        return sum(fake.sleeps)
    return clock


def merged(base, **changes):
    """A copy of ``base`` with ``changes`` (what ``dict(base, **changes)`` does, opaque to pylint's inference)."""
    out = dict(base)
    out.update(changes)
    return out


def run_module(module, capsys, check_mode=False, diff=False, **params):
    args = dict(params)
    args.setdefault("api_endpoint", ENDPOINT)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    result["_raw"] = out
    return result


def compute_op(name="operation-1", status="DONE", region=None, error=None):
    op = {"kind": "compute#operation", "name": name, "status": status}
    if region:
        op["region"] = "https://www.googleapis.com/compute/v1/projects/local-project/regions/%s" % region
    if error:
        op["error"] = {"errors": [error]}
    return op


def container_op(name="operation-1", status="DONE", error=None):
    op = {"name": name, "status": status, "operationType": "CREATE_NODE_POOL"}
    if error:
        op["error"] = error
    return op


def lro(name="projects/local-project/locations/global/operations/operation-1", done=True, error=None):
    op = {"name": name, "done": done}
    if error:
        op["error"] = error
    return op


# --------------------------------------------------------------------------------------
# tests of the support itself


def test_validator_accepts_a_valid_body_and_rejects_unknown_fields():
    assert_valid_body("container", "SetNodePoolAutoscalingRequest",
                      {"autoscaling": {"enabled": True, "totalMinNodeCount": 0, "totalMaxNodeCount": 5}})
    errors = DiscoveryValidator("container").errors({"autoscaling": {"enabled": True, "maxNodes": 5}},
                                                    "SetNodePoolAutoscalingRequest")
    assert errors == ["SetNodePoolAutoscalingRequest.autoscaling: unknown field 'maxNodes'"]


def test_validator_checks_types_and_enums():
    errors = DiscoveryValidator("container").errors(
        {"nodePool": {"name": "p", "initialNodeCount": "x",
                      "config": {"accelerators": [{"acceleratorCount": "one",
                                                   "gpuDriverInstallationConfig": {"gpuDriverVersion": "NEWEST"}}]}}},
        "CreateNodePoolRequest")
    assert len(errors) == 3
    assert any("initialNodeCount" in e for e in errors)
    assert any("acceleratorCount" in e for e in errors)
    assert any("NEWEST" in e for e in errors)


def test_routes_find_the_most_specific_method():
    path = "v1/projects/p/locations/l/clusters/c/nodePools/n:setSize"
    assert find_method("container", "POST", path)[0] == "projects.locations.clusters.nodePools.setSize"
    assert find_method("compute", "POST", "compute/v1/projects/p/regions/r/securityPolicies/s/addRule")[0] == \
        "regionSecurityPolicies.addRule"
    assert find_method("cloudresourcemanager", "POST", "v1/projects/p:setIamPolicy")[0] == "projects.setIamPolicy"
