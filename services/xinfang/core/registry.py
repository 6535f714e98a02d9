"""One table per concern from event type to handler.

Why: which events a service acts on, and how, should be read in one place
and extended in one line. A new event type is one message in
``protos/xinfang/case/v1/events.proto`` (a field of ``CaseEvent.payload``),
and, per service that cares, one function registered here under that field's
name. A name that is not a payload field is refused when the module is
imported, so a typo cannot silently drop an event type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from xinfang.case.v1 import events_pb2 as ev

__all__ = ["PAYLOADS", "Registry"]

F = TypeVar("F", bound=Callable[..., object])

# every event type there is: the fields of CaseEvent's payload oneof
PAYLOADS = frozenset(f.name for f in ev.CaseEvent.DESCRIPTOR.oneofs_by_name["payload"].fields)


class Registry(Generic[F]):
    def __init__(self, name: str) -> None:
        self.name = name
        self._by_type: dict[str, F] = {}

    def on(self, *payloads: str) -> Callable[[F], F]:
        """Register the decorated function for these event types."""

        def register(fn: F) -> F:
            for p in payloads:
                if p not in PAYLOADS:
                    raise ValueError(f"{self.name}: {p!r} is not a CaseEvent payload")
                if p in self._by_type:
                    raise ValueError(f"{self.name}: {p!r} is registered twice")
                self._by_type[p] = fn
            return fn

        return register

    def get(self, event: ev.CaseEvent) -> F | None:
        """The handler of this event's type, or None: not this table's concern."""
        return self._by_type.get(event.WhichOneof("payload") or "")

    def __contains__(self, payload: str) -> bool:
        return payload in self._by_type

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_type))
