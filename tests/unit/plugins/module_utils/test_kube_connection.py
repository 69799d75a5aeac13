# -*- coding: utf-8 -*-
# The connection of k8s_converge (plugins/module_utils/_kube_http.py) is the one kubernetes.core makes for the same
# parameters and environment: one case per branch of kubernetes.core's module_utils/k8s/client.py (parameters,
# K8S_AUTH_*, kubeconfig and context, in-cluster, host only, proxies), each compared with what kubernetes.core
# itself resolves (its _create_auth_spec and _create_configuration, run here on the same files and variables).
# Where the standard-library client does not implement a setting (proxies, basic auth, auth providers,
# impersonation, an in-memory kubeconfig) it must say so, and the caller uses kubernetes.core's own client.
from __future__ import annotations

import base64
import json
import os
import stat

import pytest
import yaml

kubernetes = pytest.importorskip("kubernetes")
from kubernetes.client import Configuration  # noqa: E402
from kubernetes.config import incluster_config, kube_config  # noqa: E402

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _kube_http  # noqa: E402
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._kube_http import (  # noqa: E402
    UnsupportedConnection,
    resolve_connection,
)
from ansible_collections.kubernetes.core.plugins.module_utils.k8s import client as core_client  # noqa: E402

CA = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
CERT = b"-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"


class World(object):
    """Files and variables of one case: a home with ~/.kube/config, optional in-cluster files, extra files."""

    def __init__(self, tmp_path, monkeypatch):
        self.tmp, self.mp = tmp_path, monkeypatch
        self.home = tmp_path / "home"
        (self.home / ".kube").mkdir(parents=True)
        self.sa = tmp_path / "serviceaccount"
        cleared = ("KUBECONFIG", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "KUBERNETES_SERVICE_HOST",
                   "KUBERNETES_SERVICE_PORT")
        for name in list(os.environ):
            if name.startswith("K8S_AUTH_") or name.upper() in cleared:
                monkeypatch.delenv(name)
        monkeypatch.setenv("HOME", str(self.home))
        monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", "~/.kube/config")
        monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(self.sa / "token"))
        monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(self.sa / "ca.crt"))
        monkeypatch.setattr(_kube_http, "IN_CLUSTER_DIR", str(self.sa), raising=False)
        monkeypatch.setattr(Configuration, "_default", None)
        core_client._pool.clear()

    def file(self, name, data, mode=0o600):
        path = self.tmp / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        path.chmod(mode)
        return str(path)

    def env(self, **variables):
        for name, value in variables.items():
            self.mp.setenv(name, value)
        if "KUBECONFIG" in variables:  # kubernetes reads it when imported; the process's value is what counts
            self.mp.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", variables["KUBECONFIG"])

    def in_cluster(self, token="sa-token", host="10.0.0.1", port="443"):
        self.sa.mkdir(exist_ok=True)
        (self.sa / "token").write_text(token)
        (self.sa / "ca.crt").write_bytes(CA)
        self.env(KUBERNETES_SERVICE_HOST=host, KUBERNETES_SERVICE_PORT=port)

    def kubeconfig(self, name="config", server="https://kube.example.com:6443", user=None, contexts=None,
                   cluster_extra=None, current="main", path=None):
        """A kubeconfig; `user` is the user entry of the current context (token by default)."""
        user = {"token": "file-token"} if user is None else user
        cluster = dict({"server": server, "certificate-authority-data": base64.b64encode(CA).decode()},
                       **(cluster_extra or {}))
        cluster = {key: value for key, value in cluster.items() if value is not None}
        config = {"apiVersion": "v1", "kind": "Config", "current-context": current,
                  "clusters": [{"name": "main", "cluster": cluster},
                               {"name": "other", "cluster": {"server": "https://other.example.com",
                                                             "insecure-skip-tls-verify": True}}],
                  "users": [{"name": "main", "user": user}, {"name": "other", "user": {"token": "other-token"}}],
                  "contexts": contexts or [{"name": "main", "context": {"cluster": "main", "user": "main"}},
                                           {"name": "other", "context": {"cluster": "other", "user": "other"}}]}
        target = path or self.tmp / name
        with open(target, "w") as stream:
            yaml.safe_dump(config, stream)
        return str(target)

    def default_kubeconfig(self, **kwargs):
        return self.kubeconfig(path=self.home / ".kube" / "config", **kwargs)


