"""A synthetic district and its petitions, reproducible from a seed.

The demo, the tests and the benchmarks need data that looks like a real
office's workload (busy townships, hot-spot categories, repeat and group
petitions) without ever touching a real petitioner's identity. Everything is
drawn from one ``random.Random(seed)`` in a fixed order, so a seed names a
data set: the same arguments always give the same petitions, on any machine.
No I/O happens here; callers decide where the data goes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from xinfang.case.v1 import events_pb2 as ev
from xinfang.core.calendar import SHANGHAI
from xinfang.intake.v1 import intake_pb2 as pb

__all__ = ["petitions", "sample_district", "valid_id_number_for"]

_DISTRICT_NAME = "示范区"

_TOWNSHIP_NAMES = (
    "城东", "城西", "城南", "城北", "新华", "东湖", "西山", "白沙",
    "青石", "柳溪", "桃源", "石门", "龙泉", "清河", "枫林", "长岭",
    "金桥", "南塘", "望江", "双溪",
)  # fmt: skip

_VILLAGE_NAMES = (
    "东风", "红星", "前进", "杨柳", "新民", "和平", "团结", "光明",
    "胜利", "五里", "高桥", "塘头", "下湾", "上林", "朝阳", "长乐",
    "永安", "兴隆", "太平", "石桥", "三元", "竹园", "荷塘", "松岗",
)  # fmt: skip

# code, name, relative frequency: the five hot spots carry most of the load.
_CATEGORIES: tuple[tuple[str, str, int], ...] = (
    ("illegal_fundraising", "非法集资", 10),
    ("real_estate", "房地产开发", 12),
    ("land_expropriation", "征地拆迁", 12),
    ("property_management", "物业管理", 10),
    ("substitute_teachers", "代课人员", 7),
    ("labour_wages", "劳动工资", 7),
    ("social_security", "社会保障", 5),
    ("environment", "生态环境", 4),
    ("public_security", "治安", 3),
    ("urban_management", "城乡建设", 5),
    ("agriculture", "农村农业", 4),
    ("other", "其他", 3),
)
_UNKNOWN_CATEGORY_WEIGHT = 3

_DISTRICT_LEADER_TITLES = (
    "（区委书记）", "（区长）", "（区委副书记）", "（常务副区长）", "（政法委书记）", "（副区长）",
)  # fmt: skip

_DEPARTMENTS: tuple[tuple[str, str], ...] = (
    ("u-zjj", "区住房和城乡建设局"),
    ("u-zrzyj", "区自然资源局"),
    ("u-czj", "区财政局"),
    ("u-rsj", "区人力资源和社会保障局"),
    ("u-gafj", "公安分局"),
    ("u-jyj", "区教育局"),
    ("u-sthj", "生态环境分局"),
    ("u-nyncj", "区农业农村局"),
    ("u-jrb", "区金融工作办公室（处非办）"),
)

# 谁主管、谁负责: the department competent for each category.
_COMPETENT: dict[str, str] = {
    "illegal_fundraising": "u-jrb",
    "real_estate": "u-zjj",
    "land_expropriation": "u-zrzyj",
    "property_management": "u-zjj",
    "substitute_teachers": "u-jyj",
    "labour_wages": "u-rsj",
    "social_security": "u-rsj",
    "environment": "u-sthj",
    "public_security": "u-gafj",
    "urban_management": "u-zjj",
    "agriculture": "u-nyncj",
}

_CHANNELS: tuple[tuple[ev.Channel.ValueType, int], ...] = (
    (ev.CHANNEL_ONLINE, 40),
    (ev.CHANNEL_VISIT, 25),
    (ev.CHANNEL_LETTER, 20),
    (ev.CHANNEL_PHONE, 13),
    (ev.CHANNEL_FAX, 2),
)
_ORAL_SHARE: dict[ev.Channel.ValueType, float] = {ev.CHANNEL_VISIT: 0.5, ev.CHANNEL_PHONE: 0.7}

_REPEAT_SHARE = 0.2
_SAME_CATEGORY_ON_REPEAT = 0.75
_GROUP_SHARE = 0.05
_HIGHER_LEVEL_SHARE = 0.04
_ESCALATED_SHARE = 0.03
_WEEKDAY_WEIGHT = 5
_WEEKEND_WEIGHT = 1
_OFFICE_OPENS = time(8, 30)
_OFFICE_HOURS = timedelta(hours=9)
_BATCH_DAYS = 14  # the higher level sends assignments roughly fortnightly

_SURNAMES = (
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周",
    "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林", "罗",
    "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
)  # fmt: skip
_MALE_GIVEN = (
    "伟", "强", "军", "勇", "杰", "涛", "斌", "超", "明", "刚",
    "建国", "国强", "志刚", "海涛", "永福", "德胜", "春生", "文彬",
)  # fmt: skip
_FEMALE_GIVEN = (
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "燕", "玲",
    "秀英", "桂兰", "玉梅", "淑珍", "晓红", "丽君", "春燕", "美华",
)  # fmt: skip

# A handful of 6-digit administrative codes (GB/T 2260) of the kind a local
# office sees; the sample district is fictional, so any plausible set will do.
_REGION_CODES = ("330102", "330105", "330106", "330108", "330110", "330122", "330182", "330183")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_BIRTH_FIRST = date(1940, 1, 1)
_BIRTH_LAST = date(2004, 12, 31)
# Substitute teachers taught in the 1960s-1990s, so they were born early.
_BIRTH_LAST_BY_CATEGORY = {"substitute_teachers": date(1972, 12, 31)}
_MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150",
    "151", "152", "155", "157", "158", "159", "166", "173", "177", "180",
    "181", "186", "187", "188", "189", "191", "198", "199",
)  # fmt: skip

_COMPANIES = (
    "鑫达投资咨询有限公司", "恒瑞财富管理有限公司", "宏远置业有限公司", "华建建设工程有限公司",
    "金穗农业科技有限公司", "盛通物流有限公司", "嘉和养老服务有限公司", "瑞丰电子厂",
)  # fmt: skip
_ESTATES = (
    "锦绣花园",
    "阳光城",
    "翡翠湾",
    "滨江名苑",
    "东方丽景",
    "书香府邸",
    "御景华庭",
    "金色家园",
)
_FACTORIES = ("化工厂", "印染厂", "砖瓦厂", "养殖场", "搅拌站")
_SCHOOLS = ("中心小学", "中学", "完全小学", "幼儿园")

_TEMPLATES: dict[str, tuple[str, ...]] = {
    "illegal_fundraising": (
        "反映{company}以高息理财为名吸收资金，本人投入{amount}万元到期未能兑付，请求依法追缴。",
        "{company}负责人失联，多名群众借出的{amount}万元无法收回，要求按非法集资处置。",
        "反映{company}以预订养老床位名义集资并承诺返利，现已停止兑付，涉及金额约{amount}万元。",
    ),
    "real_estate": (
        "反映{estate}项目逾期{months}个月未交房，开发商{company}拒不承担违约责任。",
        "{estate}交房已{years}年仍未办理不动产权证，请求协调办证。",
        "反映{estate}交付房屋存在墙体开裂、渗水等质量问题，开发商推诿不修。",
    ),
    "land_expropriation": (
        "反映{village}土地被征收后，{amount}万元补偿款未足额发放，请求核查。",
        "{village}拆迁安置房逾期{years}年未交付，过渡费已停发，要求落实安置。",
        "对{village}征地补偿标准有异议，认为明显低于周边同类项目。",
    ),
    "property_management": (
        "反映{estate}物业公司擅自上调物业费，小区公共收益去向不明。",
        "{estate}电梯长期故障，物业不履行维修义务，请求督促整改。",
        "反映{estate}业主委员会选举程序不规范，要求属地介入指导。",
        "{estate}原物业撤场后无人管理，垃圾堆积、门禁失效。",
    ),
    "substitute_teachers": (
        "本人于{year}年至{year_end}年在{township}{school}任代课教师，要求落实教龄补助。",
        "原{township}{school}代课人员，请求按政策解决代课期间养老保险补缴问题。",
        "反映原代课教师生活补助未按标准发放，已多次反映未果。",
    ),
    "labour_wages": (
        "在{company}承建的项目务工，被拖欠工资{wage}元，请求协调追讨。",
        "{company}拖欠员工{months}个月工资，负责人已联系不上。",
        "反映{company}解除劳动合同未依法支付经济补偿金。",
    ),
    "social_security": (
        "反映{company}未依法为职工缴纳社会保险，影响退休待遇核定。",
        "认为本人城乡居民养老保险待遇计算有误，请求重新核定。",
        "申请工伤认定已逾{months}个月未有结果，请求加快办理。",
        "反映家中低保资格被取消，家庭情况并无变化，请求复核。",
    ),
    "environment": (
        "反映{village}附近{factory}夜间排放刺鼻废气，影响居民休息。",
        "{village}河道被倾倒建筑垃圾，水体发黑发臭，请求治理。",
        "反映{estate}周边工地夜间施工，噪声扰民严重。",
    ),
    "public_security": (
        "反映{village}有人长期聚众赌博，请求依法查处。",
        "本人遭遇电信诈骗损失{wage}元，报案后进展缓慢。",
        "反映邻里纠纷中被人殴打致伤，对处理结果不满。",
    ),
    "urban_management": (
        "反映{village}道路破损严重，雨天积水，出行困难。",
        "{estate}周边违章搭建长期未拆除，占用消防通道。",
        "反映{township}老旧小区改造施工质量差、进度慢。",
    ),
    "agriculture": (
        "反映{village}土地流转租金已{months}个月未支付。",
        "{village}农田灌溉设施损坏，影响春耕用水，请求修复。",
        "对{village}集体经济收益分配有异议，要求公开账目。",
    ),
}
_GENERIC_TEMPLATES = (
    "反映{village}有关问题，请求有关部门协调解决。",
    "对{township}有关工作人员的办事态度不满，要求答复。",
    "反映本人的合法权益受到侵害，请求依法处理。",
)


@dataclass(frozen=True)
class _Place:
    township_id: str
    township_name: str
    village_id: str
    village_name: str
    community: bool  # 社区 (blocks of flats) rather than 村 (numbered groups)


@dataclass
class _Person:
    name: str
    id_number: str
    phone: str
    address: str
    place: _Place
    category: str


def sample_district(seed: int = 7, district_id: str = "demo-district") -> dict[str, Any]:
    """The demo's tenant: big enough to make routing and reporting interesting."""
    rng = random.Random(seed)
    names = rng.sample(_TOWNSHIP_NAMES, rng.randint(10, 14))
    streets = rng.randint(3, 5)  # the urban core is 街道, the rest 镇 or 乡
    townships: list[dict[str, Any]] = []
    for i, base in enumerate(names, start=1):
        tid = f"t{i:02d}"
        street = i <= streets
        suffix = "街道" if street else ("镇" if rng.random() < 0.75 else "乡")
        count = rng.randint(4, 10)
        villages: list[dict[str, str]] = []
        for j, vname in enumerate(rng.sample(_VILLAGE_NAMES, count), start=1):
            # A street is mostly 社区 with the odd 村 left; a town has one 社区 at its seat.
            community = rng.random() < 0.85 if street else j == 1
            villages.append(
                {"id": f"{tid}-v{j:02d}", "name": vname + ("社区" if community else "村")}
            )
        townships.append({"id": tid, "name": base + suffix, "villages": villages})

    units: list[dict[str, str]] = [
        {
            "id": f"u-{t['id']}",
            "name": f"{t['name']}办事处" if t["name"].endswith("街道") else f"{t['name']}人民政府",
            "kind": "township",
        }
        for t in townships
    ]
    units += [{"id": uid, "name": name, "kind": "department"} for uid, name in _DEPARTMENTS]
    units += [
        {"id": "u-xfj", "name": "区信访局", "kind": "office"},
        {"id": "u-court", "name": "区人民法院（劳动人事争议仲裁委员会）", "kind": "external"},
        {"id": "u-discipline", "name": "区纪委监委", "kind": "external"},
    ]

    routing: list[dict[str, str]] = [
        {
            "rule_id": f"r-{code}",
            "unit_id": _COMPETENT[code],
            "category": code,
            "decision": "accept",
        }
        for code, _, _ in _CATEGORIES
        if code in _COMPETENT
    ]
    # 属地管理: property disputes are the township's (street's) to settle first.
    routing += [
        {
            "rule_id": f"r-property_management-{t['id']}",
            "unit_id": f"u-{t['id']}",
            "category": "property_management",
            "township_id": t["id"],
            "decision": "accept",
        }
        for t in townships
    ]
    routing.append({"rule_id": "r-default", "unit_id": "u-xfj", "decision": "forward"})

    # county-level leaders who package cases and take the Thursday reception
    # (领导接访日) in turn, and one leader per township for its own packages
    leaders = [
        {"id": f"l-d{i + 1}", "name": f"{rng.choice(_SURNAMES)}{title}", "level": "district"}
        for i, title in enumerate(_DISTRICT_LEADER_TITLES)
    ]
    leaders += [
        {
            "id": f"l-{t['id']}",
            "name": f"{rng.choice(_SURNAMES)}（{t['name']}党委书记）",
            "level": "township",
            "township_id": t["id"],
        }
        for t in townships
    ]
    return {
        "district_id": district_id,
        "name": _DISTRICT_NAME,
        "townships": townships,
        "categories": [{"code": code, "name": name} for code, name, _ in _CATEGORIES],
        "units": units,
        "routing": routing,
        "leaders": leaders,
        "reception": {
            "weekday": 3,
            "start": "2026-01-01",
            "rota": [ld["id"] for ld in leaders if ld["level"] == "district"],
        },
        "leader_rules": {
            "group": True,
            "higher_level": True,
            "escalated": True,
            "repeat_threshold": 3,
        },
    }


