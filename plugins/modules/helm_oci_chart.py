#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: helm_oci_chart
short_description: Install, upgrade, uninstall and mirror helm charts from OCI registries, idempotent by content
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Manages a helm release of a chart stored in an OCI registry (C(oci://host/path/name)), pinned by version
    (OCI tag), by digest, or both.
  - B(Idempotent by content.) The module upgrades only when the deployed chart (name, version and digest) or the
    effective user-supplied values differ from what the task asks for. It records the chart digest on every revision
    it creates (in the release description, see RV(chart.digest)) and compares that on the next run.
  - B(No registry round trip on a no-op run.) Pulled charts are kept in a local cache by manifest digest, with an
    index from C(host/path/name:tag) to digest. A run whose chart is known locally (digest given, or tag already
    resolved) and already deployed with the same values makes no registry request and pulls nothing. A tag that
    was resolved once is assumed not to move; set O(refresh_tag=true) to re-resolve it every run, or pin O(digest).
  - B(Check and diff mode.) In check mode nothing changes on the cluster. With C(--diff) the module shows the
    difference of the chart, of the user-supplied values (C(helm get values)) and of the rendered manifest
    (deployed C(helm get manifest) against a server-side dry run of the upgrade).
  - B(Recovery.) A release stuck in C(pending-install), C(pending-upgrade) or C(pending-rollback) (an earlier run was
    killed midway) is reported with what to do. With O(recover_pending=true) the module rolls it back to the newest
    deployed revision, or uninstalls it when no revision ever deployed, and then carries on.
  - B(Mirroring.) O(state=mirrored) copies the chart, byte for byte and so with the same digest, to another registry
    (O(mirror_to)), for example a private Artifact Registry repository reachable from a private cluster. It is
    idempotent and verifies the digest of the copy.
  - B(Several releases in one task.) With O(releases) the module handles a list of releases (for example one
    release of a chart per model) in one module process, at most O(max_parallel) at the same time. A no-op
    then costs one module run and one C(helm) process per release, instead of a module run per release.
  - B(One helm process per release on a no-op.) The deployed revision, its chart and its user-supplied values are
    read with one C(helm get all). With O(values_files) or O(set_values), what helm computes from them is
    remembered (as a hash) in the local cache, so a re-run with the same inputs does not start C(helm template)
    again to compare.
  - Every helm command the module ran is returned (RV(commands)); none of them carries a credential.
options:
  chart_ref:
    description:
      - The chart, as C(oci://host[:port]/path/name).
      - A tag (C(:1.0.0)) or digest (C(@sha256:...)) may be embedded instead of using O(version) and O(digest).
      - Required unless O(state=absent).
    type: str
  version:
    description:
      - Chart version, which helm uses as the OCI tag (C(+) in a version becomes C(_) in the tag).
      - Must be an exact version; ranges such as C(^1.0) would need a registry request on every run.
      - At least one of O(version) and O(digest) is required when O(chart_ref) is used.
    type: str
    aliases: [ chart_version ]
  digest:
    description:
      - Manifest digest (C(sha256:<64 hex>)) the chart must have.
      - With O(version) too, the tag must resolve to this digest or the task fails before changing anything.
      - A digest-only reference (no O(version)) needs helm >= 3.18 to pull.
    type: str
  refresh_tag:
    description:
      - Resolve O(version) against the registry on every run instead of trusting the local tag index and the
        digest recorded on the deployed release. Costs one registry round trip per run; use it for mutable tags.
    type: bool
    default: false
  release_name:
    description:
      - Name of the helm release. Required unless O(state=mirrored).
    type: str
    aliases: [ name ]
  release_namespace:
    description:
      - Namespace of the release. Required unless O(state=mirrored).
      - With O(releases), the namespace of the entries that do not set their own.
    type: str
    aliases: [ namespace ]
  releases:
    description:
      - Several releases handled by this one task, each exactly as a task with the same options would handle it
        (idempotency, check mode, C(--diff), recovery), at most O(max_parallel) at the same time.
      - Each entry needs O(releases[].release_name). Every other option of an entry is optional; an option
        an entry does not set comes from the option of the same name at the top level of the task, so shared
        settings such as O(chart_ref), O(version) and O(release_namespace) are written once.
      - O(releases[].values), O(releases[].values_files) and O(releases[].set_values) of an entry replace the
        top-level ones; they are not merged.
      - Registry credentials, O(plain_http), O(binary_path), O(kubeconfig), O(context) and O(cache_dir) are
        shared by all entries and set at the top level only. Releases of one chart resolve and pull it once.
      - A release that fails does not stop the others. The task fails after all of them are done, with a
        message naming each failed release, and RV(releases) holds the results of all of them.
      - Mutually exclusive with O(release_name). Not with O(state=mirrored). An empty list does nothing.
    type: list
    elements: dict
    suboptions:
      release_name:
        description: Name of the helm release.
        type: str
        required: true
        aliases: [ name ]
      release_namespace:
        description: Namespace of the release (default O(release_namespace)).
        type: str
        aliases: [ namespace ]
      chart_ref:
        description: The chart (default O(chart_ref)).
        type: str
      version:
        description: Chart version (default O(version)).
        type: str
        aliases: [ chart_version ]
      digest:
        description: Manifest digest the chart must have (default O(digest)).
        type: str
      refresh_tag:
        description: See O(refresh_tag) (the default).
        type: bool
      state:
        description: V(present) or V(absent) (default O(state)).
        type: str
        choices: [ present, absent ]
      create_namespace:
        description: See O(create_namespace) (the default).
        type: bool
      values:
        description: Values of this release, instead of O(values).
        type: dict
      values_files:
        description: Values files of this release, instead of O(values_files).
        type: list
        elements: path
      set_values:
        description: Individual values of this release, instead of O(set_values).
        type: list
        elements: dict
        suboptions:
          value:
            description: A C(key=value) assignment, see O(set_values[].value).
            type: str
            required: true
          value_type:
            description: See O(set_values[].value_type).
            type: str
            choices: [ raw, string, json, file, literal ]
            default: raw
      wait:
        description: See O(wait) (the default).
        type: bool
      wait_for_jobs:
        description: See O(wait_for_jobs) (the default).
        type: bool
      timeout:
        description: See O(timeout) (the default).
        type: str
      atomic:
        description: See O(atomic) (the default).
        type: bool
      skip_crds:
        description: See O(skip_crds) (the default).
        type: bool
      recover_pending:
        description: See O(recover_pending) (the default).
        type: bool
  max_parallel:
    description:
      - With O(releases), how many releases are installed, upgraded or read at the same time (threads of the
        one module process, each running its own helm commands). V(1) handles them one after the other.
    type: int
    default: 4
  create_namespace:
    description:
      - Create O(release_namespace) when it does not exist (C(--create-namespace)).
    type: bool
    default: false
  values:
    description:
      - Values for the chart, as a dictionary (passed to helm as a values file).
      - These and O(values_files) and O(set_values) together are the release's user-supplied values; the module
        always passes C(--reset-values), so values from earlier revisions are never carried over implicitly.
      - Values are returned (RV(release.values)) and shown in diff mode; put secrets in the task under C(no_log).
    type: dict
    default: {}
  values_files:
    description:
      - Values files on the host that runs the module, applied before O(values) (later ones win).
      - Use absolute paths, for example C({{ playbook_dir }}/files/values.yaml).
    type: list
    elements: path
    default: []
  set_values:
    description:
      - Individual values, like helm's C(--set) flags, applied after O(values) and O(values_files).
      - The effective values are computed with helm itself (C(helm template) of an empty chart, no cluster and no
        registry involved), so comparisons follow helm's own parsing exactly.
    type: list
    elements: dict
    default: []
    suboptions:
      value:
        description:
          - A C(key=value) assignment such as C(provider.name=gke) or C(a.list[0]=x).
        type: str
        required: true
      value_type:
        description:
          - V(raw) is C(--set) (helm guesses the type, C(true) becomes a boolean, C(1) a number).
          - V(string) is C(--set-string) (always a string).
          - V(json) is C(--set-json) (the value is JSON; helm >= 3.10).
          - V(file) is C(--set-file) (the value is a path whose content becomes the value).
          - V(literal) is C(--set-literal) (the value is taken verbatim, commas included; helm >= 3.12).
        type: str
        choices: [ raw, string, json, file, literal ]
        default: raw
  state:
    description:
      - V(present) installs or upgrades the release.
      - V(absent) uninstalls it.
      - V(mirrored) copies the chart to O(mirror_to) and does not touch any release or cluster.
    type: str
    choices: [ present, absent, mirrored ]
    default: present
  wait:
    description:
      - Wait until the release's Pods, PVCs, Services and workloads are ready (C(--wait)), for installs,
        upgrades, rollbacks and uninstalls.
    type: bool
    default: false
  wait_for_jobs:
    description:
      - With O(wait), also wait for the release's Jobs to complete.
    type: bool
    default: false
  timeout:
    description:
      - Time helm waits for each Kubernetes operation, as a duration (C(300s), C(5m), C(1h)); a bare number is
        seconds.
    type: str
    default: 5m0s
  atomic:
    description:
      - Roll back a failed install or upgrade (C(--atomic); implies O(wait)).
    type: bool
    default: false
  skip_crds:
    description:
      - Do not install the chart's C(crds/) directory (C(--skip-crds)).
    type: bool
    default: false
  recover_pending:
    description:
      - When the release is stuck in a C(pending-*) status, recover it before doing anything else by rolling
        back to the newest deployed revision, or by uninstalling it when no revision ever deployed.
      - When V(false) (the default) such a release makes the task fail with a message saying what to do.
    type: bool
    default: false
  mirror_to:
    description:
      - For O(state=mirrored), the target repository prefix, as C(oci://host[:port]/path). The chart name is
        appended as C(helm push) does, so C(oci://mirror/charts) receives C(oci://mirror/charts/<name>).
      - The manifest and blobs are copied unchanged, so the mirror has the same digest. With O(version) the copy is
        tagged the same.
    type: str
  mirror_username:
    description:
      - User name for the O(mirror_to) registry (defaults to C(oauth2accesstoken) with O(mirror_token)).
      - Without mirror credentials the module uses those stored by C(helm registry login) for that host, if any.
    type: str
  mirror_password:
    description:
      - Password for O(mirror_username). Never logged or returned.
    type: str
  mirror_token:
    description:
      - Access token for the O(mirror_to) registry (for example an Artifact Registry OAuth token).
        Mutually exclusive with O(mirror_password). Never logged or returned.
    type: str
  mirror_plain_http:
    description:
      - Talk to the O(mirror_to) registry over plain HTTP.
    type: bool
    default: false
attributes:
  idempotent:
    description: Run twice with the same options, the second run changes nothing and reports no change.
    support: full
    details:
      - Idempotency is by content (chart digest and effective values). A tag resolved once is assumed not to
        move; see O(refresh_tag).
extends_documentation_fragment:
  - gke_ai.inference_gateway.helm_common
  - gke_ai.inference_gateway.oci_registry_auth
  - gke_ai.inference_gateway.attributes
  - gke_ai.inference_gateway.attributes.full_support
notes:
  - The module runs helm on the host that executes it (usually C(localhost)); the chart cache lives there too.
  - The chart digest is recorded in each revision's description (C(helm history) shows it). A release installed
    by other means has no record; the first run of this module upgrades it once to record the digest.
  - Check mode may pull a chart into the local cache (a read-only registry operation) when the chart is not known
    locally yet; it never changes the cluster or a registry.
  - Registry credentials are handed to helm in a temporary registry configuration file with mode 0600 in the
    module's private temporary directory, never on a command line.
requirements:
  - helm >= 3.8.0 on the host that runs the module (3.13 for O(plain_http), 3.18 for digest-only references)
  - PyYAML
seealso:
  - module: kubernetes.core.helm
  - module: kubernetes.core.helm_pull
"""

EXAMPLES = r"""
- name: Install the GIE InferencePool chart from the upstream registry, pinned by version and digest
  gke_ai.inference_gateway.helm_oci_chart:
    chart_ref: oci://registry.k8s.io/gateway-api-inference-extension/charts/inferencepool
    version: v1.1.0
    digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    release_name: vllm-llama3-8b-instruct
    release_namespace: default
    set_values:
      - value: inferencePool.modelServers.matchLabels.app=vllm-llama3-8b-instruct
      - value: provider.name=gke
    wait: true
  delegate_to: localhost

- name: Install from Artifact Registry with a GCP access token
  gke_ai.inference_gateway.helm_oci_chart:
    chart_ref: oci://us-docker.pkg.dev/my-project/charts/body-based-routing
    version: v1.1.0
    release_name: body-based-router
    release_namespace: default
    registry_token: "{{ lookup('ansible.builtin.pipe', 'gcloud auth print-access-token') }}"
    values:
      provider:
        name: gke
      inferenceGateway:
        name: inference-gateway

- name: Preview an upgrade (run with --check --diff)
  gke_ai.inference_gateway.helm_oci_chart:
    chart_ref: oci://registry.example.com/charts/app
    version: 1.2.0
    release_name: app
    release_namespace: apps
    values:
      replicaCount: 3
  check_mode: true
  diff: true

- name: Recover a release left pending by an interrupted run, then upgrade it
  gke_ai.inference_gateway.helm_oci_chart:
    chart_ref: oci://registry.example.com/charts/app
    version: 1.2.0
    release_name: app
    release_namespace: apps
    recover_pending: true

- name: Mirror a chart into a private Artifact Registry repository (same digest)
  gke_ai.inference_gateway.helm_oci_chart:
    state: mirrored
    chart_ref: oci://registry.k8s.io/gateway-api-inference-extension/charts/inferencepool
    version: v1.1.0
    mirror_to: oci://europe-west4-docker.pkg.dev/my-project/charts
    mirror_token: "{{ gcp_access_token }}"
  register: mirrored

- name: Install the mirrored copy, pinned to the digest the mirror verified
  gke_ai.inference_gateway.helm_oci_chart:
    chart_ref: oci://europe-west4-docker.pkg.dev/my-project/charts/inferencepool
    version: v1.1.0
    digest: "{{ mirrored.chart.digest }}"
    registry_token: "{{ gcp_access_token }}"
    release_name: vllm-llama3-8b-instruct
    release_namespace: default

- name: One release of the chart per model, in one task (releases run in parallel; a no-op is one module run)
  gke_ai.inference_gateway.helm_oci_chart:
    chart_ref: oci://registry.k8s.io/gateway-api-inference-extension/charts/inferencepool
    version: v1.1.0
    release_namespace: default
    values:
      provider:
        name: gke
    releases:
      - release_name: vllm-gemma-3-1b
        set_values:
          - value: inferencePool.modelServers.matchLabels.app=vllm-gemma-3-1b
      - release_name: vllm-gemma-3-4b
        set_values:
          - value: inferencePool.modelServers.matchLabels.app=vllm-gemma-3-4b
  register: pools

- name: Uninstall
  gke_ai.inference_gateway.helm_oci_chart:
    release_name: app
    release_namespace: apps
    state: absent
    wait: true
"""

RETURN = r"""
status:
  description:
    - Status of the release after the task (C(deployed), C(failed), ...), C(absent) when there is none.
    - In check mode, the status before the task.
  returned: unless O(state=mirrored) or O(releases)
  type: str
  sample: deployed
revision:
  description: Revision of the release after the task (before it, in check mode); null when absent.
  returned: unless O(state=mirrored) or O(releases)
  type: int
  sample: 3
release:
  description: The release after the task (before it, in check mode); empty when absent.
  returned: unless O(state=mirrored) or O(releases)
  type: dict
  contains:
    name:
      description: Release name.
      type: str
      sample: vllm-llama3-8b-instruct
    namespace:
      description: Release namespace.
      type: str
      sample: default
    revision:
      description: Revision number.
      type: int
      sample: 3
    status:
      description: Helm status of the revision.
      type: str
      sample: deployed
    chart_name:
      description: Name of the deployed chart.
      type: str
      sample: inferencepool
    chart_version:
      description: Version of the deployed chart.
      type: str
      sample: v1.1.0
    app_version:
      description: App version of the deployed chart.
      type: str
      sample: v1.1.0
    description:
      description: Helm's description of the revision; this module writes the chart reference and digest into it.
      type: str
      sample: "gke_ai.inference_gateway.helm_oci_chart: oci://registry.k8s.io/x/inferencepool:v1.1.0@sha256:0123..."
    updated:
      description: When the revision was deployed.
      type: str
      sample: "2026-11-26T11:00:00.000000+00:00"
    values:
      description: The user-supplied values of the revision (C(helm get values)).
      type: dict
      sample: {provider: {name: gke}}
chart:
  description: The chart the task asked for.
  returned: unless O(releases)
  type: dict
  contains:
    ref:
      description: The chart reference with tag and digest.
      type: str
      sample: oci://127.0.0.1:5000/charts/demo:0.1.0@sha256:34fce90a905e50ed11a2f2182482fa343f958e3fd943b53046eab9bcaa187c49
    name:
      description: Chart name (from its Chart.yaml when known).
      type: str
      sample: demo
    version:
      description: Chart version.
      type: str
      sample: 0.1.0
    app_version:
      description: Chart app version, when known.
      type: str
      sample: 1.16.0
    digest:
      description: OCI manifest digest of the chart.
      type: str
      sample: sha256:34fce90a905e50ed11a2f2182482fa343f958e3fd943b53046eab9bcaa187c49
    digest_source:
      description:
        - Where the digest came from. V(option) (the O(digest) option), V(cache) (the local tag index),
          V(release) (the digest recorded on the deployed release for the same reference and tag) or
          V(registry) (resolved by pulling or asking the registry during this run).
      type: str
      sample: cache
    pulled:
      description: Whether this run pulled the chart from the registry.
      type: bool
      sample: false
    cache_path:
      description: The cached chart archive, when it is in the cache.
      type: str
      sample: /home/me/.cache/gke-ai-infgw/charts/sha256-34fce90a....tgz
  sample:
    ref: oci://127.0.0.1:5000/charts/demo:0.1.0@sha256:34fce90a905e50ed11a2f2182482fa343f958e3fd943b53046eab9bcaa187c49
    name: demo
    version: 0.1.0
    digest: sha256:34fce90a905e50ed11a2f2182482fa343f958e3fd943b53046eab9bcaa187c49
    digest_source: cache
    pulled: false
registry_contacted:
  description: Whether the run made any request to a registry (pull, resolve or mirror).
  returned: always
  type: bool
  sample: false
releases:
  description:
    - With O(releases), one result per entry, in the same order. Each has the keys a single-release run of
      that entry returns (C(changed), RV(status), RV(revision), RV(release), RV(chart), RV(resources),
      RV(plan), RV(recovered), RV(registry_contacted), RV(commands), and C(diff) in diff mode) plus
      C(release_name) and C(release_namespace).
    - A release that failed has C(failed=true), C(msg) and C(error_kind) (and C(command), C(rc), C(stdout),
      C(stderr) when a helm command failed) instead.
  returned: when O(releases) is used
  type: list
  elements: dict
  sample:
    - release_name: vllm-gemma-3-1b
      release_namespace: default
      changed: false
      status: deployed
      revision: 1
      plan: {action: none, reasons: []}
      registry_contacted: false
      commands: ["helm get all vllm-gemma-3-1b --namespace default --template '<release template>'"]
failed_releases:
  description: With O(releases), the names of the releases that failed.
  returned: when a release of O(releases) failed
  type: list
  elements: str
  sample: [vllm-gemma-3-4b]
resources:
  description:
    - The Kubernetes objects the release manages, from its manifest (hooks excluded).
    - C(namespace) is the release namespace for objects that do not set one, and null for well-known
      cluster-scoped kinds.
    - In check mode with diff, the objects the upgrade would render; otherwise the deployed ones.
  returned: unless O(state=mirrored) or O(releases)
  type: list
  elements: dict
  sample:
    - {api_version: inference.networking.k8s.io/v1, kind: InferencePool, namespace: default, name: vllm-llama3-8b-instruct}
    - {api_version: apps/v1, kind: Deployment, namespace: default, name: vllm-llama3-8b-instruct-epp}
plan:
  description: What the module decided and why.
  returned: unless O(state=mirrored) or O(releases)
  type: dict
  contains:
    action:
      description: V(install), V(upgrade), V(uninstall) or V(none).
      type: str
      sample: upgrade
    reasons:
      description: Why (chart, digest or value paths that differ; value contents are not shown).
      type: list
      elements: str
      sample: ["values changed: replicaCount"]
  sample: {action: none, reasons: []}
recovered:
  description:
    - Set when a pending release was found and O(recover_pending) handled it (or would, in check mode).
  returned: when a pending release was recovered
  type: dict
  contains:
    from_status:
      description: The pending status.
      type: str
      sample: pending-upgrade
    action:
      description: V(rollback) or V(uninstall).
      type: str
      sample: rollback
    revision:
      description: Revision rolled back to (null for uninstall).
      type: int
      sample: 2
  sample: {from_status: pending-install, action: uninstall, revision: null}
mirror:
  description: What O(state=mirrored) did.
  returned: when O(state=mirrored)
  type: dict
  contains:
    source:
      description: Source reference with digest.
      type: str
      sample: oci://registry.k8s.io/x/inferencepool:v1.1.0@sha256:0123...
    target:
      description: Target reference with digest.
      type: str
      sample: oci://europe-west4-docker.pkg.dev/p/charts/inferencepool:v1.1.0@sha256:0123...
    digest:
      description: The digest, identical on both sides.
      type: str
      sample: sha256:0123...
    copied_blobs:
      description: Blobs uploaded to the target.
      type: int
      sample: 2
    mounted_blobs:
      description: Blobs mounted from the source repository (same registry).
      type: int
      sample: 0
    existing_blobs:
      description: Blobs the target already had.
      type: int
      sample: 0
  sample: {source: "oci://a/x/c:1.0.0@sha256:0123...", target: "oci://b/y/c:1.0.0@sha256:0123...",
           digest: "sha256:0123...", copied_blobs: 2, mounted_blobs: 0, existing_blobs: 0}
commands:
  description:
    - The helm commands run, in order (none contains a credential).
    - With O(releases), those of every release, release after release (they ran interleaved).
  returned: always
  type: list
  elements: str
  sample:
    - helm version --template '{{.Version}}'
    - helm get all app --namespace apps --template '<release template>'
"""

import json
import os
import tempfile
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._chart_cache import (
    ChartCache,
    default_cache_dir,
    find_pulled_archive,
    remove_tree,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._helm import (
    HAS_YAML,
    ChartRef,
    DesiredChart,
    Helm,
    HelmError,
    HelmGlobals,
    credentials_from,
    encode_description,
    check_helm_version,
    normalize_timeout,
    normalize_values,
    parse_chart_ref,
    parse_manifest_resources,
    pending_message,
    plan_recovery,
    plan_release,
    registry_auth_config,
    resolve_recorded_digest,
    run_process,
    set_values_args,
    set_values_features,
    split_mirror_target,
    values_digest,
    values_files_args,
    values_probe_key,
    write_probe_chart,
)

try:
    import yaml
except ImportError:  # pragma: no cover
    pass


def _set_values_spec(default):
    spec = dict(type="list", elements="dict", options=dict(
        value=dict(type="str", required=True),
        value_type=dict(type="str", default="raw", choices=["raw", "string", "json", "file", "literal"]),
    ))
    if default is not None:
        spec["default"] = default
    return spec


# The options an entry of `releases` may set; those it leaves out come from the top level.
RELEASE_OPTIONS = (
    "release_name", "release_namespace", "chart_ref", "version", "digest", "refresh_tag", "state",
    "create_namespace", "values", "values_files", "set_values", "wait", "wait_for_jobs", "timeout", "atomic",
    "skip_crds", "recover_pending",
)

SINGLE_REQUIRED_IF = [
    ("state", "present", ("chart_ref", "release_name", "release_namespace")),
    ("state", "absent", ("release_name", "release_namespace")),
    ("state", "mirrored", ("chart_ref", "mirror_to")),
]


def release_entry_spec():
    """Suboptions of `releases`: no defaults, so that an unset option can fall back to the top level."""
    return dict(
        release_name=dict(type="str", required=True, aliases=["name"]),
        release_namespace=dict(type="str", aliases=["namespace"]),
        chart_ref=dict(type="str"),
        version=dict(type="str", aliases=["chart_version"]),
        digest=dict(type="str"),
        refresh_tag=dict(type="bool"),
        state=dict(type="str", choices=["present", "absent"]),
        create_namespace=dict(type="bool"),
        values=dict(type="dict"),
        values_files=dict(type="list", elements="path"),
        set_values=_set_values_spec(None),
        wait=dict(type="bool"),
        wait_for_jobs=dict(type="bool"),
        timeout=dict(type="str"),
        atomic=dict(type="bool"),
        skip_crds=dict(type="bool"),
        recover_pending=dict(type="bool"),
    )


def argument_spec():
    return dict(
        chart_ref=dict(type="str"),
        version=dict(type="str", aliases=["chart_version"]),
        digest=dict(type="str"),
        refresh_tag=dict(type="bool", default=False),
        release_name=dict(type="str", aliases=["name"]),
        release_namespace=dict(type="str", aliases=["namespace"]),
        releases=dict(type="list", elements="dict", options=release_entry_spec()),
        max_parallel=dict(type="int", default=4),
        create_namespace=dict(type="bool", default=False),
        values=dict(type="dict", default={}),
        values_files=dict(type="list", elements="path", default=[]),
        set_values=_set_values_spec([]),
        state=dict(type="str", default="present", choices=["present", "absent", "mirrored"]),
        wait=dict(type="bool", default=False),
        wait_for_jobs=dict(type="bool", default=False),
        timeout=dict(type="str", default="5m0s"),
        atomic=dict(type="bool", default=False),
        skip_crds=dict(type="bool", default=False),
        recover_pending=dict(type="bool", default=False),
        mirror_to=dict(type="str"),
        mirror_username=dict(type="str"),
        mirror_password=dict(type="str", no_log=True),
        mirror_token=dict(type="str", no_log=True),
        mirror_plain_http=dict(type="bool", default=False),
        # gke_ai.inference_gateway.helm_common
        binary_path=dict(type="path"),
        kubeconfig=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
        context=dict(type="str", aliases=["kube_context"], fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
        cache_dir=dict(type="path"),
        # gke_ai.inference_gateway.oci_registry_auth
        registry_username=dict(type="str"),
        registry_password=dict(type="str", no_log=True),
        registry_token=dict(type="str", no_log=True),
        plain_http=dict(type="bool", default=False),
    )


def _yaml(data):
    if not data:
        return ""
    return yaml.safe_dump(data, default_flow_style=False, sort_keys=True)


class Shared:
    """What the releases of one module run share: the module, the chart cache, helm's binary and version
    (found once), the registry credentials file, and a lock per chart so that releases of one chart
    resolve and pull it once between them."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.cache = ChartCache(self.p["cache_dir"] or default_cache_dir())
        self.lock = threading.RLock()
        self.binary = None
        self.version = None
        self.commands = []
        self._chart_locks = {}
        self._tmp = None
        self._registry_hosts = set()
        self._registry_config = None

    def tmpdir(self, prefix="helm_oci_chart-"):
        """A private scratch directory in the module's temporary directory (removed when the module exits)."""
        with self.lock:  # AnsibleModule creates its directory on first use; the threads must not race for it
            root = self.module.tmpdir
        return tempfile.mkdtemp(prefix=prefix, dir=root)

    def run_command(self, argv, data=None):
        return run_process(argv, data=data)

    def start_helm(self):
        """Find the helm binary and its version (remembered in the cache), once."""
        with self.lock:
            if self.version is not None:
                return
            binary = self.p["binary_path"] or self.module.get_bin_path("helm")
            if not binary:
                raise HelmError("helm was not found in PATH", kind="helm_missing",
                                hint="Install helm >= 3.8.0 or set binary_path")
            if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
                raise HelmError("binary_path %s is not an executable file" % binary, kind="helm_missing")
            bootstrap = Helm(binary, self.run_command)
            try:
                bootstrap.detect_version((), cache=self.cache)
            finally:
                self.commands.extend(bootstrap.commands)
            self.binary, self.version = binary, bootstrap.version

    def new_helm(self, features=()):
        """A Helm of its own for one release (its commands are that release's), version already known."""
        self.start_helm()
        check_helm_version(self.version, self.binary, features)
        helm = Helm(self.binary, self.run_command, HelmGlobals(self.p["kubeconfig"], self.p["context"]))
        helm.version = self.version
        return helm

    def chart_lock(self, key):
        with self.lock:
            return self._chart_locks.setdefault(key, threading.Lock())

    def registry_config(self, host):
        """Path of a private registry config file with the credentials (if any) for `host`, or None.

        Written when first needed; one file for every registry the run talks to, replaced atomically
        when a release needs another host."""
        creds = credentials_from(self.p["registry_username"], self.p["registry_password"], self.p["registry_token"])
        if not creds:
            return None
        with self.lock:
            if host not in self._registry_hosts:
                self._registry_hosts.add(host)
                if self._tmp is None:
                    self._tmp = self.tmpdir()
                path = os.path.join(self._tmp, "registry-config.json")
                fd, scratch = tempfile.mkstemp(dir=self._tmp, prefix=".registry-config-")
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w") as f:
                    json.dump(registry_auth_config({h: creds for h in sorted(self._registry_hosts)}), f)
                os.replace(scratch, path)
                self._registry_config = path
            return self._registry_config


class HelmOciChart:
    """One release (or one mirroring): `params` are the module's, or an entry of `releases` merged over them."""

    def __init__(self, module, params=None, shared=None):
        self.module = module
        self.p = module.params if params is None else params
        self.shared = shared or Shared(module)
        self.check_mode = module.check_mode
        self.diff_mode = module._diff
        self.cache = self.shared.cache
        self.registry_contacted = False
        self.helm = None
        self.ref = None
        self._tmp = None
        self._history = None
        self._values_args = None

    # -- plumbing -----------------------------------------------------------------------

    @property
    def tmp(self):
        if self._tmp is None:
            self._tmp = self.shared.tmpdir()
        return self._tmp

    def start_helm(self):
        self.helm = self.shared.new_helm(set_values_features(self.p["set_values"]))
        return self.helm

    def registry_config(self):
        """The credentials (if any) for the chart's registry, in a private registry config file."""
        path = self.shared.registry_config(self.ref.registry)
        self.helm.g.registry_config = path
        return path

    # -- chart resolution ---------------------------------------------------------------

    def pull(self, ref, tag_key=None):
        """Pull `ref` into the cache -> (digest, chart info)."""
        self.registry_config()
        self.registry_contacted = True
        scratch = self.cache.tempdir()
        try:
            digest = self.helm.pull(ref, scratch, plain_http=self.p["plain_http"])
            info = self.cache.add(find_pulled_archive(scratch), digest, tag_key=tag_key)
        finally:
            remove_tree(scratch)
        return digest, info

    def history(self):
        if self._history is None:
            self._history = self.helm.history(self.p["release_name"], self.p["release_namespace"])
        return self._history

    def recorded_digest(self, release):
        """(ref, digest) recorded on the deployed revision (following `Rollback to N`)."""
        if release is None:
            return None, None
        ref, digest, needs_history = resolve_recorded_digest(release.description)
        if needs_history:
            ref, digest, _needs = resolve_recorded_digest(release.description, self.history())
        return ref, digest

    def resolve_chart(self, ref, release):
        """-> dict(name, version, app_version, digest, digest_source, pulled), pulling only when needed.
        Releases of the same chart in one run take turns, so the first pulls and the others find it cached."""
        with self.shared.chart_lock(ref.base):
            return self._resolve_chart(ref, release)

    def _resolve_chart(self, ref, release):
        tag_key = ref.tag_key()
        digest, source, info, pulled = ref.digest, "option", None, False
        if ref.tag:
            known, known_source = None, None
            if not self.p["refresh_tag"]:
                known, known_source = self.cache.lookup_tag(tag_key), "cache"
                if known is None:
                    rec_ref, rec_digest = self.recorded_digest(release)
                    if rec_digest and rec_ref == ref.display_tag():
                        known, known_source = rec_digest, "release"
            if ref.digest:
                if known != ref.digest:
                    # unknown, or the index says the tag meant something else: ask the registry, which
                    # checks tag -> digest (helm >= 3.18 pulls tag@digest; older helm compares itself)
                    digest, info = self.pull(ref, tag_key=tag_key)
                    pulled = True
            elif known:
                digest, source = known, known_source
            else:
                digest, info = self.pull(ref, tag_key=tag_key)
                source, pulled = "registry", True
        if info is None:
            info = self.cache.chart_info(digest)
        if info is None and release is not None and self.recorded_digest(release)[1] == digest:
            # the deployed revision was installed from this very digest: its chart metadata is the
            # digest's, so a no-op needs neither the archive nor the registry
            info = {"name": release.chart_name, "version": release.chart_version,
                    "app_version": release.app_version}
        if info is None:
            digest, info = self.pull(ChartRef(ref.registry, ref.repository, ref.tag, digest, ref.version),
                                     tag_key=tag_key if ref.tag else None)
            pulled = True
        return dict(name=info["name"], version=info["version"], app_version=info.get("app_version"),
                    digest=digest, digest_source=source, pulled=pulled)

    def chart_archive(self, chart):
        """Local archive for installing `chart`, pulling it by digest when the cache lacks it."""
        with self.shared.chart_lock(self.ref.base):
            return self._chart_archive(chart)

    def _chart_archive(self, chart):
        path = self.cache.archive_path(chart["digest"])
        if path:
            return path
        ref = self.ref
        by_digest = ChartRef(ref.registry, ref.repository, None, chart["digest"], None)
        if not self.helm.has("digest_reference"):
            by_digest = ref.with_digest(chart["digest"])
        self.pull(by_digest)
        chart["pulled"] = True
        path = self.cache.archive_path(chart["digest"])
        if not path:
            raise HelmError("chart %s is not in the cache after pulling it" % chart["digest"], kind="cache")
        return path

    # -- values -------------------------------------------------------------------------

    def values_args(self):
        """helm's -f arguments: the values files, then `values` in a private file (written when first needed:
        a no-op run passes no values to helm)."""
        if self._values_args is None:
            args = values_files_args(self.p["values_files"])
            if self.p["values"]:
                path = os.path.join(self.tmp, "values.json")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    json.dump(self.p["values"], f, default=str)
                args += ["--values", path]
            self._values_args = args
        return self._values_args

    def desired_values(self, set_args, release=None):
        """The release's user-supplied values as helm will compute them.

        With values files or set_values that takes `helm template` of a probe chart. The cache remembers
        (by hash) what given inputs computed to; when that is exactly what `release` has deployed, the
        answer is known without starting helm."""
        values = json.loads(json.dumps(self.p["values"] or {}, default=str))
        if not set_args and not self.p["values_files"]:
            return normalize_values(values)
        key = values_probe_key(self.helm.version, values, self.p["values_files"], set_args)
        if key and release is not None and release.config is not None:
            known = self.cache.values_probe(key)
            if known and known == values_digest(release.config):
                return normalize_values(release.config)
        probe = write_probe_chart(os.path.join(self.tmp, "values-probe"))
        desired = normalize_values(self.helm.compute_values(probe, self.values_args(), set_args))
        self.cache.record_values_probe(key, values_digest(desired))
        return desired

    # -- results ------------------------------------------------------------------------

    def release_result(self, release):
        if release is None:
            return {"status": "absent", "revision": None, "release": {}, "resources": []}
        rel = release.as_dict()
        rel["values"] = rel.pop("config") or {}
        rel.pop("manifest", None)
        return {
            "status": release.status,
            "revision": release.revision,
            "release": rel,
            "resources": parse_manifest_resources(release.manifest, release.namespace),
        }

    def chart_result(self, chart=None):
        ref = self.ref
        result = {"ref": ref.display() if ref else None, "name": ref.name if ref else None,
                  "version": ref.version if ref else None, "app_version": None, "digest": ref.digest if ref else None,
                  "digest_source": "option" if ref and ref.digest else None, "pulled": False, "cache_path": None}
        if chart:
            result.update(chart)
            result["ref"] = ref.display(chart["digest"])
            result["cache_path"] = self.cache.archive_path(chart["digest"], verify=False) \
                if chart.get("digest") else None
        return result

    def commands(self):
        return self.helm.commands if self.helm else []

    def finish(self, **result):
        result["registry_contacted"] = self.registry_contacted
        result["commands"] = self.shared.commands + self.commands()
        return result

    # -- states -------------------------------------------------------------------------

    def run(self):
        state = self.p["state"]
        if self.p["chart_ref"]:
            self.ref = parse_chart_ref(self.p["chart_ref"], self.p["version"], self.p["digest"])
        elif state == "present":
            raise HelmError("chart_ref is required with state=present", kind="invalid_argument")
        if self.p["mirror_to"] and state != "mirrored":
            raise HelmError("mirror_to is only used with state=mirrored", kind="invalid_argument")
        self.timeout = normalize_timeout(self.p["timeout"])
        if state == "mirrored":
            return self.mirrored()
        self.start_helm()
        release = self.helm.get_release(self.p["release_name"], self.p["release_namespace"])
        if state == "absent":
            return self.absent(release)
        return self.present(release)

    def absent(self, release):
        result = dict(changed=False, plan={"action": "none", "reasons": []}, chart=self.chart_result())
        if release is None:
            result.update(self.release_result(None))
            return self.finish(**result)
        result.update(changed=True, plan={"action": "uninstall", "reasons": ["release exists (%s)" % release.status]})
        if self.diff_mode:
            result["diff"] = [
                {"before_header": "values of %s" % release.name, "after_header": "(uninstalled)",
                 "before": _yaml(release.config), "after": ""},
                {"before_header": "manifest of %s" % release.name, "after_header": "(uninstalled)",
                 "before": release.manifest, "after": ""},
            ]
        if self.check_mode:
            result.update(self.release_result(release))
            return self.finish(**result)
        self.helm.uninstall(release.name, release.namespace, wait=self.p["wait"], timeout=self.timeout)
        result.update(self.release_result(None))
        return self.finish(**result)

    def recover(self, release):
        """Handle a pending release -> (release after recovery, recovered dict) or raise."""
        recovery = plan_recovery(self.history())
        if not self.p["recover_pending"]:
            raise HelmError(pending_message(release, recovery), kind="pending_release")
        recovered = {"from_status": release.status, "action": recovery[0], "revision": recovery[1]}
        if self.check_mode:
            return release, recovered
        name, ns = release.name, release.namespace
        if recovery[0] == "rollback":
            self.helm.rollback(name, ns, recovery[1], wait=self.p["wait"], timeout=self.timeout)
        else:
            self.helm.uninstall(name, ns, wait=self.p["wait"], timeout=self.timeout)
        self._history = None
        return self.helm.get_release(name, ns), recovered

    def present(self, release):
        p = self.p
        recovered = None
        if release is not None and release.pending:
            release, recovered = self.recover(release)
            if self.check_mode:
                result = dict(changed=True, recovered=recovered, chart=self.chart_result(),
                              plan={"action": "recover", "reasons": ["release is %s" % release.status]})
                result.update(self.release_result(release))
                return self.finish(**result)

        chart = self.resolve_chart(self.ref, release)
        set_args = set_values_args(p["set_values"])
        desired_values = self.desired_values(set_args, release)
        _rec_ref, deployed_digest = self.recorded_digest(release)
        plan = plan_release(release, deployed_digest,
                            DesiredChart(chart["name"], chart["version"], chart["digest"], chart["app_version"]),
                            desired_values)
        result = dict(changed=plan.changed or recovered is not None,
                      plan={"action": plan.action, "reasons": plan.reasons})
        if recovered:
            result["recovered"] = recovered

        if not plan.changed:
            result.update(self.release_result(release))
            result["chart"] = self.chart_result(chart)
            if self.diff_mode:
                result["diff"] = self.diff(release, release.config, release.manifest, chart, chart)
            return self.finish(**result)

        archive = self.chart_archive(chart)
        upgrade_kwargs = dict(
            values_file=None, set_args=self.values_args() + set_args,
            create_namespace=p["create_namespace"], wait=p["wait"] or p["atomic"],
            wait_for_jobs=p["wait_for_jobs"], timeout=self.timeout, atomic=p["atomic"], skip_crds=p["skip_crds"],
            description=encode_description(self.ref, chart["digest"]),
        )
        name, ns = p["release_name"], p["release_namespace"]
        if self.check_mode:
            after = None
            if self.diff_mode:
                after = self.helm.upgrade(name, ns, archive, dry_run=True, **upgrade_kwargs)
                result["diff"] = self.diff(release, desired_values, after.manifest, self.deployed_chart(release),
                                           chart)
            result.update(self.release_result(release))
            if after is not None:
                result["resources"] = parse_manifest_resources(after.manifest, ns)
            result["chart"] = self.chart_result(chart)
            return self.finish(**result)

        new = self.helm.upgrade(name, ns, archive, **upgrade_kwargs)
        if self.diff_mode:
            result["diff"] = self.diff(release, new.config, new.manifest, self.deployed_chart(release), chart)
        result.update(self.release_result(new))
        result["chart"] = self.chart_result(chart)
        return self.finish(**result)

    def deployed_chart(self, release):
        if release is None:
            return None
        _ref, digest = self.recorded_digest(release)
        return {"name": release.chart_name, "version": release.chart_version, "digest": digest}

    def diff(self, release, after_values, after_manifest, before_chart, after_chart):
        def chart_text(c):
            if not c:
                return ""
            return "name: %s\nversion: %s\ndigest: %s\n" % (c.get("name"), c.get("version"), c.get("digest"))

        name = self.p["release_name"]
        return [
            {"before_header": "chart of %s" % name, "after_header": "chart of %s" % name,
             "before": chart_text(before_chart), "after": chart_text(after_chart)},
            {"before_header": "values of %s (helm get values)" % name, "after_header": "values of %s" % name,
             "before": _yaml(release.config) if release else "", "after": _yaml(after_values)},
            {"before_header": "manifest of %s (helm get manifest)" % name,
             "after_header": "manifest of %s (rendered)" % name,
             "before": release.manifest if release else "", "after": after_manifest or ""},
        ]

    def mirrored(self):
        # imported here: release runs do not need an HTTP client (and skip its import time)
        from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._oci_registry import (
            RegistryClient,
            credentials_from_helm_config,
            mirror_chart,
        )

        p = self.p
        ref = self.ref
        if ref is None:
            raise HelmError("chart_ref is required with state=mirrored", kind="invalid_argument")
        target_host, target_path = split_mirror_target(p["mirror_to"])
        target_repo = "%s/%s" % (target_path, ref.name) if target_path else ref.name
        src_creds = credentials_from(p["registry_username"], p["registry_password"], p["registry_token"]) \
            or credentials_from_helm_config(ref.registry)
        dst_creds = credentials_from(p["mirror_username"], p["mirror_password"], p["mirror_token"]) \
            or credentials_from_helm_config(target_host)
        source = RegistryClient(ref.registry, src_creds, plain_http=p["plain_http"])
        target = RegistryClient(target_host, dst_creds, plain_http=p["mirror_plain_http"])

        digest, digest_source = ref.digest, "option"
        tag_key = ref.tag_key()
        if ref.tag:
            known = None if p["refresh_tag"] else self.cache.lookup_tag(tag_key)
            if known is None or (ref.digest and known != ref.digest):
                known = source.manifest_digest(ref.repository, ref.tag)
                if known is None:
                    raise HelmError("%s:%s not found in registry %s" % (ref.base, ref.tag, ref.registry),
                                    kind="chart_not_found", hint="Check chart_ref and version")
                digest_source = "registry"
                self.cache.record_tag(tag_key, known)
            elif not ref.digest:
                digest_source = "cache"
            if ref.digest and known != ref.digest:
                raise HelmError(
                    "%s:%s resolves to %s, not the pinned digest %s" % (ref.base, ref.tag, known, ref.digest),
                    kind="digest_mismatch",
                    hint="Either the tag was moved or the digest is wrong; fix version or digest")
            digest = known

        def local_blob(blob):
            for d, info in self.cache.index["charts"].items():
                if info.get("archive_sha256") == blob:
                    path = self.cache.archive_path(d)
                    if path:
                        with open(path, "rb") as f:
                            return f.read()
            return None

        outcome = mirror_chart(source, ref.repository, target, target_repo, digest, tag=ref.tag,
                               check_mode=self.check_mode, local_blob=local_blob)
        self.registry_contacted = (source.requests + target.requests) > 0
        target_ref = ChartRef(target_host, target_repo, ref.tag, digest, ref.version)
        if not self.check_mode and ref.tag:
            self.cache.record_tag(target_ref.tag_key(), digest)
        chart = self.chart_result()
        info = self.cache.chart_info(digest) or {}
        chart.update(ref=ref.display(digest), digest=digest, digest_source=digest_source,
                     name=info.get("name", ref.name), version=info.get("version", ref.version),
                     app_version=info.get("app_version"), cache_path=self.cache.archive_path(digest, verify=False))
        mirror = outcome.as_dict()
        mirror.pop("changed")
        mirror.update(source=ref.display(digest), target=target_ref.display())
        result = dict(changed=outcome.changed, chart=chart, mirror=mirror)
        if self.diff_mode:
            result["diff"] = {"before_header": target_ref.display_tag(),
                              "after_header": target_ref.display_tag(),
                              "before": "" if outcome.changed else "digest: %s\n" % digest,
                              "after": "digest: %s\n" % digest}
        return self.finish(**result)


def release_params(params, entry):
    """An entry of `releases` over the top-level options (an option the entry leaves unset is inherited)."""
    merged = dict(params)
    merged.pop("releases", None)
    for key in RELEASE_OPTIONS:
        if entry.get(key) is not None:
            merged[key] = entry[key]
    return merged


def check_releases(params):
    """-> the merged parameters of every entry of `releases`, or raise HelmError naming the bad entry."""
    if params["state"] == "mirrored":
        raise HelmError("releases cannot be used with state=mirrored", kind="invalid_argument")
    if params["mirror_to"]:
        raise HelmError("mirror_to is only used with state=mirrored", kind="invalid_argument")
    if params["max_parallel"] < 1:
        raise HelmError("max_parallel must be at least 1, got %s" % params["max_parallel"], kind="invalid_argument")
    merged, seen = [], set()
    for i, entry in enumerate(params["releases"]):
        p = release_params(params, entry)
        where = "releases[%d] (%s)" % (i, p["release_name"])
        missing = [k for k in ("release_namespace",) + (("chart_ref",) if p["state"] == "present" else ())
                   if not p[k]]
        if missing:
            raise HelmError("%s: state is %s but %s is not set, neither in the entry nor at the top level"
                            % (where, p["state"], " and ".join(missing)), kind="invalid_argument")
        key = (p["release_namespace"], p["release_name"])
        if key in seen:
            raise HelmError("%s: release %s in namespace %s is listed twice" % (where, key[1], key[0]),
                            kind="invalid_argument")
        seen.add(key)
        merged.append(p)
    return merged


def run_release(module, shared, params):
    """One entry of `releases` -> its result, the same as a single-release run's plus release_name and
    release_namespace; a failure is a result with failed, msg and error_kind (the others go on)."""
    runner = HelmOciChart(module, params, shared)
    try:
        result = runner.run()
        result["commands"] = runner.commands()
    except HelmError as e:
        result = e.to_result()
        result.update(failed=True, changed=False, commands=runner.commands(),
                      registry_contacted=runner.registry_contacted)
    except Exception as e:  # pylint: disable=broad-exception-caught  # one release must not hide the others
        result = dict(failed=True, changed=False, msg="%s: %s" % (type(e).__name__, e), error_kind="internal",
                      exception=traceback.format_exc(), commands=runner.commands(),
                      registry_contacted=runner.registry_contacted)
    result["release_name"] = params["release_name"]
    result["release_namespace"] = params["release_namespace"]
    return result


def run_releases(module):
    """Every entry of `releases` in one module process, at most max_parallel at a time."""
    p = module.params
    shared = Shared(module)
    entries = check_releases(p)
    result = dict(changed=False, releases=[], registry_contacted=False, commands=[])
    if not entries:
        return result
    try:
        shared.start_helm()
    except HelmError as e:
        fail = e.to_result()
        fail.update(changed=False, commands=list(shared.commands))
        raise ReleasesFailed(fail) from e
    result["commands"] = list(shared.commands)
    workers = min(p["max_parallel"], len(entries))
    if workers == 1:
        results = [run_release(module, shared, e) for e in entries]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="helm_oci_chart") as pool:
            results = list(pool.map(lambda e: run_release(module, shared, e), entries))
    result.update(changed=any(r.get("changed") for r in results), releases=results,
                  registry_contacted=any(r.get("registry_contacted") for r in results))
    for r in results:
        result["commands"].extend(r.get("commands") or [])
    if module._diff:
        result["diff"] = [d for r in results for d in (r.get("diff") or [])]
    failed = [r for r in results if r.get("failed")]
    if failed:
        result["msg"] = "; ".join(
            "release %s in namespace %s: %s" % (r["release_name"], r["release_namespace"], r.get("msg")) for r in failed)
        if len(failed) > 1:
            result["msg"] = "%d of %d releases failed: %s" % (len(failed), len(results), result["msg"])
        result["error_kind"] = failed[0].get("error_kind")
        result["failed_releases"] = [r["release_name"] for r in failed]
        raise ReleasesFailed(result)
    return result


class ReleasesFailed(Exception):
    """The result of a `releases` run that failed (fail_json's arguments)."""

    def __init__(self, result):
        super().__init__(result["msg"])
        self.result = result


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[("registry_password", "registry_token"), ("mirror_password", "mirror_token"),
                            ("releases", "release_name")],
    )
    if not HAS_YAML:
        module.fail_json(msg="PyYAML is required by helm_oci_chart")
    if module.params["releases"] is not None:
        try:
            module.exit_json(**run_releases(module))
        except HelmError as e:
            module.fail_json(**e.to_result())
        except ReleasesFailed as e:
            module.fail_json(**e.result)
    for key, value, required in SINGLE_REQUIRED_IF:  # AnsibleModule's required_if, unless releases is used
        missing = [r for r in required if module.params[r] is None]
        if module.params[key] == value and missing:
            module.fail_json(msg="%s is %s but all of the following are missing: %s"
                             % (key, value, ", ".join(missing)))
    runner = HelmOciChart(module)
    try:
        result = runner.run()
    except HelmError as e:
        fail = e.to_result()
        fail["commands"] = runner.shared.commands + runner.commands()
        module.fail_json(**fail)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
