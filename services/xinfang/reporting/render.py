"""Render a district's period figures as a work report: .docx, Markdown, JSON.

The .docx reads like the 工作情况报告 a district petition office (区信访局)
sends up: title, opening, 一、来信来访基本情况 (every figure with 同比 and
环比), 二、开展的主要工作, 三、存在的主要问题 (the fields and the townships and
units most complained about, Art. 41), 四、下一步工作, then an appendix with
the breakdown tables, the ranking and the charts. Chinese by default, English
with ``lang="en"``; all wording lives in :data:`TEXT`.

The renderers only read :class:`~xinfang.reporting.figures.ReportFigures`,
which is already aggregated, so a district's year renders in about half a
second whatever its case count, charts included (matplotlib's object API on
Agg, no pyplot state). Needs a CJK font for the charts (fonts-noto-cjk, see
scripts/install.sh); without one the charts still render, warning-free.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from docx import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Cm, Emu, Pt, RGBColor
from docx.styles.style import ParagraphStyle
from docx.text.paragraph import Paragraph
from matplotlib import font_manager, rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from xinfang.reporting.figures import PeriodFigures, ReportFigures

__all__ = ["TEXT", "render_docx", "render_json", "render_markdown"]

Lang = Literal["zh", "en"]

# ---- wording ---------------------------------------------------------------------------

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "{district}{period}信访工作开展情况报告",
        "opening": (
            "{period}，{district}信访工作在区委、区政府的坚强领导和上级信访部门的"
            "有力指导下，坚持以人民为中心的发展思想，认真贯彻落实《信访工作条例》，"
            "扎实推进信访工作法治化，深入开展矛盾纠纷排查化解和信访积案化解工作，"
            "{trend}。现将有关情况报告如下。"
        ),
        "trend_achieved": "全区信访形势总体平稳、持续向好，实现“三降一好转”目标",
        "trend_down": "全区信访总量同比下降，信访形势总体平稳",
        "trend_up": "全区信访形势总体可控，但信访总量同比有所上升，工作任务依然艰巨",
        "trend_unknown": "全区信访形势总体平稳",
        # 一
        "h1": "一、来信来访基本情况",
        "h1_total": "（一）信访总量",
        "h1_channel": "（二）信访渠道",
        "h1_kind": "（三）信访形式",
        "h1_route": "（四）登记受理",
        "h1_done": "（五）办结化解",
        "h1_backlog": "（六）存量与增量",
        "h1_ind": "（七）“三降一好转”指标完成情况",
        "p_total": (
            "{period}，全区共受理群众来信来访{received}件、涉及{people}人次，同比{yoy}，环比{mom}。"
        ),
        "p_total_na": (
            "{period}，全区共受理群众来信来访{received}件、涉及{people}人次，"
            "同比、环比均无可比数据。"
        ),
        "p_peak": "从月度分布看，月均受理{avg}件，其中{month}最多，为{n}件。",
        "p_channel": "从信访渠道看，{items}。{top}",
        "channel_item": "{name}{n}件，占{share}",
        "channel_top": "其中{name}占比最高。",
        "p_channel_none": "本期暂无分渠道统计数据。",
        "p_kind": (
            "从信访形式看，初信初访{first}件，占{first_share}；重复信访{repeat}件，"
            "占{repeat_share}，同比{repeat_yoy}；集体访{group}批{group_people}人次，"
            "同比{group_yoy}；越级访{escalated}件，同比{escalated_yoy}。"
            "另承接上级交办信访事项{higher}件。"
        ),
        "p_route": (
            "从登记受理情况看，共作出处理决定{routed}件，其中依法受理{accepted}件、"
            "转送有权处理机关{forward}件{outs}、不予受理{decline}件。"
        ),
        "route_litigation": "、导入诉讼等法定途径{n}件",
        "route_discipline": "、转纪检监察机关{n}件",
        "route_disputes": "因有关单位对职责存在争议，报请其共同上一级明确承办单位{n}件。",
        "p_done": (
            "全区共办结信访事项{replied}件，其中按期办结{on_time}件，"
            "按期办结率{on_time_rate}，同比{on_time_yoy}；化解{resolved}件，"
            "化解率{resolution_rate}。"
        ),
        "p_done_none": "本期暂无办结的信访事项。",
        "p_rated": (
            "群众参与评价{rated}件，其中满意{satisfied}件、基本满意{basic}件、"
            "不满意{dissatisfied}件，满意率（满意与基本满意合计）为{rate}，同比{yoy}。"
        ),
        "p_rated_none": "本期暂无群众评价数据。",
        "p_review": "群众申请复查{reviews}件、复核{rereviews}件。",
        "p_backlog": (
            "存量方面，期初存量信访事项{start}件，期末存量{end}件，较期初{change}；"
            "增量方面，本期新增信访事项{received}件，同比{yoy}。"
        ),
        "backlog_down": "减少{n}件、下降{pct}",
        "backlog_up": "增加{n}件、上升{pct}",
        "backlog_new": "增加{n}件",
        "p_ind": "对照“三降一好转”目标：{items}。{conclusion}",
        "ind_received": "信访总量同比{chg}{status}",
        "ind_group": "集体访同比{chg}{status}",
        "ind_escalated": "越级访同比{chg}{status}",
        "ind_backlog": "期末存量较期初{chg}，信访秩序{order}{status}",
        "ind_backlog_na": "期初无存量，信访秩序变化无可比数据",
        "order_better": "好转",
        "order_worse": "未见好转",
        "st_yes": "（已达成）",
        "st_no": "（未达成）",
        "ind_all": "总体实现“三降一好转”目标。",
        "ind_some": "“三降一好转”目标尚未全部实现，有{n}项指标未达成。",
        "ind_unknown": "因部分指标无可比数据，暂无法对“三降一好转”目标作出整体判断。",
        "cap_key": "表1　{period}信访工作主要指标对比",
        "note_key": (
            "注：环比为与上期比较，同比为与上年同期比较；比率类指标的变化以百分点表示；"
            "“—”表示无可比数据。"
        ),
        "col_item": "指标",
        "col_cur": "本期",
        "col_prev": "上期",
        "col_ly": "上年同期",
        "col_mom": "环比",
        "col_yoy": "同比",
        "row_received": "来信来访总量（件）",
        "row_people": "涉及人次",
        "row_first": "初信初访（件）",
        "row_repeat": "重复信访（件）",
        "row_group": "集体访（批）",
        "row_group_people": "集体访人次",
        "row_escalated": "越级访（件）",
        "row_higher": "上级交办（件）",
        "row_accepted": "依法受理（件）",
        "row_replied": "办结（件）",
        "row_resolved": "化解（件）",
        "row_on_time": "按期办结率",
        "row_resolution": "化解率",
        "row_satisfaction": "满意率",
        "row_backlog_end": "期末存量（件）",
        "row_backflow": "信访倒流（件）",
        "row_receptions": "领导接访（批次）",
        "row_orders": "督办（件）",
        # 二
        "h2": "二、开展的主要工作",
        "h2_leader": "（一）落实领导干部接访下访制度",
        "p_leader": (
            "区级领导干部坚持定期接访、带案下访，本期共接待群众来访{batches}批"
            "{people}人次，深入基层下访{out}次；领导包案{packages}件，"
            "已化解{resolved}件，包案化解率{rate}。"
        ),
        "h2_mediation": "（二）深化矛盾纠纷排查化解",
        "p_mediation": (
            "坚持和发展新时代“枫桥经验”，依托“民事直说”工作机制逐级排查化解矛盾纠纷，"
            "本期共排查矛盾纠纷{entered}件，在区级领导接访前化解{resolved}件，"
            "化解率{rate}，努力把矛盾纠纷化解在基层、化解在萌芽状态。"
        ),
        "h2_supervision": "（三）强化督查督办",
        "p_supervision": (
            "对重点信访事项实行督查督办，本期共发出督办件{orders}件，"
            "发出到期预警提醒{warnings}件；{breach}"
        ),
        "breach_some": "超期办理{n}件。",
        "breach_none": "未发生超期办理情况。",
        "h2_backlog": "（四）推进信访积案化解",
        "h2_suggest": "（五）提出信访工作建议",
        "p_suggest": (
            "注重从信访问题中发现政策和工作层面的问题，本期向有关单位提出信访工作建议{made}件，"
            "已被采纳{adopted}件，采纳率{rate}。"
        ),
        "p_backlog_work": (
            "认真落实上级交办任务，本期承接上级交办信访事项{higher}件，"
            "已化解{resolved}件，化解率{rate}；发生信访倒流{backflow}件，同比{yoy}。"
        ),
        # 三
        "h3": "三、存在的主要问题",
        "h3_cat": "（一）信访问题领域相对集中",
        "p_cat": (
            "从反映问题的类别看，排名前{k}位的依次是{items}，合计占信访总量的{sum}，"
            "是群众反映最集中的领域。"
        ),
        "p_cat_none": "本期暂无分类统计数据。",
        "h3_town": "（二）部分镇（街道）信访量较大",
        "p_town": "从属地分布看，信访量居前{k}位的镇（街道）依次是{items}，合计占{sum}。",
        "p_town_none": "本期暂无分镇（街道）统计数据。",
        "h3_unit": "（三）部分责任单位承办任务较重",
        "p_unit": "从承办单位看，转交办信访事项较多的单位依次是{items}，合计占{sum}。",
        "p_unit_none": "本期暂无转交办统计数据。",
        "top_item": "{name}（{n}件，占{share}）",
        "h3_quality": "（四）办理质效仍有提升空间",
        "p_quality": (
            "按期办结率{on_time}，超期办理{breaches}件；群众不满意{dissatisfied}件，"
            "申请复查{reviews}件、复核{rereviews}件；重复信访{repeat}件，"
            "占信访总量的{repeat_share}，距“案结事了”仍有差距。"
        ),
        "h3_backflow": "（五）信访倒流问题仍然存在",
        "h3_backflow_none": "（五）越级上行风险仍需防范",
        "p_backflow": (
            "本期发生信访倒流{n}件，同比{yoy}，部分群众诉求未能在属地得到及时有效解决。"
        ),
        "p_backflow_none": "本期未发生信访倒流，但越级访仍有{esc}件，源头预防仍需加强。",
        # 四
        "h4": "四、下一步工作",
        "p_next": (
            "下一步，我局将坚持和发展新时代“枫桥经验”，认真贯彻落实《信访工作条例》，"
            "重点抓好以下工作：一是强化源头预防，针对群众反映集中的领域和信访量较大的"
            "镇（街道）开展专项排查，从源头上减少信访问题发生；二是压实属地和部门责任，"
            "推动矛盾纠纷就地化解；三是提升办理质效，严格落实按期办结和督查督办制度，"
            "不断提高群众满意率；四是深化信访积案化解，落实领导包案责任，"
            "坚决遏制信访倒流。"
        ),
        "sign_org": "{district}信访局",
        "date": "{y}年{m}月{d}日",
        # appendix
        "appendix": "附件：统计表与统计图",
        "cap_cat": "附表1　信访事项分类统计",
        "cap_town": "附表2　各镇（街道）信访量统计",
        "cap_unit": "附表3　责任单位承办情况统计",
        "cap_rank": "附表{no}　{period}{kind}考核排名",
        "col_category": "问题类别",
        "col_township": "镇（街道）",
        "col_unit": "承办单位",
        "col_cases": "件数",
        "col_share": "占比",
        "col_rank": "排名",
        "col_name": "名称",
        "col_score": "得分",
        "col_volume": "办件量",
        "col_note": "备注",
        "total": "合计",
        "rank_bottom": "排名末位",
        "rank_unranked": "办件量不足，不参与排名",
        "rank_kind_unit": "责任单位",
        "rank_kind_leader": "领导干部",
        "fig_trend": "附图1　{period}各月信访量",
        "fig_channel": "附图2　信访渠道分布",
        "fig_cat": "附图3　信访事项分类（前10位）",
        "fig_town": "附图4　各镇（街道）信访量（前12位）",
        "axis_unit": "单位：件",
        # small words
        "cmp_up": "上升{pct}",
        "cmp_down": "下降{pct}",
        "cmp_same": "持平",
        "cmp_na": "无可比数据",
        "pp_up": "提高{pp}个百分点",
        "pp_down": "下降{pp}个百分点",
        "cell_same": "持平",
        "list_sep": "；",
        "enum_sep": "、",
        "rate_na": "暂无数据",
        "unit_piece": "件",
        "ch_letter": "来信",
        "ch_visit": "来访",
        "ch_online": "网上信访",
        "ch_phone": "来电",
        "ch_fax": "传真",
        "ch_other": "其他渠道",
        "period_year": "{y}年",
        "period_quarter": "{y}年第{q}季度",
        "period_month": "{y}年{m}月",
        "month_short": "{m}月",
    },
    "en": {
        "title": "{district} Petition Work Report, {period}",
        "opening": (
            "In {period}, the petition work of {district}, under the leadership of the "
            "district Party committee and government and with the guidance of the "
            "petition bureaus above, put the people first, implemented the Regulations "
            "on Petition Work, advanced the rule of law in petition work, and screened "
            "and resolved disputes and long-standing cases; {trend}. The details are "
            "reported below."
        ),
        "trend_achieved": (
            "the situation was stable and improving, and the “three declines, one "
            "improvement” target was met"
        ),
        "trend_down": "petitions fell year on year and the situation was stable overall",
        "trend_up": (
            "the situation was under control, but petitions rose year on year and the "
            "workload remains heavy"
        ),
        "trend_unknown": "the situation was stable overall",
        "h1": "I. Petitions received",
        "h1_total": "1. Volume",
        "h1_channel": "2. Channels",
        "h1_kind": "3. Types of petition",
        "h1_route": "4. Registration and acceptance",
        "h1_done": "5. Cases concluded and resolved",
        "h1_backlog": "6. Backlog and new cases",
        "h1_ind": "7. “Three declines, one improvement”",
        "p_total": (
            "In {period}, the district received {received} petitions (letters and visits) "
            "involving {people} people; year on year: {yoy}; on the previous period: {mom}."
        ),
        "p_total_na": (
            "In {period}, the district received {received} petitions (letters and visits) "
            "involving {people} people; there is no comparable data for the same period last "
            "year or for the previous period."
        ),
        "p_peak": (
            "By month, an average of {avg} petitions were received; the busiest month "
            "was {month}, with {n}."
        ),
        "p_channel": "By channel: {items}. {top}",
        "channel_item": "{name} {n} ({share})",
        "channel_top": "{name} made up the largest share.",
        "p_channel_none": "No figures by channel for this period.",
        "p_kind": (
            "By type: {first} first petitions ({first_share}); {repeat} repeat petitions "
            "({repeat_share}), year on year: {repeat_yoy}; {group} group petitions "
            "involving {group_people} people, year on year: {group_yoy}; {escalated} "
            "escalated petitions, year on year: {escalated_yoy}. In addition, {higher} "
            "cases were assigned from above."
        ),
        "p_route": (
            "Decisions were made on {routed} registered petitions: {accepted} accepted, "
            "{forward} forwarded to the competent authority{outs}, and {decline} declined."
        ),
        "route_litigation": ", {n} directed to litigation or other statutory channels",
        "route_discipline": ", {n} referred to the discipline inspection bodies",
        "route_disputes": (
            " In {n} cases the units disputed which of them was competent, and their "
            "common superior designated the handling unit."
        ),
        "p_done": (
            "{replied} cases were concluded, {on_time} of them on time (on-time rate "
            "{on_time_rate}; year on year: {on_time_yoy}); {resolved} were resolved "
            "(resolution rate {resolution_rate})."
        ),
        "p_done_none": "No cases were concluded in this period.",
        "p_rated": (
            "Petitioners rated {rated} cases: {satisfied} satisfied, {basic} basically "
            "satisfied and {dissatisfied} dissatisfied; the satisfaction rate (satisfied "
            "plus basically satisfied) was {rate}; year on year: {yoy}."
        ),
        "p_rated_none": "No ratings by petitioners in this period.",
        "p_review": "Petitioners requested {reviews} reviews and {rereviews} re-reviews.",
        "p_backlog": (
            "The backlog stood at {start} open cases at the start of the period and {end} "
            "at the end ({change}); {received} new cases came in; year on year: {yoy}."
        ),
        "backlog_down": "down {n}, or {pct}",
        "backlog_up": "up {n}, or {pct}",
        "backlog_new": "up {n}",
        "p_ind": "Against the “three declines, one improvement” target: {items}. {conclusion}",
        "ind_received": "petitions year on year: {chg}{status}",
        "ind_group": "group petitions year on year: {chg}{status}",
        "ind_escalated": "escalated petitions year on year: {chg}{status}",
        "ind_backlog": "backlog against the start of the period: {chg}, order {order}{status}",
        "ind_backlog_na": "no backlog at the start of the period, so no comparable data on order",
        "order_better": "improved",
        "order_worse": "did not improve",
        "st_yes": " (met)",
        "st_no": " (not met)",
        "ind_all": "The target was met overall.",
        "ind_some": "The target was not fully met: {n} indicator(s) missed.",
        "ind_unknown": "Some indicators have no comparable data, so the target cannot be judged.",
        "cap_key": "Table 1  Key figures, {period}",
        "note_key": (
            "Note: “vs prev.” compares with the previous period, “YoY” with the same period "
            "last year; changes in rates are in percentage points; “—” means no comparable "
            "data."
        ),
        "col_item": "Indicator",
        "col_cur": "This period",
        "col_prev": "Previous",
        "col_ly": "Last year",
        "col_mom": "vs prev.",
        "col_yoy": "YoY",
        "row_received": "Petitions received",
        "row_people": "People involved",
        "row_first": "First petitions",
        "row_repeat": "Repeat petitions",
        "row_group": "Group petitions",
        "row_group_people": "People in group petitions",
        "row_escalated": "Escalated petitions",
        "row_higher": "Assigned from above",
        "row_accepted": "Accepted",
        "row_replied": "Concluded",
        "row_resolved": "Resolved",
        "row_on_time": "On-time rate",
        "row_resolution": "Resolution rate",
        "row_satisfaction": "Satisfaction rate",
        "row_backlog_end": "Backlog at end",
        "row_backflow": "Backflow",
        "row_receptions": "Leader receptions (batches)",
        "row_orders": "Supervision orders",
        "h2": "II. Main work done",
        "h2_leader": "1. Leaders receiving and visiting petitioners",
        "p_leader": (
            "District leaders held regular reception days and took cases to the grassroots: "
            "they received {batches} batches ({people} people) and made {out} visits out; "
            "they took charge of {packages} cases personally and resolved {resolved} of "
            "them (rate {rate})."
        ),
        "h2_mediation": "2. Screening and resolving disputes",
        "p_mediation": (
            "Following the “Fengqiao experience” and the tiered dispute ladder, {entered} "
            "disputes were screened, and {resolved} were resolved before reaching a "
            "district leader (rate {rate}), settling disputes early and locally."
        ),
        "h2_supervision": "3. Supervision",
        "p_supervision": (
            "Key cases were supervised: {orders} supervision orders and {warnings} deadline "
            "warnings were issued; {breach}"
        ),
        "breach_some": "{n} cases breached their statutory deadline.",
        "breach_none": "no case breached its statutory deadline.",
        "h2_backlog": "4. Long-standing cases",
        "h2_suggest": "5. Suggestions from petitions",
        "p_suggest": (
            "Drawing on what petitions reveal about policy and practice, the office made "
            "{made} suggestions to the units concerned; {adopted} were adopted ({rate})."
        ),
        "p_backlog_work": (
            "{higher} cases were assigned from above and {resolved} of them resolved "
            "(rate {rate}); backflow: {backflow} cases, year on year: {yoy}."
        ),
        "h3": "III. Main problems",
        "h3_cat": "1. Complaints concentrate in a few fields",
        "p_cat": (
            "By field, the top {k} were {items}, together {sum} of all petitions: the "
            "fields people complain about most."
        ),
        "p_cat_none": "No figures by category for this period.",
        "h3_town": "2. Some townships have high volumes",
        "p_town": "By township, the top {k} were {items}, together {sum}.",
        "p_town_none": "No figures by township for this period.",
        "h3_unit": "3. Some units carry a heavy caseload",
        "p_unit": "By responsible unit, the most cases went to {items}, together {sum}.",
        "p_unit_none": "No figures by unit for this period.",
        "top_item": "{name} ({n}, {share})",
        "h3_quality": "4. Quality of handling can improve",
        "p_quality": (
            "The on-time rate was {on_time} with {breaches} deadline breaches; {dissatisfied} "
            "petitioners were dissatisfied, with {reviews} reviews and {rereviews} re-reviews "
            "requested; {repeat} repeat petitions made up {repeat_share} of the total."
        ),
        "h3_backflow": "5. Backflow persists",
        "h3_backflow_none": "5. Risk of escalation",
        "p_backflow": (
            "{n} cases flowed back in this period (year on year: {yoy}): some grievances "
            "were not settled locally in time."
        ),
        "p_backflow_none": (
            "There was no backflow in this period, but {esc} petitions were escalated; "
            "prevention at the source needs strengthening."
        ),
        "h4": "IV. Next steps",
        "p_next": (
            "Next, the bureau will follow the “Fengqiao experience” and the Regulations on "
            "Petition Work, and focus on: first, prevention at the source, with targeted "
            "screening in the fields and townships with most complaints; second, holding "
            "townships and departments to their responsibility so disputes are settled "
            "locally; third, better handling, with strict deadlines and supervision to raise "
            "satisfaction; fourth, resolving long-standing cases, with leaders taking charge "
            "of cases, to stop backflow."
        ),
        "sign_org": "{district} Petition Bureau",
        "date": "{d} {month} {y}",
        "appendix": "Appendix: tables and charts",
        "cap_cat": "Table A1  Petitions by category",
        "cap_town": "Table A2  Petitions by township",
        "cap_unit": "Table A3  Cases by responsible unit",
        "cap_rank": "Table A{no}  {kind} ranking, {period}",
        "col_category": "Category",
        "col_township": "Township",
        "col_unit": "Unit",
        "col_cases": "Cases",
        "col_share": "Share",
        "col_rank": "Rank",
        "col_name": "Name",
        "col_score": "Score",
        "col_volume": "Volume",
        "col_note": "Note",
        "total": "Total",
        "rank_bottom": "Bottom place",
        "rank_unranked": "Too few cases to rank",
        "rank_kind_unit": "Unit",
        "rank_kind_leader": "Leader",
        "fig_trend": "Figure A1  Petitions received by month, {period}",
        "fig_channel": "Figure A2  Petitions by channel",
        "fig_cat": "Figure A3  Petitions by category (top 10)",
        "fig_town": "Figure A4  Petitions by township (top 12)",
        "axis_unit": "Cases",
        "cmp_up": "up {pct}",
        "cmp_down": "down {pct}",
        "cmp_same": "unchanged",
        "cmp_na": "no comparable data",
        "pp_up": "up {pp} percentage points",
        "pp_down": "down {pp} percentage points",
        "cell_same": "flat",
        "list_sep": "; ",
        "enum_sep": ", ",
        "rate_na": "n/a",
        "unit_piece": "",
        "ch_letter": "letters",
        "ch_visit": "visits",
        "ch_online": "online",
        "ch_phone": "phone",
        "ch_fax": "fax",
        "ch_other": "other",
        "period_year": "{y}",
        "period_quarter": "Q{q} {y}",
        "period_month": "{month} {y}",
        "month_short": "{mon}",
    },
}

_CHANNELS = ("letter", "visit", "online", "phone", "fax")
_QUARTERS_ZH = "一二三四"
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# ---- document model: built once, written out as .docx or Markdown ---------------------


@dataclass(frozen=True)
class _Para:
    kind: Literal["title", "h1", "h2", "p", "note", "sign", "appendix"]
    text: str
    keep_with_next: bool = False


@dataclass(frozen=True)
class _Table:
    caption: str
    header: list[str]
    rows: list[list[str]]
    widths: list[float]  # cm, summing to the text width
    note: str = ""
    left: frozenset[int] = frozenset({0})  # columns of names, left-aligned
    bold_rows: frozenset[int] = frozenset()  # totals, the bottom place
    flag_rows: frozenset[int] = frozenset()  # shown in red: the bottom place


@dataclass(frozen=True)
class _Chart:
    caption: str
    kind: Literal["trend", "channel", "barh"]
    labels: list[str]  # categories: months, channels, names
    values: list[int]
    texts: list[str]  # the value printed on each bar, formatted as in the text
    unit: str  # e.g. 单位：件
    big: int  # numbers from here on get thousands separators


_Block = _Para | _Table | _Chart

# characters of 2号 (22 pt) that fit on a line of the title
_TITLE_EMS = 19.5
# A4, margins as in GB/T 9704 (top 3.7, bottom 3.5, left 2.8, right 2.6 cm)
_TEXT_WIDTH_CM = 21.0 - 2.8 - 2.6


@dataclass
class _Writer:
    """Builds the report's blocks from the figures, in one language."""

    f: ReportFigures
    lang: Lang
    out: list[_Block] = field(default_factory=list)

    # -- small formatting helpers --

    @property
    def gap(self) -> str:
        """Between two sentences run together."""
        return "" if self.lang == "zh" else " "

    def t(self, key: str, **kw: object) -> str:
        s = TEXT[self.lang][key]
        return s.format(**kw) if kw else s

    @property
    def big(self) -> int:
        """Thousands separators from here on: 四位以内的整数不分节 in Chinese."""
        return 10_000 if self.lang == "zh" else 1_000

    def n(self, v: int) -> str:
        return f"{v:,}" if abs(v) >= self.big else str(v)

    def chart(
        self,
        caption: str,
        kind: Literal["trend", "channel", "barh"],
        labels: list[str],
        values: list[int],
        total: int = 0,
    ) -> _Chart:
        """total > 0: each bar also shows its share of it."""
        texts = [
            f"{self.n(v)} ({self.pct(self.share(v, total))})" if total else self.n(v)
            for v in values
        ]
        return _Chart(caption, kind, labels, values, texts, self.t("axis_unit"), self.big)

    @staticmethod
    def pct(x: float | None) -> str:
        return "—" if x is None else f"{x * 100:.1f}%"

    def pshare(self, part: int, total: int) -> str:
        """A share in prose: of nothing, nothing (0.0%), where a table shows —."""
        return self.pct(part / total if total > 0 else 0.0)

    def rate(self, x: float | None) -> str:
        return self.t("rate_na") if x is None else self.pct(x)

    @staticmethod
    def share(part: int, total: int) -> float | None:
        return part / total if total > 0 else None

    @staticmethod
    def rel(cur: int, base: int | None) -> float | None:
        if base is None:
            return None
        if base == 0:
            return 0.0 if cur == 0 else None
        return (cur - base) / base

    def cmp(self, cur: int, base: int | None) -> str:
        """'上升3.1%' / '下降5.2%' / '持平' / '无可比数据'."""
        r = self.rel(cur, base)
        if r is None:
            return self.t("cmp_na")
        if round(r * 100, 1) == 0:
            return self.t("cmp_same")
        return self.t("cmp_up" if r > 0 else "cmp_down", pct=f"{abs(r) * 100:.1f}%")

    def cmp_pp(self, cur: float | None, base: float | None) -> str:
        if cur is None or base is None:
            return self.t("cmp_na")
        d = round((cur - base) * 100, 1)
        if d == 0:
            return self.t("cmp_same")
        return self.t("pp_up" if d > 0 else "pp_down", pp=f"{abs(d):.1f}")

    def cell_rel(self, cur: int, base: int | None) -> str:
        r = self.rel(cur, base)
        if r is None:
            return "—"
        if round(r * 100, 1) == 0:
            return self.t("cell_same")
        return f"{r * 100:+.1f}%"

    def cell_pp(self, cur: float | None, base: float | None) -> str:
        if cur is None or base is None:
            return "—"
        d = round((cur - base) * 100, 1)
        return self.t("cell_same") if d == 0 else f"{d:+.1f}"

    def period_label(self, period: str) -> str:
        y, _, rest = period.partition("-")
        if not y.isdigit():
            return period
        if not rest:
            return self.t("period_year", y=y)
        if rest.startswith("Q") and rest[1:] in ("1", "2", "3", "4"):
            q = int(rest[1:])
            return self.t("period_quarter", y=y, q=_QUARTERS_ZH[q - 1] if self.lang == "zh" else q)
        if rest.isdigit() and 1 <= int(rest) <= 12:
            m = int(rest)
            return self.t("period_month", y=y, m=m, month=_MONTHS_EN[m - 1])
        return period

    def month_label(self, period: str, short: bool = True) -> str:
        """7月 / Jul (short) or July."""
        _, _, rest = period.partition("-")
        if rest.isdigit() and 1 <= int(rest) <= 12:
            m = int(rest)
            name = _MONTHS_EN[m - 1]
            return self.t("month_short", m=m, mon=name[:3] if short else name)
        return period

    def name(self, key: str) -> str:
        return self.f.names.get(key, key)

    def channel_name(self, key: str) -> str:
        k = f"ch_{key}"
        return self.t(k) if k in TEXT[self.lang] else self.name(key)

    def join(self, items: Iterable[str], sep: str = "list_sep") -> str:
        return self.t(sep).join(items)

    def para(
        self,
        kind: Literal["title", "h1", "h2", "p", "note", "sign", "appendix"],
        text: str,
        keep_with_next: bool = False,
    ) -> None:
        self.out.append(_Para(kind, text, keep_with_next))

    # -- the report --

    def build(self) -> list[_Block]:
        f = self.f
        period = self.period_label(f.period)
        title = self.t("title", district=f.district_name, period=period)
        if self.lang == "zh" and _ems(title) > _TITLE_EMS:
            head = f"{f.district_name}{period}"
            title = f"{head}\n{title[len(head) :]}"
        self.para("title", title)
        self.para(
            "p", self.t("opening", period=period, district=f.district_name, trend=self.trend())
        )
        self.section_one(period)
        self.section_two()
        self.section_three()
        self.para("h1", self.t("h4"))
        # the last lines of the body stay on the page of the signature
        self.para("p", self.t("p_next"), keep_with_next=True)
        self.para("sign", self.t("sign_org", district=f.district_name), keep_with_next=True)
        self.para("sign", self.report_date())
        self.appendix(period)
        return self.out

    def trend(self) -> str:
        ind = self.f.indicators
        if ind.achieved:
            return self.t("trend_achieved")
        if ind.received_down is None:
            return self.t("trend_unknown")
        return self.t("trend_down" if ind.received_down else "trend_up")

    def report_date(self) -> str:
        d = date.today()
        if self.f.generated_at:
            with contextlib.suppress(ValueError):
                d = datetime.fromisoformat(self.f.generated_at.replace("Z", "+00:00")).date()
        return self.t("date", y=d.year, m=d.month, d=d.day, month=_MONTHS_EN[d.month - 1])

    def section_one(self, period: str) -> None:
        c, p, ly = self.f.current, self.f.previous, self.f.last_year
        self.para("h1", self.t("h1"))

        self.para("h2", self.t("h1_total"))
        yoy_total = self.rel(c.received, ly.received if ly else None)
        mom_total = self.rel(c.received, p.received if p else None)
        text = self.t(
            "p_total" if yoy_total is not None or mom_total is not None else "p_total_na",
            period=period,
            received=self.n(c.received),
            people=self.n(c.people),
            yoy=self.cmp(c.received, ly.received if ly else None),
            mom=self.cmp(c.received, p.received if p else None),
        )
        months = [m for m in self.f.monthly if m.received or m.period]
        if len(months) >= 2 and c.received > 0:
            peak = max(months, key=lambda m: m.received)
            avg = sum(m.received for m in months) / len(months)
            text += self.gap + self.t(
                "p_peak",
                avg=self.n(round(avg)),
                month=self.month_label(peak.period, short=False),
                n=self.n(peak.received),
            )
        self.para("p", text)

        self.para("h2", self.t("h1_channel"))
        ch = _channel_counts(c)
        total_ch = sum(ch.values())
        if total_ch:
            items = [
                self.t(
                    "channel_item",
                    name=self.channel_name(k),
                    n=self.n(v),
                    share=self.pct(self.share(v, total_ch)),
                )
                for k, v in ch.items()
            ]
            top = max(ch, key=lambda k: ch[k])
            self.para(
                "p",
                self.t(
                    "p_channel",
                    items=self.join(items),
                    top=self.t("channel_top", name=_capital(self.channel_name(top))),
                ),
            )
        else:
            self.para("p", self.t("p_channel_none"))

        self.para("h2", self.t("h1_kind"))
        kinds = c.first + c.repeat
        self.para(
            "p",
            self.t(
                "p_kind",
                first=self.n(c.first),
                first_share=self.pshare(c.first, kinds),
                repeat=self.n(c.repeat),
                repeat_share=self.pshare(c.repeat, kinds),
                repeat_yoy=self.cmp(c.repeat, ly.repeat if ly else None),
                group=self.n(c.group),
                group_people=self.n(c.group_people),
                group_yoy=self.cmp(c.group, ly.group if ly else None),
                escalated=self.n(c.escalated),
                escalated_yoy=self.cmp(c.escalated, ly.escalated if ly else None),
                higher=self.n(c.higher_level),
            ),
        )

        self.para("h2", self.t("h1_route"))
        outs = ""
        if lit := c.by_decision.get("out_litigation", 0):
            outs += self.t("route_litigation", n=self.n(lit))
        if disc := c.by_decision.get("out_discipline", 0):
            outs += self.t("route_discipline", n=self.n(disc))
        self.para(
            "p",
            self.t(
                "p_route",
                routed=self.n(c.routed),
                accepted=self.n(_accepted(c)),
                forward=self.n(c.by_decision.get("forward", 0)),
                outs=outs,
                decline=self.n(c.by_decision.get("decline", 0)),
            )
            + (self.t("route_disputes", n=self.n(c.unit_disputes)) if c.unit_disputes else ""),
        )

        self.para("h2", self.t("h1_done"))
        if c.replied:
            text = self.t(
                "p_done",
                replied=self.n(c.replied),
                on_time=self.n(c.replied_on_time),
                on_time_rate=self.rate(c.on_time_rate),
                on_time_yoy=self.cmp_pp(c.on_time_rate, ly.on_time_rate if ly else None),
                resolved=self.n(c.resolved),
                resolution_rate=self.rate(c.resolution_rate),
            )
        else:
            text = self.t("p_done_none")
        if c.rated:
            text += self.gap + self.t(
                "p_rated",
                rated=self.n(c.rated),
                satisfied=self.n(c.satisfied),
                basic=self.n(c.basically_satisfied),
                dissatisfied=self.n(c.dissatisfied),
                rate=self.rate(c.satisfaction_rate),
                yoy=self.cmp_pp(c.satisfaction_rate, ly.satisfaction_rate if ly else None),
            )
        else:
            text += self.gap + self.t("p_rated_none")
        text += self.gap + self.t(
            "p_review", reviews=self.n(c.reviews), rereviews=self.n(c.rereviews)
        )
        self.para("p", text)

        self.para("h2", self.t("h1_backlog"))
        self.para(
            "p",
            self.t(
                "p_backlog",
                start=self.n(c.backlog_start),
                end=self.n(c.backlog_end),
                change=self.backlog_change(c),
                received=self.n(c.received),
                yoy=self.cmp(c.received, ly.received if ly else None),
            ),
        )

        self.para("h2", self.t("h1_ind"))
        self.para("p", self.indicators_text())

        self.out.append(self.key_table(period))

    def backlog_change(self, c: PeriodFigures) -> str:
        d = c.backlog_end - c.backlog_start
        if d == 0:
            return self.t("cmp_same")
        if c.backlog_start == 0:
            return self.t("backlog_new", n=self.n(d))
        pct = f"{abs(d) / c.backlog_start * 100:.1f}%"
        return self.t("backlog_down" if d < 0 else "backlog_up", n=self.n(abs(d)), pct=pct)

    def indicators_text(self) -> str:
        c, ly = self.f.current, self.f.last_year
        ind = self.f.indicators

        def status(v: bool | None) -> str:
            # nothing to add where the change itself already says 无可比数据
            return "" if v is None else self.t("st_yes" if v else "st_no")

        items = [
            self.t(
                "ind_received",
                chg=self.cmp(c.received, ly.received if ly else None),
                status=status(ind.received_down),
            ),
            self.t(
                "ind_group",
                chg=self.cmp(c.group, ly.group if ly else None),
                status=status(ind.group_down),
            ),
            self.t(
                "ind_escalated",
                chg=self.cmp(c.escalated, ly.escalated if ly else None),
                status=status(ind.escalated_down),
            ),
            self.t("ind_backlog_na")
            if ind.backlog_down is None
            else self.t(
                "ind_backlog",
                chg=self.cmp(c.backlog_end, c.backlog_start),
                order=self.t("order_better" if ind.backlog_down else "order_worse"),
                status=status(ind.backlog_down),
            ),
        ]
        parts = (ind.received_down, ind.group_down, ind.escalated_down, ind.backlog_down)
        if ind.achieved:
            conclusion = self.t("ind_all")
        elif any(v is False for v in parts):
            conclusion = self.t("ind_some", n=sum(1 for v in parts if v is False))
        else:
            conclusion = self.t("ind_unknown")
        return self.t("p_ind", items=self.join(items), conclusion=conclusion)

    def key_table(self, period: str) -> _Table:
        c, p, ly = self.f.current, self.f.previous, self.f.last_year
        counts: list[tuple[str, Callable[[PeriodFigures], int]]] = [
            ("row_received", lambda x: x.received),
            ("row_people", lambda x: x.people),
            ("row_first", lambda x: x.first),
            ("row_repeat", lambda x: x.repeat),
            ("row_group", lambda x: x.group),
            ("row_group_people", lambda x: x.group_people),
            ("row_escalated", lambda x: x.escalated),
            ("row_higher", lambda x: x.higher_level),
            ("row_accepted", _accepted),
            ("row_replied", lambda x: x.replied),
            ("row_resolved", lambda x: x.resolved),
        ]
        rates: list[tuple[str, Callable[[PeriodFigures], float | None]]] = [
            ("row_on_time", lambda x: x.on_time_rate),
            ("row_resolution", lambda x: x.resolution_rate),
            ("row_satisfaction", lambda x: x.satisfaction_rate),
        ]
        tail: list[tuple[str, Callable[[PeriodFigures], int]]] = [
            ("row_backlog_end", lambda x: x.backlog_end),
            ("row_backflow", lambda x: x.backflow),
            ("row_receptions", lambda x: x.leader_receptions),
            ("row_orders", lambda x: x.supervision_orders),
        ]
        rows: list[list[str]] = []

        def count_row(key: str, get: Callable[[PeriodFigures], int]) -> list[str]:
            cv, pv, lv = get(c), get(p) if p else None, get(ly) if ly else None
            return [
                self.t(key),
                self.n(cv),
                "—" if pv is None else self.n(pv),
                "—" if lv is None else self.n(lv),
                self.cell_rel(cv, pv),
                self.cell_rel(cv, lv),
            ]

        rows += [count_row(k, g) for k, g in counts]
        for key, get_rate in rates:
            cr, pr, lr = get_rate(c), get_rate(p) if p else None, get_rate(ly) if ly else None
            rows.append(
                [
                    self.t(key),
                    self.pct(cr),
                    self.pct(pr),
                    self.pct(lr),
                    self.cell_pp(cr, pr),
                    self.cell_pp(cr, lr),
                ]
            )
        rows += [count_row(k, g) for k, g in tail]
        header = [
            self.t(k) for k in ("col_item", "col_cur", "col_prev", "col_ly", "col_mom", "col_yoy")
        ]
        first = 4.6 if self.lang == "zh" else 5.0
        rest = (_TEXT_WIDTH_CM - first) / 5
        return _Table(
            caption=self.t("cap_key", period=period),
            header=header,
            rows=rows,
            widths=[first] + [rest] * 5,
            note=self.t("note_key"),
        )

    def section_two(self) -> None:
        c, ly = self.f.current, self.f.last_year
        self.para("h1", self.t("h2"))
        self.para("h2", self.t("h2_leader"))
        self.para(
            "p",
            self.t(
                "p_leader",
                batches=self.n(c.leader_receptions),
                people=self.n(c.leader_reception_people),
                out=self.n(c.leader_visits_out),
                packages=self.n(c.leader_packages),
                resolved=self.n(c.leader_resolved),
                rate=self.rate(self.share(c.leader_resolved, c.leader_packages)),
            ),
        )
        self.para("h2", self.t("h2_mediation"))
        self.para(
            "p",
            self.t(
                "p_mediation",
                entered=self.n(c.mediation_entered),
                resolved=self.n(c.mediation_resolved),
                rate=self.rate(self.share(c.mediation_resolved, c.mediation_entered)),
            ),
        )
        self.para("h2", self.t("h2_supervision"))
        breach = (
            self.t("breach_some", n=self.n(c.breaches)) if c.breaches else self.t("breach_none")
        )
        self.para(
            "p",
            self.t(
                "p_supervision",
                orders=self.n(c.supervision_orders),
                warnings=self.n(c.warnings),
                breach=breach,
            ),
        )
        self.para("h2", self.t("h2_backlog"))
        self.para(
            "p",
            self.t(
                "p_backlog_work",
                higher=self.n(c.higher_level),
                resolved=self.n(c.higher_level_resolved),
                rate=self.rate(self.share(c.higher_level_resolved, c.higher_level)),
                backflow=self.n(c.backflow),
                yoy=self.cmp(c.backflow, ly.backflow if ly else None),
            ),
        )
        self.para("h2", self.t("h2_suggest"))
        self.para(
            "p",
            self.t(
                "p_suggest",
                made=self.n(c.suggestions_made),
                adopted=self.n(c.suggestions_adopted),
                rate=self.rate(self.share(c.suggestions_adopted, c.suggestions_made)),
            ),
        )

    def top_items(self, counts: dict[str, int], k: int) -> tuple[list[str], float | None, int]:
        total = sum(counts.values())
        top = _sorted_desc(counts)[:k]
        items = [
            self.t(
                "top_item",
                name=self.name(key),
                n=self.n(v),
                share=self.pct(self.share(v, total)),
            )
            for key, v in top
        ]
        return items, self.share(sum(v for _, v in top), total), len(top)

    def section_three(self) -> None:
        c, ly = self.f.current, self.f.last_year
        self.para("h1", self.t("h3"))
        for head, text_key, none_key, counts in (
            ("h3_cat", "p_cat", "p_cat_none", c.by_category),
            ("h3_town", "p_town", "p_town_none", c.by_township),
            ("h3_unit", "p_unit", "p_unit_none", c.by_unit),
        ):
            self.para("h2", self.t(head))
            items, total_share, k = self.top_items(counts, 3)
            if k:
                text = self.t(
                    text_key,
                    k=k if self.lang == "en" else "一二三"[k - 1],
                    items=self.join(items, "enum_sep"),
                    sum=self.pct(total_share),
                )
            else:
                text = self.t(none_key)
            self.para("p", text)
        self.para("h2", self.t("h3_quality"))
        self.para(
            "p",
            self.t(
                "p_quality",
                on_time=self.rate(c.on_time_rate),
                breaches=self.n(c.breaches),
                dissatisfied=self.n(c.dissatisfied),
                reviews=self.n(c.reviews),
                rereviews=self.n(c.rereviews),
                repeat=self.n(c.repeat),
                repeat_share=self.pshare(c.repeat, c.received),
            ),
        )
        if c.backflow:
            self.para("h2", self.t("h3_backflow"))
            yoy = self.cmp(c.backflow, ly.backflow if ly else None)
            self.para("p", self.t("p_backflow", n=self.n(c.backflow), yoy=yoy))
        else:
            self.para("h2", self.t("h3_backflow_none"))
            self.para("p", self.t("p_backflow_none", esc=self.n(c.escalated)))

    def breakdown(
        self, caption: str, col: str, counts: dict[str, int], last: dict[str, int] | None
    ) -> _Table:
        total = sum(counts.values())
        rows: list[list[str]] = []
        keys = _sorted_desc(counts)
        if last is not None:
            keys += [(k, 0) for k in sorted(last) if k not in counts and last[k]]
        for key, v in keys:
            row = [self.name(key), self.n(v), self.pct(self.share(v, total))]
            if last is not None:
                lv = last.get(key, 0)
                row += [self.n(lv), self.cell_rel(v, lv)]
            rows.append(row)
        total_row = [self.t("total"), self.n(total), self.pct(1.0 if total else None)]
        header = [self.t(col), self.t("col_cases"), self.t("col_share")]
        if last is not None:
            lt = sum(last.values())
            total_row += [self.n(lt), self.cell_rel(total, lt)]
            header += [self.t("col_ly"), self.t("col_yoy")]
        rows.append(total_row)
        first = 6.0 if last is not None else 8.6
        rest = (_TEXT_WIDTH_CM - first) / (len(header) - 1)
        return _Table(
            caption=caption,
            header=header,
            rows=rows,
            widths=[first] + [rest] * (len(header) - 1),
            bold_rows=frozenset({len(rows) - 1}),
        )

    def appendix(self, period: str) -> None:
        c, ly = self.f.current, self.f.last_year
        self.para("appendix", self.t("appendix"))
        self.out.append(
            self.breakdown(
                self.t("cap_cat"), "col_category", c.by_category, ly.by_category if ly else None
            )
        )
        self.out.append(
            self.breakdown(
                self.t("cap_town"), "col_township", c.by_township, ly.by_township if ly else None
            )
        )
        self.out.append(self.breakdown(self.t("cap_unit"), "col_unit", c.by_unit, None))
        no = 4
        for kind, ranking in self.f.rankings.items():
            if not ranking:
                continue
            self.out.append(self.ranking_table(no, period, kind, ranking))
            no += 1
        # charts
        if len(self.f.monthly) > 1 and any(m.received for m in self.f.monthly):
            self.out.append(
                self.chart(
                    self.t("fig_trend", period=period),
                    "trend",
                    [self.month_label(m.period) for m in self.f.monthly],
                    [m.received for m in self.f.monthly],
                )
            )
        ch = _channel_counts(c)
        if sum(ch.values()):
            self.out.append(
                self.chart(
                    self.t("fig_channel"),
                    "channel",
                    [_capital(self.channel_name(k)) for k in ch],
                    list(ch.values()),
                    sum(ch.values()),
                )
            )
        for caption, counts, k in (
            (self.t("fig_cat"), c.by_category, 10),
            (self.t("fig_town"), c.by_township, 12),
        ):
            top = _sorted_desc(counts)[:k]
            if top:
                self.out.append(
                    self.chart(
                        caption,
                        "barh",
                        [self.name(key) for key, _ in top],
                        [v for _, v in top],
                        sum(counts.values()),
                    )
                )

    def ranking_table(
        self, no: int, period: str, kind: str, ranking: list[dict[str, object]]
    ) -> _Table:
        kind_key = f"rank_kind_{kind}"
        kind_label = self.t(kind_key) if kind_key in TEXT[self.lang] else kind
        rows: list[list[str]] = []
        flagged: set[int] = set()
        for i, r in enumerate(ranking):
            subject = str(r.get("subject") or r.get("name") or "")
            rank = r.get("rank")
            ranked = bool(r.get("ranked", bool(rank)))
            score = r.get("score")
            volume = r.get("volume", 0)
            note = ""
            if r.get("bottom"):
                note = self.t("rank_bottom")
                flagged.add(i)
            elif not ranked:
                note = self.t("rank_unranked")
            rows.append(
                [
                    str(rank) if ranked and rank else "—",
                    self.name(subject),
                    f"{score:.1f}" if isinstance(score, int | float) else "—",
                    self.n(volume) if isinstance(volume, int) else str(volume),
                    note,
                ]
            )
        header = [
            self.t(k) for k in ("col_rank", "col_name", "col_score", "col_volume", "col_note")
        ]
        return _Table(
            caption=self.t("cap_rank", no=no, period=period, kind=kind_label),
            header=header,
            rows=rows,
            widths=[1.6, 6.0, 2.2, 2.2, _TEXT_WIDTH_CM - 12.0],
            left=frozenset({1}),
            bold_rows=frozenset(flagged),
            flag_rows=frozenset(flagged),
        )