def valid_id_number_for(rng: random.Random, birth: date) -> str:
    """A resident ID that passes every check intake makes, yet belongs to nobody."""
    return _id_number(rng, birth, male=rng.random() < 0.5)


def petitions(
    district: dict[str, Any],
    n: int,
    *,
    seed: int = 7,
    start: date,
    end: date,
    yearly_change: float = 0.0,
) -> Iterator[pb.RegisterPetitionRequest]:
    """``n`` registrations over ``[start, end]``, oldest first.

    Times are drawn first and sorted, and people are assigned in that order,
    so a repeat petitioner's visits always follow their first one.
    ``yearly_change`` makes the load drift (-0.1: a tenth fewer a year later),
    so a span of years has a trend to compare; 0 leaves the data of a seed
    as it always was.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    rng = random.Random(seed)
    district_id: str = district["district_id"]
    district_name: str = district.get("name", "")
    places = _places(district)
    if not places:
        raise ValueError(f"district {district_id} has no townships")
    place_weights = _township_weights(rng, places)
    categories = [c["code"] for c in district["categories"]]
    if not categories:
        raise ValueError(f"district {district_id} has no categories")
    known = {code: weight for code, _, weight in _CATEGORIES}
    category_weights = [known.get(c, _UNKNOWN_CATEGORY_WEIGHT) for c in categories]
    channels = [c for c, _ in _CHANNELS]
    channel_weights = [w for _, w in _CHANNELS]

    times = sorted(_received_times(rng, n, start, end, yearly_change))
    people: list[_Person] = []  # one entry per petition: busy petitioners come back more
    for i, received in enumerate(times):
        if people and rng.random() < _REPEAT_SHARE:
            person = rng.choice(people)
            if rng.random() >= _SAME_CATEGORY_ON_REPEAT:
                person.category = rng.choices(categories, category_weights)[0]
        else:
            place = rng.choices(places, place_weights)[0]
            category = rng.choices(categories, category_weights)[0]
            person = _new_person(rng, district_name, place, category)
        people.append(person)

        channel = rng.choices(channels, channel_weights)[0]
        oral = rng.random() < _ORAL_SHARE.get(channel, 0.0)
        people_count, representatives = 1, 0
        if rng.random() < _GROUP_SHARE:
            people_count = rng.randint(5, 60)
            representatives = rng.randint(1, 5)
        source, batch_id = ev.SOURCE_DIRECT, ""
        if rng.random() < _HIGHER_LEVEL_SHARE:
            local = received.astimezone(SHANGHAI).date()
            source = ev.SOURCE_HIGHER_LEVEL_ASSIGNMENT
            batch_id = f"{local.year}-{(local.timetuple().tm_yday - 1) // _BATCH_DAYS + 1}"
        escalated = rng.random() < _ESCALATED_SHARE

        req = pb.RegisterPetitionRequest(
            request_id=f"{district_id}-{seed}-{i}",
            district_id=district_id,
            channel=channel,
            township_id=person.place.township_id,
            village_id=person.place.village_id,
            category=person.category,
            content=_content(rng, person),
            people_count=people_count,
            source=source,
            batch_id=batch_id,
            petitioner=pb.Petitioner(
                name=person.name,
                id_number=person.id_number,
                phone=person.phone,
                address=person.address,
            ),
            oral=oral,
            representatives=representatives,
            escalated=escalated,
        )
        req.received_at.FromDatetime(received)
        yield req


def _id_number(rng: random.Random, birth: date, *, male: bool) -> str:
    # The sequence's last digit is odd for men and even for women (GB 11643).
    sequence = f"{rng.randint(0, 99):02d}{rng.choice('13579' if male else '2468')}"
    body = f"{rng.choice(_REGION_CODES)}{birth:%Y%m%d}{sequence}"
    total = sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + _ID_CHECK[total % 11]


def _places(district: dict[str, Any]) -> list[_Place]:
    """One place per township, each listing where its residents live."""
    out: list[_Place] = []
    for t in district.get("townships", []):
        villages = t.get("villages") or [{"id": "", "name": ""}]
        out.extend(
            _Place(t["id"], t["name"], v["id"], v["name"], v["name"].endswith("社区"))
            for v in villages
        )
    return out


def _township_weights(rng: random.Random, places: Sequence[_Place]) -> list[float]:
    """Zipf-like load: the busiest township sees about ten times the quietest."""
    townships = list(dict.fromkeys(p.township_id for p in places))
    rng.shuffle(townships)
    rank = {tid: r for r, tid in enumerate(townships, start=1)}
    per_township = {tid: sum(1 for p in places if p.township_id == tid) for tid in townships}
    # Spread each township's share over its villages so village count doesn't skew it.
    return [1.0 / rank[p.township_id] / per_township[p.township_id] for p in places]


def _received_times(
    rng: random.Random, n: int, start: date, end: date, yearly_change: float = 0.0
) -> list[datetime]:
    days = [start + timedelta(d) for d in range((end - start).days + 1)]
    weights: list[float] = [_WEEKDAY_WEIGHT if d.weekday() < 5 else _WEEKEND_WEIGHT for d in days]
    if yearly_change:
        weights = [
            w * (1 + yearly_change) ** ((d - start).days / 365.25)
            for w, d in zip(weights, days, strict=True)
        ]
    office_seconds = int(_OFFICE_HOURS.total_seconds())
    out: list[datetime] = []
    for day in rng.choices(days, weights, k=n):
        opens = datetime.combine(day, _OFFICE_OPENS, tzinfo=SHANGHAI)
        moment = opens + timedelta(seconds=rng.randrange(office_seconds))
        out.append(moment.astimezone(UTC))
    return out


def _new_person(rng: random.Random, district_name: str, place: _Place, category: str) -> _Person:
    male = rng.random() < 0.55
    name = rng.choice(_SURNAMES) + rng.choice(_MALE_GIVEN if male else _FEMALE_GIVEN)
    last = _BIRTH_LAST_BY_CATEGORY.get(category, _BIRTH_LAST)
    birth = date.fromordinal(rng.randint(_BIRTH_FIRST.toordinal(), last.toordinal()))
    phone = rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    where = f"{district_name}{place.township_name}{place.village_name}"
    if place.community:
        address = (
            f"{where}{rng.randint(1, 30)}幢{rng.randint(1, 6)}单元"
            f"{rng.randint(1, 18)}0{rng.randint(1, 4)}室"
        )
    else:
        address = f"{where}{rng.randint(1, 12)}组{rng.randint(1, 99)}号"
    return _Person(
        name=name,
        id_number=_id_number(rng, birth, male=male),
        phone=phone,
        address=address,
        place=place,
        category=category,
    )


def _content(rng: random.Random, person: _Person) -> str:
    """A one-line 诉求 that says what, never who: identity stays in the encrypted fields."""
    place = person.place
    year = rng.randint(1975, 1998)
    fields = {
        "company": rng.choice(_COMPANIES),
        "estate": rng.choice(_ESTATES),
        "factory": rng.choice(_FACTORIES),
        "school": place.village_name.removesuffix("村").removesuffix("社区") + rng.choice(_SCHOOLS),
        "township": place.township_name,
        "village": place.township_name + place.village_name,
        "amount": rng.choice((3, 5, 8, 10, 12, 15, 20, 30, 50, 80, 120)),
        "wage": rng.randrange(2_000, 60_000, 100),
        "months": rng.randint(2, 18),
        "years": rng.randint(1, 6),
        "year": year,
        "year_end": year + rng.randint(3, 15),
    }
    templates = _TEMPLATES.get(person.category, _GENERIC_TEMPLATES)
    content = rng.choice(templates).format(**fields)
    # A short name could in principle spell out a place or firm; never let it through.
    if person.name in content or person.id_number in content:
        content = "反映本人的合法权益受到侵害，请求依法处理。"
    return content