@pytest.fixture
def world(tmp_path, monkeypatch):
    return World(tmp_path, monkeypatch)


def _read(path):
    if not path:
        return None
    with open(path, "rb") as stream:
        return stream.read()


def kubernetes_core(params):
    """What kubernetes.core resolves: server, bearer token, CA, client certificate and key, verification, proxy."""
    auth = core_client._create_auth_spec(None, **params)
    configuration = core_client._create_configuration(auth)
    headers = core_client._create_headers(None, **params)
    api_key = configuration.api_key or {}
    token = api_key.get("authorization") or api_key.get("BearerToken")
    proxy = configuration.proxy
    if proxy and kubernetes.client.rest.should_bypass_proxies(configuration.host, configuration.no_proxy or ""):
        proxy = None
    return {"server": configuration.host, "token": token.split(" ", 1)[1] if token else None,
            "ca": _read(configuration.ssl_ca_cert), "cert": _read(configuration.cert_file),
            "key": _read(configuration.key_file), "verify": bool(configuration.verify_ssl), "proxy": proxy,
            "basic": bool(token and token.lower().startswith("basic ")
                          or (configuration.username and configuration.password)), "headers": headers}


def ours(params):
    connection = resolve_connection(**params)
    return {"server": connection.server, "token": connection.token,
            "ca": connection.ca_data if connection.ca_data is not None else _read(connection.ca_file),
            "cert": connection.cert_data if connection.cert_data is not None else _read(connection.cert_file),
            "key": connection.key_data if connection.key_data is not None else _read(connection.key_file),
            "verify": connection.verify, "proxy": None, "basic": False, "headers": {}}


def exec_plugin(world, output):
    script = world.file("credential-plugin", "#!/bin/sh\ncat <<'EOF'\n%s\nEOF\n" % json.dumps(output), mode=0o755)
    os.chmod(script, os.stat(script).st_mode | stat.S_IEXEC)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": script,
                     "interactiveMode": "Never"}}


# Each case prepares the world and returns the module parameters; the resolved connection must be kubernetes.core's.
def params_host_and_token(w):
    w.default_kubeconfig()  # present, but host and api_key are enough: kubernetes.core loads nothing
    return {"host": "https://param.example.com:443/", "api_key": "param-token"}


def params_host_and_client_certificate(w):
    w.default_kubeconfig()
    return {"host": "https://param.example.com", "client_cert": w.file("c.crt", CERT),
            "client_key": w.file("c.key", KEY), "ca_cert": w.file("ca.crt", CA)}


def env_host_and_token(w):
    w.env(K8S_AUTH_HOST="https://env.example.com", K8S_AUTH_API_KEY="env-token", K8S_AUTH_VERIFY_SSL="no")
    return {}


def env_verify_ssl_off_is_true(w):
    # kubernetes.core turns a K8S_AUTH_* boolean false only for 0, false and no
    w.env(K8S_AUTH_HOST="https://env.example.com", K8S_AUTH_API_KEY="env-token", K8S_AUTH_VERIFY_SSL="off")
    return {}


def params_kubeconfig(w):
    return {"kubeconfig": w.kubeconfig()}


def params_kubeconfig_and_context(w):
    return {"kubeconfig": w.kubeconfig(), "context": "other"}


def env_kubeconfig_and_context(w):
    w.env(K8S_AUTH_KUBECONFIG=w.kubeconfig(), K8S_AUTH_CONTEXT="other")
    return {}


def context_only_uses_the_default_kubeconfig(w):
    w.env(KUBECONFIG=w.kubeconfig(name="from-env"))
    w.default_kubeconfig(server="https://home.example.com")
    return {"context": "other"}


def in_cluster_before_the_default_kubeconfig(w):
    w.in_cluster()
    w.default_kubeconfig()
    return {}


def in_cluster_before_the_kubeconfig_variable(w):
    # KUBECONFIG is not K8S_AUTH_KUBECONFIG: kubernetes.core still tries the service account first
    w.in_cluster(host="fd00::1", port="6443")
    w.env(KUBECONFIG=w.kubeconfig())
    return {}


