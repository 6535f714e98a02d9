"""One batch of events, applied in memory and written once.

A consumer reads a bounded batch of a partition's events, and its handlers
apply them here instead of at the store: every document the batch touches is
read once (``load``, all of a kind at once), changed in memory as each event
says (``update``: MongoDB's operators, ``core.docops``), and written once at
the end (``flush``: one insert or update per document, in bulk). A document
changed by ten events of a batch costs one read and one write, not ten of each.

Two kinds of document, because they have different writers:

* *owned* documents (a case's record in a read model, a clock) are written
  by the one consumer that owns the case's partition. The flush writes the
  difference between what was read and what the batch made of it, and the
  handler puts the record that an event was applied (``_applied.<event>``)
  into the same document, so the effect and its tracking land in one write;
* *counters* shared across partitions (a district's monthly figures) are
  incremented (``count``) in the shard of the event's partition
  (``core.shards``: each shard has one writer, however many replicas run),
  which carries the highest offset it counted (``_wm.<p>``, moved by
  ``$max`` in the same write). An event at or below it is not counted
  again; readers add the shards up.

Flush order is what makes a retry after a crash at any point redo exactly
what is missing and nothing twice: counters first, then the owned
collections in the order the handler names, the one holding the
per-event marker that the handler checks for duplicates last. So a marker,
once written, means everything before it is written too.

A new case's document is not looked for (``load_cases``): a registration
names the roster of the second it was recorded in (``roster_id``), a
document per partition that lists the cases whose documents a registration
opened, written before any of them. A case its roster does not list has no
document, so the read that would find nothing is not made; one roster stands
for a batch's registrations, and stays in memory with the documents the
partition's owner wrote (``OwnedDocs``).

An event whose handler fails is undone in memory (``savepoint``/
``rollback``) and dead-lettered alone; the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.codec import payload_name
from xinfang.core.docops import apply_update, diff
from xinfang.core.mongo import Doc, Position
from xinfang.core.shards import META, shard_id
from xinfang.core.store import Store, normalise

__all__ = [
    "ROSTERS",
    "Batch",
    "BatchConsumer",
    "CaseBlocked",
    "OwnedDocs",
    "cases_of",
    "roster_id",
]

# the rosters of the cases whose documents a registration opened (``load_cases``)
ROSTERS = "case_rosters"


def roster_id(district_id: str, partition: int, recorded_at: datetime) -> str:
    """The roster a registration is entered in: its district, its case's
    partition (whose consumer alone writes the roster, as it does the case's
    documents) and the second it was recorded in, which every delivery of
    the registration carries (a redelivery, a republished copy, a replay of a
    dead letter): so a copy finds the roster its first delivery entered. A
    second, not an hour: FerretDB rewrites a whole document at every update,
    and under a sustained load of 200 cases/s an hour's roster of a partition
    would hold 180,000 cases, rewritten at every batch; a second's holds what
    a batch or two registered. (In bursts of 3,000 cases the two measured
    alike: an hour's roster then holds only the burst.)"""
    return f"{district_id}:{partition}:{recorded_at:%Y%m%d%H%M%S}"


def cases_of(
    items: Iterable[tuple[ev.CaseEvent, Position]],
) -> dict[str, tuple[str, str] | None]:
    """A batch's cases for ``Batch.load_cases``: each with its registration's
    roster and district, when its registration is in the batch."""
    out: dict[str, tuple[str, str] | None] = {}
    for e, pos in items:
        if payload_name(e) == "registered":
            rid = roster_id(e.district_id, pos.partition, e.recorded_at.ToDatetime())
            out[e.case_id] = (rid, e.district_id)
        else:
            out.setdefault(e.case_id, None)
    return out


class CaseBlocked(Exception):
    """Not applied: an earlier event of its case in the same batch failed, so
    applying this one would put the case's events out of order. The runtime
    parks it behind the failed one (``core.parking``)."""


class OwnedDocs:
    """The owned documents of a process that alone writes them, as it last
    wrote them: a batch takes them from here instead of the store. A live
    consumer owns the documents of the partitions assigned to it, until they
    are revoked (``drop``: another replica may write them next). A rebuild
    by replay owns its fresh read models outright (``complete``: a document
    not here does not exist, so nothing is read at all)."""

    def __init__(self, complete: bool = False, max_docs: int = 200_000) -> None:
        self.complete = complete
        self.max_docs = max_docs
        self.docs: dict[tuple[str, str], Doc | None] = {}
        # the watermarks of the counter shards of these partitions, as last
        # written: a shard has one writer too (``core.shards``), and reading
        # a district's few counters again for every batch was a third of a
        # consumer's reads
        self.watermarks: dict[tuple[str, str], dict[str, int]] = {}
        self.epoch = 0  # moved by every drop: a batch read before it keeps nothing

    def drop(self) -> None:
        """Forget everything (a rebalance, a failed write): read from the store again."""
        self.docs.clear()
        self.watermarks.clear()
        self.complete = False
        self.epoch += 1

    def watermark(self, key: tuple[str, str]) -> dict[str, int] | None:
        """A counter shard's watermarks, if known (None: read the shard)."""
        wm = self.watermarks.get(key)
        if wm is not None:
            return dict(wm)
        return {} if self.complete else None

    def serve(
        self,
        coll: str,
        ids: list[str],
        before: dict[tuple[str, str], Doc | None],
        after: dict[tuple[str, str], Doc | None],
    ) -> list[str]:
        """Fill ``before``/``after`` with what is known; returns the ids left to read."""
        left = []
        for i in ids:
            key = (coll, i)
            if key in self.docs or self.complete:
                before[key] = after[key] = self.docs.get(key)
            else:
                left.append(i)
        return left

    def keep(
        self,
        after: Mapping[tuple[str, str], Doc | None],
        changed: Set[tuple[str, str]],
        watermarks: Mapping[tuple[str, str], dict[str, int]],
    ) -> None:
        """Remember what a flush wrote: the documents and the counter shards'
        watermarks. Past ``max_docs`` the memory is let go and documents are
        read from the store again (where they all are)."""
        # as the store holds them (datetimes to the millisecond, tuples as
        # lists): what is served from here must equal what a read returns.
        # A document the batch left as it was read is so already (read from
        # the store or served from here): only the ``changed`` are converted
        self.docs.update(
            {k: normalise(d) if d is not None and k in changed else d for k, d in after.items()}
        )
        if len(self.docs) > self.max_docs:
            self.docs.clear()
            self.watermarks.clear()
            self.complete = False
        self.watermarks.update(watermarks)


@dataclass
class _Counter:
    stored_wm: dict[str, int]  # the document's watermarks when read
    wm: dict[str, int] = field(default_factory=dict)  # counted in this batch
    inc: dict[str, int] = field(default_factory=dict)
    on_insert: dict[str, Any] = field(default_factory=dict)


@dataclass
class _CounterUndo:
    """How to take one event's count back out of a counter."""

    partition: str
    wm: int | None  # the partition's watermark in this batch before the event
    inc: dict[str, int]
    new_inc: list[str]  # fields the event added to the batch's increments
    new_on_insert: list[str]

    def undo(self, c: _Counter) -> None:
        if self.wm is None:
            c.wm.pop(self.partition, None)
        else:
            c.wm[self.partition] = self.wm
        for k, n in self.inc.items():
            c.inc[k] -= n
        for k in self.new_inc:
            del c.inc[k]
        for k in self.new_on_insert:
            del c.on_insert[k]


class Batch:
    def __init__(
        self, store: Store, order: Sequence[str] = (), owned: OwnedDocs | None = None
    ) -> None:
        self.store = store
        self.order = list(order)  # owned collections, flushed in this order
        self.owned = owned
        self._epoch = owned.epoch if owned is not None else 0
        self._before: dict[tuple[str, str], Doc | None] = {}
        self._after: dict[tuple[str, str], Doc | None] = {}
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._also: list[tuple[str, str, Mapping[str, Any]]] = []
        self._undo: list[tuple[str, tuple[str, str], Any]] | None = None

    # ---- reading --------------------------------------------------------------

    async def load(self, coll: str, ids: Iterable[str]) -> None:
        """Read these documents (those not read yet), all at once."""
        want = [i for i in dict.fromkeys(ids) if (coll, i) not in self._before]
        if self.owned is not None:
            want = self.owned.serve(coll, want, self._before, self._after)
        if not want:
            return
        got = await self.store.get_many(coll, want)
        for i in want:
            d = got.get(i)
            # shared: ``apply_update`` never changes a document in place
            self._before[(coll, i)] = self._after[(coll, i)] = d

    def assume_absent(self, coll: str, ids: Iterable[str]) -> None:
        """Take these documents as not existing, without reading them (the
        caller knows: a record lists what exists). Those loaded already are
        left as they are."""
        for i in ids:
            if (coll, i) not in self._before:
                self._before[(coll, i)] = self._after[(coll, i)] = None

    async def load_cases(self, coll: str, cases: Mapping[str, tuple[str, str] | None]) -> None:
        """``load`` of case documents, each given with its registration's
        roster and district when the registration is in the batch (else
        None). A case its roster does not list has no document: a
        registration is the first event of its case that a consumer applies
        (a later one waits behind it, in the batch or parked), and its roster
        is entered before the case's documents are written (``plan``), so a
        document that exists is listed. Not read, it is taken as absent; the
        rest are read, all at once. Every registration's case is entered in
        its roster here, applied or not: a roster that lists a case without
        a document costs a read, never a wrong answer."""
        registered = {i: r for i, r in cases.items() if r is not None}
        await self.load(ROSTERS, [rid for rid, _d in registered.values()])
        want = [i for i in cases if (coll, i) not in self._before]
        if self.owned is not None:
            want = self.owned.serve(coll, want, self._before, self._after)
        absent = [i for i in want if i in registered and i not in self._listed(registered[i][0])]
        self.assume_absent(coll, absent)
        await self.load(coll, [i for i in want if i not in absent])
        for i, (rid, district) in registered.items():
            if i not in self._listed(rid):
                self.update(ROSTERS, rid, {"$set": {"district_id": district, f"cases.{i}": True}})

    def _listed(self, rid: str) -> Mapping[str, Any]:
        return ((self._after.get((ROSTERS, rid)) or {}).get("cases")) or {}

    async def get(self, coll: str, doc_id: str) -> Doc | None:
        """The document as this batch has made it so far (read if need be)."""
        await self.load(coll, [doc_id])
        return self._after[(coll, doc_id)]

    def peek(self, coll: str, doc_id: str) -> Doc | None:
        """``get`` of a document already loaded."""
        return self._after[(coll, doc_id)]

    # ---- changing ---------------------------------------------------------------

    def update(self, coll: str, doc_id: str, update: Mapping[str, Any]) -> Doc:
        """Apply ``update`` to an owned document (loaded first) in memory."""
        key = (coll, doc_id)
        if key not in self._before:
            raise KeyError(f"{coll}/{doc_id} was not loaded into this batch")
        if self._undo is not None:  # the old version stays as it was
            self._undo.append(("doc", key, self._after[key]))
        new = apply_update(self._after[key], update, doc_id)
        self._after[key] = new
        return new

    def also(self, coll: str, doc_id: str, update: Mapping[str, Any]) -> None:
        """Queue an update that is idempotent and commutes with every other
        writer's (``$addToSet`` to a shared index, ``$set`` of a flag that
        only ever goes one way): written as it is, after the counters and
        before the owned documents; never read back by this batch."""
        if self._undo is not None:
            self._undo.append(("also", ("", ""), len(self._also)))
        self._also.append((coll, doc_id, update))

    async def count(
        self,
        coll: str,
        doc_id: str,
        pos: Position,
        inc: Mapping[str, int],
        on_insert: Mapping[str, Any] | None = None,
    ) -> bool:
        """Add ``inc`` to a shared counter (its shard for ``pos``'s partition)
        unless ``pos`` was counted already."""
        key = (coll, shard_id(doc_id, pos.partition))
        c = self._counters.get(key)
        if c is None:
            stored = self.owned.watermark(key) if self.owned is not None else None
            if stored is None:
                doc = await self.store.get(*key)
                stored = {k: int(v) for k, v in ((doc or {}).get("_wm") or {}).items()}
            c = self._counters[key] = _Counter(stored_wm=stored)
        p = str(pos.partition)
        if pos.offset <= max(c.stored_wm.get(p, -1), c.wm.get(p, -1)):
            return False
        if self._undo is not None:
            # what this call changes, not a copy of the counter: a district's
            # year counter holds thousands of fields, and a copy per event
            # was most of a consumer's time
            new_inc = [k for k in inc if k not in c.inc]
            new_ins = [k for k in (on_insert or {}) if k not in c.on_insert]
            self._undo.append(
                ("counter", key, _CounterUndo(p, c.wm.get(p), dict(inc), new_inc, new_ins))
            )
        c.wm[p] = pos.offset
        for k, n in inc.items():
            c.inc[k] = c.inc.get(k, 0) + n
        for k, v in (on_insert or {}).items():
            c.on_insert.setdefault(k, v)
        if on_insert and META not in c.on_insert:
            c.on_insert[META] = sorted(on_insert)
            if self._undo is not None:
                self._undo[-1][2].new_on_insert.append(META)
        return True

    # ---- one event at a time ------------------------------------------------------

    def savepoint(self) -> None:
        """Start recording what the next event changes, to undo it if it fails."""
        self._undo = []

    def rollback(self) -> None:
        """Undo every change since ``savepoint``."""
        for kind, key, old in reversed(self._undo or []):
            if kind == "doc":
                self._after[key] = old
            elif kind == "also":
                del self._also[old:]
            else:
                old.undo(self._counters[key])
        self._undo = None

    def release(self) -> None:
        """Keep what the event changed."""
        self._undo = None

    # ---- writing ----------------------------------------------------------------

    def plan(self) -> list[tuple[str, list[Doc], list[tuple[str, Doc]]]]:
        """The writes ``flush`` makes, in its order: per collection, the
        documents new in this batch, inserted whole, and the updates by
        ``_id``. FerretDB inserts a new document three times as fast as it
        upserts one (it looks for it first): 9,600 against 2,800 a second
        in bulks of 99 here, so a case's first document is an insert."""
        out: dict[str, tuple[list[Doc], list[tuple[str, Doc]]]] = {}
        for (coll, doc_id), c in self._counters.items():
            if not c.wm:
                continue
            upd: Doc = {"$max": {f"_wm.{p}": o for p, o in c.wm.items()}}
            # a field that nets to 0 in the batch is still written (as 0), so
            # the document is the same however its events fell into batches
            if c.inc:
                upd["$inc"] = dict(c.inc)
            if c.on_insert:
                upd["$setOnInsert"] = c.on_insert
            out.setdefault(coll, ([], []))[1].append((doc_id, upd))
        for coll, doc_id, raw in _coalesce(self._also):
            out.setdefault(coll, ([], []))[1].append((doc_id, raw))
        owned: dict[str, tuple[list[Doc], list[tuple[str, Doc]]]] = {}
        for (coll, doc_id), after in self._after.items():
            if after is None:
                continue
            before = self._before[(coll, doc_id)]
            if before is None:
                owned.setdefault(coll, ([], []))[0].append(after)
                continue
            upd = diff(before, after)
            if upd:
                owned.setdefault(coll, ([], []))[1].append((doc_id, upd))
        # the rosters first: a case's document exists only once its roster lists it
        rank = {ROSTERS: -2} | {c: i for i, c in enumerate(self.order)}
        for coll in sorted(owned, key=lambda c: rank.get(c, -1)):
            if coll in out:
                raise ValueError(f"{coll} holds both counters and owned documents")
            out[coll] = owned[coll]
        return [(coll, new, updates) for coll, (new, updates) in out.items()]

    def pending(self) -> dict[str, list[tuple[str, Doc]]]:
        """The updates of ``plan``, by collection (new documents left out)."""
        return {coll: updates for coll, _new, updates in self.plan() if updates}

    async def flush(self) -> int:
        """Write the batch; returns the documents written. The batch is spent."""
        n = 0
        try:
            for coll, new, updates in self.plan():
                n += len(new) + len(updates)
                # the documents that existed first, then the new ones: a
                # reader who sees a new document (the handling clock an
                # acceptance starts) sees the batch's changes to the others
                # of its collection too (the objection window it stops).
                # The other way round, a query in between saw both open
                if updates:
                    await self.store.write(coll, updates)
                if new:
                    inserted = await self.store.insert_many(coll, new)
                    # there after all (a writer this batch did not see, or a
                    # caller's ``assume_absent`` that was wrong): the same
                    # change as an update, as if it had been read as absent
                    again = [
                        (str(d["_id"]), diff(None, d))
                        for d, ok in zip(new, inserted, strict=True)
                        if not ok
                    ]
                    if again:
                        await self.store.write(coll, again)
        except BaseException:
            # written in part: what the store holds is no longer known here
            if self.owned is not None:
                self.owned.drop()
            raise
        if self.owned is not None and self.owned.epoch == self._epoch:
            self.owned.keep(
                self._after,
                changed={k for k, d in self._after.items() if d is not self._before[k]},
                # what the batch counted lies above what was stored (``count``)
                watermarks={k: {**c.stored_wm, **c.wm} for k, c in self._counters.items()},
            )
        self._before.clear()
        self._after.clear()
        self._counters.clear()
        self._also.clear()
        return n


def _coalesce(ops: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[tuple[str, str, Doc]]:
    """One update per document where the batch queued many ``$addToSet``s
    to it (a day's bucket of due clocks gets one per clock): FerretDB
    rewrites the whole document for every update, so a hundred become one
    ``$each``. Other updates stay as they are, in order."""
    out: list[tuple[str, str, Doc]] = []
    merged: dict[tuple[str, str], Doc] = {}
    for coll, doc_id, upd in ops:
        if set(upd) == {"$addToSet"}:
            into = merged.get((coll, doc_id))
            if into is None:
                into = merged[(coll, doc_id)] = {"$addToSet": {}}
                out.append((coll, doc_id, into))
            for field, value in upd["$addToSet"].items():
                each = into["$addToSet"].setdefault(field, {"$each": []})["$each"]
                for v in value["$each"] if isinstance(value, Mapping) else [value]:
                    if v not in each:
                        each.append(v)
        else:
            out.append((coll, doc_id, dict(upd)))
    return out


Item = tuple[Any, Position]  # (event, where it was read)


class BatchConsumer:
    """A service's consumer over batches: ``prepare`` reads what the batch
    will touch (in bulk), ``apply`` applies one event to the batch and says
    what happened ("applied", "duplicate", "ignored"). An event whose
    ``apply`` raises anything but a transient store error is undone and its
    error returned in its place, for the runtime to dead-letter; a transient
    error ends the call, and the runtime retries the whole batch afresh."""

    def __init__(
        self,
        store: Store,
        order: Sequence[str],
        prepare: Any,
        apply: Any,
        transient: tuple[type[BaseException], ...] = (),
        owned: OwnedDocs | None = None,
    ) -> None:
        self.store = store
        self.order = order
        self.prepare = prepare
        self.apply = apply
        self.transient = transient
        self.owned = owned

    async def __call__(self, items: Sequence[Item]) -> list[str | Exception]:
        b = Batch(self.store, self.order, self.owned)
        await self.prepare(b, items)
        out: list[str | Exception] = []
        failed: set[str] = set()
        for event, pos in items:
            case: str | None = getattr(event, "case_id", None)
            if case is not None and case in failed:
                out.append(CaseBlocked(case))
                continue
            b.savepoint()
            try:
                out.append(await self.apply(b, event, pos))
            except self.transient:
                raise
            except Exception as e:
                b.rollback()
                out.append(e)
                if case is not None:
                    failed.add(case)
            else:
                b.release()
        await b.flush()
        return out
