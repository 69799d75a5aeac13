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
quantity this does not canonicalise) counts as a change, which costs an apply and nothing else. A number and a
string are different values except for quantities of built-in kinds, which the server stores as canonical strings.
Reasons name paths, never values: a Secret's data must not end up in a reason.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import decimal
import json
import re

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


# --- quantities: the only fields where the server rewrites what was applied ------------------------------------

_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?[0-9]+))?$")
# Maps whose values are quantities in built-in kinds: container, pod and claim resources, ResourceQuota, pod
# overhead, node capacity; a LimitRange item's bounds.
_QUANTITY_MAPS = ("requests", "limits", "hard", "overhead", "capacity", "allocatable")
_LIMIT_RANGE_MAPS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")


def canonical_quantity(value):
    """The string the API server stores for a ``resource.Quantity`` given as ``value`` (a number or a string).

    Kubernetes keeps the format of what was written (binary suffix, decimal suffix or exponent) and rewrites the
    number into its canonical form: ``0.5`` is stored as ``"500m"``, ``1000`` as ``"1k"``, ``"2048Mi"`` as
    ``"2Gi"``. None when ``value`` is not a quantity this function can canonicalise for certain (callers then
    treat it as different: an apply, never a missed change).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    match = _QUANTITY.match(value.strip() if isinstance(value, str) else repr(value))
    if not match:
        return None
    number, suffix, exponent = match.groups()
    try:
        amount = decimal.Decimal(number)
    except decimal.InvalidOperation:
        return None
    if exponent is not None:
        form, amount = "exponent", amount.scaleb(int(exponent))
    elif suffix in _BINARY_SUFFIXES:
        form, amount = "binary", amount * (2 ** _BINARY_SUFFIXES[suffix])
    else:
        form, amount = "decimal", amount.scaleb(_DECIMAL_SUFFIXES[suffix or ""])
    if amount == 0:
        return "0"
    if amount != amount.quantize(decimal.Decimal("1e-9")):
        return None  # finer than a nano: the server rounds up; not worth getting right here
    if form == "binary" and (abs(amount) < 1024 or amount != amount.to_integral_value()):
        form = "decimal"  # small or fractional binary amounts are written in decimal
    if form == "binary":
        integer, power = int(amount), 0
        while integer % 1024 == 0 and power < 60:
            integer, power = integer // 1024, power + 10
        return str(integer) + {0: ""}.get(power, next(k for k, v in _BINARY_SUFFIXES.items() if v == power))
    exponent = amount.normalize().as_tuple().exponent  # trailing zeros go into the exponent...
    exponent -= exponent % 3  # ...which goes down to a multiple of three, growing the mantissa
    text = str(int(amount.scaleb(-exponent)))
    if form == "exponent":
        return text + ("e%d" % exponent if exponent else "")
    for name, power in _DECIMAL_SUFFIXES.items():
        if power == exponent:
            return text + name
    return None  # beyond exa: written with an exponent; not needed here


def is_quantity_path(path):
    """Whether ``path`` (map keys and list indexes) holds a ``resource.Quantity`` in a built-in kind."""
    keys = tuple(path)
    if len(keys) >= 2 and keys[-2] in _QUANTITY_MAPS:
        return True
    if len(keys) >= 4 and keys[-2] in _LIMIT_RANGE_MAPS and isinstance(keys[-3], int) and keys[-4] == "limits":
        return True
    if len(keys) >= 2 and keys[-2] in ("target", "current") and keys[-1] in ("value", "averageValue"):
        return True  # HorizontalPodAutoscaler metric targets
    return bool(keys) and keys[-1] == "sizeLimit"  # emptyDir


def values_equal(desired, live, path=None):
    """Deep equality of a configured value and a served one.

    A number and a string are never equal, except where ``path`` (given for built-in kinds only) holds a
    quantity: there the server stores the canonical string of what was applied (``cpu: 4`` is served as ``"4"``,
    ``0.5`` as ``"500m"``). ``targetPort: "8000"`` and ``targetPort: 8000`` differ, and an apply would change one
    into the other.
    """
    if isinstance(desired, dict):
        return isinstance(live, dict) and desired.keys() == live.keys() and all(
            values_equal(value, live[key], None if path is None else path + (key,)) for key, value in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(desired) == len(live) and all(
            values_equal(one, other, None if path is None else path + (index,))
            for index, (one, other) in enumerate(zip(desired, live)))
    if isinstance(desired, bool) or isinstance(live, bool):
        return isinstance(desired, bool) and isinstance(live, bool) and desired == live
    if path is not None and isinstance(live, str) and is_quantity_path(path) and desired != live:
        return canonical_quantity(desired) == live
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


def _walk_map(desired, live, owned, path, schema, builtin):
    fields = _children(owned)
    if not fields:  # an atomic map (a selector, nodeSelector...) or an empty one: compared whole
        if not values_equal(with_schema_defaults(desired, schema), live, path if builtin else None):
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
        _walk(value, live[key], fields[entry], path + (key,), _sub_schema(schema, key), builtin)
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


def _walk_keyed_list(desired, live, entries, path, schema, builtin):
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
        _walk(item, live[positions[0]], entries[entry], path + (index,), _items_schema(schema), builtin)


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


def _walk_list(desired, live, owned, path, schema, builtin):
    entries = _children(owned)
    if not entries:  # an atomic list (args, command...): compared whole
        if not values_equal(with_schema_defaults(desired, schema), live, path if builtin else None):
            raise _Pending("%s differs" % _path_text(path))
        return
    if not isinstance(live, list):
        raise _Pending("%s is not a list in the live object" % _path_text(path))
    prefixes = {entry[:2] for entry in entries}
    if prefixes == {"k:"}:
        _walk_keyed_list(desired, live, entries, path, schema, builtin)
    elif prefixes == {"v:"}:
        _walk_set(desired, live, entries, path)
    else:
        raise _Pending("%s: list ownership encoded as %s is not compared here"
                       % (_path_text(path), ", ".join(sorted(prefixes))))


def _walk(desired, live, owned, path, schema, builtin):
    if isinstance(desired, dict):
        _walk_map(desired, live, owned, path, schema, builtin)
    elif isinstance(desired, list):
        _walk_list(desired, live, owned, path, schema, builtin)
    else:
        if _children(owned):
            raise _Pending("%s: the field manager owns fields below a scalar" % _path_text(path))
        if not values_equal(desired, live, path if builtin else None):
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


def apply_pending(desired, live, field_manager, schema=None, builtin=False):
    """Why a server-side apply of ``desired`` by ``field_manager`` would change ``live``; None when it would not.

    ``desired`` and ``live`` are plain dicts (JSON types); ``live`` is None when the object does not exist.
    ``schema``, the OpenAPI v3 schema of a custom resource, supplies the defaults the server fills in, which
    matter where a map or list is atomic (compared whole). ``builtin`` says the kind is compiled into the API
    server (not a custom resource): only there are quantities (``resources.limits.cpu``...) rewritten into their
    canonical form, so only there is ``cpu: 4`` the same as the served ``"4"``.
    """
    if not live:
        return "does not exist"
    entry = apply_entry(live, field_manager, desired.get("apiVersion"))
    if entry is None:
        if all(_skipped((), key, value) for key, value in desired.items()):
            return None  # identity only: an apply would own nothing (the server records no empty entry)
        return "not applied by %s as %s yet" % (field_manager, desired.get("apiVersion"))
    if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
        return "field ownership recorded as %s" % entry.get("fieldsType")
    try:
        _walk_map(desired, live, entry.get("fieldsV1") or {}, (), schema, builtin)
    except _Pending as pending:
        return str(pending)
    return None
