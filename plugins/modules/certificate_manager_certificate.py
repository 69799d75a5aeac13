#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_manager_certificate
short_description: Manage a self-managed Certificate Manager certificate from a PEM certificate and key
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Creates, updates and deletes a self-managed certificate in Certificate Manager (C(certificatemanager/v1)),
    regional (O(location) a region, as regional GKE Gateways reference with the
    C(networking.gke.io/certmanager-certs) annotation) or global (O(location=global)).
  - B(Idempotent by certificate.) The API never returns the private key, so the module compares the certificate
    chain the API returns (C(pemCertificate)) with O(certificate), block by block, ignoring line breaks and
    surrounding text. A new certificate (with its key) is uploaded in place (C(patch) of C(selfManaged)); a
    changed key alone, with the same certificate, cannot be detected.
  - O(description) and O(labels) are compared and updated in place when set.
  - Check mode reports what would change; C(--diff) shows the description, labels and the SHA-256 fingerprint of
    the leaf certificate before and after - never the key.
options:
  name:
    description:
      - Name of the certificate.
    type: str
    required: true
  location:
    description:
      - V(global), or the region of a regional certificate (for example C(us-central1)).
    type: str
    default: global
  certificate:
    description:
      - The PEM certificate chain, leaf first (the content, not a path; use C(lookup('file', ...))).
      - Required with O(state=present).
    type: str
  private_key:
    description:
      - The PEM private key of the leaf certificate (the content). Never logged or returned.
      - Required when the certificate is created or its O(certificate) changes.
    type: str
  description:
    description:
      - Description of the certificate. Compared and updated only when set.
    type: str
  labels:
    description:
      - Labels of the certificate, the complete set. Compared and updated only when set.
    type: dict
  state:
    description:
      - V(present) creates or updates the certificate; V(absent) deletes it (it must not be in use).
    type: str
    choices: [ present, absent ]
    default: present
attributes:
  idempotent:
    description: Run twice with the same options, the second run changes nothing and reports no change.
    support: full
extends_documentation_fragment:
  - gke_ai.inference_gateway.gcp
  - gke_ai.inference_gateway.gcp.wait
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.full_support
notes:
  - Permissions needed - C(certificatemanager.certs.get), C(certificatemanager.certs.create),
    C(certificatemanager.certs.update), C(certificatemanager.certs.delete), C(certificatemanager.operations.get)
    (role C(roles/certificatemanager.editor)).
  - Alternatively, a GKE Gateway can take its certificate from a Kubernetes TLS Secret; the collection's gateway
    role supports both.
seealso:
  - name: Certificate Manager certificates
    description: The REST resource the module manages.
    link: https://cloud.google.com/certificate-manager/docs/reference/certificate-manager/rest/v1/projects.locations.certificates
"""

EXAMPLES = r"""
- name: The regional certificate of the walkthrough's Gateway, from a PEM pair on the controller
  gke_ai.inference_gateway.certificate_manager_certificate:
    project: my-project
    location: us-central1
    name: vllm-gateway-cert
    certificate: "{{ lookup('ansible.builtin.file', 'files/tls.crt') }}"
    private_key: "{{ lookup('ansible.builtin.file', 'files/tls.key') }}"
    description: TLS for the inference gateway
    labels:
      app: inference-gateway

- name: Delete it
  gke_ai.inference_gateway.certificate_manager_certificate:
    project: my-project
    location: us-central1
    name: vllm-gateway-cert
    state: absent
"""

RETURN = r"""
certificate:
  description:
    - The certificate as Certificate Manager returns it after the task (in check mode, before it), which
      includes C(pemCertificate), C(sanDnsnames) and C(expireTime) but never a key. Empty when it does not exist.
  returned: always
  type: dict
  sample:
    name: projects/my-project/locations/us-central1/certificates/vllm-gateway-cert
    sanDnsnames: [vllm.example.com]
    expireTime: "2027-11-26T12:00:00Z"
    labels: {app: inference-gateway}
fingerprint:
  description: SHA-256 fingerprint of the leaf certificate (of O(certificate)), hex, empty without one.
  returned: always
  type: str
  sample: 5b4c7e0a1f0c8d9e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f
actions:
  description: What the task did (or would do) - C(create), C(update) (with the fields in RV(update_mask)), C(delete).
  returned: always
  type: list
  elements: str
  sample: [update]
update_mask:
  description: The fields an update changed (or would change), as the API's update mask.
  returned: always
  type: list
  elements: str
  sample: [selfManaged]
operations:
  description: Names of the long-running operations the task started.
  returned: always
  type: list
  elements: str
  sample: [projects/my-project/locations/us-central1/operations/operation-1764158400000]
api_log:
  description: Retries of API requests and operations waited for during the run (no request bodies).
  returned: always
  type: list
  elements: dict
  sample: []
