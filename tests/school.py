"""`Chat`: the way feature tests talk to the bot — people by name, messages through the real webhook,
and the pushes each person received (as the fake WeChat server got them)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from sqlmodel import select

from bot.runtime import Runtime
from storage import outbox as ob
from storage import people
from tests.support import Wx

if TYPE_CHECKING:
    from bot.sandbox.fakewechat import FakeWeChat


def openid_for(name: str) -> str:
    return "o" + hashlib.md5(name.encode()).hexdigest()[:27]


class Chat:
    def __init__(self, wx: Wx, rt: Runtime, fake: FakeWeChat | None = None) -> None:
        self.wx = wx
        self.rt = rt
        self.fake = fake  # default: the fake serving rt.settings.wechat_api_base_url
        self.received: dict[str, list[str]] = {}
        self._seen: set[int] = set()  # fake calls already collected into `received`

    # --- people ---
    def person(self, name: str, *roles: str, bind: bool = True, klass: str | None = None,
               students: list[str] | None = None, categories: list[str] | None = None) -> str:
        """Create a person (bound to a test OpenID unless bind=False); returns the OpenID."""
        with self.rt.db.session() as s:
            p = people.create_person(s, name, list(roles), now=self.rt.clock.now(), class_name=klass,
                                     student_nos=students, categories=categories)
            if bind:
                p.openid = openid_for(name)
                p.bound_at = self.rt.clock.now()
                p.last_inbound_at = self.rt.clock.now()
                s.add(p)
        return openid_for(name)

    def students(self, *rows: tuple[str, str, str]) -> None:
        with self.rt.db.session() as s:
            n, errors = people.import_students(s, [list(r) for r in rows])
            assert not errors, errors

    # --- messages ---
    def say(self, name: str, text: str) -> str:
        return self.wx.text(openid_for(name), text)

    def image(self, name: str, media_id: str = "media1") -> str:
        return self.wx.image(openid_for(name), media_id=media_id)

    def event(self, name: str, event: str, key: str | None = None) -> str:
        return self.wx.event(openid_for(name), event, key)

    # --- pushes ---
    def deliver(self) -> int:
        """Send everything due in the outbox through the real sender to the fake WeChat server, and collect
        what it received per OpenID (a template message counts as the text the sender put in it)."""
        from bot.sandbox.fakewechat import FakeWeChat
        from bot.wechat.sender import OutboxSender

        fake = self.fake or FakeWeChat.at(self.rt.settings.wechat_api_base_url)
        assert fake is not None, f"no fake WeChat server at {self.rt.settings.wechat_api_base_url}"
        with OutboxSender(self.rt) as sender:
            while sender.run_once() > 0:
                pass
        delivered = 0
        for call in fake.sends():
            if call.seq in self._seen:
                continue
            self._seen.add(call.seq)
            self.received.setdefault(call.touser or "", []).append(call.text or "")
            delivered += 1
        return delivered

    def pushes(self, name: str) -> list[str]:
        """Every push this person has received so far (delivering what is queued first)."""
        self.deliver()
        return list(self.received.get(openid_for(name), []))

    def last_push(self, name: str) -> str:
        got = self.pushes(name)
        assert got, f"{name} received no push"
        return got[-1]

    def outbox(self) -> list[Any]:
        with self.rt.db.session() as s:
            return list(s.exec(select(ob.OutboxMessage).order_by(ob.OutboxMessage.id)).all())
