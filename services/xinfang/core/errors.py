"""Errors that carry their gRPC status, so every layer can refuse clearly.

    XinfangError
     ├── InvalidArgument     bad input; names the field      -> INVALID_ARGUMENT
     ├── FailedPrecondition  illegal step in this state      -> FAILED_PRECONDITION
     ├── NotFound            unknown case/district/...       -> NOT_FOUND
     ├── PermissionDenied    role or district not entitled   -> PERMISSION_DENIED
     ├── Unauthenticated     no valid token                  -> UNAUTHENTICATED
     └── Conflict            lost an optimistic-version race -> ABORTED

Domain code raises these without importing grpc; the gRPC layer maps them.

Every refusal names what it refuses: its message starts with ``<field>: ``,
where ``<field>`` is the path of a field of the request (``ctx.actor.role``,
``rules[2].unit_id``), ``authorization`` (the bearer token) or ``request``
(the message as a whole, e.g. bytes that do not decode). ``field_of`` reads
it back; the fuzzer (``tests/fuzz``) holds every server to it.
"""

from __future__ import annotations

import re

__all__ = [
    "FIELD_RE",
    "Conflict",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "Unauthenticated",
    "XinfangError",
    "field_of",
    "renamed",
]

# a field path: names joined by dots, each perhaps indexed (rules[2].unit_id)
FIELD_RE = re.compile(r"^([a-z_][a-z0-9_]*(?:\[\d+\])?(?:\.[a-z_][a-z0-9_]*(?:\[\d+\])?)*): ")


def field_of(message: str) -> str | None:
    """The field a refusal names, or None when it names none."""
    m = FIELD_RE.match(message)
    return m.group(1) if m else None


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


def renamed(e: XinfangError, message: str) -> XinfangError:
    """The same refusal with another message (a field named from where the
    request holds it, e.g. ``actor.role`` -> ``ctx.actor.role``)."""
    # not copy.copy: it rebuilds the exception from its args, which a
    # refusal with two (InvalidArgument's field and problem) does not take
    out = e.__class__.__new__(e.__class__)
    out.__dict__.update(e.__dict__)
    Exception.__init__(out, message)
    out.message = message
    if isinstance(out, InvalidArgument):
        out.field = field_of(message) or out.field
    return out
