# -*- coding: utf-8 -*-
# Copyright: (c) 2026, gke_ai.inference_gateway contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Would a server-side apply change anything? Decided from the live object alone.

A re-run of a role applies objects that are, most of the time, exactly as the last run left them. The API
server would answer such an apply with the same object, but getting there costs a module process that imports
the kubernetes client (about a second each here). This decides it from one read instead.

A server-side apply by field manager M of configuration C leaves an object unchanged when

1. every field C sets already has, in the live object, the value C gives it; and
2. the fields M owns (its ``Apply`` entry of ``metadata.managedFields``) are exactly the fields C sets:
   a field M owns that C no longer sets would be removed, and a field C sets that M does not own yet would
   change the ownership records.

Both are checked by walking C, the live object and M's ``fieldsV1`` together, the way the API server encodes
ownership: ``f:<name>`` for a map key, ``k:<json>`` for an item of a list keyed by merge keys, ``v:<json>`` for an
item of a set, and an empty entry for an atomic map or list, whose value is then compared as a whole.

The answer errs one way only: anything this cannot decide (a null in C, an entry encoding it does not know, a
number the server wrote in another canonical form) counts as a change, which costs an apply and nothing else.
Reasons name paths, never values: a Secret's data must not end up in a reason.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json

# Fields that identify the object; the API server does not record them as owned.
_IDENTITY = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}


class _Pending(Exception):
    """Raised inside the walk at the first difference; the message is the reason."""


def _path_text(path):
    text = ""
    for part in path:
        text += "[%d]" % part if isinstance(part, int) else ("." if text else "") + str(part)
    return text or "."


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def values_equal(desired, live):
    """Deep equality, where a number and its decimal string are the same (``cpu: 4`` is served as ``"4"``)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and desired.keys() == live.keys() and all(
            values_equal(value, live[key]) for key, value in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(desired) == len(live) and all(
            values_equal(one, other) for one, other in zip(desired, live))
    if isinstance(desired, bool) or isinstance(live, bool):
        return isinstance(desired, bool) and isinstance(live, bool) and desired == live
    if _is_number(desired) and isinstance(live, str):
        return str(desired) == live
    if isinstance(desired, str) and _is_number(live):
        return desired == str(live)
    if _is_number(desired) and _is_number(live):
        return desired == live
    if isinstance(desired, str) or isinstance(live, str):
        return isinstance(desired, str) and isinstance(live, str) and desired == live
    return desired is None and live is None


def _children(owned):
    return {key: value for key, value in (owned or {}).items() if key != "."}


def _skipped(path, key, value):
    """Keys of the configuration that an apply does not record as owned fields."""
    if path + (key,) in _IDENTITY:
        return True
    if path == ("metadata",) and key == "creationTimestamp" and value is None:
        return True  # rendered by some tools as null; the server ignores it
    if path == () and key == "metadata" and isinstance(value, dict):
        return all(_skipped(("metadata",), name, item) for name, item in value.items())  # identity only
    return path == () and key == "status"  # status is written through its own subresource


def _sub_schema(schema, key):
    if not isinstance(schema, dict):
        return None
    properties = schema.get("properties") or {}
    if key in properties:
        return properties[key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _items_schema(schema):
    return schema.get("items") if isinstance(schema, dict) and isinstance(schema.get("items"), dict) else None


def _walk_map(desired, live, owned, path, schema):
    fields = _children(owned)
    if not fields:  # an atomic map (a selector, nodeSelector...) or an empty one: compared whole
        if not values_equal(with_schema_defaults(desired, schema), live):
            raise _Pending("%s differs" % _path_text(path))
        return
    if not isinstance(live, dict):
        raise _Pending("%s is not a map in the live object" % _path_text(path))
    applied = set()
    for key, value in desired.items():
        if _skipped(path, key, value):
            continue
        if value is None:
            raise _Pending("%s is null in the configuration" % _path_text(path + (key,)))
        entry = "f:" + key
        if entry not in fields:
            raise _Pending("%s is not owned by the field manager yet" % _path_text(path + (key,)))
        if key not in live:
            raise _Pending("%s is missing from the live object" % _path_text(path + (key,)))
        _walk(value, live[key], fields[entry], path + (key,), _sub_schema(schema, key))
        applied.add(entry)
    for entry in fields:
        if entry not in applied:
            if not entry.startswith("f:"):
                raise _Pending("%s: unexpected ownership entry %s" % (_path_text(path), entry))
            raise _Pending("%s is owned but no longer configured (an apply would remove it)"
                           % _path_text(path + (entry[2:],)))


def _key_matches(key, item):
    """A ``k:`` key matches an item when every key field the item sets has the key's value."""
    return isinstance(item, dict) and all(values_equal(item[name], value) for name, value in key.items() if name in item)


def _walk_keyed_list(desired, live, entries, path, schema):
    keys = [(entry, json.loads(entry[2:])) for entry in entries]
    if len(keys) != len(desired):
        raise _Pending("%s: the field manager owns %d items, the configuration has %d"
                       % (_path_text(path), len(keys), len(desired)))
    used = set()
    previous = -1
    for index, item in enumerate(desired):
        matches = [(entry, key) for entry, key in keys if entry not in used and _key_matches(key, item)]
        if len(matches) != 1:
            raise _Pending("%s is not owned by the field manager yet" % _path_text(path + (index,)))
        entry, key = matches[0]
        used.add(entry)
        positions = [position for position, one in enumerate(live) if isinstance(one, dict)
                     and all(values_equal(value, one.get(name)) for name, value in key.items())]
        if len(positions) != 1:
            raise _Pending("%s is missing from the live object" % _path_text(path + (index,)))
        if positions[0] < previous:  # an apply keeps the configured order of its items
            raise _Pending("%s is in another order in the live object" % _path_text(path))
        previous = positions[0]
        _walk(item, live[positions[0]], entries[entry], path + (index,), _items_schema(schema))


