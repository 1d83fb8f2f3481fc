"""Periodic jobs are declared once, next to their domain (jobs/<domain>.py), and run by the scheduler.

A job is `fn(session, now, **wanted) -> str | None`, where `wanted` holds what it declared in `wants` from the
scheduler's context (today: "config", the term-calendar config). It runs inside one transaction (so its outbox rows commit with
its changes) and must be idempotent — a job that runs twice, or in two processes, tells nobody twice
(keep a "notified" mark on the record, or use an outbox dedup_key).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass


import jobs

JobFn = Callable[..., "str | None"]  # (session, now, **the settings it declared)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    fn: JobFn
    seconds: int  # run every N seconds (the scheduler aligns and de-duplicates across processes)
    settings: tuple[tuple[str, str], ...] = ()  # (keyword, settings attribute) pairs the scheduler passes in

    def arguments(self, settings: object, **extra: object) -> dict[str, object]:
        """The keywords this job declared, read from the app's settings (or from `extra`, e.g. the scheduler's
        loaded term-calendar config as `term_config`)."""
        return {keyword: extra[attr] if attr in extra else getattr(settings, attr) for keyword, attr in self.settings}


PERIODIC: dict[str, PeriodicJob] = {}


def periodic(name: str, seconds: int, settings: dict[str, str] | None = None) -> Callable[[JobFn], JobFn]:
    """Declare a periodic job; `settings` maps its keyword arguments to the settings the scheduler reads them from
    (`{"hours": "visitor_long_stay_hours"}`), so a job never builds the settings itself."""

    def register(fn: JobFn) -> JobFn:
        PERIODIC[name] = PeriodicJob(name, fn, seconds, tuple((settings or {}).items()))
        return fn

    return register


def load_jobs() -> dict[str, PeriodicJob]:
    for mod in pkgutil.iter_modules(jobs.__path__):
        if not mod.name.startswith("_") and mod.name not in ("registry", "scheduler", "term_config"):
            importlib.import_module(f"jobs.{mod.name}")
    return PERIODIC
