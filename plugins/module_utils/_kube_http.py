# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small Kubernetes API client on the standard library, and the connection kubernetes.core would make.

k8s_converge runs on the controller for every role, converged or not. Importing the kubernetes Python client
costs more than half a second in each forked worker, where the requests of a converged role take milliseconds;
this client serves them (discovery, get, list, server-side apply, delete, JSON patch) over one kept-alive
connection (``_http.KeepAliveSession``).

The connection is resolved exactly as kubernetes.core's ``module_utils/k8s/client.py`` resolves it (and the
kubernetes client under it), branch by branch:

1. each setting from the module parameter, else ``K8S_AUTH_<NAME>`` (booleans are false for 0, false and no);
2. ``host`` with ``api_key``, or with ``client_cert`` and ``client_key``: nothing is loaded;
3. else with ``kubeconfig`` or ``context``: that kubeconfig (``KUBECONFIG`` or ``~/.kube/config`` without the
   parameter; several files are merged, the first definition of a name wins) at that context;
4. else the pod's service account, and without one the default kubeconfig;
5. then every setting given overrides what was loaded: ``host`` keeps the loaded credentials, ``api_key``
   replaces the loaded token, ``ca_cert``, ``client_cert``, ``client_key``, ``validate_certs``.

Kubeconfig users authenticate, in kubernetes' order, by token (``token`` before ``tokenFile``), by an ``exec``
credential plugin (a token or a client certificate), or by client certificate files or data; certificates are
read only for an https server. Whatever this client does not implement raises :class:`UnsupportedConnection`
and the caller uses kubernetes.core's own client instead, which handles every case: a proxy that applies to the
server (``proxy``, ``K8S_AUTH_PROXY``, a kubeconfig ``proxy-url``, or ``HTTPS_PROXY``/``ALL_PROXY`` not bypassed
by ``no_proxy``/``NO_PROXY``), basic authentication, auth providers, impersonation, ``tls-server-name``, an
in-memory kubeconfig, and every configuration error (so that the error is kubernetes.core's own).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import ipaddress
import json
import os
import ssl
import subprocess
import tempfile
import time

from urllib.parse import quote, urlparse
from urllib.request import getproxies

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._http import (
    HttpTransportError,
    KeepAliveSession,
)

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None

IN_CLUSTER_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# kubernetes.core's connection options (module_utils/args_common.py AUTH_ARG_SPEC), with the kubernetes client's
# names it also accepts.
AUTH_OPTIONS = ("kubeconfig", "context", "host", "api_key", "username", "password", "validate_certs", "ca_cert",
                "client_cert", "client_key", "proxy", "no_proxy", "proxy_headers", "persist_config",
                "impersonate_user", "impersonate_groups")
_CLIENT_NAMES = {"validate_certs": "verify_ssl", "ca_cert": "ssl_ca_cert", "client_cert": "cert_file",
                 "client_key": "key_file"}
_BOOLEANS = ("validate_certs", "persist_config")
_PROXY_HEADERS = ("proxy_basic_auth", "basic_auth", "user_agent")


class UnsupportedConnection(Exception):
    """The connection settings need kubernetes.core's client."""


class KubeConnectionError(Exception):
    """The API server could not be reached (refused, reset, timed out, TLS failure)."""


class KubeApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status, message, reason=None):
        super(KubeApiError, self).__init__("%s %s" % (status, message))
        self.status = status
        self.reason = reason
        self.message = message


