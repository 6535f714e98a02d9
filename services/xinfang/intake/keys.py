"""Re-sealing petitioner identities with the ring's sealing key version.

After a rotation (``core.crypto.KeyRing``) new registrations are sealed with
the new version at once and old records still open with theirs; this walks
the old records and seals them again, so the old key can eventually seal
nothing that is still kept. It runs beside intake, which keeps registering.

Which cases exist is read from the case log, not from the collection: every
case document holds a ``CaseRegistered`` event that is published right after
its insert, and the log is kept forever. FerretDB reads a whole collection
for any filter but an exact ``_id``, so paging through ``cases`` would read
it once per page; the log is read once, and each page of up to ``BULK_MAX``
case ids costs exact ``_id`` reads and one bulk write. Cases whose event a
crash kept from the log are named by their outbox pointers, read too.

Why it is safe while intake writes: intake never updates a case document
after inserting it (the outbox does not change documents either), so the
only writer of a document's ``identity`` after its insert is this walk; two
walks at once both write a valid seal of the same identity. A record already
at the sealing version, or at a newer one (a ring rolled out ahead of this
one), is left alone, so a run is idempotent and a re-run does only what is
left. The identity itself is never printed or logged: only counts, versions
and case ids.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from bson.binary import Binary
from cryptography.exceptions import InvalidTag
from tqdm import tqdm

from xinfang.core.codec import DecodeFailed, decode_event
from xinfang.core.config import Settings
from xinfang.core.crypto import IdentityVault, SealedIdentity, UnknownKeyVersion
from xinfang.core.kafka import read_to_end
from xinfang.core.mongo import Doc, connect
from xinfang.core.outbox import POINTERS
from xinfang.core.store import BULK_MAX, MongoStore, Store, Update

__all__ = ["ResealResult", "reseal", "reseal_store"]

CASES = "cases"


@dataclass
class ResealResult:
    seal_version: int
    checked: int = 0  # case documents read
    resealed: int = 0
    # documents by the key version they are sealed with, after the walk
    by_version: Counter[int] = field(default_factory=Counter)
    # case ids that could not be opened (a version the ring lacks, or a key
    # that changed under a version); never their contents
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def left(self) -> int:
        """Documents still sealed with an older version than the sealing one."""
        return sum(n for v, n in self.by_version.items() if v < self.seal_version)


def _sealed(doc: Doc) -> SealedIdentity | None:
    ident = doc.get("identity")
    if not ident:
        return None
    return SealedIdentity(bytes(ident["nonce"]), bytes(ident["ct"]), int(ident.get("kv", 1)))


async def reseal_page(
    store: Store,
    vault: IdentityVault,
    ids: Sequence[str],
    result: ResealResult,
    *,
    dry_run: bool = False,
    districts: frozenset[str] = frozenset(),
) -> None:
    """One page: exact ``_id`` reads, then one bulk write of what moved."""
    docs = await store.get_many(CASES, ids)
    seal_version = vault.seal_version
    updates: list[Update] = []
    for case_id, doc in docs.items():
        district_id = str(doc["district_id"])
        if districts and district_id not in districts:
            continue
        sealed = _sealed(doc)
        if sealed is None:
            continue
        result.checked += 1
        if sealed.key_version >= seal_version or dry_run:
            result.by_version[sealed.key_version] += 1
            continue
        try:
            new = vault.reseal(district_id, case_id, sealed)
        except (UnknownKeyVersion, InvalidTag):
            result.failed.append(case_id)
            result.by_version[sealed.key_version] += 1
            continue
        ident = {"nonce": Binary(new.nonce), "ct": Binary(new.ciphertext), "kv": new.key_version}
        updates.append((case_id, {"$set": {"identity": ident}}))
        result.by_version[new.key_version] += 1
    if updates:
        await store.write(CASES, updates)
        result.resealed += len(updates)


async def reseal_store(
    store: Store,
    vault: IdentityVault,
    case_ids: Callable[[], AsyncIterator[list[str]]],
    *,
    dry_run: bool = False,
    districts: frozenset[str] = frozenset(),
    on_page: Callable[[int, ResealResult], None] | None = None,
) -> ResealResult:
    """The walk over whatever yields the case ids (``case_ids()``: an async
    iterator of id lists), in pages of at most ``BULK_MAX``; each id once."""
    result = ResealResult(vault.seal_version)
    seen: set[str] = set()
    page: list[str] = []

    async def flush() -> None:
        if page:
            await reseal_page(store, vault, page, result, dry_run=dry_run, districts=districts)
            if on_page is not None:
                on_page(len(page), result)
            page.clear()

    # the documents whose events a crash may have kept from the log first
    pointed = [str(p["doc"]) for p in await store.scan(POINTERS, 100_000) if p["coll"] == CASES]

    async def every() -> AsyncIterator[list[str]]:
        yield pointed
        async for ids in case_ids():
            yield ids

    async for ids in every():
        for case_id in ids:
            if case_id in seen:
                continue
            seen.add(case_id)
            page.append(case_id)
            if len(page) == BULK_MAX:
                await flush()
    await flush()
    return result


async def reseal(
    settings: Settings,
    districts: frozenset[str] = frozenset(),
    *,
    dry_run: bool = False,
    progress: bool = True,
) -> ResealResult:
    """``xinfang keys reseal``: the walk over the live store and case log,
    with a progress bar (events read; resealed so far beside it)."""
    t0 = time.perf_counter()
    vault = IdentityVault.from_settings(settings)
    client = connect(settings.mongo_uri, "xinfang-keys")
    bar = tqdm(unit="ev", disable=not progress, file=sys.stderr, desc="reseal")
    try:
        store = MongoStore(client[settings.db_name("intake")], "keys")

        def total(n: int) -> None:
            bar.total = n
            bar.refresh()

        async def registered() -> AsyncIterator[list[str]]:
            async for records in read_to_end(
                settings, settings.case_events_topic, "xinfang-keys", on_total=total
            ):
                ids: list[str] = []
                for r in records:
                    try:
                        event = decode_event(r.value)
                    except DecodeFailed:
                        continue
                    if event.WhichOneof("payload") != "registered":
                        continue
                    if districts and event.district_id not in districts:
                        continue
                    ids.append(event.case_id)
                bar.update(len(records))
                yield ids

        def on_page(n: int, res: ResealResult) -> None:
            bar.set_postfix(checked=res.checked, resealed=res.resealed, refresh=False)

        result = await reseal_store(
            store,
            vault,
            registered,
            dry_run=dry_run,
            districts=districts,
            on_page=on_page,
        )
        result.seconds = time.perf_counter() - t0
        return result
    finally:
        bar.close()
        await client.close()