def empty_service_account_token_falls_back_to_kubeconfig(w):
    w.in_cluster(token="")
    w.default_kubeconfig()
    return {}


def default_kubeconfig_without_a_cluster(w):
    w.default_kubeconfig()
    return {}


def kubeconfig_variable_with_two_files(w):
    first = w.kubeconfig(name="first", server="https://first.example.com", current="other")
    second = w.kubeconfig(name="second", server="https://second.example.com", current="main")
    w.env(KUBECONFIG=first + ":" + second)
    return {}


def host_only_keeps_the_kubeconfig_credentials(w):
    w.default_kubeconfig(user={"client-certificate-data": base64.b64encode(CERT).decode(),
                               "client-key-data": base64.b64encode(KEY).decode()})
    w.env(K8S_AUTH_HOST="https://elsewhere.example.com")
    return {}


def host_only_keeps_the_service_account(w):
    w.in_cluster()
    return {"host": "https://elsewhere.example.com"}


def api_key_overrides_the_kubeconfig_token(w):
    return {"kubeconfig": w.kubeconfig(), "api_key": "override"}


def ca_and_verification_override_the_kubeconfig(w):
    return {"kubeconfig": w.kubeconfig(), "ca_cert": w.file("other-ca.crt", b"OTHER CA"), "validate_certs": False}


def kubeconfig_token_file(w):
    w.file("token-file", "from-a-file")
    return {"kubeconfig": w.kubeconfig(user={"tokenFile": "token-file"})}


def kubeconfig_token_before_token_file(w):
    w.file("token-file", "from-a-file")
    return {"kubeconfig": w.kubeconfig(user={"token": "inline", "tokenFile": "token-file"})}


def kubeconfig_client_certificate_files(w):
    w.file("client.crt", CERT)
    w.file("client.key", KEY)
    w.file("ca.pem", CA)
    return {"kubeconfig": w.kubeconfig(user={"client-certificate": "client.crt", "client-key": "client.key"},
                                       cluster_extra={"certificate-authority": "ca.pem",
                                                      "certificate-authority-data": None})}


def kubeconfig_exec_token(w):
    user = exec_plugin(w, {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                           "status": {"token": "from-exec"}})
    return {"kubeconfig": w.kubeconfig(user=user)}


def kubeconfig_token_before_exec(w):
    user = exec_plugin(w, {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                           "status": {"token": "from-exec"}})
    user["token"] = "inline"
    return {"kubeconfig": w.kubeconfig(user=user)}


def kubeconfig_exec_client_certificate(w):
    user = exec_plugin(w, {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                           "status": {"clientCertificateData": CERT.decode(), "clientKeyData": KEY.decode()}})
    return {"kubeconfig": w.kubeconfig(user=user)}


def kubeconfig_insecure(w):
    return {"kubeconfig": w.kubeconfig(cluster_extra={"insecure-skip-tls-verify": True})}


def kubeconfig_plain_http_loads_no_certificates(w):
    return {"kubeconfig": w.kubeconfig(server="http://127.0.0.1:8080",
                                       user={"client-certificate-data": base64.b64encode(CERT).decode(),
                                             "client-key-data": base64.b64encode(KEY).decode()})}


def kubeconfig_without_a_user(w):
    return {"kubeconfig": w.kubeconfig(contexts=[{"name": "main", "context": {"cluster": "main"}}])}


def proxy_bypassed_by_no_proxy(w):
    w.env(HTTPS_PROXY="http://proxy.example.com:3128", NO_PROXY="localhost,.example.com")
    return {"kubeconfig": w.kubeconfig()}


def proxy_for_another_scheme(w):
    w.env(HTTP_PROXY="http://proxy.example.com:3128")  # the API server is https
    return {"kubeconfig": w.kubeconfig()}


