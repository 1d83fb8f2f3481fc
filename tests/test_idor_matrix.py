"""The chat IDOR matrix (issue 13): every role × every record-referencing command × someone else's record.

0 unauthorised successes (nothing in the database changes) and 0 state leaks: the reply for someone else's
record is, number for number, the reply for a record that does not exist (`未找到 BX99`) — or the role refusal
(`无权限`), which is the same for both. Cells the SPEC authorises (an admin assigning a repair, a guard
checking a visitor out …) are left out: they are allowed to act.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text

ROLES = {  # one attacker per role, none of them involved in the records below
    "admin": ("甲主任", {}),
    "leader": ("甲校长", {}),
    "teacher": ("甲老师", {}),
    "head_teacher": ("甲班主任", {"klass": "八(2)班"}),
    "guard": ("甲门卫", {}),
    "worker": ("甲师傅", {"categories": ["电"]}),
    "parent": ("甲家长", {"students": ["2024902"]}),
}

# command template, record prefix; {n} is the record number
COMMANDS = [
    ("查询 BX{n}", "BX"), ("催办 BX{n}", "BX"), ("取消 BX{n}", "BX"), ("评价 BX{n} 5 很好", "BX"),
    ("派单 BX{n} 甲师傅", "BX"), ("接单 BX{n}", "BX"), ("完成 BX{n} 修好了", "BX"), ("退单 BX{n} 不会修", "BX"),
    ("批准 QJ{n}", "QJ"), ("驳回 QJ{n} 不行", "QJ"), ("核验 QJ{n}", "QJ"), ("出校 QJ{n}", "QJ"), ("返校 QJ{n}", "QJ"),
    ("取消提醒 TX{n}", "TX"), ("收到 TX{n}", "TX"), ("完成 TX{n} 已完成", "TX"),
    ("离开 FK{n}", "FK"), ("不认识 FK{n}", "FK"),
]

# (role, command word) the SPEC allows on anybody's record: an authorised action, not a leak
AUTHORISED = {
    ("admin", "查询"), ("leader", "查询"), ("admin", "取消"), ("admin", "派单"),
    ("admin", "批准"), ("admin", "驳回"), ("leader", "批准"), ("leader", "驳回"),
    ("guard", "核验"), ("guard", "出校"), ("guard", "返校"), ("admin", "核验"), ("admin", "出校"), ("admin", "返校"),
    ("admin", "取消提醒"),
    ("guard", "离开"),
}

TABLES = ["repairticket", "repairhistory", "leaveslip", "leaveevent", "reminder", "reminderreceipt", "visitorentry",
          "person", "personrole"]


def snapshot(rt) -> dict[str, list[Any]]:  # type: ignore[no-untyped-def]
    out: dict[str, list[Any]] = {}
    with rt.db.engine.connect() as conn:
        for t in TABLES:
            try:
                rows = conn.execute(text(f'SELECT * FROM "{t}"')).mappings().all()
            except Exception:  # noqa: BLE001 - a table another branch has not migrated
                conn.rollback()
                continue
            out[t] = sorted(tuple(sorted((k, str(v)) for k, v in r.items() if k != "last_inbound_at")) for r in rows)
    return out


def same_as_missing(reply: str, n: int, missing: str, m: int, prefix: str) -> bool:
    return re.sub(rf"{prefix}{n}\b", f"{prefix}#", reply) == re.sub(rf"{prefix}{m}\b", f"{prefix}#", missing)


def test_nobody_acts_on_or_learns_about_someone_elses_record(chat, rt, clock):
    chat.students(("2024901", "王小明", "七(1)班"), ("2024902", "李小红", "八(2)班"))
    chat.person("刘主任", "admin")
    chat.person("赵老师", "teacher")
    chat.person("张师傅", "worker")
    chat.person("钱老师", "head_teacher", klass="七(1)班")
    chat.person("孙老师", "teacher")
    chat.person("周老师", "teacher")
    chat.person("吴门卫", "guard")
    chat.person("郑老师", "teacher")
    for role, (name, kw) in ROLES.items():
        chat.person(name, role, **kw)
    # someone else's records, one of each kind, made through chat
    assert "BX1" in chat.say("赵老师", "报修 教学楼301 灯不亮")
    assert "BX1" in chat.say("刘主任", "派单 BX1 张师傅")
    assert "QJ1" in chat.say("孙老师", "请假 七(1)班 王小明 明天全天 发烧")
    assert "TX1" in chat.say("周老师", "提醒 明天8:00 交教案")
    assert "FK1" in chat.say("吴门卫", "访客 张三 13900001234 送货 找郑老师")
    before = snapshot(rt)
    cells = leaks = 0
    problems: list[str] = []
    for role, (name, _) in ROLES.items():
        for template, prefix in COMMANDS:
            word = template.split()[0]
            if (role, word) in AUTHORISED:
                continue
            cells += 1
            got = chat.say(name, template.format(n=1))
            missing = chat.say(name, template.format(n=99))
            if not same_as_missing(got, 1, missing, 99, prefix):
                leaks += 1
                problems.append(f"{role} {template.format(n=1)!r}: {got!r} vs {missing!r}")
    after = snapshot(rt)
    changed = [t for t in before if before[t] != after.get(t)]
    assert cells >= 100, cells
    assert not problems, "\n".join(problems)
    assert not changed, changed  # 0 unauthorised successes
    assert leaks == 0
