"""Errors that carry their gRPC status, so every layer can refuse clearly.

    XinfangError
     ├── InvalidArgument     bad input; names the field      -> INVALID_ARGUMENT
     ├── FailedPrecondition  illegal step in this state      -> FAILED_PRECONDITION
     ├── NotFound            unknown case/district/...       -> NOT_FOUND
     ├── PermissionDenied    role or district not entitled   -> PERMISSION_DENIED
     ├── Unauthenticated     no valid token                  -> UNAUTHENTICATED
     └── Conflict            lost an optimistic-version race -> ABORTED

Domain code raises these without importing grpc; the gRPC layer maps them.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "Unauthenticated",
    "XinfangError",
]


class XinfangError(Exception):
    """Base of every refusal the platform gives a caller on purpose."""

    code_name = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(XinfangError):
    code_name = "INVALID_ARGUMENT"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class FailedPrecondition(XinfangError):
    code_name = "FAILED_PRECONDITION"


class NotFound(XinfangError):
    code_name = "NOT_FOUND"


class PermissionDenied(XinfangError):
    code_name = "PERMISSION_DENIED"


class Unauthenticated(XinfangError):
    code_name = "UNAUTHENTICATED"


class Conflict(XinfangError):
    code_name = "ABORTED"
