"""Nothing lost, nothing twice (SPEC 7; hardening issue, findings 2 and 3), in process: the database decides
whether a message was acted on, a claim dies with its holder, and a message answered `success` before its
handler was done is finished later — by its holder or by the recovery loop — with its reply sent through
the outbox. (The same with real processes, Redis and PostgreSQL being broken: tests/test_faults.py.)"""

from __future__ import annotations

import time
from datetime import timedelta

from sqlmodel import col, select

from handlers.base import Context
from storage import inbox as store
from storage import people
from storage.db import DatabaseUnavailable
from storage.outbox import OutboxMessage
from tests.support import xml_of
from tests.test_webhook import bind_teacher, temp_command


def records(rt) -> list[str]:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return sorted(p.name for p in s.exec(select(people.Person).where(col(people.Person.name).startswith("记录"))))


def make_record(ctx: Context) -> str:
    """The effect under test: one record per message."""
    n = len(ctx.session.exec(select(people.Person).where(col(people.Person.name).startswith("记录"))).all()) + 1
    people.create_person(ctx.session, f"记录{n}", ["teacher"], now=ctx.now)
    return f"已记录{n}"


def inbound_row(rt, key: str) -> store.InboundMessage | None:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return s.exec(select(store.InboundMessage).where(store.InboundMessage.msg_key == key)).first()


def test_a_retry_after_the_kv_store_forgot_the_claim_is_not_acted_on_again(rt, chat):
    openid = bind_teacher(rt)
    with temp_command(rt, "记录", make_record):
        xml = xml_of(chat.wx.message(openid, "text", Content="记录", msgid=880001))
        assert chat.wx.reply_text(chat.wx.post_xml(xml)) == "已记录1"
        rt.kv.flush()  # Redis restarted or emptied between WeChat's tries
        assert chat.wx.reply_text(chat.wx.post_xml(xml)) == "已记录1"  # the stored reply
        assert chat.wx.reply_text(chat.wx.post_xml(xml)) == "已记录1"
    assert records(rt) == ["记录1"]
    row = inbound_row(rt, "880001")
    assert row is not None and row.state == store.DONE and row.reply == "已记录1" and not row.late


def test_a_claim_left_by_a_killed_process_is_taken_over_by_the_retry(rt, chat):
    """Finding 2a: the process died mid-handler; its claim must not swallow WeChat's retries."""
    openid = bind_teacher(rt)
    rt.kv.set("msg:880002", "run:deadprocess0001", ttl=120)  # claimed by a process with no heartbeat
    with temp_command(rt, "记录", make_record):
        xml = xml_of(chat.wx.message(openid, "text", Content="记录", msgid=880002))
        started = time.monotonic()
        assert chat.wx.reply_text(chat.wx.post_xml(xml)) == "已记录1"
        assert time.monotonic() - started < 2  # taken over at once, not after the claim's TTL
        assert chat.wx.reply_text(chat.wx.post_xml(xml)) == "已记录1"
    assert records(rt) == ["记录1"]


def test_a_claim_of_a_live_process_is_followed_not_taken_over(rt, chat):
    openid = bind_teacher(rt)
    rt.kv.set("alive:otherprocess01", "1", ttl=60)
    rt.kv.set("msg:880003", "run:otherprocess01", ttl=120)
    rt.inbox.reply_timeout = 0.5
    with temp_command(rt, "记录", make_record):
        xml = xml_of(chat.wx.message(openid, "text", Content="记录", msgid=880003))
        r = chat.wx.post_xml(xml)
    assert r.status_code == 200 and r.text == "success"  # made durable, then `success`
    assert records(rt) == []  # the other process is doing it
    row = inbound_row(rt, "880003")
    assert row is not None and row.state == store.PENDING  # … and if it dies, recovery will


def test_late_message_whose_handler_fails_is_recovered_once_with_its_reply_pushed(rt, chat, clock):
    """Finding 2b: `success` at the deadline, then the database drops: the message is still acted on once."""
    openid = bind_teacher(rt)
    rt.inbox.reply_timeout = 0.3
    tries: list[int] = []

    def flaky(ctx: Context) -> str:
        tries.append(1)
        if len(tries) == 1:
            time.sleep(0.6)  # past the deadline …
            raise DatabaseUnavailable("server closed the connection unexpectedly")  # … then the database drops
        return make_record(ctx)

    with temp_command(rt, "记录", flaky):
        xml = xml_of(chat.wx.message(openid, "text", Content="记录", msgid=880004))
        r = chat.wx.post_xml(xml)
        assert r.status_code == 200 and r.text == "success"
        deadline = time.monotonic() + 5
        while len(tries) < 1 or rt.inbox.running:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        row = inbound_row(rt, "880004")
        assert row is not None and row.state == store.PENDING and records(rt) == []
        assert rt.inbox.recover_once() == 1
        assert rt.inbox.recover_once() == 0  # done: nothing left
        assert chat.wx.post_xml(xml).text == "success"  # a late retry: answered, not run again
    assert records(rt) == ["记录1"] and len(tries) == 2
    row = inbound_row(rt, "880004")
    assert row is not None and row.state == store.DONE and row.late and row.payload is None
    chat.deliver()
    assert chat.received.get(openid) == ["已记录1"]  # the reply, as a customer-service message, once


