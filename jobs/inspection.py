"""Inspection jobs: a round's window opens → its people are reminded; it ends → missed checkpoints are told to
them and the admins; certificates 30 and 7 days before expiry → holder and admins. Each once (storage marks)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlmodel import Session

from jobs.term_config import Config
from jobs.registry import periodic
from storage import certificates, inspection


@periodic("inspection-rounds", seconds=30)
def rounds(session: Session, now: datetime) -> str | None:
    reminded = inspection.remind_due_rounds(session, now)
    closed = inspection.close_ended_rounds(session, now)
    if reminded or closed:
        return f"巡查：提醒 {reminded} 轮，漏检告知 {closed} 轮"
    return None


@periodic("certificate-expiry", seconds=3600)
def certificate_expiry(session: Session, now: datetime) -> str | None:
    n = certificates.notify_expiring(session, now)
    return f"证照到期提醒 {n} 张" if n else None


def builtin_routes(cfg: Config) -> list[inspection.BuiltinRoute]:
    """The term plan's inspections as routes, from the same config as the built-in reminders."""
    fire = inspection.FIRE_KINDS
    specs = [
        inspection.BuiltinRoute("evening-patrol", "晚间巡查", ("巡查点", "教室", "周界报警", "监控"),
                                inspection.SCHOOL_DAYS, cfg.guard_patrol_time, 1, ("guard",)),
        inspection.BuiltinRoute("fire-equipment", "每日消防器材检查", fire, inspection.SCHOOL_DAYS,
                                cfg.guard_check_time, 1, ("guard",)),
        inspection.BuiltinRoute("fire-monthly", "每月消防检查", fire, inspection.MONTHLY, cfg.property_time, 3,
                                ("admin",), day=cfg.property_day),
        inspection.BuiltinRoute("property-monthly", "每月财产检查", ("财产",), inspection.MONTHLY,
                                cfg.property_time, 3, ("admin", "worker"), day=cfg.property_day),
    ]
    if cfg.term_start:
        specs.append(inspection.BuiltinRoute("term-start-safety", "开学安全大检查",
                                             ("配电间", "监控", "周界报警", "运动场地", "食堂"), inspection.ONCE,
                                             time(9, 0), 8, ("admin",), on=cfg.term_start))
        specs.append(inspection.BuiltinRoute("pre-term-food-water", "开学前食品与饮用水检查", ("食堂", "饮用水"),
                                             inspection.ONCE, cfg.pre_term_time, 3, ("admin",),
                                             on=cfg.term_start - timedelta(days=cfg.pre_term_days_before)))
    return specs


def sync_builtin_routes(session: Session, cfg: Config, now: datetime) -> str:
    return "\n".join(inspection.sync_builtin_routes(session, builtin_routes(cfg), now=now))