def auth_settings(params, environ=None):
    """kubernetes.core's ``_create_auth_spec`` and ``_create_headers``: each option from ``params`` (its name or
    the kubernetes client's), else from ``K8S_AUTH_<NAME>``. Returns the options that are set."""
    environ = os.environ if environ is None else environ
    settings = {}
    for name in AUTH_OPTIONS:
        other = _CLIENT_NAMES.get(name, name)
        value = params.get(name)
        if value is None:
            value = params.get(other)
        if value is None and name == "proxy_headers":
            headers = {key: environ["K8S_AUTH_PROXY_HEADERS_" + key.upper()] for key in _PROXY_HEADERS
                       if environ.get("K8S_AUTH_PROXY_HEADERS_" + key.upper()) is not None}
            value = headers or None
        elif value is None:
            value = environ.get("K8S_AUTH_" + name.upper()) or environ.get("K8S_AUTH_" + other.upper())
            if value is not None and name in _BOOLEANS:
                value = value.lower() not in ("0", "false", "no")
            elif value is not None and name == "impersonate_groups":
                value = [group for group in value.split(",") if group]
        if value is not None and value != [] and value != {}:
            settings[name] = value
    return settings


class Connection:
    """Where the API server is and how to authenticate; built by :func:`resolve_connection`."""

    def __init__(self, server, token=None, ca_file=None, ca_data=None, cert_file=None, key_file=None,
                 cert_data=None, key_data=None, verify=True):
        self.server = server
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


def task_environment_auth(action):
    """The connection options the ``K8S_AUTH_*`` variables of a task's ``environment`` give (for instance a play
    per cluster's kubeconfig and context). Modules get that environment; an action plugin runs in the controller's
    own, so it reads them here."""
    environment = {}
    action._compute_environment_string(environment)
    return auth_settings({}, {k: str(v) for k, v in environment.items() if str(k).startswith("K8S_AUTH_")})


def _data_file(data, suffix):
    """A 0600 temporary file holding PEM ``data`` (ssl reads certificates and keys from files only)."""
    handle, path = tempfile.mkstemp(suffix=suffix)
    with os.fdopen(handle, "wb") as stream:
        stream.write(data)
    return path


# --------------------------------------------------------------------------- kubeconfig


class _Entry(dict):
    """A kubeconfig entry (cluster, user or context) that remembers the file it came from."""

    def __init__(self, value, path):
        super(_Entry, self).__init__(value or {})
        self.base = os.path.dirname(os.path.abspath(path))

    def local(self, name):
        return os.path.normpath(os.path.join(self.base, name))


def _merged_kubeconfig(paths):
    """The kubeconfig files of ``paths`` (separated by ':') merged as the kubernetes client merges them: files that
    do not exist are skipped, the first entry of a name wins, the last current-context wins."""
    merged = {"clusters": {}, "users": {}, "contexts": {}, "current-context": None}
    found = False
    for path in paths.split(":"):
        if not path:
            continue
        path = os.path.expanduser(path)
        if not os.path.exists(path):
            continue
        with open(path) as stream:
            config = yaml.safe_load(stream)
        if config is None:
            raise UnsupportedConnection("%s is empty" % path)
        found = True
        for section in ("clusters", "users", "contexts"):
            for item in config.get(section) or []:
                merged[section].setdefault(item["name"], _Entry(item.get(section[:-1]), path))
        if "current-context" in config:
            merged["current-context"] = config["current-context"]
    if not found:
        raise UnsupportedConnection("no kubeconfig at %s" % paths)
    return merged


def _exec_credential(spec, base):
    """Run a kubeconfig ``exec`` credential plugin as the kubernetes client does; returns its status."""
    for key in ("command", "apiVersion"):
        if key not in spec:
            raise UnsupportedConnection("exec: missing %s" % key)
    env = dict(os.environ)
    env.update({item["name"]: item["value"] for item in spec.get("env") or []})
    env["KUBERNETES_EXEC_INFO"] = json.dumps({"apiVersion": spec["apiVersion"], "kind": "ExecCredential",
                                              "spec": {"interactive": False}})
    try:
        proc = subprocess.run([spec["command"]] + list(spec.get("args") or []), env=env, cwd=base or None,
                              capture_output=True, text=True, timeout=120, check=False)
        data = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, ValueError, subprocess.TimeoutExpired) as error:
        raise UnsupportedConnection("exec credential plugin: %s" % error)
    if not isinstance(data, dict) or data.get("apiVersion") != spec["apiVersion"] or "status" not in data:
        raise UnsupportedConnection("exec credential plugin %s failed" % spec["command"])
    return data["status"] or {}