"""

import base64
import binascii
import hashlib
import re

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    GcpError,
    GcpModule,
    diff_result,
)

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        location=dict(type="str", default="global"),
        certificate=dict(type="str"),
        private_key=dict(type="str", no_log=True),
        description=dict(type="str"),
        labels=dict(type="dict"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )


def pem_blocks(text, kind="CERTIFICATE"):
    """The DER bytes of each PEM block of ``kind`` in ``text``, in order (whitespace and comments ignored)."""
    out = []
    for label, body in _PEM_BLOCK.findall(text or ""):
        if label != kind:
            continue
        try:
            out.append(base64.b64decode("".join(body.split()), validate=True))
        except (binascii.Error, ValueError):
            out.append(None)
    return out


def same_certificate(a, b):
    blocks_a, blocks_b = pem_blocks(a), pem_blocks(b)
    return bool(blocks_a) and None not in blocks_a and blocks_a == blocks_b


def fingerprint(pem):
    blocks = pem_blocks(pem)
    return hashlib.sha256(blocks[0]).hexdigest() if blocks and blocks[0] else ""


def validate_params(params):
    problems = []
    if params["state"] != "present":
        return problems
    if not params.get("certificate"):
        problems.append("certificate is required with state=present")
    else:
        blocks = pem_blocks(params["certificate"])
        if not blocks or None in blocks:
            problems.append("certificate is not a PEM certificate chain (-----BEGIN CERTIFICATE----- ...)")
    key = params.get("private_key")
    if key and not re.search(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----", key):
        problems.append("private_key is not a PEM private key (-----BEGIN ... PRIVATE KEY-----)")
    return problems


def cert_path(project, location, name=None):
    path = "v1/projects/%s/locations/%s/certificates" % (project, location)
    return "%s/%s" % (path, name) if name else path


def create_body(params):
    body = {"selfManaged": {"pemCertificate": params["certificate"], "pemPrivateKey": params["private_key"]}}
    if params.get("description") is not None:
        body["description"] = params["description"]
    if params.get("labels") is not None:
        body["labels"] = {str(k): str(v) for k, v in params["labels"].items()}
    return body


def plan_update(current, params):
    """(update mask, patch body) for an existing certificate; an empty mask means nothing to do."""
    mask, body = [], {}
    if params.get("description") is not None and (current.get("description") or "") != params["description"]:
        mask.append("description")
        body["description"] = params["description"]
    labels = {str(k): str(v) for k, v in (params.get("labels") or {}).items()}
    if params.get("labels") is not None and (current.get("labels") or {}) != labels:
        mask.append("labels")
        body["labels"] = labels
    if not same_certificate(current.get("pemCertificate"), params["certificate"]):
        mask.append("selfManaged")
        body["selfManaged"] = {"pemCertificate": params["certificate"], "pemPrivateKey": params.get("private_key")}
    return mask, body


def view(cert, params):
    """Managed fields for the diff: never a key, the certificate as its fingerprint."""
    if cert is None:
        return {}
    out = {"certificate_sha256": fingerprint(cert.get("pemCertificate") or cert.get("certificate") or "")}
    if params.get("description") is not None:
        out["description"] = cert.get("description") or ""
    if params.get("labels") is not None:
        out["labels"] = dict(cert.get("labels") or {})
    return out


class CertificateRunner(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.actions = []
        self.operations = []

    def label(self):
        return "certificate %s (%s)" % (self.params["name"], self.params["location"])

    def call(self, method, path, body, action, query=None, resource=None):
        op = self.module.client.request(method, "certificatemanager", path, body=body, query=query, action=action,
                                        resource=resource or self.label())
        self.operations.append(op.get("name", ""))
        if self.params["wait"]:
            self.module.client.wait_operation(op, "longrunning", "certificatemanager", self.params["timeout"], action)
        return op

    def result(self, changed, cert, before, after, mask=None):
        result = dict(changed=changed, certificate=cert or {}, actions=self.actions, operations=self.operations,
                      update_mask=mask or [], fingerprint=fingerprint(self.params.get("certificate") or ""))
        if self.module._diff:
            result["diff"] = diff_result(before, after, header=self.label())
        return result

    def run(self):
        p = self.params
        problems = validate_params(p)
        if problems:
            raise GcpError("; ".join(problems), kind="invalid")
        project = self.module.project
        client = self.module.client
        path = cert_path(project, p["location"], p["name"])
        cert = client.get("certificatemanager", path, action="read %s" % self.label(), resource=self.label())
        check = self.module.check_mode
        if p["state"] == "absent":
            if cert is None:
                return self.result(False, None, {}, {})
            self.actions.append("delete")
            if not check:
                self.call("DELETE", path, None, "delete %s" % self.label())
            return self.result(True, cert if check else None, {"exists": True}, {"exists": False})
        after = view({"pemCertificate": p["certificate"], "description": p.get("description"),
                      "labels": p.get("labels")}, p)
        if after.get("labels") is not None:
            after["labels"] = {str(k): str(v) for k, v in after["labels"].items()}
        if cert is None:
            if not p.get("private_key"):
                raise GcpError("%s does not exist: private_key is required to create it" % self.label(),
                               kind="invalid")
            self.actions.append("create")
            if not check:
                self.call("POST", cert_path(project, p["location"]), create_body(p), "create %s" % self.label(),
                          query={"certificateId": p["name"]},
                          resource="location %s of project %s" % (p["location"], project))
                cert = client.get("certificatemanager", path, action="read %s" % self.label(), resource=self.label())
            return self.result(True, cert, {}, after)
        if not cert.get("selfManaged") and cert.get("managed"):
            raise GcpError("%s is a Google-managed certificate; this module manages self-managed ones only"
                           % self.label(), kind="invalid")
        before = view(cert, p)
        mask, body = plan_update(cert, p)
        if not mask:
            return self.result(False, cert, before, after)
        if "selfManaged" in mask and not p.get("private_key"):
            raise GcpError("%s: the certificate differs from the one in Certificate Manager; private_key is required "
                           "to upload the new one" % self.label(), kind="invalid")
        self.actions.append("update")
        if not check:
            self.call("PATCH", path, body, "update %s (%s)" % (self.label(), ", ".join(mask)),
                      query={"updateMask": ",".join(mask)})
            cert = client.get("certificatemanager", path, action="read %s" % self.label(), resource=self.label())
        return self.result(True, cert, before, after, mask)


def main():
    module = GcpModule(argument_spec(), wait=True)
    module.run(lambda m: CertificateRunner(m).run())


if __name__ == "__main__":
    main()
