"""Hypothesis strategies for every request message, built from descriptors.

Nothing here names an RPC or a request type: ``methods()`` walks the
generated modules (``xinfang.<service>.v1``) for their services, and
``message()`` builds a strategy from a message descriptor field by field, so
a new RPC or a new field (an ``occurred_at`` on a command, say) is fuzzed as
soon as its code is generated. Values come from three sources: the known
good values of the world (``Pools``: districts, case ids, units, periods,
keyed by field name), hostile values (empty, huge, Unicode edge cases,
control characters, Mongo operator shapes, numbers at and past their limits,
times at and past a Timestamp's range), and plain random ones. A request may
also be sent as bytes that do not decode (truncated, a flipped byte, invalid
UTF-8 inside a string, garbage).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

import xinfang

__all__ = ["Method", "Pools", "Shot", "generate", "methods", "resolve_field", "shots"]

Metadata = tuple[tuple[str, str], ...]

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
TS_MIN, TS_MAX = -62_135_596_800, 253_402_300_799  # 0001-01-01, 9999-12-31T23:59:59


@dataclass(frozen=True)
class Method:
    service: str  # "intake": the package, which names its port in Settings
    name: str  # "RegisterPetition"
    path: str  # "/xinfang.intake.v1.IntakeService/RegisterPetition"
    input: Descriptor
    request: type[Message]
    response: type[Message]

    @property
    def label(self) -> str:
        return f"{self.service}.{self.name}"


def methods() -> list[Method]:
    """Every unary method of every service in the generated code."""
    out: list[Method] = []
    for pkg in sorted(m.name for m in pkgutil.iter_modules(xinfang.__path__)):
        try:
            v1 = importlib.import_module(f"xinfang.{pkg}.v1")
        except ImportError:
            continue
        for mod in sorted(m.name for m in pkgutil.iter_modules(v1.__path__)):
            if not mod.endswith("_pb2"):
                continue
            module = importlib.import_module(f"xinfang.{pkg}.v1.{mod}")
            for svc in module.DESCRIPTOR.services_by_name.values():
                for m in svc.methods:
                    if m.client_streaming or m.server_streaming:
                        continue
                    out.append(
                        Method(
                            service=pkg,
                            name=m.name,
                            path=f"/{svc.full_name}/{m.name}",
                            input=m.input_type,
                            request=GetMessageClass(m.input_type),
                            response=GetMessageClass(m.output_type),
                        )
                    )
    return out


def resolve_field(desc: Descriptor, path: str) -> bool:
    """Whether ``path`` (``ctx.actor.role``, ``rules[2].unit_id``) names a
    field of messages of type ``desc``."""
    d: Descriptor | None = desc
    for part in path.split("."):
        name = part.split("[", 1)[0]
        if d is None or name not in d.fields_by_name:
            return False
        f = d.fields_by_name[name]
        if "[" in part and not f.is_repeated:
            return False
        d = f.message_type if f.type == FieldDescriptor.TYPE_MESSAGE else None
    return True


def _sub(f: FieldDescriptor) -> Descriptor:
    d = f.message_type
    assert d is not None, f.full_name
    return d


def _is_map(f: FieldDescriptor) -> bool:
    return f.type == FieldDescriptor.TYPE_MESSAGE and bool(_sub(f).GetOptions().map_entry)


@dataclass(frozen=True)
class Pools:
    """The world's known values: by field name (``district_id``, ``case_id``,
    ``unit_id``, ``period`` …), any id for other ``*_id`` fields, and the
    tokens to call with (label, metadata)."""

    by_field: Mapping[str, Sequence[str]]
    ids: Sequence[str]
    tokens: Sequence[tuple[str, Metadata]]
    weights: Mapping[str, int] = field(default_factory=dict)  # token label -> repeats


@dataclass(frozen=True)
class Shot:
    method: Method
    token: str
    metadata: Metadata
    request: Message
    raw: bytes  # what goes on the wire
    mutation: str  # "" (the request as it is) or how the bytes were spoiled


HOSTILE_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "\t\n",
    "\x00",
    "a\x00b",
    "\x1b[31m",
    "\x7f",
    "\u0085",
    "\u200b",
    "\u202e",
    "\ufeff",
    "\uffff",
    "\U0010ffff",
    "e\u0301\u0301\u0301",
    "👩‍👩‍👧‍👦",
    "信访",
    "İı",
    '{"$gt": ""}',
    '{"$ne": null}',
    "$where",
    "$gt",
    "a.b",
    "a.$",
    "_id",
    "*",
    "../..",
    "%s%n",
    "' OR '1'='1",
    "\\",
    "null",
    "-1",
    "9" * 40,
    "2026",
    "2026-Q5",
    "2026-13",
    "0000-00",
    "9999-Q4",
)


def _strings(known: Sequence[str]) -> st.SearchStrategy[str]:
    hostile = st.one_of(
        st.sampled_from(HOSTILE_STRINGS),
        st.text(max_size=24),
        st.text(st.characters(codec="utf-8"), max_size=8),
        # past the fields' limits (past the servers' size limits: ``_huge``)
        st.sampled_from((65, 129, 201, 301, 20_001)).map(lambda n: "信" * n),
        st.sampled_from(known or ("x",)).map(lambda v: v + "\x00"),
        st.sampled_from(known or ("x",)).map(lambda v: f" {v} "),
        st.sampled_from(known or ("x",)).map(str.upper),
    )
    if not known:
        return hostile
    good = st.sampled_from(known)
    return st.one_of(good, good, good, hostile)


def _ints(bits: int, signed: bool) -> st.SearchStrategy[int]:
    lo, hi = (INT32 if bits == 32 else INT64) if signed else (0, 2**bits - 1)
    edges = [v for v in (0, 1, -1, 2, 5, 6, 29, 30, 31, 100, 500, 501, 100_001) if lo <= v <= hi]
    return st.one_of(st.sampled_from([*edges, lo, hi, lo + 1, hi - 1]), st.integers(lo, hi))


def _timestamp(cls: type[Message], now: int) -> st.SearchStrategy[Message]:
    secs = st.one_of(
        st.sampled_from(
            (
                0,
                TS_MIN,
                TS_MAX,
                TS_MIN - 1,
                TS_MAX + 1,
                2**62,
                -(2**62),
                INT64[0],
                INT64[1],
                946_684_799,
                946_684_800,
                now,
                now - 3600,
                now - 600,
                now + 3600,
                now + 86_400 * 400,
            )
        ),
        st.integers(now - 86_400 * 30, now),
        st.integers(*INT64),
    )
    nanos = st.one_of(st.just(0), st.sampled_from((-1, 999_999_999, 10**9, INT32[1], INT32[0])))
    return st.builds(lambda s, n: cls(seconds=s, nanos=n), secs, nanos)


def _scalar(f: FieldDescriptor, pools: Pools) -> st.SearchStrategy[Any]:
    t = f.type
    if t == FieldDescriptor.TYPE_STRING:
        known = pools.by_field.get(f.name) or (pools.ids if f.name.endswith("_id") else ())
        return _strings(list(known))
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_ENUM:
        assert f.enum_type is not None
        values = [v.number for v in f.enum_type.values]
        # proto3 enums are open: a number the schema does not know arrives as is
        return st.one_of(st.sampled_from(values), st.sampled_from((-1, 99, INT32[1], INT32[0])))
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=64 if t == FieldDescriptor.TYPE_DOUBLE else 32)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    bits = 64 if t in _INT64_TYPES else 32
    unsigned = t in (
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
    )
    return _ints(bits, not unsigned)


_INT64_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
    }
)


def message(
    desc: Descriptor, pools: Pools, now: int, depth: int = 0, good: bool = False
) -> st.SearchStrategy[Any]:
    """A strategy for messages of type ``desc``: each field unset or drawn.

    ``good``: a plausible request rather than a wild one, so the fuzzer gets
    past the first check too: every top-level field set, from the world's
    known values (``_good``); nested messages below it may be left unset
    (an actor left empty is filled from the token)."""
    cls = GetMessageClass(desc)
    if desc.full_name == "google.protobuf.Timestamp":
        if good:
            return st.integers(now - 7200, now).map(lambda s: cls(seconds=s))
        return _timestamp(cls, now)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in desc.fields:
        if _is_map(f):
            key = _scalar(_sub(f).fields_by_name["key"], pools)
            vf = _sub(f).fields_by_name["value"]
            value = (
                message(_sub(vf), pools, now, depth + 1, good)
                if vf.type == FieldDescriptor.TYPE_MESSAGE
                else _scalar(vf, pools)
            )
            fields[f.name] = st.dictionaries(key, value, max_size=3)
            continue
        if f.type == FieldDescriptor.TYPE_MESSAGE:
            if depth > 4:
                continue
            one = message(_sub(f), pools, now, depth + 1, good)
        else:
            one = _good(f, pools) if good else _scalar(f, pools)
        if f.is_repeated:
            fields[f.name] = st.lists(one, min_size=1 if good else 0, max_size=4)
        else:
            fields[f.name] = one
    if good and depth == 0:
        return st.fixed_dictionaries(fields).map(lambda values: _build(cls, values))
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: _build(cls, values))


def _good(f: FieldDescriptor, pools: Pools) -> st.SearchStrategy[Any]:
    """A plausible value: known, small, valid."""
    if f.type == FieldDescriptor.TYPE_STRING:
        known = pools.by_field.get(f.name) or (pools.ids if f.name.endswith("_id") else ())
        return st.sampled_from(list(known)) if known else st.text(min_size=1, max_size=12)
    if f.type == FieldDescriptor.TYPE_ENUM:
        assert f.enum_type is not None
        return st.sampled_from([v.number for v in f.enum_type.values if v.number] or [0])
    if f.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if f.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(0, 100)
    if f.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=8)
    return st.sampled_from((0, 1, 2, 5, 10, 30))


def _build(cls: type[Message], values: Mapping[str, Any]) -> Message:
    msg = cls()
    for name, v in values.items():
        f: FieldDescriptor = cls.DESCRIPTOR.fields_by_name[name]  # type: ignore[assignment]
        target = getattr(msg, name)
        if _is_map(f):
            vf = _sub(f).fields_by_name["value"]
            for k, item in v.items():
                if vf.type == FieldDescriptor.TYPE_MESSAGE:
                    target[k].CopyFrom(item)
                else:
                    target[k] = item
        elif f.is_repeated:
            if f.type == FieldDescriptor.TYPE_MESSAGE:
                for item in v:
                    target.add().CopyFrom(item)
            else:
                target.extend(v)
        elif f.type == FieldDescriptor.TYPE_MESSAGE:
            target.CopyFrom(v)
        else:
            setattr(msg, name, v)
    return msg


def _spoil(raw: bytes, how: str, at: int) -> bytes:
    """Bytes that do not decode as the request (or decode differently)."""
    if how == "truncate" and raw:
        return raw[: at % len(raw)]
    if how == "flip" and raw:
        i = at % len(raw)
        return raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1 :]
    if how == "utf8":
        # a string field (1..15) holding invalid UTF-8, the same length framed
        return raw + bytes([((at % 15) + 1) << 3 | 2, 2, 0xC3, 0x28])
    if how == "garbage":
        return bytes((at * 7919 + i * 104_729) % 256 for i in range(1 + at % 97))
    return raw


def shots(all_methods: Sequence[Method], pools: Pools, now: int) -> st.SearchStrategy[Shot]:
    """A request to one of the methods, with a token, perhaps spoiled."""
    labelled = [t for t in pools.tokens for _ in range(pools.weights.get(t[0], 1))]
    per_method = {
        m.path: st.one_of(message(m.input, pools, now), message(m.input, pools, now, good=True))
        for m in all_methods
    }

    def one(m: Method) -> st.SearchStrategy[Shot]:
        return st.builds(
            lambda req, tok, how, at: _shot(m, req, tok, how, at),
            per_method[m.path],
            st.sampled_from(labelled),
            st.sampled_from(("",) * 12 + ("truncate", "flip", "utf8", "garbage", "huge")),
            st.integers(0, 2**16),
        )

    return st.sampled_from(list(all_methods)).flatmap(one)


def _huge(req: Message, at: int) -> None:
    """One string field made huge: some just under a server's size limit,
    some past it (refused by gRPC itself, RESOURCE_EXHAUSTED)."""
    n = (50_000, 80_000, 300_000, 1_200_000)[at % 4]
    names = [
        f.name
        for f in req.DESCRIPTOR.fields
        if f.type == FieldDescriptor.TYPE_STRING and not f.is_repeated
    ]
    if names:
        setattr(req, names[at % len(names)], "信" * n)


def _shot(m: Method, req: Message, tok: tuple[str, Metadata], how: str, at: int) -> Shot:
    if how == "huge":
        _huge(req, at)
    raw = req.SerializeToString()
    return Shot(m, tok[0], tok[1], req, _spoil(raw, how, at), how)


def generate(strategy: st.SearchStrategy[Shot], n: int, seed_value: int) -> list[Shot]:
    """``n`` shots drawn by hypothesis from a fixed seed (the same seed, the
    same requests, as long as the world's pools are the same)."""
    out: list[Shot] = []
    round_no = 0
    collect: Callable[[Shot], None] = out.append
    while len(out) < n:

        @seed(seed_value * 1000 + round_no)
        @settings(
            max_examples=n - len(out),
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
            deadline=None,
        )
        @given(strategy)
        def draw(s: Shot) -> None:
            collect(s)

        before = len(out)
        draw()
        round_no += 1
        if len(out) == before:
            break
    return out[:n]
