"""`Chat`: the way feature tests talk to the bot — people by name, messages through the real webhook,
and the pushes each person received (as the fake WeChat server got them)."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlmodel import select

from bot.runtime import Runtime
from storage import outbox as ob
from storage import people
from tests.support import Wx


def openid_for(name: str) -> str:
    return "o" + hashlib.md5(name.encode()).hexdigest()[:27]


class Chat:
    def __init__(self, wx: Wx, rt: Runtime) -> None:
        self.wx = wx
        self.rt = rt
        self.received: dict[str, list[str]] = {}

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
        """Send everything queued in the outbox (to the fake WeChat server) and collect it per person."""
        delivered = 0
        with self.rt.db.session() as s:
            rows = s.exec(select(ob.OutboxMessage).where(ob.OutboxMessage.state == ob.PENDING)
                          .order_by(ob.OutboxMessage.id)).all()
            for row in rows:
                person = s.get(people.Person, row.person_id) if row.person_id else None
                openid = person.openid if person else row.openid
                if person is not None and not person.subscribed:
                    row.state = ob.SKIPPED
                else:
                    self.received.setdefault(openid or "", []).append(row.text)
                    row.state = ob.SENT
                    delivered += 1
                s.add(row)
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
