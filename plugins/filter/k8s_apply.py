# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for results of kubernetes.core.k8s and for server-side apply field ownership.

k8s_diff
    kubernetes.core.k8s returns one ``diff`` per object, but for a multi-document ``definition`` it nests them
    in ``result.results[]``, where Ansible's callbacks never show them. This filter turns a registered result
    (one object, a multi-document list, or a loop of either) into unified diff texts, one per changed object.

k8s_field_managers
    The field managers (``metadata.managedFields``) that own a field path of an object, so that a role or a
    test can check who owns, say, ``spec.default.securityPolicy`` after helm and server-side apply met.
"""

from __future__ import annotations

import difflib
import json

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None

from ansible.errors import AnsibleFilterError

# Fields that change on every write and say nothing about the desired state.
_NOISE = ("resourceVersion", "generation", "managedFields", "creationTimestamp", "uid")


def _plain(obj):
    """Plain dicts, lists and scalars (Ansible hands filters tagged and lazy container subclasses)."""
    return json.loads(json.dumps(obj, default=str))


def _dump(obj):
    if not obj:
        return []
    obj = _plain(obj)
    if yaml is not None:
        text = yaml.safe_dump(obj, default_flow_style=False, sort_keys=True)
    else:  # pragma: no cover
        text = json.dumps(obj, indent=2, sort_keys=True)
    return text.splitlines(keepends=True)


def _strip_noise(obj):
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = {k: v for k, v in meta.items() if k not in _NOISE}
        if not out["metadata"]:
            del out["metadata"]
    return out


def _object_results(result):
    """Yield the per-object results inside a registered kubernetes.core.k8s result."""
    if not isinstance(result, dict):
        return
    if isinstance(result.get("results"), list):  # a loop
        for item in result["results"]:
            yield from _object_results(item)
        return
    inner = result.get("result")
    if isinstance(inner, dict) and isinstance(inner.get("results"), list) and "diff" not in result:
        for item in inner["results"]:  # a multi-document definition
            yield from _object_results(item)
        return
    yield result


def _identity(res):
    obj = res.get("result") if isinstance(res.get("result"), dict) else {}
    meta = obj.get("metadata") or {}
    name = meta.get("name", "?")
    if meta.get("namespace"):
        name = "%s/%s" % (meta["namespace"], name)
    return "%s %s" % (obj.get("kind", "object"), name)


def k8s_diff(result):
    """Unified diffs (one string per changed object) from a registered kubernetes.core.k8s result."""
    if not isinstance(result, dict):
        raise AnsibleFilterError("k8s_diff expects a registered kubernetes.core.k8s result, got %s" % type(result).__name__)
    texts = []
    for res in _object_results(result):
        if not res.get("changed"):
            continue
        ident = _identity(res)
        diff = res.get("diff")
        if isinstance(diff, dict) and ("before" in diff or "after" in diff):
            before, after = _strip_noise(diff.get("before") or {}), _strip_noise(diff.get("after") or {})
        elif res.get("method") == "create":
            before, after = {}, _strip_noise(res.get("result") or {})
        elif res.get("method") == "delete":
            before, after = {"deleted": False}, {"deleted": True}
        else:
            before, after = {}, {"changed": True}
        lines = list(difflib.unified_diff(_dump(before), _dump(after), "before: " + ident, "after: " + ident))
        if lines:
            texts.append("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return texts


def _path_key(part):
    return "f:" + part


def _walk_fields(fields, keys):
    node = fields
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def k8s_field_managers(obj, path, subresource=None):
    """Names of the managers whose managedFields entry owns ``path`` (dotted, e.g. ``spec.default.timeoutSec``).

    ``subresource`` limits the search to entries of that subresource (``status``); by default entries of the
    main resource only.
    """
    if not isinstance(obj, dict):
        raise AnsibleFilterError("k8s_field_managers expects a Kubernetes object (dict)")
    if not path:
        raise AnsibleFilterError("k8s_field_managers needs a dotted field path")
    keys = [_path_key(p) for p in str(path).split(".")]
    owners = []
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if (entry.get("subresource") or None) != (subresource or None):
            continue
        if _walk_fields(entry.get("fieldsV1") or {}, keys):
            name = entry.get("manager", "")
            if name not in owners:
                owners.append(name)
    return owners


def k8s_fields_without(fields_v1, paths):
    """A copy of a managedFields entry's ``fieldsV1`` that no longer owns the dotted ``paths`` (or anything
    below them). A map left owning nothing but itself (only its ``.`` marker) is released too, up the path.
    Used to hand fields over from one manager to another.
    """
    if not isinstance(fields_v1, dict):
        raise AnsibleFilterError("k8s_fields_without expects the fieldsV1 dict of a managedFields entry")
    if isinstance(paths, str):
        paths = [paths]
    result = _plain(fields_v1)
    for path in paths or []:
        keys = [_path_key(p) for p in str(path).split(".")]
        chain = [result]  # the maps along the path, outermost first
        for key in keys[:-1]:
            nxt = chain[-1].get(key)
            if not isinstance(nxt, dict):
                chain = None
                break
            chain.append(nxt)
        if chain is None or keys[-1] not in chain[-1]:
            continue
        del chain[-1][keys[-1]]
        # release maps that own nothing else any more, innermost first
        for depth in range(len(chain) - 1, 0, -1):
            if set(chain[depth]) - {"."}:
                break
            del chain[depth - 1][keys[depth - 1]]
    return result


class FilterModule(object):
    def filters(self):
        return {
            "k8s_diff": k8s_diff,
            "k8s_field_managers": k8s_field_managers,
            "k8s_fields_without": k8s_fields_without,
        }
