"""Hostile input against the running services (``scripts/fuzz.sh`` starts them).

Builds two districts with cases (``tests/fuzz/world.py``), draws ``--n``
requests from the hypothesis strategies of every gRPC method
(``tests/fuzz/strategies.py``, fixed ``--seed``) and sends them in rounds
(``tests/fuzz/campaign.py``). Prints the count of every status code per
method and the checks: INTERNAL/UNKNOWN, refusals that name no field,
crashed processes, and whether any refused request stored or published
anything. Exits 1 when a check fails.

  scripts/fuzz.sh [--n 10000] [--seed 1] [--round 25] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fuzz.campaign import Campaign
from tests.fuzz.strategies import generate, methods, shots
from tests.fuzz.world import build_world

from xinfang.core.config import Settings
from xinfang.core.mongo import connect


async def main(args: argparse.Namespace) -> int:
    settings = Settings()
    mongo = connect(settings.mongo_uri, "xinfang-fuzz")
    world = await build_world(settings, mongo, cases_per_district=args.cases)
    all_methods = methods()
    t0 = time.monotonic()
    drawn = generate(shots(all_methods, world.pools(), int(time.time())), args.n, args.seed)
    print(
        f"{len(drawn)} requests over {len(all_methods)} methods drawn in "
        f"{time.monotonic() - t0:.0f} s (seed {args.seed}); districts {world.a}, {world.b}",
        flush=True,
    )
    data = os.environ.get("XINFANG_DATA", "")
    pids = sorted(glob.glob(f"{data}/svc-*.pid")) if data else []
    campaign = Campaign(settings, mongo, pid_files=pids)
    try:
        report = await campaign.run(
            drawn,
            round_size=args.round,
            concurrency=args.concurrency,
            check_store=not args.no_store,
        )
    finally:
        await campaign.close()
        await mongo.close()
    print(report.table())
    print(report.summary())
    return 1 if report.failures or report.crashed else 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--round", type=int, default=25, help="requests per store check")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--cases", type=int, default=4, help="cases per district set up first")
    p.add_argument("--no-store", action="store_true", help="skip the nothing-stored check")
    sys.exit(asyncio.run(main(p.parse_args())))
