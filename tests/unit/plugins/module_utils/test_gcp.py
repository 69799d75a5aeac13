# -*- coding: utf-8 -*-
# Unit tests for plugins/module_utils/_gcp.py: retry policy, Retry-After, URL building, the error
# funnel (403 names the permission, 404 the resource), credentials, the request loop (retries,
# 401 refresh, connection errors) and the operation polling state machine, with a fake clock.
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import requests

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _gcp
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    GcpClient,
    GcpError,
    PollSchedule,
    RetryPolicy,
)
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules.test_gcp_support import (
    FakeCredentials,
    ScriptedGoogle,
    compute_op,
    container_op,
    lro,
)


class Clock(object):
    """A fake monotonic clock that only moves when the code under test sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(script=(), max_retries=3, rng=lambda: 0.5, credentials=None):
    clock = Clock()
    fake = ScriptedGoogle(script)
    client = GcpClient(credentials or FakeCredentials(), retry=RetryPolicy(max_retries=max_retries),
                       session=fake, clock=clock, sleep=clock.sleep, rng=rng)
    return client, fake, clock


def google_error(code, message, status=None, reason=None, permission=None):
    err = {"code": code, "message": message, "status": status,
           "errors": [{"message": message, "domain": "global", "reason": reason or "x"}]}
    if permission:
        err["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                           "domain": "iam.googleapis.com", "metadata": {"permission": permission}}]
    return {"error": err}


POOL = "v1/projects/local-project/locations/us-central1/clusters/local-cluster/nodePools/gpupool"


# --------------------------------------------------------------------------------------
# retry policy


def test_backoff_doubles_with_equal_jitter_and_a_ceiling():
    policy = RetryPolicy(max_retries=8, base_delay=1.0, max_delay=30.0)
    low = [policy.delay(n, rng=lambda: 0.0) for n in range(7)]
    high = [policy.delay(n, rng=lambda: 1.0) for n in range(7)]
    assert low == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert high == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_retry_after_wins_when_longer_and_is_capped():
    policy = RetryPolicy()
    assert policy.delay(0, retry_after=7, rng=lambda: 0.0) == 7.0
    assert policy.delay(3, retry_after=0.1, rng=lambda: 1.0) == 8.0
    assert policy.delay(0, retry_after=100000, rng=lambda: 0.0) == _gcp.RETRY_AFTER_CAP


def test_retry_statuses_and_bound():
    policy = RetryPolicy(max_retries=2)
    assert all(policy.should_retry_status(s, 0) for s in (429, 500, 502, 503, 504))
    assert not any(policy.should_retry_status(s, 0) for s in (400, 401, 403, 404, 409, 412))
    assert policy.should_retry_status(503, 1) and not policy.should_retry_status(503, 2)


def test_exceptions_retried_connection_always_read_timeout_only_for_get():
    policy = RetryPolicy(max_retries=1)
    assert policy.should_retry_exception(requests.exceptions.ConnectionError("x"), "POST", 0)
    assert policy.should_retry_exception(requests.exceptions.ReadTimeout("x"), "GET", 0)
    assert not policy.should_retry_exception(requests.exceptions.ReadTimeout("x"), "POST", 0)
    assert not policy.should_retry_exception(requests.exceptions.ConnectionError("x"), "GET", 1)


@pytest.mark.parametrize("value, expected", [
    ("3", 3.0), ("0.5", 0.5), ("-2", 0.0), (None, None), ("", None), ("soon", None),
    ("Wed, 26 Nov 2026 12:00:10 GMT", 10.0),
])
def test_parse_retry_after(value, expected):
    now = 1795694400.0  # 2026-11-26T12:00:00Z
    assert _gcp.parse_retry_after(value, now=now) == expected


# --------------------------------------------------------------------------------------
# urls


def test_build_url_for_google_and_for_the_local_fake():
    assert _gcp.build_url(_gcp.DEFAULT_API_ENDPOINT, "compute", "compute/v1/projects/p/global/securityPolicies") == \
        "https://compute.googleapis.com/compute/v1/projects/p/global/securityPolicies"
    assert _gcp.build_url("http://127.0.0.1:8470/{service}/", "container", "v1/projects/p") == \
        "http://127.0.0.1:8470/container/v1/projects/p"
    assert _gcp.build_url("http://proxy.internal/", "container", "/v1/x") == "http://proxy.internal/v1/x"
    with pytest.raises(ValueError):
        _gcp.build_url(_gcp.DEFAULT_API_ENDPOINT, "storage", "x")


def test_validate_endpoint():
    assert _gcp.validate_endpoint("https://{service}.googleapis.com/") is None
    assert _gcp.validate_endpoint("http://127.0.0.1:1/{service}/") is None
    assert "http(s) URL" in _gcp.validate_endpoint("ftp://x")
    assert "placeholder" in _gcp.validate_endpoint("https://{region}.example/")


# --------------------------------------------------------------------------------------
# the error funnel


def test_403_names_the_permission_from_error_info_and_the_principal():
    body = json.dumps(google_error(403, "Permission 'container.nodePools.create' denied on resource "
                                        "'projects/p/locations/l/clusters/c' (or it may not exist).",
                                   status="PERMISSION_DENIED", reason="forbidden",
                                   permission="container.nodePools.create"))
    e = _gcp.error_from_response(403, body, "create node pool gpupool", resource="cluster projects/p/locations/l/"
                                 "clusters/c", principal="deployer@p.iam.gserviceaccount.com")
    assert e.permission == "container.nodePools.create"
    assert e.reason == "IAM_PERMISSION_DENIED"
    assert e.msg.startswith("create node pool gpupool failed: permission denied: the caller "
                            "(deployer@p.iam.gserviceaccount.com) lacks the IAM permission "
                            "'container.nodePools.create' on cluster projects/p/locations/l/clusters/c "
                            "(HTTP 403 PERMISSION_DENIED)")
    result = e.to_result()
    assert result["error"]["permission"] == "container.nodePools.create"
    assert result["error"]["http_status"] == 403


@pytest.mark.parametrize("message, permission", [
    ("Required 'compute.securityPolicies.create' permission for 'projects/p/global/securityPolicies/x'",
     "compute.securityPolicies.create"),
    ("Permission 'resourcemanager.projects.setIamPolicy' denied on resource", "resourcemanager.projects.setIamPolicy"),
    ("The caller does not have permission", None),
])
def test_403_permission_from_the_message_when_details_lack_it(message, permission):
    body = json.dumps({"error": {"code": 403, "message": message, "errors": [{"reason": "forbidden"}]}})
    e = _gcp.error_from_response(403, body, "do it", resource="policy x")
    assert e.permission == permission
    if permission:
        assert "lacks the IAM permission '%s' on policy x" % permission in e.msg
    else:
        assert "Google did not name the permission" in e.msg
    assert e.reason == "forbidden"


def test_404_names_the_resource():
    body = json.dumps(google_error(404, "Not found: projects/p/locations/l/clusters/nope.", status="NOT_FOUND"))
    e = _gcp.error_from_response(404, body, "create node pool gpupool", resource="cluster projects/p/locations/l/"
                                 "clusters/nope")
    assert e.msg == ("create node pool gpupool failed: cluster projects/p/locations/l/clusters/nope not found "
                     "(HTTP 404 NOT_FOUND): Not found: projects/p/locations/l/clusters/nope.")
    assert e.status == "NOT_FOUND" and e.http_status == 404


def test_errors_that_are_not_json_and_oauth_errors():
    e = _gcp.error_from_response(502, "<html>Bad gateway</html>", "read x", resource="x")
    assert e.msg == "read x failed on x (HTTP 502): <html>Bad gateway</html>"
    parsed = _gcp.parse_error_body(json.dumps({"error": "invalid_grant", "error_description": "Invalid JWT"}))
    assert parsed["reason"] == "invalid_grant" and parsed["message"] == "Invalid JWT"


# --------------------------------------------------------------------------------------
# credentials


def test_access_token_credentials():
    creds, project = _gcp.credentials_from_params({"auth_kind": "accesstoken", "access_token": "ya29.abc"})
    headers = {}
    creds.before_request(None, "GET", "https://x", headers)
    assert headers["authorization"] == "Bearer ya29.abc" and project is None
    assert "ya29" not in repr(creds) and _gcp.principal_of(creds) is None


def test_access_token_requests_never_import_google_auth():
    """A bearer token needs no google-auth: not importing it (and cryptography) is most of a no-op task's time."""
    code = textwrap.dedent("""
        import sys
        from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _gcp
        from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules.test_gcp_support import (
            ScriptedGoogle)
        creds, _project = _gcp.credentials_from_params({"auth_kind": "accesstoken", "access_token": "ya29.abc"})
        fake = ScriptedGoogle([("GET", "gpupool", {"name": "gpupool"})])
        client = _gcp.GcpClient(creds, session=fake)
        assert client.request("GET", "container", "v1/projects/p/locations/l/clusters/c/nodePools/gpupool") == {
            "name": "gpupool"}
        assert fake.calls[0].headers["authorization"] == "Bearer ya29.abc"
        assert not client._can_refresh()
        loaded = sorted(m for m in sys.modules if m.startswith(("google.auth", "google.oauth2", "cryptography")))
        assert not loaded, loaded
    """)
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))


