"""The demo school of /work/shared/phrasing/examples.tsv (滨湖实验中学), built through the services: people,
students, tickets BX3–BX16, visitors FK2–FK6, leave slips QJ3–QJ8 and reminders TX2–TX12 in the states the
corpus header describes (lower numbers are fillers so that the record numbers match)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlmodel import Session, select

from bot.runtime import Runtime
from storage import inspection, leave, people, repair, visitor
from storage import reminder as rem
from storage.people import Actor, Person
from storage.roster import find_student
from storage.schoolcal import Recurrence
from storage.visitor.parse import VisitorLine
from tests.school import openid_for

STAFF = [
    ("周建华", ["leader"], None), ("孙海燕", ["leader"], None), ("郑国强", ["admin"], None),
    ("王丽", ["head_teacher"], "七(3)班"), ("陈志刚", ["head_teacher"], "八(1)班"),
    ("李梅", ["teacher"], None), ("赵磊", ["teacher"], None), ("林晓雨", ["teacher"], None),
    ("钱德顺", ["guard"], None), ("刘建国", ["worker"], None), ("黄永福", ["worker"], None),
]
STUDENTS = [("2025031", "张浩然", "七(3)班"), ("2025032", "李明", "七(3)班"), ("2025033", "吴思琪", "七(3)班"),
            ("2024011", "王子涵", "八(1)班"), ("2024012", "刘欣怡", "八(1)班"), ("2024013", "杨宇轩", "八(1)班")]
PARENTS = [("张建军", "2025031"), ("刘芳", "2024012")]
UNBOUND = ("何静", "吴大勇")
CLASS_ROOMS = {"七(3)班教室": "教学楼303", "八(1)班教室": "教学楼401"}  # as the header says; used to judge places
SECRET = "test-secret-key-0123456789"
TABLES = ("repairticket", "leaveslip", "visitorentry", "visitorbooking", "reminder", "reminderreceipt", "person",
          "inspectionvisit", "inspectionfinding", "dutyrota")
# The header's checkpoints: code → (name, location); the corpus names a checkpoint by either.
CHECKPOINTS = {"XF01": ("教学楼一楼东消防栓", "教学楼一楼东"), "XF02": ("实验楼二楼灭火器箱", "实验楼二楼"),
               "XF03": ("食堂后厨灭火器", "食堂后厨"), "PD01": ("配电间", "配电间"), "XC01": ("东大门", "东大门"),
               "XC02": ("宿舍楼后门", "宿舍楼后门"), "XC03": ("体育馆侧门", "体育馆侧门")}


def _actor(s: Session, name: str) -> Actor:
    p = s.exec(select(Person).where(Person.name == name)).first()  # type: ignore[attr-defined]
    assert p is not None, name
    return people.actor_for(s, p)


def build(rt: Runtime) -> None:
    now = rt.clock.now()
    day0 = now.replace(hour=0, minute=0)
    with rt.db.session() as s:
        people.import_students(s, [list(r) for r in STUDENTS])
        for name, roles, klass in STAFF:
            p = people.create_person(s, name, roles, now=now, class_name=klass)
            p.openid, p.bound_at, p.last_inbound_at = openid_for(name), now, now
        for name, no in PARENTS:
            p = people.create_person(s, name, ["parent"], now=now, student_nos=[no])
            p.openid, p.bound_at, p.last_inbound_at = openid_for(name), now, now
        s.flush()
        a = {name: _actor(s, name) for name, _r, _k in STAFF}
        a.update({name: _actor(s, name) for name, _no in PARENTS})

        def ticket(who: str, place: str, desc: str, worker: str | None, state: str, urgent: bool = False) -> None:
            t, _ = repair.create_ticket(s, a[who], place, desc, urgent=urgent, now=now)
            if worker:
                repair.assign(s, a["郑国强"], t.id, worker, now=now)  # type: ignore[arg-type]
            if state in ("维修中", "已完成"):
                repair.take(s, a[worker], t.id, now=now)  # type: ignore[arg-type,index]
            if state == "已完成":
                repair.finish(s, a[worker], t.id, "已修好", now=now)  # type: ignore[arg-type,index]
            if state == "已取消":
                repair.cancel(s, a[who], t.id, "", now=now)  # type: ignore[arg-type]

        ticket("李梅", "教学楼101", "测试", None, "已取消")
        ticket("李梅", "教学楼102", "测试", None, "已取消")
        ticket("李梅", "教学楼301", "投影仪不亮", "刘建国", "已完成")
        ticket("王丽", "教学楼303", "日光灯闪", "刘建国", "已完成")
        ticket("李梅", "食堂二楼教工餐厅", "水龙头漏水", "黄永福", "维修中")
        ticket("赵磊", "体育馆篮球架", "螺丝松动", "刘建国", "已完成")
        ticket("陈志刚", "宿舍楼二楼", "水管渗水", "黄永福", "已完成")
        ticket("王丽", "教学楼303", "后门锁坏、门关不上", None, "待派单")
        ticket("陈志刚", "宿舍楼三楼男厕", "下水道堵", "黄永福", "已派单", urgent=True)
        ticket("林晓雨", "实验楼物理实验室", "插座没电", "刘建国", "已完成")
        ticket("赵磊", "体育馆女更衣室", "门关不上", None, "待派单")
        ticket("林晓雨", "实验楼计算机房", "网络断", "刘建国", "维修中")
        ticket("李梅", "综合楼图书馆", "空调滴水", "刘建国", "已派单")
        ticket("孙海燕", "行政楼三楼会议室", "三把椅子坏了", None, "待派单")
        ticket("陈志刚", "教学楼502", "插座打火", "刘建国", "已派单", urgent=True)
        ticket("郑国强", "食堂后厨", "地漏堵", "黄永福", "已派单")
        for name, cats in (("刘建国", "电"), ("黄永福", "水")):
            p = s.exec(select(Person).where(Person.name == name)).first()  # type: ignore[attr-defined]
            p.categories = cats  # after the tickets: auto-assignment must not reshuffle the fixture
            s.add(p)

        g = a["钱德顺"]

        def visit(name: str, phone: str, purpose: str, host: str | None, left: bool, party: int = 1) -> None:
            got = visitor.check_in(s, g, VisitorLine(name, phone, purpose, host=host, party=party), now=now,
                                   secret_key=SECRET)
            if left:
                visitor.check_out(s, g, got.entry, now=now)

        visit("测试", "13800000001", "测试", None, True)
        visit("孙丽", "13800000002", "新华书店送教材", "王丽", False)
        visit("邹强", "13800000003", "电梯维保", None, True)
        visit("马晓峰", "13800000004", "净水器换滤芯", "郑国强", False)
        visit("吴海", "13800000005", "区教育局督查", "周建华", False, 2)
        visit("马建", "13800000006", "送桶装水", None, False)

        def student(name: str) -> people.Student:
            return find_student(s, name)

        def slip(who: str, kid: str, start: datetime, end: datetime, reason: str) -> leave.LeaveSlip:
            return leave.request_leave(s, a[who], student(kid), start, end, reason, now=now)

        friday = day0 + timedelta(days=(4 - day0.weekday()) % 7)
        for _ in range(2):
            filler = slip("李梅", "李明", day0 + timedelta(days=20, hours=8), day0 + timedelta(days=20, hours=10), "测试")
            leave.decide(s, a["王丽"], filler.id, False, "测试", now=now)  # type: ignore[arg-type]
        slip("李梅", "李明", friday + timedelta(hours=13), friday + timedelta(hours=17), "市英语演讲比赛")
        q4 = slip("张建军", "张浩然", day0 + timedelta(hours=14), day0 + timedelta(hours=17), "看牙")
        leave.decide(s, a["王丽"], q4.id, True, now=now)  # type: ignore[arg-type]
        q5 = slip("王丽", "吴思琪", day0 + timedelta(hours=8), day0 + timedelta(hours=10), "医院复查")
        leave.record_exit(s, g, q5.id, now=now)  # type: ignore[arg-type]
        slip("刘芳", "刘欣怡", day0 + timedelta(days=1, hours=7), day0 + timedelta(days=1, hours=18), "发烧复查")
        slip("李梅", "王子涵", day0 + timedelta(hours=13), day0 + timedelta(hours=17), "区作文比赛")
        q8 = slip("赵磊", "杨宇轩", day0 + timedelta(hours=12), day0 + timedelta(hours=18), "回家拿东西")
        leave.decide(s, a["陈志刚"], q8.id, False, "不行", now=now)  # type: ignore[arg-type]

        def remind(who: str | None, when: datetime | Recurrence, what: str, specs: list[str], receipt: bool = False,
                   label: str = "") -> rem.Reminder:
            actor = a[who] if who else a["郑国强"]
            return rem.create(s, actor, when, what, specs, now=now, needs_receipt=receipt, target_label=label)

        from datetime import time as tm

        def me(n: str) -> list[str]:
            return [f"person:{a[n].id}"]

        remind("郑国强", day0 + timedelta(days=3, hours=9), "测试", me("郑国强"))
        remind("王丽", Recurrence("daily", tm(17, 30)), "在家长群发作业", me("王丽"))
        remind("郑国强", day0 + timedelta(days=3, hours=9), "测试", me("郑国强"))
        remind("郑国强", day0 + timedelta(days=3, hours=9), "测试", me("郑国强"))
        tx5 = remind("郑国强", Recurrence("weekly", tm(8, 0), weekday=0), "交班级安全日志", ["role:head_teacher"], True,
                     "@班主任")
        remind("郑国强", day0 + timedelta(days=3, hours=9), "测试", me("郑国强"))
        remind(None, day0 + timedelta(days=1, hours=16), "消防演练通知", ["all"], True, "@全体")
        remind("郑国强", day0 + timedelta(days=3, hours=9), "测试", me("郑国强"))
        remind(None, Recurrence("workday", tm(21, 0)), "晚间巡查", ["role:guard"], True, "@门卫")
        remind("郑国强", day0 + timedelta(days=3, hours=9), "测试", me("郑国强"))
        tx11 = remind(None, Recurrence("monthly", tm(9, 0), day=1), "每月财产检查", ["role:worker"], True, "@维修工")
        remind("李梅", friday - timedelta(days=1) + timedelta(hours=18), "给家长回电话", me("李梅"))
        s.flush()
        for r, due, names in ((tx5, day0 - timedelta(days=1) + timedelta(hours=8), ("王丽", "陈志刚")),
                              (tx11, day0 + timedelta(hours=9), ("刘建国", "黄永福"))):
            occ = rem.ReminderOccurrence(reminder_id=r.id, due_at=due, fired_at=due, recipients=len(names))  # type: ignore[arg-type]
            s.add(occ)
            s.flush()
            for n in names:
                s.add(rem.ReminderReceipt(occurrence_id=occ.id, person_id=a[n].id))  # type: ignore[arg-type]
        for code, (name, location) in CHECKPOINTS.items():
            inspection.save_checkpoint(s, code=code, name=name, location=location, now=now)
        s.flush()
        inspection.save_route(s, name="消防器材日检", checkpoint_codes=["XF01", "XF02", "XF03"], start=tm(7, 30),
                              end=tm(8, 30), now=now, roles=["guard"])
        inspection.save_route(s, name="晚间巡查", checkpoint_codes=["XC01", "XC02", "XC03", "PD01"], start=tm(21, 0),
                              end=tm(22, 0), now=now, roles=["guard"])
        s.commit()


def fingerprint(rt: Runtime) -> str:
    """What a message may have changed: every row of the record tables."""
    h = hashlib.sha1()
    with rt.db.session() as s:
        for t in TABLES:
            for row in s.execute(text(f'SELECT * FROM "{t}" ORDER BY 1')).all():  # noqa: S608 - fixed names
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()
