# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render mode (``infgw_render_dir``): what a run would send, written to files instead of sent.

One directory per cluster (inventory host). Every step writes one numbered file, so that the names sort in apply
order: ``NNN-<step>.yaml`` (Kubernetes objects, in the order the step applies them), ``NNN-<step>.release.json``
beside a chart's objects (the chart reference at its digest and the values, for tools that install the chart as a
release), and ``gcp/NNN-<step>.json`` (the Google Cloud requests). ``kubectl apply -f DIR`` reads only the YAML
files of DIR, in that order. Nothing here talks to an API.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os
import re
import tempfile

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - ansible-core depends on PyYAML
    HAS_YAML = False

NUMBERED = re.compile(r"^(\d{3})-")
GCP_DIR = "gcp"

# Kinds that are not namespaced. Render mode cannot ask the API server, so an object of another kind without a
# namespace is put in the step's namespace, as helm install and the engine do.
CLUSTER_SCOPED_KINDS = frozenset((
    "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding", "ComponentStatus",
    "CSIDriver", "CSINode", "CustomResourceDefinition", "FlowSchema", "GatewayClass", "IngressClass",
    "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "MutatingWebhookConfiguration", "Namespace",
    "Node", "PersistentVolume", "PodSecurityPolicy", "PriorityClass", "PriorityLevelConfiguration",
    "RuntimeClass", "StorageClass", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration", "VolumeAttachment", "ClusterTrustBundle",
))

HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
HELM_MANAGED_BY = "app.kubernetes.io/managed-by"


class RenderError(Exception):
    """A render directory that cannot be written."""


def step_name(text):
    """``text`` as a file name part: lower case letters, digits, dots, dashes and underscores."""
    name = re.sub(r"[^a-z0-9._-]+", "-", (text or "").strip().lower()).strip("-.")
    return name or "step"


def next_number(directory):
    """The number of the next step in ``directory`` (its files and the ``gcp`` subdirectory's share one count)."""
    highest = 0
    for folder in (directory, os.path.join(directory, GCP_DIR)):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            match = NUMBERED.match(name)
            if match:
                highest = max(highest, int(match.group(1)))
    return highest + 1


def numbered_path(directory, step, suffix, subdir=None, number=None):
    """``DIR[/subdir]/NNN-step<suffix>``; the directories are created."""
    if number is None:
        number = next_number(directory)
    folder = os.path.join(directory, subdir) if subdir else directory
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise RenderError("cannot create the render directory %s: %s" % (folder, error))
    return os.path.join(folder, "%03d-%s%s" % (number, step_name(step), suffix))


def write_text(path, text, private=False):
    """Write ``text`` to ``path`` atomically (a reader never sees half a file); ``private``: mode 0600."""
    folder = os.path.dirname(path) or "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=".render-", dir=folder)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except OSError as error:
        raise RenderError("cannot write %s: %s" % (path, error))
    return path


def dump_yaml(objects):
    """Objects as a multi-document YAML stream, keys in a stable order."""
    if not HAS_YAML:  # pragma: no cover
        raise RenderError("render mode needs PyYAML")
    objects = json.loads(json.dumps(objects, default=str))  # plain data (Ansible hands plugins tagged strings)
    return "".join("---\n" + yaml.safe_dump(obj, default_flow_style=False, sort_keys=True, width=120)
                   for obj in objects)


def dump_json(data):
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def is_namespaced(obj):
    return obj.get("kind") not in CLUSTER_SCOPED_KINDS


def with_namespace(obj, namespace):
    """A copy of ``obj`` in ``namespace`` when it is namespaced and names none."""
    obj = copy.deepcopy(obj)
    metadata = obj.setdefault("metadata", {})
    if namespace and is_namespaced(obj) and not metadata.get("namespace"):
        metadata["namespace"] = namespace
    return obj


def with_helm_ownership(obj, release, namespace):
    """A copy of ``obj`` with the metadata ``helm install`` gives the objects of a release (so that helm can adopt
    objects applied from the render, and so that they equal what helm installs)."""
    obj = copy.deepcopy(obj)
    metadata = obj.setdefault("metadata", {})
    metadata.setdefault("annotations", {}).update({HELM_RELEASE_NAME: release, HELM_RELEASE_NAMESPACE: namespace})
    metadata.setdefault("labels", {})[HELM_MANAGED_BY] = "Helm"
    return obj


def chart_objects(manifest, release, namespace):
    """The objects of a ``helm template`` manifest, as helm install would create them: empty documents dropped,
    namespaced objects in the release namespace, with helm's ownership metadata."""
    if not HAS_YAML:  # pragma: no cover
        raise RenderError("render mode needs PyYAML")
    objects = []
    for doc in yaml.safe_load_all(manifest or ""):
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        items = doc.get("items") if doc["kind"].endswith("List") and isinstance(doc.get("items"), list) else [doc]
        for obj in items:
            objects.append(with_helm_ownership(with_namespace(obj, namespace), release, namespace))
    return objects


def clean_query(query):
    """A request's query without its random ``requestId`` (a render is the same from run to run)."""
    return {k: v for k, v in (query or {}).items() if k != "requestId"} or None