def test_missing_secrets_are_named_but_never_echoed():
    with pytest.raises(GcpError) as e:
        _gcp.credentials_from_params({"auth_kind": "accesstoken"})
    assert "GCP_ACCESS_TOKEN" in e.value.msg
    secret = '{"type": "authorized_user", "client_secret": "s3cr3t-value"}'
    with pytest.raises(GcpError) as e:
        _gcp.credentials_from_params({"auth_kind": "serviceaccount", "service_account_contents": secret})
    assert "not a service account key" in e.value.msg and "s3cr3t" not in e.value.msg
    with pytest.raises(GcpError) as e:
        _gcp.credentials_from_params({"auth_kind": "serviceaccount", "service_account_contents": "{not json s3cr3t"})
    assert "s3cr3t" not in e.value.msg
    with pytest.raises(GcpError) as e:
        _gcp.credentials_from_params({"auth_kind": "serviceaccount"})
    assert "service_account_file" in e.value.msg


@pytest.fixture(scope="module")
def service_account_info():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": "sa-project", "private_key_id": "k1", "private_key": pem,
            "client_email": "deployer@sa-project.iam.gserviceaccount.com", "client_id": "1",
            "token_uri": "http://127.0.0.1:1/token"}


def test_service_account_from_contents_and_file(service_account_info, tmp_path):
    creds, project = _gcp.credentials_from_params({"auth_kind": "serviceaccount",
                                                   "service_account_contents": json.dumps(service_account_info)})
    assert project == "sa-project"
    assert _gcp.principal_of(creds) == "deployer@sa-project.iam.gserviceaccount.com"
    path = tmp_path / "key.json"
    path.write_text(json.dumps(service_account_info))
    creds, project = _gcp.credentials_from_params({"auth_kind": "serviceaccount", "service_account_file": str(path),
                                                   "scopes": ["https://www.googleapis.com/auth/compute"]})
    assert project == "sa-project" and creds._scopes == ["https://www.googleapis.com/auth/compute"]
    with pytest.raises(GcpError) as e:
        _gcp.credentials_from_params({"auth_kind": "serviceaccount", "service_account_file": str(tmp_path / "no")})
    assert "cannot read service_account_file" in e.value.msg