def test_recovery_leaves_a_pending_message_to_its_holder_until_the_lease_runs_out(rt, clock):
    with rt.db.session() as s:
        store.accept(s, "880005", "o_someone", {"openid": "o_someone", "type": "text", "text": "帮助"},
                     now=clock.now(), lease=30)
    assert rt.inbox.recover_once() == 0
    clock.advance(seconds=31)
    assert rt.inbox.recover_once() == 1
    row = inbound_row(rt, "880005")
    assert row is not None and row.state == store.DONE and row.late and row.reply
    with rt.db.session() as s:
        pushed = s.exec(select(OutboxMessage).where(OutboxMessage.openid == "o_someone")).all()
    assert len(pushed) == 1 and pushed[0].force_cs


def test_a_late_reply_is_queued_with_its_effect_and_the_slow_run_still_happens_once(rt, chat):
    openid = bind_teacher(rt)
    rt.inbox.reply_timeout = 0.2

    def slow_record(ctx: Context) -> str:
        time.sleep(0.5)
        return make_record(ctx)

    with temp_command(rt, "记录", slow_record):
        xml = xml_of(chat.wx.message(openid, "text", Content="记录", msgid=880006))
        assert chat.wx.post_xml(xml).text == "success"
        assert chat.wx.post_xml(xml).text == "success"  # WeChat's retry while it still runs
        deadline = time.monotonic() + 5
        while records(rt) == [] or rt.inbox.running:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        rt.kv.flush()
        assert chat.wx.post_xml(xml).text == "success"  # the KV store forgot: the database remembers it was late
    assert records(rt) == ["记录1"]
    chat.deliver()
    assert chat.received.get(openid) == ["已记录1"]


def test_a_duplicate_run_leaves_no_dialog_state_behind(rt, chat):
    """KV writes of a message (dialog state) are made only by the run that counts."""
    openid = chat.person("王老师", "teacher")
    xml = xml_of(chat.wx.message(openid, "text", Content="报修", msgid=880007))
    assert "报修地点" in chat.wx.reply_text(chat.wx.post_xml(xml))
    assert "地点：教学楼301" in chat.say("王老师", "教学楼301")
    rt.kv.delete("msg:880007")  # the claim forgotten, the dialog state kept
    assert "报修地点" in chat.wx.reply_text(chat.wx.post_xml(xml))  # the stored reply …
    assert "照片" in chat.say("王老师", "灯不亮")  # … and the dialog goes on from where it was


def test_old_done_messages_are_pruned(rt, clock):
    with rt.db.session() as s:
        store.finish(s, "880008", "o_x", "好", late=False, now=clock.now())
    clock.advance(days=1, minutes=1)
    with rt.db.session() as s:
        store.finish(s, "880009", "o_x", "好", late=False, now=clock.now())
    assert rt.inbox.prune() == 1
    assert inbound_row(rt, "880008") is None and inbound_row(rt, "880009") is not None


def test_inbound_keys_too_long_for_the_column_are_digested(rt, clock):
    key = "o" * 300 + ":1700000000:subscribe"
    with rt.db.session() as s:
        store.finish(s, key, "o" * 300, None, late=False, now=clock.now())
    with rt.db.session() as s:
        assert store.lookup(s, key) == store.Stored(store.DONE, None, False)
    assert timedelta(days=1) == store.KEEP_DONE


def test_a_message_without_effect_stored_near_its_deadline_is_still_recorded_once(rt, chat, clock):
    """Review finding: the pending row written shortly before the deadline (PostgreSQL) must be settled by a
    handler that then finishes in time, even when it read and wrote nothing — else recovery runs it again."""
    openid = bind_teacher(rt)
    chat.wx.post_xml(xml_of(chat.wx.message(openid, "text", Content="帮助", msgid=880020)))  # sender now known
    rt.inbox.reply_timeout = rt.inbox.accept_lead + 0.3  # the pending row is written 0.3 s in

    def slow(ctx: Context) -> str:
        time.sleep(0.5)  # past the storing point, before the deadline
        return "好的"

    with temp_command(rt, "慢", slow):
        r = chat.wx.post_xml(xml_of(chat.wx.message(openid, "text", Content="慢", msgid=880021)))
        assert chat.wx.reply_text(r) == "好的"
        row = inbound_row(rt, "880021")
        assert row is None or row.state == store.DONE  # never left pending
        clock.advance(seconds=31)
        assert rt.inbox.recover_once() == 0
    with rt.db.session() as s:
        assert s.exec(select(OutboxMessage).where(OutboxMessage.openid == openid)).all() == []


def test_recovery_settles_a_pending_row_whose_message_another_worker_answered(rt, clock):
    """A copy that followed the holder wrote a pending row at its own deadline; the holder answered without
    an effect (so it recorded nothing): recovery finds the reply in the KV store and does not run it again."""
    with rt.db.session() as s:
        store.accept(s, "880022", "o_someone", {"openid": "o_someone", "type": "text", "text": "帮助"},
                     now=clock.now(), lease=30)
    rt.kv.set("msg:880022", "done:好的", ttl=300)
    clock.advance(seconds=31)
    assert rt.inbox.recover_once() == 1  # taken, and settled without running
    row = inbound_row(rt, "880022")
    assert row is not None and row.state == store.DONE and row.reply == "好的" and not row.late
    with rt.db.session() as s:
        assert s.exec(select(OutboxMessage).where(OutboxMessage.openid == "o_someone")).all() == []
