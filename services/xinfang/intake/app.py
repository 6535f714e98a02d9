"""Intake: registers petitions from every channel and publishes CaseRegistered.

The case document and its CaseRegistered event are written in one insert (the
event sits in the document's outbox, ``core.outbox``), published right after
it. The sealed identity stays in this document and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from bson.binary import Binary

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.auth import OFFICE
from xinfang.core.coalesce import Coalescer
from xinfang.core.codec import new_event, new_id, to_timestamp
from xinfang.core.crypto import IdentityVault, SealedIdentity
from xinfang.core.directory import Directory
from xinfang.core.errors import InvalidArgument, NotFound, PermissionDenied
from xinfang.core.grpc_server import rpc
from xinfang.core.logging import get_logger
from xinfang.core.mongo import Doc
from xinfang.core.outbox import Outbox, outbox_field
from xinfang.core.runtime import BatchHandler, Runtime, ServiceSpec
from xinfang.core.store import Store
from xinfang.intake.domain import Registration, case_id_for, validate
from xinfang.intake.v1 import intake_pb2 as pb
from xinfang.intake.v1 import intake_pb2_grpc as pb_grpc

__all__ = ["SPEC", "Intake"]

SERVICE = "intake"
# roles entitled to see who petitioned: the district's petition office only
REVEAL_ROLES = frozenset({"office"})
log = get_logger(__name__)


CASES = "cases"
MATTERS = "petitioner_matters"
REVEALS = "identity_reveals"


@dataclass(frozen=True)
class _Pending:
    """A validated registration, waiting to be written with the others that
    came in with it."""

    district_id: str
    case_id: str
    request_id: str
    reg: Registration
    ref: str
    matter_id: str
    history_source: str = ""  # the system a history is imported from


class Intake:
    def __init__(
        self, store: Store, outbox: Outbox, directory: Directory, vault: IdentityVault
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.directory = directory
        self.vault = vault
        # registrations that arrive together are written together
        self._writer: Coalescer[_Pending, pb.RegisterPetitionResponse] = Coalescer(self._write)

    async def register(self, req: pb.RegisterPetitionRequest) -> pb.RegisterPetitionResponse:
        district_id = req.district_id.strip()
        if not district_id:
            raise InvalidArgument("district_id", "is required")
        district = await self.directory.find(district_id)
        if district is None:
            raise InvalidArgument("district_id", f"unknown district {district_id!r}")
        if len(req.request_id) > 128:
            raise InvalidArgument("request_id", "at most 128 characters")
        reg = validate(req, district, datetime.now(UTC))
        case_id = case_id_for(district_id, req.request_id) if req.request_id else new_id()
        ref = self.vault.pseudonym(district_id, reg.identity)
        # "same petitioner, same matter": keyed by pseudonym and category
        matter_id = f"{district_id}:{ref}:{reg.category}"
        return await self._writer.submit(
            _Pending(
                district_id,
                case_id,
                req.request_id,
                reg,
                ref,
                matter_id,
                req.history_source.strip(),
            )
        )

    async def _write(self, items: Sequence[_Pending]) -> list[pb.RegisterPetitionResponse]:
        """Register the petitions that came in together, in as few store
        calls as the server allows. Each petition's writes keep their order
        (its place among the matter's petitions, the hint, then the case
        with its event), so a crash or an error at any call leaves each
        petition either not registered or registered whole, and the client's
        retry (same ``request_id``) finds what its first try did."""
        first: dict[str, _Pending] = {}
        for p in items:  # one request sent twice at once: the second hears "not created"
            first.setdefault(p.case_id, p)
        todo = list(first.values())
        # place 1 of each matter first, with nothing read: a petition that
        # takes it is its matter's first and was never registered (a try
        # claims its place before it writes its case, and places are taken
        # from 1 up, so a case written before holds a place and place 1 is
        # gone). Only the refused may be retries, and only they are read.
        places, refused = await self._claim_firsts(todo)
        existing = await self.store.get_many(CASES, [p.case_id for p in refused])
        answers: dict[str, pb.RegisterPetitionResponse] = {}
        retried = [
            existing[p.case_id]
            for p in refused
            if p.case_id in existing and existing[p.case_id]["district_id"] == p.district_id
        ]
        if retried:  # retries: the first try may have died before publishing
            await self.outbox.republish(retried)
            for doc in retried:
                answers[doc["_id"]] = pb.RegisterPetitionResponse(
                    case_id=doc["_id"], created=False, kind=doc["kind"]
                )
        places.update(await self._claim_rest([p for p in refused if p.case_id not in answers]))
        fresh = [p for p in todo if p.case_id not in answers]
        # a hint only: where the next registration starts looking (see
        # _claim); a first petition needs none, as probing starts at place
        # 1. Written before the case, so a retry after a crash at any point
        # leaves the same hint (``$max``, and the retry claims the same place)
        hint_updates = [
            (
                p.matter_id,
                {"$max": {"count": places[p.case_id][0]}, "$set": {"district_id": p.district_id}},
            )
            for p in fresh
            if places[p.case_id][0] > 1
        ]
        if hint_updates:
            await self.store.write(MATTERS, hint_updates)
        docs = [self._case_doc(p, *places[p.case_id]) for p in fresh]
        inserted = await self.outbox.record(CASES, docs)
        for p, doc, ok in zip(fresh, docs, inserted, strict=True):
            # not inserted: the same request raced us on another replica; it won
            answers[p.case_id] = pb.RegisterPetitionResponse(
                case_id=p.case_id, created=ok, kind=doc["kind"]
            )
        out = []
        for p in items:
            a = answers[p.case_id]
            if first[p.case_id] is not p:
                a = pb.RegisterPetitionResponse(case_id=a.case_id, created=False, kind=a.kind)
            out.append(a)
        return out

    def _case_doc(self, p: _Pending, seq: int, previous_case_id: str) -> Doc:
        kind = ev.PETITION_KIND_FIRST if seq == 1 else ev.PETITION_KIND_REPEAT
        event = self._event(p.case_id, p.reg, p.ref, kind, previous_case_id, seq - 1)
        if p.history_source:
            # its steps follow from the system used before (assignment.ImportHistory)
            event.entry = ev.ENTRY_HISTORY
            event.late_reason = f"history: {p.history_source}"
        sealed = self.vault.seal(p.district_id, p.case_id, p.reg.identity)
        doc: Doc = {
            "_id": p.case_id,
            "district_id": p.district_id,
            "request_id": p.request_id,
            "version": 1,
            "status": "registered",
            "kind": kind,
            "petitioner_ref": p.ref,
            "category": p.reg.category,
            "township_id": p.reg.township_id,
            "received_at": p.reg.received_at,
            "registered_at": datetime.now(UTC),
            "identity": {
                "nonce": Binary(sealed.nonce),
                "ct": Binary(sealed.ciphertext),
                "kv": sealed.key_version,
            },
        }
        doc["outbox"] = outbox_field([event])
        return doc

    async def _claim_firsts(
        self, items: Sequence[_Pending]
    ) -> tuple[dict[str, tuple[int, str]], list[_Pending]]:
        """Most petitions are their matter's first: place 1 is tried for all
        in one insert, with nothing read first. Returns the places taken and
        the petitions refused (a repeat petition, a retry)."""
        if not items:
            return {}, []
        firsts = await self.store.insert_many(
            MATTERS,
            [{"_id": f"{p.matter_id}#1", "district_id": p.district_id, "case_id": p.case_id}
             for p in items],
        )  # fmt: skip
        places: dict[str, tuple[int, str]] = {
            p.case_id: (1, "") for p, claimed in zip(items, firsts, strict=True) if claimed
        }
        return places, [p for p, claimed in zip(items, firsts, strict=True) if not claimed]

    async def _claim_rest(self, refused: Sequence[_Pending]) -> dict[str, tuple[int, str]]:
        """The places of petitions refused place 1, in three calls for them
        all: one read of their matters' hints and places 1, one insert at
        the place each should take next (the hint's, or place 2 for a
        matter without one: its second petition), and one read of the
        places below those taken. The few refused again (the same matter
        twice at once, a stale hint) probe on one by one (``_claim``).
        Probing every second petition on its own was two round trips each,
        one petition after another, in the middle of the batch's writes."""
        places: dict[str, tuple[int, str]] = {}
        if not refused:
            return places
        read = await self.store.get_many(
            MATTERS, [*(p.matter_id for p in refused), *(f"{p.matter_id}#1" for p in refused)]
        )
        start: dict[str, int] = {}
        for p in refused:
            hinted = int(read.get(p.matter_id, {}).get("count", 0))
            first = read.get(f"{p.matter_id}#1")
            if first is not None and first["case_id"] == p.case_id:
                # its own: a try that claimed place 1 and died before its
                # case, even where another petition of the matter has moved
                # the hint past it since (its retry took a new place before)
                places[p.case_id] = (1, "")
            else:
                start[p.case_id] = max(2, hinted)
        places.update(await self._claim_at([p for p in refused if p.case_id in start], start, read))
        return places

    async def _claim_at(
        self, items: Sequence[_Pending], start: dict[str, int], known: dict[str, Doc]
    ) -> dict[str, tuple[int, str]]:
        """Try each petition's place ``start``, all in one insert; ``known``
        holds places read already."""
        if not items:
            return {}
        ok = await self.store.insert_many(
            MATTERS,
            [{"_id": f"{p.matter_id}#{start[p.case_id]}", "district_id": p.district_id,
              "case_id": p.case_id} for p in items],
        )  # fmt: skip
        places: dict[str, tuple[int, str]] = {}
        below: list[tuple[_Pending, int]] = []
        for p, claimed in zip(items, ok, strict=True):
            seq = start[p.case_id]
            if not claimed:
                places[p.case_id] = await self._claim(p.matter_id, p.district_id, p.case_id, seq)
            else:
                below.append((p, seq))
        if below:
            ids = [f"{p.matter_id}#{seq - 1}" for p, seq in below]
            unread = [i for i in ids if i not in known]
            prev = {**known, **(await self.store.get_many(MATTERS, unread) if unread else {})}
            for (p, seq), i in zip(below, ids, strict=True):
                taken = prev.get(i)
                places[p.case_id] = (seq, str(taken["case_id"]) if taken else "")
        return places

    async def _claim(
        self, matter_id: str, district_id: str, case_id: str, seq: int
    ) -> tuple[int, str]:
        """This case's place among the matter's petitions, and the case before
        it, probing on from place ``seq``, which was refused.

        Each place is a document ``<matter>#<n>`` whose insert is the claim: an
        ``_id`` is unique on every MongoDB-protocol server, so two registrations
        of one person at once (on any replica) get different places and only
        place 1 is a first petition. A read-then-insert would let both be first.
        A retry of a request that crashed after claiming finds its own place:
        probing starts at the hint's place itself (the latest claim, perhaps
        this request's own), not after it; a repeat petition pays one refused
        insert for that. (A retry that comes after another registration of
        the same matter moved the hint on takes a new place, unless its
        place was 1, which ``_claim_rest`` looks at first.)
        """
        before: Doc | None = None  # the place below ``seq``, when probed
        while True:
            taken = await self.store.get(MATTERS, f"{matter_id}#{seq}")
            if taken is not None and taken["case_id"] == case_id:
                before = None
                break
            before = taken
            seq += 1
            if await self.store.insert(
                MATTERS,
                {"_id": f"{matter_id}#{seq}", "district_id": district_id, "case_id": case_id},
            ):
                break
        if seq == 1:
            return 1, ""
        if before is None:
            before = await self.store.get(MATTERS, f"{matter_id}#{seq - 1}")
        return seq, str(before["case_id"]) if before else ""

    async def reveal(self, req: pb.RevealPetitionerRequest) -> pb.RevealPetitionerResponse:
        if not req.district_id:
            raise InvalidArgument("district_id", "is required")
        if not req.case_id:
            raise InvalidArgument("case_id", "is required")
        if not req.actor.user_id:
            raise InvalidArgument("actor.user_id", "is required")
        if req.actor.role not in REVEAL_ROLES:
            raise PermissionDenied(
                f"actor.role: {req.actor.role or 'no role'} may not see petitioner identity; "
                f"only {', '.join(sorted(REVEAL_ROLES))}"
            )
        if len(req.reason.strip()) < 4:
            raise InvalidArgument("reason", "say why the identity is needed")
        doc = await self.store.get(CASES, req.case_id)
        if doc is None or doc["district_id"] != req.district_id:
            raise NotFound(f"case_id: no case {req.case_id!r} in district {req.district_id!r}")
        reveal_id = new_id()
        # recorded first: no record, no reveal
        await self.store.insert(
            REVEALS,
            {
                "_id": reveal_id,
                "district_id": req.district_id,
                "case_id": req.case_id,
                "user_id": req.actor.user_id,
                "role": req.actor.role,
                "unit_id": req.actor.unit_id,
                "reason": req.reason.strip(),
                "at": datetime.now(UTC),
            },
        )
        ident = doc["identity"]
        person = self.vault.open(
            req.district_id,
            req.case_id,
            SealedIdentity(bytes(ident["nonce"]), bytes(ident["ct"]), ident["kv"]),
        )
        log.info("petitioner revealed", case_id=req.case_id, district_id=req.district_id,
                 user_id=req.actor.user_id, reveal_id=reveal_id)  # fmt: skip
        return pb.RevealPetitionerResponse(
            petitioner=pb.Petitioner(
                name=person.name,
                id_number=person.id_number,
                phone=person.phone,
                address=person.address,
            ),
            reveal_id=reveal_id,
        )

    @staticmethod
    def _event(
        case_id: str,
        reg: Registration,
        ref: str,
        kind: int,
        previous_case_id: str,
        repeat_count: int,
    ) -> ev.CaseEvent:
        return new_event(
            case_id=case_id,
            district_id=reg.district_id,
            producer=SERVICE,
            case_version=1,
            occurred_at=reg.received_at,
            registered=ev.CaseRegistered(
                channel=reg.channel,  # type: ignore[arg-type]
                township_id=reg.township_id,
                village_id=reg.village_id,
                category=reg.category,
                content=reg.content,
                people_count=reg.people_count,
                received_at=to_timestamp(reg.received_at),
                source=reg.source,  # type: ignore[arg-type]
                batch_id=reg.batch_id,
                petitioner_ref=ref,
                kind=kind,  # type: ignore[arg-type]
                previous_case_id=previous_case_id,
                group=reg.group,
                representatives=reg.representatives,
                oral=reg.oral,
                escalated=reg.escalated,
                repeat_count=repeat_count,
            ),
        )


class IntakeServicer(pb_grpc.IntakeServiceServicer):
    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    @rpc(SERVICE)
    async def RevealPetitioner(
        self, request: pb.RevealPetitionerRequest, context: grpc.aio.ServicerContext
    ) -> pb.RevealPetitionerResponse:
        return await self.intake.reveal(request)

    @rpc(SERVICE, OFFICE)
    async def RegisterPetition(
        self, request: pb.RegisterPetitionRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterPetitionResponse:
        return await self.intake.register(request)


async def _setup(rt: Runtime) -> BatchHandler | None:
    vault = IdentityVault.from_settings(rt.settings)
    intake = Intake(rt.store, rt.outbox, rt.directory, vault)
    rt.grpc.add(
        pb_grpc.add_IntakeServiceServicer_to_server,
        IntakeServicer(intake),
        pb.DESCRIPTOR.services_by_name["IntakeService"].full_name,
    )
    return None


SPEC = ServiceSpec(name=SERVICE, consumes=False, setup=_setup)