def test_application_default_credentials_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(GcpError) as e:
        _gcp.credentials_from_params({"auth_kind": "application"})
    assert e.value.kind == "auth" and "Application Default Credentials" in e.value.msg


# --------------------------------------------------------------------------------------
# the request loop


def test_429_burst_is_ridden_out_with_backoff_and_logged():
    client, fake, clock = make_client([
        ("GET", "nodePools/gpupool$", (429, google_error(429, "Quota exceeded", status="RESOURCE_EXHAUSTED"))),
        ("GET", "nodePools/gpupool$", (503, google_error(503, "unavailable", status="UNAVAILABLE"))),
        ("GET", "nodePools/gpupool$", {"name": "gpupool"}),
    ])
    assert client.request("GET", "container", POOL, action="read node pool gpupool") == {"name": "gpupool"}
    assert clock.sleeps == [0.75, 1.5]  # rng 0.5: 3/4 of 1s, then of 2s
    assert [e["reason"] for e in client.log] == ["HTTP 429", "HTTP 503"]
    assert all(c.headers["Authorization"] == "Bearer ya29.unit-test-token" for c in fake.calls)


def test_retry_after_header_is_honoured():
    client, _fake, clock = make_client([
        ("POST", ":setSize$", (429, google_error(429, "slow down"), {"Retry-After": "12"})),
        ("POST", ":setSize$", container_op()),
    ])
    client.request("POST", "container", POOL + ":setSize", body={"nodeCount": 1})
    assert clock.sleeps == [12.0]


