"""Periodic jobs are declared once, next to their domain (jobs/<domain>.py), and run by the scheduler.

A job is `fn(session, now) -> str | None`: it runs inside one transaction (so its outbox rows commit with
its changes) and must be idempotent — a job that runs twice, or in two processes, tells nobody twice
(keep a "notified" mark on the record, or use an outbox dedup_key).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

import jobs

JobFn = Callable[[Session, datetime], "str | None"]


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    fn: JobFn
    seconds: int  # run every N seconds (the scheduler aligns and de-duplicates across processes)


PERIODIC: dict[str, PeriodicJob] = {}


def periodic(name: str, seconds: int) -> Callable[[JobFn], JobFn]:
    def register(fn: JobFn) -> JobFn:
        PERIODIC[name] = PeriodicJob(name, fn, seconds)
        return fn

    return register


def load_jobs() -> dict[str, PeriodicJob]:
    for mod in pkgutil.iter_modules(jobs.__path__):
        if not mod.name.startswith("_") and mod.name not in ("registry", "scheduler"):
            importlib.import_module(f"jobs.{mod.name}")
    return PERIODIC
