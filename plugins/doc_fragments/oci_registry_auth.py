# Copyright: Contributors to gke_ai.inference_gateway
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Credentials and transport options for the OCI registry a chart comes from.
    DOCUMENTATION = r"""
options:
  registry_username:
    description:
      - User name for the chart's OCI registry.
      - With O(registry_token) it defaults to C(oauth2accesstoken), the user name Google Artifact Registry
        expects with an OAuth access token.
      - When no credentials are given, helm's own registry configuration is used (C(helm registry login)).
    type: str
  registry_password:
    description:
      - Password for O(registry_username).
      - Never passed on a command line, logged or returned; helm reads it from a private registry
        configuration file that exists only while the module runs.
    type: str
  registry_token:
    description:
      - A bearer/access token for the registry, for example the output of C(gcloud auth print-access-token)
        for Artifact Registry. helm receives it as the password of O(registry_username).
      - Mutually exclusive with O(registry_password). Never logged or returned.
    type: str
  plain_http:
    description:
      - Talk to the registry over plain HTTP, for local development registries. Needs helm >= 3.13.
    type: bool
    default: false
"""
