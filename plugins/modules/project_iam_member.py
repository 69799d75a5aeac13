#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: project_iam_member
short_description: Grant or revoke one IAM role for one member on a Google Cloud project
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Adds one member to, or removes it from, the binding of one role in a project's IAM policy, leaving every
    other binding and member as it is (like C(gcloud projects add-iam-policy-binding)).
  - Read-modify-write with the policy's etag - the policy is read (C(getIamPolicy), policy version 3), changed,
    and written back (C(setIamPolicy)) with the etag it was read with. When another writer changed the policy in
    between, Google answers HTTP 409 (C(ABORTED)); the module then reads the policy again and re-applies its
    change, up to O(conflict_retries) times.
  - Members are validated before any request, including workload identity principals such as the walkthrough's
    custom metrics adapter,
    C(principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-project.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter).
  - Only the binding without a condition is managed; conditional bindings of the same role are left alone.
  - Check mode reads the policy and reports the change; C(--diff) shows the role's members before and after.
options:
  role:
    description:
      - The role, as C(roles/NAME) (predefined), C(projects/PROJECT/roles/NAME) or
        C(organizations/ORG/roles/NAME) (custom).
    type: str
    required: true
  member:
    description:
      - The principal, one of C(user:EMAIL), C(serviceAccount:EMAIL), C(group:EMAIL), C(domain:DOMAIN),
        C(principal://iam.googleapis.com/...) (one workload or workforce identity) or
        C(principalSet://iam.googleapis.com/...) (a set of them).
      - In C(principal://) and C(principalSet://) members of workload identity pools, the project is its
        B(number), not its ID.
      - E-mail addresses and domains are compared without regard to case.
    type: str
    required: true
  state:
    description:
      - V(present) adds the member to the role's binding; V(absent) removes it (and the binding when it becomes
        empty).
    type: str
    choices: [ present, absent ]
    default: present
  conflict_retries:
    description:
      - How many times to read the policy again and re-apply the change after a concurrent modification
        (HTTP 409 on C(setIamPolicy)).
    type: int
    default: 5
attributes:
  idempotent:
    description: Run twice with the same options, the second run changes nothing and reports no change.
    support: full
extends_documentation_fragment:
  - gke_ai.inference_gateway.gcp
  - gke_ai.inference_gateway.gcp.render
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.full_support
notes:
  - Permissions needed - C(resourcemanager.projects.getIamPolicy) and C(resourcemanager.projects.setIamPolicy)
    (role C(roles/resourcemanager.projectIamAdmin)).
  - IAM changes take up to a few minutes to be effective everywhere.
seealso:
  - name: Principal identifiers
    description: The member forms IAM accepts.
    link: https://cloud.google.com/iam/docs/principal-identifiers
"""

EXAMPLES = r"""
- name: Let the custom metrics adapter (workload identity) read Cloud Monitoring, as the walkthrough does
  gke_ai.inference_gateway.project_iam_member:
    project: my-project
    role: roles/monitoring.viewer
    member: >-
      principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/my-project.svc.id.goog/subject/ns/custom-metrics/sa/custom-metrics-stackdriver-adapter

- name: Grant a service account a role
  gke_ai.inference_gateway.project_iam_member:
    project: my-project
    role: roles/container.developer
    member: serviceAccount:deployer@my-project.iam.gserviceaccount.com

- name: Revoke it
  gke_ai.inference_gateway.project_iam_member:
    project: my-project
    role: roles/container.developer
    member: serviceAccount:deployer@my-project.iam.gserviceaccount.com
    state: absent
"""

RETURN = r"""
binding:
  description:
    - The role's binding (without condition) after the task; in check mode, as it would be.
      C(members) is empty when the role has no such binding.
  returned: always
  type: dict
  contains:
    role:
      description: The role.
      type: str
      sample: roles/monitoring.viewer
    members:
      description: Every member of the binding, sorted.
      type: list
      elements: str
      sample: ["serviceAccount:deployer@my-project.iam.gserviceaccount.com"]
etag:
  description: The etag of the policy after the task (before it when nothing changed or in check mode).
  returned: always
  type: str
  sample: BwYlL0h0w9Y=
actions:
  description: What the task did (or would do in check mode) - C(set_iam_policy) when the policy is written.
  returned: always
  type: list
  elements: str
  sample: [set_iam_policy]
attempts:
  description: Number of read-modify-write rounds (more than one after concurrent modifications).
  returned: always
  type: int
  sample: 1
api_log:
  description: Retries of API requests during the run (no request bodies).
  returned: always
  type: list
  elements: dict
  sample: []
"""

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._gcp import GcpModule
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._project_iam_member import (
    ProjectIamMember,
    argument_spec,
)


def main():
    GcpModule(argument_spec(), render=True).run_resource(ProjectIamMember)


if __name__ == "__main__":
    main()
