"""Quantitative evaluation: scores worked out by hand, ranking, fairness to small
units, and what the district's scoring settings refuse."""

from __future__ import annotations

from typing import Any

import pytest

from xinfang.core.errors import InvalidArgument
from xinfang.supervision.scoring import (
    Caps,
    Score,
    ScoringRules,
    Tally,
    Weights,
    parse_scoring,
    score_all,
)

APPROX = 1e-6


def _by_subject(scores: list[Score]) -> dict[str, Score]:
    return {s.subject: s for s in scores}


def _unit(subject: str, n: int, good: int) -> Tally:
    """``n`` cases, ``good`` of them on time and satisfied; nothing bad."""
    return Tally(subject, "unit", n, good, n, good, n, good)


# --- a district of four units, default weights -----------------------------------
#
# Defaults: weights 20/30/30 (acceptance, resolution, satisfaction), 10 (backflow),
# 5/5/5 (escalated, overdue days, orders): sum 105. prior_strength k = 5,
# min_volume 5. Caps: backflow 1, escalated 1/case, overdue days 30/case, orders 1/case.

FOUR = [
    #     subject kind  acc on_t  res on_t rated sat basic back esc overdue orders
    Tally("a", "unit", 10, 9, 10, 10, 10, 8, 2, 0, 0, 0, 0),
    Tally("b", "unit", 20, 16, 20, 15, 20, 10, 6, 2, 1, 40, 2),
    Tally("c", "unit", 8, 5, 8, 3, 8, 3, 2, 2, 3, 80, 2),
    Tally("d", "unit", 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0),
]
# District (pooled over all four, ranked or not):
#   acceptance   (9+16+5+2)/(10+20+8+2)     = 32/40  = 0.8
#   resolution   (10+15+3+2)/40             = 30/40  = 0.75
#   satisfaction (9 + 13 + 4 + 2)/40        = 28/40  = 0.7   (x = sat + 0.5*basic)
#   backflow     (0+2+2+0)/40 resolved      = 0.1
#   volume = max(acc, res): 10, 20, 8, 2    -> 40
#   escalated    4/40 = 0.1 per case; overdue 120/40 = 3 days per case; orders 4/40 = 0.1
# k*p: acceptance 4, resolution 3.75, satisfaction 3.5, backflow 0.5, escalated 0.5,
#      overdue 15, orders 0.5.


def test_four_units_scored_by_hand() -> None:
    scores = score_all(FOUR, ScoringRules())
    # a: n = 10 everywhere, so every smoothed rate is (x + k*p) / 15
    #   acceptance (9+4)/15 = 13/15;  resolution (10+3.75)/15;  satisfaction (9+3.5)/15
    #   backflow 0.5/15 = 1/30 -> goodness 29/30; escalated 0.5/15 -> 29/30;
    #   overdue 15/15 = 1 day/case -> 1 - 1/30 = 29/30; orders 0.5/15 -> 29/30
    #   20*13/15 + 30*13.75/15 + 30*12.5/15 + 10*29/30 + 15*29/30
    #   = 17.3333.. + 27.5 + 25 + 9.6666.. + 14.5 = 94
    a = 94 / 105 * 100  # 89.5238...
    # b: n = 20, denominators 25
    #   acceptance (16+4)/25 = 0.8; resolution (15+3.75)/25 = 0.75;
    #   satisfaction (13+3.5)/25 = 0.66; backflow (2+0.5)/25 = 0.1 -> 0.9;
    #   escalated (1+0.5)/25 = 0.06 -> 0.94; overdue (40+15)/25 = 2.2 -> 1 - 2.2/30;
    #   orders (2+0.5)/25 = 0.1 -> 0.9
    b = 20 * 0.8 + 30 * 0.75 + 30 * 0.66 + 10 * 0.9 + 5 * 0.94 + 5 * (1 - 2.2 / 30) + 5 * 0.9
    b = b / 105 * 100  # 81.1333.. / 105 -> 77.2698...
    # c: n = 8, denominators 13
    #   acceptance (5+4)/13 = 9/13; resolution (3+3.75)/13 = 6.75/13;
    #   satisfaction (4+3.5)/13 = 7.5/13; backflow (2+0.5)/13 -> 10.5/13;
    #   escalated (3+0.5)/13 -> 9.5/13; overdue (80+15)/13 = 95/13 per case
    #   -> 1 - 95/390 = 59/78; orders (2+0.5)/13 -> 10.5/13
    c = (180 + 202.5 + 225 + 105 + 47.5 + 52.5) / 13 + 5 * 59 / 78
    c = c / 105 * 100  # 66.2820.. / 105 -> 63.1257...
    # d: n = 2 (< min_volume 5), denominators 7
    #   acceptance (2+4)/7 = 6/7; resolution (2+3.75)/7; satisfaction (2+3.5)/7;
    #   backflow, escalated, orders 0.5/7 -> 6.5/7; overdue 15/7 per case
    #   -> 1 - (15/7)/30 = 6.5/7
    d = (20 * 6 + 30 * 5.75 + 30 * 5.5 + 10 * 6.5 + 15 * 6.5) / 7  # 620/7
    d = d / 105 * 100  # 84.3537...

    assert [s.subject for s in scores] == ["a", "b", "c", "d"]
    by = _by_subject(scores)
    assert by["a"].score == pytest.approx(a, abs=APPROX)
    assert by["b"].score == pytest.approx(b, abs=APPROX)
    assert by["c"].score == pytest.approx(c, abs=APPROX)
    assert by["d"].score == pytest.approx(d, abs=APPROX)
    assert a == pytest.approx(89.523810, abs=APPROX)
    assert b == pytest.approx(77.269841, abs=APPROX)
    assert c == pytest.approx(63.125763, abs=APPROX)
    assert d == pytest.approx(84.353741, abs=APPROX)

    assert [(s.rank, s.ranked, s.bottom) for s in scores] == [
        (1, True, False),
        (2, True, False),
        (3, True, True),
        (None, False, False),  # d scores above c but is too small to rank
    ]
    assert [s.volume for s in scores] == [10, 20, 8, 2]
    assert all(s.kind == "unit" for s in scores)


