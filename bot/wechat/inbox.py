"""Exactly-once handling of inbound messages, and the 4.5-second rule (SPEC 7).

Fast path, in the KV store (Redis: shared by all workers): the first copy of a message claims its key
(`msg:<key>` = `run:<boot id>`) and runs the handler in a small thread pool; a copy that finds the claim
follows it — waits for the reply the holder leaves there (`done:<reply>`, kept for WeChat's retries) and
answers the same. A claim expires with its holder: every process keeps a heartbeat key (`alive:<boot id>`),
and a copy that finds the claim of a process that died (killed mid-handler) takes it over and runs the
message itself.

The database decides (storage/inbox.py): the handler's transaction records the message key (unique) with the
reply, so a second run — Redis restarted or emptied, a takeover racing a slow holder, a recovery run — is
rolled back whole and answers the stored reply. A message whose handler is not done within `reply_timeout`
is made durable (a pending row with the message) before WeChat gets `success`; if that cannot be written in
time, WeChat gets 503 and retries. The reply of a late message is queued in the outbox (a customer-service
message) in the same transaction as its effect. A recovery loop (`Keeper`) runs the pending messages whose
holder died or failed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session
from bot.wechat.router import Finish, Handled
from handlers.base import Inbound
from storage import inbox as store
from storage.db import Database, DatabaseUnavailable
from storage.inbox import AlreadyHandled
from storage.kv import KV
from storage.outbox import enqueue

log = logging.getLogger("houqin.inbox")

CLAIM_TTL = 120.0  # outlives any handler; a dead holder is found by its heartbeat, not by this
DONE_TTL = 300.0  # the reply kept for WeChat's retries (they all come within ~15 s)
ALIVE_TTL = 6.0  # a process whose heartbeat is this old is dead: its claims are taken over
HEARTBEAT_SECONDS = 2.0
POLL_SECONDS = 0.05
PRUNE_SECONDS = 600.0
RUN, DONE = "run:", "done:"
_TAKEOVER = object()


class _Held:
    """The claim was someone else's: its value (`run:<boot>` or `done:<reply>`)."""

    def __init__(self, value: str | None) -> None:
        self.value = value


class _Job:
    """One run of a message: the deadline and the handler agree, under a lock, whether its reply is late."""

    def __init__(self, late: bool = False, recovery: bool = False) -> None:
        self.lock = threading.Lock()
        self.finished = False
        self.late = late
        self.recovery = recovery
        self.accepted = threading.Event()  # the deadline's attempt to write the pending row is over
        self.storing = False  # a pending row is being (or was) written for this run: its finish must record it

    def mark_late(self) -> bool:
        """The deadline passed: True if the handler had not settled yet (its reply now goes later)."""
        with self.lock:
            if self.finished:
                return False
            self.late = True
            return True

    def settle(self) -> bool:
        """The handler is about to commit (or has failed): no more waiting. Returns whether it is late."""
        with self.lock:
            self.finished = True
            return self.late

    def store_meanwhile(self) -> bool:
        """The deadline is near: True if the handler has not settled (a pending row may now be written, and the
        handler's finish will record the message whatever it did)."""
        with self.lock:
            if self.finished:
                return False
            self.storing = True
            return True


def to_payload(inbound: Inbound) -> dict[str, Any]:
    data = asdict(inbound)
    data.pop("prefetched", None)
    return data


def from_payload(data: dict[str, Any]) -> Inbound | None:
    try:
        return Inbound(openid=str(data["openid"]), type=str(data.get("type") or "text"),
                       text=str(data.get("text") or ""), media_id=data.get("media_id"), pic_url=data.get("pic_url"),
                       extra=dict(data.get("extra") or {}))
    except (KeyError, TypeError, ValueError):
        return None