def _from_kubeconfig(paths, context_name):
    config = _merged_kubeconfig(paths)
    context_name = context_name or config["current-context"]
    if context_name not in config["contexts"]:
        raise UnsupportedConnection("no context %s" % context_name)
    context = config["contexts"][context_name]
    if context.get("cluster") not in config["clusters"]:
        raise UnsupportedConnection("no cluster %s" % context.get("cluster"))
    cluster = config["clusters"][context["cluster"]]
    user = config["users"].get(context["user"]) if context.get("user") else None
    for field in ("tls-server-name", "proxy-url"):
        if cluster.get(field):
            raise UnsupportedConnection("cluster %s" % field)
    if "server" not in cluster:
        raise UnsupportedConnection("cluster without a server")
    connection = Connection(cluster["server"].rstrip("/"))
    exec_certificate = False
    if user:
        provider = user.get("auth-provider") or {}
        if provider.get("name") in ("gcp", "oidc"):
            raise UnsupportedConnection("auth-provider %s" % provider["name"])
        token = user["token"] if "token" in user else None
        if "token" not in user and "tokenFile" in user:
            with open(user.local(user["tokenFile"])) as stream:
                token = stream.read()
        if token:
            connection.token = token
        elif "exec" in user:
            status = _exec_credential(user["exec"], user.base)
            if "token" in status:
                connection.token = status["token"]
            elif "clientCertificateData" in status and "clientKeyData" in status:
                connection.cert_data = status["clientCertificateData"].encode()
                connection.key_data = status["clientKeyData"].encode()
                exec_certificate = True
            else:
                raise UnsupportedConnection("exec credential plugin gave no token or certificate")
        elif "username" in user and "password" in user:
            raise UnsupportedConnection("basic authentication")
    if connection.server.startswith("https"):
        connection.ca_file, connection.ca_data = _file_or_data(cluster, "certificate-authority")
        if user and not exec_certificate:
            connection.cert_file, connection.cert_data = _file_or_data(user, "client-certificate")
            connection.key_file, connection.key_data = _file_or_data(user, "client-key")
    if "insecure-skip-tls-verify" in cluster:
        connection.verify = not cluster["insecure-skip-tls-verify"]
    return connection


def _file_or_data(entry, name):
    """(file, data) of a kubeconfig field that is a file path or, with ``-data``, base64 content."""
    if entry.get(name + "-data"):
        return None, base64.b64decode(entry[name + "-data"])
    if name + "-data" in entry or not entry.get(name):
        return None, None
    path = entry.local(entry[name])
    if not os.path.isfile(path):
        raise UnsupportedConnection("File does not exist: %s" % path)
    return path, None