def test_components_are_goodness_after_smoothing() -> None:
    a = _by_subject(score_all(FOUR, ScoringRules()))["a"]
    assert a.components == pytest.approx(
        {
            "on_time_acceptance": 13 / 15,
            "on_time_resolution": 13.75 / 15,
            "satisfaction": 12.5 / 15,
            "backflow": 29 / 30,
            "escalated": 29 / 30,
            "overdue_days": 29 / 30,
            "supervision_orders": 29 / 30,
        },
        abs=APPROX,
    )


def test_leaders_are_scored_the_same_way() -> None:
    leaders = [Tally(t.subject, "leader", *_counts(t)) for t in FOUR]
    assert [s.score for s in score_all(leaders, ScoringRules())] == pytest.approx(
        [s.score for s in score_all(FOUR, ScoringRules())], abs=APPROX
    )
    assert {s.kind for s in score_all(leaders, ScoringRules())} == {"leader"}


def _counts(t: Tally) -> tuple[int, ...]:
    return (
        t.accepted,
        t.accepted_on_time,
        t.resolved,
        t.resolved_on_time,
        t.rated,
        t.satisfied,
        t.basically_satisfied,
        t.backflow,
        t.escalated_petitions,
        t.overdue_days,
        t.supervision_orders,
    )


# --- weights ---------------------------------------------------------------------


def test_weights_change_the_order() -> None:
    # prior_strength 0: raw rates, so the arithmetic is plain. No penalties anywhere,
    # so the four penalty terms have goodness 1 for both.
    fast = Tally("fast", "unit", 10, 10, 10, 10, 10, 2)  # on time, 20% satisfied
    liked = Tally("liked", "unit", 10, 5, 10, 5, 10, 10)  # half on time, all satisfied
    tallies = [fast, liked]

    default = _by_subject(score_all(tallies, ScoringRules(Weights(), 0, 0.0)))
    # fast:  (20*1 + 30*1 + 30*0.2 + 10 + 15) / 105 = 81/105
    # liked: (20*0.5 + 30*0.5 + 30*1 + 10 + 15) / 105 = 80/105
    assert default["fast"].score == pytest.approx(81 / 105 * 100, abs=APPROX)
    assert default["liked"].score == pytest.approx(80 / 105 * 100, abs=APPROX)
    assert (default["fast"].rank, default["liked"].rank) == (1, 2)

    heavy = _by_subject(score_all(tallies, ScoringRules(Weights(satisfaction=60), 0, 0.0)))
    # sum of weights 135
    # fast:  (20 + 30 + 60*0.2 + 25) / 135 = 87/135
    # liked: (10 + 15 + 60 + 25) / 135     = 110/135
    assert heavy["fast"].score == pytest.approx(87 / 135 * 100, abs=APPROX)
    assert heavy["liked"].score == pytest.approx(110 / 135 * 100, abs=APPROX)
    assert (heavy["liked"].rank, heavy["fast"].rank) == (1, 2)


