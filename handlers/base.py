"""How commands and dialogs are declared: once, with their words, roles, help line and handler.

`帮助`, the menu and the permission check all read these declarations. A handler receives a `Context`
(the sender, the parsed message, a database session inside one transaction, the clock's "now") and returns
the reply text. Business rules live in storage services; handlers only parse, call and format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from storage.errors import Forbidden, UserError
from storage.kv import KV, Write
from storage.people import ROLES, Actor

DIALOG_TTL = 600  # a dialog left idle for 10 minutes expires
YES = frozenset({"是", "确认", "确定", "是的", "对", "好", "好的", "yes", "y", "ok"})  # answers to "…吗？" confirmations


@dataclass(frozen=True)
class Inbound:
    """What arrived, independent of WeChat's XML: handlers never see the transport."""

    openid: str
    type: str = "text"  # text, voice, image, location, link, video, event
    text: str = ""
    media_id: str | None = None
    pic_url: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # KV values read in the same round trip as the dedup claim (e.g. this person's dialog state); a key
    # missing here was not prefetched and is read on demand.
    prefetched: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    """The settings handlers read, handed down by the router (built once from bot.config.Settings)."""

    school_name: str = ""
    timezone: str = "Asia/Shanghai"
    visitor_long_stay_hours: float = 4.0
    secret_key: str = ""  # keys the hashes and encryption of visitors' phone and ID numbers: used, never shown
    default_building: str = "教学楼"  # a bare room number (301) is in this building


@dataclass
class Context:
    session: Session
    kv: KV
    actor: Actor | None
    inbound: Inbound
    now: datetime
    options: Options = field(default_factory=Options)
    word: str = ""
    rest: str = ""
    args: list[str] = field(default_factory=list)
    after: Callable[[int], str] = lambda n: ""
    run: Callable[[str], str] = lambda text: ""  # run another command as this person (menu CLICK keys)
    # KV writes (dialog state) made once the message's transaction has committed, with the reply cache, in
    # one round trip; dropped if the message turns out to have been handled before (see bot/wechat/inbox.py).
    writes: list[Write] = field(default_factory=list)

    @property
    def openid(self) -> str:
        return self.inbound.openid

    @property
    def me(self) -> Actor:
        if self.actor is None:  # the router never calls a bound-only handler without an actor
            raise UserError("请先绑定身份")
        return self.actor

    # --- guided dialogs, state kept in the KV store (Redis) per OpenID ---
    def start_dialog(self, name: str, state: dict[str, Any]) -> None:
        self.writes.append((f"dialog:{self.openid}",
                            json.dumps({"name": name, "state": state}, ensure_ascii=False), DIALOG_TTL))

    def save_dialog(self, name: str, state: dict[str, Any]) -> None:
        self.start_dialog(name, state)

    def end_dialog(self) -> None:
        self.writes.append((f"dialog:{self.openid}", None, None))


Handler = Callable[[Context], str]
DialogStep = Callable[[Context, dict[str, Any]], str]


@dataclass
class Command:
    words: tuple[str, ...]
    func: Handler
    roles: frozenset[str] | None  # None: any bound person
    help: str  # one example line shown by 帮助
    record: str | None = None  # record prefix that picks between commands sharing a word (完成 BX… / 完成 TX…)
    bound: bool = True  # False: also for people who have not bound yet (绑定, 帮助)
    who: str = ""  # who may use it, in Chinese, for the 无权限 reply; derived from roles if empty
    hidden: bool = False  # not listed by 帮助
    # Help lines for some roles in place of `help` (the first whose roles the person holds wins): 帮助 shows
    # only what this person may do, e.g. `@门卫` targets only to those who may remind others.
    help_for: Mapping[frozenset[str], str] = field(default_factory=dict)

    def help_text(self, actor: Actor | None) -> str:
        if actor is not None:
            for roles, line in self.help_for.items():
                if actor.has(*roles):
                    return line
        return self.help

    def allows(self, actor: Actor | None) -> bool:
        if actor is None:
            return not self.bound
        return self.roles is None or actor.has(*self.roles)

    def who_text(self) -> str:
        if self.who:
            return self.who
        if self.roles is None:
            return "已绑定的用户"
        return "、".join(ROLES[r] for r in ROLES if r in self.roles)

    def check(self, actor: Actor | None) -> None:
        if not self.allows(actor):
            raise Forbidden(f"「{self.words[0]}」", self.who_text())


COMMANDS: list[Command] = []
DIALOGS: dict[str, DialogStep] = {}
DIALOG_ROLES: dict[str, frozenset[str] | None] = {}  # who may be in a dialog: checked again at every step


