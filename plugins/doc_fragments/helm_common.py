# Copyright: Contributors to gke_ai.inference_gateway
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Options shared by the collection's modules that run the helm binary.
    DOCUMENTATION = r"""
options:
  binary_path:
    description:
      - Path of the helm binary.
      - When not set, C(helm) is looked up in E(PATH).
      - The module fails with the version it found when helm is older than 3.8.0 (no OCI support).
        Some options need newer versions, see their descriptions.
    type: path
  kubeconfig:
    description:
      - Path of the kubeconfig file helm uses (C(--kubeconfig)).
      - When neither this nor E(K8S_AUTH_KUBECONFIG) is set, helm follows its own defaults,
        so the E(KUBECONFIG) environment variable of the module's process is honoured.
    type: path
  context:
    description:
      - Name of the kubeconfig context to use (C(--kube-context)).
      - Can also be set with E(K8S_AUTH_CONTEXT).
    type: str
    aliases: [ kube_context ]
  cache_dir:
    description:
      - Directory of the local chart cache (chart archives by digest, the tag to digest index, helm's version,
        and hashes of the values helm computed from values files and set values).
      - Defaults to C(${XDG_CACHE_HOME:-~/.cache}/gke-ai-infgw/charts) on the host that runs the module.
    type: path
"""