RESOLVED = [params_host_and_token, params_host_and_client_certificate, env_host_and_token, env_verify_ssl_off_is_true,
            params_kubeconfig, params_kubeconfig_and_context, env_kubeconfig_and_context,
            context_only_uses_the_default_kubeconfig, in_cluster_before_the_default_kubeconfig,
            in_cluster_before_the_kubeconfig_variable, empty_service_account_token_falls_back_to_kubeconfig,
            default_kubeconfig_without_a_cluster, kubeconfig_variable_with_two_files,
            host_only_keeps_the_kubeconfig_credentials, host_only_keeps_the_service_account,
            api_key_overrides_the_kubeconfig_token, ca_and_verification_override_the_kubeconfig,
            kubeconfig_token_file, kubeconfig_token_before_token_file, kubeconfig_client_certificate_files,
            kubeconfig_exec_token, kubeconfig_token_before_exec, kubeconfig_exec_client_certificate,
            kubeconfig_insecure, kubeconfig_plain_http_loads_no_certificates, kubeconfig_without_a_user,
            proxy_bypassed_by_no_proxy, proxy_for_another_scheme]


@pytest.mark.parametrize("case", RESOLVED, ids=[case.__name__ for case in RESOLVED])
def test_the_connection_is_the_one_kubernetes_core_resolves(world, case):
    params = case(world)
    expected = kubernetes_core(params)
    assert expected["proxy"] is None and not expected["basic"] and not expected["headers"]  # the case is native
    assert ours(params) == expected


# What the standard-library client leaves to kubernetes.core's client (the caller falls back to it).
def proxy_variable(w):
    w.env(HTTPS_PROXY="http://proxy.example.com:3128")
    return {"kubeconfig": w.kubeconfig()}


def proxy_variable_lowercase(w):
    w.env(https_proxy="http://proxy.example.com:3128", no_proxy="other.example.com")
    return {"kubeconfig": w.kubeconfig()}


def all_proxy_variable(w):
    w.env(ALL_PROXY="http://proxy.example.com:3128")
    return {"host": "https://param.example.com", "api_key": "t"}


def proxy_parameter(w):
    return {"kubeconfig": w.kubeconfig(), "proxy": "http://proxy.example.com:3128"}


def proxy_environment_setting(w):
    w.env(K8S_AUTH_PROXY="http://proxy.example.com:3128")
    return {"kubeconfig": w.kubeconfig()}


def kubeconfig_proxy_url(w):
    return {"kubeconfig": w.kubeconfig(cluster_extra={"proxy-url": "http://proxy.example.com:3128"})}


def basic_auth_parameters(w):
    return {"host": "https://param.example.com", "username": "admin", "password": "secret"}


def kubeconfig_basic_auth(w):
    return {"kubeconfig": w.kubeconfig(user={"username": "admin", "password": "secret"})}


def impersonation(w):
    return {"kubeconfig": w.kubeconfig(), "impersonate_user": "someone"}


def impersonation_variable(w):
    w.env(K8S_AUTH_IMPERSONATE_GROUPS="a,b")
    return {"kubeconfig": w.kubeconfig()}


FALLBACK = [proxy_variable, proxy_variable_lowercase, all_proxy_variable, proxy_parameter, proxy_environment_setting,
            kubeconfig_proxy_url, basic_auth_parameters, kubeconfig_basic_auth, impersonation, impersonation_variable]


@pytest.mark.parametrize("case", FALLBACK, ids=[case.__name__ for case in FALLBACK])
def test_what_it_does_not_implement_goes_to_kubernetes_core(world, case):
    params = case(world)
    expected = kubernetes_core(params)
    assert expected["proxy"] or expected["basic"] or expected["headers"]  # the case needs what we leave out
    with pytest.raises(UnsupportedConnection):
        resolve_connection(**params)


@pytest.mark.parametrize("setup", ["in_memory", "auth_provider", "tls_server_name", "nothing_at_all", "bad_context"])
def test_settings_it_does_not_read_go_to_kubernetes_core(world, setup):
    params = {
        "in_memory": lambda: {"kubeconfig": yaml.safe_load(open(world.kubeconfig()))},
        "auth_provider": lambda: {"kubeconfig": world.kubeconfig(user={"auth-provider": {
            "name": "oidc", "config": {"id-token": "x", "idp-issuer-url": "https://issuer.example.com"}}})},
        "tls_server_name": lambda: {"kubeconfig": world.kubeconfig(cluster_extra={"tls-server-name": "kube"})},
        "nothing_at_all": lambda: {},  # no service account, no kubeconfig: kubernetes.core's own error
        "bad_context": lambda: {"kubeconfig": world.kubeconfig(), "context": "missing"},
    }[setup]()
    with pytest.raises(UnsupportedConnection):
        resolve_connection(**params)