def command(
    *words: str,
    roles: set[str] | frozenset[str] | None = None,
    help: str,
    record: str | None = None,
    bound: bool = True,
    who: str = "",
    hidden: bool = False,
    help_for: Mapping[frozenset[str], str] | None = None,
) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        COMMANDS.append(
            Command(tuple(words), func, frozenset(roles) if roles is not None else None, help, record, bound,
                    who, hidden, dict(help_for or {}))
        )
        return func

    return register


def dialog(name: str, roles: set[str] | frozenset[str] | None = None) -> Callable[[DialogStep], DialogStep]:
    """Declare a guided dialog's step function. `roles` as for the command that starts it (None: any bound
    person): the router checks them before every step, so a role removed (or a person deactivated) mid-dialog
    ends it instead of letting it finish."""

    def register(func: DialogStep) -> DialogStep:
        DIALOGS[name] = func
        DIALOG_ROLES[name] = frozenset(roles) if roles is not None else None
        return func

    return register


def dialog_allows(name: str, actor: Actor | None) -> bool:
    roles = DIALOG_ROLES.get(name)
    return actor is not None and (roles is None or actor.has(*roles))


def all_words() -> set[str]:
    return {w for c in COMMANDS for w in c.words}


def candidates(word: str) -> list[Command]:
    return [c for c in COMMANDS if word in c.words]


_help_cache: dict[tuple[object, ...], list[str]] = {}


def help_lines(actor: Actor | None) -> list[str]:
    """The help lines this person sees: they depend only on the roles (and the commands declared), so they
    are built once per role set (帮助 is the most sent message)."""
    key = (actor.roles if actor is not None else None, *map(id, COMMANDS))
    lines = _help_cache.get(key)
    if lines is None:
        if len(_help_cache) > 256:
            _help_cache.clear()
        lines = _help_cache[key] = _help_lines(actor)
    return list(lines)


def _help_lines(actor: Actor | None) -> list[str]:
    seen: set[str] = set()
    lines = []
    for c in COMMANDS:
        if c.hidden or not c.allows(actor) or c.help in seen:
            continue
        if actor is not None and not c.bound:  # 绑定/帮助: nothing a bound person needs listed
            continue
        seen.add(c.help)
        lines.append(c.help_text(actor))
    return lines


def record_prefixes(actor: Actor | None) -> list[str]:
    """The record prefixes (BX, QJ, TX …) of the commands this person may use, in declaration order."""
    key = ("prefixes", actor.roles if actor is not None else None, *map(id, COMMANDS))
    found = _help_cache.get(key)
    if found is None:
        found = _help_cache[key] = _record_prefixes(actor)
    return list(found)


def _record_prefixes(actor: Actor | None) -> list[str]:
    out: list[str] = []
    for c in COMMANDS:
        if c.record and not c.hidden and c.allows(actor) and c.record not in out:
            out.append(c.record)
    return out


EventHandler = Callable[[Context], "str | None"]
EVENTS: dict[str, EventHandler] = {}


def on_event(*names: str) -> Callable[[EventHandler], EventHandler]:
    """Declare the handler of a WeChat event (subscribe, unsubscribe, scan, location …)."""

    def register(func: EventHandler) -> EventHandler:
        for n in names:
            EVENTS[n] = func
        return func

    return register


SCENES: dict[str, EventHandler] = {}


def on_scene(prefix: str) -> Callable[[EventHandler], EventHandler]:
    """Declare the handler of QR scenes starting with `prefix` (SCAN, or subscribe with a scene): `cp:` …"""

    def register(func: EventHandler) -> EventHandler:
        SCENES[prefix] = func
        return func

    return register


def scene_handler(scene: str) -> EventHandler | None:
    return next((f for prefix, f in SCENES.items() if scene.startswith(prefix)), None)


def load_handlers() -> None:
    """Import every handler module so its declarations register (adding a domain = adding a module)."""
    import importlib
    import pkgutil

    import handlers

    # 帮助 lists commands in registration order: the everyday ones first, then any other domain module.
    first = ["account", "repair", "visitor", "leave", "reminder"]
    found = [m.name for m in pkgutil.iter_modules(handlers.__path__)
             if not m.name.startswith("_") and m.name not in ("base", "text", "timeexpr")]
    order = sorted(found, key=lambda n: (first.index(n) if n in first else len(first), n))
    for name in order:
        importlib.import_module(f"handlers.{name}")
    # A module imported earlier by someone else (the console imports handlers.reminder) registered first:
    # put the declarations back in this order (stable: within a module, as declared).
    rank = {f"handlers.{n}": i for i, n in enumerate(order)}
    COMMANDS.sort(key=lambda c: rank.get(c.func.__module__, len(rank)))
