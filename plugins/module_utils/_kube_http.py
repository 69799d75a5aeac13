# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small read-only Kubernetes API client on the standard library, for plugins that run on every re-run.

Importing the kubernetes Python client costs more than half a second here, in every forked worker that reads
the cluster; the reads of an apply plan take a few milliseconds. This client serves those reads (discovery, get,
list) over one kept-alive connection (``_http.KeepAliveSession``, shared with the Google Cloud modules). It
understands the connection settings of kubernetes.core (``K8S_AUTH_*``), kubeconfig files (client certificates,
tokens, token files and ``exec`` credential plugins such as ``gke-gcloud-auth-plugin``) and the in-cluster service
account. Anything else (auth providers, basic auth, proxies, several kubeconfig files...) raises
:class:`UnsupportedConnection`, and the caller falls back to the
kubernetes client, which handles every case: this is an optimisation, never a second implementation to trust.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import ssl
import subprocess
import tempfile

from urllib.parse import quote

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._http import (
    HttpTransportError,
    KeepAliveSession,
)

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None

_IN_CLUSTER = "/var/run/secrets/kubernetes.io/serviceaccount"
# kubernetes.core settings this client does not implement: with any of them set, the caller falls back.
_UNSUPPORTED_ENV = ("K8S_AUTH_USERNAME", "K8S_AUTH_PASSWORD", "K8S_AUTH_PROXY", "K8S_AUTH_PROXY_HEADERS",
                    "K8S_AUTH_NO_PROXY", "K8S_AUTH_IMPERSONATE_USER", "K8S_AUTH_IMPERSONATE_GROUPS",
                    "K8S_AUTH_PERSIST_CONFIG")


class UnsupportedConnection(Exception):
    """The connection settings need the kubernetes client."""


class KubeConnectionError(Exception):
    """The API server could not be reached (refused, reset, timed out, TLS failure)."""


class KubeApiError(Exception):
    def __init__(self, status, message):
        super(KubeApiError, self).__init__("%s %s" % (status, message))
        self.status = status


def _truthy(value):
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _data_file(data, suffix):
    """A 0600 temporary file holding PEM ``data`` (ssl reads certificates and keys from files only)."""
    handle, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
    return path


class Connection:
    """Where the API server is and how to authenticate; built by :func:`resolve_connection`."""

    def __init__(self, server, token=None, ca_file=None, ca_data=None, cert_file=None, key_file=None,
                 cert_data=None, key_data=None, verify=True):
        self.server = server.rstrip("/")
        self.token = token
        self.ca_file, self.ca_data = ca_file, ca_data
        self.cert_file, self.key_file = cert_file, key_file
        self.cert_data, self.key_data = cert_data, key_data
        self.verify = verify

    def ssl_context(self):
        context = ssl.create_default_context()
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.ca_file or self.ca_data:
            context = ssl.create_default_context(cafile=self.ca_file,
                                                 cadata=self.ca_data.decode() if self.ca_data else None)
        if self.cert_data or self.cert_file:
            temporary = []
            try:
                cert, key = self.cert_file, self.key_file
                if not cert:
                    cert = _data_file(self.cert_data, ".crt")
                    temporary.append(cert)
                if not key and self.key_data:
                    key = _data_file(self.key_data, ".key")
                    temporary.append(key)
                context.load_cert_chain(cert, key)
            finally:
                for path in temporary:
                    os.unlink(path)
        return context


