"""The consumer faust builds fetches as the settings say, not with faust's
hard-wired 1.5 s wait for 1 byte (``core.runtime._tune_fetch``): the
wait bounds how long a record sits at the broker while a fetch for other
partitions is in flight, the bytes how many fetches an idle stream costs."""

from __future__ import annotations

import base64
from pathlib import Path

from xinfang.core import runtime
from xinfang.core.config import Settings
from xinfang.reporting.app import SPEC


async def _fetch_settings(settings: Settings) -> tuple[int, int]:
    app = runtime._faust_app(runtime.Runtime(SPEC, settings))
    thread = app.consumer._thread  # faust's consumer thread, not started
    consumer = thread._create_worker_consumer(app.transport)
    try:
        return consumer._fetch_max_wait_ms, consumer._fetch_min_bytes
    finally:
        await consumer.stop()
        thread.thread_loop.close()


def _settings(tmp_path: Path, **kw: int) -> Settings:
    key = base64.b64encode(b"k" * 32).decode()
    return Settings(state_dir=str(tmp_path), auth_key=key, **kw)  # type: ignore[arg-type]


async def test_the_consumer_fetches_with_the_defaults(tmp_path: Path) -> None:
    assert await _fetch_settings(_settings(tmp_path)) == (50, 1)


async def test_the_consumer_fetches_as_configured(tmp_path: Path) -> None:
    s = _settings(tmp_path, consumer_fetch_max_wait_ms=20, consumer_fetch_min_bytes=4096)
    assert await _fetch_settings(s) == (20, 4096)
