"""Everything one process needs, built once from Settings: database, KV store, clock, router, inbox."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot import logs
from bot.config import Settings
from bot.wechat.crypto import Cipher
from bot.wechat.inbox import Inbox
from bot.wechat.router import Finish, Handled, Router
from handlers.base import Inbound
from storage.clock import Clock
from storage.db import Database
from storage.kv import KV, make_kv
from storage.whois import WhoIsWho

log = logging.getLogger("houqin")


class Runtime:
    def __init__(self, settings: Settings, clock: Clock | None = None, kv: KV | None = None,
                 db: Database | None = None) -> None:
        self.settings = settings
        logs.install(settings.wechat_app_secret, settings.wechat_token, settings.secret_key, settings.wechat_aes_key)
        self.clock = clock if clock is not None else Clock(settings.timezone)
        self.db = db or Database(settings.database_url)
        self._own_kv = kv is None
        self.kv = kv or make_kv(settings.redis_url)
        self.clock.on_jump(self.kv.elapse)  # a test's frozen clock moves the KV store's expiries too
        self.cipher = (
            Cipher(settings.wechat_token, settings.wechat_aes_key, settings.wechat_app_id)
            if settings.wechat_aes_key
            else None
        )
        self.options = settings.handler_options()
        self.whois = WhoIsWho(self.db)  # who sent a message, without a query while nobody changed
        self.router = Router(self.db, self.kv, self.options, self.whois)
        self.wake_sender: Callable[[], None] = lambda: None  # replaced when the outbox sender starts
        self.inbox = Inbox(
            self._handle,
            self.kv,
            self.db,
            self.clock.now,
            reply_timeout=settings.reply_timeout,
            on_late_reply=lambda: self.wake_sender(),
            threads=settings.handler_threads,
            prefetch=self.router.prefetch_keys,
            lease=settings.inbox_lease,
        )
        self.background: list[object] = []

    def _handle(self, inbound: Inbound, finish: Finish) -> Handled:
        handled = self.router.handle(inbound, self.clock.now(), finish)
        if handled.queued:
            self.wake_sender()  # pushes the command queued go out now, not at the sender's next poll
        return handled

    def close(self) -> None:
        for svc in reversed(self.background):
            stop = getattr(svc, "stop", None)
            if stop:
                try:
                    stop()
                except Exception:  # pragma: no cover - best effort at shutdown
                    log.exception("stopping %s", svc)
        self.inbox.close()
        self.whois.close()
        close_kv = getattr(self.kv, "close", None)
        if self._own_kv and close_kv is not None:
            close_kv()
