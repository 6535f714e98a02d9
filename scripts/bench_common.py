"""What the benchmark scripts share: the results file, the store-call counter
read from /metrics, percentiles, and the closing summary with its targets.

bench.sh runs several scripts against one stack (bench.py, bench_store.py,
bench_clocks.py); each adds its figures to one JSON file
(``$XINFANG_BENCH_RESULTS``), so the summary printed at the end holds every
figure of the same run, and a ratio (pipeline ÷ store ceiling) compares
figures that were measured minutes apart on the same machine, not on two
different days.
"""

from __future__ import annotations

import json
import math
import os
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "MAX_BULK",
    "SERVICES",
    "STORE_CALLS",
    "calls_by_op",
    "calls_per_case",
    "load_results",
    "pct",
    "results_path",
    "save_section",
    "scrape",
    "store_calls",
    "summary",
]

SERVICES = ("intake", "assignment", "supervision", "reporting")
# the store adapter's counter: one per call, a bulk write one per round trip
STORE_CALLS = "xinfang_store_calls_total"
STORE_OPS = ("get", "insert", "write", "delete", "scan")
# FerretDB 1.24 never answers a bulk_write of 100 or more operations (99
# works, 100 hangs), so no benchmark sends more than this in one call
MAX_BULK = 99


# ---- results file --------------------------------------------------------------------


def results_path() -> Path | None:
    """Where this run's figures go; None when a script runs on its own."""
    p = os.environ.get("XINFANG_BENCH_RESULTS")
    return Path(p) if p else None


def load_results(path: Path | None = None) -> dict[str, Any]:
    path = path or results_path()
    if path is None or not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def save_section(section: str, figures: Mapping[str, Any], path: Path | None = None) -> None:
    """Merge one script's figures into the results file (no-op without one)."""
    path = path or results_path()
    if path is None:
        return
    data = load_results(path)
    data[section] = dict(figures)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)


# ---- /metrics ------------------------------------------------------------------------


def scrape(host: str, port: int, timeout: float = 5.0) -> str:
    """One service's /metrics exposition text ("" when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as r:
            body: bytes = r.read()
    except OSError:
        return ""
    return body.decode("utf-8", "replace")


def store_calls(text: str) -> dict[tuple[str, str], float] | None:
    """``xinfang_store_calls_total`` by (service, op) from exposition text;
    None when the counter is not exported at all (older code), which is not
    the same as a counter that is exported and still zero."""
    out: dict[tuple[str, str], float] = {}
    found = False
    for family in text_string_to_metric_families(text):
        # typed, the parser names the family without _total; untyped, with it
        if family.name not in (STORE_CALLS.removesuffix("_total"), STORE_CALLS):
            continue
        found = True  # a family with no samples yet is exported, at zero
        for s in family.samples:
            if s.name != STORE_CALLS:
                continue  # _created, from prometheus_client
            key = (s.labels.get("service", ""), s.labels.get("op", ""))
            out[key] = out.get(key, 0.0) + s.value
    return out if found else None


def calls_per_case(
    before: Mapping[str, str], after: Mapping[str, str], cases: int
) -> dict[str, float | None]:
    """Per service: store calls made between two scrapes, per case; None for a
    service that does not export the counter. Each text is that service's
    own /metrics, so every sample in it is counted for that service whatever
    its ``service`` label says."""
    out: dict[str, float | None] = {}
    for service in SERVICES:
        b = store_calls(before.get(service, ""))
        a = store_calls(after.get(service, ""))
        if a is None:
            out[service] = None
            continue
        delta = sum(a.values()) - sum((b or {}).values())
        out[service] = delta / cases if cases else math.nan
    return out


def calls_by_op(
    before: Mapping[str, str], after: Mapping[str, str], cases: int
) -> dict[str, dict[str, float]]:
    """Per service and op: store calls per case between two scrapes (only the
    services that export the counter)."""
    out: dict[str, dict[str, float]] = {}
    for service in SERVICES:
        a = store_calls(after.get(service, ""))
        if a is None or not cases:
            continue
        b = store_calls(before.get(service, "")) or {}
        ops: dict[str, float] = {}
        for (_, op), v in a.items():
            ops[op] = ops.get(op, 0.0) + v
        for (_, op), v in b.items():
            ops[op] = ops.get(op, 0.0) - v
        out[service] = {op: v / cases for op, v in sorted(ops.items())}
    return out


# ---- arithmetic ----------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """The p-th percentile by nearest rank (no interpolation)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


