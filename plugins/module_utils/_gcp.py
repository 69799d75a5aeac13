# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""Talking to Google Cloud REST APIs: credentials, requests with retries, long-running
operations and one error type.

* Credentials come from the same options and environment variables as google.cloud's
  (``auth_kind`` application | serviceaccount | accesstoken ...), built with google-auth.
  google-auth (and the cryptography it signs with) is imported only when a service account
  key or Application Default Credentials need it: with ``auth_kind=accesstoken`` a task is
  one bearer header, and importing google-auth would cost more than its API call.
* The transport is requests, except for a bearer token without a proxy in the
  environment: then ``HttpSession``, a keep-alive client on http.client that verifies TLS
  against the certificates requests would use, does the same calls without importing
  requests and urllib3 (a third of a no-op task's time).
* ``GcpClient.request`` sends one REST call (Google's path: the discovery document's
  ``servicePath`` + ``path``) to ``api_endpoint`` (a URL template with ``{service}``), retries
  429/500/502/503/504 and connection errors with exponential back-off and jitter (honouring
  ``Retry-After``), refreshes refreshable credentials once on a 401, and raises ``GcpError``
  for everything else.
* ``GcpClient.wait_operation`` polls the three operation styles (container, compute and
  google.longrunning) until done, with a deadline, and raises ``GcpError`` when the
  operation ended in error.
* ``GcpError`` is the one error type: every failure (an HTTP error, a connection, credentials,
  an operation that ended in error, a timeout, input the API cannot take, writers that kept
  conflicting) is a GcpError with a ``kind``, the HTTP status, Google's error status, reason,
  message, and the missing permission of a 403. It becomes ``fail_json`` at the edge and only
  there (``GcpModule.run``). Messages name the permission on a 403 and the resource on a 404.
* ``converge`` is the one runner of the GCP modules (amazon.aws's waiters and error funnel are
  its models): a ``GcpResource`` says how to read its resource and which ``Change``s bring it
  to what the task asks (``plan``); ``converge`` validates before any request, reads once,
  reports the plan in check mode, otherwise sends the changes in order, waits for each
  operation (all but the last one when ``wait=false``), re-reads and plans again when a write
  meets a concurrent change (a stale IAM etag, a stale compute fingerprint), and builds the
  result with ``changed``, ``actions``, ``operations``, ``diff`` and ``api_log``.

Clock, sleep and random source are injectable so that the retry and polling state machines
are unit-tested without real sleeps. Nothing here ever puts a token, a key or a request body
into a message or a result.
"""

from __future__ import annotations

import copy
import email.utils
import json
import os
import random
import re
import sys
import time
import uuid
from importlib.util import find_spec

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._render import (
    GCP_DIR,
    RenderError,
    clean_query,
    dump_json,
    numbered_path,
    write_text,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._http import (
    HttpConnectionError,
    HttpReadTimeout,
    HttpTransportError,
    KeepAliveSession,
)


def _installed(name):
    """Whether a module can be imported, without importing it."""
    try:
        return find_spec(name) is not None
    except (ImportError, ValueError):  # pragma: no cover - a parent package is missing
        return False


# requests and google-auth are imported where they are used (_requests, _google_auth); these say whether they can be.
HAS_REQUESTS = _installed("requests")
HAS_GOOGLE_AUTH = _installed("google.auth")


def _requests():
    """The requests module, imported on first use."""
    import requests

    return requests


def _google_auth():
    """The google-auth modules, imported on first use (a service account key or ADC)."""
    import google.auth
    import google.auth.exceptions
    import google.auth.transport.requests
    import google.oauth2.service_account

    return google


DEFAULT_API_ENDPOINT = "https://{service}.googleapis.com/"
DEFAULT_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
SERVICES = ("container", "compute", "cloudresourcemanager", "certificatemanager", "monitoring")
RETRY_STATUSES = (429, 500, 502, 503, 504)
AUTH_KINDS = ("application", "serviceaccount", "accesstoken")
OPERATION_STYLES = ("container", "compute", "longrunning")
RETRY_AFTER_CAP = 300.0
"""A server asking for more than five minutes between attempts is not waited for that long."""


def gcp_argument_spec():
    """The options of the ``gke_ai.inference_gateway.gcp`` doc fragment."""
    return dict(
        project=dict(type="str", fallback=(env_fallback, ["GCP_PROJECT"])),
        auth_kind=dict(type="str", default="application", choices=list(AUTH_KINDS),
                       fallback=(env_fallback, ["GCP_AUTH_KIND"])),
        service_account_file=dict(type="path", fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_FILE"])),
        service_account_contents=dict(type="jsonarg", no_log=True,
                                      fallback=(env_fallback, ["GCP_SERVICE_ACCOUNT_CONTENTS"])),
        access_token=dict(type="str", no_log=True, fallback=(env_fallback, ["GCP_ACCESS_TOKEN"])),
        scopes=dict(type="list", elements="str", default=list(DEFAULT_SCOPES),
                    fallback=(env_fallback, ["GCP_SCOPES"])),
        api_endpoint=dict(type="str", default=DEFAULT_API_ENDPOINT,
                          fallback=(env_fallback, ["INFGW_GCP_API_ENDPOINT"])),
        max_retries=dict(type="int", default=6),
        request_timeout=dict(type="float", default=60.0),
    )


def gcp_render_argument_spec():
    """The options of the ``gke_ai.inference_gateway.gcp.render`` doc fragment (modules run by ``converge``)."""
    return dict(render_dir=dict(type="path"))


def gcp_wait_argument_spec():
    """The options of the ``gke_ai.inference_gateway.gcp.wait`` doc fragment."""
    return dict(
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=1200),
    )


# --------------------------------------------------------------------------------------
# errors


class GcpError(Exception):
    """Every failure talking to Google Cloud, with what the user needs to act on it.

    ``kind`` is a short stable code: ``api`` (an HTTP error from the API), ``connection``,
    ``auth`` (credentials could not be built or refreshed), ``operation`` (a long-running
    operation ended in error), ``timeout`` (an operation did not finish in time), ``invalid``
    (the task asks for something the API cannot do) and ``conflict`` (concurrent writers won
    every retry).
    """

    def __init__(self, msg, kind="api", http_status=None, status=None, reason=None, message=None,
                 permission=None, resource=None, operation=None, url=None, method=None, attempts=None):
        super().__init__(msg)
        self.msg = msg
        self.kind = kind
        self.http_status = http_status
        self.status = status
        self.reason = reason
        self.message = message
        self.permission = permission
        self.resource = resource
        self.operation = operation
        self.url = url
        self.method = method
        self.attempts = attempts

    def to_result(self):
        """Keyword arguments for ``fail_json`` (``msg`` and a structured ``error``)."""
        error = {"kind": self.kind}
        for key in ("http_status", "status", "reason", "message", "permission", "resource", "operation",
                    "method", "url", "attempts"):
            value = getattr(self, key)
            if value is not None:
                error[key] = value
        return {"msg": self.msg, "error": error}


_PERMISSION_PATTERNS = (
    re.compile(r"[Pp]ermission '([A-Za-z0-9_.]+)' denied"),
    re.compile(r"[Rr]equired '([A-Za-z0-9_.]+)' permission"),
    re.compile(r"\b(?:permission|Permission)s? \(?['\"]?([a-z][a-zA-Z0-9]*\.[a-zA-Z0-9]+\.[a-zA-Z0-9]+)"),
    re.compile(r"\b([a-z][a-zA-Z0-9]*\.[a-zA-Z0-9]+\.[a-zA-Z0-9]+) permission"),
)


def permission_from_message(message):
    """The IAM permission a 403 message names (``container.nodePools.create``), or None."""
    for pattern in _PERMISSION_PATTERNS:
        m = pattern.search(message or "")
        if m:
            return m.group(1)
    return None


def parse_error_body(text):
    """Google's JSON error body -> dict(status, reason, message, permission).

    Handles the google.rpc.Status shape (``error.status``, ``error.details[]`` with an
    ``ErrorInfo`` whose ``metadata.permission`` names what is missing) and the older
    compute shape (``error.errors[].reason``). Anything else becomes the message, trimmed.
    """
    out = {"status": None, "reason": None, "message": None, "permission": None}
    try:
        body = json.loads(text) if text else None
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, str):  # OAuth style: {"error": "invalid_grant", "error_description": ...}
        out["reason"] = error
        out["message"] = body.get("error_description") or error
        return out
    if not isinstance(error, dict):
        text = (text or "").strip()
        out["message"] = text[:500] if text else None
        return out
    out["status"] = error.get("status")
    out["message"] = error.get("message")
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        metadata = detail.get("metadata") or {}
        if detail.get("reason") and not out["reason"]:
            out["reason"] = detail["reason"]
        if metadata.get("permission") and not out["permission"]:
            out["permission"] = metadata["permission"]
    for item in error.get("errors") or []:
        if isinstance(item, dict) and item.get("reason") and not out["reason"]:
            out["reason"] = item["reason"]
    if not out["permission"] and (error.get("code") == 403 or out["status"] == "PERMISSION_DENIED"):
        out["permission"] = permission_from_message(out["message"])
    return out


def error_from_response(http_status, text, action, resource=None, method=None, url=None, principal=None,
                        attempts=None):
    """Build the GcpError for an HTTP error answer; the message names the permission (403) or resource (404)."""
    parsed = parse_error_body(text)
    google_message = parsed["message"] or "(no message)"
    status = parsed["status"]
    label = "HTTP %s%s" % (http_status, " " + status if status else "")
    target = resource or "the resource"
    if http_status == 403:
        who = "the caller (%s)" % principal if principal else "the caller"
        if parsed["permission"]:
            missing = "%s lacks the IAM permission '%s' on %s" % (who, parsed["permission"], target)
        else:
            missing = "%s is not allowed to do this on %s (Google did not name the permission)" % (who, target)
        msg = "%s failed: permission denied: %s (%s): %s" % (action, missing, label, google_message)
    elif http_status == 404:
        msg = "%s failed: %s not found (%s): %s" % (action, target, label, google_message)
    elif http_status == 401:
        msg = ("%s failed: the credentials were rejected (%s); check auth_kind and the token or service "
               "account: %s" % (action, label, google_message))
    elif http_status == 409:
        msg = "%s failed: conflict on %s (%s): %s" % (action, target, label, google_message)
    else:
        msg = "%s failed on %s (%s): %s" % (action, target, label, google_message)
    if attempts and attempts > 1:
        msg += " (after %d attempts)" % attempts
    return GcpError(msg, kind="api", http_status=http_status, status=status, reason=parsed["reason"],
                    message=parsed["message"], permission=parsed["permission"], resource=resource,
                    method=method, url=url, attempts=attempts)


# --------------------------------------------------------------------------------------
# retries


class RetryPolicy(object):
    """Exponential back-off with jitter, bounded by ``max_retries``.

    The delay before retry ``n`` (0-based) is drawn from ``[d/2, d]`` with
    ``d = min(max_delay, base_delay * 2**n)`` ("equal jitter": never zero, never in step with
    other clients). A ``Retry-After`` from the server wins when it asks for longer, up to
    ``RETRY_AFTER_CAP`` seconds.
    """

    def __init__(self, max_retries=6, base_delay=1.0, max_delay=30.0, statuses=RETRY_STATUSES):
        self.max_retries = max(0, int(max_retries))
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self.statuses = tuple(statuses)

    def should_retry_status(self, http_status, attempt):
        return http_status in self.statuses and attempt < self.max_retries

    def should_retry_exception(self, exc, method, attempt):
        return attempt < self.max_retries and is_retryable_exception(exc, method)

    def delay(self, attempt, retry_after=None, rng=random.random):
        ceiling = min(self.max_delay, self.base_delay * (2 ** attempt))
        delay = ceiling / 2.0 + rng() * ceiling / 2.0
        if retry_after is not None:
            delay = max(delay, min(float(retry_after), RETRY_AFTER_CAP))
        return delay


def is_retryable_exception(exc, method):
    """Connection errors are retried for every method (the request never got an answer);
    a read timeout only for GET, where repeating cannot apply a change twice."""
    if isinstance(exc, HttpConnectionError):
        return True
    if isinstance(exc, HttpReadTimeout):
        return method.upper() == "GET"
    requests = sys.modules.get("requests")  # an exception of requests' means it is imported
    if requests is None:
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        return True
    if isinstance(exc, requests.exceptions.Timeout):
        return method.upper() == "GET"
    return False


def transport_exceptions():
    """The exception types of a transport that got no answer: HttpSession's, and requests' once it is imported."""
    requests = sys.modules.get("requests")
    if requests is None:
        return (HttpTransportError,)
    return (HttpTransportError, requests.exceptions.RequestException)


def parse_retry_after(value, now=None):
    """``Retry-After`` (seconds or an HTTP date) -> seconds to wait, or None."""
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


# --------------------------------------------------------------------------------------
# urls


def build_url(endpoint, service, path):
    """``api_endpoint`` template + Google's path.

    ``build_url("https://{service}.googleapis.com/", "compute", "compute/v1/projects/p")``
    is ``https://compute.googleapis.com/compute/v1/projects/p``; the local fake's
    ``http://127.0.0.1:8470/{service}/`` gives ``http://127.0.0.1:8470/compute/compute/v1/projects/p``.
    """
    if service not in SERVICES:
        raise ValueError("unknown service %r" % service)
    base = endpoint.replace("{service}", service) if "{service}" in endpoint else endpoint
    return base.rstrip("/") + "/" + path.lstrip("/")


def validate_endpoint(endpoint):
    """An error message for a bad ``api_endpoint`` template, or None."""
    if not re.match(r"^https?://[^/\s]+", endpoint or ""):
        return "api_endpoint must be an http(s) URL template such as %s, got %r" % (DEFAULT_API_ENDPOINT, endpoint)
    if "{" in endpoint.replace("{service}", ""):
        return "api_endpoint may only contain the placeholder {service}, got %r" % endpoint
    return None


# --------------------------------------------------------------------------------------
# transport


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def http_session_usable(environ=None):
    """Whether ``HttpSession`` does what a requests session would: no proxy in the environment (requests honours
    those, HttpSession does not), and requests' certificate bundle (certifi) at hand."""
    environ = os.environ if environ is None else environ
    if any(value and name.lower() in _PROXY_VARIABLES for name, value in environ.items()):
        return False
    return _installed("certifi")


def ca_locations(environ=None):
    """``(cafile, capath)`` as requests verifies: REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE (a file or a directory),
    else certifi's bundle."""
    environ = os.environ if environ is None else environ
    bundle = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE")
    if not bundle:
        import certifi

        return certifi.where(), None
    return (None, bundle) if os.path.isdir(bundle) else (bundle, None)


class HttpSession(KeepAliveSession):
    """KeepAliveSession verifying TLS against the certificates requests would use (``ca_locations``), so that it
    behaves as the requests session it replaces. Used only where ``http_session_usable()``."""

    def default_tls_context(self):
        import ssl

        cafile, capath = ca_locations()
        return ssl.create_default_context(cafile=cafile, capath=capath)


def default_session(credentials):
    """The transport for ``credentials``: HttpSession for a bearer token where it behaves like requests
    (``http_session_usable``), otherwise a requests session (google-auth refreshes tokens through it)."""
    if isinstance(credentials, AccessTokenCredentials) and http_session_usable():
        return HttpSession()
    return _requests().Session()


# --------------------------------------------------------------------------------------
# credentials


class AccessTokenCredentials(object):
    """``auth_kind=accesstoken``: a bearer token as it is, never refreshed (no google-auth needed).

    The part of google-auth's credentials interface the client uses: ``token``,
    ``before_request`` (sets the ``authorization`` header) and ``refresh_token`` (None: a
    401 is final). ``repr`` never shows the token.
    """

    refresh_token = None

    def __init__(self, token):
        self.token = token

    def before_request(self, request, method, url, headers):
        headers["authorization"] = "Bearer %s" % self.token  # as google-auth writes it

    def __repr__(self):
        return "AccessTokenCredentials(token=<hidden>)"


def credentials_from_params(params, transport_request=None):
    """(credentials, project from the credentials or None) for the auth options.

    Raises GcpError(kind="auth") with a message that never quotes a secret.
    """
    kind = params.get("auth_kind") or "application"
    scopes = params.get("scopes") or list(DEFAULT_SCOPES)
    if kind == "accesstoken":
        token = params.get("access_token")
        if not token:
            raise GcpError("auth_kind=accesstoken needs access_token (or the GCP_ACCESS_TOKEN environment variable)",
                           kind="auth")
        return AccessTokenCredentials(token), None
    if not HAS_GOOGLE_AUTH:
        raise GcpError(missing_required_lib("google-auth", reason="for auth_kind=%s" % kind), kind="auth")
    google = _google_auth()
    if kind == "serviceaccount":
        info = params.get("service_account_contents")
        path = params.get("service_account_file")
        if info and path:
            raise GcpError("auth_kind=serviceaccount takes service_account_file or service_account_contents, "
                           "not both", kind="auth")
        if info:
            try:
                info = json.loads(info) if isinstance(info, str) else info
            except ValueError:
                raise GcpError("service_account_contents is not a JSON service account key", kind="auth")
            source = "service_account_contents"
        elif path:
            try:
                with open(path) as f:
                    info = json.load(f)
            except (IOError, OSError) as e:
                raise GcpError("cannot read service_account_file %s: %s" % (path, e.strerror or e), kind="auth")
            except ValueError:
                raise GcpError("service_account_file %s is not a JSON service account key" % path, kind="auth")
            source = "service_account_file %s" % path
        else:
            raise GcpError("auth_kind=serviceaccount needs service_account_file or service_account_contents "
                           "(or GCP_SERVICE_ACCOUNT_FILE / GCP_SERVICE_ACCOUNT_CONTENTS)", kind="auth")
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise GcpError("%s is not a service account key (its type must be service_account)" % source, kind="auth")
        try:
            creds = google.oauth2.service_account.Credentials.from_service_account_info(info, scopes=scopes)
        except (ValueError, KeyError) as e:
            missing = " (missing %s)" % e if isinstance(e, KeyError) else ""
            raise GcpError("%s is not a usable service account key%s" % (source, missing), kind="auth")
        return creds, info.get("project_id")
    try:
        creds, project = google.auth.default(scopes=scopes, request=transport_request)
    except google.auth.exceptions.DefaultCredentialsError as e:
        raise GcpError("auth_kind=application found no Application Default Credentials: %s. Run "
                       "'gcloud auth application-default login', set GOOGLE_APPLICATION_CREDENTIALS, or use "
                       "auth_kind=serviceaccount or accesstoken" % e, kind="auth")
    return creds, project


def principal_of(credentials):
    """A printable identity of the credentials (service account e-mail), or None."""
    email_ = getattr(credentials, "service_account_email", None)
    if isinstance(email_, str) and "@" in email_:
        return email_
    return None


# --------------------------------------------------------------------------------------
# operations


def operation_name(op):
    name = (op or {}).get("name") or ""
    return name.rsplit("/", 1)[-1] if name else "(unnamed)"


def operation_done(style, op):
    if style == "longrunning":
        return bool(op.get("done"))
    return op.get("status") == "DONE"


def operation_error(style, op):
    """The error of a finished operation as ``(code, message)``, or None when it succeeded."""
    if style == "compute":
        errors = ((op.get("error") or {}).get("errors")) or []
        if errors:
            parts = []
            code = None
            for e in errors:
                code = code or e.get("code")
                parts.append("%s: %s" % (e.get("code"), e.get("message")) if e.get("code") else str(e.get("message")))
            return code or op.get("httpErrorStatusCode"), "; ".join(parts)
        if op.get("httpErrorStatusCode") and op.get("httpErrorStatusCode") >= 400:
            return op["httpErrorStatusCode"], op.get("httpErrorMessage") or "operation failed"
        return None
    error = op.get("error")
    if isinstance(error, dict) and (error.get("code") or error.get("message")):
        return error.get("code"), error.get("message") or "operation failed (code %s)" % error.get("code")
    if style == "container" and op.get("statusMessage") and op.get("status") == "DONE" and not op.get("error") \
            and op.get("statusMessage", "").lower().startswith(("error", "failed")):
        return None, op["statusMessage"]
    return None


def _last_segment(url):
    return (url or "").rstrip("/").rsplit("/", 1)[-1]


def operation_path(style, op, project=None, location=None):
    """Google's path to GET the operation again."""
    name = op.get("name") or ""
    if style == "longrunning":
        return "v1/" + name.lstrip("/")
    if style == "container":
        location = location or op.get("location") or op.get("zone")
        return "v1/projects/%s/locations/%s/operations/%s" % (project, location, operation_name(op))
    if op.get("region"):
        scope = "regions/%s" % _last_segment(op["region"])
    elif op.get("zone"):
        scope = "zones/%s" % _last_segment(op["zone"])
    else:
        scope = "global"
    return "compute/v1/projects/%s/%s/operations/%s" % (project, scope, operation_name(op))


class PollSchedule(object):
    """Intervals between operation polls: quick at first (short operations finish in a second or
    two), then growing to ``max_interval`` so a ten-minute node pool creation costs tens of polls."""

    def __init__(self, initial=0.5, factor=1.5, max_interval=10.0):
        self.initial = initial
        self.factor = factor
        self.max_interval = max_interval

    def intervals(self):
        interval = self.initial
        while True:
            yield interval
            interval = min(self.max_interval, interval * self.factor)


# --------------------------------------------------------------------------------------
# client


class GcpClient(object):
    """REST calls to Google Cloud with retries, credential refresh and operation polling."""

    def __init__(self, credentials, endpoint=DEFAULT_API_ENDPOINT, retry=None, timeout=60.0, session=None,
                 clock=time.monotonic, sleep=time.sleep, rng=random.random, poll=None):
        self.credentials = credentials
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.session = session if session is not None else default_session(credentials)
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.poll = poll or PollSchedule()
        self.log = []  # what happened, for the result: retries, polls (no bodies, no headers)
        self.calls = 0
        self._auth_request = None

    # -- auth ------------------------------------------------------------------------------
    def _auth_headers(self, method, url, force_refresh=False):
        headers = {}
        if self.credentials is None:
            return headers
        if isinstance(self.credentials, AccessTokenCredentials):
            self.credentials.before_request(None, method, url, headers)
            return headers
        if not HAS_GOOGLE_AUTH:  # pragma: no cover - credentials_from_params needs google-auth for these
            self.credentials.before_request(self._auth_request, method, url, headers)
            return headers
        google = _google_auth()
        if self._auth_request is None:
            self._auth_request = google.auth.transport.requests.Request(self.session)
        try:
            if force_refresh:
                self.credentials.refresh(self._auth_request)
            self.credentials.before_request(self._auth_request, method, url, headers)
        except google.auth.exceptions.RefreshError as e:
            who = principal_of(self.credentials) or "the credentials"
            raise GcpError("could not get an access token for %s: %s" % (who, _refresh_reason(e)), kind="auth")
        except google.auth.exceptions.TransportError as e:
            raise GcpError("could not reach the token endpoint: %s" % e, kind="auth")
        return headers

    def _can_refresh(self):
        """A plain access token cannot be refreshed; service account and ADC credentials can
        (ADC of an authorized user only with its refresh token)."""
        if self.credentials is None or isinstance(self.credentials, AccessTokenCredentials):
            return False
        user_credentials = getattr(sys.modules.get("google.oauth2.credentials"), "Credentials", None)
        if user_credentials is not None and isinstance(self.credentials, user_credentials):
            return bool(getattr(self.credentials, "refresh_token", None))
        return True

    # -- requests --------------------------------------------------------------------------
    def request(self, method, service, path, body=None, query=None, action=None, resource=None):
        """One API call; returns the decoded JSON answer (``{}`` when empty). Raises GcpError."""
        url = build_url(self.endpoint, service, path)
        action = action or "%s %s" % (method, path)
        attempt = 0
        refreshed = False
        while True:
            headers = self._auth_headers(method, url)
            headers["Accept"] = "application/json"
            data = None
            if body is not None:
                headers["Content-Type"] = "application/json"
                data = json.dumps(body)
            self.calls += 1
            try:
                resp = self.session.request(method, url, params=query, data=data, headers=headers,
                                            timeout=self.timeout)
            except transport_exceptions() as e:
                if self.retry.should_retry_exception(e, method, attempt):
                    delay = self.retry.delay(attempt, rng=self.rng)
                    self.log.append({"event": "retry", "action": action, "reason": type(e).__name__,
                                     "delay": round(delay, 3)})
                    self.sleep(delay)
                    attempt += 1
                    continue
                raise GcpError("%s failed: cannot reach %s: %s%s" % (action, url, type(e).__name__,
                                                                     _short_exc(e)),
                               kind="connection", resource=resource, method=method, url=url, attempts=attempt + 1)
            status = resp.status_code
            if status == 401 and not refreshed and self._can_refresh():
                refreshed = True
                self._auth_headers(method, url, force_refresh=True)
                continue
            if self.retry.should_retry_status(status, attempt):
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                delay = self.retry.delay(attempt, retry_after=retry_after, rng=self.rng)
                self.log.append({"event": "retry", "action": action, "reason": "HTTP %d" % status,
                                 "delay": round(delay, 3)})
                self.sleep(delay)
                attempt += 1
                continue
            if status >= 400:
                raise error_from_response(status, resp.text, action, resource=resource, method=method, url=url,
                                          principal=principal_of(self.credentials), attempts=attempt + 1)
            if not resp.content:
                return {}
            try:
                return resp.json()
            except ValueError:
                raise GcpError("%s: the API answered HTTP %d with a body that is not JSON" % (action, status),
                               kind="api", http_status=status, resource=resource, method=method, url=url)

    def get(self, service, path, action=None, resource=None, query=None):
        """GET that returns None on 404 (the resource does not exist)."""
        try:
            return self.request("GET", service, path, query=query, action=action, resource=resource)
        except GcpError as e:
            if e.http_status == 404:
                return None
            raise

    # -- operations ------------------------------------------------------------------------
    def wait_operation(self, op, style, service, timeout, action, project=None, location=None):
        """Poll ``op`` until done; returns the finished operation. Raises GcpError on error or timeout."""
        if style not in OPERATION_STYLES:
            raise ValueError("unknown operation style %r" % style)
        start = self.clock()
        deadline = start + timeout
        name = operation_name(op)
        polls = 0
        intervals = self.poll.intervals()
        while not operation_done(style, op):
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise GcpError("%s: operation %s is not done after %ss (status %s); it carries on in Google Cloud, "
                               "run the task again to pick up its result"
                               % (action, name, timeout, _op_status(style, op)), kind="timeout", operation=name)
            self.sleep(min(next(intervals), remaining))
            polls += 1
            op = self.request("GET", service, operation_path(style, op, project, location),
                              action="%s (polling operation %s)" % (action, name), resource="operation %s" % name)
        elapsed = round(self.clock() - start, 3)
        self.log.append({"event": "operation", "action": action, "operation": name, "polls": polls,
                         "seconds": elapsed})
        error = operation_error(style, op)
        if error:
            code, message = error
            shown = " %s" % code if code else ""
            raise GcpError("%s failed: operation %s ended in error%s: %s" % (action, name, shown, message),
                           kind="operation", operation=name, status=str(code) if code is not None else None,
                           message=message)
        return op

    def wait_until(self, read, done, value, timeout, describe):
        """A waiter: poll ``read()`` (starting from ``value``) until ``done(value)``, on the operation poll schedule;
        returns the last value. ``describe(value)`` says what is still awaited when ``timeout`` seconds pass."""
        deadline = self.clock() + timeout
        intervals = self.poll.intervals()
        while not done(value):
            if self.clock() >= deadline:
                raise GcpError("%s after %ss; run the task again later" % (describe(value), timeout), kind="timeout")
            self.sleep(next(intervals))
            value = read()
        return value


def _op_status(style, op):
    if style == "longrunning":
        return "done" if op.get("done") else "not done"
    return op.get("status") or "unknown"


def _short_exc(e):
    text = str(e)
    return ": " + text[:300] if text else ""


def _refresh_reason(e):
    """The OAuth error of a RefreshError without echoing anything that could be secret."""
    args = getattr(e, "args", ())
    if len(args) > 1 and isinstance(args[1], dict):
        body = args[1]
        return "%s%s" % (body.get("error", "error"), ": %s" % body["error_description"]
                         if body.get("error_description") else "")
    return str(args[0]) if args else "refresh failed"


def request_id():
    """A compute ``requestId``: a retried mutation carrying the same one is applied once."""
    return str(uuid.uuid4())


# --------------------------------------------------------------------------------------
# diff helpers


def diff_result(before, after, header=None):
    """An Ansible ``diff`` dict of the managed fields."""
    diff = {"before": before if before is not None else {}, "after": after if after is not None else {}}
    if header:
        diff["before_header"] = header
        diff["after_header"] = header
    return diff


def changed_keys(current, desired):
    """Keys of ``desired`` (those that are not None) whose value differs in ``current``, sorted."""
    return sorted(k for k, v in desired.items() if v is not None and (current or {}).get(k) != v)


def managed_view(values, keys):
    """``values`` limited to ``keys`` (for diffs of the managed fields only)."""
    return {k: copy.deepcopy(values.get(k)) for k in keys} if values is not None else None


# --------------------------------------------------------------------------------------
# module base


class GcpModule(AnsibleModule):
    """``AnsibleModule`` with the shared GCP options, a lazily built client and the error edge."""

    def __init__(self, argument_spec, wait=False, render=False, **kwargs):
        spec = gcp_argument_spec()
        if wait:
            spec.update(gcp_wait_argument_spec())
        if render:
            spec.update(gcp_render_argument_spec())
        spec.update(argument_spec)
        kwargs.setdefault("supports_check_mode", True)
        super().__init__(argument_spec=spec, **kwargs)
        if not HAS_REQUESTS:
            self.fail_json(msg=missing_required_lib("requests"))
        if not HAS_GOOGLE_AUTH and self.params["auth_kind"] != "accesstoken":
            self.fail_json(msg=missing_required_lib("google-auth"))
        problem = validate_endpoint(self.params["api_endpoint"])
        if problem:
            self.fail_json(msg=problem)
        if self.params["max_retries"] < 0:
            self.fail_json(msg="max_retries must be >= 0")
        if self.params["request_timeout"] <= 0:
            self.fail_json(msg="request_timeout must be > 0")
        if wait and self.params["timeout"] <= 0:
            self.fail_json(msg="timeout must be > 0")
        self._client = None
        self._project = None

    def _connect(self):
        creds, cred_project = credentials_from_params(self.params)
        self._project = self.params.get("project") or cred_project
        self._client = GcpClient(creds, endpoint=self.params["api_endpoint"],
                                 retry=RetryPolicy(max_retries=self.params["max_retries"]),
                                 timeout=self.params["request_timeout"])

    @property
    def client(self):
        if self._client is None:
            self._connect()
        return self._client

    @property
    def project(self):
        if self.params.get("render_dir") and self.params.get("project"):
            return self.params["project"]  # render mode needs no credentials
        if self._client is None:
            self._connect()
        if not self._project:
            raise GcpError("project is required: set the project option or GCP_PROJECT (the credentials name none)",
                           kind="invalid")
        return self._project

    def run_resource(self, resource_class):
        """Converge the task's resource (a ``GcpResource`` subclass) and exit with the result."""
        self.run(lambda module: converge(resource_class(module)))

    def run(self, func):
        """Call ``func(self)`` for the result dict; a GcpError becomes ``fail_json`` here and only here."""
        try:
            result = func(self)
        except GcpError as e:
            fail = e.to_result()
            if self._client is not None and self._client.log:
                fail["api_log"] = self._client.log
            self.fail_json(**fail)
        if self._client is not None:
            result.setdefault("api_log", self._client.log)
        self.exit_json(**result)


# --------------------------------------------------------------------------------------
# the resource runner


class Change(object):
    """One write of a plan: an API call, and the long-running operation it may start.

    ``action`` is its stable name in the result (``create``, ``set_autoscaling``, ``add_rule:1000``);
    ``description`` names it in messages and the api log (``add rule 1000 to security policy x``);
    ``resource`` is what a 404 or 403 of the call is about.
    """

    def __init__(self, action, method, path, body=None, query=None, description=None, resource=None):
        self.action = action
        self.method = method
        self.path = path
        self.body = body
        self.query = query
        self.description = description or action.replace("_", " ")
        self.resource = resource

    def __repr__(self):
        return "Change(%s: %s %s)" % (self.action, self.method, self.path)


class Plan(object):
    """What a task changes: the ``Change``s in order, the managed fields ``before`` and ``after`` (the diff), and
    the module's own result keys (``extra``) that the plan knows."""

    def __init__(self, changes=None, before=None, after=None, **extra):
        self.changes = list(changes or [])
        self.before = before
        self.after = after
        self.extra = extra


class GcpResource(object):
    """One resource as a module manages it; ``converge`` runs it. Subclasses set the class attributes and
    implement ``label``, ``read`` and ``plan`` (and ``validate``, ``result`` where they have something to say).

    The default hooks fit most resources: ``send`` makes the API call, ``before_changes`` is a no-op,
    ``after_changes`` reads the resource again once its operations are done.
    """

    service = None  # container | compute | cloudresourcemanager | certificatemanager
    operation_style = None  # container | compute | longrunning; None: the calls answer at once (no operation)
    conflict_statuses = ()  # HTTP statuses of a write that mean "changed since it was read": read, plan, write again
    conflict_retries = 1
    result_key = None  # the result key that holds the resource as the API returns it (node_pool, subnetwork...)

    def __init__(self, module):
        self.module = module
        self.params = module.params

    @property
    def client(self):
        return self.module.client

    @property
    def project(self):
        return self.module.project

    @property
    def wait(self):
        return self.params.get("wait", True)

    @property
    def absent(self):
        return self.params.get("state") == "absent"

    @staticmethod
    def deletion_plan(current, delete, **extra):
        """The plan of ``state: absent``: nothing when ``current`` is None, else the one ``delete`` Change."""
        if current is None:
            return Plan([], {}, {}, **extra)
        return Plan([delete], {"exists": True}, {"exists": False}, **extra)

    def label(self):
        """How messages name the resource, for example ``regional (us-central1) security policy x``."""
        raise NotImplementedError

    def validate(self):
        """Problems with the task's input, found before any request (a list of messages)."""
        return []

    def read(self):
        """The resource as the API returns it, or None when it does not exist."""
        raise NotImplementedError

    def plan(self, current):
        """The ``Plan`` from ``current`` to what the task asks; raise GcpError(kind="invalid") for what cannot be done."""
        raise NotImplementedError

    def before_changes(self, current):
        """Called once before the first write (not in check mode); returns the resource to write to."""
        return current

    def send(self, change):
        """One write; returns the API's answer (an operation, or the written resource)."""
        return self.client.request(change.method, self.service, change.path, body=change.body, query=change.query,
                                   action=change.description, resource=change.resource or self.label())

    def wait_operation(self, op, change):
        return self.client.wait_operation(op, self.operation_style, self.service, self.params["timeout"],
                                          change.description, project=self.project,
                                          location=self.params.get("location"))

    def after_changes(self, current, answers):
        """The resource after the writes: read again once their operations are done, else as it was."""
        if self.absent:
            return None
        return self.read() if self.wait else current

    def conflict_delay(self, attempt):
        """Seconds to wait before reading again after the ``attempt``-th conflict."""
        return 0.0

    def result(self, final, plan, attempts):
        """The module's own result keys, from the resource as it is after the task."""
        return {self.result_key: final or {}} if self.result_key else {}

    def render_current(self):
        """What render mode plans from, without a read: the resource does not exist yet."""
        return None

    def render_note(self):
        """What a reader of the rendered requests must know to send them (None: send them as they are)."""
        return None


def operation_label(style, op):
    """How a result lists an operation: the short name, the full one for google.longrunning."""
    name = (op or {}).get("name") or ""
    return name if style == "longrunning" else name.rsplit("/", 1)[-1]


def render_requests(resource, plan):
    """The requests of ``plan`` as render mode writes them: method, the URL as ``api_endpoint`` gives it, query
    (without the random requestId), body."""
    out = []
    for change in plan.changes:
        out.append({"action": change.action, "description": change.description, "method": change.method,
                    "url": build_url(resource.module.params["api_endpoint"], resource.service, change.path),
                    "query": clean_query(change.query), "body": change.body})
    return out


def render(resource):
    """Render mode: plan against :meth:`GcpResource.render_current` (nothing exists) without a request, and write
    the requests to ``gcp/NNN-<module>-<name>.json`` of ``render_dir``. Raises GcpError."""
    module = resource.module
    if resource.absent:
        raise GcpError("render_dir: render mode writes what would be created; state=absent has nothing to render",
                       kind="invalid")
    plan = resource.plan(resource.render_current())
    requests = render_requests(resource, plan)
    params = module.params
    kind = type(resource).__module__.rsplit(".", 1)[-1].lstrip("_")  # _gke_node_pool: the module's name
    step = "%s-%s" % (kind, params.get("name") or params.get("role") or "")
    try:
        path = numbered_path(params["render_dir"], step, ".json", subdir=GCP_DIR)
        rendered = {"resource": resource.label(), "requests": requests}
        if resource.render_note():
            rendered["note"] = resource.render_note()
        write_text(path, dump_json(rendered),
                   private=bool(params.get("private_key")))
    except RenderError as e:
        raise GcpError(str(e), kind="render")
    return dict(changed=False, rendered=path, actions=[r["action"] for r in requests], requests=len(requests))


def converge(resource):
    """Read once, plan, and (outside check mode) write the plan; returns the module result. Raises GcpError."""
    module = resource.module
    problems = resource.validate()
    if problems:
        raise GcpError("; ".join(problems), kind="invalid")
    if module.params.get("render_dir"):
        return render(resource)
    current = resource.read()
    plan = resource.plan(current)
    actions, operations, answers = [], [], []
    attempts = 1
    if plan.changes and not module.check_mode:
        current = resource.before_changes(current)
        pending = list(plan.changes)
        while pending:
            change = pending[0]
            try:
                answer = resource.send(change)
            except GcpError as e:
                if e.http_status not in resource.conflict_statuses:
                    raise
                if attempts > resource.conflict_retries:
                    raise GcpError("%s: %s kept changing while the task updated it; gave up after %d attempts (%s)"
                                   % (change.description, resource.label(), attempts, e.message or e.msg),
                                   kind="conflict", http_status=e.http_status, status=e.status,
                                   resource=resource.label(), attempts=attempts)
                delay = resource.conflict_delay(attempts)
                resource.client.log.append({"event": "conflict", "action": change.description,
                                            "reason": e.status or "HTTP %s" % e.http_status, "delay": round(delay, 3)})
                if delay:
                    resource.client.sleep(delay)
                attempts += 1
                current = resource.read()
                plan = resource.plan(current)
                pending = list(plan.changes)
                continue
            pending.pop(0)
            actions.append(change.action)
            answers.append(answer)
            if resource.operation_style:
                operations.append(operation_label(resource.operation_style, answer))
                if resource.wait or pending:
                    resource.wait_operation(answer, change)
        final = resource.after_changes(current, answers)
    else:
        actions = [c.action for c in plan.changes]
        final = current
    result = dict(changed=bool(actions), actions=actions)
    if resource.operation_style:
        result["operations"] = operations
    result.update(plan.extra)
    if module._diff:
        result["diff"] = diff_result(plan.before, plan.after, header=resource.label())
    result.update(resource.result(final, plan, attempts))
    return result
