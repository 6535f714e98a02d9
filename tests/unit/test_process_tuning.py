"""A service process runs on the event loop and with the collector its
settings name (``core.runtime._use_loop`` and ``_tune_gc``). Each check runs
in a process of its own: both change process-wide state."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _run(code: str, **env: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "XINFANG_AUTH_KEY": "a" * 44, **env},
        timeout=60,
    )
    return out.stdout.strip()


_LOOP = """
import asyncio
from xinfang.core import runtime
from xinfang.core.config import Settings
runtime._use_loop(Settings().event_loop)
async def main():
    loop = asyncio.get_running_loop()
    print(type(loop).__module__ + "." + type(loop).__name__)
asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("env", "loop"),
    [
        ({}, "uvloop.Loop"),
        ({"XINFANG_EVENT_LOOP": "asyncio"}, "asyncio.unix_events._UnixSelectorEventLoop"),
    ],
)
def test_the_loop_is_the_one_the_settings_name(env: dict[str, str], loop: str) -> None:
    assert _run(_LOOP, **env) == loop


_GC = """
import gc
from xinfang.core import runtime
from xinfang.core.config import Settings
before = gc.get_threshold()
runtime._tune_gc(Settings().gc_young_threshold)
print(gc.get_threshold()[0], gc.get_threshold()[1:] == before[1:], gc.get_freeze_count() > 1000)
"""


def test_the_collector_runs_less_often_and_skips_the_start_up_heap() -> None:
    assert _run(_GC) == "20000 True True"
    assert _run(_GC, XINFANG_GC_YOUNG_THRESHOLD="5000").split()[0] == "5000"
