"""The privacy probe finds what it must (known identities, and anything
shaped like an ID number or a mobile number) and not what only looks like
one (a nanosecond timestamp, a number with a wrong check digit)."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from privacy_probe import Identities, Probe, id_number_ok


def _probe() -> Probe:
    known = Identities()
    known.add(SimpleNamespace(name="王小明", id_number="11010519491231002x", phone="13812345678"))
    return Probe(known)


def test_known_identities_are_found_and_masked() -> None:
    p = _probe()
    p.search("log lines", "a.log:1", '{"event": "x", "who": "信访人王小明来访"}')
    p.search("log lines", "a.log:2", "id 11010519491231002X phone 13812345678")
    assert sorted(f.what for f in p.findings) == [
        "id_number (known)",
        "name (known)",
        "phone (known)",
    ]
    assert all("王小明" not in f.context for f in p.findings if f.what.startswith("name"))
    assert p.searched == {"log lines": 2}


def test_unknown_but_well_formed_numbers_are_found_by_pattern() -> None:
    p = _probe()
    p.search("messages", "t/0:1", "身份证 440524198001010013 电话 15900001111")
    assert sorted(f.what for f in p.findings) == ["id_number (pattern)", "phone (pattern)"]


def test_look_alikes_are_not_findings() -> None:
    p = _probe()
    p.search("log lines", "x", "ts 1764644000123456789 offset 1381234567890 id 110105194912310021")
    p.search("log lines", "y", "王小 小明 and 王 小明")  # parts of a name are not the name
    # digits inside hex ids (a pseudonym's HMAC, a UUID): found in the long run
    p.search("messages", "z", 'R"p_cb99a4f27c7d19ad9930b13812345678e67cX a440524198001010013b')
    # the decimals of a metric's value (found in the two-replica long run)
    p.search("metric series", "m", 'xinfang_x_seconds_sum{service="r"} 34659.13912345678')
    assert p.findings == []
    p.search("log lines", "n", "电话.13912345678")  # after a full stop, not a decimal: a phone
    assert [f.what for f in p.findings] == ["phone (pattern)"]
    assert id_number_ok("11010519491231002X") and not id_number_ok("110105194912310021")


def test_a_docx_report_is_searched_in_every_xml_part() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:t>报告</w:t>")
        z.writestr("word/charts/chart1.xml", "<c:v>王小明</c:v>")
    p = _probe()
    p.search_report("d-2026-zh.docx", buf.getvalue())
    assert [f.what for f in p.findings] == ["name (known)"]
