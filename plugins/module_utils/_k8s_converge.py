# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The converge engine behind the k8s_converge action: one Kubernetes step of a role, from one read.

:class:`Converger` reads the live counterpart of every object of the step, decides which ones a server-side apply
would change (``_ssa.apply_pending``), and applies only those, with the step's field manager, in the order given.
Around that:

* **Pruning by ApplySet.** A step named ``applyset`` owns a parent ConfigMap of that name in the namespace (the
  ApplySet of Kubernetes' KEP 3659: label ``applyset.kubernetes.io/id``, annotation
  ``applyset.kubernetes.io/contains-group-kinds``), and every object it applies carries the label
  ``applyset.kubernetes.io/part-of=<id>``. What carries the label but is no longer among the objects (group, kind,
  namespace and name) is deleted; the same labels let ``state: absent`` (teardown.yml) delete exactly what a step
  applied, whatever kinds that was. The namespace that holds the parent is never a member.
* **Ownership hand-over.** ``spec.replicas`` of a workload that the configuration stops setting is first applied
  at its live value by a private manager (``<field manager>-handover``), as Kubernetes documents under
  "Transferring ownership", so the API server does not reset it to 1 before the autoscaler acts; a workload that
  sets it again first loses the collection's autoscalers that target it.
* **Taking fields over** from other managers (``take_ownership_from``, e.g. helm for the GCPBackendPolicy its chart
  renders): the fields this manager applies are removed from their entries by a guarded JSON patch of
  ``metadata.managedFields``.
* **Check mode** reads, dry-runs the applies (for the diff) and lists what would be created, changed, pruned and
  taken over; it writes nothing. **Diffs** are per object; a Secret's values never appear.
* **Render mode** (:func:`rendered_step`): the objects as the step would apply them to an empty cluster, no read.
* **Waiting** for what has a readiness predicate (``_workload_status``), failing at once on a crash loop.

All errors reach the caller as :class:`ConvergeError`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import copy
import fnmatch
import hashlib
import json
import time

