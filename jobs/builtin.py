"""Built-in schedules from the term calendar in the config file (`houqin init`), and reading that file.

The file is TOML (see houqin.example.toml at the repository root; HOUQIN_CONFIG points to it). Every built-in
reminder has a stable key, so running `houqin init` again updates them in place, creates what is new, and
cancels what was removed from the file; one the admin cancelled stays cancelled.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session

from jobs.registry import periodic
from storage import calendar_sync
from storage import reminder as rem
from storage.duty import DutyTimes
from storage.errors import UserError
from storage.kernel import fmt_day
from storage.schoolcal import PROVISIONAL_NOTE, Recurrence, official_years, shift_to_school_day

PREFIX = "builtin:"


@dataclass
class Event:
    """A dated built-in (fire drill, canteen meeting): told the day before at `eve` and `before` ahead."""

    key: str
    title: str
    at: datetime
    targets: list[str]
    place: str = ""


@dataclass
class Config:
    path: str | None = None
    term_name: str = ""
    term_start: date | None = None
    term_end: date | None = None
    # 消防演练
    fire_drills: list[datetime] = field(default_factory=list)
    fire_drill_targets: list[str] = field(default_factory=lambda: ["全体"])
    fire_drill_place: str = ""
    notice_day_before: time = time(16, 0)
    notice_hours_before: float = 1.0
    # 食堂管理委员会会议
    canteen_time: time = time(15, 30)
    canteen_days_after_start: int = 0
    canteen_days_before_end: int = 0
    canteen_targets: list[str] = field(default_factory=lambda: ["领导", "管理员"])
    canteen_place: str = ""
    # 每月财产检查
    property_day: int = 1
    property_time: time = time(9, 0)
    property_targets: list[str] = field(default_factory=lambda: ["管理员", "维修工"])
    # 门卫：每日消防器材检查、晚间巡查（需回执）
    guard_check_time: time = time(8, 0)
    guard_patrol_time: time = time(21, 0)
    guard_targets: list[str] = field(default_factory=lambda: ["门卫"])
    # 开学前食品与饮用水安全检查
    pre_term_days_before: int = 3
    pre_term_time: time = time(9, 0)
    pre_term_targets: list[str] = field(default_factory=lambda: ["管理员", "领导"])
    # 值班与提醒
    duty: DutyTimes = field(default_factory=DutyTimes)
    missed_grace_minutes: int = 60
    receipt_minutes: int = rem.RECEIPT_MINUTES
    tick_seconds: float = 0.5


# --------------------------------------------------------------------------------------------------------
# Reading the file


def config_path(configured: str | None) -> str | None:
    """HOUQIN_CONFIG (Settings.config_file), else ./houqin.toml when there is one."""
    if configured:
        return configured
    return "houqin.toml" if Path("houqin.toml").is_file() else None


def _bad(path: str, where: str, what: str) -> UserError:
    return UserError(f"配置文件 {path} 中 {where} 有误：{what}")


def _time(path: str, where: str, value: Any) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    try:
        return time.fromisoformat(str(value).strip().replace("：", ":").zfill(5))
    except ValueError:
        raise _bad(path, where, f"「{value}」不是时间（应为 \"16:00\"）") from None


def _date(path: str, where: str, value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise _bad(path, where, f"「{value}」不是日期（应为 2026-09-01）") from None


def _datetime(path: str, where: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    try:
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise _bad(path, where, f"「{value}」不是日期时间（应为 2026-12-09 15:00）") from None


def _int(path: str, where: str, value: Any, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise _bad(path, where, f"应为 {lo}–{hi} 的整数")
    return value


def _targets(path: str, where: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _bad(path, where, "应为对象列表，如 [\"@全体\"]")
    return [v.strip().lstrip("@") for v in value if v.strip()]


def load_config(path: str | None) -> Config:
    cfg = Config(path=path)
    if path is None:
        return cfg
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"找不到配置文件：{path}（HOUQIN_CONFIG）") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"配置文件 {path} 格式有误：{exc}") from None

    def table(name: str) -> dict[str, Any]:
        t = data.get(name, {})
        if not isinstance(t, dict):
            raise _bad(path, f"[{name}]", "应为一个表")
        return t

    term = table("term")
    if term:
        if "start" not in term or "end" not in term:
            raise _bad(path, "[term]", "需要 start 和 end（开学、期末日期）")
        cfg.term_name = str(term.get("name", ""))
        cfg.term_start = _date(path, "term.start", term["start"])
        cfg.term_end = _date(path, "term.end", term["end"])
        if cfg.term_end < cfg.term_start:
            raise _bad(path, "[term]", "期末日期早于开学日期")
    t = table("fire_drill")
    cfg.fire_drills = [_datetime(path, "fire_drill.times", v) for v in t.get("times", [])]
    if "targets" in t:
        cfg.fire_drill_targets = _targets(path, "fire_drill.targets", t["targets"])
    cfg.fire_drill_place = str(t.get("place", ""))
    t = table("notices")
    if "day_before" in t:
        cfg.notice_day_before = _time(path, "notices.day_before", t["day_before"])
    if "hours_before" in t:
        v = t["hours_before"]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= 24:
            raise _bad(path, "notices.hours_before", "应为 0–24 的小时数")
        cfg.notice_hours_before = float(v)
    t = table("canteen_meeting")
    if "time" in t:
        cfg.canteen_time = _time(path, "canteen_meeting.time", t["time"])
    if "days_after_start" in t:
        cfg.canteen_days_after_start = _int(path, "canteen_meeting.days_after_start", t["days_after_start"], 0, 60)
    if "days_before_end" in t:
        cfg.canteen_days_before_end = _int(path, "canteen_meeting.days_before_end", t["days_before_end"], 0, 60)
    if "targets" in t:
        cfg.canteen_targets = _targets(path, "canteen_meeting.targets", t["targets"])
    cfg.canteen_place = str(t.get("place", ""))
    t = table("property_inspection")
    if "day" in t:
        cfg.property_day = _int(path, "property_inspection.day", t["day"], 1, 28)
    if "time" in t:
        cfg.property_time = _time(path, "property_inspection.time", t["time"])
    if "targets" in t:
        cfg.property_targets = _targets(path, "property_inspection.targets", t["targets"])
    t = table("guard")
    if "fire_equipment_check" in t:
        cfg.guard_check_time = _time(path, "guard.fire_equipment_check", t["fire_equipment_check"])
    if "evening_patrol" in t:
        cfg.guard_patrol_time = _time(path, "guard.evening_patrol", t["evening_patrol"])
    if "targets" in t:
        cfg.guard_targets = _targets(path, "guard.targets", t["targets"])
    t = table("pre_term_inspection")
    if "days_before" in t:
        cfg.pre_term_days_before = _int(path, "pre_term_inspection.days_before", t["days_before"], 0, 60)
    if "time" in t:
        cfg.pre_term_time = _time(path, "pre_term_inspection.time", t["time"])
    if "targets" in t:
        cfg.pre_term_targets = _targets(path, "pre_term_inspection.targets", t["targets"])
    t = table("duty")
    cfg.duty = DutyTimes(
        evening=_time(path, "duty.evening_before", t.get("evening_before", "18:00")),
        morning=_time(path, "duty.morning", t.get("morning", "07:30")),
    )
    t = table("reminders")
    if "missed_grace_minutes" in t:
        cfg.missed_grace_minutes = _int(path, "reminders.missed_grace_minutes", t["missed_grace_minutes"], 1, 1440)
    if "receipt_escalation_minutes" in t:
        cfg.receipt_minutes = _int(path, "reminders.receipt_escalation_minutes",
                                   t["receipt_escalation_minutes"], 1, 1440)
    if "tick_seconds" in t:
        v = t["tick_seconds"]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.1 <= v <= 5:
            raise _bad(path, "reminders.tick_seconds", "应为 0.1–5 秒")
        cfg.tick_seconds = float(v)
    return cfg


# --------------------------------------------------------------------------------------------------------
# Building the schedules


def _fmt_clock(t: time) -> str:
    return t.strftime("%H:%M")


def _events(cfg: Config) -> list[Event]:
    """The dated events of the term, already moved off holidays (official calendar, or provisional beyond it)."""
    out: list[Event] = []
    place = f"在{cfg.fire_drill_place}" if cfg.fire_drill_place else ""
    # Keys name the configured time, not the moved one, so that a move (a holiday, or newer official data)
    # updates the same reminders in place.
    for planned in cfg.fire_drills:
        at = shift_to_school_day(planned)
        out.append(Event(f"fire-drill:{planned:%Y%m%d%H%M}", f"{place}举行消防演练，请按预案组织学生疏散",
                         at, cfg.fire_drill_targets))
    if cfg.term_start and cfg.term_end:
        room = f"在{cfg.canteen_place}" if cfg.canteen_place else ""
        for which, day in (("开学", cfg.term_start + timedelta(days=cfg.canteen_days_after_start)),
                           ("期末", cfg.term_end - timedelta(days=cfg.canteen_days_before_end))):
            planned = datetime.combine(day, cfg.canteen_time)
            at = shift_to_school_day(planned)
            out.append(Event(f"canteen:{which}:{planned:%Y%m%d%H%M}", f"{room}召开食堂管理委员会会议（{which}）", at,
                             cfg.canteen_targets))
    return out


def _when_words(at: datetime, notice: datetime) -> str:
    day = "今天" if notice.date() == at.date() else "明天" if notice.date() + timedelta(days=1) == at.date() else ""
    return f"{day}{fmt_day(at)} {_fmt_clock(at.time())}"


def sync_builtin(session: Session, cfg: Config, now: datetime) -> str:
    """Create/update every built-in reminder from `cfg`; cancel the ones no longer in it. Returns a summary.

    Never refused for lack of holiday data: beyond the official calendar the dates are worked out from the law,
    counted in the summary, and re-resolved when the data arrives (storage.calendar_sync).
    """
    plan = _plan(session, cfg, _events(cfg), now)

    counts = {"created": 0, "updated": 0, "kept": 0, "past": 0}
    keep: set[str] = set()
    listed: list[str] = []
    provisional = 0
    for key, when, text, targets, receipt, school_days in plan:
        specs = rem.parse_targets(session, None, targets)
        label = " ".join(f"@{t}" for t in targets)
        r, what = rem.upsert_keyed(session, PREFIX + key, when, text, specs, now=now, source=rem.SOURCE_BUILTIN,
                                   target_label=label, needs_receipt=receipt, school_days_only=school_days)
        counts[what] += 1
        keep.add(PREFIX + key)
        if r is not None and r.state == rem.ACTIVE and r.next_due_at is not None:
            when_text = rem.describe_when(r) if r.recurrence else rem.fmt_moment(r.next_due_at, now)
            if r.recurrence is None and rem.provisional(r):
                when_text += rem.PROVISIONAL_MARK
            provisional += rem.provisional(r)
            listed.append(f"{r.ref} {when_text} {rem.short(r.text, 36)} → {label}")
    retired = rem.retire_keyed(session, PREFIX, keep, now=now)
    lines = [f"内置提醒：新建 {counts['created']} 条，更新 {counts['updated']} 条，未变 {counts['kept']} 条"
             + (f"，停用 {retired} 条（已从配置移除）" if retired else "")
             + (f"，{counts['past']} 条时间已过未建" if counts["past"] else "") + "。"]
    if cfg.term_start and cfg.term_end:
        lines.insert(0, f"学期：{cfg.term_name or ''} {cfg.term_start:%Y-%m-%d} 至 {cfg.term_end:%Y-%m-%d}".strip())
    else:
        lines.append("未配置学期日历（HOUQIN_CONFIG，格式见 houqin.example.toml），只建立了每日、每月的内置提醒。")
    lines += listed
    lines.append(calendar_line(provisional))
    lines.append("节假日值班表：houqin duty generate --from 日期 --to 日期，或 houqin duty import 值班表.csv")
    return "\n".join(lines)


def calendar_line(provisional: int) -> str:
    """Where the holiday data ends, and how many of the planned dates lie beyond it."""
    first, last = official_years()
    line = f"节假日日历：官方数据覆盖 {first}–{last} 年；{last + 1} 年起暂按法定假日推算，待国务院公布后自动更新。"
    if provisional:
        line += f"以上内置提醒中有 {provisional} 个日期为推算{PROVISIONAL_NOTE}。"
    return line


Plan = list[tuple[str, "datetime | Recurrence", str, list[str], bool, bool]]


def _plan(session: Session, cfg: Config, events: list[Event], now: datetime) -> Plan:
    plan: Plan = [
        ("guard-fire-check", Recurrence("daily", cfg.guard_check_time),
         "每日消防器材检查：灭火器、消火栓、应急照明、疏散通道和安全出口是否完好畅通", cfg.guard_targets, True, False),
        ("guard-patrol", Recurrence("daily", cfg.guard_patrol_time),
         "晚间巡查：教学楼门窗水电、校园周界和重点部位，发现异常及时报告", cfg.guard_targets, True, False),
        ("property-inspection", Recurrence("monthly", cfg.property_time, day=cfg.property_day),
         "每月财产检查：核对固定资产和公物，登记损坏与缺失，及时报修", cfg.property_targets, False, True),
    ]
    if cfg.term_start:
        planned = datetime.combine(cfg.term_start - timedelta(days=cfg.pre_term_days_before), cfg.pre_term_time)
        at = shift_to_school_day(planned)
        plan.append((f"pre-term:{planned:%Y%m%d%H%M}", at,
                     (f"开学前食品与饮用水安全检查（{cfg.term_start.month}月{cfg.term_start.day}日开学）：食堂食材与"
                      "证照、餐具消毒、留样，饮水机和二次供水水质"), cfg.pre_term_targets, False, False))
    for ev in events:
        eve = datetime.combine(ev.at.date() - timedelta(days=1), cfg.notice_day_before)
        ahead = ev.at - timedelta(hours=cfg.notice_hours_before)
        for suffix, notice in (("eve", eve), ("ahead", ahead)):
            if notice >= ev.at:
                continue
            plan.append((f"{ev.key}:{suffix}", notice, f"{_when_words(ev.at, notice)} {ev.title}。", ev.targets,
                         False, False))
    return plan


def init_builtin(rt: Any) -> str:
    """`houqin init`: the built-in schedules from the config's term calendar (one transaction), after
    re-resolving what was planned provisionally if newer official holiday data has arrived."""
    cfg = load_config(config_path(rt.settings.config_file))
    with rt.db.session() as session:
        now = rt.clock.now()
        report = calendar_sync.resolve(session, now, rebuild=lambda s: sync_builtin(s, cfg, now))
        summary = sync_builtin(session, cfg, now)
    if report.changes:
        summary += (f"\n已按 {'、'.join(map(str, report.newly_official))} 年官方放假安排重新核对，"
                    f"{len(report.changes)} 处变化已告知管理员：\n" + "\n".join(report.changes))
    return summary


@periodic("calendar-check", seconds=3600, settings={"config": "term_config"})
def calendar_check(session: Session, now: datetime, *, config: Config) -> str | None:
    """Hourly: has newer official holiday data arrived (a package upgrade)? Re-resolve and tell the admins once."""
    report = calendar_sync.resolve(session, now, rebuild=lambda s: sync_builtin(s, config, now))
    if report.changes:
        return f"official calendar through {report.official_through}: {len(report.changes)} change(s) reported"
    return None
