# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: k8s_apply_plan
short_description: Which objects a server-side apply would change, from one read of the cluster
version_added: 0.1.0
author:
  - gke_ai.inference_gateway maintainers (@gke-ai)
description:
  - Reads the live counterpart of every object given and tells which of them a server-side apply by
    O(field_manager) would change. The roles apply only those, so a re-run of a converged stack makes no apply
    at all (each apply is a module process that imports the kubernetes client).
  - An object counts as unchanged only when every field it sets has that value in the cluster and the field
    manager owns exactly those fields (from C(metadata.managedFields)); anything undecidable counts as a change.
  - Optionally lists further objects (O(select)) in the same read, for instance what a role applied earlier, to
    prune what the data model no longer has.
  - Read-only; safe in check mode. The data of Secrets is removed from everything it returns.
  - Connection options are those of the M(kubernetes.core.k8s) lookup (O(kubeconfig), O(context), O(host)...),
    with the same C(K8S_AUTH_*) environment variables.
options:
  _terms:
    description: The objects to apply (one list, as C(from_yaml_all) gives it). Each needs C(apiVersion), C(kind)
      and C(metadata.name).
    required: true
    type: list
    elements: dict
  field_manager:
    description: The field manager of the apply.
    required: true
    type: str
  namespace:
    description: The namespace of namespaced objects that do not name one.
    type: str
  select:
    description:
      - Further lists to read, each a dict with C(api_version), C(kind), C(namespace) (optional) and
        C(label_selector) (optional). The result's C(selected) holds one list of objects per entry, in order; a
        kind the cluster does not serve gives an empty list. The result's C(stale) lists those of them that are
        not among the objects given (same group, kind and name), that is, what a role applied earlier and no
        longer wants.
    type: list
    elements: dict
    default: []
  kubeconfig:
    description: Path to a kubeconfig file (or C(K8S_AUTH_KUBECONFIG)).
    type: raw
  context:
    description: The kubeconfig context (or C(K8S_AUTH_CONTEXT)).
    type: str
  host:
    description: The API server URL (or C(K8S_AUTH_HOST)).
    type: str
  api_key:
    description: A bearer token (or C(K8S_AUTH_API_KEY)).
    type: str
  validate_certs:
    description: Whether to verify the API server's certificate (or C(K8S_AUTH_VERIFY_SSL)).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description: The CA bundle of the API server (or C(K8S_AUTH_SSL_CA_CERT)).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description: A client certificate (or C(K8S_AUTH_CERT_FILE)).
    type: path
    aliases: [cert_file]
  client_key:
    description: The client certificate's key (or C(K8S_AUTH_KEY_FILE)).
    type: path
    aliases: [key_file]
notes:
  - Returns one dict, so call it with C(lookup), not C(query).
"""

EXAMPLES = r"""
- name: Decide what to apply
  ansible.builtin.set_fact:
    plan: >-
      {{ lookup('gke_ai.inference_gateway.k8s_apply_plan', objects, field_manager='my-manager',
                select=[{'api_version': 'apps/v1', 'kind': 'Deployment', 'namespace': 'demo',
                         'label_selector': 'app.kubernetes.io/part-of=demo'}]) }}

- name: Apply what would change
  kubernetes.core.k8s:
    apply: true
    server_side_apply:
      field_manager: my-manager
    definition: "{{ plan.pending }}"
  when: plan.pending | length > 0
"""

RETURN = r"""
_raw:
  description: The plan.
  type: dict
  contains:
    pending:
      description:
        - The objects given whose apply would change something, in the order given.
        - A Secret's C(data) and C(stringData) are left out, so that the plan can be shown; apply Secrets from
          your own list.
      type: list
      elements: dict
    reasons:
      description: Why each pending object is pending, by C(Kind namespace/name); paths, never values.
      type: dict
    live:
      description: The live objects of the objects given that exist, without managedFields, Secret data or the
        C(spec) of a CustomResourceDefinition.
      type: list
      elements: dict
    selected:
      description: One list of live objects per O(select) entry.
      type: list
      elements: list
    stale:
      description: The objects of C(selected) that are not among the objects given, as C(apiVersion), C(kind) and
        C(metadata) (C(name), C(namespace)), ready for M(kubernetes.core.k8s) with C(state=absent).
      type: list
      elements: dict