# --- fairness to small units -----------------------------------------------------

SMALL_BIG = [
    Tally("small", "unit", 2, 2, 2, 2, 2, 2),  # 2 cases, all perfect
    Tally("big", "unit", 40, 38, 40, 38, 40, 38, 0, 2),  # 40 cases, 95%, 2 backflow
    Tally("weak", "unit", 58, 40, 58, 40, 58, 30, 20, 8, 10, 300, 10),
]
# District: acceptance (2+38+40)/100 = 0.8; resolution 0.8; satisfaction
# (2 + 38 + 30 + 0.5*20)/100 = 0.8; backflow 10/100 = 0.1; volume 100:
# escalated 0.1/case, overdue 3 days/case, orders 0.1/case.
# k*p = 4, 4, 4, 0.5, 0.5, 15, 0.5.
# big (denominators 45): rates (38+4)/45 = 42/45; backflow 2.5/45 -> 42.5/45;
#   escalated and orders 0.5/45 -> 44.5/45; overdue 15/45 = 1/3 -> 1 - 1/90 = 44.5/45
BIG = (80 * 42 + 10 * 42.5 + 15 * 44.5) / 45 / 105 * 100  # 4452.5/4725 -> 94.2328...
# small (denominators 7): rates (2+4)/7 = 6/7; backflow, escalated, orders 0.5/7 ->
#   6.5/7; overdue 15/7 per case -> 1 - 0.5/7 = 6.5/7
SMALL = (80 * 6 + 25 * 6.5) / 7 / 105 * 100  # 642.5/735 -> 87.4149...


def test_small_perfect_unit_is_not_ranked_above_a_big_good_one() -> None:
    scores = score_all(SMALL_BIG, ScoringRules(min_volume=5))
    assert [s.subject for s in scores] == ["big", "weak", "small"]
    by = _by_subject(scores)
    assert (by["big"].rank, by["big"].bottom) == (1, False)
    assert (by["weak"].rank, by["weak"].bottom) == (2, True)
    assert (by["small"].ranked, by["small"].rank, by["small"].bottom) == (False, None, False)
    assert by["small"].score == pytest.approx(SMALL, abs=APPROX)  # scored all the same


def test_without_min_volume_small_unit_is_pulled_towards_the_district() -> None:
    scores = score_all(SMALL_BIG, ScoringRules(min_volume=0))
    by = _by_subject(scores)
    assert by["big"].score == pytest.approx(94.232804, abs=APPROX)
    assert by["small"].score == pytest.approx(87.414966, abs=APPROX)
    assert by["big"].score == pytest.approx(BIG, abs=APPROX)
    assert by["small"].score == pytest.approx(SMALL, abs=APPROX)
    # 100% on two cases counts as 6/7, not 1: the pull towards the 0.8 district rate
    assert by["small"].components["satisfaction"] == pytest.approx(6 / 7, abs=APPROX)
    assert [(s.subject, s.rank) for s in scores] == [("big", 1), ("small", 2), ("weak", 3)]


def test_zero_denominator_uses_the_district_rate() -> None:
    rated = Tally("rated", "unit", 10, 10, 10, 10, 10, 10)
    harsh = Tally("harsh", "unit", 10, 10, 10, 10, 10, 6)
    unrated = Tally("unrated", "unit", 10, 10, 10, 10, 0, 0)
    # district satisfaction (10 + 6) / 20 = 0.8; nobody unrated is a zero division
    for k in (5.0, 0.0):
        by = _by_subject(score_all([rated, harsh, unrated], ScoringRules(prior_strength=k)))
        assert by["unrated"].components["satisfaction"] == pytest.approx(0.8, abs=APPROX)


def test_a_measure_nobody_had_costs_nobody() -> None:
    # no ratings in the whole district: satisfaction counts as met for all
    scores = score_all(
        [Tally("x", "unit", 5, 5, 5, 5), Tally("y", "unit", 5, 5, 5, 5)], ScoringRules()
    )
    assert [s.components["satisfaction"] for s in scores] == [1.0, 1.0]
    assert [s.score for s in scores] == pytest.approx([100.0, 100.0], abs=APPROX)


# --- ties and the bottom flag ----------------------------------------------------


def test_ties_share_a_rank_and_the_next_rank_is_skipped() -> None:
    tallies = [_unit("u2", 10, 9), _unit("u1", 10, 9), _unit("u3", 10, 5)]
    scores = score_all(tallies, ScoringRules())
    assert [(s.subject, s.rank, s.bottom) for s in scores] == [
        ("u1", 1, False),  # equal scores list by subject
        ("u2", 1, False),
        ("u3", 3, True),
    ]
    assert scores[0].score == scores[1].score


