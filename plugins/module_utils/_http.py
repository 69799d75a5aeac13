# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A keep-alive HTTP(S) client on the standard library, for plugins whose calls are cheaper than importing requests.

Shared by the Google Cloud modules (``_gcp.HttpSession``, for a bearer token) and the Kubernetes read client of
k8s_apply_plan (``_kube_http.KubeClient``).
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import ssl
from urllib.parse import urlencode, urlsplit


class HttpTransportError(Exception):
    """KeepAliveSession got no answer (requests' RequestException)."""


class HttpConnectionError(HttpTransportError):
    """No connection, or it broke before the answer (requests' ConnectionError; retried for every method)."""


class HttpReadTimeout(HttpTransportError):
    """The answer did not come within the timeout (requests' ReadTimeout; retried for GET only)."""


class HttpResponse(object):
    """The part of ``requests.Response`` its callers read."""

    def __init__(self, status_code, headers, content):
        self.status_code = status_code
        self.headers = headers  # http.client.HTTPMessage: get() ignores the case of the name
        self.content = content

    @property
    def text(self):
        charset = self.headers.get_content_charset() if hasattr(self.headers, "get_content_charset") else None
        return self.content.decode(charset or "utf-8", "replace")

    def json(self):
        return json.loads(self.content)


class KeepAliveSession(object):
    """A keep-alive HTTP(S) client on http.client with the ``request`` method of ``requests.Session``: one connection
    per scheme, host and port, the timeout on connecting and on every read, TLS verified with ``tls_context`` (by
    default ``default_tls_context()``, the system's trust store). It raises HttpConnectionError and HttpReadTimeout
    where requests raises its ConnectionError and ReadTimeout, so that a retry policy treats both alike. It knows no
    proxies, redirects or content encodings: its callers (Google's APIs, a Kubernetes API server) need none."""

    def __init__(self, tls_context=None, resolve=None):
        self._connections = {}
        self._tls = tls_context
        # {(host, port): address}: connect there instead, keeping host in the Host header and as TLS server name
        # (curl --resolve), for requests to a load balancer by the names it routes on.
        self._resolve = dict(resolve or {})

    def default_tls_context(self):
        return ssl.create_default_context()

    def _tls_context(self):
        if self._tls is None:
            self._tls = self.default_tls_context()
        return self._tls

    def _connection(self, scheme, host, port, timeout):
        key = (scheme, host, port)
        conn = self._connections.get(key)
        if conn is not None and conn.sock is not None and _dropped(conn.sock):
            conn.close()  # the server closed the idle connection: open a new one, as urllib3 does
        if conn is None:
            address = self._resolve.get((host, port or (443 if scheme == "https" else 80)))
            if scheme == "https" and address:
                conn = _ResolvedHTTPSConnection(address, port, host, timeout=timeout, context=self._tls_context())
            elif scheme == "https":
                conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls_context())
            else:
                conn = http.client.HTTPConnection(address or host, port, timeout=timeout)
            self._connections[key] = conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return key, conn

    def request(self, method, url, params=None, data=None, headers=None, timeout=None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HttpConnectionError("not an http(s) URL: %s" % url)
        target = parts.path or "/"
        encoded = urlencode([(k, v) for k, v in (params or {}).items() if v is not None], doseq=True)
        query = [q for q in (parts.query, encoded) if q]
        if query:
            target += "?" + "&".join(query)
        if isinstance(data, str):
            data = data.encode("utf-8")
        key, conn = self._connection(parts.scheme, parts.hostname, parts.port, timeout)
        headers = dict(headers or {})
        if self._resolve and not any(k.lower() == "host" for k in headers):
            headers["Host"] = parts.netloc.rpartition("@")[2]
        try:
            if conn.sock is None:
                conn.connect()
            conn.request(method, target, body=data, headers=headers)
        except (OSError, http.client.HTTPException) as e:  # refused, unresolvable, connect timeout, TLS, reset
            self._drop(key)
            raise HttpConnectionError("%s: %s" % (type(e).__name__, e)) from e
        try:
            resp = conn.getresponse()
            content = resp.read()
        except socket.timeout as e:  # TimeoutError since Python 3.10
            self._drop(key)
            raise HttpReadTimeout("no answer within %ss: %s" % (timeout, e)) from e
        except (OSError, http.client.HTTPException) as e:  # reset or closed before the answer was complete
            self._drop(key)
            raise HttpConnectionError("%s: %s" % (type(e).__name__, e)) from e
        if resp.will_close:
            self._drop(key)
        return HttpResponse(resp.status, resp.headers, content)

    def _drop(self, key):
        conn = self._connections.pop(key, None)
        if conn is not None:
            conn.close()

    def close(self):
        for key in list(self._connections):
            self._drop(key)


class _ResolvedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a given address with another TLS server name (curl --resolve)."""

    def __init__(self, address, port, server_hostname, **kwargs):
        http.client.HTTPSConnection.__init__(self, address, port, **kwargs)
        self._server_hostname = server_hostname

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_hostname)


def _dropped(sock):
    """An idle keep-alive socket that is readable was closed by the server (or holds garbage): not reusable."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True
