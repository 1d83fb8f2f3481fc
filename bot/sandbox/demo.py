"""The demo school for `houqin demo`: people of every role (pre-bound to fake OpenIDs), two classes with
students, a parent, a newcomer with an invite code, built-in reminders and the coming holiday-duty rota.

Everything is built through the same services the CLI uses, so the demo behaves like a real school.
Parts owned by optional modules (duty rota, built-in reminders) are skipped with a note when the module,
its tables or the official calendar for the year are missing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlmodel import Session

from jobs import builtin
from jobs import inspection as inspection_jobs
from jobs.term_config import load_config
from storage import console_users as accounts
from storage import duty, inspection, people
from storage.db import Database
from storage.errors import UserError

DB_NAME = "houqin-demo.db"
CONFIG_NAME = "houqin-demo.toml"
NEWCOMER_OPENID = "oDemoNewcomer0000000000000000"  # the simulator's "新用户": not bound until it sends 绑定
CONSOLE_PASSWORD = "houqin-demo"  # /admin login of the demo's admin and leaders (a demo has nothing to protect)
CONSOLE_USERS = ("王主任", "李校长")


@dataclass(frozen=True)
class DemoPerson:
    name: str
    roles: tuple[str, ...]
    klass: str | None = None
    categories: tuple[str, ...] = ()
    students: tuple[str, ...] = ()
    phone: str | None = None
    bound: bool = True


STUDENTS: tuple[tuple[str, str, str], ...] = (
    ("2025101", "王小明", "七(1)班"),
    ("2025102", "李华", "七(1)班"),
    ("2025103", "张婷", "七(1)班"),
    ("2025104", "赵子涵", "七(1)班"),
    ("2025301", "陈晨", "七(3)班"),
    ("2025302", "刘洋", "七(3)班"),
    ("2025303", "孙悦", "七(3)班"),
    ("2025304", "周一鸣", "七(3)班"),
)

PEOPLE: tuple[DemoPerson, ...] = (
    DemoPerson("王主任", ("admin",), phone="13800000001"),
    DemoPerson("李校长", ("leader",), phone="13800000002"),
    DemoPerson("赵副校长", ("leader",), phone="13800000003"),
    DemoPerson("刘老师", ("head_teacher",), klass="七(1)班"),
    DemoPerson("周老师", ("head_teacher",), klass="七(3)班"),
    DemoPerson("张老师", ("teacher",)),
    DemoPerson("陈老师", ("teacher",)),
    DemoPerson("孙师傅", ("guard",)),
    DemoPerson("李师傅", ("worker",), categories=("电",)),
    DemoPerson("钱师傅", ("worker",), categories=("水",)),
    DemoPerson("王小明妈妈", ("parent",), students=("2025101",)),
    DemoPerson("吴老师", ("teacher",), bound=False),  # binds from the simulator's 新用户 with the invite code
)


# The demo school's checkpoints (点位): fire equipment on the guard's daily check, places on the evening patrol,
# a classroom for scan-to-report, the canteen and the power room for the term-start inspections.
CHECKPOINTS: tuple[tuple[str, str, str, str], ...] = (
    ("XF-101", "教学楼一楼灭火器", "教学楼一楼东侧", "灭火器"),
    ("XF-201", "教学楼二楼消火栓", "教学楼二楼西侧", "消火栓"),
    ("XF-301", "实验楼应急照明", "实验楼一楼走廊", "应急照明"),
    ("XC-01", "南校门", "南校门", "巡查点"),
    ("XC-02", "教学楼", "教学楼", "巡查点"),
    ("XC-03", "操场周界", "操场北侧围墙", "周界报警"),
    ("JS-301", "教学楼301", "教学楼301", "教室"),
    ("PD-01", "配电间", "行政楼一楼配电间", "配电间"),
    ("ST-01", "食堂后厨", "食堂后厨", "食堂"),
)


def demo_openid(name: str) -> str:
    """A stable fake OpenID (28 characters, like WeChat's) for a demo person."""
    return "oDemo" + hashlib.sha1(name.encode()).hexdigest()[:23]


@dataclass
class DemoSchool:
    people: list[tuple[str, str, str]] = field(default_factory=list)  # (name, roles in Chinese, openid or 未绑定)
    classes: list[str] = field(default_factory=list)
    students: int = 0
    invite_code: str | None = None
    invite_for: str | None = None
    console: list[str] = field(default_factory=list)  # who may log in to /admin with CONSOLE_PASSWORD
    notes: list[str] = field(default_factory=list)  # what was built or skipped (duty rota, reminders)


def build(session: Session, now: datetime) -> DemoSchool:
    """Fill an empty, migrated database with the demo school."""
    school = DemoSchool()
    n, errors = people.import_students(session, [list(r) for r in STUDENTS])
    assert not errors, errors
    school.students = n
    school.classes = sorted({k for _, _, k in STUDENTS})
    for spec in PEOPLE:
        p = people.create_person(session, spec.name, list(spec.roles), now=now, class_name=spec.klass,
                                 student_nos=list(spec.students) or None, categories=list(spec.categories) or None)
        p.phone = spec.phone
        if spec.bound:
            p.openid = demo_openid(spec.name)
            p.bound_at = now
            p.last_inbound_at = now  # as if they had written lately: customer-service messages may reach them
        else:
            inv = people.new_invite(session, p, now=now)
            school.invite_code, school.invite_for = inv.code, spec.name
        session.add(p)
        assert p.id is not None
        school.people.append((spec.name, people.role_names(people.roles_of(session, p.id)), p.openid or "未绑定"))
    session.flush()
    for p, _ in people.list_people(session):
        if p.openid and p.id is not None:
            people.queue_menu_tag(session, p.id, now=now)  # their role's menu, as if they had just bound
    n, errors = inspection.import_checkpoints(session, [list(c) for c in CHECKPOINTS], now=now)
    assert not errors, errors
    school.notes.append(f"巡查点位：{n} 个（后台「点位」可打印二维码标签；模拟器里每个点位一个「扫码」按钮）。")
    school.notes.append(_duty_rota(session, now))
    school.console = _console_logins(session)
    return school


def _console_logins(session: Session) -> list[str]:
    """Console passwords for the admin and a leader, when this version has the console."""
    done = []
    for name in CONSOLE_USERS:
        try:
            accounts.set_password(session, name, CONSOLE_PASSWORD)
            done.append(name)
        except UserError:
            pass  # the console's rules changed (e.g. a longer password): the demo works without it
    return done


def _duty_rota(session: Session, now: datetime) -> str:
    """The holiday-duty rota of the leaders for the coming six weeks (provisional beyond the official calendar)."""
    start = now.date()
    end = start + timedelta(days=42)
    rows = duty.generate(session, start, end, now=now, provisional=True)
    if not rows:
        return "值班表：近期没有节假日或周末，未生成。"
    note = duty.PROVISIONAL_NOTE if any(duty.is_provisional_row(r) for r in rows) else ""
    return (f"值班表：已生成 {start:%m-%d} 至 {end:%m-%d} 的节假日值班（{len(rows)} 天，{len(duty.leaders(session))} 位"
            f"校领导轮值）{note}。")


def write_config(path: Path, now: datetime) -> Path:
    """A term calendar for the built-in reminders (fire drill the day after tomorrow, this term) in the format
    of houqin.example.toml; dates beyond the official holiday data are planned provisionally."""
    today = now.date()
    if today.month >= 9:
        start, end = date(today.year, 9, 1), date(today.year + 1, 1, 20)
    elif today.month >= 2:
        start, end = date(today.year, 2, 20), date(today.year, 7, 10)
    else:
        start, end = date(today.year - 1, 9, 1), date(today.year, 1, 20)
    # Between terms (late January, July, August) the demo still shows a term ending ahead, so that its built-in
    # reminders include the end-of-term 食堂管理委员会会议 the README promises.
    end = max(end, today + timedelta(days=30))
    lines = ["# 演示学校的学期日历（houqin demo 自动生成）"]
    lines += ["[term]", 'name = "演示学期"', f"start = {start.isoformat()}", f"end = {end.isoformat()}", ""]
    drill = datetime.combine(today + timedelta(days=2), time(15, 0))
    lines += ["[fire_drill]", f'times = ["{drill:%Y-%m-%d %H:%M}"]', 'place = "操场"', ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def builtin_reminders(session: Session, config: Path, now: datetime) -> str:
    """What `houqin init` does: the built-in schedules from the term calendar (skipped when unavailable)."""
    try:
        cfg = load_config(str(config))
        summary = builtin.sync_builtin(session, cfg, now)
        routes = inspection_jobs.sync_builtin_routes(session, cfg, now)
    except UserError as exc:
        return f"内置提醒：{exc.message}"
    built = [line for line in routes.split("\n") if "未建立" not in line]
    if built:
        summary = f"{summary}\n巡查路线：{len(built)} 条（" + "、".join(
            line.split("「")[1].split("」")[0] for line in built) + "）"
    lines = str(summary).split("\n")
    first = next((line for line in lines if line.startswith("内置提醒")), lines[0])
    return "\n".join([first] + [line for line in lines if line.startswith("巡查路线：")])


def create(data_dir: Path, now: datetime, *, keep: bool = False) -> tuple[str, DemoSchool | None]:
    """The demo database under `data_dir` (wiped unless `keep` and it exists). Returns (URL, school or None
    when an existing database was kept)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db_file = data_dir / DB_NAME
    url = "sqlite:///" + str(db_file.resolve())
    if keep and db_file.exists():
        Database(url).migrate()  # a newer version may have added tables
        return url, None
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(db_file) + suffix).unlink(missing_ok=True)
    db = Database(url)
    try:
        db.migrate()
        config = write_config(data_dir / CONFIG_NAME, now)
        with db.session() as s:
            school = build(s, now)
        with db.session() as s:  # its own transaction: a refusal here keeps the people
            school.notes.append(builtin_reminders(s, config, now))
    finally:
        db.dispose()
    return url, school