def _exec_credential(spec, base_dir):
    """Run a kubeconfig ``exec`` credential plugin; returns (token, cert_data, key_data)."""
    command = spec.get("command")
    if not command:
        raise UnsupportedConnection("exec credential plugin without a command")
    if os.sep in command and not os.path.isabs(command):
        command = os.path.join(base_dir, command)
    env = dict(os.environ)
    env.update({item["name"]: item["value"] for item in spec.get("env") or []})
    env["KUBERNETES_EXEC_INFO"] = json.dumps({
        "apiVersion": spec.get("apiVersion", "client.authentication.k8s.io/v1"), "kind": "ExecCredential",
        "spec": {"interactive": False}})
    try:
        proc = subprocess.run([command] + list(spec.get("args") or []), env=env, capture_output=True,
                              timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UnsupportedConnection("exec credential plugin %s: %s" % (command, error))
    if proc.returncode != 0:
        raise UnsupportedConnection("exec credential plugin %s failed" % command)
    status = json.loads(proc.stdout).get("status") or {}
    cert = status.get("clientCertificateData")
    key = status.get("clientKeyData")
    return status.get("token"), cert.encode() if cert else None, key.encode() if key else None


def _from_kubeconfig(path, context_name):
    with open(path) as stream:
        config = yaml.safe_load(stream) or {}
    base_dir = os.path.dirname(os.path.abspath(path))

    def named(section, name):
        for entry in config.get(section) or []:
            if entry.get("name") == name:
                return entry.get(section[:-1]) or {}
        raise UnsupportedConnection("%s: no %s named %s" % (path, section[:-1], name))

    def local(file_name):
        return file_name if not file_name or os.path.isabs(file_name) else os.path.join(base_dir, file_name)

    context = named("contexts", context_name or config.get("current-context"))
    cluster = named("clusters", context.get("cluster"))
    user = named("users", context.get("user")) if context.get("user") else {}
    for field in ("proxy-url", "tls-server-name"):
        if cluster.get(field):
            raise UnsupportedConnection("cluster %s" % field)
    for field in ("auth-provider", "username", "password", "as", "as-groups"):
        if user.get(field):
            raise UnsupportedConnection("user %s" % field)
    token, cert_data, key_data = user.get("token"), None, None
    if user.get("tokenFile"):
        with open(local(user["tokenFile"])) as stream:
            token = stream.read().strip()
    if user.get("exec"):
        token, cert_data, key_data = _exec_credential(user["exec"], base_dir)
    if user.get("client-certificate-data"):
        cert_data = base64.b64decode(user["client-certificate-data"])
    if user.get("client-key-data"):
        key_data = base64.b64decode(user["client-key-data"])
    ca_data = base64.b64decode(cluster["certificate-authority-data"]) \
        if cluster.get("certificate-authority-data") else None
    return Connection(cluster["server"], token=token, ca_file=local(cluster.get("certificate-authority")),
                      ca_data=ca_data, cert_file=local(user.get("client-certificate")),
                      key_file=local(user.get("client-key")), cert_data=cert_data, key_data=key_data,
                      verify=not cluster.get("insecure-skip-tls-verify", False))


def resolve_connection(kubeconfig=None, context=None, host=None, api_key=None, ca_cert=None, client_cert=None,
                       client_key=None, validate_certs=None):
    """The connection kubernetes.core would use for these options and the ``K8S_AUTH_*`` environment."""
    if yaml is None:
        raise UnsupportedConnection("PyYAML missing")
    for name in _UNSUPPORTED_ENV:
        if os.environ.get(name):
            raise UnsupportedConnection(name)
    env = os.environ.get
    kubeconfig = kubeconfig or env("K8S_AUTH_KUBECONFIG")
    context = context or env("K8S_AUTH_CONTEXT")
    host = host or env("K8S_AUTH_HOST")
    api_key = api_key or env("K8S_AUTH_API_KEY")
    ca_cert = ca_cert or env("K8S_AUTH_SSL_CA_CERT")
    client_cert = client_cert or env("K8S_AUTH_CERT_FILE")
    client_key = client_key or env("K8S_AUTH_KEY_FILE")
    if validate_certs is None and env("K8S_AUTH_VERIFY_SSL") is not None:
        validate_certs = _truthy(env("K8S_AUTH_VERIFY_SSL"))
    if isinstance(kubeconfig, dict):
        raise UnsupportedConnection("an in-memory kubeconfig")
    if host:
        connection = Connection(host, token=api_key, ca_file=ca_cert, cert_file=client_cert, key_file=client_key)
    else:
        if not kubeconfig:
            paths = [p for p in (env("KUBECONFIG") or "").split(os.pathsep) if p]
            if len(paths) > 1:
                raise UnsupportedConnection("several kubeconfig files")
            kubeconfig = paths[0] if paths else os.path.expanduser("~/.kube/config")
        if os.path.exists(kubeconfig):
            connection = _from_kubeconfig(kubeconfig, context)
        elif env("KUBERNETES_SERVICE_HOST") and os.path.exists(os.path.join(_IN_CLUSTER, "token")):
            with open(os.path.join(_IN_CLUSTER, "token")) as stream:
                token = stream.read().strip()
            connection = Connection("https://%s:%s" % (env("KUBERNETES_SERVICE_HOST"),
                                                       env("KUBERNETES_SERVICE_PORT", "443")),
                                    token=token, ca_file=os.path.join(_IN_CLUSTER, "ca.crt"))
        else:
            raise UnsupportedConnection("no kubeconfig at %s and not in a cluster" % kubeconfig)
        if api_key:
            connection.token = api_key
        if ca_cert:
            connection.ca_file, connection.ca_data = ca_cert, None
        if client_cert:
            connection.cert_file, connection.cert_data = client_cert, None
        if client_key:
            connection.key_file, connection.key_data = client_key, None
    if validate_certs is not None:
        connection.verify = validate_certs
    return connection


class KubeClient:
    """GET-only access to the API: discovery, one object, a list, over one kept-alive connection."""

    def __init__(self, connection, timeout=30):
        self.connection = connection
        self.timeout = timeout
        self._session = KeepAliveSession(tls_context=connection.ssl_context()
                                         if connection.server.startswith("https:") else None)
        self._discovery = {}

    def close(self):
        self._session.close()

    def request(self, path, query=None):
        headers = {"Accept": "application/json", "User-Agent": "gke_ai.inference_gateway"}
        if self.connection.token:
            headers["Authorization"] = "Bearer " + self.connection.token
        try:
            response = self._session.request("GET", self.connection.server + path, params=query, headers=headers,
                                             timeout=self.timeout)
        except HttpTransportError as error:
            raise KubeConnectionError("cannot reach the API server %s: %s" % (self.connection.server, error))
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            try:
                message = response.json().get("message") or response.text
            except ValueError:
                message = response.text[:500]
            raise KubeApiError(response.status_code, "GET %s: %s" % (path, message))
        return response.json()

    def resource(self, api_version, kind):
        """(group, version, plural, namespaced) of a kind, or None when the cluster does not serve it."""
        if api_version not in self._discovery:
            path = "/api/v1" if api_version == "v1" else "/apis/" + api_version
            listing = self.request(path) or {}
            self._discovery[api_version] = {entry["kind"]: entry for entry in listing.get("resources") or []
                                            if "/" not in entry["name"]}
        entry = self._discovery[api_version].get(kind)
        if entry is None:
            return None
        group, _sep, version = api_version.rpartition("/")
        return group, version, entry["name"], entry.get("namespaced", False)

    def _path(self, resource, namespace, name=None):
        group, version, plural, namespaced = resource
        path = "/api/%s" % version if not group else "/apis/%s/%s" % (group, version)
        if namespaced and namespace:
            path += "/namespaces/" + quote(namespace, safe="")
        path += "/" + plural
        return path + ("/" + quote(name, safe="") if name else "")

    def get(self, resource, name, namespace=None):
        """One object, or None when it does not exist."""
        return self.request(self._path(resource, namespace if resource[3] else None, name))

    def list(self, resource, namespace=None, label_selector=None):
        """The items of a list, each with its apiVersion and kind (the API leaves them out of list items)."""
        query = {"labelSelector": label_selector} if label_selector else None
        found = self.request(self._path(resource, namespace if resource[3] else None), query) or {}
        api_version = found.get("apiVersion")
        kind = (found.get("kind") or "")[:-len("List")]
        items = found.get("items") or []
        for item in items:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items