def test_retries_are_bounded_and_the_error_says_how_many_attempts():
    answer = (503, google_error(503, "The service is currently unavailable.", status="UNAVAILABLE"))
    client, fake, clock = make_client([("GET", "gpupool", answer)] * 3, max_retries=2)
    with pytest.raises(GcpError) as e:
        client.request("GET", "container", POOL, action="read node pool gpupool", resource="node pool gpupool")
    assert e.value.http_status == 503 and e.value.attempts == 3
    assert e.value.msg.endswith("(after 3 attempts)")
    assert len(fake.calls) == 3 and len(clock.sleeps) == 2


def test_no_retry_on_client_errors():
    client, fake, _clock = make_client([("GET", "gpupool", (400, google_error(400, "bad", "INVALID_ARGUMENT")))])
    with pytest.raises(GcpError) as e:
        client.request("GET", "container", POOL)
    assert e.value.http_status == 400 and len(fake.calls) == 1


def test_connection_errors_are_retried_then_reported():
    client, _fake, clock = make_client([
        ("GET", "gpupool", requests.exceptions.ConnectionError("refused")),
        ("GET", "gpupool", {"name": "gpupool"}),
    ])
    assert client.request("GET", "container", POOL)["name"] == "gpupool"
    assert len(clock.sleeps) == 1
    client, _fake, _clock = make_client([("POST", "setSize", requests.exceptions.ReadTimeout("slow"))])
    with pytest.raises(GcpError) as e:
        client.request("POST", "container", POOL + ":setSize", body={"nodeCount": 1}, action="resize")
    assert e.value.kind == "connection" and "ReadTimeout" in e.value.msg


def test_401_refreshes_refreshable_credentials_once():
    creds = FakeCredentials()
    client, fake, _clock = make_client([
        ("GET", "gpupool", (401, google_error(401, "expired", "UNAUTHENTICATED"))),
        ("GET", "gpupool", {"name": "gpupool"}),
    ], credentials=creds)
    client._auth_request = object()
    assert client.request("GET", "container", POOL)["name"] == "gpupool"
    assert creds.refreshes == 1 and len(fake.calls) == 2


def test_401_with_a_plain_access_token_fails_with_advice():
    creds = _gcp.credentials_from_params({"auth_kind": "accesstoken", "access_token": "ya29.secret-token"})[0]
    client, _fake, _clock = make_client([("GET", "gpupool", (401, google_error(401, "bad token", "UNAUTHENTICATED")))],
                                        credentials=creds)
    with pytest.raises(GcpError) as e:
        client.request("GET", "container", POOL, action="read node pool gpupool")
    assert "credentials were rejected" in e.value.msg and "secret-token" not in json.dumps(e.value.to_result())


def test_get_returns_none_on_404():
    client, _fake, _clock = make_client([("GET", "gpupool", (404, google_error(404, "nope", "NOT_FOUND")))])
    assert client.get("container", POOL) is None


# --------------------------------------------------------------------------------------
# operations


def test_poll_schedule_grows_to_a_ceiling():
    intervals = PollSchedule(initial=1.0, factor=1.5, max_interval=10.0).intervals()
    got = [next(intervals) for dummy in range(8)]
    assert got == [1.0, 1.5, 2.25, 3.375, 5.0625, 7.59375, 10.0, 10.0]


def test_container_operation_polled_until_done():
    path = "v1/projects/local-project/locations/us-central1/operations/operation-9$"
    client, fake, clock = make_client([
        ("GET", path, container_op("operation-9", "RUNNING")),
        ("GET", path, container_op("operation-9", "DONE")),
    ])
    op = client.wait_operation(container_op("operation-9", "PENDING"), "container", "container", 60, "create pool",
                               project="local-project", location="us-central1")
    assert op["status"] == "DONE"
    assert clock.sleeps == [0.5, 0.75]
    assert client.log[-1]["polls"] == 2 and client.log[-1]["operation"] == "operation-9"
    assert [c.method_id for c in fake.calls] == ["projects.locations.operations.get"] * 2


