"""The outbox sender: delivers queued pushes through the WeChat API, at least once, at a bounded rate.

A row is claimed (state `sending`, `claimed_until` = now + lease) in a short transaction — on PostgreSQL
with `FOR UPDATE SKIP LOCKED`, on SQLite under BEGIN IMMEDIATE — so concurrent senders never take the same
row; a row left `sending` past its lease (the process died mid-send) is claimed again, hence at least once.
Claimed rows are sent by a small thread pool (one recipient's rows in order, by one thread) under a rate
limit shared by the threads, and each outcome is written in its own transaction as soon as it is known.

Channel: a template message when a template id is configured for the row's kind (`WECHAT_TEMPLATE_<KIND>`)
and the row is not `force_cs`, else a customer-service text message. Template data: `first` = the text's
first line, `keyword1` = the whole text, `keyword2` = when it was queued (YYYY-MM-DD HH:MM); so configure a
template whose content shows {{first.DATA}}, {{keyword1.DATA}} (内容) and {{keyword2.DATA}} (时间). A row's
`data` may carry `{"template": {...}}` (field → value) to fill the fields itself, and `{"url": ...}`.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Self

from sqlalchemy import and_, bindparam, or_, update
from sqlmodel import col, select

from bot.runtime import Runtime
from bot.wechat.api import WeChatAPI, WeChatAPIError
from bot.wechat.menu import apply_tag
from storage import outbox as ob
from storage.db import DatabaseUnavailable
from storage.fastsql import Hot
from storage.people import Person
from storage.redact import redact

log = logging.getLogger("houqin.sender")

LEASE_SECONDS = 120  # a claimed row not finished in this time is taken again (its sender presumably died)
MAX_ATTEMPTS = 8
BASE_DELAY = 10.0  # s before the first retry; doubles each time (with jitter), capped at MAX_DELAY
MAX_DELAY = 3600.0
POLL_SECONDS = 0.5


class RateLimiter:
    """At most `rate` sends start in any window of one second, across all threads of this process.

    A sliding log of the last n = rate grant times: a send may start only once the n-th latest one is a full
    window old. A quiet sender may burst up to n at once, but no window ever holds more than n grants. (A
    token bucket starting full would allow close to 2n in the first second.) Grants are taken at the moment
    the send starts, never reserved ahead, and the window is `margin` seconds longer than a second so that
    the jitter between starting a call and WeChat receiving it cannot push a window over the limit either.
    """

    def __init__(self, rate: float, *, margin: float = 0.1, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("send rate must be positive")
        self.rate = rate
        self.n = max(1, int(rate))
        self.window = self.n / rate + margin
        self._starts: deque[float] = deque(maxlen=self.n)
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._sleep = sleep

    def acquire(self) -> float:
        """Wait for a slot; returns the time it was granted (time.monotonic())."""
        while True:
            with self._lock:
                now = self._monotonic()
                if len(self._starts) < self.n or now >= self._starts[0] + self.window:
                    self._starts.append(now)
                    return now
                wait = self._starts[0] + self.window - now
            self._sleep(wait)


@dataclass
class _Job:
    """A claimed row, detached from its session: what the sending thread needs."""

    id: int
    openid: str
    channel: str  # template | custom | tag (a menu tag, not a message)
    template_id: str | None
    text: str
    data: dict[str, Any]
    created_at: datetime
    attempts: int


def template_data(text: str, created_at: datetime, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template fields for a push (see the module docstring)."""
    custom = (data or {}).get("template")
    if isinstance(custom, dict) and custom:
        return {k: (v if isinstance(v, dict) else {"value": str(v)}) for k, v in custom.items()}
    first = text.strip().split("\n", 1)[0]
    return {
        "first": {"value": first},
        "keyword1": {"value": text},
        "keyword2": {"value": created_at.strftime("%Y-%m-%d %H:%M")},
    }


