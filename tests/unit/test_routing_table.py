"""Routing: the most specific row of the district's table wins."""

from __future__ import annotations

from xinfang.assignment.routing import route
from xinfang.core.districts import RoutingRow

BOTH = RoutingRow("r-both", "u-land-t1", category="land", township_id="t1")
CATEGORY = RoutingRow("r-cat", "u-land", category="land")
TOWNSHIP = RoutingRow("r-town", "u-t1", township_id="t1")
CATCH_ALL = RoutingRow("r-all", "u-office")


def _rule(rows: list[RoutingRow], category: str, township: str) -> str | None:
    row = route(rows, category, township)
    return row.rule_id if row else None


def test_category_and_township_beats_everything() -> None:
    # listed least specific first, so order cannot explain the result
    rows = [CATCH_ALL, TOWNSHIP, CATEGORY, BOTH]
    assert _rule(rows, "land", "t1") == "r-both"


def test_category_beats_township() -> None:
    rows = [CATCH_ALL, TOWNSHIP, CATEGORY]
    assert _rule(rows, "land", "t1") == "r-cat"


def test_township_beats_catch_all() -> None:
    rows = [CATCH_ALL, TOWNSHIP]
    assert _rule(rows, "land", "t1") == "r-town"


def test_catch_all_takes_what_nothing_else_matches() -> None:
    rows = [BOTH, CATEGORY, TOWNSHIP, CATCH_ALL]
    assert _rule(rows, "labour", "t2") == "r-all"


def test_category_row_does_not_match_another_category() -> None:
    rows = [BOTH, CATEGORY, TOWNSHIP, CATCH_ALL]
    assert _rule(rows, "labour", "t1") == "r-town"


def test_township_row_does_not_match_another_township() -> None:
    rows = [BOTH, CATEGORY, TOWNSHIP, CATCH_ALL]
    assert _rule(rows, "land", "t2") == "r-cat"


def test_no_matching_row_gives_none() -> None:
    assert route([BOTH, CATEGORY, TOWNSHIP], "labour", "t2") is None


def test_empty_table_gives_none() -> None:
    assert route([], "land", "t1") is None


def test_route_accepts_any_iterable() -> None:
    row = route(iter([CATCH_ALL, CATEGORY]), "land", "t1")
    assert row is CATEGORY
