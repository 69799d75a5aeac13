"""certificatemanager v1: self-managed certificates from a PEM pair, and google.longrunning operations."""

from __future__ import annotations

import copy
import datetime
import re

from .errors import GoogleError, invalid
from .world import PROJECT, PROJECT_NUMBER, Call, World, handler, now_rfc3339

LOCATIONS = ("global", "us-central1", "us-east1", "us-west1", "europe-west4")
CERT_ID = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
MUTABLE = ("description", "labels", "selfManaged")
TYPE = "type.googleapis.com/google.cloud.certificatemanager.v1."


def _parent(call: Call) -> str:
    project, location = call.params["projectsId"], call.params["locationsId"]
    if project == PROJECT_NUMBER:
        project = PROJECT
    if project != PROJECT:
        raise GoogleError(403, f"Permission 'certificatemanager.certs.list' denied on resource 'projects/{project}' "
                               "(or it may not exist).", permission="certificatemanager.certs.list")
    if location not in LOCATIONS:
        raise GoogleError(404, f"Location {location} is not found or access is unauthorized.")
    return f"projects/{project}/locations/{location}"


def _name(call: Call) -> str:
    return f"{_parent(call)}/certificates/{call.params['certificatesId']}"


def _cert(world: World, name: str) -> dict:
    cert = world.certificates.get(name)
    if cert is None:
        raise GoogleError(404, f"Resource '{name}' was not found")
    return cert


def parse_pem_pair(pem_cert: str, pem_key: str) -> dict:
    """SANs and expiry of a certificate chain whose leaf matches the private key; 400 otherwise."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        leaf = x509.load_pem_x509_certificates(pem_cert.encode())[0]
    except (ValueError, IndexError):
        raise invalid("Failed to parse the certificate: the PEM certificate is not valid.") from None
    try:
        key = serialization.load_pem_private_key(pem_key.encode(), password=None)
    except (ValueError, TypeError):
        raise invalid("Failed to parse the private key: the PEM private key is not valid.") from None
    pub = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    if leaf.public_key().public_bytes(*pub) != key.public_key().public_bytes(*pub):
        raise invalid("The private key does not match the certificate.")
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        sans = []
    expire = leaf.not_valid_after_utc
    if expire < datetime.datetime.now(datetime.timezone.utc):
        raise invalid("The certificate has expired.")
    return {"sanDnsnames": sans, "expireTime": expire.isoformat().replace("+00:00", "Z")}


def _apply_pem(cert: dict, self_managed: dict) -> None:
    if not self_managed.get("pemCertificate") or not self_managed.get("pemPrivateKey"):
        raise invalid("self_managed.pem_certificate and self_managed.pem_private_key must both be set.")
    cert.update(parse_pem_pair(self_managed["pemCertificate"], self_managed["pemPrivateKey"]))
    cert["pemCertificate"] = self_managed["pemCertificate"]


def _public(cert: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in cert.items() if k != "selfManaged"}


def render_op(_world: World, op) -> dict:
    status = op.status()
    meta = {"@type": TYPE + "OperationMetadata", "createTime": op.start_time, "target": op.target,
            "verb": op.op_type, "requestedCancellation": False, "apiVersion": "v1"}
    out = {"name": op.name, "metadata": meta, "done": status == "DONE"}
    if status == "DONE":
        meta["endTime"] = op.end_time
        if op.error:
            out["error"] = {"code": op.error["code"], "message": op.error["message"]}
        else:
            out["response"] = op.response or {"@type": "type.googleapis.com/google.protobuf.Empty"}
    return out


def _op(call: Call, verb: str, name: str, effect, on_error=None) -> dict:
    location = name.split("/")[3]
    op = call.world.new_operation(call, "certificatemanager", verb, name, call.world.link("certificatemanager", name),
                                  location, effect=effect, on_error=on_error)
    return render_op(call.world, op)


@handler("certificatemanager.projects.locations.certificates.create")
def create(call: Call):
    world, parent = call.world, _parent(call)
    cert_id = call.query.get("certificateId") or ""
    if not CERT_ID.match(cert_id):
        raise invalid(f"certificate_id \"{cert_id}\" is invalid: it must be 1-63 characters of lowercase letters, "
                      "digits and hyphens, starting with a letter.")
    name = f"{parent}/certificates/{cert_id}"
    if name in world.certificates or name in world.reserved:
        raise GoogleError(409, f"Resource '{name}' already exists", reason="alreadyExists")
    body = copy.deepcopy(call.body or {})
    if body.get("managed"):
        raise invalid("Managed certificates are not supported by the local fake; use selfManaged.")
    cert = {k: v for k, v in body.items() if k in ("description", "labels", "scope", "selfManaged")}
    _apply_pem(cert, body.get("selfManaged") or {})
    stamp = now_rfc3339()
    cert.update({"name": name, "createTime": stamp, "updateTime": stamp})
    cert.setdefault("scope", "DEFAULT")
    world.reserved.add(name)

    def effect():
        world.reserved.discard(name)
        world.certificates[name] = cert
        return dict(_public(cert), **{"@type": TYPE + "Certificate"})

    def failed(_error):
        world.reserved.discard(name)
    return _op(call, "create", name, effect, failed)


@handler("certificatemanager.projects.locations.certificates.get")
def get(call: Call):
    return _public(_cert(call.world, _name(call)))


@handler("certificatemanager.projects.locations.certificates.list")
def list_certs(call: Call):
    parent = _parent(call)
    call.world.tick()
    return {"certificates": [_public(c) for n, c in sorted(call.world.certificates.items())
                             if n.startswith(parent + "/")]}


@handler("certificatemanager.projects.locations.certificates.patch")
def patch(call: Call):
    world, name = call.world, _name(call)
    cert = _cert(world, name)
    mask = [f.strip() for f in (call.query.get("updateMask") or "").split(",") if f.strip()]
    if not mask:
        raise invalid("update_mask must be set.")
    body = call.body or {}
    fields = []
    for path in mask:
        top = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path.split(".")[0])
        if top not in MUTABLE:
            raise invalid(f"update_mask path \"{path}\" is not updatable (updatable: description, labels, "
                          "self_managed).")
        fields.append(top)
    updated = copy.deepcopy(cert)
    for top in fields:
        if top == "selfManaged":
            _apply_pem(updated, body.get("selfManaged") or {})
            updated["selfManaged"] = copy.deepcopy(body["selfManaged"])
        elif top in body:
            updated[top] = copy.deepcopy(body[top])
        else:
            updated.pop(top, None)
    updated["updateTime"] = now_rfc3339()

    def effect():
        world.certificates[name] = updated
        return dict(_public(updated), **{"@type": TYPE + "Certificate"})
    return _op(call, "update", name, effect)


@handler("certificatemanager.projects.locations.certificates.delete")
def delete(call: Call):
    world, name = call.world, _name(call)
    _cert(world, name)

    def effect():
        world.certificates.pop(name, None)
    return _op(call, "delete", name, effect)


@handler("certificatemanager.projects.locations.operations.get")
def get_operation(call: Call):
    name = f"{_parent(call)}/operations/{call.params['operationsId']}"
    return render_op(call.world, call.world.operation("certificatemanager", name))