def _capital(s: str) -> str:
    return s[:1].upper() + s[1:]


def _accepted(p: PeriodFigures) -> int:
    return p.accepted or p.by_decision.get("accept", 0)


def _channel_counts(p: PeriodFigures) -> dict[str, int]:
    """The five channels in the usual order (信、访、网、电、传真), then any other."""
    out = {k: p.by_channel.get(k, 0) for k in _CHANNELS}
    for k, v in p.by_channel.items():
        if k not in out and v:
            out[k] = v
    return out


def _sorted_desc(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: (-kv[1], kv[0]))


def _lang(lang: str) -> Lang:
    if lang == "zh":
        return "zh"
    if lang == "en":
        return "en"
    raise ValueError(f"lang: use 'zh' or 'en', not {lang!r}")


# ---- JSON and Markdown -----------------------------------------------------------------


def render_json(f: ReportFigures) -> bytes:
    """The figures, their rates and the 三降一好转 indicators as UTF-8 JSON."""
    return json.dumps(f.to_json(), ensure_ascii=False, indent=2).encode("utf-8")


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|")


def render_markdown(f: ReportFigures, lang: str = "zh") -> str:
    """The report as Markdown: the same text and tables as the .docx, no charts."""
    lines: list[str] = []
    for b in _Writer(f, _lang(lang)).build():
        if isinstance(b, _Para):
            prefix = {"title": "# ", "h1": "## ", "h2": "### ", "appendix": "## "}.get(b.kind, "")
            if b.kind == "note":
                lines += [f"*{b.text}*", ""]
            else:
                lines += [prefix + b.text.replace("\n", ""), ""]
        elif isinstance(b, _Table):
            lines += [f"**{b.caption}**", ""]
            lines.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
            lines.append("|" + "|".join([":---"] + ["---:"] * (len(b.header) - 1)) + "|")
            for i, row in enumerate(b.rows):
                cells = [_md_cell(x) for x in row]
                if i in b.bold_rows:
                    cells = [f"**{x}**" if x else x for x in cells]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
            if b.note:
                lines += [b.note, ""]
    return "\n".join(lines).rstrip() + "\n"


