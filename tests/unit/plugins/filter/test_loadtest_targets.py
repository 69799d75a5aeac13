# -*- coding: utf-8 -*-
# Unit tests for plugins/filter/loadtest.py: where each route of the data model sends a load test's requests.
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.gke_ai.inference_gateway.plugins.filter.loadtest import loadtest_targets

MODEL = {"name": "gemma-3-1b", "model": "google/gemma-3-1b-it", "host": "1b.example.com", "port": 8000,
         "service_name": "vllm-gemma-3-1b"}
GATEWAY = {"name": "vllm-xlb", "http": True, "https": True, "redirect_http_to_https": False,
           "hosts": {"bbr": "bbr.example.com", "api": "api.example.com"}}
SERVICE = {"spec": {"clusterIP": "127.96.3.4", "ports": [{"port": 8000}]}}


def test_each_route_has_its_host_header_and_the_service_its_cluster_ip():
    targets = loadtest_targets(MODEL, GATEWAY, ["host", "bbr", "pool", "service"], gateway_address="127.0.3.2",
                               service=SERVICE)
    assert targets == [
        {"name": "host", "route": "host", "url": "http://127.0.3.2", "host": "1b.example.com"},
        {"name": "bbr", "route": "bbr", "url": "http://127.0.3.2", "host": "bbr.example.com"},
        {"name": "pool", "route": "pool", "url": "http://127.0.3.2", "host": "api.example.com"},
        {"name": "service", "route": "service", "url": "http://127.96.3.4:8000", "host": None},
    ]


def test_https_ports_ipv6_and_overrides():
    https_only = dict(GATEWAY, http=False)
    assert loadtest_targets(MODEL, https_only, ["pool"], gateway_address="34.1.2.3")[0]["url"] == "https://34.1.2.3"
    redirect = dict(GATEWAY, redirect_http_to_https=True)
    assert loadtest_targets(MODEL, redirect, ["pool"], gateway_address="2001:db8::1", port=8443)[0]["url"] == \
        "https://[2001:db8::1]:8443"
    assert loadtest_targets(MODEL, GATEWAY, ["pool"], gateway_address="gw.internal", scheme="http", port=80)[0][
        "url"] == "http://gw.internal"
    assert loadtest_targets(MODEL, GATEWAY, ["bbr"], gateway_address="1.2.3.4",
                            hosts={"bbr": "models.example.org"})[0]["host"] == "models.example.org"
    forwarded = loadtest_targets(MODEL, GATEWAY, ["service"], service_url="http://127.0.0.1:18000/")
    assert forwarded == [{"name": "service", "route": "service", "url": "http://127.0.0.1:18000", "host": None}]
    assert loadtest_targets(MODEL, GATEWAY, ["pool", None], gateway_address="1.2.3.4")[0]["name"] == "pool"


@pytest.mark.parametrize("args,kwargs,message", [
    ([MODEL, GATEWAY, []], {}, "no route given"),
    ([MODEL, GATEWAY, ["pool", "pool"]], {"gateway_address": "a"}, "two different routes, got pool and pool"),
    ([MODEL, GATEWAY, ["round-robin"]], {"gateway_address": "a"}, "unknown route 'round-robin'"),
    ([MODEL, GATEWAY, ["pool"]], {}, "the Gateway vllm-xlb has no address"),
    ([dict(MODEL, host=None), GATEWAY, ["host"]], {"gateway_address": "a"}, "model gemma-3-1b has no host"),
    ([MODEL, GATEWAY, ["service"]], {"service": {"spec": {"clusterIP": "None"}}}, "vllm-gemma-3-1b has no ClusterIP"),
    ([MODEL, GATEWAY, ["service"]], {}, "vllm-gemma-3-1b has no ClusterIP"),
    ([MODEL, dict(GATEWAY, hosts={}), ["bbr"]], {"gateway_address": "a"}, "no host name for the bbr route"),
    ([MODEL, GATEWAY, ["pool"]], {"gateway_address": "a", "scheme": "grpc"}, "http or https, got 'grpc'"),
])
def test_what_cannot_be_reached_is_named(args, kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        loadtest_targets(*args, **kwargs)
