# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options shared by the collection's Google Cloud modules (``plugins/module_utils/_gcp.py``).

.. code-block:: yaml

    extends_documentation_fragment:
      - gke_ai.inference_gateway.gcp          # credentials, project, endpoint, retries
      - gke_ai.inference_gateway.gcp.wait     # modules with long-running operations
"""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  project:
    description:
      - The Google Cloud project ID.
      - Defaults to E(GCP_PROJECT), then to the project of the credentials (the service account key's
        C(project_id), or the Application Default Credentials' project).
    type: str
  auth_kind:
    description:
      - How to get credentials, as in the google.cloud collection.
      - V(application) uses Application Default Credentials (E(GOOGLE_APPLICATION_CREDENTIALS),
        C(gcloud auth application-default login), or the metadata server on Google Cloud).
      - V(serviceaccount) uses a service account key from O(service_account_file) or O(service_account_contents).
      - V(accesstoken) uses an OAuth2 access token from O(access_token), for example the output of
        C(gcloud auth print-access-token). It is not refreshed, so it must outlive the task.
      - Defaults to E(GCP_AUTH_KIND), then V(application).
    type: str
    choices: [ application, serviceaccount, accesstoken ]
    default: application
  service_account_file:
    description:
      - Path of a service account JSON key file, for O(auth_kind=serviceaccount).
      - Defaults to E(GCP_SERVICE_ACCOUNT_FILE).
    type: path
  service_account_contents:
    description:
      - The content of a service account JSON key (a string or a dictionary), for O(auth_kind=serviceaccount).
      - Defaults to E(GCP_SERVICE_ACCOUNT_CONTENTS). Never logged or returned.
    type: jsonarg
  access_token:
    description:
      - An OAuth2 access token, for O(auth_kind=accesstoken).
      - Defaults to E(GCP_ACCESS_TOKEN). Never logged or returned.
    type: str
  scopes:
    description:
      - OAuth2 scopes requested for service account and application default credentials.
      - Defaults to E(GCP_SCOPES) (comma separated), then the cloud-platform scope.
    type: list
    elements: str
    default: [ "https://www.googleapis.com/auth/cloud-platform" ]
  api_endpoint:
    description:
      - Where the Google APIs are, as a URL template in which C({service}) stands for C(container),
        C(compute), C(cloudresourcemanager), C(certificatemanager) or C(monitoring). Google's REST paths (the discovery
        document's service path and method path, such as C(compute/v1/projects/P/regions/R/securityPolicies)
        or C(v1/projects/P/locations/L/clusters/C/nodePools)) are appended to it.
      - Defaults to E(INFGW_GCP_API_ENDPOINT), then C(https://{service}.googleapis.com/). The collection's
        local environment sets E(INFGW_GCP_API_ENDPOINT) to its fake of the APIs,
        C(http://127.0.0.1:<port>/{service}/).
    type: str
    default: "https://{service}.googleapis.com/"
  max_retries:
    description:
      - How many times a request is retried after HTTP 429, 500, 502, 503 or 504, or a connection error,
        with exponential back-off and jitter (about 1, 2, 4, 8... seconds, at most 30) or the server's
        C(Retry-After) when that is longer. V(0) disables retries.
      - A read timeout is retried only for reads (C(GET)), so a change is never sent twice.
    type: int
    default: 6
  request_timeout:
    description:
      - Seconds to wait for the connection and for each answer of one HTTP request.
    type: float
    default: 60
notes:
  - Every request and every long-running operation poll is retried as described in O(max_retries); the
    result's RV(api_log) lists the retries and operations of the run.
  - Errors name what is missing. An HTTP 403 names the IAM permission Google reports as missing (and the
    service account in use, when known); an HTTP 404 names the resource that was not found. The failure
    result has the details in C(error) (C(http_status), C(status), C(reason), C(permission), C(resource)).
  - Tokens, service account keys and private keys are never part of a result, a diff or an error message.
requirements:
  - google-auth >= 2.0
  - requests >= 2.18
"""

    WAIT = r"""
options:
  wait:
    description:
      - Wait until the long-running operations the task starts are done, and fail with the operation's
        error when one ends in error.
      - With V(false) the task returns once the last change was accepted; operations that a later step of the
        same task depends on are waited for regardless.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each long-running operation when O(wait=true). The operation is polled
        every half second at first, then less often (up to every ten seconds).
      - On timeout the task fails; the operation carries on in Google Cloud and the next run picks up its
        result.
    type: int
    default: 1200
"""

    RENDER = r"""
options:
  render_dir:
    description:
      - Render mode. Send no request (no credentials are needed when O(project) is set); plan as if the resource did
        not exist and write the requests that would create it (method, URL, query, body) as JSON to
        C(gcp/NNN-<module>-<name>.json) under this directory, C(NNN) one above the highest number of the directory's
        files, so that the files sort in the order of the run. A certificate's private key is in its file (mode
        0600).
      - Roles set it from C(infgw_render_dir).
    type: path
"""
