"""bench_store's pure helpers: documents of the size asked for, and no
bulk_write of more than 99 operations (FerretDB 1.24 never answers 100)."""

from __future__ import annotations

import sys
from pathlib import Path

import bson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench_store
from bench_common import MAX_BULK


@pytest.mark.parametrize("size", [46, 155, 700, 24_099])
def test_padded_documents_have_the_size_asked_for(size: int) -> None:
    doc = bench_store.padded("r0000042", size)
    assert len(bson.encode(doc)) == size
    assert doc["_id"] == "r0000042"


def test_a_size_below_the_bare_document_is_the_bare_document() -> None:
    doc = bench_store.padded("r0000042", 1)
    assert doc["pad"] == ""


@pytest.mark.parametrize("n", [0, 1, 98, 99, 100, 198, 199, 5000])
def test_chunks_never_exceed_the_bulk_limit(n: int) -> None:
    items = list(range(n))
    parts = bench_store.chunks(items)
    assert MAX_BULK == 99
    assert all(1 <= len(p) <= MAX_BULK for p in parts)
    assert [x for p in parts for x in p] == items
