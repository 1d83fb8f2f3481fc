"""Built-in schedules from the term calendar in the config file (`houqin init`; the file itself: jobs.term_config).

Every built-in reminder has a stable key, so running `houqin init` again updates them in place, creates what is
new, and cancels what was removed from the file; one the admin cancelled stays cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlmodel import Session

from jobs.registry import periodic
from jobs.term_config import Config, config_path, load_config
from storage import calendar_sync
from storage import reminder as rem
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
