"""Google's published discovery documents: the route table and request/response validation.

The documents are the ones google-api-python-client ships (googleapiclient/discovery_cache/documents/
<service>.<version>.json). Nothing about paths, parameters or body shapes is written by hand: a method's
route comes from its httpMethod and flatPath (or path), its query parameters from `parameters`,
and its body from the `request` $ref schema.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import GoogleError

# Service name -> the version of its discovery document (<service>.<version>.json). A new service module adds its
# entry here (or at import: SERVICES["monitoring"] = "v3") and registers handlers by method id.
SERVICES = {"container": "v1", "compute": "v1", "cloudresourcemanager": "v1", "certificatemanager": "v1",
            "monitoring": "v3"}
# Services whose JSON is proto3's mapping: fields at their default value (false, 0, "", empty lists and maps, an
# enum's *_UNSPECIFIED) are left out of responses. Compute's JSON is not (it writes "preview": false).
PROTO3_JSON = {"container", "cloudresourcemanager", "certificatemanager"}

# Fields a request may carry that the server fills itself (AIP-203: "output only" fields in a
# request are ignored). The fake strips them from request bodies; they are never an error.
_OUTPUT_ONLY = re.compile(r"^\s*(\[output only\]|output only\.)", re.IGNORECASE)


def documents_dir() -> Path:
    import googleapiclient  # the venv's copy; the documents ship inside the package

    return Path(googleapiclient.__file__).resolve().parent / "discovery_cache" / "documents"


@functools.lru_cache(maxsize=None)
def load(service: str) -> dict:
    return json.loads((documents_dir() / f"{service}.{SERVICES[service]}.json").read_text())


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def is_output_only(prop: dict) -> bool:
    return bool(prop.get("readOnly")) or bool(_OUTPUT_ONLY.match(prop.get("description", "")))


# --------------------------------------------------------------------------- routes

@dataclass
class Route:
    service: str
    method_id: str  # e.g. container.projects.locations.clusters.nodePools.create
    http_method: str
    template: str  # servicePath + flatPath, e.g. v1/projects/{projectsId}/locations/{locationsId}
    regex: re.Pattern
    method: dict  # the discovery method
    literal_len: int = 0
    path_names: list = field(default_factory=list)
    # Routed by the method's `path` with a `{+name}` that may span '/' (a metric type inside a descriptor's name):
    # it matches only when each value fits its parameter's pattern, which tells the methods sharing it apart.
    gated: bool = False


def _template_regex(template: str) -> tuple[re.Pattern, list, int]:
    names, out, pos = [], [], 0
    for m in re.finditer(r"\{(\+?)([^}]+)\}", template):
        out.append(re.escape(template[pos:m.start()]))
        names.append(m.group(2))
        # `{+name}` in a path without flatPath spans segments; plain params stop at '/' and ':'.
        out.append(f"(?P<p{len(names) - 1}>.+?)" if m.group(1) else f"(?P<p{len(names) - 1}>[^/:]+)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    literal = len(re.sub(r"\{[^}]+\}", "", template))
    return re.compile("^" + "".join(out) + "$"), names, literal


def _walk_methods(resources: dict):
    for res in resources.values():
        yield from res.get("methods", {}).values()
        yield from _walk_methods(res.get("resources", {}))


@functools.lru_cache(maxsize=None)
def routes(service: str) -> tuple:
    doc = load(service)
    table = []
    for method in _walk_methods(doc.get("resources", {})):
        template = doc["servicePath"] + method.get("flatPath", method["path"])
        regex, names, literal = _template_regex(template)
        table.append(Route(service, method["id"], method["httpMethod"], template, regex, method, literal, names))
        expanded = doc["servicePath"] + method["path"]
        if "{+" in method["path"] and expanded != template and any(
                ".*" in (p.get("pattern") or "") for p in method.get("parameters", {}).values()):
            regex, names, literal = _template_regex(expanded)
            table.append(Route(service, method["id"], method["httpMethod"], expanded, regex, method, literal, names,
                               gated=True))
    # Most literal characters first: `.../nodePools/{id}:setSize` before `.../nodePools/{id}`.
    table.sort(key=lambda r: -r.literal_len)
    return tuple(table)


def match(service: str, http_method: str, path: str):
    """(route, {template param: value}) for a path below the service prefix, or (None, allowed methods)."""
    allowed = []
    for route in routes(service):
        m = route.regex.match(path)
        if not m:
            continue
        if route.gated and not all(
                re.fullmatch(route.method["parameters"][name].get("pattern", ".*").strip("^$"), m.group(f"p{i}"))
                for i, name in enumerate(route.path_names)):
            continue
        if route.http_method != http_method:
            allowed.append(route.http_method)
            continue
        return route, {name: m.group(f"p{i}") for i, name in enumerate(route.path_names)}
    return None, allowed


# --------------------------------------------------------------------------- parameters

def _bad_request(messages: list) -> GoogleError:
    return GoogleError(400, "\n".join(messages), reason="badRequest",
                       field_violations=[{"description": m} for m in messages])


def check_path_params(route: Route, params: dict) -> None:
    """Path values against the method's parameter patterns (compute names them, like `securityPolicy`)."""
    errors = []
    for name, value in params.items():
        spec = route.method.get("parameters", {}).get(name)
        if spec and spec.get("pattern") and not re.fullmatch(spec["pattern"].strip("^$"), value):
            errors.append(f"Invalid value for field '{name}': '{value}'. Must be a match of regex '{spec['pattern']}'")
    if errors:
        raise _bad_request(errors)