from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._kube_http import (
    KubeApiError,
    KubeConnectionError,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._render import (
    is_namespaced,
    with_namespace,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils._ssa import (
    apply_entry,
    apply_pending,
    crd_version_schema,
    object_label,
)
from ansible_collections.gke_ai.inference_gateway.plugins.module_utils import _workload_status as workload

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None

APPLYSET_ID = "applyset.kubernetes.io/id"
APPLYSET_PART_OF = "applyset.kubernetes.io/part-of"
APPLYSET_KINDS = "applyset.kubernetes.io/contains-group-kinds"
APPLYSET_NAMESPACES = "applyset.kubernetes.io/additional-namespaces"
APPLYSET_TOOLING = "applyset.kubernetes.io/tooling"
TOOLING = "gke_ai.inference_gateway/v1"
# Groups compiled into the API server (no CRD to read for defaults; quantities are canonicalised).
BUILTIN_GROUPS = frozenset((
    "", "apps", "batch", "autoscaling", "policy", "admissionregistration.k8s.io", "apiextensions.k8s.io",
    "apiregistration.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "certificates.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io", "networking.k8s.io", "node.k8s.io", "rbac.authorization.k8s.io", "resource.k8s.io",
    "scheduling.k8s.io", "storage.k8s.io", "storagemigration.k8s.io"))
WORKLOAD_KINDS = (("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "ReplicaSet"))
_NOISE = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")
_HIDDEN = "(hidden)"


class ConvergeError(Exception):
    """What the step could not do; the message names the object and the API server's reason."""


# --------------------------------------------------------------------------- identities


def group_of(api_version):
    return (api_version or "").rpartition("/")[0]


def identity(obj):
    """What tells objects apart for pruning: group, kind, namespace and name (the version may differ)."""
    meta = obj.get("metadata") or {}
    return group_of(obj.get("apiVersion")), obj.get("kind"), meta.get("namespace") or None, meta.get("name")


def group_kind(group, kind):
    """``Kind.group`` as ApplySet annotations write it (``Kind`` for the core group)."""
    return "%s.%s" % (kind, group) if group else kind


def parse_group_kinds(text):
    """The (group, kind) pairs of a ``contains-group-kinds`` annotation."""
    out = set()
    for item in (text or "").split(","):
        item = item.strip()
        if item:
            kind, _sep, group = item.partition(".")
            out.add((group, kind))
    return out


def applyset_id(name, namespace):
    """The ApplySet id of a ConfigMap parent (KEP 3659: base64url of sha256 of name.namespace.kind.group)."""
    digest = hashlib.sha256(("%s.%s.ConfigMap." % (name, namespace)).encode("utf-8")).digest()
    return "applyset-%s-v1" % base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def applyset_parent(name, namespace, set_id, group_kinds, namespaces):
    annotations = {APPLYSET_TOOLING: TOOLING,
                   APPLYSET_KINDS: ",".join(sorted(group_kind(g, k) for g, k in group_kinds))}
    if namespaces:
        annotations[APPLYSET_NAMESPACES] = ",".join(sorted(namespaces))
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": {APPLYSET_ID: set_id},
                         "annotations": annotations}}


def as_member(obj, set_id):
    """``obj`` labelled as a member of the ApplySet ``set_id`` (a copy)."""
    obj = copy.deepcopy(obj)
    obj.setdefault("metadata", {}).setdefault("labels", {})[APPLYSET_PART_OF] = set_id
    return obj


def stale(members, wanted):
    """The members (live objects) whose identity is not in ``wanted``, in a stable order."""
    out = [member for member in members if identity(member) not in wanted]
    return sorted(out, key=lambda obj: tuple(part or "" for part in identity(obj)))


# --------------------------------------------------------------------------- field ownership


def _fields_leaves(fields, prefix=()):
    """The owned paths of a fieldsV1 tree (its leaves: entries with nothing below but the '.' marker)."""
    children = {key: value for key, value in (fields or {}).items() if key != "."}
    if not children:
        return [prefix] if prefix else []
    out = []
    for key, value in children.items():
        out.extend(_fields_leaves(value, prefix + (key,)))
    return out


def fields_without(fields, owned):
    """``fields`` (a fieldsV1 tree) without the leaves of ``owned`` (another fieldsV1 tree). A map left owning
    nothing but itself (its '.' marker) is released too, up the tree. Returns a new tree."""
    if not isinstance(fields, dict):
        return fields
    out = {}
    for key, value in fields.items():
        if key == ".":
            out[key] = value
            continue
        if key in (owned or {}):
            theirs = {k: v for k, v in (owned[key] or {}).items() if k != "."}
            if not theirs:  # owned whole
                continue
            kept = fields_without(value, owned[key])
            if {k for k in kept if k != "."}:
                out[key] = kept
            continue
        out[key] = value
    return out


def _path_text(path):
    return ".".join(part[2:] if part[:2] in ("f:",) else part for part in path)


def co_owned(live, field_manager, managers):
    """{manager: [paths]} of the fields ``field_manager`` applied that a manager of ``managers`` also owns (its
    ``Update`` entries of the main resource)."""
    ours = apply_entry(live, field_manager, live.get("apiVersion"))
    if ours is None:
        return {}
    mine = set(_fields_leaves(ours.get("fieldsV1") or {}))
    out = {}
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") in managers and entry.get("operation") == "Update" and not entry.get("subresource"):
            theirs = set(_fields_leaves(entry.get("fieldsV1") or {}))
            shared = sorted(_path_text(path) for path in mine & theirs)
            if shared:
                out.setdefault(entry["manager"], []).extend(shared)
    return out


def ownership_patch(live, field_manager, managers):
    """A JSON patch of ``metadata.managedFields`` that takes from the ``Update`` entries of ``managers`` the fields
    ``field_manager`` applied. Each step first tests the entry's manager and operation at its index, so that an
    entry list changed meanwhile fails the patch instead of editing the wrong entry. [] when nothing is shared."""
    ours = apply_entry(live, field_manager, live.get("apiVersion"))
    if ours is None:
        return []
    operations = []
    entries = (live.get("metadata") or {}).get("managedFields") or []
    for index in reversed(range(len(entries))):  # removals from the end keep the earlier indexes valid
        entry = entries[index]
        if entry.get("manager") not in managers or entry.get("operation") != "Update" or entry.get("subresource"):
            continue
        kept = fields_without(entry.get("fieldsV1") or {}, ours.get("fieldsV1") or {})
        if kept == (entry.get("fieldsV1") or {}):
            continue
        where = "/metadata/managedFields/%d" % index
        operations += [{"op": "test", "path": where + "/manager", "value": entry["manager"]},
                       {"op": "test", "path": where + "/operation", "value": "Update"}]
        if {key for key in kept if key != "."}:
            operations.append({"op": "replace", "path": where + "/fieldsV1", "value": kept})
        else:
            operations.append({"op": "remove", "path": where})
    return operations


# --------------------------------------------------------------------------- adoption


def manager_matches(name, patterns):
    """Whether a field manager's name matches one of ``patterns`` (names, or shell patterns like ``kubectl-*``)."""
    return any(fnmatch.fnmatchcase(name or "", pattern) for pattern in patterns or ())


def adopted_entries(obj, field_manager, managers):
    """The managedFields entries of ``obj`` (main resource) of the managers to adopt, ours excepted."""
    ours = (field_manager, field_manager + "-handover")
    return [entry for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []
            if not entry.get("subresource") and entry.get("manager") not in ours
            and manager_matches(entry.get("manager"), managers)]


def _prefixes(path):
    return [path[:i] for i in range(1, len(path) + 1)]


def leftovers(obj, field_manager, managers, keep=()):
    """The fields of ``obj`` that only adopted managers own: what an apply by ``field_manager`` would have removed
    had it owned them, as fieldsV1 paths, outermost first. A list item (``k:``, ``v:``, ``i:``) that no other
    manager owns anything of is one path; a map is never removed whole (keys nobody owns stay). ``keep`` lists
    paths that stay as they are (the replicas an autoscaler owns next)."""
    adopted = adopted_entries(obj, field_manager, managers)
    if not adopted:
        return []
    adopted_ids = set(id(entry) for entry in adopted)
    remaining = set()
    for entry in ((obj.get("metadata") or {}).get("managedFields") or []):
        if id(entry) not in adopted_ids and not entry.get("subresource"):
            remaining.update(_fields_leaves(entry.get("fieldsV1") or {}))
    remaining_prefixes = set()
    for path in remaining:
        remaining_prefixes.update(_prefixes(path))
    out = []
    for entry in adopted:
        for leaf in _fields_leaves(entry.get("fieldsV1") or {}):
            if leaf in remaining_prefixes or any(prefix in remaining for prefix in _prefixes(leaf)):
                continue  # another manager owns it, something below it, or a map or list it is part of
            if any(leaf[:len(path)] == tuple(path) for path in keep):
                continue
            root = leaf
            for prefix in _prefixes(leaf):
                if prefix[-1][:2] in ("k:", "v:", "i:") and prefix not in remaining_prefixes:
                    root = prefix
                    break
            if root not in out:
                out.append(root)
    out = [path for path in out if not any(path[:len(other)] == other and path != other for other in out)]
    return sorted(out, key=len)


def _field_key(element):
    kind, rest = element[:2], element[2:]
    if kind == "k:":
        return "key", json.loads(rest)
    if kind == "v:":
        return "value", json.loads(rest)
    if kind == "i:":
        return "index", int(rest)
    return "field", rest


def _locate(container, element):
    """(found, key or index) of a fieldsV1 path element in a map or list."""
    kind, key = _field_key(element)
    if kind == "field":
        return isinstance(container, dict) and key in container, key
    if not isinstance(container, list):
        return False, None
    if kind == "index":
        return 0 <= key < len(container), key
    for index, item in enumerate(container):
        if kind == "value" and item == key:
            return True, index
        if kind == "key" and isinstance(item, dict) and all(item.get(k) == v for k, v in key.items()):
            return True, index
    return False, None


def without_fields(obj, paths):
    """A copy of ``obj`` without the fields at ``paths`` (fieldsV1 paths); maps and lists left empty by a removal
    go too. Returns (copy, the paths that were there)."""
    obj = copy.deepcopy(obj)
    removed = []
    for path in sorted(paths, key=lambda p: (len(p), p), reverse=True):  # inner first: list indexes stay valid
        chain, node = [], obj
        for element in path[:-1]:
            found, key = _locate(node, element)
            if not found:
                node = None
                break
            chain.append((node, key))
            node = node[key]
        if node is None:
            continue
        found, key = _locate(node, path[-1])
        if not found:
            continue
        del node[key]
        removed.append(path)
        for parent, parent_key in reversed(chain):
            if parent is obj or parent[parent_key] not in ({}, []):
                break  # a top-level key (metadata, spec) stays, and so does what still holds something
            del parent[parent_key]
    return obj, sorted(removed)


def adoption_update(result, live, field_manager, managers, keep=()):
    """The update (PUT body) that completes an adoption after our apply: ``result`` (the object after the apply)
    without the fields only adopted managers own, and without their managedFields entries, so the object is what
    our configuration says and we alone own what we set. None when there is nothing left to adopt."""
    adopted = adopted_entries(result, field_manager, managers)
    if not adopted:
        return None, []
    updated, removed = without_fields(result, leftovers(result, field_manager, managers, keep))
    meta = updated["metadata"]
    meta["managedFields"] = [entry for entry in meta.get("managedFields") or []
                             if not (not entry.get("subresource") and entry.get("manager") != field_manager
                                     and manager_matches(entry.get("manager"), managers))]
    if not meta.get("resourceVersion"):
        meta["resourceVersion"] = ((live or {}).get("metadata") or {}).get("resourceVersion")
    return updated, removed


def has_field(obj, path):
    """Whether ``obj`` has a field at the fieldsV1 ``path``."""
    node = obj
    for element in path:
        found, key = _locate(node, element)
        if not found:
            return False
        node = node[key]
    return True


def workload_keep(desired):
    """Paths an adoption leaves alone: the replicas of a workload whose configuration leaves them to an autoscaler
    (removed, the API server would reset them to 1)."""
    if (group_of(desired.get("apiVersion")), desired.get("kind")) in WORKLOAD_KINDS and \
            "replicas" not in (desired.get("spec") or {}):
        return [("f:spec", "f:replicas")]
    return []


def owns(live, field_manager, path):
    """Whether ``field_manager``'s apply entry owns the field at ``path`` (keys)."""
    entry = apply_entry(live or {}, field_manager, (live or {}).get("apiVersion"))
    node = (entry or {}).get("fieldsV1") or {}
    for key in path:
        node = node.get("f:" + key) if isinstance(node, dict) else None
        if node is None:
            return False
    return True


def replicas_handover(desired, live, field_manager):
    """The apply that keeps ``spec.replicas`` when the configuration stops setting it, or None.

    While our manager owns the field, an apply without it would remove it and the API server would default it
    (1 for a Deployment) until the autoscaler writes its own value. Applied first by a private manager at the
    live value, the field stays; that manager's ownership ends when the autoscaler changes the value.
    """
    if live is None or (group_of(desired.get("apiVersion")), desired.get("kind")) not in WORKLOAD_KINDS:
        return None
    if "replicas" in (desired.get("spec") or {}) or not owns(live, field_manager, ("spec", "replicas")):
        return None
    if (live.get("spec") or {}).get("replicas") is None:
        return None
    meta = live["metadata"]
    ref = {"name": meta["name"]}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return {"apiVersion": desired["apiVersion"], "kind": desired["kind"], "metadata": ref,
            "spec": {"replicas": live["spec"]["replicas"]}}


def takes_replicas_back(desired, live, field_manager):
    """Whether applying ``desired`` takes ``spec.replicas`` back from whoever holds it (an autoscaler)."""
    return (live is not None and (group_of(desired.get("apiVersion")), desired.get("kind")) in WORKLOAD_KINDS
            and "replicas" in (desired.get("spec") or {}) and not owns(live, field_manager, ("spec", "replicas")))


def scales(autoscaler, workload_obj):
    """Whether a HorizontalPodAutoscaler targets the workload."""
    target = (autoscaler.get("spec") or {}).get("scaleTargetRef") or {}
    return (target.get("kind") == workload_obj.get("kind") and target.get("name") == workload_obj["metadata"]["name"]
            and group_of(target.get("apiVersion")) == group_of(workload_obj.get("apiVersion"))
            and (autoscaler.get("metadata") or {}).get("namespace") == workload_obj["metadata"].get("namespace"))


# --------------------------------------------------------------------------- diff


def version_key(version):
    """v1.10.0 > v1.5.0; anything unparsable sorts first."""
    try:
        return tuple(int(p) for p in str(version).lstrip("v").split("-", maxsplit=1)[0].split("."))
    except ValueError:
        return ()


def _served_versions(crd):
    return {v.get("name") for v in ((crd or {}).get("spec") or {}).get("versions") or [] if v.get("served")}


def newer_crd_kept(desired, live, annotation, version):
    """Why the live CustomResourceDefinition stays as it is instead of taking ``desired`` (a CRD of release
    ``version``), or None: the live one carries ``annotation`` with a newer release and still serves every version
    ``desired`` serves. Another namespace may run that newer release; applying ours would take its schema back."""
    if live is None or desired.get("kind") != "CustomResourceDefinition" or not annotation or not version:
        return None
    live_version = ((live.get("metadata") or {}).get("annotations") or {}).get(annotation)
    if not live_version or version_key(live_version) <= version_key(version):
        return None
    if _served_versions(desired) - _served_versions(live):
        return None  # the newer bundle dropped a version this release needs: it must be applied
    return "the cluster's %s (%s) is newer than %s and serves %s" % (
        annotation, live_version, version, ", ".join(sorted(_served_versions(desired))))


def _clean(obj):
    if not obj:
        return {}
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    meta = obj.get("metadata") or {}
    for key in _NOISE:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if "annotations" in meta and not annotations:
        del meta["annotations"]
    return obj


def hide_secret_values(before, after):
    """Copies of two versions of an object where a Secret's values are replaced by markers that tell a changed
    value from an unchanged one, never the value."""
    before, after = copy.deepcopy(before or {}), copy.deepcopy(after or {})
    if "Secret" not in (before.get("kind"), after.get("kind")):
        return before, after
    for key in ("data", "stringData"):
        old, new = before.get(key) or {}, after.get(key) or {}
        if key in before:
            before[key] = {name: _HIDDEN for name in old}
        if key in after:
            after[key] = {name: _HIDDEN if old.get(name) == value else "(hidden, changed)"
                          for name, value in new.items()}
    return before, after


def _dump(obj):
    if not obj:
        return ""
    obj = json.loads(json.dumps(obj, default=str))
    if yaml is not None:
        return yaml.safe_dump(obj, default_flow_style=False, sort_keys=True)
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"  # pragma: no cover


def object_diff(before, after, label):
    """One entry of an Ansible ``diff`` list (the callback prints it as a unified diff)."""
    before, after = hide_secret_values(_clean(before), _clean(after))
    return {"before_header": label, "after_header": label, "before": _dump(before), "after": _dump(after)}


def slim(obj):
    """An object as the result returns it: no Secret values, no CRD schemas."""
    if not obj:
        return obj
    obj = dict(obj)
    if obj.get("kind") == "Secret":
        for key in ("data", "stringData"):
            obj.pop(key, None)
    if obj.get("kind") == "CustomResourceDefinition":
        obj.pop("spec", None)  # megabytes of schema; what a caller wants of a CRD is its status
    return obj


def _content_changed(before, after):
    """Whether a dry-run result differs from the live object (content or ownership, not timestamps)."""
    def owners(obj):
        return [{key: value for key, value in entry.items() if key != "time"}
                for entry in (obj.get("metadata") or {}).get("managedFields") or []]
    return not before or _clean(before) != _clean(after) or owners(before) != owners(after)


# --------------------------------------------------------------------------- the engine


class Item(object):
    """One object of the step: what is wanted, where it lives, what is live, and what to do."""

    def __init__(self, desired):
        self.desired = desired
        self.label = object_label(desired)
        self.resource = None
        self.live = None
        self.reason = None  # why an apply is needed; None: nothing to apply
        self.result = None  # the object after the apply (or the dry run)
        self.skipped = None  # why the object was left alone (only_existing)

    @property
    def current(self):
        return self.result if self.result is not None else self.live


def rendered_step(objects, namespace=None, applyset=None):
    """The objects of a step as ``Converger.run`` would apply them to an empty cluster, in its order, without a
    read (render mode): namespaced objects in the step's namespace, ApplySet members labelled, the Namespace first,
    then the ApplySet parent, then the rest. Which kinds are namespaced comes from
    ``_render.CLUSTER_SCOPED_KINDS`` instead of discovery."""
    objects = [with_namespace(obj, namespace) for obj in objects]
    for obj in objects:
        if not is_namespaced(obj):
            obj["metadata"].pop("namespace", None)
        elif not obj["metadata"].get("namespace"):
            raise ConvergeError("%s: a namespaced object needs metadata.namespace or the namespace option"
                                % object_label(obj))
    set_id = applyset_id(applyset, namespace) if applyset else None
    if set_id:
        objects = [obj if (obj["apiVersion"], obj["kind"], obj["metadata"]["name"]) == ("v1", "Namespace", namespace)
                   else as_member(obj, set_id) for obj in objects]
    namespaces = [obj for obj in objects if obj["kind"] == "Namespace"]
    others = [obj for obj in objects if obj["kind"] != "Namespace"]
    members = [obj for obj in objects if APPLYSET_PART_OF in (obj["metadata"].get("labels") or {})]
    parent = []
    if set_id and members:
        kinds = {(group_of(obj["apiVersion"]), obj["kind"]) for obj in members}
        spread = {obj["metadata"]["namespace"] for obj in members if obj["metadata"].get("namespace")} - {namespace}
        parent = [applyset_parent(applyset, namespace, set_id, kinds, spread)]
    return namespaces + parent + others


class Converger(object):
    """One step: ``run`` converges objects (and prunes), ``remove`` deletes what an ApplySet holds."""

    def __init__(self, client, field_manager, namespace=None, check_mode=False, diff=False, log=None,
                 clock=time.monotonic, sleep=time.sleep):
        self.client = client
        self.field_manager = field_manager
        self.namespace = namespace
        self.check_mode = check_mode
        self.want_diff = diff
        self.log = log or (lambda text: None)
        self.clock, self.sleep = clock, sleep
        self._resources = {}
        self._schemas = {}
        self.report = {"created": [], "updated": [], "pruned": [], "handed_over": [], "taken_over": [],
                       "released": [], "adopted": [], "missing": [], "not_served": [], "kept": [], "reasons": {}}
        self.adopt_from = ()
        self.keep_newer = {}
        self.diffs = []
        self.changed = False

    # ---- reads ------------------------------------------------------------------------------------------------

    def _call(self, what, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except KubeApiError as error:
            raise ConvergeError("%s: %s" % (what, error.message))
        except KubeConnectionError as error:
            raise ConvergeError(str(error))

    def resource(self, api_version, kind):
        key = (api_version, kind)
        if key not in self._resources:
            self._resources[key] = self._call("discovery of %s" % api_version, self.client.resource, api_version, kind)
        return self._resources[key]

    def resource_of_group_kind(self, group, kind, versions=()):
        """The served resource of a group and kind: from the versions seen in this step, else the group's."""
        for version in versions:
            found = self.resource(version, kind)
            if found is not None:
                return found
        if group:
            candidates = self._call("discovery of %s" % group, self.client.group_versions, group)
        else:
            candidates = ["v1"]
        for version in candidates:
            found = self.resource(version, kind)
            if found is not None:
                return found
        return None

    def _defaults(self, resource):
        """(schema, builtin) of a resource: the CRD's schema of the version, and whether it is compiled in."""
        group, version, plural, _namespaced = resource
        if group in BUILTIN_GROUPS:
            return None, True
        if resource not in self._schemas:
            self._schemas[resource] = (None, False)
            crds = self.resource("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            if crds is not None:
                try:
                    crd = self.client.get(crds, "%s.%s" % (plural, group))
                except KubeApiError:  # not readable (RBAC): compare without defaults
                    crd = False
                if crd:
                    self._schemas[resource] = (crd_version_schema(crd, version), False)
                elif crd is None:  # no CRD: an aggregated or compiled-in API
                    self._schemas[resource] = (None, True)
        return self._schemas[resource]

    def _read(self, objects, only_existing):
        items = []
        for desired in objects:
            item = Item(desired)
            items.append(item)
            item.resource = self.resource(desired["apiVersion"], desired["kind"])
            if item.resource is None:
                why = "the cluster does not serve %s %s" % (desired["apiVersion"], desired["kind"])
                served = "%s %s" % (desired["apiVersion"], desired["kind"])
                if served not in self.report["not_served"]:
                    self.report["not_served"].append(served)
                if only_existing:
                    item.skipped = why
                elif self.check_mode:
                    item.reason = why + " (yet)"
                else:
                    raise ConvergeError("%s: %s; its CustomResourceDefinition must be applied first"
                                        % (item.label, why))
                continue
            meta = desired["metadata"]
            if item.resource[3]:
                meta.setdefault("namespace", self.namespace)
                if not meta.get("namespace"):
                    raise ConvergeError("%s: a namespaced object needs metadata.namespace or the namespace option"
                                        % item.label)
                item.label = object_label(desired)
            else:
                meta.pop("namespace", None)
            item.live = self._call("read " + item.label, self.client.get, item.resource, meta["name"],
                                   meta.get("namespace"))
            if item.live is None and only_existing:
                item.skipped = "does not exist"
                continue
            schema, builtin = self._defaults(item.resource)
            item.reason = apply_pending(desired, item.live, self.field_manager, schema, builtin)
            kept = item.reason and newer_crd_kept(desired, item.live, self.keep_newer.get("annotation"),
                                                  self.keep_newer.get("version"))
            if kept:
                item.reason = None
                self.report["kept"].append("%s: %s" % (item.label, kept))
                continue
            if item.reason is None and adopted_entries(item.live, self.field_manager, self.adopt_from):
                item.reason = "fields set by %s to adopt" % ", ".join(sorted(
                    set(entry["manager"] for entry in adopted_entries(item.live, self.field_manager,
                                                                      self.adopt_from))))
        return items

    # ---- writes -----------------------------------------------------------------------------------------------

    def _apply(self, item, dry_run=False):
        return self._call("apply " + item.label, self.client.apply, item.resource, item.desired, self.field_manager,
                          True, dry_run)

    def _record_diff(self, before, after, label):
        if self.want_diff:
            self.diffs.append(object_diff(before, after, label))

    def _hand_over_replicas(self, item):
        manifest = replicas_handover(item.desired, item.live, self.field_manager)
        if manifest is None:
            return
        text = "%s spec.replicas (%s) to the autoscaler" % (item.label, manifest["spec"]["replicas"])
        self.report["handed_over"].append(text)
        if self.check_mode:
            return
        try:
            self.client.apply(item.resource, manifest, self.field_manager + "-handover", False)
        except KubeApiError as error:
            if error.status != 409:  # a conflict: the autoscaler owns the field already, nothing to hand over
                raise ConvergeError("hand %s over: %s" % (text, error.message))
        except KubeConnectionError as error:
            raise ConvergeError(str(error))
        self.changed = True

    def _release_from_autoscalers(self, item, autoscaler_selector):
        if autoscaler_selector is None or not takes_replicas_back(item.desired, item.live, self.field_manager):
            return
        hpas = self.resource("autoscaling/v2", "HorizontalPodAutoscaler")
        if hpas is None:
            return
        namespace = item.desired["metadata"].get("namespace")
        found = self._call("list HorizontalPodAutoscalers", self.client.list, hpas, namespace, autoscaler_selector)
        for hpa in found:
            if not scales(hpa, item.desired):
                continue
            label = object_label(hpa)
            self.report["released"].append("%s (it scales %s, whose replicas are set again)" % (label, item.label))
            if self.check_mode:
                continue
            self._call("delete " + label, self.client.delete, hpas, hpa["metadata"]["name"], namespace)
            self._wait_gone([(hpas, hpa)], 120)
            self._record_diff(hpa, None, label)
            self.changed = True

    def _take_over(self, item, managers):
        """Remove the fields we apply from the entries of ``managers`` (retried once on a changed entry list)."""
        obj = item.current
        if not managers or not obj:
            return
        shared = co_owned(obj, self.field_manager, managers)
        if not shared:
            return
        for manager, paths in sorted(shared.items()):
            self.report["taken_over"].append("%s %s from %s" % (item.label, ", ".join(paths), manager))
        if self.check_mode:
            return
        for attempt in (1, 2):
            operations = ownership_patch(obj, self.field_manager, managers)
            if not operations:
                return
            try:
                item.result = self.client.json_patch(item.resource, obj["metadata"]["name"],
                                                     obj["metadata"].get("namespace"), operations)
                self.changed = True
                return
            except KubeApiError as error:
                if attempt == 2:
                    raise ConvergeError("take %s over from %s: %s" % (item.label, ", ".join(managers), error.message))
                obj = self._call("read " + item.label, self.client.get, item.resource, obj["metadata"]["name"],
                                 obj["metadata"].get("namespace"))
                if obj is None:
                    return
            except KubeConnectionError as error:
                raise ConvergeError(str(error))

    def _wait_gone(self, pairs, timeout):
        deadline = self.clock() + timeout
        pending = list(pairs)
        while pending:
            pending = [(resource, obj) for resource, obj in pending
                       if self._call("read " + object_label(obj), self.client.get, resource, obj["metadata"]["name"],
                                     obj["metadata"].get("namespace")) is not None]
            if not pending:
                return
            if self.clock() >= deadline:
                raise ConvergeError("still there %ds after their deletion: %s"
                                    % (timeout, ", ".join(object_label(obj) for _r, obj in pending)))
            self.sleep(1)

    # ---- ApplySet ---------------------------------------------------------------------------------------------

    def _members(self, set_id, group_kinds, namespaces, versions):
        """The live members of the ApplySet: every object of its kinds labelled with its id."""
        selector = "%s=%s" % (APPLYSET_PART_OF, set_id)
        members = []
        for group, kind in sorted(group_kinds):
            resource = self.resource_of_group_kind(group, kind, versions.get((group, kind), ()))
            if resource is None:
                continue  # no longer served (its CRD went): nothing of that kind is left to prune
            for namespace in (sorted(namespaces) if resource[3] else [None]):
                found = self._call("list %s" % group_kind(group, kind), self.client.list, resource, namespace,
                                   selector)
                members.extend((resource, obj) for obj in found)
        return members

    def _parent(self, name):
        configmaps = self.resource("v1", "ConfigMap")
        parent = self._call("read ConfigMap %s/%s" % (self.namespace, name), self.client.get, configmaps, name,
                            self.namespace)
        if parent is None:
            return configmaps, None, set(), set()
        annotations = (parent.get("metadata") or {}).get("annotations") or {}
        tooling = annotations.get(APPLYSET_TOOLING)
        if tooling and tooling != TOOLING:
            raise ConvergeError("ConfigMap %s/%s is the ApplySet parent of another tool (%s)"
                                % (self.namespace, name, tooling))
        namespaces = {ns for ns in (annotations.get(APPLYSET_NAMESPACES) or "").split(",") if ns}
        return configmaps, parent, parse_group_kinds(annotations.get(APPLYSET_KINDS)), namespaces

    def _write_parent(self, configmaps, name, set_id, parent, group_kinds, namespaces):
        if parent is None and not group_kinds:
            return None  # a step with nothing to record needs no parent
        wanted = applyset_parent(name, self.namespace, set_id, group_kinds, namespaces - {self.namespace})
        current = (parent or {}).get("metadata") or {}
        if parent is not None and current.get("annotations", {}).get(APPLYSET_KINDS) == \
                wanted["metadata"]["annotations"][APPLYSET_KINDS] and \
                current.get("annotations", {}).get(APPLYSET_NAMESPACES) == \
                wanted["metadata"]["annotations"].get(APPLYSET_NAMESPACES) and \
                (current.get("labels") or {}).get(APPLYSET_ID) == set_id:
            return parent
        if self.check_mode:
            return parent
        self.changed = True
        return self._call("apply the ApplySet parent ConfigMap %s/%s" % (self.namespace, name), self.client.apply,
                          configmaps, wanted, self.field_manager, True, False)

    # ---- the step ---------------------------------------------------------------------------------------------

    def run(self, objects, applyset=None, prune=True, take_ownership_from=(), only_existing=False,
            autoscaler_selector=None, scale_handover=True, select=(), adopt_from=(), keep_newer=None):
        objects = [copy.deepcopy(obj) for obj in objects]
        self.adopt_from = tuple(adopt_from or ())
        self.keep_newer = dict(keep_newer or {})
        set_id = applyset_id(applyset, self.namespace) if applyset else None
        if set_id:
            objects = [obj if (obj.get("apiVersion"), obj.get("kind"), obj["metadata"].get("name")) ==
                       ("v1", "Namespace", self.namespace) else as_member(obj, set_id) for obj in objects]
        items = self._read(objects, only_existing)
        for item in items:
            if item.skipped:
                self.report["missing"].append("%s: %s" % (item.label, item.skipped))
            elif item.reason:
                self.report["reasons"][item.label] = item.reason

        selected = []
        for query in select:
            resource = self.resource(query.get("api_version", "v1"), query["kind"])
            selected.append([] if resource is None else self._call(
                "list %s" % query["kind"], self.client.list, resource, query.get("namespace"),
                query.get("label_selector")))

        parent = stale_members = configmaps = None
        recorded_kinds = wanted_kinds = recorded_namespaces = wanted_namespaces = set()
        if set_id:
            configmaps, parent, recorded_kinds, recorded_namespaces = self._parent(applyset)
            wanted_kinds = {(group_of(i.desired["apiVersion"]), i.desired["kind"]) for i in items
                            if APPLYSET_PART_OF in (i.desired["metadata"].get("labels") or {})}
            wanted_namespaces = {i.desired["metadata"]["namespace"] for i in items
                                 if i.desired["metadata"].get("namespace")} | {self.namespace}
            versions = {}
            for item in items:
                versions.setdefault((group_of(item.desired["apiVersion"]), item.desired["kind"]), []).append(
                    item.desired["apiVersion"])
            wanted = {identity(i.desired) for i in items}
            stale_members = []
            if prune:
                members = self._members(set_id, recorded_kinds | wanted_kinds,
                                        recorded_namespaces | wanted_namespaces, versions)
                stale_members = [(r, obj) for r, obj in members
                                 if identity(obj) not in wanted]
                stale_members.sort(key=lambda pair: tuple(part or "" for part in identity(pair[1])))

        # Namespaces first: the parent and the namespaced objects live in them.
        ordered = [i for i in items if i.desired["kind"] == "Namespace"] + \
                  [i for i in items if i.desired["kind"] != "Namespace"]
        parent_written = False
        for item in ordered:
            if set_id and not parent_written and item.desired["kind"] != "Namespace":
                # before any member: a run that stops half-way still finds what it applied
                parent = self._write_parent(configmaps, applyset, set_id, parent, recorded_kinds | wanted_kinds,
                                            recorded_namespaces | wanted_namespaces)
                parent_written = True
            if item.reason is None:
                continue
            if scale_handover:
                self._hand_over_replicas(item)
            self._release_from_autoscalers(item, autoscaler_selector)
            self._apply_item(item)
        if set_id and not parent_written:
            parent = self._write_parent(configmaps, applyset, set_id, parent, recorded_kinds | wanted_kinds,
                                        recorded_namespaces | wanted_namespaces)

        for item in items:
            if not item.skipped:
                self._take_over(item, list(take_ownership_from))

        if stale_members:
            self._prune(stale_members)
        if set_id and prune and (recorded_kinds - wanted_kinds or recorded_namespaces - wanted_namespaces) \
                and not self.check_mode:
            self._write_parent(configmaps, applyset, set_id, parent, wanted_kinds, wanted_namespaces)

        for key in ("created", "updated", "pruned", "handed_over", "taken_over", "released", "adopted"):
            if self.report[key]:
                self.changed = True
        return items, selected

    def _apply_item(self, item):
        label = item.label
        if self.check_mode:
            after = None
            if item.resource is not None:
                try:
                    after = self.client.apply(item.resource, item.desired, self.field_manager, True, True)
                except KubeApiError as error:
                    if error.status not in (404,):  # a namespace or kind created earlier in the run
                        raise ConvergeError("apply %s (dry run): %s" % (label, error.message))
                except KubeConnectionError as error:
                    raise ConvergeError(str(error))
            if after is not None:
                after = self._adopt(item, after)
            if item.live is not None and after is not None and not _content_changed(item.live, after):
                return
            item.result = after
            self.report["created" if item.live is None else "updated"].append(label)
            shown = copy.deepcopy(after or item.desired)
            handover = replicas_handover(item.desired, item.live, self.field_manager)
            if handover:  # the dry run cannot show the hand-over that comes first: replicas stay
                shown.setdefault("spec", {})["replicas"] = handover["spec"]["replicas"]
            self._record_diff(item.live, shown, label)
            return
        item.result = self._adopt(item, self._apply(item))
        before_version = ((item.live or {}).get("metadata") or {}).get("resourceVersion")
        after_version = ((item.result or {}).get("metadata") or {}).get("resourceVersion")
        if item.live is None:
            self.report["created"].append(label)
        elif before_version != after_version:
            self.report["updated"].append(label)
        else:
            return
        self._record_diff(item.live, item.result, label)

    def _adopt(self, item, result, attempts=3):
        """Complete the adoption of an object other managers (kubectl...) made: after our apply, remove what only
        they set and their managedFields entries (one update, guarded by the resourceVersion; re-read and again on
        a conflict). Returns the object as it is (or, in check mode, would be) afterwards."""
        if not self.adopt_from or item.live is None:
            return result
        keep = workload_keep(item.desired)
        adopted = adopted_entries(result, self.field_manager, self.adopt_from)
        managers = sorted(set(entry["manager"] for entry in adopted))
        body, removed = adoption_update(result, item.live, self.field_manager, self.adopt_from, keep)
        final = result
        for attempt in range(1, attempts + 1):
            if body is None:
                break
            try:
                final = self.client.replace(item.resource, body, self.field_manager, self.check_mode)
                break
            except KubeApiError as error:
                if error.status != 409 or self.check_mode or attempt == attempts:
                    raise ConvergeError("adopt %s (from %s): %s" % (item.label, ", ".join(managers), error.message))
            except KubeConnectionError as error:
                raise ConvergeError(str(error))
            meta = item.desired["metadata"]
            final = self._call("read " + item.label, self.client.get, item.resource, meta["name"],
                               meta.get("namespace"))
            body, removed = adoption_update(final, item.live, self.field_manager, self.adopt_from, keep)
        if managers:
            gone = [_path_text(path) for path in removed if not has_field(final, path)]
            removed_text = "; removed %s" % ", ".join(gone) if gone else ""
            self.report["adopted"].append("%s from %s%s" % (item.label, ", ".join(managers), removed_text))
        return final

    def _prune(self, members, timeout=300):
        for resource, obj in members:
            label = object_label(obj)
            self.report["pruned"].append(label)
            self._record_diff(obj, None, label)
            if not self.check_mode:
                self._call("delete " + label, self.client.delete, resource, obj["metadata"]["name"],
                           obj["metadata"].get("namespace"))
        if not self.check_mode:
            self._wait_gone(members, timeout)

    def remove(self, applyset, timeout=300):
        """Delete every member of the ApplySet ``applyset``, wait until they are gone, then its parent."""
        configmaps, parent, kinds, namespaces = self._parent(applyset)
        set_id = applyset_id(applyset, self.namespace)
        members = self._members(set_id, kinds, namespaces | {self.namespace}, {})
        members.sort(key=lambda pair: tuple(part or "" for part in identity(pair[1])))
        self._prune(members, timeout)
        if parent is not None:
            label = "ConfigMap %s/%s" % (self.namespace, applyset)
            if not self.check_mode:
                self._call("delete " + label, self.client.delete, configmaps, applyset, self.namespace)
            self.changed = True
        if members:
            self.changed = True

    # ---- waiting ----------------------------------------------------------------------------------------------

    def wait(self, items, timeout, interval=2.0, titles=None, progress_every=30.0):
        """Wait until every object with a readiness predicate is ready; fail at once on a crash loop."""
        titles = titles or {}
        waited = [item for item in items if item.resource is not None and not item.skipped
                  and workload.has_predicate(item.desired)]
        deadline = self.clock() + timeout
        current = {id(item): item.current for item in waited}
        last_text, last_shown = None, self.clock()
        while True:
            fatal, lines, pending = [], [], []
            for item in waited:
                obj = current[id(item)]
                title = self._title(item, titles)
                found = workload.blockers(obj, title) if obj else ["%s: does not exist" % title]
                if not found:
                    continue
                pending.append(item)
                if obj and obj.get("kind") == "Deployment":
                    more_fatal, more = self._explain(obj, title)
                    fatal.extend(more_fatal)
                    lines.extend(more)
                else:
                    lines.extend(found)
            if fatal:
                raise ConvergeError("crash-looping, waiting cannot help:\n- " + "\n- ".join(fatal))
            if not pending:
                return
            now = self.clock()
            if now >= deadline:
                raise ConvergeError("not ready after %ss:%s" % (timeout, "".join(
                    ("\n" if line.startswith(" ") else "\n- ") + line for line in lines)))
            text = "\n".join(lines)
            if text != last_text or now - last_shown >= progress_every:
                self.log("waiting (%ds left): %s" % (deadline - now, "; ".join(line.strip() for line in lines)))
                last_text, last_shown = text, now
            self.sleep(min(interval, max(0.0, deadline - now)))
            for item in pending:
                meta = item.desired["metadata"]
                current[id(item)] = item.result = self._call("read " + item.label, self.client.get, item.resource,
                                                             meta["name"], meta.get("namespace"))

    @staticmethod
    def _title(item, titles):
        name = item.desired["metadata"]["name"]
        return "%s, %s" % (titles[name], item.label) if titles.get(name) else item.label

    def _explain(self, deployment, title):
        """(fatal, lines) of a Deployment that is not ready, from its pods (and events, for pending pods)."""
        pods_resource = self.resource("v1", "Pod")
        namespace = deployment["metadata"].get("namespace")
        pods = self._call("list pods", self.client.list, pods_resource, namespace, workload.selector_text(deployment))
        events = []
        if any(not ((p.get("status") or {}).get("containerStatuses")) or
               any(c.get("type") == "PodScheduled" and c.get("status") == "False"
                   for c in (p.get("status") or {}).get("conditions") or []) for p in pods):
            events_resource = self.resource("v1", "Event")
            events = self._call("list events", self.client.list, events_resource, namespace)
        return workload.explain(deployment, pods, events, title)
