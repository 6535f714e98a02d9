"""Quantitative evaluation (量化考评) of packaged leaders and their responsible
units, free of I/O, so the monthly bulletin and the quarterly ranking
(月通报季排名) are reproducible from the same tallies by anyone who checks them.

The last place in the ranking has to answer for it, so the score must not
punish a unit for being small or reward it for being lucky. A unit with two
cases that both went well is not shown to be better than one with forty cases
at 95%; it has just not been tested yet.

Method (empirical Bayes, towards the district):

* Rates: on-time acceptance (``accepted_on_time / accepted``), on-time
  resolution (``resolved_on_time / resolved``), satisfaction
  (``(satisfied + 0.5 * basically_satisfied) / rated``) and backflow
  (``backflow / resolved``).
* Per-case penalties: escalated petitions, overdue days and supervision orders,
  each divided by the subject's volume, ``max(accepted, resolved)``.
* Every one of these is smoothed towards the pooled district rate ``p`` of the
  same kind of subject (all units, or all leaders, in the tallies given, ranked
  or not): ``smoothed = (x + k * p) / (n + k)`` with ``k = prior_strength``.
  ``k`` is a number of imaginary district-average cases added to each subject:
  they barely move a subject with forty cases and dominate one with two. A
  subject with ``n == 0`` gets ``p`` itself. If nobody in the district has a
  denominator for a term, ``p`` is the ideal value (rate 1, penalty 0): a
  measure nobody was exposed to cannot tell anyone apart, and should not drag
  everyone's score down.
* Goodness in 0..1: a smoothed good rate is its own goodness; a penalty becomes
  ``1 - min(1, rate / cap)``. Default caps (``Caps``): backflow rate 1, escalated
  petitions per case 1, overdue days per case 30 (a month late on every case
  counts as the worst), supervision orders per case 1.
* Score = ``100 * sum(weight * goodness) / sum(weight)``. Dividing by the sum
  keeps scores in 0..100 however a district sets its weights.

Subjects whose volume is below ``min_volume`` still get a score (the bulletin
shows it), but no rank and never the bottom flag; they are listed after the
ranked ones. Ties share a rank (competition ranking 1, 1, 3); the bottom flag
goes to every subject sharing the last place, unless that place is also the
first (a sole or all-tied field has nobody worse than the rest).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from xinfang.core.errors import InvalidArgument

__all__ = [
    "KINDS",
    "Caps",
    "Score",
    "ScoringRules",
    "Tally",
    "Weights",
    "parse_scoring",
    "score_all",
]

KINDS = ("unit", "leader")

# Scores closer than this are the same score: float noise from summing the same
# value in a different order must not split a tie someone has to answer for.
_TIE = 1e-9


@dataclass(frozen=True)
class Tally:
    """What one subject did in a period, as counts; refuses impossible counts
    so a projection bug shows up here rather than as a wrong ranking."""

    subject: str  # unit id or leader id
    kind: str  # "unit" | "leader"
    accepted: int = 0  # came to acceptance (accepted or objected) in the period
    accepted_on_time: int = 0  # ... within the objection window
    resolved: int = 0  # handling clocks stopped (replies) in the period
    resolved_on_time: int = 0
    rated: int = 0  # satisfaction ratings received
    satisfied: int = 0  # 满意
    basically_satisfied: int = 0  # 基本满意
    backflow: int = 0  # resolved cases that came back (倒流)
    escalated_petitions: int = 0  # 越级访 from the subject's area / cases
    overdue_days: int = 0  # days late, summed over late and still-overdue clocks
    supervision_orders: int = 0  # 督办 received

    def __post_init__(self) -> None:
        where = f"tally[{self.subject!r}]"
        if not isinstance(self.subject, str) or not self.subject:
            raise InvalidArgument(f"{where}.subject", "is required")
        if self.kind not in KINDS:
            raise InvalidArgument(f"{where}.kind", f"is one of {', '.join(KINDS)}")
        for f in fields(self):
            if f.name in ("subject", "kind"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgument(f"{where}.{f.name}", "must be a whole number >= 0")
        if self.accepted_on_time > self.accepted:
            raise InvalidArgument(f"{where}.accepted_on_time", "exceeds accepted")
        if self.resolved_on_time > self.resolved:
            raise InvalidArgument(f"{where}.resolved_on_time", "exceeds resolved")
        if self.satisfied + self.basically_satisfied > self.rated:
            raise InvalidArgument(f"{where}.satisfied", "satisfied + basically_satisfied > rated")

    @property
    def volume(self) -> int:
        """The subject's case load; the larger count, because a unit that
        received cases but replied to none has still been tested."""
        return max(self.accepted, self.resolved)


@dataclass(frozen=True)
class Weights:
    """A district setting: how much each measure counts. The defaults (20, 30,
    30 for the good rates; 10, 5, 5, 5 for the penalties) put resolution and
    satisfaction first, as the public judges a unit by those. They add up to
    105, not 100; that is harmless, as the score divides by the sum."""

    on_time_acceptance: float = 20
    on_time_resolution: float = 30
    satisfaction: float = 30
    backflow: float = 10  # penalty, on the backflow rate
    escalated: float = 5  # penalty, per case
    overdue_days: float = 5  # penalty, per case
    supervision_orders: float = 5  # penalty, per case

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class Caps:
    """Where a penalty rate reaches zero goodness; beyond it a subject is no
    worse, so one disastrous unit cannot stretch the scale for everyone."""

    backflow: float = 1.0  # backflow / resolved
    escalated: float = 1.0  # escalated petitions per case
    overdue_days: float = 30.0  # overdue days per case
    supervision_orders: float = 1.0  # supervision orders per case

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class ScoringRules:
    """Validated on construction, so rules built in code are held to the same
    bounds as rules parsed from a district document."""

    weights: Weights = field(default_factory=Weights)
    min_volume: int = 5
    prior_strength: float = 5.0
    caps: Caps = field(default_factory=Caps)

    def __post_init__(self) -> None:
        weights = self.weights.as_dict()
        for name, w in weights.items():
            if not math.isfinite(w) or w < 0:
                raise InvalidArgument(f"scoring.weights.{name}", "must be a number >= 0")
        if sum(weights.values()) <= 0:
            raise InvalidArgument("scoring.weights", "at least one weight must be above 0")
        for name, cap in self.caps.as_dict().items():
            if not math.isfinite(cap) or cap <= 0:
                raise InvalidArgument(f"scoring.caps.{name}", "must be a number > 0")
        mv = self.min_volume
        if isinstance(mv, bool) or not isinstance(mv, int) or mv < 0:
            raise InvalidArgument("scoring.min_volume", "must be a whole number >= 0")
        k = self.prior_strength
        if not math.isfinite(k) or k < 0:
            raise InvalidArgument("scoring.prior_strength", "must be a number >= 0")


@dataclass(frozen=True)
class Score:
    subject: str
    kind: str
    score: float  # 0..100
    volume: int
    ranked: bool
    rank: int | None
    bottom: bool
    components: dict[str, float]  # goodness 0..1 per weight name, after smoothing


_RULES_KEYS = frozenset({"weights", "min_volume", "prior_strength", "caps"})


def parse_scoring(doc: Mapping[str, Any]) -> ScoringRules:
    """Read a district's ``scoring`` section. Unknown keys are refused, because
    a misspelt weight would otherwise fall back to its default unnoticed."""
    if not isinstance(doc, Mapping):
        raise InvalidArgument("scoring", "must be an object")
    for key in doc:
        if key not in _RULES_KEYS:
            raise InvalidArgument(f"scoring.{key}", "unknown setting")
    weights = Weights(**_parse_numbers(doc.get("weights"), "scoring.weights", Weights().as_dict()))
    caps = Caps(**_parse_numbers(doc.get("caps"), "scoring.caps", Caps().as_dict()))
    min_volume = 5
    if doc.get("min_volume") is not None:
        mv = _number(doc["min_volume"], "scoring.min_volume")
        if not mv.is_integer():
            raise InvalidArgument("scoring.min_volume", "must be a whole number >= 0")
        min_volume = int(mv)
    prior_strength = 5.0
    if doc.get("prior_strength") is not None:
        prior_strength = _number(doc["prior_strength"], "scoring.prior_strength")
    return ScoringRules(weights, min_volume, prior_strength, caps)


def _parse_numbers(section: Any, where: str, known: dict[str, float]) -> dict[str, float]:
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise InvalidArgument(where, "must be an object")
    out: dict[str, float] = {}
    for name, value in section.items():
        if name not in known:
            raise InvalidArgument(f"{where}.{name}", "unknown setting")
        out[name] = _number(value, f"{where}.{name}")
    return out


def _number(value: Any, where: str) -> float:
    # bool is an int in Python; ``true`` as a weight is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(where, f"must be a number, not {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise InvalidArgument(where, "must be a finite number")
    return out


@dataclass(frozen=True)
class _Term:
    name: str
    x: Callable[[Tally], float]
    n: Callable[[Tally], int]
    penalty: bool


_TERMS = (
    _Term("on_time_acceptance", lambda t: t.accepted_on_time, lambda t: t.accepted, False),
    _Term("on_time_resolution", lambda t: t.resolved_on_time, lambda t: t.resolved, False),
    _Term(
        "satisfaction",
        lambda t: t.satisfied + 0.5 * t.basically_satisfied,
        lambda t: t.rated,
        False,
    ),
    _Term("backflow", lambda t: t.backflow, lambda t: t.resolved, True),
    _Term("escalated", lambda t: t.escalated_petitions, lambda t: t.volume, True),
    _Term("overdue_days", lambda t: t.overdue_days, lambda t: t.volume, True),
    _Term("supervision_orders", lambda t: t.supervision_orders, lambda t: t.volume, True),
)


def score_all(tallies: Sequence[Tally], rules: ScoringRules) -> list[Score]:
    """Score and rank one kind of subject. Units and leaders are not ranked
    together (a leader's tally overlaps his units'), hence one kind per call;
    the district rates used as priors come from exactly these tallies."""
    if not tallies:
        return []
    kind = tallies[0].kind
    seen: set[str] = set()
    for t in tallies:
        if t.kind != kind:
            raise InvalidArgument("tallies.kind", f"one kind per call, got {kind} and {t.kind}")
        if t.subject in seen:
            raise InvalidArgument("tallies.subject", f"{t.subject!r} appears twice")
        seen.add(t.subject)

    priors: dict[str, float] = {}
    for term in _TERMS:
        x_sum = sum(term.x(t) for t in tallies)
        n_sum = sum(term.n(t) for t in tallies)
        if n_sum > 0:
            priors[term.name] = x_sum / n_sum
        else:
            priors[term.name] = 0.0 if term.penalty else 1.0

    weights = rules.weights.as_dict()
    caps = rules.caps.as_dict()
    total_weight = sum(weights.values())
    k = rules.prior_strength

    raw: list[tuple[Tally, float, dict[str, float]]] = []
    for t in tallies:
        components: dict[str, float] = {}
        for term in _TERMS:
            n = term.n(t)
            p = priors[term.name]
            rate = p if n == 0 else (term.x(t) + k * p) / (n + k)
            if term.penalty:
                components[term.name] = 1.0 - min(1.0, rate / caps[term.name])
            else:
                components[term.name] = min(1.0, rate)
        score = 100.0 * sum(weights[c] * g for c, g in components.items()) / total_weight
        raw.append((t, score, components))

    def by_score(item: tuple[Tally, float, dict[str, float]]) -> tuple[float, str]:
        return (-item[1], item[0].subject)

    ranked = sorted((r for r in raw if r[0].volume >= rules.min_volume), key=by_score)
    unranked = sorted((r for r in raw if r[0].volume < rules.min_volume), key=by_score)

    # Competition ranking over groups of equal scores; within a group, by subject,
    # so equal scores list the same way whatever their float noise.
    groups: list[list[tuple[Tally, float, dict[str, float]]]] = []
    for item in ranked:
        if groups and abs(groups[-1][0][1] - item[1]) <= _TIE:
            groups[-1].append(item)
        else:
            groups.append([item])
    last_rank = len(ranked) - len(groups[-1]) + 1 if groups else 0
    out: list[Score] = []
    position = 1
    for group in groups:
        for t, score, components in sorted(group, key=lambda r: r[0].subject):
            bottom = position == last_rank and last_rank > 1
            out.append(Score(t.subject, kind, score, t.volume, True, position, bottom, components))
        position += len(group)
    for t, score, components in unranked:
        out.append(Score(t.subject, kind, score, t.volume, False, None, False, components))
    return out
