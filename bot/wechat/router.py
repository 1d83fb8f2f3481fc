"""Routes one inbound message to its command, dialog or event handler, inside one transaction.

Errors meant for the user (storage.errors.UserError) become replies here, in one place; the transaction is
rolled back so a refused command never leaves half-written rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from handlers import base, understand
from handlers.base import Context, Inbound, Options
from handlers.text import normalise, ref_prefix, split_command
from storage.db import Database, DatabaseUnavailable
from storage.db import touched as db_touched
from storage.errors import NotFound, UserError
from storage.inbox import AlreadyHandled
from storage.kv import KV, Write
from storage.outbox import queued
from storage.people import touch_inbound
from storage.redact import mask_numbers
from storage.whois import WhoIsWho

log = logging.getLogger("houqin.router")

MAX_REPLY = 600
MORE_TTL = 1800
MORE_WORD = "更多"
UNBOUND_HINT = (
    "您好，这里是{school}后勤助手。您还没有绑定身份，请发送「绑定 邀请码」（邀请码由后勤管理员提供，6位），"
    "例如：绑定 AB12CD。发送「帮助」查看说明。"
)
SORRY = "抱歉，系统出了点问题，请稍后再试。如多次出现，请联系后勤管理员。"


# finish(session, reply, effect): `effect` says whether the message changed anything (rows, KV state)
Finish = Callable[[Session, "str | None", bool], None]


@dataclass
class Handled:
    reply: str | None
    writes: list[Write]
    queued: bool = False  # the message queued pushes (the sender is woken only then)


def paginate(text: str, limit: int = MAX_REPLY) -> list[str]:
    """Split a long reply at line breaks into pages that fit WeChat's reply with room for the 更多 hint."""
    room = limit - 20
    pages: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > room:  # one very long line: hard split
            if current:
                pages.append(current)
                current = ""
            pages.append(line[:room])
            line = line[room:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > room:
            pages.append(current)
            current = line
        else:
            current = candidate
    if current or not pages:
        pages.append(current)
    return pages


class Router:
    def __init__(self, db: Database, kv: KV, options: Options, whois: WhoIsWho | None = None) -> None:
        base.load_handlers()
        self.db = db
        self.kv = kv
        self.whois = whois or WhoIsWho(db)
        self.options = options
        self.words = base.all_words()

    def handle(self, inbound: Inbound, now: datetime, finish: Finish | None = None) -> Handled:
        """Act on one message; returns the reply text (None: answer WeChat with `success`) and the KV writes to
        make once it is settled. `finish(session, reply, effect)` runs inside the message's transaction, after the
        handler (the inbox records the message there, so that its effect and that record commit together);
        a refusal or a crash rolls the handler back and is finished in a transaction of its own."""
        writes: list[Write] = []
        try:
            with self.db.session() as session:
                reply, touched = self._dispatch(session, inbound, now, writes)
                # SPEC 4: phone and ID numbers are masked in every chat reply, whatever the text came from
                reply = self._page(inbound.openid, mask_numbers(reply), writes) if reply else reply
                if finish is not None:
                    finish(session, reply, bool(writes) or db_touched(session))
                pushed = queued(session)
            if touched:
                self.whois.wrote(inbound.openid, now)  # committed: the next 5 minutes' messages skip the write
            return Handled(reply, writes, pushed)
        except UserError as exc:
            reply = exc.message
        except (DatabaseUnavailable, OperationalError, AlreadyHandled):
            raise  # the webhook answers 503 so that WeChat retries / the inbox answers the stored reply
        except Exception:
            # The text may hold phone or ID numbers: log only its first word (the command) and length.
            word = inbound.text.split()[0][:10] if inbound.text.split() else ""
            log.exception("handler failed: openid=%s type=%s command=%r length=%d", inbound.openid, inbound.type,
                          word, len(inbound.text))
            reply = SORRY
        # SPEC 4: phone and ID numbers are masked in every chat reply, whatever the text came from
        reply = self._page(inbound.openid, mask_numbers(reply) if reply else reply, writes)
        pushed = False
        if finish is not None:
            with self.db.session() as session:
                finish(session, reply, True)
                pushed = queued(session)
        return Handled(reply, writes, pushed)

    # --- internals ---
    def _context(self, session: Session, inbound: Inbound, now: datetime,
                 writes: list[Write]) -> tuple[Context, bool]:
        """The message's context, and whether the sender's last_inbound_at was written."""
        # Fresh for every message: from the per-process who-is-who while the people version is unchanged
        # (storage/whois.py), else one query.
        actor, last_inbound = self.whois.sender(session, inbound.openid)
        touched = False
        if actor is not None and (inbound.type != "event" or inbound.extra.get("event") != "unsubscribe"):
            touched = touch_inbound(session, actor.id, now, last_inbound)
        ctx = Context(session=session, kv=self.kv, actor=actor, inbound=inbound, now=now, options=self.options,
                      writes=writes)
        ctx.run = lambda text: self.run_command(ctx, text)
        return ctx, touched

    def _dispatch(self, session: Session, inbound: Inbound, now: datetime,
                  writes: list[Write]) -> tuple[str | None, bool]:
        ctx, touched = self._context(session, inbound, now, writes)
        return self._reply(ctx), touched

    def _reply(self, ctx: Context) -> str | None:
        inbound = ctx.inbound
        if inbound.type == "event":
            handler = base.EVENTS.get(str(inbound.extra.get("event", "")))
            return handler(ctx) if handler else None
        text = inbound.text
        if inbound.type not in ("text", "voice") or not text:
            return self._media(ctx)
        state = self._dialog(ctx)
        if state is not None:
            if normalise(text) in ("取消", "退出"):
                ctx.end_dialog()
                return "已取消。"
            name, data = state
            if name in base.DIALOGS:
                return self._step(ctx, name, data)
        if normalise(text) == MORE_WORD:
            return self._more(ctx)
        return self.run_command(ctx, text)

    def run_command(self, ctx: Context, text: str) -> str:
        text, reply = understand.route(ctx, text, self.words)  # everyday wording → the canonical command
        if reply is not None:
            return reply
        parsed = split_command(text, self.words)
        if parsed is None:
            if ctx.actor is None:
                return UNBOUND_HINT.format(school=self.options.school_name)
            return understand.hint_text(ctx, text)
        found = base.candidates(parsed.word)
        order = self._order(found, parsed.args, ctx)
        cmd = order[0]
        if ctx.actor is None and cmd.bound:
            return UNBOUND_HINT.format(school=self.options.school_name)
        cmd.check(ctx.actor)
        ctx.word, ctx.rest, ctx.args, ctx.after = parsed.word, parsed.rest, parsed.args, parsed.after
        fallbacks = [c for c in order[1:] if c.allows(ctx.actor)]
        if not fallbacks:
            return cmd.func(ctx)
        # A bare number (`完成 12`) fits several commands: try the most specific first, and the next one if
        # the record is not found there. Each attempt runs in a savepoint so a miss leaves nothing behind.
        for i, candidate in enumerate([cmd, *fallbacks]):
            try:
                with ctx.session.begin_nested():
                    return candidate.func(ctx)
            except NotFound:
                if i == len(fallbacks):
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _order(found: list[base.Command], args: list[str], ctx: Context) -> list[base.Command]:
        """Candidates for a shared word, best first: the typed record prefix decides; without one, the
        commands limited to this person's roles come before the ones open to everybody."""
        if len(found) == 1:
            return found
        prefix = ref_prefix(args[0]) if args else None
        if prefix:
            for c in found:
                if c.record == prefix:
                    return [c]
        allowed = [c for c in found if c.allows(ctx.actor)]
        if not allowed:
            return [found[0]]
        return sorted(allowed, key=lambda c: c.roles is None)

    def _media(self, ctx: Context) -> str | None:
        state = self._dialog(ctx)
        if state is not None and state[0] in base.DIALOGS:
            return self._step(ctx, *state)
        if ctx.actor is None:
            return UNBOUND_HINT.format(school=self.options.school_name)
        kinds = {"image": "图片", "location": "位置", "link": "链接", "video": "视频", "shortvideo": "视频",
                 "voice": "语音"}
        what = kinds.get(ctx.inbound.type, "消息")
        return f"已收到您的{what}。如需报修并附照片，请先发送「报修」按提示操作；发送「帮助」查看全部命令。"

    def _step(self, ctx: Context, name: str, data: dict[str, Any]) -> str:
        """One dialog step, after checking that the sender may still be in it (roles re-read this message)."""
        if not base.dialog_allows(name, ctx.actor):
            ctx.end_dialog()
            if ctx.actor is None:
                return UNBOUND_HINT.format(school=self.options.school_name)
            return "无权限：您的角色已变更，此对话已结束。发送「帮助」查看可用的命令。"
        return base.DIALOGS[name](ctx, data)

    @staticmethod
    def prefetch_keys(inbound: Inbound) -> list[str]:
        """What the inbox should read along with its claim: the sender's dialog state (saves a round trip)."""
        return [f"dialog:{inbound.openid}"] if inbound.type != "event" else []

    def _dialog(self, ctx: Context) -> tuple[str, dict[str, Any]] | None:
        key = f"dialog:{ctx.openid}"
        pre = ctx.inbound.prefetched
        raw = pre[key] if key in pre else self.kv.get(key)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return str(data["name"]), dict(data.get("state") or {})
        except (ValueError, KeyError, TypeError):
            ctx.writes.append((key, None, None))
            return None

    def _page(self, openid: str, reply: str, writes: list[Write]) -> str:
        if len(reply) <= MAX_REPLY:
            return reply
        pages = paginate(reply)
        writes.append((f"more:{openid}", json.dumps(pages[1:], ensure_ascii=False), MORE_TTL))
        return pages[0] + f"\n（第1/{len(pages)}页，回复「{MORE_WORD}」看下一页）"

    def _more(self, ctx: Context) -> str:
        raw = self.kv.get(f"more:{ctx.openid}")
        pages: list[str] = json.loads(raw) if raw else []
        if not pages:
            return "没有更多内容了。"
        first, left = pages[0], pages[1:]
        if left:
            ctx.writes.append((f"more:{ctx.openid}", json.dumps(left, ensure_ascii=False), MORE_TTL))
            return first + f"\n（还有{len(left)}页，回复「{MORE_WORD}」继续）"
        ctx.writes.append((f"more:{ctx.openid}", None, None))
        return first
