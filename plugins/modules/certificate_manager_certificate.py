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
  - gke_ai.inference_gateway.gcp.render
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

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._certificate_manager_certificate import (
    Certificate,
    argument_spec,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import GcpModule


def main():
    GcpModule(argument_spec(), wait=True, render=True).run_resource(Certificate)


if __name__ == "__main__":
    main()