# ---- charts ----------------------------------------------------------------------------

# Chinese-capable families, best first; fonts-noto-cjk provides the first.
_CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Noto Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "Noto Serif CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK TC",
)
_CJK_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
_CHART_DPI = 150
_BLUE = "#2F5597"
_GREY = "#595959"


@functools.cache
def _cjk_family() -> str | None:
    """A CJK font family matplotlib has, or None. Looked up by name in matplotlib's
    font list (so it never logs 'findfont: not found'); fonts installed after that
    list was cached are added from their usual paths."""

    def known() -> set[str]:
        return {e.name for e in font_manager.fontManager.ttflist}

    names = known()
    for fam in _CJK_FAMILIES:
        if fam in names:
            return fam
    for path in _CJK_FILES:
        if Path(path).exists():
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    names = known()
    return next((fam for fam in _CJK_FAMILIES if fam in names), None)


def _chart_png(ch: _Chart) -> bytes:
    """One chart as a PNG at _CHART_DPI. Uses matplotlib's object API (no pyplot,
    so no global list of figures to leak into) and one CJK font family, chosen
    once, for all text."""
    fam = _cjk_family()
    rc = {
        "font.family": "sans-serif",
        "font.sans-serif": ([fam] if fam else []) + ["DejaVu Sans"],
        "font.size": 9,
        "axes.unicode_minus": False,
        "axes.edgecolor": "#A6A6A6",
        "axes.linewidth": 0.6,
        "xtick.color": _GREY,
        "ytick.color": _GREY,
        "xtick.major.size": 0,
        "ytick.major.size": 0,
    }
    with warnings.catch_warnings():
        if fam is None:
            # No CJK font at all: Chinese labels come out as boxes, and matplotlib
            # warns per glyph. The chart is still worth having; the warning is not.
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        with rc_context(rc):  # type: ignore[arg-type]
            return _draw(ch)