def backoff(attempts: int, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """Seconds before retry number `attempts`: exponential, with "equal jitter" so a crowd spreads out."""
    d = min(cap, base * 2 ** max(0, attempts - 1))
    return d / 2 + random.uniform(0, d / 2)


class OutboxSender:
    def __init__(self, rt: Runtime, *, api: WeChatAPI | None = None, threads: int = 16,
                 rate: float | None = None, lease_seconds: float = LEASE_SECONDS,
                 max_attempts: int = MAX_ATTEMPTS, base_delay: float = BASE_DELAY) -> None:
        self.rt = rt
        self.api = api or WeChatAPI(rt.settings, rt.kv)
        self._own_api = api is None
        self.threads = threads
        self.limiter = RateLimiter(rate or rt.settings.send_rate_per_second)
        # The limit is taken right before each request goes out (a token-refresh retry counts too).
        self.api.throttle = lambda: self.limiter.acquire()
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        if self._own_api:
            self.api.close()

    # --- one pass ---
    def run_once(self, limit: int = 100) -> int:
        """Claim up to `limit` due rows and settle them. Returns how many rows were claimed (sent, retried
        later, failed or skipped); 0 means nothing was due."""
        jobs, settled = self.claim(limit)
        if not jobs:
            return settled
        groups: dict[str, list[_Job]] = {}
        for job in jobs:  # one recipient's messages in order, by one thread
            groups.setdefault(job.openid, []).append(job)
        batches = list(groups.values())
        if len(batches) == 1 or self.threads <= 1:
            for batch in batches:
                self._send_batch(batch)
        else:
            list(self._executor().map(self._send_batch, batches))
        return settled + len(jobs)

    def claim(self, limit: int) -> tuple[list[_Job], int]:
        """Take due rows (and rows whose lease ran out). Rows that cannot be sent are settled here;
        returns the jobs to send and how many rows were settled without sending."""
        now = self.rt.clock.now()
        templates = self.rt.settings.templates
        M = ob.OutboxMessage
        due = or_(
            and_(col(M.state) == ob.PENDING, col(M.next_attempt_at) <= now),
            and_(col(M.state) == ob.SENDING, col(M.claimed_until) < now),
        )
        query = select(M).where(due).order_by(col(M.next_attempt_at), col(M.id)).limit(limit)
        if not self.rt.db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        # The lease must outlast the whole batch even at a low rate limit, or a live sender's rows are retaken.
        lease = max(self.lease, timedelta(seconds=2 * limit / self.limiter.rate + 5))
        jobs: list[_Job] = []
        settled = 0
        with self.rt.db.session() as s:
            rows = list(s.exec(query).all())
            if not rows:
                return [], 0
            ids = {r.person_id for r in rows if r.person_id is not None}
            persons = {p.id: p for p in s.exec(select(Person).where(col(Person.id).in_(ids)))} if ids else {}
            for row in rows:
                openid, skip = self._recipient(row, persons)
                if skip:
                    row.state, row.last_error, row.claimed_until = ob.SKIPPED, skip, None
                    settled += 1
                elif row.state == ob.SENDING and row.attempts >= self.max_attempts:
                    row.state, row.claimed_until = ob.FAILED, None
                    row.last_error = f"发送中断 {row.attempts} 次，已放弃"
                    settled += 1
                else:
                    if row.state == ob.SENDING:
                        log.warning("outbox row %s was left sending past its lease: sending it again", row.id)
                    template_id = None if row.force_cs else templates.get(row.kind)
                    row.channel = "template" if template_id else "custom"
                    if row.kind == ob.MENU_TAG:
                        template_id, row.channel = None, "tag"
                    row.state = ob.SENDING
                    row.claimed_until = now + lease
                    row.attempts += 1
                    assert row.id is not None and openid is not None
                    jobs.append(_Job(row.id, openid, row.channel, template_id, row.text, _loads(row.data),
                                     row.created_at, row.attempts))
                s.add(row)
        return jobs, settled

    @staticmethod
    def _recipient(row: ob.OutboxMessage, persons: dict[int | None, Person]) -> tuple[str | None, str | None]:
        """(openid, None) to send, or (None, reason) to skip."""
        if row.person_id is None:
            return (row.openid, None) if row.openid else (None, "没有接收人")
        person = persons.get(row.person_id)
        if person is None:
            return None, "人员不存在"
        if not person.active:
            return None, "人员已停用"
        if not person.openid:
            return None, "未绑定微信"
        if not person.subscribed:
            return None, "已取消关注公众号"
        return person.openid, None

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="houqin-send")
            return self._pool

    def _send_batch(self, jobs: list[_Job]) -> None:
        for job in jobs:
            try:
                self._send_one(job)
            except Exception:  # never lose the rest of the batch; the lease brings this row back
                log.exception("outbox row %s: unexpected error", job.id)

    def _send_one(self, job: _Job) -> None:
        msgid: str | None = None
        error: WeChatAPIError | None = None
        try:
            if job.channel == "tag":
                role = job.data.get("menu_role")
                apply_tag(self.api, job.openid, role if isinstance(role, str) and role else None)
            elif job.channel == "template":
                assert job.template_id
                data = template_data(job.text, job.created_at, job.data)
                url = job.data.get("url") if isinstance(job.data.get("url"), str) else None
                msgid = self.api.send_template(job.openid, job.template_id, data, url=url)
            else:
                self.api.send_text(job.openid, job.text)
        except WeChatAPIError as exc:
            error = exc
        self._record(job, msgid, error)

    def _record(self, job: _Job, msgid: str | None, error: WeChatAPIError | None) -> None:
        now = self.rt.clock.now()
        M = ob.OutboxMessage
        values: dict[str, Any]
        if error is None:
            values = {"state": ob.SENT, "sent_at": now, "wechat_msgid": msgid or None, "errcode": None,
                      "last_error": None, "claimed_until": None}
        elif error.transient and job.attempts < self.max_attempts:
            delay = backoff(job.attempts, self.base_delay)
            values = {"state": ob.PENDING, "next_attempt_at": now + timedelta(seconds=delay),
                      "errcode": error.errcode, "last_error": redact(error.describe())[:500], "claimed_until": None}
            log.info("outbox row %s: %s; retry %s in %.0f s", job.id, error.describe(), job.attempts + 1, delay)
        else:
            reason = error.describe()
            if error.transient:
                reason = f"重试 {job.attempts} 次仍失败：{reason}"
            values = {"state": ob.FAILED, "errcode": error.errcode, "last_error": redact(reason)[:500],
                      "claimed_until": None}
            log.warning("outbox row %s failed: %s", job.id, reason)
        statement = _OUTCOME.get(tuple(values))
        if statement is None:
            statement = _OUTCOME[tuple(values)] = Hot(
                update(M).where(col(M.id) == bindparam("row_id"), col(M.state) == ob.SENDING)
                .values({k: bindparam(k) for k in values}))
        with self.rt.db.connection() as conn:  # a hot statement: this runs for every push
            statement.run(conn, {"row_id": job.id, **values})


