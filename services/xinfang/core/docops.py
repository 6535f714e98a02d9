"""MongoDB update operators applied in memory, and the one update that turns
one version of a document into another. Pure: no I/O.

Two users need the same semantics as the server: the in-memory fake of the
store port (``core.store.MemoryStore``), and a consumer batch
(``core.batch.Batch``), which applies each event's change to its in-memory
copy of a document and, at the end of the batch, writes one update per
document (``diff``) instead of one per event. The contract suite
(tests/store_contract.py) holds the fake to what FerretDB and MongoDB do.

Only the operators the services use are supported; any other raises
``UnsupportedUpdate`` rather than guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["OPERATORS", "UnsupportedUpdate", "apply_update", "diff"]

Doc = dict[str, Any]

OPERATORS = frozenset(
    {"$set", "$unset", "$inc", "$max", "$min", "$setOnInsert", "$push", "$addToSet"}
)


class UnsupportedUpdate(ValueError):
    """An operator or path shape the store port does not promise."""


def _parent(doc: Doc, path: str, create: bool) -> tuple[Doc | None, str]:
    """The document holding ``path``'s last part, copied on the way down (so
    ``doc``'s caller, who copied only the top, never sees a change), or None
    when it does not exist and ``create`` is False."""
    parts = path.split(".")
    node: Any = doc
    for p in parts[:-1]:
        if not isinstance(node, dict):
            raise UnsupportedUpdate(f"{path}: {p!r} is not a document")
        nxt = node.get(p)
        if nxt is None:
            if not create:
                return None, parts[-1]
            nxt = {}
        elif isinstance(nxt, dict):
            nxt = dict(nxt)  # copy on write: the original may be shared
        node[p] = nxt
        node = nxt
    if not isinstance(node, dict):
        raise UnsupportedUpdate(f"{path}: parent is not a document")
    return node, parts[-1]


def _copy(value: Any) -> Any:
    """A copy of what an update stores: documents and arrays are copied,
    everything else (numbers, strings, datetimes, bytes) is immutable and
    shared; ``copy.deepcopy`` of a datetime alone cost more than the update."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def _check_paths(update: Mapping[str, Any]) -> None:
    """The server refuses an update that names one path twice, or a path and
    its prefix (``a`` and ``a.b``); so does this."""
    seen: set[str] = set()
    for op, fields in update.items():
        if op not in OPERATORS:
            raise UnsupportedUpdate(f"operator {op!r} is not supported by the store port")
        if not isinstance(fields, Mapping):
            raise UnsupportedUpdate(f"{op}: expects a document")
        for path in fields:
            if not path or path.startswith("$") or (path == "_id" and op != "$setOnInsert"):
                raise UnsupportedUpdate(f"{op}: path {path!r} may not be updated")
            if path in seen:
                raise UnsupportedUpdate(f"paths {path!r} and {path!r} conflict")
            seen.add(path)
    # a path and its prefix: each path's prefixes looked up (linear, where
    # comparing every pair was quadratic in an update of a thousand fields)
    for path in seen:
        i = path.find(".")
        while i != -1:
            if path[:i] in seen:
                raise UnsupportedUpdate(f"paths {path[:i]!r} and {path!r} conflict")
            i = path.find(".", i + 1)


def apply_update(doc: Doc | None, update: Mapping[str, Any], doc_id: str) -> Doc:
    """The document after ``update`` (an upsert when ``doc`` is None). ``doc``
    is not changed, nor anything in it: what the update touches is copied on
    write, the rest is shared with ``doc`` (so a batch applying many events
    to a large document does not copy all of it each time)."""
    _check_paths(update)
    inserting = doc is None
    out: Doc = {"_id": doc_id} if doc is None else dict(doc)
    for op, fields in update.items():
        if op == "$setOnInsert" and not inserting:
            continue
        for path, value in fields.items():
            if op == "$unset":
                parent, leaf = _parent(out, path, create=False)
                if parent is not None:
                    parent.pop(leaf, None)
                continue
            parent, leaf = _parent(out, path, create=True)
            assert parent is not None
            cur = parent.get(leaf)
            if op in ("$set", "$setOnInsert"):
                parent[leaf] = _copy(value)
            elif op == "$inc":
                if cur is not None and not isinstance(cur, int | float):
                    raise UnsupportedUpdate(f"$inc: {path} is not a number")
                parent[leaf] = (cur or 0) + value
            elif op == "$max":
                parent[leaf] = value if cur is None or value > cur else cur
            elif op == "$min":
                parent[leaf] = value if cur is None or value < cur else cur
            elif op in ("$push", "$addToSet"):
                if cur is not None and not isinstance(cur, list):
                    raise UnsupportedUpdate(f"{op}: {path} is not an array")
                items = _each(op, value)
                new = list(cur or [])
                for v in items:
                    if op == "$push" or v not in new:
                        new.append(_copy(v))
                parent[leaf] = new
    return out


def _each(op: str, value: Any) -> list[Any]:
    """The values ``$push``/``$addToSet`` add: one, or ``{"$each": [...]}``."""
    if isinstance(value, Mapping) and any(str(k).startswith("$") for k in value):
        if set(value) != {"$each"} or not isinstance(value["$each"], list):
            raise UnsupportedUpdate(f"{op}: only $each is supported among modifiers")
        return list(value["$each"])
    return [value]


def diff(before: Doc | None, after: Doc) -> Doc:
    """One update that makes ``before`` into ``after``: ``$set`` and ``$unset``
    of top-level fields, and of the keys of a field that is a document in
    both (so writers of different keys of one map, such as a document's
    owner and the outbox relay clearing ``outbox.<id>``, never undo each
    other). Empty when nothing changed."""
    before = before or {}
    sets: Doc = {}
    unsets: Doc = {}
    for k, v in after.items():
        if k == "_id":
            continue
        old = before.get(k, _MISSING)
        if isinstance(v, dict) and isinstance(old, dict):
            for sk, sv in v.items():
                if old.get(sk, _MISSING) != sv or type(old.get(sk)) is not type(sv):
                    sets[f"{k}.{sk}"] = sv
            for sk in old:
                if sk not in v:
                    unsets[f"{k}.{sk}"] = ""
        elif old is _MISSING or old != v or type(old) is not type(v):
            sets[k] = v
    for k in before:
        if k not in after and k != "_id":
            unsets[k] = ""
    upd: Doc = {}
    if sets:
        upd["$set"] = sets
    if unsets:
        upd["$unset"] = unsets
    return upd


_MISSING: Any = object()
