"""Google's JSON error shape.

    {"error": {"code": 404, "message": "...", "status": "NOT_FOUND",
               "errors": [{"message": "...", "domain": "global", "reason": "notFound"}],
               "details": [...]}}
"""

from __future__ import annotations

STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
REASON = {
    400: "badRequest",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "alreadyExists",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
    500: "backendError",
    501: "notImplemented",
    503: "backendError",
    504: "deadlineExceeded",
}
DEFAULT_MESSAGE = {
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
         "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    429: "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of service.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}
# google.rpc.Code numbers, for operation errors.
RPC_CODE = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9, "ABORTED": 10,
    "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}
RPC_NAME = {v: k for k, v in RPC_CODE.items()}
HTTP_OF_RPC = {0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400,
               12: 501, 13: 500, 14: 503, 15: 500, 16: 401}


class GoogleError(Exception):
    """An HTTP error answer in Google's shape."""

    def __init__(self, code: int, message: str | None = None, status: str | None = None, reason: str | None = None,
                 permission: str | None = None, field_violations: list | None = None, headers: dict | None = None):
        self.code = code
        self.message = message or DEFAULT_MESSAGE.get(code, STATUS.get(code, "error"))
        self.status = status or STATUS.get(code, "UNKNOWN")
        self.reason = reason or REASON.get(code, "error")
        self.permission = permission
        self.field_violations = field_violations
        self.headers = headers or {}
        super().__init__(f"{code} {self.status}: {self.message}")

    def body(self) -> dict:
        err = {
            "code": self.code,
            "message": self.message,
            "status": self.status,
            "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
        }
        details = []
        if self.permission:
            details.append({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                            "domain": "iam.googleapis.com", "metadata": {"permission": self.permission}})
        if self.field_violations:
            details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                            "fieldViolations": self.field_violations})
        if details:
            err["details"] = details
        return {"error": err}


def not_found(what: str) -> GoogleError:
    return GoogleError(404, f"The resource '{what}' was not found", reason="notFound")


def already_exists(what: str) -> GoogleError:
    return GoogleError(409, f"The resource '{what}' already exists", reason="alreadyExists")


def invalid(message: str) -> GoogleError:
    return GoogleError(400, message, reason="invalid")


def permission_denied(permission: str, resource: str) -> GoogleError:
    return GoogleError(403, f"Permission '{permission}' denied on resource '{resource}' (or it may not exist).",
                       reason="forbidden", permission=permission)
