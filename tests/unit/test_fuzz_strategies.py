"""The fuzzer's own parts that need no stack: every RPC is found from the
generated code, field paths resolve against descriptors, draws are
reproducible from a seed, and the refusal convention is read back."""

from __future__ import annotations

import time

from tests.fuzz.strategies import Pools, generate, methods, resolve_field, shots
from xinfang.assignment.v1 import assignment_pb2 as apb
from xinfang.core.errors import InvalidArgument, field_of
from xinfang.intake.v1 import intake_pb2 as ipb
from xinfang.reporting.v1 import reporting_pb2 as rpb
from xinfang.supervision.v1 import supervision_pb2 as spb

POOLS = Pools(by_field={"district_id": ["d1"], "case_id": ["c1"]}, ids=["x"], tokens=[("none", ())])


def test_every_unary_method_of_every_service_is_found() -> None:
    expected = {
        f"{mod.__name__.split('.')[1]}.{m.name}"
        for mod in (ipb, apb, rpb, spb)
        for svc in mod.DESCRIPTOR.services_by_name.values()
        for m in svc.methods
    }
    assert {m.label for m in methods()} == expected
    assert len(expected) > 30


def test_field_paths_resolve_against_the_request_descriptor() -> None:
    route = apb.RouteCaseRequest.DESCRIPTOR
    assert resolve_field(route, "ctx.actor.role")
    assert resolve_field(route, "unit_id")
    assert not resolve_field(route, "actor.role")  # the actor is in ctx
    assert not resolve_field(route, "ctx.actor.role.x")
    rules = apb.SetRoutingRulesRequest.DESCRIPTOR
    assert resolve_field(rules, "rules[3].unit_id")
    assert not resolve_field(rules, "routing[3].unit_id")
    assert not resolve_field(rules, "district_id[0]")  # not repeated
    assert resolve_field(ipb.RegisterPetitionRequest.DESCRIPTOR, "petitioner.id_number")


def test_a_seed_draws_the_same_requests() -> None:
    now = int(time.time())
    first = generate(shots(methods(), POOLS, now), 60, 5)
    again = generate(shots(methods(), POOLS, now), 60, 5)
    assert len(first) == 60
    assert [s.raw for s in first] == [s.raw for s in again]
    assert [s.method.path for s in first] == [s.method.path for s in again]


def test_the_refusal_convention_names_the_field() -> None:
    assert (
        field_of(InvalidArgument("rules[2].unit_id", "unknown unit").message) == "rules[2].unit_id"
    )
    assert field_of("ctx.case_id: case c is accepted: …") == "ctx.case_id"
    assert field_of("case c is accepted: no field first") is None
    assert field_of("Received message larger than max (9000 vs. 8192)") is None