_OUTCOME: dict[tuple[str, ...], Hot] = {}  # the outcome's UPDATE, one per set of columns written


def _loads(data: str | None) -> dict[str, Any]:
    try:
        value = json.loads(data or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class SenderThread:
    """The background sender of one process: polls every POLL_SECONDS, woken at once by rt.wake_sender()."""

    def __init__(self, rt: Runtime, sender: OutboxSender | None = None, limit: int = 100) -> None:
        self.sender = sender or OutboxSender(rt, lease_seconds=rt.settings.outbox_lease)
        self.limit = limit
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="houqin-outbox", daemon=True)

    def start(self) -> SenderThread:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=15)
        self.sender.close()

    def _loop(self) -> None:
        pause = POLL_SECONDS
        while not self._stop.is_set():
            self._wake.clear()  # before the pass, so a wake-up during it is not lost
            try:
                n = self.sender.run_once(self.limit)
                pause = POLL_SECONDS
            except DatabaseUnavailable as exc:
                log.warning("outbox sender: database unavailable (%s)", exc)
                n, pause = 0, min(pause * 2, 10.0)
            except Exception:
                log.exception("outbox sender pass failed")
                n, pause = 0, min(pause * 2, 10.0)
            if n < self.limit:  # a full batch means more may be due: go again at once
                self._wake.wait(pause)


def start_sender(rt: Runtime) -> SenderThread:
    """Start this process's outbox sender (bot.app does when SENDER=on) and hook up rt.wake_sender."""
    thread = SenderThread(rt).start()
    rt.wake_sender = thread.wake
    return thread
