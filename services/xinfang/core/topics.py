"""``python -m xinfang.core.topics ensure``: create the platform's topics."""

from __future__ import annotations

import sys

from xinfang.core.config import Settings
from xinfang.core.kafka import ensure_topics


def main(argv: list[str]) -> int:
    if argv[1:] != ["ensure"]:
        print("usage: python -m xinfang.core.topics ensure", file=sys.stderr)
        return 2
    created = ensure_topics(Settings())
    print("topics created: " + (", ".join(created) if created else "none (all present)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
