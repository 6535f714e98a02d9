"""Refusals name the field where the request holds it (no I/O)."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from xinfang.assignment.app import _named_in_request
from xinfang.core.codec import request_time
from xinfang.core.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    renamed,
)
from xinfang.core.grpc_server import MAX_DETAILS_CHARS, _capped


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(253_402_300_800, 0), (-62_135_596_801, 0), (2**62, 0), (0, -1), (0, 10**9)],
)
def test_a_time_outside_a_timestamps_range_is_refused_naming_its_field(
    seconds: int, nanos: int
) -> None:
    with pytest.raises(InvalidArgument) as e:
        request_time(Timestamp(seconds=seconds, nanos=nanos), "received_at")
    assert e.value.message.startswith("received_at: ")


def test_times_at_the_edges_of_the_range_convert() -> None:
    assert request_time(Timestamp(seconds=253_402_300_799, nanos=999_999_999), "t").year == 9999
    assert request_time(Timestamp(seconds=-62_135_596_800), "t").year == 1


def test_a_commands_refusal_names_the_field_in_the_command_context() -> None:
    state = _named_in_request(FailedPrecondition("case c is accepted: already routed"))
    assert isinstance(state, FailedPrecondition)
    assert state.message == "ctx.case_id: case c is accepted: already routed"
    unit = _named_in_request(PermissionDenied("actor.unit_id: only unit 'u1' may do this"))
    assert unit.message == "ctx.actor.unit_id: only unit 'u1' may do this"
    version = _named_in_request(Conflict("expected_version: at 3, not 2"))
    assert version.message.startswith("ctx.expected_version: ")
    own = InvalidArgument("unit_id", "unknown unit 'x'")
    assert _named_in_request(own) is own  # a field of the command itself stays


def test_a_refusal_quoting_a_huge_value_is_cut_and_keeps_its_field() -> None:
    message = InvalidArgument("district_id", f"unknown district {'信' * 60_000!r}").message
    cut = _capped(message)
    assert len(cut) <= MAX_DETAILS_CHARS
    assert cut.startswith("district_id: unknown district '信")
    assert cut.endswith(f"({len(message)} characters in all)")
    assert _capped("case_id: short") == "case_id: short"


def test_a_renamed_refusal_keeps_its_kind_and_names_the_new_field() -> None:
    e = renamed(
        InvalidArgument("occurred_at", "is in the future"), "ctx.occurred_at: is in the future"
    )
    assert isinstance(e, InvalidArgument) and e.code_name == "INVALID_ARGUMENT"
    assert e.message == "ctx.occurred_at: is in the future" and e.field == "ctx.occurred_at"
