"""Every time window, pinned on both sides with the frozen clock: the KV store's expiries follow it
(storage.clock.FrozenClock.on_jump → storage.kv `elapse`), on the in-process store and on Redis alike.

10-minute dialogs, the bind lock-out's hour, the console's 15-minute login limits (per name and per address),
the 7-day invite, and the 4.5 s reply deadline (its default pinned, its behaviour on both sides of a short one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from bot.app import create_app
from bot.config import Settings
from bot.console import auth
from bot.runtime import Runtime
from handlers.base import DIALOG_TTL
from storage import console_users, people
from storage.outbox import OutboxMessage
from storage.repair import RepairTicket
from tests.school import Chat, openid_for
from tests.support import Wx, xml_of
from tests.test_console import login, set_password
from tests.test_webhook import temp_command


def test_the_windows_are_what_the_spec_says() -> None:
    assert DIALOG_TTL == 10 * 60
    assert people.BIND_FAILURES_PER_HOUR == 5 and people.INVITE_DAYS == 7
    assert (auth.FAIL_WINDOW, auth.FAILS_PER_NAME, auth.FAILS_PER_IP) == (15 * 60, 5, 20)
    assert Settings(_env_file=None).reply_timeout == 4.5  # type: ignore[call-arg]


# --- the 10-minute dialog ---------------------------------------------------------------------------------

def test_a_dialog_lives_ten_minutes_since_the_last_message(chat, rt, clock):  # type: ignore[no-untyped-def]
    chat.person("王老师", "teacher")
    chat.person("李师傅", "worker")
    chat.say("王老师", "报修")
    clock.advance(minutes=9, seconds=59)
    assert "描述故障" in chat.say("王老师", "教学楼301")  # still in the dialog: the place is taken
    clock.advance(minutes=10, seconds=1)  # ten minutes after that message: gone
    assert "报修地点" in chat.say("王老师", "灯不亮")  # a new question: the dialog (and its place) is gone
    with rt.db.session() as s:
        assert s.exec(select(RepairTicket)).all() == []


# --- binding: 5 wrong codes lock the OpenID out for an hour; an invite is good for 7 days ---------------

def test_the_bind_lock_out_lasts_one_hour(chat, rt, clock):  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        _, inv = people.invite(s, "周老师", ["teacher"], now=clock.now())
        code = inv.code
    for _ in range(5):
        assert "邀请码无效" in chat.wx.text("o_new", "绑定 ZZZZZZ")
    clock.advance(minutes=59, seconds=59)
    assert "错误次数过多" in chat.wx.text("o_new", f"绑定 {code}")  # even the right code, within the hour
    clock.advance(seconds=2)
    assert "绑定成功" in chat.wx.text("o_new", f"绑定 {code}")


@pytest.mark.parametrize(("age", "binds"), [({"days": 6, "hours": 23}, True), ({"days": 7, "minutes": 1}, False)])
def test_an_invite_is_good_for_seven_days(chat, rt, clock, age, binds):  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        _, inv = people.invite(s, "周老师", ["teacher"], now=clock.now())
        code = inv.code
    clock.advance(**age)
    reply = chat.wx.text("o_new", f"绑定 {code}")
    assert ("绑定成功" in reply) is binds and ("邀请码已过期" in reply) is (not binds), reply


# --- the console's login limits -----------------------------------------------------------------------------

@pytest.fixture
def console(chat, rt, client, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(console_users, "_N", 2**8)  # a cheap hash cost: this test logs in dozens of times
    chat.person("刘主任", "admin")
    set_password(rt, "刘主任")
    return client


def test_five_wrong_passwords_lock_a_name_for_fifteen_minutes(console, clock):  # type: ignore[no-untyped-def]
    for _ in range(5):
        assert login(console, "刘主任", "wrong-password").status_code == 401
    clock.advance(minutes=14, seconds=59)
    assert login(console, "刘主任").status_code == 429
    clock.advance(seconds=2)
    assert login(console, "刘主任").status_code == 303


def test_twenty_failures_from_one_address_lock_every_name(console, clock):  # type: ignore[no-untyped-def]
    for i in range(20):  # name spraying: one try per name, so the per-name limit never trips
        assert login(console, f"猜{i}", "wrong-password").status_code == 401
    clock.advance(minutes=14, seconds=59)
    r = login(console, "刘主任")  # a name never tried, with the right password
    assert r.status_code == 429 and "15 分钟" in r.text
    clock.advance(seconds=2)
    assert login(console, "刘主任").status_code == 303


def test_nineteen_failures_from_one_address_do_not(console):  # type: ignore[no-untyped-def]
    for i in range(19):
        assert login(console, f"猜{i}", "wrong-password").status_code == 401
    assert login(console, "刘主任").status_code == 303


# --- the reply deadline ---------------------------------------------------------------------------------------

DEADLINE = 1.0


@pytest.fixture
def quick(settings, clock, kv, db) -> Iterator[tuple[Chat, Runtime]]:  # type: ignore[no-untyped-def]
    """The app with a 1 s reply deadline (REPLY_TIMEOUT), so both sides of it take about a second."""
    rt = Runtime(settings.model_copy(update={"reply_timeout": DEADLINE}), clock=clock, kv=kv, db=db)
    with TestClient(create_app(runtime=rt, background=False), raise_server_exceptions=False) as c:
        yield Chat(Wx(c, settings), rt), rt
    rt.close()


def late_replies(rt: Runtime) -> list[tuple[str, bool, str | None]]:
    with rt.db.session() as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "reply")).all()
    return [(m.text, m.force_cs, m.openid) for m in rows]


def test_a_handler_within_the_deadline_answers_inline(quick):  # type: ignore[no-untyped-def]
    chat, rt = quick
    assert rt.inbox.reply_timeout == DEADLINE  # the setting reaches the inbox
    chat.person("王老师", "teacher")

    def slow(ctx):  # type: ignore[no-untyped-def]
        time.sleep(0.6 * DEADLINE)
        return "慢慢来的答复"

    with temp_command(rt, "慢", slow):
        assert chat.say("王老师", "慢") == "慢慢来的答复"
    assert late_replies(rt) == []


def test_a_handler_past_the_deadline_gets_success_and_a_later_message(quick):  # type: ignore[no-untyped-def]
    chat, rt = quick
    chat.person("王老师", "teacher")
    release = threading.Event()

    def stuck(ctx):  # type: ignore[no-untyped-def]
        assert release.wait(10)  # still running when the answer goes out: the answer did not wait for it
        return "慢慢来的答复"

    with temp_command(rt, "慢", stuck):
        started = time.monotonic()
        r = chat.wx.post_xml(xml_of(chat.wx.message(openid_for("王老师"), "text", Content="慢")))
        answered = time.monotonic() - started
        release.set()
        deadline = time.monotonic() + 5
        while not late_replies(rt) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert r.status_code == 200 and r.text == "success"
    assert answered >= DEADLINE  # not before the deadline either
    assert answered < DEADLINE + rt.inbox.accept_timeout  # `success` once the message is stored, not after the handler
    assert late_replies(rt) == [("慢慢来的答复", True, openid_for("王老师"))]
    chat.deliver()
    assert chat.received.get(openid_for("王老师")) == ["慢慢来的答复"]