"""

import json

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._kube_http import (
    KubeApiError,
    KubeClient,
    UnsupportedConnection,
    resolve_connection,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._ssa import (
    apply_pending,
    crd_version_schema,
    object_label,
)

_CONNECTION = ("kubeconfig", "context", "host", "api_key", "validate_certs", "ca_cert", "client_cert", "client_key")
_CRDS = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


def slim(obj, live=False):
    """What the plan returns of an object: no ownership records, no Secret data, no live CRD schemas."""
    obj = dict(obj)
    obj["metadata"] = {key: value for key, value in (obj.get("metadata") or {}).items() if key != "managedFields"}
    if obj.get("kind") == "Secret":
        for key in ("data", "stringData"):
            obj.pop(key, None)
    if live and obj.get("kind") == "CustomResourceDefinition":
        obj.pop("spec", None)  # megabytes of schema; what a caller wants of a live CRD is its status
    return obj


def identity(obj, default_namespace=None):
    """What tells two objects apart for pruning: group, kind, namespace and name (the version may differ)."""
    meta = obj.get("metadata") or {}
    group = (obj.get("apiVersion") or "").rpartition("/")[0]
    return group, obj.get("kind"), meta.get("namespace") or default_namespace, meta.get("name")


def reference(obj):
    """The smallest object kubernetes.core.k8s deletes by."""
    meta = obj.get("metadata") or {}
    ref = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": {"name": meta.get("name")}}
    if meta.get("namespace"):
        ref["metadata"]["namespace"] = meta["namespace"]
    return ref


class CoreClient:
    """The reads of KubeClient through kubernetes.core's client, for connection settings KubeClient leaves out."""

    def __init__(self, connection):
        try:
            from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
            from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
        except ImportError as error:
            raise AnsibleLookupError("k8s_apply_plan needs the kubernetes Python client and kubernetes.core for "
                                     "these connection settings: %s" % to_native(error))
        self._not_found, self._not_served = NotFoundError, ResourceNotFoundError
        self._client = get_api_client(**connection)
        self._resources = {}

    def close(self):
        """Nothing to release: kubernetes.core keeps its client for the process."""

    def resource(self, api_version, kind):
        try:
            found = self._client.resource(kind, api_version)
        except self._not_served:
            return None
        key = (found.group, found.api_version, found.name, found.namespaced)
        self._resources[key] = found
        return key

    def get(self, resource, name, namespace=None):
        try:
            return self._client.get(self._resources[resource], name=name,
                                    namespace=namespace if resource[3] else None).to_dict()
        except self._not_found:
            return None

    def list(self, resource, namespace=None, label_selector=None):
        found = self._client.get(self._resources[resource], namespace=namespace if resource[3] else None,
                                 label_selector=label_selector).to_dict()
        kind = (found.get("kind") or "")[:-len("List")]
        items = found.get("items") or []
        for item in items:
            item.setdefault("apiVersion", found.get("apiVersion"))
            item.setdefault("kind", kind)
        return items


def open_client(connection):
    """The standard-library client when it understands the connection settings, else kubernetes.core's."""
    try:
        return KubeClient(resolve_connection(**connection))
    except UnsupportedConnection:
        return CoreClient(connection)


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        objects = terms[0] if len(terms) == 1 and isinstance(terms[0], list) else terms
        # Ansible hands plugins tagged and lazy containers; compare plain JSON values.
        objects = json.loads(json.dumps(list(objects), default=str))
        for obj in objects:
            if not isinstance(obj, dict) or not obj.get("apiVersion") or not obj.get("kind") \
                    or not (obj.get("metadata") or {}).get("name"):
                raise AnsibleLookupError("k8s_apply_plan: every object needs apiVersion, kind and metadata.name")
        connection = {key: self.get_option(key) for key in _CONNECTION if self.get_option(key) is not None}
        try:
            client = open_client(connection)
            try:
                return [self._plan(client, objects)]
            finally:
                client.close()
        except AnsibleError:
            raise
        except Exception as error:  # one error type at the edge: the API's own message, named
            raise AnsibleLookupError("k8s_apply_plan: %s" % to_native(error)) from error

    @staticmethod
    def _schema(client, resource, schemas):
        """The schema of a custom resource's version, from its CRD, for the server's defaults (cached per run)."""
        group, version, plural, _namespaced = resource
        if not group:
            return None  # the core group has no CRDs; built-in kinds are defaulted in the server's code
        if resource not in schemas:
            schemas[resource] = None
            crds = client.resource(*_CRDS)
            if crds is not None:
                try:
                    crd = client.get(crds, "%s.%s" % (plural, group))
                except KubeApiError:  # not readable (RBAC): compare without defaults
                    crd = None
                if crd:  # None for a built-in kind or an aggregated API
                    schemas[resource] = crd_version_schema(crd, version)
        return schemas[resource]

    def _plan(self, client, objects):
        field_manager = self.get_option("field_manager")
        default_namespace = self.get_option("namespace")
        plan = {"pending": [], "reasons": {}, "live": [], "selected": [], "stale": []}
        wanted = set(identity(obj, default_namespace) for obj in objects)
        schemas = {}
        for desired in objects:
            resource = client.resource(desired["apiVersion"], desired["kind"])
            live = None
            if resource is None:
                reason = "the cluster does not serve it"
            else:
                live = client.get(resource, desired["metadata"]["name"],
                                  desired["metadata"].get("namespace") or default_namespace)
                if live is None:
                    reason = "does not exist"
                else:
                    reason = apply_pending(desired, live, field_manager, self._schema(client, resource, schemas))
                    plan["live"].append(slim(live, live=True))
            if reason:
                plan["pending"].append(slim(desired))
                plan["reasons"][object_label(desired)] = reason
        for query in self.get_option("select"):
            resource = client.resource(query.get("api_version", "v1"), query["kind"])
            items = [] if resource is None else [
                slim(item) for item in client.list(resource, query.get("namespace"), query.get("label_selector"))]
            plan["selected"].append(items)
            plan["stale"].extend(reference(item) for item in items if identity(item) not in wanted)
        return plan
