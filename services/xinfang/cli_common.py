"""What every ``xinfang`` command shares: how it refuses, how it reads a file."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Refused", "read_json"]


class Refused(Exception):
    """A command that cannot go ahead as asked: one line on stderr, exit 2."""


def read_json(path: str) -> Any:
    """A JSON file, or one line saying why not (missing, not UTF-8, not JSON)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise Refused(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise Refused(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise Refused(f"{path}: not JSON ({e.msg}, line {e.lineno} column {e.colno})") from None
    except OSError as e:
        raise Refused(f"{path}: {e.strerror}") from None