def _draw(ch: _Chart) -> bytes:
    values = ch.values
    vmax = max(values) if values else 0
    ink = "#262626"
    if ch.kind == "barh":
        # labelled bars, largest on top; the values say it all, so no value axis
        fig = Figure(figsize=(6.2, 0.35 + 0.3 * len(values)), dpi=_CHART_DPI)
        ax = fig.add_subplot()
        ys = list(range(len(values)))
        bars = ax.barh(ys, values, color=_BLUE, height=0.62)
        ax.set_yticks(ys, ch.labels)
        ax.invert_yaxis()
        ax.bar_label(bars, ch.texts, padding=3, fontsize=8, color=ink)
        ax.set_xlim(0, vmax * 1.3 if vmax else 1)
        ax.xaxis.set_visible(False)
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
        ax.tick_params(axis="y", labelsize=9, colors=ink)
    else:
        fig = Figure(figsize=(6.2, 2.8), dpi=_CHART_DPI)
        ax = fig.add_subplot()
        xs = list(range(len(values)))
        bars = ax.bar(xs, values, color=_BLUE, width=0.62 if ch.kind == "trend" else 0.5)
        ax.set_xticks(xs, ch.labels)
        ax.bar_label(bars, ch.texts, padding=2, fontsize=8, color=ink)
        ax.set_ylim(0, vmax * 1.18 if vmax else 1)
        ax.set_xlim(-0.6, len(values) - 0.4)
        ax.yaxis.grid(True, color="#E7E6E6", linewidth=0.6)
        ax.yaxis.set_major_formatter(
            FuncFormatter(lambda v, _pos: f"{v:,.0f}" if abs(v) >= ch.big else f"{v:.0f}")
        )
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.tick_params(axis="x", labelsize=9, colors=ink)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(ch.unit, loc="left", fontsize=8, color=_GREY, pad=4)
    ax.set_axisbelow(True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_CHART_DPI, bbox_inches="tight", pad_inches=0.06)
    return buf.getvalue()