# ---- the closing summary ---------------------------------------------------------------


def _num(x: Any, fmt: str = ",.0f", unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:{fmt}}{unit}"


def _ms(seconds: Any) -> float | None:
    return None if seconds is None else float(seconds) * 1000


def _check(value: Any, ok: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "  "
    return "ok" if ok else "NO"


def summary(r: Mapping[str, Any]) -> str:
    """Every figure of the run, one line each, with its target beside it.
    A figure a stage did not produce shows as n/a."""
    p = r.get("pipeline", {})
    s = r.get("store", {})
    k = r.get("kafka", {})
    c = r.get("clocks", {})
    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, value: str, target: str = "", mark: str = "  ") -> None:
        rows.append((label, value, target, mark))

    calls = p.get("store_calls_per_case") or {}
    # the total is the sum of the parts as shown (to two places), so the
    # lines below it add up to it
    known = [round(v, 2) for v in calls.values() if v is not None]
    total = round(sum(known), 2) if known and len(known) == len(calls) else None
    busy = "" if p.get("store_calls_complete", True) else " (pipeline still busy: too few)"
    row(
        "store calls per case, total" + busy,
        _num(total, ".2f") if total is not None else "n/a (counter not exported)",
        "≤ 12",
        _check(total, total is not None and total <= 12),
    )
    for service in SERVICES:
        v = calls.get(service)
        row(f"  {service}", _num(v, ".2f") if v is not None else "n/a (counter not exported)")
    n = p.get("cases")
    cps = p.get("cases_per_s")
    warm = (p.get("warmup") or {}).get("cases")
    row(
        f"end to end, burst of {_num(n)} cases"
        + (f" after {_num(warm)} warm-up" if warm else "")
        + ", cases/s",
        _num(cps, ",.1f"),
        "≥ 150 (at --n 5000)",
        _check(cps, cps is not None and cps >= 150),
    )
    row("  submit (gRPC, intake), cases/s", _num(p.get("submit_per_s"), ",.1f"))
    row("  until every consumer finished, cases/s", _num(p.get("all_done_per_s"), ",.1f"))
    row(
        "  submit -> visible p50 / p99 (burst)",
        f"{_num(p.get('p50_ms'), ',.0f')} / {_num(p.get('p99_ms'), ',.0f')} ms",
    )
    cpu = p.get("burst_cpu_s") or {}
    if "machine total" in cpu:
        # every CPU-second the machine had in the burst, in parts that add up
        # to it: what is not a process of the stack, the script, idle or
        # stolen is the rest (Prometheus, the kernel, anything else running)
        parts = {
            "services": sum(cpu.get(x, 0.0) for x in SERVICES),
            "store": cpu.get("ferretdb", 0.0),
            "broker": cpu.get("kafka", 0.0),
            "bench client": cpu.get("bench client", 0.0),
            "idle": cpu.get("machine idle", 0.0),
            "steal": cpu.get("machine steal", 0.0),
        }
        shown = {k: round(v, 1) for k, v in parts.items()}
        machine = round(cpu["machine total"], 1)
        shown["rest"] = round(machine - sum(shown.values()), 1)
        row(
            f"  CPU-seconds in the burst, {machine:,.1f} in all: " + " / ".join(shown),
            " / ".join(f"{v:,.1f}" for v in shown.values()),
        )
    ceiling = s.get("replay_cases_per_s")
    ratio = s.get("ratio")
    traced = s.get("trace_cases_per_s") is not None
    row(
        "store ceiling for the pipeline's writes, cases/s"
        + (
            (
                " (the burst's write calls replayed right after it)"
                if p.get("trace_cases_per_s") is not None
                else " (its write calls replayed)"
            )
            if traced
            else " (each document once)"
        ),
        _num(ceiling, ",.1f"),
    )
    if traced:
        replay_cpu = p.get("trace_cpu_s") or {}
        if "machine total" in replay_cpu and "machine total" in cpu:
            row(
                "  store CPU-seconds in the burst / in the replay "
                f"(the machine had {replay_cpu['machine total']:,.1f} in the replay)",
                f"{cpu.get('ferretdb', 0.0):,.1f} / {replay_cpu.get('ferretdb', 0.0):,.1f}",
            )
        row(
            "  each case's documents written once, cases/s", _num(s.get("once_cases_per_s"), ",.1f")
        )
    row(
        "  pipeline cases/s ÷ store ceiling",
        _num(ratio, ".3f"),
        "≥ 0.5",
        _check(ratio, ratio is not None and ratio >= 0.5),
    )
    for key, label in (
        ("one_per_s", "one at a time"),
        ("c16_per_s", "16 concurrent"),
        ("bulk_per_s", f"bulk_write of {MAX_BULK}"),
    ):
        row(f"store raw updates/s by _id, {label}", _num(s.get(key), ",.0f"))
    st = p.get("steady", {})
    p99 = st.get("p99_ms")
    achieved = st.get("achieved_per_s")
    row(
        f"submit -> visible at {_num(st.get('rate'), 'g')} cases/s offered "
        f"({_num(achieved, '.1f')} submitted), p50 / p99 / max",
        f"{_num(st.get('p50_ms'))} / {_num(p99)} / {_num(st.get('max_ms'))} ms",
        "p99 ≤ 1,000 ms",
        _check(p99, p99 is not None and p99 <= 1000),
    )
    rb = p.get("rebuild_events_per_s")
    row(
        "rebuild by replay, events/s",
        _num(rb),
        "≥ 3,000",
        _check(rb, rb is not None and rb >= 3000),
    )
    recs = k.get("records")
    enough = (
        f"≥ 100,000 records after a warm-up: {_num(recs)} after {_num(k.get('warmup'))}"
        if recs is not None
        else "≥ 100,000 records after a warm-up"
    )
    row(
        f"Kafka ProducerPerformance, records/s of {_num(k.get('size'))} B",
        _num(k.get("producer")),
        enough,
        _check(recs, recs is not None and recs >= 100_000),
    )
    row(
        "Kafka ConsumerPerformance, records/s (fetch only / incl. join)",
        f"{_num(k.get('consumer_fetch'))} / {_num(k.get('consumer'))}",
        enough,
        _check(recs, recs is not None and recs >= 100_000),
    )
    row(
        f"supervision scan, {_num(c.get('scan_due'))} of {_num(c.get('n'))} clocks due, clocks/s",
        _num(c.get("scan_clocks_per_s"), ",.0f"),
    )
    row(
        "supervision reevaluate after a change, clocks/s",
        _num(c.get("reeval_clocks_per_s"), ",.0f"),
    )
    row("supervision scan with nothing due, ms", _num(_ms(c.get("scan_idle_s")), ",.0f"))
    row("supervision handle (its consumer), events/s", _num(c.get("handle_events_per_s"), ",.0f"))
    width = max(len(x[0]) for x in rows)
    vwidth = max(len(x[1]) for x in rows)
    lines = ["== summary (target beside each figure; ok / NO where a target applies) =="]
    for label, value, target, mark in rows:
        lines.append(f"{mark} {label:<{width}}  {value:>{vwidth}}  {target}".rstrip())
    return "\n".join(lines)
