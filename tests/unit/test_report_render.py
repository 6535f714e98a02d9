"""Period report rendering: JSON, Markdown and .docx from hand-built figures."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from typing import Any

import pytest
from docx import Document

from xinfang.reporting.figures import PeriodFigures, ReportFigures
from xinfang.reporting.report import TEXT, charts, render_docx, render_json, render_markdown

SECTIONS_ZH = ("一、来信来访基本情况", "二、开展的主要工作", "三、存在的主要问题", "四、下一步工作")
NAMES = {
    "t1": "城关街道",
    "t2": "临江镇",
    "t3": "青石镇",
    "t4": "金山乡",
    "land.expropriation": "征地拆迁",
    "labor.wages": "拖欠工资",
    "housing.property": "物业管理",
    "env.pollution": "环境污染",
    "u.housing": "区住房和城乡建设局",
    "u.hr": "区人力资源和社会保障局",
    "u.land": "区自然资源局",
}


def _period(period: str, received: int, **over: Any) -> PeriodFigures:
    base: dict[str, Any] = {
        "received": received,
        "people": received * 2,
        "by_channel": {"letter": 200, "visit": 300, "online": 600, "phone": 130, "fax": 4},
        "by_category": {
            "land.expropriation": 500,
            "labor.wages": 400,
            "housing.property": 234,
            "env.pollution": 100,
        },
        "by_township": {"t1": 600, "t2": 334, "t3": 200, "t4": 100},
        "first": 900,
        "repeat": 334,
        "group": 40,
        "group_people": 360,
        "escalated": 25,
        "higher_level": 60,
        "routed": 1200,
        "by_decision": {"accept": 800, "forward": 350, "decline": 50},
        "by_unit": {"u.housing": 500, "u.hr": 400, "u.land": 300},
        "accepted": 800,
        "replied": 1000,
        "resolved": 900,
        "replied_on_time": 950,
        "replied_late": 50,
        "rated": 800,
        "satisfied": 600,
        "basically_satisfied": 120,
        "dissatisfied": 80,
        "reviews": 12,
        "rereviews": 3,
        "backflow": 7,
        "mediation_entered": 500,
        "mediation_resolved": 410,
        "leader_receptions": 48,
        "leader_reception_people": 210,
        "leader_visits_out": 19,
        "leader_packages": 30,
        "leader_resolved": 27,
        "higher_level_resolved": 51,
        "warnings": 66,
        "breaches": 9,
        "breaches_by_clock": {"handling": 4, "register_and_route": 5},
        "supervision_orders": 9,
        "orders_by_clock": {"handling": 4, "register_and_route": 5},
        "backlog_start": 150,
        "backlog_end": 120,
    }
    base.update(over)
    return PeriodFigures(period=period, **base)


@pytest.fixture
def figures() -> ReportFigures:
    monthly = [_period(f"2026-{m:02d}", 90 + m, by_category={}) for m in range(1, 13)]
    return ReportFigures(
        district_id="d1",
        district_name="示范区",
        period="2026",
        current=_period("2026", 1234),
        previous=_period("2025", 1197, group=50, escalated=20),
        last_year=_period(
            "2025", 1300, group=50, escalated=30, replied_on_time=900, replied_late=100
        ),
        monthly=monthly,
        names=NAMES,
        rankings={
            "unit": [
                {"subject": "u.housing", "score": 91.5, "volume": 500, "ranked": True, "rank": 1},
                {"subject": "u.land", "score": 84.25, "volume": 300, "ranked": True, "rank": 2},
                {
                    "subject": "u.hr",
                    "score": 70.0,
                    "volume": 400,
                    "ranked": True,
                    "rank": 3,
                    "bottom": True,
                },
            ]
        },
        generated_at="2027-01-10T09:00:00+08:00",
    )


def _doc_text(data: bytes) -> tuple[Any, list[str]]:
    doc = Document(io.BytesIO(data))
    return doc, [p.text for p in doc.paragraphs]


def test_json_round_trips_with_rates_and_indicators(figures: ReportFigures) -> None:
    data = json.loads(render_json(figures).decode("utf-8"))
    assert data["district_name"] == "示范区"  # ensure_ascii=False: readable Chinese
    assert "示范区".encode() in render_json(figures)
    assert data["current"]["received"] == 1234
    assert data["current"]["rates"]["on_time"] == pytest.approx(0.95)
    assert data["current"]["rates"]["satisfaction"] == pytest.approx(720 / 800)
    assert data["last_year"]["rates"]["resolution"] == pytest.approx(0.9)
    assert data["indicators"] == {
        "received_down": True,
        "group_down": True,
        "escalated_down": True,
        "backlog_down": True,
        "achieved": True,
    }
    assert data["rankings"]["unit"][2]["bottom"] is True
    assert json.loads(json.dumps(data)) == data


def test_markdown_carries_figures_and_comparisons(figures: ReportFigures) -> None:
    md = render_markdown(figures)
    yoy = (1234 - 1300) / 1300 * 100  # -5.08 -> 下降5.1%
    mom = (1234 - 1197) / 1197 * 100  # +3.09 -> 上升3.1%
    assert f"下降{abs(yoy):.1f}%" == "下降5.1%"
    assert f"上升{mom:.1f}%" == "上升3.1%"
    assert "共登记群众来信来访1234件、涉及2468人次，同比下降5.1%，环比上升3.1%" in md
    assert "# 示范区2026年信访工作开展情况报告" in md
    for heading in SECTIONS_ZH:
        assert f"## {heading}" in md
    # channels with shares (of 1234 by channel)
    assert "网上信访600件，占48.6%" in md
    # rates: on time 950/1000, satisfaction (600+120)/800
    assert "按期办结率95.0%" in md
    assert "满意率（满意与基本满意合计）为90.0%" in md
    # on time last year 900/1000 -> +5.0 points
    assert "提高5.0个百分点" in md
    # group 40 vs 50 last year, escalated 25 vs 30
    assert "集体访40批360人次，同比下降20.0%" in md
    assert "越级访25件，同比下降16.7%" in md
    # backlog 150 -> 120
    assert "较期初减少30件、下降20.0%" in md
    assert "总体实现“三降一好转”目标" in md
    # top complaints with shares of all categories (1234)
    assert "征地拆迁（500件，占40.5%）" in md
    assert "城关街道（600件，占48.6%）" in md
    assert "区住房和城乡建设局（500件，占41.7%）" in md
    # the key table, with YoY for received
    assert "| 来信来访总量（件） | 1234 | 1197 | 1300 | +3.1% | -5.1% |" in md
    assert "排名末位" in md


def test_docx_structure(figures: ReportFigures) -> None:
    doc, paras = _doc_text(render_docx(figures))
    assert paras[0] == "示范区2026年信访工作开展情况报告"
    heads = [p.text for p in doc.paragraphs if p.style.name == "Heading 1"]
    assert [h for h in heads if h in SECTIONS_ZH] == list(SECTIONS_ZH)
    positions = [paras.index(h) for h in SECTIONS_ZH]
    assert positions == sorted(positions)
    body = "\n".join(paras)
    assert "1234件" in body
    first_columns = [[row.cells[0].text for row in t.rows] for t in doc.tables]
    assert any(
        {"征地拆迁", "拖欠工资", "物业管理", "环境污染"} <= set(col) for col in first_columns
    )
    assert len(doc.inline_shapes) >= 3
    # the ranking table flags the bottom place
    cells = {c.text for t in doc.tables for row in t.rows for c in row.cells}
    assert "排名末位" in cells
    assert "区人力资源和社会保障局" in cells
    # A4 and an East Asian font on the body style
    sec = doc.sections[0]
    assert abs(sec.page_width.cm - 21.0) < 0.01 and abs(sec.page_height.cm - 29.7) < 0.01
    rfonts = doc.styles["Normal"].element.rPr.rFonts
    assert rfonts.get("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}eastAsia")


def test_english(figures: ReportFigures) -> None:
    md = render_markdown(figures, lang="en")
    assert "Petitions received" in md
    assert "down 5.1%" in md and "up 3.1%" in md
    _, paras = _doc_text(render_docx(figures, lang="en"))
    body = "\n".join(paras)
    assert "Petitions received" in body
    for heading in SECTIONS_ZH:
        assert heading not in body and heading not in md
    assert "一、" not in body
    with pytest.raises(ValueError):
        render_markdown(figures, lang="fr")


def test_both_languages_have_the_same_keys() -> None:
    assert set(TEXT["zh"]) == set(TEXT["en"])


def test_no_comparable_data(figures: ReportFigures) -> None:
    f = replace(figures, previous=None, last_year=None)
    md = render_markdown(f)
    assert "涉及2468人次，同比、环比均无可比数据。" in md
    assert "重复信访334件，占27.1%，同比无可比数据" in md
    assert "暂无法对“三降一好转”目标作出整体判断" in md
    _, paras = _doc_text(render_docx(f))
    assert "无可比数据" in "\n".join(paras)
    assert "no comparable data" in render_markdown(f, lang="en")


def test_zero_counts_do_not_divide_by_zero() -> None:
    zero = PeriodFigures(period="2026-07")
    f = ReportFigures(
        district_id="d1",
        district_name="示范区",
        period="2026-07",
        current=zero,
        previous=PeriodFigures(period="2026-06"),
        last_year=PeriodFigures(period="2025-07"),
        monthly=[PeriodFigures(period="2026-07")],
        names={},
    )
    md = render_markdown(f)
    assert "# 示范区2026年7月信访工作开展情况报告" in md
    assert "共登记群众来信来访0件、涉及0人次，同比持平，环比持平" in md
    assert "本期暂无办结的信访事项" in md
    doc, _ = _doc_text(render_docx(f))
    assert doc.paragraphs[0].text == "示范区2026年7月信访工作开展情况报告"
    render_docx(f, lang="en")
    json.loads(render_json(f))


def test_quarter_title(figures: ReportFigures) -> None:
    f = replace(figures, period="2026-Q3", monthly=figures.monthly[6:9])
    assert render_markdown(f).startswith("# 示范区2026年第三季度信访工作开展情况报告")
    # too long for one line of the title: broken before 信访工作…, not at the last character
    doc, _ = _doc_text(render_docx(f))
    assert doc.paragraphs[0].text == "示范区2026年第三季度\n信访工作开展情况报告"
    assert render_markdown(f, lang="en").startswith("# 示范区 Petition Work Report, Q3 2026")


def test_charts_without_a_cjk_font_do_not_warn(
    figures: ReportFigures, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest turns warnings into errors here, so a missing-glyph warning would fail
    monkeypatch.setattr(charts, "_cjk_family", lambda: None)
    doc, _ = _doc_text(render_docx(figures))
    assert len(doc.inline_shapes) >= 3


def test_the_demo_figures_of_issue_10_read_consistently(figures: ReportFigures) -> None:
    """1,000 cases: 955 accepted and 45 forwarded by the office, 908 taken
    on by their units so far; 1,793 clocks ran out (most of them the
    register-and-route clock of back-dated petitions), one order each;
    every reply on time."""
    cur = replace(
        figures.current,
        received=1000,
        routed=1000,
        by_decision={"accept": 955, "forward": 45},
        accepted=908,
        replied=500,
        replied_on_time=500,
        replied_late=0,
        breaches=1793,
        breaches_by_clock={"register_and_route": 1000, "written_notice": 790, "handling": 3},
        supervision_orders=1793,
        orders_by_clock={"register_and_route": 1000, "written_notice": 790, "handling": 3},
    )
    md = render_markdown(replace(figures, current=cur))
    assert "共作出处理决定1000件，其中依法受理955件、转送有权处理机关45件、不予受理0件" in md
    assert "本期各承办单位确认受理信访事项908件" in md
    assert "其中按期办结500件、超期办结0件，按期办结率100.0%" in md
    assert "督办通知1793份（每超期一次发出一份）" in md
    assert (
        "各类法定期限超期共1793次，其中办理期限超期3次、登记转送期限超期1000次、"
        "书面告知期限超期790次。"
    ) in md
    assert "超期办理" not in md  # the old label, which read as cases
    en = render_markdown(replace(figures, current=cur), lang="en")
    assert "Decisions were made on 1,000 registered petitions: 955 accepted, 45 forwarded" in en
    assert "statutory time limits of all kinds ran out 1,793 times" in en