def check_query(service: str, route: Route, query: dict) -> dict:
    """Validated query parameters ({name: value or [values]}); unknown names and bad values are 400."""
    doc = load(service)
    known = dict(doc.get("parameters", {}))
    known.update({k: v for k, v in route.method.get("parameters", {}).items() if v.get("location") == "query"})
    out, errors = {}, []
    for name, values in query.items():
        spec = known.get(name)
        if spec is None and f"`{name}`" in route.method.get("description", ""):
            # A parameter the method's description recommends but its parameter list lacks (compute's aggregated
            # lists and `returnPartialSuccess`, which gcloud sends): Google accepts it.
            spec = {"type": "string", "location": "query"}
        if spec is None:
            errors.append(f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
                          f"Field '{name}' could not be found in request message.")
            continue
        converted = []
        for raw in values:
            try:
                converted.append(_query_value(spec, raw))
            except ValueError:
                errors.append(f"Invalid value at '{snake(name)}' ({_type_name(spec)}), \"{raw}\"")
        out[name] = converted if spec.get("repeated") else converted[-1] if converted else None
    for name, spec in route.method.get("parameters", {}).items():
        if spec.get("location") == "query" and spec.get("required") and name not in out:
            errors.append(f"Required parameter '{name}' is missing.")
    if errors:
        raise _bad_request(errors)
    return out


def _query_value(spec: dict, raw: str):
    kind = spec.get("type", "string")
    if kind == "integer":
        return int(raw)
    if kind == "boolean":
        if raw.lower() not in ("true", "false", "1", "0"):  # gcloud writes True
            raise ValueError(raw)
        return raw.lower() in ("true", "1")
    if kind == "number":
        return float(raw)
    if spec.get("enum") and raw not in spec["enum"]:
        raise ValueError(raw)
    return raw


# --------------------------------------------------------------------------- bodies

def _type_name(spec: dict) -> str:
    kind, fmt = spec.get("type"), spec.get("format")
    if spec.get("enum"):
        return "TYPE_ENUM"
    if kind == "integer":
        return {"uint32": "TYPE_UINT32"}.get(fmt, "TYPE_INT32")
    if kind == "string" and fmt in ("int64", "uint64"):
        return "TYPE_INT64" if fmt == "int64" else "TYPE_UINT64"
    if kind == "string" and fmt == "byte":
        return "TYPE_BYTES"
    if kind == "number":
        return "TYPE_FLOAT" if fmt == "float" else "TYPE_DOUBLE"
    return {"boolean": "TYPE_BOOL", "string": "TYPE_STRING", "array": "TYPE_MESSAGE (repeated)"}.get(kind, "TYPE_MESSAGE")


_INT = re.compile(r"^-?\d+$")