def test_container_operation_error_is_surfaced_with_its_message():
    client, _fake, _clock = make_client([
        ("GET", "operations/operation-3$", container_op("operation-3", "DONE", error={
            "code": 8, "message": "Insufficient regional quota to satisfy request: resource \"NVIDIA_L4_GPUS\""})),
    ])
    with pytest.raises(GcpError) as e:
        client.wait_operation(container_op("operation-3", "RUNNING"), "container", "container", 60,
                              "create node pool gpupool", project="p", location="us-central1")
    assert e.value.kind == "operation"
    assert e.value.msg == ("create node pool gpupool failed: operation operation-3 ended in error 8: Insufficient "
                           "regional quota to satisfy request: resource \"NVIDIA_L4_GPUS\"")


def test_compute_operation_regional_path_and_errors():
    path = "compute/v1/projects/local-project/regions/us-central1/operations/operation-5$"
    client, fake, _clock = make_client([
        ("GET", path, compute_op("operation-5", "DONE", region="us-central1",
                                 error={"code": "INVALID_USAGE", "message": "rule priority taken"})),
    ])
    with pytest.raises(GcpError) as e:
        client.wait_operation(compute_op("operation-5", "RUNNING", region="us-central1"), "compute", "compute", 60,
                              "add rule 1000", project="local-project")
    assert "INVALID_USAGE: rule priority taken" in e.value.msg
    assert fake.calls[0].method_id == "regionOperations.get"
    assert _gcp.operation_path("compute", compute_op("op-1"), "p") == "compute/v1/projects/p/global/operations/op-1"


def test_longrunning_operation_by_name():
    name = "projects/local-project/locations/us-central1/operations/operation-7"
    client, fake, _clock = make_client([
        ("GET", "v1/" + name + "$", lro(name, done=False)),
        ("GET", "v1/" + name + "$", lro(name, done=True)),
    ])
    op = client.wait_operation(lro(name, done=False), "longrunning", "certificatemanager", 60, "create certificate")
    assert op["done"] is True
    assert fake.calls[0].method_id == "projects.locations.operations.get"
    assert _gcp.operation_error("longrunning", lro(name, error={"code": 3, "message": "bad PEM"})) == (3, "bad PEM")


def test_operation_timeout_with_a_fake_clock_names_the_operation():
    path = "operations/operation-4$"
    client, _fake, clock = make_client([("GET", path, container_op("operation-4", "RUNNING"))] * 50)
    with pytest.raises(GcpError) as e:
        client.wait_operation(container_op("operation-4", "RUNNING"), "container", "container", 30,
                              "create node pool gpupool", project="p", location="l")
    assert e.value.kind == "timeout" and e.value.operation == "operation-4"
    assert "not done after 30s (status RUNNING)" in e.value.msg
    assert clock.now - 1000.0 == pytest.approx(30.0)  # never sleeps past the deadline


def test_operation_already_done_is_not_polled():
    client, fake, clock = make_client([])
    op = client.wait_operation(compute_op("x", "DONE"), "compute", "compute", 10, "noop", project="p")
    assert op["status"] == "DONE" and fake.calls == [] and clock.sleeps == []


# --------------------------------------------------------------------------------------
# diff helpers


