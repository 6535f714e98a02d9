"""Supervision's queries and rankings: a case's clocks, and the monthly
bulletin and quarterly ranking scored from the tallies (``scoring.py``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core import shards
from xinfang.core.codec import to_timestamp
from xinfang.core.errors import InvalidArgument, NotFound
from xinfang.core.mongo import upsert_by_id
from xinfang.core.periods import months_of, parse_period
from xinfang.supervision import scoring
from xinfang.supervision.clocks import clock_doc_id
from xinfang.supervision.docs import TALLIES, Documents
from xinfang.supervision.tallies import TALLY_FIELDS, tally_doc_id
from xinfang.supervision.v1 import supervision_pb2 as pb

__all__ = ["Queries"]


class Queries(Documents):
    async def case_clocks(self, district_id: str, case_id: str) -> pb.CaseClocks:
        if not district_id:
            raise InvalidArgument("district_id", "is required")
        if not case_id:
            raise InvalidArgument("case_id", "is required")
        out = pb.CaseClocks(case_id=case_id)
        for kind in ev.ClockKind.values():
            if kind == ev.CLOCK_KIND_UNSPECIFIED:
                continue
            c = await self.clocks.find_one({"_id": clock_doc_id(case_id, kind)})
            if c is None or c["district_id"] != district_id:
                continue
            out.clocks.append(
                pb.Clock(
                    kind=c["kind"],
                    started_at=to_timestamp(c["started_at"]),
                    due_at=to_timestamp(c["due_at"]),
                    open=c["open"],
                    breached=c.get("breached", False),
                    warned=c.get("warned", False),
                    paused=c.get("paused", False),
                    extra_days=c.get("extra_days", 0),
                    estimated=c.get("estimated", False),
                    unit_id=c.get("unit_id", ""),
                )
            )
        return out

    async def publish_ranking(self, district_id: str, period: str) -> list[pb.Ranking]:
        months = _months(period)
        district = await self.directory.get(district_id)
        rules = scoring.parse_scoring(district.scoring)
        subjects = {
            "unit": [u for u, x in district.units.items() if x.kind != "external"],
            "leader": list(district.leaders),
        }
        # every subject's months at once, each month the sum of its shards
        docs = await shards.read(
            self.store,
            TALLIES,
            [tally_doc_id(district_id, m, k, s) for k, ids in subjects.items() for s in ids
             for m in months],
            self.partitions,
        )  # fmt: skip
        out = []
        for kind, ids in subjects.items():
            tallies = []
            for subject in ids:
                total = dict.fromkeys(TALLY_FIELDS, 0)
                for m in months:
                    doc = docs.get(tally_doc_id(district_id, m, kind, subject))
                    for f in TALLY_FIELDS:
                        total[f] += int((doc or {}).get(f, 0))
                tallies.append(scoring.Tally(subject=subject, kind=kind, **total))
            scores = scoring.score_all(tallies, rules)
            ranking = pb.Ranking(
                district_id=district_id,
                period=period,
                kind=kind,
                ranking_id=str(uuid.uuid4()),
                published_at=to_timestamp(datetime.now(UTC)),
                rows=[
                    pb.ScoreRow(
                        subject=s.subject,
                        score=s.score,
                        volume=s.volume,
                        ranked=s.ranked,
                        rank=s.rank or 0,
                        bottom=s.bottom,
                        components=s.components,
                    )
                    for s in scores
                ],
            )
            await upsert_by_id(
                self.rankings,
                f"{district_id}:{period}:{kind}",
                {"$set": {"district_id": district_id, "bytes": ranking.SerializeToString()}},
            )
            if self.producer is not None:
                await self.producer.send_and_wait(
                    self.rankings_topic, value=ranking.SerializeToString(), key=district_id.encode()
                )
            out.append(ranking)
        return out

    async def get_ranking(self, district_id: str, period: str, kind: str) -> pb.Ranking:
        _months(period)
        if kind not in ("unit", "leader"):
            raise InvalidArgument("kind", "unit or leader")
        doc = await self.rankings.find_one({"_id": f"{district_id}:{period}:{kind}"})
        if doc is None or doc["district_id"] != district_id:
            raise NotFound(f"period: no {kind} ranking published for {district_id} {period}")
        return pb.Ranking.FromString(doc["bytes"])


def _months(period: str) -> list[str]:
    """The months of a bulletin's or ranking's period: ``2026-03`` -> itself,
    ``2026-Q1`` -> three. A year is not a supervision period."""
    try:
        ok = parse_period(period) == period and len(period) == 7
    except ValueError:
        ok = False
    if not ok:
        raise InvalidArgument("period", "a month YYYY-MM or a quarter YYYY-Qn")
    return months_of(period)