class Validator:
    """Checks a JSON value against a discovery schema, the way Google's JSON front end does.

    Request mode (`response=False`): unknown names and wrong types are errors, output-only fields
    are removed from the value (ignored, as AIP-203 says). Response mode: the same checks,
    output-only fields allowed; used by the fake on its own responses and by the tests.
    """

    def __init__(self, service: str, response: bool = False):
        self.service = service
        self.schemas = load(service)["schemas"]
        self.response = response
        self.errors: list[str] = []

    def validate(self, value, ref: str, root: str = ""):
        self.errors = []
        value = self._value(value, {"$ref": ref}, root)
        return value, self.errors

    def _at(self, path: str) -> str:
        return f" at '{path}'" if path else ""

    def _value(self, value, spec: dict, path: str):  # noqa: C901  (one branch per JSON type)
        if "$ref" in spec:
            schema = self.schemas[spec["$ref"]]
            return self._object(value, schema, path, spec["$ref"])
        kind = spec.get("type")
        if kind == "any" or kind is None:
            return value
        if value is None:
            return value  # JSON null is "unset" for every field type
        if kind == "object":
            return self._object(value, spec, path, None)
        if kind == "array":
            if not isinstance(value, list):
                self.errors.append(f"Invalid value at '{path}' ({_type_name(spec.get('items', {}))}), {json.dumps(value)}")
                return value
            return [self._value(v, spec.get("items", {}), f"{path}[{i}]") for i, v in enumerate(value)]
        if kind == "boolean":
            if not isinstance(value, bool):
                self._bad(spec, path, value)
        elif kind == "integer":
            if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and _INT.match(value))
                                               or (isinstance(value, float) and value.is_integer())):
                self._bad(spec, path, value)
            else:
                return int(value)  # proto3 JSON: "5" and 5.0 are 5
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                self._bad(spec, path, value)
            elif isinstance(value, str):
                try:
                    float(value)
                except ValueError:
                    self._bad(spec, path, value)
        elif kind == "string":
            return self._string(value, spec, path)
        return value

    def _bad(self, spec, path, value):
        shown = value if isinstance(value, str) else json.dumps(value)
        self.errors.append(f"Invalid value at '{path}' ({_type_name(spec)}), \"{shown}\"" if isinstance(value, str)
                           else f"Invalid value at '{path}' ({_type_name(spec)}), {shown}")

    def _string(self, value, spec, path):
        fmt = spec.get("format")
        if fmt in ("int64", "uint64"):
            if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and _INT.match(value))):
                self._bad(spec, path, value)
            elif fmt == "uint64" and int(value) < 0:
                self._bad(spec, path, value)
            else:
                return str(int(value))  # 64-bit integers are JSON strings in Google's output
            return value
        if not isinstance(value, str):
            self._bad(spec, path, value)
            return value
        if spec.get("enum") and value not in spec["enum"]:
            self._bad(spec, path, value)
        elif fmt == "byte":
            try:
                base64.b64decode(value.replace("-", "+").replace("_", "/") + "==", validate=False)
            except ValueError:
                self._bad(spec, path, value)
        elif fmt == "google-datetime":
            try:
                datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                self._bad(spec, path, value)
        return value

    def _object(self, value, schema: dict, path: str, ref: str | None):
        if value is None:
            return value
        if not isinstance(value, dict):
            what = f"type.googleapis.com/{self.service}.{ref}" if ref else "TYPE_MESSAGE"
            self.errors.append(f"Invalid value at '{path}' ({what}), {json.dumps(value)}")
            return value
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is None and extra is None:
            return value  # free-form object (google.protobuf.Struct, Any)
        out = {}
        for name, item in value.items():
            child = f"{path}.{snake(name)}" if path else snake(name)
            if props and name in props:
                spec = props[name]
                if not self.response and is_output_only(spec):
                    continue
                out[name] = self._value(item, spec, child)
            elif extra is not None:
                out[name] = self._value(item, extra, f"{path}[{name}]" if path else name)
            elif name.startswith("@type") and ref is None:
                out[name] = item
            else:
                self.errors.append(f'Invalid JSON payload received. Unknown name "{name}"{self._at(path)}: '
                                   "Cannot find field.")
        return out


def body_root(service: str, ref: str) -> str:
    """The field a method's body binds to, as Google names it in error paths."""
    if ref.endswith("Request"):
        return ""
    if service == "compute":
        return snake(ref) + "_resource"
    return snake(ref)


def check_body(service: str, route: Route, body):
    """The request body with output-only fields removed, or GoogleError 400."""
    ref = route.method.get("request", {}).get("$ref")
    if ref is None:
        if body not in (None, {}, b"", ""):
            raise _bad_request(['Invalid JSON payload received. Unknown name "": Root element must be a message.'])
        return None
    if body is None:
        body = {}
    value, errors = Validator(service).validate(body, ref, body_root(service, ref))
    if errors:
        raise _bad_request(errors)
    return value


def render_response(service: str, route: Route, value):
    """The response as the service writes it: with proto3's JSON mapping, fields at their default value are left
    out (a client must read a missing `initialNodeCount` as 0, a missing `done` as false)."""
    ref = route.method.get("response", {}).get("$ref")
    if ref is None or service not in PROTO3_JSON or not isinstance(value, dict):
        return value
    return _omit_defaults(value, {"$ref": ref}, load(service)["schemas"])


def _omit_defaults(value, spec: dict, schemas: dict):
    if "$ref" in spec:
        spec = schemas[spec["$ref"]]
    if isinstance(value, list):
        return [_omit_defaults(v, spec.get("items", {}), schemas) for v in value]
    if not isinstance(value, dict) or spec.get("type") not in ("object", None):
        return value
    props, extra = spec.get("properties"), spec.get("additionalProperties")
    if props is None and extra is None:
        return value  # free-form (Struct, Any): written as it is
    out = {}
    for name, item in value.items():
        child = props.get(name) if props and name in props else extra
        if child is None:
            out[name] = item
            continue
        if _is_default(item, child):
            continue
        out[name] = _omit_defaults(item, child, schemas)
    return out


def _is_default(value, spec: dict) -> bool:
    if "$ref" in spec:
        return value is None  # a message that is set is written, even when empty
    kind, fmt = spec.get("type"), spec.get("format")
    if value is None or (kind == "boolean" and value is False) or (kind in ("integer", "number") and value == 0):
        return True
    if kind == "string":
        if value == "" or (fmt in ("int64", "uint64") and str(value) == "0"):
            return True
        return bool(spec.get("enum")) and value == spec["enum"][0] and value.endswith("_UNSPECIFIED")
    if kind == "array" or (kind == "object" and "additionalProperties" in spec):
        return not value
    return False


def check_response(service: str, route: Route, value) -> list:
    """Errors of a response against the method's response schema (empty when valid)."""
    ref = route.method.get("response", {}).get("$ref")
    if ref is None:
        return []
    return Validator(service, response=True).validate(value, ref)[1]
