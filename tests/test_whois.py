"""The per-process who-is-who (storage/whois.py): no sender query while nobody changed, and every change —
through our code or around it (raw SQL, as an admin with psql would) — seen at the very next message."""

from __future__ import annotations

from sqlalchemy import event, text
from sqlmodel import select

from bot.runtime import Runtime
from storage import people, whois
from storage.inbox import InboundMessage


def _queries(rt: Runtime) -> list[str]:
    seen: list[str] = []
    event.listen(rt.db.engine, "before_cursor_execute", lambda _c, _cur, stmt, *_a: seen.append(stmt))
    return seen


def _lookups(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    """The sender queries made (a spy: the real query still runs)."""
    calls: list[str] = []
    real = whois.sender_by_openid

    def spy(session, openid):  # type: ignore[no-untyped-def]
        calls.append(openid)
        return real(session, openid)

    monkeypatch.setattr(whois, "sender_by_openid", spy)
    return calls


def _recorded(rt: Runtime) -> int:
    with rt.db.session() as s:
        return len(s.exec(select(InboundMessage)).all())


def test_a_known_sender_costs_no_query_and_no_record(chat, rt, monkeypatch):  # type: ignore[no-untyped-def]
    lookups = _lookups(monkeypatch)
    openid = chat.person("王老师", "teacher")
    assert "报修" in chat.say("王老师", "帮助")  # read once …
    before = _recorded(rt)
    seen = _queries(rt)
    assert "报修" in chat.say("王老师", "帮助")  # … then known: nothing sent to the pooled connections
    assert seen == [] and lookups == [openid]
    assert _recorded(rt) == before  # nothing happened: nothing to record once
    assert "BX1" in chat.say("王老师", "报修 教学楼301 灯不亮")  # a command with an effect is recorded
    assert _recorded(rt) == before + 1 and lookups == [openid]


def test_role_changes_made_with_raw_sql_apply_at_the_next_message(chat, rt):  # type: ignore[no-untyped-def]
    chat.person("王老师", "teacher")
    assert "BX1" in chat.say("王老师", "报修 教学楼301 灯不亮")
    assert "无权限" in chat.say("王老师", "待派单")
    before = rt.whois.version()
    with rt.db.engine.begin() as conn:  # around our code: no ORM, no hook of ours
        conn.execute(text("INSERT INTO personrole (person_id, role) SELECT id, 'admin' FROM person"))
    assert rt.whois.version() != before
    assert "BX1" in chat.say("王老师", "待派单")
    with rt.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM personrole WHERE role = 'admin'"))
    assert "无权限" in chat.say("王老师", "待派单")
    with rt.db.engine.begin() as conn:
        conn.execute(text("UPDATE person SET active = false"))
    assert "还没有绑定身份" in chat.say("王老师", "我的报修")


def test_a_rename_and_a_rebind_are_seen_at_once(chat, rt):  # type: ignore[no-untyped-def]
    openid = chat.person("王老师", "teacher")
    chat.say("王老师", "帮助")
    with rt.db.session() as s:
        p = people.person_by_ref(s, "王老师")
        p.name = "王丽"
        s.add(p)
    assert "王丽" in chat.say("王老师", "报修 教学楼301 灯不亮") or "BX1" in chat.say("王老师", "我的报修")
    with rt.db.session() as s:
        p = people.person_by_ref(s, "王丽")
        p.openid = None
        s.add(p)
    assert "还没有绑定身份" in chat.wx.text(openid, "我的报修")


def test_last_inbound_is_written_at_most_every_five_minutes_and_the_cache_follows(chat, rt, clock):  # type: ignore[no-untyped-def]
    chat.person("王老师", "teacher")
    clock.advance(minutes=10)
    chat.say("王老师", "帮助")
    with rt.db.session() as s:
        assert people.person_by_ref(s, "王老师").last_inbound_at == clock.now()
    seen = _queries(rt)
    clock.advance(minutes=1)
    chat.say("王老师", "帮助")  # within five minutes: no write
    assert seen == []
    clock.advance(minutes=5)
    chat.say("王老师", "帮助")
    assert any(s.lstrip().upper().startswith("UPDATE PERSON") for s in seen)
    with rt.db.session() as s:
        assert people.person_by_ref(s, "王老师").last_inbound_at == clock.now()


def test_without_the_version_row_every_message_reads_the_person(chat, rt, monkeypatch):  # type: ignore[no-untyped-def]
    openid = chat.person("王老师", "teacher")
    with rt.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM people_version"))
    assert rt.whois.version() is None
    lookups = _lookups(monkeypatch)
    assert "报修" in chat.say("王老师", "帮助")
    assert "报修" in chat.say("王老师", "帮助")
    assert lookups == [openid, openid]


def test_the_workers_of_a_category_follow_changes_at_once(chat, rt):  # type: ignore[no-untyped-def]
    chat.person("王老师", "teacher")
    chat.person("李师傅", "worker", categories=["电"])
    chat.person("张师傅", "worker", categories=["水"])
    assert "李师傅" in chat.say("王老师", "报修 教学楼301 灯不亮")
    with rt.db.engine.begin() as conn:  # around our code, as an admin with psql would
        conn.execute(text("UPDATE person SET categories = '水' WHERE name = '李师傅'"))
        conn.execute(text("UPDATE person SET categories = '电' WHERE name = '张师傅'"))
    assert "张师傅" in chat.say("王老师", "报修 教学楼302 灯不亮")
    with rt.db.engine.begin() as conn:
        conn.execute(text("UPDATE person SET active = false WHERE name = '张师傅'"))
    assert "待派单" in chat.say("王老师", "报修 教学楼303 灯不亮")


def test_a_database_that_accepts_but_never_answers_costs_at_most_the_connect_timeout() -> None:
    """Review finding: the version's own connection gives up as the main engine does (connect_timeout)."""
    import socket
    import time

    from storage.db import Database
    from storage.whois import WhoIsWho

    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(8)  # accepts the TCP connection, never says a word
    try:
        db = Database(f"postgresql+psycopg://postgres@127.0.0.1:{hole.getsockname()[1]}/nowhere")
        started = time.monotonic()
        assert WhoIsWho(db).version() is None  # not cached: the message reads the person (and gets its 503)
        assert time.monotonic() - started < 10
    finally:
        hole.close()