def _walk_set(desired, live, entries, path):
    owned = [json.loads(entry[2:]) for entry in entries]
    if len(owned) != len(desired):
        raise _Pending("%s: the field manager owns %d items, the configuration has %d"
                       % (_path_text(path), len(owned), len(desired)))
    previous = -1
    for index, item in enumerate(desired):
        if not any(values_equal(item, value) for value in owned):
            raise _Pending("%s is not owned by the field manager yet" % _path_text(path + (index,)))
        positions = [position for position, value in enumerate(live) if values_equal(item, value)]
        if not positions:
            raise _Pending("%s is missing from the live object" % _path_text(path + (index,)))
        if positions[0] < previous:
            raise _Pending("%s is in another order in the live object" % _path_text(path))
        previous = positions[0]


def _walk_list(desired, live, owned, path, schema):
    entries = _children(owned)
    if not entries:  # an atomic list (args, command...): compared whole
        if not values_equal(with_schema_defaults(desired, schema), live):
            raise _Pending("%s differs" % _path_text(path))
        return
    if not isinstance(live, list):
        raise _Pending("%s is not a list in the live object" % _path_text(path))
    prefixes = {entry[:2] for entry in entries}
    if prefixes == {"k:"}:
        _walk_keyed_list(desired, live, entries, path, schema)
    elif prefixes == {"v:"}:
        _walk_set(desired, live, entries, path)
    else:
        raise _Pending("%s: list ownership encoded as %s is not compared here"
                       % (_path_text(path), ", ".join(sorted(prefixes))))


def _walk(desired, live, owned, path, schema):
    if isinstance(desired, dict):
        _walk_map(desired, live, owned, path, schema)
    elif isinstance(desired, list):
        _walk_list(desired, live, owned, path, schema)
    else:
        if _children(owned):
            raise _Pending("%s: the field manager owns fields below a scalar" % _path_text(path))
        if not values_equal(desired, live):
            raise _Pending("%s differs" % _path_text(path))


def with_schema_defaults(value, schema):
    """``value`` with the ``default`` of every absent property of its OpenAPI v3 ``schema`` filled in.

    This is what the API server does to a custom resource before storing it, so a configuration that leaves
    a defaulted field out (an HTTPRoute backendRef's ``weight: 1``) compares equal to what the server keeps.
    Applied to the configuration only: a wrong or missing schema can make an unchanged object look changed,
    never the reverse.
    """
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        out = dict(value)
        for key, sub in properties.items():
            if key not in out and isinstance(sub, dict) and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
        for key, item in out.items():
            if key in properties:
                out[key] = with_schema_defaults(item, properties[key])
            elif isinstance(extra, dict):
                out[key] = with_schema_defaults(item, extra)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_schema_defaults(item, schema["items"]) for item in value]
    return value


def crd_version_schema(crd, version):
    """The ``openAPIV3Schema`` of one served version of a CustomResourceDefinition (None when it has none)."""
    spec = crd.get("spec") or {}
    for entry in spec.get("versions") or []:
        if entry.get("name") == version:
            return ((entry.get("schema") or {}).get("openAPIV3Schema")
                    or (spec.get("validation") or {}).get("openAPIV3Schema"))
    return None


def object_label(obj):
    """``Kind namespace/name``, or ``Kind name`` for a cluster-scoped object."""
    meta = obj.get("metadata") or {}
    where = "%s/" % meta["namespace"] if meta.get("namespace") else ""
    return "%s %s%s" % (obj.get("kind"), where, meta.get("name"))


def apply_entry(live, field_manager, api_version):
    """The ``Apply`` entry of ``field_manager`` in the live object's managedFields, for ``api_version``."""
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if (entry.get("manager") == field_manager and entry.get("operation") == "Apply"
                and not entry.get("subresource") and entry.get("apiVersion") == api_version):
            return entry
    return None


def _sets_fields(desired):
    """Whether a configuration sets anything beyond apiVersion, kind, name and namespace."""
    metadata = desired.get("metadata") or {}
    return any(key not in ("apiVersion", "kind", "metadata") for key in desired) or any(
        key not in ("name", "namespace") for key in metadata)


def apply_pending(desired, live, field_manager, schema=None):
    """Why a server-side apply of ``desired`` by ``field_manager`` would change ``live``; None when it would not.

    ``desired`` and ``live`` are plain dicts (JSON types); ``live`` is None when the object does not exist.
    ``schema``, the OpenAPI v3 schema of a custom resource, supplies the defaults the server fills in, which
    matter where a map or list is atomic (compared whole).
    """
    if not live:
        return "does not exist"
    entry = apply_entry(live, field_manager, desired.get("apiVersion"))
    if entry is None:
        if not _sets_fields(desired):
            # An apply of nothing but the object's identity (a bare Namespace or ServiceAccount) owns no field, so
            # the API server records no entry for it: there is nothing it could change.
            return None
        return "not applied by %s as %s yet" % (field_manager, desired.get("apiVersion"))
    if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
        return "field ownership recorded as %s" % entry.get("fieldsType")
    try:
        _walk_map(desired, live, entry.get("fieldsV1") or {}, (), schema)
    except _Pending as pending:
        return str(pending)
    return None
