"""Every word the report prints, in Chinese (the default) and English.

One key per phrase, the same keys in both languages (a test checks); the
sentence builder (``sentences``) only ever formats these.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["MONTHS_EN", "QUARTERS_ZH", "TEXT", "Lang", "lang_of"]

Lang = Literal["zh", "en"]

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
            "{period}，全区共登记群众来信来访{received}件、涉及{people}人次，同比{yoy}，环比{mom}。"
        ),
        "p_total_na": (
            "{period}，全区共登记群众来信来访{received}件、涉及{people}人次，"
            "同比、环比均无可比数据。"
        ),
        "p_peak": "从月度分布看，月均登记{avg}件，其中{month}最多，为{n}件。",
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
        "route_other": "、其他处理{n}件",
        "route_disputes": "因有关单位对职责存在争议，报请其共同上一级明确承办单位{n}件。",
        "route_units": "本期各承办单位确认受理信访事项{n}件（含此前转送、交办的事项）。",
        "route_cohort": (
            "本期登记的{received}件信访事项中，截至{date}已作出处理决定{routed}件、"
            "已办结{replied}件（以上处理决定、办结按作出之日统计，可能落在以后各期）。"
        ),
        "p_done": (
            "全区共办结信访事项{replied}件，其中按期办结{on_time}件、超期办结{late}件，"
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
        "row_routed": "作出处理决定（件）",
        "row_accepted": "依法受理（件）",
        "row_replied": "办结（件）",
        "row_late": "超期办结（件）",
        "row_resolved": "化解（件）",
        "row_on_time": "按期办结率",
        "row_resolution": "化解率",
        "row_satisfaction": "满意率",
        "row_backlog_end": "期末存量（件）",
        "row_backflow": "信访倒流（件）",
        "row_receptions": "领导接访（批次）",
        "row_breaches": "法定期限超期（次）",
        "row_orders": "督办通知（份）",
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
            "对重点信访事项实行督查督办，本期共发出到期预警提醒{warnings}次、"
            "督办通知{orders}份（每超期一次发出一份）；{breach}"
        ),
        "breach_some": "各类法定期限超期共{n}次，其中{items}。",
        "breach_none": "未发生超过法定期限的情况。",
        "clock_item": "{name}{n}次",
        "clock_handling": "办理期限超期",
        "clock_register_and_route": "登记转送期限超期",
        "clock_written_notice": "书面告知期限超期",
        "clock_remit_objection": "异议期限超期",
        "clock_tier": "化解层级时限超期",
        "clock_review_request": "复查申请期限届满",
        "clock_review_decision": "复查期限超期",
        "clock_rereview_request": "复核申请期限届满",
        "clock_rereview_decision": "复核期限超期",
        "clock_other": "其他期限超期",
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
            "按期办结率{on_time}，超期办结{late}件，办理期限超期{handling}次；"
            "群众不满意{dissatisfied}件，"
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
        "period_to_date": "{period}（截至{m}月{d}日）",
        "note_span": "本期尚未结束，统计截至{date}；上期、上年同期均按相同时段统计。",
        "kind_year": "年",
        "kind_quarter": "季度",
        "kind_month": "月",
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
        "route_other": ", {n} otherwise disposed of",
        "route_disputes": (
            "In {n} cases the units disputed which of them was competent, and their "
            "common superior designated the handling unit."
        ),
        "route_cohort": (
            "Of the {received} petitions received in this period, by {date} {routed} had been "
            "decided and {replied} concluded (decisions and conclusions above count on the day "
            "they were made, which may fall in a later period)."
        ),
        "route_units": (
            "The handling units confirmed that they had taken on {n} cases in this period "
            "(including cases forwarded or assigned to them earlier)."
        ),
        "p_done": (
            "{replied} cases were concluded, {on_time} on time and {late} late (on-time rate "
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
        "row_routed": "Decisions made",
        "row_accepted": "Accepted",
        "row_replied": "Concluded",
        "row_late": "Concluded late",
        "row_resolved": "Resolved",
        "row_on_time": "On-time rate",
        "row_resolution": "Resolution rate",
        "row_satisfaction": "Satisfaction rate",
        "row_backlog_end": "Backlog at end",
        "row_backflow": "Backflow",
        "row_receptions": "Leader receptions (batches)",
        "row_breaches": "Deadline breaches (times)",
        "row_orders": "Supervision orders issued",
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
            "Key cases were supervised: {warnings} deadline warnings and {orders} supervision "
            "orders (one for each breach) were issued; {breach}"
        ),
        "breach_some": "statutory time limits of all kinds ran out {n} times: {items}.",
        "breach_none": "no statutory time limit ran out.",
        "clock_item": "{name} {n}",
        "clock_handling": "handling",
        "clock_register_and_route": "registering and routing",
        "clock_written_notice": "written notice",
        "clock_remit_objection": "objection to a remit",
        "clock_tier": "a tier's time box",
        "clock_review_request": "time to request a review",
        "clock_review_decision": "review decision",
        "clock_rereview_request": "time to request a re-review",
        "clock_rereview_decision": "re-review decision",
        "clock_other": "other",
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
            "The on-time rate was {on_time}: {late} cases were concluded late and the handling "
            "time limit ran out {handling} times; {dissatisfied} "
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
        "period_to_date": "{period}, {kind} to date (through {d} {month})",
        "note_span": (
            "This period has not ended: figures run to {date}; the previous period and "
            "last year are counted over the same span."
        ),
        "kind_year": "year",
        "kind_quarter": "quarter",
        "kind_month": "month",
        "month_short": "{mon}",
    },
}


QUARTERS_ZH = "一二三四"
MONTHS_EN = (
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


def lang_of(lang: str) -> Lang:
    if lang == "zh":
        return "zh"
    if lang == "en":
        return "en"
    raise ValueError(f"lang: use 'zh' or 'en', not {lang!r}")