def _in_cluster():
    """The pod's service account as the kubernetes client loads it, or None where it would not."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token_file, ca_file = os.path.join(IN_CLUSTER_DIR, "token"), os.path.join(IN_CLUSTER_DIR, "ca.crt")
    if not host or not port or not os.path.isfile(token_file):
        return None
    with open(token_file) as stream:
        token = stream.read()
    if not token or not os.path.isfile(ca_file):
        return None
    with open(ca_file) as stream:
        if not stream.read():
            return None
    template = "https://[%s]:%s" if ":" in host or "%" in host else "https://%s:%s"
    return Connection(template % (host, port), token=token, ca_file=ca_file)


def _proxy_applies(server, settings):
    """Whether the kubernetes client would reach ``server`` through a proxy (which this client cannot)."""
    proxies = getproxies()
    proxy = settings.get("proxy") or proxies.get(urlparse(server).scheme) or proxies.get("all")
    if not proxy:
        return False
    no_proxy = settings.get("no_proxy") or proxies.get("no") or ""
    parsed = urlparse(server)
    host, host_and_port = (parsed.hostname or "").lower(), parsed.netloc.lower()
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (item.strip().lower() for item in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return False
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return False
            except ValueError:
                pass
        entry = entry.lstrip(".")
        if host == entry or host.endswith("." + entry) or host_and_port == entry \
                or host_and_port.endswith("." + entry):
            return False
    return True


def resolve_connection(**params):
    """The connection kubernetes.core makes for these parameters (its names) and the environment."""
    if yaml is None:
        raise UnsupportedConnection("PyYAML missing")
    settings = auth_settings(params)
    for name in ("username", "password", "impersonate_user", "impersonate_groups", "proxy_headers"):
        if settings.get(name):
            raise UnsupportedConnection(name)
    if isinstance(settings.get("kubeconfig"), dict):
        raise UnsupportedConnection("an in-memory kubeconfig")
    host = settings.get("host", "").rstrip("/") or None
    default_kubeconfig = os.environ.get("KUBECONFIG", "~/.kube/config")
    if host and (settings.get("api_key") or (settings.get("client_cert") and settings.get("client_key"))):
        connection = Connection(host)
    elif settings.get("kubeconfig") or settings.get("context"):
        connection = _from_kubeconfig(settings.get("kubeconfig") or default_kubeconfig, settings.get("context"))
    else:
        connection = _in_cluster() or _from_kubeconfig(default_kubeconfig, None)
    if host:
        connection.server = host
    if settings.get("api_key"):
        connection.token = settings["api_key"]
    if settings.get("ca_cert"):
        connection.ca_file, connection.ca_data = settings["ca_cert"], None
    if settings.get("client_cert"):
        connection.cert_file, connection.cert_data = settings["client_cert"], None
    if settings.get("client_key"):
        connection.key_file, connection.key_data = settings["client_key"], None
    if settings.get("validate_certs") is not None:
        connection.verify = bool(settings["validate_certs"])
    if _proxy_applies(connection.server, settings):
        raise UnsupportedConnection("a proxy")
    return connection


# --------------------------------------------------------------------------- clients


RETRY_AFTER_ATTEMPTS = 10
RETRY_AFTER_MAX_S = 10


def retry_after(response):
    """Seconds to wait before sending the request again, or None: as client-go, a 429 or 5xx answer with a
    Retry-After header (the API server's "storage is (re)initializing" for a new CRD, its max-in-flight limit) is
    retried after the time it gives, capped; the server did not act on the request, so any verb may be retried."""
    if response.status_code != 429 and response.status_code < 500:
        return None
    value = response.headers.get("Retry-After")
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return None
    return min(max(seconds, 0), RETRY_AFTER_MAX_S)


class KubeClient:
    """Discovery, reads and writes over one kept-alive connection.

    A resource is ``(group, version, plural, namespaced)``; objects are plain dicts.
    """

    def __init__(self, connection, timeout=30):
        self.connection = connection
        self.timeout = timeout
        self.server = connection.server
        self._session = KeepAliveSession(tls_context=connection.ssl_context()
                                         if connection.server.startswith("https:") else None)
        self._discovery = {}

    def close(self):
        self._session.close()

    def request(self, method, path, query=None, body=None, content_type=None, missing_ok=False):
        headers = {"Accept": "application/json", "User-Agent": "gke_ai.inference_gateway"}
        if self.connection.token:
            headers["Authorization"] = "Bearer " + self.connection.token
        data = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            data = json.dumps(body)
        for attempt in range(RETRY_AFTER_ATTEMPTS):
            try:
                response = self._session.request(method, self.connection.server + path, params=query, data=data,
                                                 headers=headers, timeout=self.timeout)
            except HttpTransportError as error:
                raise KubeConnectionError("cannot reach the API server %s: %s" % (self.connection.server, error))
            delay = retry_after(response)
            if delay is None or attempt == RETRY_AFTER_ATTEMPTS - 1:
                break
            time.sleep(delay)
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 400:
            try:
                status = response.json()
                message, reason = status.get("message") or response.text, status.get("reason")
            except ValueError:
                message, reason = response.text[:500], None
            raise KubeApiError(response.status_code, "%s %s: %s" % (method, path, message), reason)
        return response.json() if response.content else {}

    def resource(self, api_version, kind):
        """(group, version, plural, namespaced) of a kind, or None when the cluster does not serve it."""
        if api_version not in self._discovery:
            path = "/api/v1" if api_version == "v1" else "/apis/" + api_version
            listing = self.request("GET", path, missing_ok=True) or {}
            self._discovery[api_version] = {entry["kind"]: entry for entry in listing.get("resources") or []
                                            if "/" not in entry["name"]}
        entry = self._discovery[api_version].get(kind)
        if entry is None:
            return None
        group, _sep, version = api_version.rpartition("/")
        return group, version, entry["name"], entry.get("namespaced", False)

    def group_versions(self, group):
        """The versions an API group serves, the preferred one first ([] when the group is not served)."""
        listing = self.request("GET", "/apis/" + group, missing_ok=True) or {}
        preferred = (listing.get("preferredVersion") or {}).get("groupVersion")
        versions = [v.get("groupVersion") for v in listing.get("versions") or []]
        return ([preferred] if preferred else []) + [v for v in versions if v != preferred]

    @staticmethod
    def path(resource, namespace=None, name=None):
        group, version, plural, namespaced = resource
        path = "/api/%s" % version if not group else "/apis/%s/%s" % (group, version)
        if namespaced and namespace:
            path += "/namespaces/" + quote(namespace, safe="")
        path += "/" + plural
        return path + ("/" + quote(name, safe="") if name else "")

    def get(self, resource, name, namespace=None):
        """One object, or None when it does not exist."""
        return self.request("GET", self.path(resource, namespace, name), missing_ok=True)

    def list(self, resource, namespace=None, label_selector=None):
        """The items of a list, each with its apiVersion and kind (the API leaves them out of list items)."""
        query = {"labelSelector": label_selector} if label_selector else None
        found = self.request("GET", self.path(resource, namespace), query, missing_ok=True) or {}
        return _items(found)

    def apply(self, resource, obj, field_manager, force=True, dry_run=False):
        """Server-side apply of ``obj``; returns the object as the server keeps (or would keep) it."""
        meta = obj["metadata"]
        query = {"fieldManager": field_manager, "force": "true" if force else None, "dryRun": "All" if dry_run else None}
        return self.request("PATCH", self.path(resource, meta.get("namespace"), meta["name"]), query, obj,
                            "application/apply-patch+yaml")

    def json_patch(self, resource, name, namespace, operations):
        return self.request("PATCH", self.path(resource, namespace, name), None, operations,
                            "application/json-patch+json")

    def replace(self, resource, obj, field_manager, dry_run=False):
        """An update (PUT) of the whole object, guarded by its ``metadata.resourceVersion``."""
        meta = obj["metadata"]
        query = {"fieldManager": field_manager, "dryRun": "All" if dry_run else None}
        return self.request("PUT", self.path(resource, meta.get("namespace"), meta["name"]), query, obj)

    def delete(self, resource, name, namespace=None, propagation="Background", dry_run=False):
        """Delete one object; None when it was already gone."""
        query = {"dryRun": "All"} if dry_run else None
        return self.request("DELETE", self.path(resource, namespace, name), query,
                            {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation},
                            missing_ok=True)


def _items(found):
    api_version = found.get("apiVersion")
    kind = (found.get("kind") or "")[:-len("List")]
    items = found.get("items") or []
    for item in items:
        item.setdefault("apiVersion", api_version)
        item.setdefault("kind", kind)
    return items


class CoreClient:
    """KubeClient's methods through kubernetes.core's client, for the connections KubeClient leaves out."""

    def __init__(self, params):
        try:
            from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
            from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
            from kubernetes.client.exceptions import ApiException
            from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
        except ImportError as error:
            raise KubeConnectionError("these connection settings need the kubernetes Python client and "
                                      "kubernetes.core: %s" % error)
        self._errors = (ApiException, DynamicApiError)
        self._not_served = ResourceNotFoundError
        try:
            self._client = get_api_client(**params)
        except CoreException as error:
            raise KubeConnectionError(str(error))
        self.server = self._client.configuration.host
        self._resources = {}

    def close(self):
        """Nothing to release: kubernetes.core keeps its client for the process."""

    def _call(self, function, *args, **kwargs):
        try:
            result = function(*args, **kwargs)
        except self._errors as error:
            status = getattr(error, "status", None)
            body = getattr(error, "body", None)
            try:
                detail = json.loads(body) if body else {}
            except (TypeError, ValueError):
                detail = {}
            raise KubeApiError(status, detail.get("message") or str(error), detail.get("reason"))
        except Exception as error:  # urllib3 and proxy errors: the server was not reached
            raise KubeConnectionError("cannot reach the API server %s: %s" % (self.server, error))
        return result.to_dict() if hasattr(result, "to_dict") else result

    def resource(self, api_version, kind):
        try:
            found = self._client.resource(kind, api_version)
        except self._not_served:
            return None
        key = (found.group, found.api_version, found.name, found.namespaced)
        self._resources[key] = found
        return key

    def group_versions(self, group):
        listing = self._call(self._client.client.request, "get", "/apis/" + group)
        preferred = (listing.get("preferredVersion") or {}).get("groupVersion")
        versions = [v.get("groupVersion") for v in listing.get("versions") or []]
        return ([preferred] if preferred else []) + [v for v in versions if v != preferred]

    def _namespace(self, resource, namespace):
        return namespace if resource[3] else None

    def get(self, resource, name, namespace=None):
        try:
            return self._call(self._client.get, self._resources[resource], name=name,
                              namespace=self._namespace(resource, namespace))
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise

    def list(self, resource, namespace=None, label_selector=None):
        return _items(self._call(self._client.get, self._resources[resource],
                                 namespace=self._namespace(resource, namespace), label_selector=label_selector))

    def apply(self, resource, obj, field_manager, force=True, dry_run=False):
        extra = {"dry_run": "All"} if dry_run else {}
        return self._call(self._client.client.server_side_apply, self._resources[resource], body=obj,
                          name=obj["metadata"]["name"], namespace=self._namespace(resource, obj["metadata"].get("namespace")),
                          field_manager=field_manager, force_conflicts=force, **extra)

    def json_patch(self, resource, name, namespace, operations):
        return self._call(self._client.client.patch, self._resources[resource], body=operations, name=name,
                          namespace=self._namespace(resource, namespace), content_type="application/json-patch+json")

    def replace(self, resource, obj, field_manager, dry_run=False):
        extra = {"dry_run": "All"} if dry_run else {}
        return self._call(self._client.client.replace, self._resources[resource], body=obj,
                          name=obj["metadata"]["name"], namespace=self._namespace(resource, obj["metadata"].get("namespace")),
                          field_manager=field_manager, **extra)

    def delete(self, resource, name, namespace=None, propagation="Background", dry_run=False):
        extra = {"dry_run": "All"} if dry_run else {}
        try:
            return self._call(self._client.client.delete, self._resources[resource], name=name,
                              namespace=self._namespace(resource, namespace),
                              body={"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation},
                              **extra)
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise


def open_client(params):
    """A client for the connection kubernetes.core makes for ``params``: the standard-library one when it
    implements the settings, else kubernetes.core's own."""
    try:
        return KubeClient(resolve_connection(**params))
    except UnsupportedConnection:
        return CoreClient({key: value for key, value in params.items() if value is not None})
