"""The scheduler: fires due reminders on time, and runs every periodic job of the registry at its interval.

The reminder tick is an APScheduler date job that re-schedules itself for the next due reminder, or for
tick_seconds (0.5 s) later if that is sooner — so it looks twice a second for reminders other processes add,
and otherwise wakes exactly when something is due (measured: tens of milliseconds from due time to outbox row).

APScheduler 3.x (BackgroundScheduler, in-memory job store) is only the timer. Nothing about *what* is due lives
in APScheduler: the state is in our own tables, so every process may run this scheduler (each uvicorn worker,
and/or `houqin scheduler`) and the outcome is the same as with one:

* Reminders: Reminder.next_due_at is advanced in the same transaction that inserts the occurrence, UNIQUE
  (reminder_id, due_at), and its outbox rows (unique dedup_key). Rows are selected FOR UPDATE SKIP LOCKED on
  PostgreSQL, so two ticks never work on the same reminder at once; the unique key is the backstop.
* Periodic jobs run on wall-clock aligned slots (slot = epoch / interval, rounded); a job first claims its slot with
  UPDATE periodicjobstate SET last_slot = :slot WHERE last_slot < :slot, in its own transaction — a second
  process blocks on that row, then finds the slot taken and does nothing. A job that fails rolls back its claim.
* A Redis lease lock (`kv_lock`) makes one process do the reminder tick at a time, which spares the database
  the duplicate work; it is an optimisation, not what makes delivery exactly once.

We deliberately do not use APScheduler's SQLAlchemyJobStore: in 3.x a job store must not be shared by several
schedulers (each would run every job), and a persistent store would only duplicate state our tables hold.
Restarts need nothing special: what was due while down is in the database, and the first tick (at start-up)
fires what is less than an hour late and records the rest as missed (storage.reminder.fire_due).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from jobs import reminder as reminder_jobs
from jobs.term_config import Config, config_path, load_config
from jobs.registry import PeriodicJob, load_jobs
from storage import jobstate
from storage import reminder as rem
from storage.clock import Clock
from storage.db import Database
from storage.kv import KV, kv_lock

log = logging.getLogger("houqin.scheduler")

TICK_SECONDS = 0.5
LOCK_TTL = 5.0
MIN_DELAY = 0.005  # never spin: rows another process holds locked stay "due" for a few milliseconds
TICK_LOCK = "scheduler:reminders"
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)  # the origin of every aligned interval (a Monday, 00:00 UTC)


class JobSettings(Protocol):
    config_file: str | None  # the TOML config (term calendar, [reminders]); jobs read other settings by name


class JobRuntime(Protocol):
    """What the scheduler needs of the process it runs in (bot.runtime.Runtime has it)."""

    settings: JobSettings
    db: Database
    kv: KV
    clock: Clock
    wake_sender: Callable[[], None]


class Scheduler:
    def __init__(self, rt: JobRuntime, tick_seconds: float | None = None) -> None:
        self.rt = rt
        self.settings = reminder_jobs.ReminderSettings()
        self.config = Config()
        try:
            cfg = load_config(config_path(rt.settings.config_file))
            self.config = cfg
            self.settings = reminder_jobs.ReminderSettings(cfg.missed_grace_minutes, cfg.receipt_minutes)
            tick_seconds = tick_seconds or cfg.tick_seconds
        except Exception as exc:  # noqa: BLE001 - a broken config file must not stop reminders: defaults, loudly
            log.error("scheduler: config file not usable (%s); using defaults", exc)
        self.tick_seconds = tick_seconds or TICK_SECONDS
        self.jobs: dict[str, PeriodicJob] = dict(load_jobs())
        self._aps: BackgroundScheduler | None = None
        self._ensured: set[str] = set()
        self._failing = False
        self._stopping = threading.Event()
        self._upcoming: datetime | None = None

    # --- lifecycle ---
    def start(self) -> Scheduler:
        # APScheduler logs every run at INFO: twice a second, that would drown the server's log.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        aps = BackgroundScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})
        for job in self.jobs.values():
            aps.add_job(self.run_periodic, IntervalTrigger(seconds=job.seconds, start_date=_EPOCH), args=[job],
                        id=f"periodic:{job.name}", misfire_grace_time=max(1, job.seconds))
        aps.start()
        self._aps = aps
        self._schedule(0)  # at once: what fell due while the server was down goes out now
        log.info("scheduler started: tick %.2fs, periodic jobs: %s", self.tick_seconds, ", ".join(self.jobs) or "-")
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._aps is not None:
            self._aps.shutdown(wait=True)
            self._aps = None

    # --- reminders ---
    def _timer(self) -> None:
        """The APScheduler job: tick, then schedule the next tick at the next due time, or in tick_seconds if
        sooner (to see reminders other processes add). A reminder thus goes out within milliseconds of its
        time, not up to a tick late, while an idle scheduler still looks only every tick_seconds."""
        delay = self.tick_seconds
        try:
            self.tick()
            if self._upcoming is not None:
                wait = (self._upcoming - self.rt.clock.now()).total_seconds()
                delay = max(MIN_DELAY, min(delay, wait))
        finally:
            self._schedule(delay)

    def _schedule(self, delay: float) -> None:
        if self._aps is None or self._stopping.is_set():
            return
        try:
            self._aps.add_job(self._timer, "date", id="reminders", replace_existing=True, misfire_grace_time=None,
                              run_date=datetime.now(UTC) + timedelta(seconds=delay))
        except SchedulerNotRunningError:  # shutting down
            pass

    def tick(self) -> int:
        """Fire everything due now; returns the number of outbox rows queued. Safe in any number of processes."""
        queued = 0
        self._upcoming = None
        try:
            # A short lease: a process killed mid-tick holds up the others for seconds, not minutes; a tick that
            # outlives it only means two processes share the work, which SKIP LOCKED keeps correct. The short
            # wait covers another process's idle tick (milliseconds) that happens to hold it at a due time.
            with kv_lock(self.rt.kv, TICK_LOCK, ttl=LOCK_TTL, wait=0.1) as held:
                if not held:
                    return 0  # another process is ticking; it times the next due reminder
                while True:
                    with self.rt.db.session() as session:
                        report = reminder_jobs.fire(session, self.rt.clock.now(), self.settings)
                        more = report.reminders >= self.settings.batch
                        if not more:
                            self._upcoming = rem.next_due(session)
                    # After the commit, so the sender finds the rows.
                    if report.outbox:
                        queued += report.outbox
                        self.rt.wake_sender()
                    if report.sent or report.missed:
                        log.info("reminders: %d sent, %d missed, %d pushes queued", report.sent, report.missed,
                                 report.outbox)
                    if not more:
                        break
            if self._failing:
                log.warning("scheduler tick recovered")
                self._failing = False
        except Exception:
            if not self._failing:  # log a database outage once, not twice a second
                log.exception("scheduler tick failed; retrying every tick")
            self._failing = True
        return queued

    # --- periodic jobs ---
    def run_periodic(self, job: PeriodicJob, slot: int | None = None) -> str | None:
        """Run `job` for its current slot unless another process already has. Returns its result."""
        # Rounded, not floored: a run fired a hair before its aligned time still counts for that slot.
        slot = slot if slot is not None else round(time.time() / job.seconds)
        try:
            if job.name not in self._ensured:
                with self.rt.db.session() as session:
                    jobstate.ensure_job_row(session, job.name)
                self._ensured.add(job.name)
            with self.rt.db.session() as session:
                now = self.rt.clock.now()
                if not jobstate.claim_slot(session, job.name, slot, now):
                    return None
                result = job.fn(session, now, **job.arguments(self.rt.settings, term_config=self.config))
                jobstate.record_job_result(session, job.name, result)
            if result:
                log.info("job %s: %s", job.name, result)
            self.rt.wake_sender()
            return result
        except Exception:
            log.exception("periodic job %s failed (slot %d)", job.name, slot)
            return None


def start_scheduler(rt: JobRuntime) -> Scheduler:
    """Called by bot.app when SCHEDULER=on, and by `houqin scheduler`. The returned object has .stop()."""
    return Scheduler(rt).start()
