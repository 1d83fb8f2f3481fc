"""Exactly-once handling of WeChat's retried deliveries, and the 4.5-second rule.

WeChat sends a message again (up to three retries) when no answer comes within 5 s. The first copy
claims the message key in the KV store (Redis: shared by all workers) and runs the handler; copies wait
for its reply in the reply cache and answer the same. A handler that is not done within `reply_timeout`
gets `success` now, and its reply is queued in the outbox as a customer-service message when it finishes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from handlers.base import Inbound
from storage.db import Database
from storage.kv import KV
from storage.outbox import enqueue

log = logging.getLogger("houqin.inbox")

CLAIM_TTL = 300  # WeChat's retries all come within ~15 s; keep keys well past that
NO_REPLY = "\x00"  # cached marker: answer `success`
_DUPLICATE = object()  # another copy of this message holds the claim


class Inbox:
    def __init__(
        self,
        handle: Callable[[Inbound], str | None],
        kv: KV,
        db: Database,
        now: Callable[[], object],
        reply_timeout: float = 4.5,
        on_late_reply: Callable[[], None] | None = None,
        threads: int = 32,
        prefetch: Callable[[Inbound], list[str]] = lambda inbound: [],
    ) -> None:
        self.prefetch = prefetch
        self._handle = handle
        self.kv = kv
        self.db = db
        self.now = now
        self.reply_timeout = reply_timeout
        self.on_late_reply = on_late_reply
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="houqin-handler")

    async def receive(self, key: str, inbound: Inbound) -> str | None:
        # The claim, like all KV and database I/O, happens in the worker thread: a Redis round trip on the
        # event loop would stall every other request.
        loop = asyncio.get_running_loop()
        job = _Job()
        future = loop.run_in_executor(self.pool, self._claim_and_run, key, inbound, job)
        done, _ = await asyncio.wait({future}, timeout=self.reply_timeout)
        if done:
            result = future.result()
            if result is _DUPLICATE:
                return await self._await_reply(key)
            return result  # type: ignore[return-value]
        with job.lock:
            if not job.finished:
                job.late = True
                log.warning("handler for %s is slow; answering success and sending the reply later", key)
                return None
        result = future.result()
        return await self._await_reply(key) if result is _DUPLICATE else result  # type: ignore[return-value]

    def _claim_and_run(self, key: str, inbound: Inbound, job: _Job) -> str | None | object:
        reads = self.prefetch(inbound)
        claimed, values = self.kv.set_nx_get(f"msg:{key}", "1", CLAIM_TTL, reads)
        if not claimed:
            with job.lock:
                job.finished = True
            return _DUPLICATE
        return self._run(key, replace(inbound, prefetched=values) if reads else inbound, job)

    def _run(self, key: str, inbound: Inbound, job: _Job) -> str | None:
        try:
            reply = self._handle(inbound)
        except BaseException:
            self.kv.delete(f"msg:{key}")  # let WeChat's retry try again (e.g. database down)
            with job.lock:
                job.finished = True
            raise
        with job.lock:
            job.finished = True
            late = job.late
        if late:
            self.kv.set(f"reply:{key}", NO_REPLY, ttl=CLAIM_TTL)
            if reply:
                with self.db.session() as session:
                    enqueue(session, None, "reply", reply, now=self.now(), openid=inbound.openid,  # type: ignore[arg-type]
                            force_cs=True)
                if self.on_late_reply:
                    self.on_late_reply()
        else:
            self.kv.set(f"reply:{key}", reply if reply else NO_REPLY, ttl=CLAIM_TTL)
        return reply

    async def _await_reply(self, key: str) -> str | None:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + self.reply_timeout
        while time.monotonic() < deadline:
            cached = await loop.run_in_executor(self.pool, self.kv.get, f"reply:{key}")
            if cached is not None:
                return None if cached == NO_REPLY else cached
            await asyncio.sleep(0.05)
        return None

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)


class _Job:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.finished = False
        self.late = False