class Inbox:
    def __init__(
        self,
        handle: Callable[[Inbound, Finish], Handled],
        kv: KV,
        db: Database,
        now: Callable[[], datetime],
        reply_timeout: float = 4.5,
        on_late_reply: Callable[[], None] | None = None,
        threads: int = 4,
        prefetch: Callable[[Inbound], list[str]] = lambda inbound: [],
        accept_timeout: float = 0.4,
        lease: float = 30.0,
    ) -> None:
        self.prefetch = prefetch
        self._handle = handle
        self.kv = kv
        self.db = db
        self.now = now
        self.reply_timeout = reply_timeout
        self.accept_timeout = accept_timeout
        self.accept_lead = accept_timeout + 0.1  # a handler still running this long before the deadline: store it
        self.lease = lease
        self.on_late_reply = on_late_reply
        self.boot = uuid.uuid4().hex[:16]
        self.running: set[str] = set()  # message keys this process is handling now
        self._running_lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="houqin-handler")
        # Accepting late messages and following claims must never queue behind handlers stuck on the database.
        self.control = ThreadPoolExecutor(max_workers=8, thread_name_prefix="houqin-inbox")
        self.keeper: Keeper | None = None

    # --- the webhook's entry point ---
    async def receive(self, key: str, inbound: Inbound) -> str | None:
        """The reply for this message (None: answer `success`). Raises DatabaseUnavailable when the message
        could not be acted on nor made durable: the webhook answers 503 and WeChat retries."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reply_timeout
        while True:
            job = _Job()
            future = self._start(loop, key, inbound, job)
            storing = None
            lead = 0.0 if self.db.is_sqlite else self.accept_lead  # (SQLite: the handler holds the one writer)
            done = await _wait(loop, future, deadline - lead)
            if not done and lead and job.store_meanwhile():
                # Still running shortly before the deadline: store the message meanwhile, so that `success` can go
                # out at the deadline even when the database is slow to give a connection. (If the handler makes
                # it after all, it turns the row done; if it fails, WeChat's retry or the recovery loop runs it.)
                storing = loop.run_in_executor(self.control, self._accept_sync, key, inbound, job)
            if not done:  # the rest of the time up to the deadline, on every backend
                done = await _wait(loop, future, deadline)
            if not done and job.mark_late():
                future.add_done_callback(_consume)
                log.warning("handler for %s is slow; answering success and sending the reply later", key)
                return await self._accept(key, inbound, job, storing)
            if storing is not None:
                storing.add_done_callback(_consume)
            result = await future
            if not isinstance(result, _Held):
                return result  # type: ignore[return-value]
            outcome = await self._follow(key, inbound, result.value, deadline)
            if outcome is not _TAKEOVER:
                return outcome  # type: ignore[return-value]

    def _start(self, loop: asyncio.AbstractEventLoop, key: str, inbound: Inbound,
               job: _Job) -> asyncio.Future[str | None | _Held]:
        """Claim and run the message in the handler pool; the future gets the outcome. (What run_in_executor
        does, with one future instead of two chained ones: this is every message's path.)"""
        future: asyncio.Future[str | None | _Held] = loop.create_future()

        def run() -> None:
            try:
                result, error = self._claim_and_run(key, inbound, job), None
            except BaseException as exc:
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed (shutting down): nobody waits for the answer
                pass

        self.pool.submit(run)
        return future

    async def _follow(self, key: str, inbound: Inbound, value: str | None, deadline: float) -> object:
        """Another copy holds the claim: its reply when it has one; take over if its holder died; at the
        deadline, make the message durable and answer `success`."""
        loop = asyncio.get_running_loop()
        while True:
            if value is not None and value.startswith(DONE):
                return value[len(DONE):] or None
            if value is None or not await loop.run_in_executor(self.control, self._alive, value):
                if value is not None:
                    await loop.run_in_executor(self.control, self.kv.delete_if, f"msg:{key}", value)
                    log.warning("message %s was held by a process that is gone: taking it over", key)
                return _TAKEOVER
            if loop.time() >= deadline:
                return await self._accept(key, inbound)
            await asyncio.sleep(POLL_SECONDS)
            value = await loop.run_in_executor(self.control, self.kv.get, f"msg:{key}")

    def _alive(self, value: str) -> bool:
        boot = value[len(RUN):] if value.startswith(RUN) else ""
        if boot == self.boot:
            return True  # ours: it finishes (or fails and lets go) by itself
        return bool(boot) and self.kv.get(f"alive:{boot}") is not None

    async def _accept(self, key: str, inbound: Inbound, job: _Job | None = None,
                      future: asyncio.Future[store.Stored] | None = None) -> str | None:
        """Make the message durable (a pending row), or find it done: its reply, or None for `success`."""
        loop = asyncio.get_running_loop()
        if future is None:
            future = loop.run_in_executor(self.control, self._accept_sync, key, inbound, job)
        # SQLite has one writer, most likely this process's slow handler: do not wait for it long (below).
        timeout = min(self.accept_timeout, 0.05) if self.db.is_sqlite else self.accept_timeout
        try:
            stored = await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            future.add_done_callback(_consume)
            if self.db.is_sqlite:
                # SQLite has one writer, and it is this process's slow handler: the row is written as soon as
                # it lets go. (Only a crash in between loses the message: production runs on PostgreSQL.)
                return None
            raise DatabaseUnavailable(f"could not record message {key} in time") from None
        if stored.state == store.DONE and not stored.late:
            return stored.reply
        return None

    def _accept_sync(self, key: str, inbound: Inbound, job: _Job | None) -> store.Stored:
        try:
            with self.db.session() as s:
                return store.accept(s, key, inbound.openid, to_payload(inbound), now=self.now(), lease=self.lease)
        finally:
            if job is not None:
                job.accepted.set()

    # --- in a handler thread ---
    def _claim_and_run(self, key: str, inbound: Inbound, job: _Job) -> str | None | _Held:
        mkey = f"msg:{key}"
        mine = RUN + self.boot
        claimed, values = self.kv.set_nx_get(mkey, mine, CLAIM_TTL, [mkey, *self.prefetch(inbound)])
        if not claimed:
            job.settle()
            return _Held(values.get(mkey))
        return self._run(key, replace(inbound, prefetched=values), job)

    def _run(self, key: str, inbound: Inbound, job: _Job) -> str | None:
        mkey = f"msg:{key}"
        with self._running_lock:
            self.running.add(key)
        try:
            handled = self._handle(inbound, self._finisher(key, inbound, job))
        except AlreadyHandled as exc:  # acted on before (the KV store had forgotten): the stored reply
            job.settle()
            reply = None if exc.stored.late else exc.stored.reply
            self.kv.set(mkey, DONE + (reply or ""), ttl=DONE_TTL)
            return reply
        except BaseException as exc:
            late = job.settle()
            self.kv.delete_if(mkey, RUN + self.boot)  # WeChat's retry may run it again
            if not late:
                raise  # e.g. the database is down: 503, and WeChat retries
            log.warning("late message %s failed (%s): left for recovery", key, type(exc).__name__)
            if not job.recovery:
                job.accepted.wait(timeout=5)  # (on SQLite it waits for this handler's write lock)
                self._release(key)
            return None
        finally:
            with self._running_lock:
                self.running.discard(key)
        late = job.settle()
        reply = None if late else handled.reply
        self.kv.batch([(mkey, DONE + (reply or ""), DONE_TTL), *handled.writes])
        if late and handled.reply and self.on_late_reply:
            self.on_late_reply()
        return reply

    def _finisher(self, key: str, inbound: Inbound, job: _Job) -> Finish:
        def finish(session: Session, reply: str | None, effect: bool) -> None:
            late = job.settle()
            if not late and not effect and not job.storing:
                # Nothing read or written, in the database or the KV store (e.g. `帮助` from a known sender), and
                # no pending row of this run: no effect to make happen once, so no record. The KV store's claim
                # and reply answer WeChat's retries, and a run again after Redis forgot them says the same. (A
                # pending row a follower on another worker wrote meanwhile is settled by the recovery loop, which
                # finds this reply in the KV store.)
                return
            now = self.now()
            store.finish(session, key, inbound.openid, reply, late=late, now=now)
            if late and reply:
                enqueue(session, None, "reply", reply, now=now, openid=inbound.openid[:64], force_cs=True)

        return finish

    def _release(self, key: str) -> None:
        try:
            with self.db.session() as s:
                store.release(s, key, self.now())
        except Exception as exc:  # the database is still away: the lease runs out by itself
            log.info("could not release %s for recovery: %s", key, type(exc).__name__)

    # --- recovery and heartbeat (Keeper thread) ---
    def heartbeat(self) -> None:
        self.kv.set(f"alive:{self.boot}", "1", ttl=ALIVE_TTL)

    def recover_once(self, limit: int = 20) -> int:
        """Run the pending messages whose holder died or failed (their replies go through the outbox).
        Returns how many were taken."""
        with self._running_lock:
            skip = set(self.running)
        with self.db.session() as s:
            taken = store.claim_pending(s, now=self.now(), lease=self.lease, limit=limit, skip=skip)
        for key, payload in taken:
            inbound = from_payload(payload)
            if inbound is None:
                log.error("pending message %s cannot be read back: dropped", key)
                with self.db.session() as s:
                    store.finish(s, key, str(payload.get("openid", ""))[:64], None, late=True, now=self.now())
                continue
            answered = self.kv.get(f"msg:{key}")
            if answered is not None and answered.startswith(DONE):
                # Its holder answered it (a message with no effect is not recorded; a copy that followed it wrote
                # this row at its own deadline): settled, not run again.
                with self.db.session() as s:
                    store.finish(s, key, inbound.openid, answered[len(DONE):] or None, late=False, now=self.now())
                continue
            log.warning("recovering message %s", key)
            self._run(key, inbound, _Job(late=True, recovery=True))
        return len(taken)

    def prune(self) -> int:
        with self.db.session() as s:
            return store.prune(s, self.now())

    def start(self, recovery: bool = True, interval: float = 1.0) -> Keeper:
        self.heartbeat()
        self.keeper = Keeper(self, recovery=recovery, interval=interval).start()
        return self.keeper

    def close(self) -> None:
        if self.keeper is not None:
            self.keeper.stop()
            self.keeper = None
        self.pool.shutdown(wait=True, cancel_futures=False)
        self.control.shutdown(wait=False, cancel_futures=True)


class Keeper:
    """This process's heartbeat (its claims stay its own while it lives) and, in a thread of its own so that a
    message stuck on the database never stops the heartbeat, the recovery loop."""

    def __init__(self, inbox: Inbox, recovery: bool = True, interval: float = 1.0) -> None:
        self.inbox = inbox
        self.interval = interval
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._beat, name="houqin-inbox-heartbeat", daemon=True)]
        if recovery:
            self._threads.append(threading.Thread(target=self._recover, name="houqin-inbox-recovery", daemon=True))

    def start(self) -> Keeper:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def _beat(self) -> None:
        while not self._stop.is_set():
            try:
                self.inbox.heartbeat()
            except Exception:
                log.exception("inbox heartbeat failed")
            self._stop.wait(HEARTBEAT_SECONDS)

    def _recover(self) -> None:
        last_prune = 0.0
        while not self._stop.wait(self.interval):
            try:
                if self.inbox.recover_once() and self.inbox.on_late_reply:
                    self.inbox.on_late_reply()
                if time.monotonic() - last_prune >= PRUNE_SECONDS:
                    last_prune = time.monotonic()
                    self.inbox.prune()
            except DatabaseUnavailable as exc:
                log.warning("inbox recovery: database unavailable (%s)", exc)
            except Exception:
                log.exception("inbox recovery pass failed")


def _settle(future: asyncio.Future[Any], result: object, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def _wait(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], when: float) -> bool:
    """Wait for the future until the loop's clock reads `when`; whether it is done. (asyncio.wait with a
    timeout, without its sets and extra futures.)"""
    if future.done():
        return True
    if when <= loop.time():
        return False
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    future.add_done_callback(wake)
    timer = loop.call_at(when, wake)
    try:
        await waiter
    finally:
        timer.cancel()
        future.remove_done_callback(wake)
    return future.done()


def _consume(future: asyncio.Future[Any] | Future[Any]) -> None:
    """Retrieve the outcome of work nobody waits for any more (it is logged where it matters)."""
    if not future.cancelled():
        future.exception()
