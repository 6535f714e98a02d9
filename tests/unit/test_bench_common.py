"""The benchmark's own arithmetic: reading the store-call counter from a
/metrics text, calls per case, percentiles and the summary's n/a handling.
No timing is asserted; these check that figures are counted right."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench_common

# what a service's /metrics looks like with the counter (prometheus_client's
# own rendering: HELP/TYPE without _total, a _created gauge beside it), plus
# neighbours whose names start the same way
EXPOSITION = """\
# HELP xinfang_consumer_events_total Case events handled by a consumer
# TYPE xinfang_consumer_events_total counter
xinfang_consumer_events_total{outcome="applied",payload="registered",service="assignment"} 300.0
# HELP xinfang_store_calls_total Calls to the store adapter, by operation
# TYPE xinfang_store_calls_total counter
xinfang_store_calls_total{op="get",service="assignment"} 1200.0
xinfang_store_calls_total{op="write",service="assignment"} 900.0
xinfang_store_calls_total{op="insert",service="assignment"} 300.0
xinfang_store_calls_total{op="scan",service="assignment"} 12.0
# HELP xinfang_store_calls_created Calls to the store adapter, by operation
# TYPE xinfang_store_calls_created gauge
xinfang_store_calls_created{op="get",service="assignment"} 1.7646e+09
xinfang_store_calls_created{op="write",service="assignment"} 1.7646e+09
# HELP xinfang_store_calls_total_bytes not the counter
# TYPE xinfang_store_calls_total_bytes gauge
xinfang_store_calls_total_bytes{service="assignment"} 99999.0
"""

WITHOUT = """\
# HELP xinfang_grpc_requests_total gRPC requests by method and status code
# TYPE xinfang_grpc_requests_total counter
xinfang_grpc_requests_total{code="OK",method="RegisterPetition",service="intake"} 300.0
"""


def test_the_counter_is_read_by_service_and_op() -> None:
    calls = bench_common.store_calls(EXPOSITION)
    assert calls == {
        ("assignment", "get"): 1200.0,
        ("assignment", "write"): 900.0,
        ("assignment", "insert"): 300.0,
        ("assignment", "scan"): 12.0,
    }


def test_the_counter_as_prometheus_client_renders_it() -> None:
    """The same counter as a service would declare it, rendered by the library."""
    registry = CollectorRegistry()
    calls = Counter(
        "xinfang_store_calls_total", "store calls", ["service", "op"], registry=registry
    )
    text = generate_latest(registry).decode()
    assert bench_common.store_calls(text) == {}  # declared, not yet used
    calls.labels("reporting", "get").inc(3)
    calls.labels("reporting", "write").inc()
    text = generate_latest(registry).decode()
    assert bench_common.store_calls(text) == {
        ("reporting", "get"): 3.0,
        ("reporting", "write"): 1.0,
    }


def test_no_counter_is_not_zero_calls() -> None:
    assert bench_common.store_calls(WITHOUT) is None
    assert bench_common.store_calls("") is None


def test_an_exported_counter_without_samples_yet_is_zero() -> None:
    text = "# HELP xinfang_store_calls_total x\n# TYPE xinfang_store_calls_total counter\n"
    assert bench_common.store_calls(text) == {}


def test_an_untyped_counter_is_read_too() -> None:
    text = 'xinfang_store_calls_total{op="delete",service="intake"} 7\n'
    assert bench_common.store_calls(text) == {("intake", "delete"): 7.0}


def test_calls_per_case_is_the_difference_over_cases() -> None:
    before = {"assignment": EXPOSITION.replace("1200.0", "200.0"), "intake": WITHOUT}
    after = {"assignment": EXPOSITION, "intake": WITHOUT}
    per = bench_common.calls_per_case(before, after, cases=100)
    assert per["assignment"] == pytest.approx(10.0)  # 1,000 more gets over 100 cases
    assert per["intake"] is None  # not exported
    assert per["supervision"] is None  # did not answer
    # a counter that appeared between the scrapes counts from zero
    first = bench_common.calls_per_case({}, after, cases=2412)
    assert first["assignment"] == pytest.approx(1.0)


def test_calls_by_op_splits_the_difference() -> None:
    before = {"assignment": EXPOSITION.replace("1200.0", "200.0").replace("900.0", "850.0")}
    after = {"assignment": EXPOSITION, "intake": WITHOUT}
    per = bench_common.calls_by_op(before, after, cases=100)
    assert per == {
        "assignment": {"get": 10.0, "insert": 0.0, "scan": 0.0, "write": 0.5},
    }


def test_pct_is_nearest_rank() -> None:
    values = [float(x) for x in range(1, 101)]
    assert bench_common.pct(values, 50) == 51.0
    assert bench_common.pct(values, 99) == 99.0
    assert bench_common.pct(values, 100) == 100.0
    assert math.isnan(bench_common.pct([], 99))


def test_summary_shows_targets_and_na(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    bench_common.save_section(
        "pipeline",
        {
            "cases": 5000,
            "cases_per_s": 160.0,
            "store_calls_per_case": {
                "intake": 3.0,
                "assignment": 4.0,
                "supervision": 3.0,
                "reporting": None,
            },
            "steady": {"rate": 50, "p50_ms": 80.0, "p99_ms": 1500.0, "max_ms": 2000.0},
            "rebuild_events_per_s": 4000.0,
        },
        path,
    )
    bench_common.save_section("store", {"replay_cases_per_s": 400.0, "ratio": 0.4}, path)
    results = json.loads(path.read_text())
    assert set(results) == {"pipeline", "store"}
    text = bench_common.summary(results)
    lines = {ln[3:].strip().split("  ")[0]: ln for ln in text.splitlines()[1:]}
    # one service without the counter: the total is not known
    assert "n/a (counter not exported)" in lines["store calls per case, total"]
    assert "n/a (counter not exported)" in lines["reporting"]
    assert lines["end to end, burst of 5,000 cases, cases/s"].startswith("ok")
    assert lines["pipeline cases/s ÷ store ceiling"].startswith("NO")
    p99 = next(v for k, v in lines.items() if k.startswith("submit -> visible at 50"))
    assert p99.startswith("NO") and "p99 ≤ 1,000 ms" in p99
    assert lines["rebuild by replay, events/s"].startswith("ok")
    # Kafka did not run: n/a, and no verdict
    kafka = next(v for k, v in lines.items() if k.startswith("Kafka ProducerPerformance"))
    assert kafka.startswith("  ") and "n/a" in kafka


def test_summary_totals_when_every_service_counts() -> None:
    calls = {s: 2.5 for s in bench_common.SERVICES}
    text = bench_common.summary({"pipeline": {"store_calls_per_case": calls}})
    total = next(ln for ln in text.splitlines() if "store calls per case, total" in ln)
    assert total.startswith("ok") and " 10.00 " in total


def test_summary_total_is_the_sum_of_the_parts_shown() -> None:
    # run 21's figures: unrounded they add up to 3.6306, shown to two places
    # they are 1.08 + 0.27 + 1.21 + 1.08 = 3.64
    calls = {"intake": 1.0752, "assignment": 0.2666, "supervision": 1.2058, "reporting": 1.083}
    lines = bench_common.summary({"pipeline": {"store_calls_per_case": calls}}).splitlines()
    total = next(ln for ln in lines if "store calls per case, total" in ln)
    assert " 3.64 " in total
    rows = [ln.split() for ln in lines]
    shown = [float(r[1]) for r in rows if len(r) == 2 and r[0] in calls]
    assert sorted(shown) == [0.27, 1.08, 1.08, 1.21]


def test_summary_cpu_parts_add_up_to_what_the_machine_had() -> None:
    cpu = {s: 3.0 for s in bench_common.SERVICES}
    cpu |= {"ferretdb": 10.04, "kafka": 2.0, "prometheus": 0.3, "bench client": 1.5}
    cpu |= {"machine idle": 2.0, "machine steal": 0.1, "machine total": 30.0}
    text = bench_common.summary({"pipeline": {"burst_cpu_s": cpu}})
    line = next(ln for ln in text.splitlines() if "CPU-seconds in the burst" in ln)
    assert "30.0 in all: services / store / broker / bench client / idle / steal / rest" in line
    parts = [float(x) for x in line.rsplit("  ", 1)[1].split(" / ")]
    # services 12.0, store 10.0, broker 2.0, client 1.5, idle 2.0, steal 0.1, and the rest
    # (Prometheus, the kernel) is what is left of the machine's 30.0
    assert parts == [12.0, 10.0, 2.0, 1.5, 2.0, 0.1, 2.4]
    assert round(sum(parts), 1) == 30.0
