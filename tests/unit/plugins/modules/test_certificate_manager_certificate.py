# -*- coding: utf-8 -*-
# Unit tests for plugins/modules/certificate_manager_certificate.py: PEM comparison (not the key),
# request bodies valid per certificatemanager v1, update masks, and that the key never leaks.
from __future__ import annotations

import base64

import pytest

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _certificate_manager_certificate as cmc
from ansible_collections.gke_ai.inference_gateway.plugins.modules import certificate_manager_certificate
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules import test_gcp_support
from ansible_collections.gke_ai.inference_gateway.tests.unit.plugins.modules.test_gcp_support import (
    assert_valid_body,
    merged,
    lro,
    run_module,
)

google = test_gcp_support.google  # the fixture: a scripted Google every GcpModule talks to

KEY = "-----BEGIN PRIVATE KEY-----\nTUlJRXZRSUJBREFOQmdrcWhraUc5dzBCQVFFRkFBU0NCS2N3Z2dTakFnRUFBb0lCQVFD\n" \
      "-----END PRIVATE KEY-----\n"


def pem(der, width=64):
    text = base64.b64encode(der).decode()
    lines = [text[i:i + width] for i in range(0, len(text), width)]
    return "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % "\n".join(lines)


LEAF = pem(b"leaf-certificate-der-bytes" * 4)
CHAIN = LEAF + pem(b"intermediate-der-bytes" * 4)
OTHER = pem(b"another-leaf" * 8)
ARGS = dict(project="local-project", location="us-central1", name="gw-cert", certificate=CHAIN, private_key=KEY)
CERT_RE = r"v1/projects/local-project/locations/us-central1/certificates/gw-cert$"
OP = "projects/local-project/locations/us-central1/operations/operation-1"


def api_cert(pem_text=CHAIN, **kw):
    c = {"name": "projects/local-project/locations/us-central1/certificates/gw-cert", "pemCertificate": pem_text,
         "selfManaged": {}, "sanDnsnames": ["vllm.example.com"], "expireTime": "2027-11-26T12:00:00Z"}
    c.update(kw)
    return c


def test_pem_comparison_ignores_line_wrapping_and_text_around():
    rewrapped = pem(b"leaf-certificate-der-bytes" * 4, width=76) + pem(b"intermediate-der-bytes" * 4, width=40)
    assert cmc.same_certificate(CHAIN, "subject=CN=x\r\n" + rewrapped.replace("\n", "\r\n"))
    assert not cmc.same_certificate(CHAIN, LEAF)
    assert not cmc.same_certificate(CHAIN, OTHER)
    assert not cmc.same_certificate("", "")
    assert cmc.fingerprint(CHAIN) == cmc.fingerprint(LEAF) != cmc.fingerprint(OTHER)


def test_create_body_is_valid():
    body = cmc.create_body(merged(ARGS, description="gw", labels={"app": "gw", "n": 1}))
    assert body["selfManaged"] == {"pemCertificate": CHAIN, "pemPrivateKey": KEY}
    assert body["labels"] == {"app": "gw", "n": "1"}
    assert_valid_body("certificatemanager", "Certificate", body)


def test_plan_update_compares_the_certificate_not_the_key():
    params = merged(ARGS, description=None, labels=None)
    assert cmc.plan_update(api_cert(), params) == ([], {})
    other_key = "-----BEGIN PRIVATE KEY-----\nb3RoZXI=\n-----END PRIVATE KEY-----"
    assert cmc.plan_update(api_cert(), dict(params, private_key=other_key)) == ([], {})
    mask, body = cmc.plan_update(api_cert(OTHER), dict(params, description="d", labels={"a": "b"}))
    assert mask == ["description", "labels", "selfManaged"]
    assert_valid_body("certificatemanager", "Certificate", body)


@pytest.mark.parametrize("kw, problem", [
    ({"certificate": None}, "certificate is required"),
    ({"certificate": "not pem"}, "not a PEM certificate chain"),
    ({"private_key": "ssh-rsa AAAA"}, "not a PEM private key"),
])
def test_validation(kw, problem):
    params = merged(ARGS, state="present", description=None, labels=None)
    params.update(kw)
    assert any(problem in p for p in cmc.validate_params(params))


def test_create_then_noop_and_the_key_never_in_output(google, capsys):
    google.add("GET", CERT_RE, (404, {"error": {"code": 404, "message": "not found"}}))
    google.add("POST", r"locations/us-central1/certificates$", lro(OP, done=False))
    google.add("GET", "v1/" + OP + "$", lro(OP, done=True))
    google.add("GET", CERT_RE, api_cert())
    result = run_module(certificate_manager_certificate, capsys, diff=True, **ARGS)
    assert result["changed"] is True and result["actions"] == ["create"]
    assert google.calls[1].query == {"certificateId": "gw-cert"}
    assert result["diff"]["after"] == {"certificate_sha256": cmc.fingerprint(CHAIN)}
    assert "TUlJRXZRSUJBREFO" not in result["_raw"]
    google.add("GET", CERT_RE, api_cert())
    again = run_module(certificate_manager_certificate, capsys, **ARGS)
    assert again["changed"] is False and again["fingerprint"] == cmc.fingerprint(CHAIN)


def test_new_certificate_is_patched_with_a_mask(google, capsys):
    google.add("GET", CERT_RE, api_cert(OTHER, labels={"app": "old"}))
    google.add("PATCH", CERT_RE, lro(OP, done=True))
    google.add("GET", CERT_RE, api_cert())
    result = run_module(certificate_manager_certificate, capsys, diff=True, labels={"app": "gw"}, **ARGS)
    assert result["actions"] == ["update"] and result["update_mask"] == ["labels", "selfManaged"]
    assert google.calls[1].query == {"updateMask": "labels,selfManaged"}
    assert result["diff"]["before"]["certificate_sha256"] == cmc.fingerprint(OTHER)
    assert "TUlJRXZRSUJBREFO" not in result["_raw"]


def test_changed_certificate_without_key_fails(google, capsys):
    google.add("GET", CERT_RE, api_cert(OTHER))
    args = merged(ARGS, private_key=None)
    result = run_module(certificate_manager_certificate, capsys, **args)
    assert result["failed"] is True and "private_key is required" in result["msg"]


def test_check_mode_and_absent(google, capsys):
    google.add("GET", CERT_RE, api_cert(OTHER))
    result = run_module(certificate_manager_certificate, capsys, check_mode=True, **ARGS)
    assert result["changed"] is True and len(google.calls) == 1
    google.add("GET", CERT_RE, api_cert())
    google.add("DELETE", CERT_RE, lro(OP, done=True))
    result = run_module(certificate_manager_certificate, capsys, state="absent", project="local-project", location="us-central1",
                        name="gw-cert")
    assert result["changed"] is True and result["certificate"] == {}