# ---- .docx -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Look:
    """Fonts and sizes, per language. East Asian names are the usual Windows ones
    (仿宋, 黑体, 楷体, 宋体); Word and LibreOffice substitute a similar font where
    one is missing."""

    latin: str
    body_ea: str  # 仿宋: body text
    head_ea: str  # 黑体: 一、 headings, captions
    sub_ea: str  # 楷体: （一） headings
    title_ea: str  # 宋体, bold: the title
    table_ea: str  # 宋体: tables
    body_pt: float
    title_pt: float
    table_pt: float
    line_pt: float  # exact line pitch of body text
    indent_pt: float  # first-line indent of body text (two characters in Chinese)
    bold_heads: bool


_LOOKS: dict[str, _Look] = {
    # GB/T 9704: 3号 (16 pt) 仿宋 body on a fixed 28 pt pitch, 2号 (22 pt) title
    "zh": _Look(
        "Times New Roman", "仿宋", "黑体", "楷体", "宋体", "宋体", 16, 22, 10.5, 28, 32, False
    ),
    "en": _Look("Times New Roman", "仿宋", "黑体", "楷体", "宋体", "宋体", 12, 17, 10, 17, 0, True),
}
_EMU_PER_INCH = 914_400


def _set_fonts(el: BaseOxmlElement, latin: str, east_asian: str) -> None:
    """Set w:rFonts (ascii, hAnsi, cs and eastAsia) on a style, run or rPrDefault,
    dropping the theme fonts, which would otherwise win over the names."""
    rpr = el.find(qn("w:rPr"))
    if rpr is None:
        rpr = OxmlElement("w:rPr")
        el.append(rpr) if el.tag != qn("w:r") else el.insert(0, rpr)
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = OxmlElement("w:rFonts")
        rpr.insert(0, rfonts)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        rfonts.attrib.pop(qn(attr), None)
    for attr in ("w:ascii", "w:hAnsi", "w:cs"):
        rfonts.set(qn(attr), latin)
    rfonts.set(qn("w:eastAsia"), east_asian)


