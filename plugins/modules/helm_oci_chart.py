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
    deployed revision, or uninstalls it when no revision ever deployed, and then carries on; with
    O(recover_pending_after) only once the pending operation is older than any operation of yours may last.
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
      recover_pending_after:
        description: See O(recover_pending_after) (the default).
        type: str
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
  recover_pending_after:
    description:
      - With O(recover_pending=true), recover only a release whose pending revision started at least this long ago,
        as a duration like O(timeout). A younger one may be an operation still in progress (another run of the
        task, say); the task then fails saying so, and changes nothing.
      - Set it to the longest a helm operation of yours may take (its O(timeout)); the roles of this collection do.
        V(0s) (the default) recovers at once.
    type: str
    default: 0s
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

- name: Recover a release left pending by an interrupted run (not one still running), then upgrade it
  gke_ai.inference_gateway.helm_oci_chart:
    chart_ref: oci://registry.example.com/charts/app
    version: 1.2.0
    release_name: app
    release_namespace: apps
    timeout: 5m
    recover_pending: true
    recover_pending_after: 5m

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
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._helm_oci_chart import (
    MUTUALLY_EXCLUSIVE,
    argument_spec,
    execute_module,
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=MUTUALLY_EXCLUSIVE)
    execute_module(module)


if __name__ == "__main__":
    main()