def test_diff_helpers():
    expected = {"before": {}, "after": {"a": 1}, "before_header": "x", "after_header": "x"}
    assert _gcp.diff_result(None, {"a": 1}, header="x") == expected
    assert _gcp.changed_keys({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": None}) == ["b"]
    assert _gcp.managed_view({"a": 1, "b": 2}, ["a"]) == {"a": 1}


# --------------------------------------------------------------------------------------
# converge: the one runner of the GCP modules


class _Module(object):
    """What converge uses of a GcpModule."""

    def __init__(self, client, check_mode=False, diff=False, **params):
        self.client = client
        self.project = "local-project"
        self.check_mode = check_mode
        self._diff = diff
        self.params = dict({"state": "present", "wait": True, "timeout": 60, "location": None}, **params)


class _Labels(_gcp.GcpResource):
    """A toy resource (a global security policy's labels): one setLabels per label, with the fingerprint read."""

    service = "compute"
    operation_style = "compute"
    conflict_statuses = (412,)
    result_key = "thing"
    PATH = "compute/v1/projects/local-project/global/securityPolicies/t"

    def label(self):
        return "thing t"

    def validate(self):
        return [] if self.params.get("labels") is not None else ["labels is required"]

    def read(self):
        return self.client.get("compute", self.PATH)

    def plan(self, current):
        want = self.params["labels"]
        have = (current or {}).get("labels") or {}
        changes = [_gcp.Change("set_label:%s" % k, "POST", self.PATH + "/setLabels",
                               {"labels": {k: v}, "labelFingerprint": (current or {}).get("fp", "")})
                   for k, v in sorted(want.items()) if have.get(k) != v]
        return _gcp.Plan(changes, {"labels": have}, {"labels": dict(have, **want)})


def _thing(labels, fp="f1"):
    return {"name": "t", "labels": labels, "fp": fp}


def test_converge_plans_without_writing_in_check_mode():
    client, fake, _clock = make_client([("GET", r"securityPolicies/t$", _thing({}))])
    result = _gcp.converge(_Labels(_Module(client, check_mode=True, diff=True, labels={"a": "1", "b": "2"})))
    assert result["changed"] is True and result["actions"] == ["set_label:a", "set_label:b"]
    assert result["operations"] == [] and result["diff"]["after"] == {"labels": {"a": "1", "b": "2"}}
    assert result["thing"] == _thing({}) and [c.method for c in fake.calls] == ["GET"]


def test_converge_checks_input_before_any_request():
    client, fake, _clock = make_client()
    with pytest.raises(GcpError) as err:
        _gcp.converge(_Labels(_Module(client)))
    assert err.value.kind == "invalid" and "labels is required" in err.value.msg and fake.calls == []


def test_converge_waits_for_every_operation_but_the_last_without_wait():
    client, fake, _clock = make_client([
        ("GET", r"securityPolicies/t$", _thing({})),
        ("POST", r"setLabels$", compute_op("op-a", "RUNNING")),
        ("GET", r"global/operations/op-a$", compute_op("op-a", "DONE")),
        ("POST", r"setLabels$", compute_op("op-b", "RUNNING")),
    ])
    result = _gcp.converge(_Labels(_Module(client, wait=False, labels={"a": "1", "b": "2"})))
    assert result["actions"] == ["set_label:a", "set_label:b"] and result["operations"] == ["op-a", "op-b"]
    assert result["thing"] == _thing({})  # not read again: the last operation may still run


def test_converge_reads_and_plans_again_after_a_conflict_and_is_bounded():
    stale = (412, {"error": {"code": 412, "status": "FAILED_PRECONDITION", "message": "fingerprint"}})
    client, fake, _clock = make_client([
        ("GET", r"securityPolicies/t$", _thing({}, "f1")),
        ("POST", r"setLabels$", stale),
        ("GET", r"securityPolicies/t$", _thing({"a": "1"}, "f2")),  # someone else set a=1 meanwhile
        ("POST", r"setLabels$", compute_op("op-b", "DONE")),
        ("GET", r"securityPolicies/t$", _thing({"a": "1", "b": "2"}, "f3")),
    ])
    result = _gcp.converge(_Labels(_Module(client, labels={"a": "1", "b": "2"})))
    assert result["actions"] == ["set_label:b"]  # only what was still to do
    assert fake.calls[3].body["labelFingerprint"] == "f2"
    assert [e["event"] for e in client.log][0] == "conflict"

    client, fake, _clock = make_client([("GET", r"securityPolicies/t$", _thing({})), ("POST", r"setLabels$", stale),
                                        ("GET", r"securityPolicies/t$", _thing({})), ("POST", r"setLabels$", stale)])
    with pytest.raises(GcpError) as err:
        _gcp.converge(_Labels(_Module(client, labels={"a": "1"})))
    assert err.value.kind == "conflict" and "gave up after 2 attempts" in err.value.msg
