# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: this module_util can change or go away at any time,
# without a deprecation. Do not use it from outside gke_ai.inference_gateway.

"""A self-managed Certificate Manager certificate for ``converge``: PEM comparison and the update mask (the
``gke_ai.inference_gateway.certificate_manager_certificate`` module is its documentation and ``main()``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import (
    Change,
    GcpError,
    GcpResource,
    Plan,
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


# --------------------------------------------------------------------------------------
# the resource


class Certificate(GcpResource):
    service = "certificatemanager"
    operation_style = "longrunning"
    result_key = "certificate"

    def path(self, name=True):
        return cert_path(self.project, self.params["location"], self.params["name"] if name else None)

    def label(self):
        return "certificate %s (%s)" % (self.params["name"], self.params["location"])

    def validate(self):
        return validate_params(self.params)

    def read(self):
        return self.client.get("certificatemanager", self.path(), action="read %s" % self.label(),
                               resource=self.label())

    def plan(self, current):
        p, label = self.params, self.label()
        if self.absent:
            return self.deletion_plan(current, Change("delete", "DELETE", self.path(), description="delete %s" % label),
                                      update_mask=[])
        after = view({"pemCertificate": p["certificate"], "description": p.get("description"),
                      "labels": p.get("labels")}, p)
        if after.get("labels") is not None:
            after["labels"] = dict((str(k), str(v)) for k, v in after["labels"].items())
        if current is None:
            if not p.get("private_key"):
                raise GcpError("%s does not exist: private_key is required to create it" % label, kind="invalid")
            return Plan([Change("create", "POST", self.path(name=False), create_body(p),
                                query={"certificateId": p["name"]}, description="create %s" % label,
                                resource="location %s of project %s" % (p["location"], self.project))],
                        {}, after, update_mask=[])
        if not current.get("selfManaged") and current.get("managed"):
            raise GcpError("%s is a Google-managed certificate; this module manages self-managed ones only" % label,
                           kind="invalid")
        mask, body = plan_update(current, p)
        plan = Plan([], view(current, p), after, update_mask=mask)
        if mask:
            if "selfManaged" in mask and not p.get("private_key"):
                raise GcpError("%s: the certificate differs from the one in Certificate Manager; private_key is "
                               "required to upload the new one" % label, kind="invalid")
            plan.changes.append(Change("update", "PATCH", self.path(), body, query={"updateMask": ",".join(mask)},
                                       description="update %s (%s)" % (label, ", ".join(mask))))
        return plan

    def result(self, final, plan, attempts):
        return {"certificate": final or {}, "fingerprint": fingerprint(self.params.get("certificate") or "")}