class _DocxWriter:
    def __init__(self, lang: Lang) -> None:
        self.lang = lang
        self.look = _LOOKS[lang]
        self.doc = Document()
        self._page()
        self._styles()
        self._footer()
        self._signed = False
        self._sign_indent: dict[str, float] = {}

    # -- setup --

    def _page(self) -> None:
        sec = self.doc.sections[0]
        sec.page_width, sec.page_height = Cm(21.0), Cm(29.7)
        sec.top_margin, sec.bottom_margin = Cm(3.7), Cm(3.5)
        sec.left_margin, sec.right_margin = Cm(2.8), Cm(2.6)
        sec.header_distance, sec.footer_distance = Cm(1.5), Cm(2.5)

    def _style(
        self, name: str, east: str, size: float, bold: bool = False, base: str = "Normal"
    ) -> ParagraphStyle:
        styles = self.doc.styles
        try:
            st = styles[name]
        except KeyError:
            st = styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
        assert isinstance(st, ParagraphStyle)
        if name != base:
            st.base_style = styles[base]
        _set_fonts(st.element, self.look.latin, east)
        st.font.size = Pt(size)
        st.font.bold = bold
        st.font.italic = False
        st.font.color.rgb = RGBColor(0, 0, 0)
        return st

    def _styles(self) -> None:
        lk, en = self.look, self.lang == "en"
        defaults = self.doc.styles.element.find(qn("w:docDefaults"))
        rpr_default = None if defaults is None else defaults.find(qn("w:rPrDefault"))
        if rpr_default is not None:
            _set_fonts(rpr_default, lk.latin, lk.body_ea)

        self.normal = self._style("Normal", lk.body_ea, lk.body_pt)
        pf = self.normal.paragraph_format
        pf.space_before, pf.space_after = Pt(0), Pt(6 if en else 0)
        pf.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        pf.line_spacing = Pt(lk.line_pt)
        pf.first_line_indent = Pt(lk.indent_pt)
        pf.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        pf.widow_control = True

        self.h1 = self._style("Heading 1", lk.head_ea, lk.body_pt + (1 if en else 0), lk.bold_heads)
        self.h2 = self._style("Heading 2", lk.sub_ea, lk.body_pt, lk.bold_heads)
        for st, before in ((self.h1, 14 if en else 0), (self.h2, 8 if en else 0)):
            hpf = st.paragraph_format
            hpf.space_before, hpf.space_after = Pt(before), Pt(3 if en else 0)
            hpf.line_spacing_rule = WD_LINE_SPACING.EXACTLY
            hpf.line_spacing = Pt(lk.line_pt)
            hpf.first_line_indent = Pt(lk.indent_pt)
            hpf.keep_with_next = True
            hpf.alignment = WD_ALIGN_PARAGRAPH.LEFT

        self.title = self._style("XF Title", lk.title_ea, lk.title_pt, bold=True)
        tpf = self.title.paragraph_format
        tpf.alignment = WD_ALIGN_PARAGRAPH.CENTER
        tpf.first_line_indent = Pt(0)
        tpf.line_spacing_rule = WD_LINE_SPACING.EXACTLY
        tpf.line_spacing = Pt(round(lk.title_pt * 1.45))
        tpf.space_before, tpf.space_after = Pt(0), Pt(lk.line_pt)

        def compact(st: ParagraphStyle, align: WD_ALIGN_PARAGRAPH) -> None:
            spf = st.paragraph_format
            spf.first_line_indent = Pt(0)
            spf.line_spacing_rule = WD_LINE_SPACING.SINGLE
            spf.space_before = spf.space_after = Pt(0)
            spf.alignment = align

        self.cell = self._style("XF Table", lk.table_ea, lk.table_pt)
        compact(self.cell, WD_ALIGN_PARAGRAPH.CENTER)
        self.caption = self._style("XF Caption", lk.head_ea, lk.table_pt + 1.5, lk.bold_heads)
        compact(self.caption, WD_ALIGN_PARAGRAPH.CENTER)
        self.note = self._style("XF Note", lk.body_ea, lk.table_pt)
        compact(self.note, WD_ALIGN_PARAGRAPH.LEFT)
        self.figure = self._style("XF Figure", lk.body_ea, lk.table_pt)
        compact(self.figure, WD_ALIGN_PARAGRAPH.CENTER)

    def _footer(self) -> None:
        """Page number, centred: — 1 —."""
        p = self.doc.sections[0].footer.paragraphs[0]
        p.style = self.cell
        p.add_run("— ")
        fld = OxmlElement("w:fldSimple")
        fld.set(qn("w:instr"), "PAGE")
        r = OxmlElement("w:r")
        t = OxmlElement("w:t")
        t.text = "1"
        r.append(t)
        fld.append(r)
        p._p.append(fld)
        p.add_run(" —")
        for run in p.runs:
            run.font.size = Pt(12)

    # -- content --

    def add(self, text: str, style: ParagraphStyle) -> Paragraph:
        """A paragraph in a style, by its id: python-docx's own lookup by style
        object scans all styles each time, which dominated the render time."""
        p = self.doc.add_paragraph()
        p._p.style = style.style_id
        if text:
            p.add_run(text)
        return p

    def para(self, b: _Para) -> None:
        lk = self.look
        if b.kind == "appendix":
            p = self.add(b.text, self.h1)
            p.paragraph_format.page_break_before = True
            p.paragraph_format.first_line_indent = Pt(0)
        elif b.kind == "sign":
            p = self.add(b.text, self.normal)
            pf = p.paragraph_format
            pf.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            pf.first_line_indent = Pt(0)
            pf.right_indent = Pt(lk.body_pt * self._sign_indent.get(b.text, 0))
            if not self._signed:
                pf.space_before = Pt(lk.line_pt * 2)
                self._signed = True
        else:
            style = {"title": self.title, "h1": self.h1, "h2": self.h2, "note": self.note}
            p = self.add(b.text, style.get(b.kind, self.normal))
        if b.keep_with_next:
            p.paragraph_format.keep_with_next = True

    def table(self, b: _Table) -> None:
        cap = self.add(b.caption, self.caption)
        cap.paragraph_format.space_before = Pt(12)
        cap.paragraph_format.space_after = Pt(4)
        cap.paragraph_format.keep_with_next = True
        ncols = len(b.header)
        t = self.doc.add_table(rows=1 + len(b.rows), cols=ncols)
        t.style = self.doc.styles["Table Grid"]
        t.alignment = WD_TABLE_ALIGNMENT.CENTER
        t.autofit = False
        widths = [Cm(w) for w in b.widths]
        # the grid is what LibreOffice reads; the cell widths are what Word reads
        for gc, w in zip(t._tbl.tblGrid.findall(qn("w:gridCol")), widths, strict=True):
            gc.set(qn("w:w"), str(int(w.twips)))
        # a short table stays on one page (with its caption); a long one keeps its
        # header and first rows together
        keep = len(b.rows) if len(b.rows) <= 25 else 2
        for r_i, row in enumerate(t.rows):
            head = r_i == 0
            values = b.header if head else b.rows[r_i - 1]
            bold = head or (r_i - 1) in b.bold_rows
            red = not head and (r_i - 1) in b.flag_rows
            tr_pr = row._tr.get_or_add_trPr()
            if head:
                tr_pr.append(OxmlElement("w:tblHeader"))  # repeat on each page
            cant = OxmlElement("w:cantSplit")
            tr_pr.append(cant)
            row.height = Cm(0.75 if head else 0.62)
            for c_i, (cell, text) in enumerate(zip(row.cells, values, strict=True)):
                cell.width = widths[c_i]
                cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER
                p = cell.paragraphs[0]
                p._p.style = self.cell.style_id
                if c_i in b.left and not head:
                    p.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.LEFT
                if r_i <= keep and r_i < len(b.rows):
                    p.paragraph_format.keep_with_next = True
                run = p.add_run(text)
                if bold:
                    run.font.bold = True
                if red:
                    run.font.color.rgb = RGBColor(0xC0, 0, 0)
                if head:
                    _shade(cell._tc, "D9D9D9")
        if b.note:
            note = self.add(b.note, self.note)
            note.paragraph_format.space_before = Pt(3)
            note.paragraph_format.space_after = Pt(8)

    def chart(self, b: _Chart) -> None:
        png = _chart_png(b)
        width_px = int.from_bytes(png[16:20], "big")  # PNG IHDR
        width = min(Cm(_TEXT_WIDTH_CM), Emu(width_px * _EMU_PER_INCH // _CHART_DPI))
        p = self.add("", self.figure)
        p.paragraph_format.space_before = Pt(10)
        p.paragraph_format.keep_with_next = True
        p.add_run().add_picture(io.BytesIO(png), width=width)
        cap = self.add(b.caption, self.caption)
        cap.paragraph_format.space_before = Pt(3)
        cap.paragraph_format.space_after = Pt(10)

    def write(self, blocks: Sequence[_Block]) -> bytes:
        signs = [b.text for b in blocks if isinstance(b, _Para) and b.kind == "sign"]
        if self.lang == "zh" and len(signs) == 2:
            # GB/T 9704: the date four characters in from the right, the office
            # centred over it
            org, day = signs
            self._sign_indent = {day: 4.0, org: max(0.0, 4 + (_ems(day) - _ems(org)) / 2)}
        for b in blocks:
            if isinstance(b, _Para):
                self.para(b)
            elif isinstance(b, _Table):
                self.table(b)
            else:
                self.chart(b)
        out = io.BytesIO()
        self.doc.save(out)
        return out.getvalue()


def _ems(text: str) -> float:
    """Width in full-width characters: ASCII counts half."""
    return sum(0.5 if ord(ch) < 128 else 1.0 for ch in text)


def _shade(tc: BaseOxmlElement, fill: str) -> None:
    tc_pr = tc.find(qn("w:tcPr"))
    if tc_pr is None:
        tc_pr = OxmlElement("w:tcPr")
        tc.insert(0, tc_pr)
    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    tc_pr.append(shd)


def render_docx(f: ReportFigures, lang: str = "zh") -> bytes:
    """The report as a Word document (A4, 公文 styling), charts embedded as PNG."""
    lg = _lang(lang)
    return _DocxWriter(lg).write(_Writer(f, lg).build())