def test_every_tied_last_place_is_bottom_and_unranked_never_is() -> None:
    tallies = [
        _unit("top", 10, 10),
        _unit("low2", 10, 5),
        _unit("low1", 10, 5),
        _unit("tiny", 2, 0),  # worst score of all, but too small to rank
    ]
    scores = score_all(tallies, ScoringRules())
    assert [(s.subject, s.rank, s.bottom) for s in scores] == [
        ("top", 1, False),
        ("low1", 2, True),
        ("low2", 2, True),
        ("tiny", None, False),
    ]
    assert scores[-1].score < scores[-2].score


def test_no_bottom_when_last_place_is_also_first() -> None:
    alone = score_all([_unit("only", 10, 5)], ScoringRules())
    assert [(s.rank, s.bottom) for s in alone] == [(1, False)]
    tied = score_all([_unit("x", 10, 5), _unit("y", 10, 5)], ScoringRules())
    assert [(s.rank, s.bottom) for s in tied] == [(1, False), (1, False)]


def test_empty_tallies_score_nothing() -> None:
    assert score_all([], ScoringRules()) == []


# --- refused tallies -------------------------------------------------------------


def test_one_kind_per_call() -> None:
    with pytest.raises(InvalidArgument) as info:
        score_all([_unit("u1", 5, 5), Tally("l1", "leader", 5, 5)], ScoringRules())
    assert info.value.field == "tallies.kind"


def test_a_subject_counted_twice_is_refused() -> None:
    with pytest.raises(InvalidArgument) as info:
        score_all([_unit("u1", 5, 5), _unit("u1", 5, 4)], ScoringRules())
    assert info.value.field == "tallies.subject"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "township"}, "tally['u1'].kind"),
        ({"accepted": -1}, "tally['u1'].accepted"),
        ({"accepted": 2, "accepted_on_time": 3}, "tally['u1'].accepted_on_time"),
        ({"resolved": 2, "resolved_on_time": 3}, "tally['u1'].resolved_on_time"),
        ({"rated": 2, "satisfied": 2, "basically_satisfied": 1}, "tally['u1'].satisfied"),
    ],
)
def test_impossible_tallies_are_refused(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"subject": "u1", "kind": "unit", **kwargs}
    with pytest.raises(InvalidArgument) as info:
        Tally(**args)
    assert info.value.field == field


# --- parse_scoring ---------------------------------------------------------------


def _refused_field(doc: Any) -> str:
    with pytest.raises(InvalidArgument) as info:
        parse_scoring(doc)
    return info.value.field


def test_empty_section_gives_the_defaults() -> None:
    rules = parse_scoring({})
    assert rules == ScoringRules(Weights(), 5, 5.0, Caps())
    assert sum(rules.weights.as_dict().values()) == 105


def test_settings_are_read() -> None:
    rules = parse_scoring(
        {
            "weights": {"satisfaction": 40, "escalated": 0},
            "min_volume": 3,
            "prior_strength": 2.5,
            "caps": {"overdue_days": 15},
        }
    )
    assert rules.weights == Weights(satisfaction=40, escalated=0)
    assert (rules.min_volume, rules.prior_strength) == (3, 2.5)
    assert rules.caps == Caps(overdue_days=15)


def test_negative_weight_is_refused_by_name() -> None:
    assert _refused_field({"weights": {"satisfaction": -1}}) == "scoring.weights.satisfaction"


def test_all_weights_zero_is_refused() -> None:
    zero = dict.fromkeys(Weights().as_dict(), 0)
    assert _refused_field({"weights": zero}) == "scoring.weights"
    with pytest.raises(InvalidArgument):
        ScoringRules(Weights(**zero))


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"min_volume": -1}, "scoring.min_volume"),
        ({"min_volume": 2.5}, "scoring.min_volume"),
        ({"prior_strength": -0.1}, "scoring.prior_strength"),
        ({"prior_strength": "5"}, "scoring.prior_strength"),
        ({"weights": {"backflow": True}}, "scoring.weights.backflow"),
        ({"weights": {"satisfacton": 30}}, "scoring.weights.satisfacton"),
        ({"weights": [20, 30]}, "scoring.weights"),
        ({"caps": {"overdue_days": 0}}, "scoring.caps.overdue_days"),
        ({"weight": {}}, "scoring.weight"),
        ([], "scoring"),
    ],
)
def test_bad_settings_are_refused(doc: Any, field: str) -> None:
    assert _refused_field(doc) == field
