"""The outbound path against the fake WeChat server: token sharing and refresh, retries and permanent
failures, crash recovery, concurrent senders, channel choice, skips, delivery reports, the menu."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.sandbox.fakewechat import CUSTOM_PATH, MENU_PATH, TEMPLATE_PATH, TOKEN_PATH
from bot.wechat.sender import OutboxSender, RateLimiter, backoff, start_sender, template_data
from bot.wechat.api import PermanentError, TransientError, WeChatAPI, classify
from storage import outbox as ob
from storage import people
from storage.kv import MemoryKV, RedisKV
from tests.conftest import REDIS_URL
from tests.school import openid_for

ROOT = Path(__file__).resolve().parents[1]
START_TIME = datetime(2026, 12, 1, 9, 0)


def queue(rt, name_or_openid: str, text: str, kind: str = "system", *, person: bool = True,
          force_cs: bool = False) -> int:
    """Queue one push (to a person by name, or to a bare OpenID) and return the row id."""
    with rt.db.session() as s:
        if person:
            p = s.exec(select(people.Person).where(people.Person.name == name_or_openid)).one()
            row = ob.enqueue(s, p.id, kind, text, now=rt.clock.now(), force_cs=force_cs)
        else:
            row = ob.enqueue(s, None, kind, text, now=rt.clock.now(), openid=name_or_openid, force_cs=True)
        s.flush()
        assert row.id is not None
        return row.id


def row(rt, row_id: int) -> ob.OutboxMessage:
    with rt.db.session() as s:
        r = s.get(ob.OutboxMessage, row_id)
        assert r is not None
        return r


@pytest.fixture
def sender(rt):
    with OutboxSender(rt, threads=4) as s:
        yield s


# --- the client: token ---
# Exact token-fetch counts are checked over an in-process KV: through ResilientKV a Redis timeout on a loaded
# machine would (correctly) fall back to a local store and fetch again. Redis itself is tested directly below.

def test_two_clients_share_one_token(rt, fake_wechat):
    kv = MemoryKV()
    a, b = WeChatAPI(rt.settings, kv), WeChatAPI(rt.settings, kv)
    for i in range(5):
        a.send_text("o_a", f"a{i}")
        b.send_text("o_b", f"b{i}")
    assert fake_wechat.token_fetches == 1
    assert fake_wechat.texts_to("o_a") == [f"a{i}" for i in range(5)]
    assert len({c.access_token for c in fake_wechat.sends()}) == 1


def test_two_processes_share_one_token_through_redis(settings, fake_wechat):
    """Two worker processes, one Redis: one token request for all their sends."""
    prefix = f"houqin-test-{uuid.uuid4().hex[:8]}:"
    kv = RedisKV(REDIS_URL, prefix=prefix)
    kv.ping()
    script = (
        "import sys\n"
        "from bot.config import Settings\n"
        "from bot.wechat.api import WeChatAPI\n"
        "from storage.kv import RedisKV\n"
        "base, url, prefix, appid, secret, tag = sys.argv[1:]\n"
        "s = Settings(wechat_app_id=appid, wechat_app_secret=secret, wechat_api_base_url=base, _env_file=None)\n"
        "api = WeChatAPI(s, RedisKV(url, prefix=prefix))\n"
        "for i in range(10):\n"
        "    api.send_text('o_' + tag, f'{tag}-{i}')\n"
    )
    try:
        procs = [subprocess.Popen([sys.executable, "-c", script, fake_wechat.base_url, REDIS_URL, prefix,
                                   settings.wechat_app_id, settings.wechat_app_secret, tag], cwd=ROOT)
                 for tag in ("p1", "p2")]
        assert [p.wait(timeout=60) for p in procs] == [0, 0]
        assert fake_wechat.token_fetches == 1
        assert len(fake_wechat.texts_to("o_p1")) == len(fake_wechat.texts_to("o_p2")) == 10
        assert kv.get(f"wechat:{settings.wechat_app_id}_access_token") is not None
    finally:
        kv.flush()


@pytest.mark.parametrize("code", [42001, 40001])
def test_refused_token_refreshed_once_and_retried(rt, fake_wechat, code):
    api = WeChatAPI(rt.settings, MemoryKV())
    api.send_text("o_x", "one")
    fake_wechat.expire_tokens(code)
    api.send_text("o_x", "two")
    assert fake_wechat.token_fetches == 2
    assert fake_wechat.texts_to("o_x") == ["one", "two"]
    assert [c.errcode for c in fake_wechat.calls(CUSTOM_PATH)] == [0, code, 0]


def test_many_threads_with_an_expired_token_refresh_it_once(rt, fake_wechat):
    api = WeChatAPI(rt.settings, MemoryKV())
    api.send_text("o_x", "warm-up")
    fake_wechat.expire_tokens()
    errors: list[Exception] = []

    def send(i: int) -> None:
        try:
            api.send_text("o_x", f"t{i}")
        except Exception as exc:  # noqa: BLE001 - any failure is reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert fake_wechat.token_fetches == 2
    assert len(fake_wechat.texts_to("o_x")) == 9


def test_token_refused_again_after_the_retry_is_transient(rt, fake_wechat):
    api = WeChatAPI(rt.settings, MemoryKV())
    fake_wechat.fail_next(CUSTOM_PATH, 40001, times=2)
    with pytest.raises(TransientError) as err:
        api.send_text("o_x", "hi")
    assert err.value.errcode == 40001
    assert len(fake_wechat.calls(CUSTOM_PATH)) == 2  # one retry, not more
    assert fake_wechat.token_fetches == 2


def test_every_call_uses_the_configured_base_url(rt, fake_wechat):
    api = WeChatAPI(rt.settings, rt.kv)
    assert api.send_template("o_x", "TPL", {"keyword1": {"value": "x"}})
    api.create_menu({"button": [{"type": "click", "name": "帮助", "key": "帮助"}]})
    assert api.get_media("m1").startswith(b"\xff\xd8")
    paths = [c.path for c in fake_wechat.received]
    assert paths == [TOKEN_PATH, TEMPLATE_PATH, MENU_PATH, "/cgi-bin/media/get"]


def test_wrong_secret_is_a_transient_token_error(rt, fake_wechat):
    rt.settings.wechat_app_secret = "wrong"
    with pytest.raises(TransientError) as err:
        WeChatAPI(rt.settings, MemoryKV()).send_text("o_x", "hi")
    assert err.value.errcode == 40125


def test_timeout_is_transient(rt, fake_wechat):
    fake_wechat.latency(0.3)
    with pytest.raises(TransientError):
        WeChatAPI(rt.settings, rt.kv, timeout=0.1).send_text("o_x", "hi")


@pytest.mark.parametrize("code,transient", [(-1, True), (45009, True), (42001, True), (43004, False),
                                            (45015, False), (45047, False), (40003, False), (40037, False),
                                            (48001, False)])
def test_classification(code, transient):
    err = classify(code, "msg")
    assert err.transient is transient
    assert isinstance(err, TransientError if transient else PermanentError)
    assert str(code) in err.describe()


def test_http_errors_classified():
    assert classify(None, "x", http_status=502).transient
    assert classify(None, "x", http_status=429).transient
    assert not classify(None, "x", http_status=404).transient
    assert classify(None, "connection reset").transient


# --- the sender ---

TRANSIENT_FAULTS = {
    "busy(-1)": {"errcode": -1},
    "rate(45009)": {"errcode": 45009},
    "http500": {"errcode": None, "http_status": 500},
    "http503": {"errcode": None, "http_status": 503},
    "token-refused-twice(40001)": {"errcode": 40001, "times": 2},
}


@pytest.mark.parametrize("fault", list(TRANSIENT_FAULTS), ids=list(TRANSIENT_FAULTS))
def test_transient_failure_retried_then_delivered(chat, rt, fake_wechat, sender, clock, fault):
    chat.person("王老师", "teacher")
    rid = queue(rt, "王老师", "BX1 已派单")
    fake_wechat.fail_next(CUSTOM_PATH, **TRANSIENT_FAULTS[fault])
    assert sender.run_once() == 1
    r = row(rt, rid)
    assert r.state == ob.PENDING and r.attempts == 1 and r.last_error
    assert clock.now() < r.next_attempt_at <= clock.now() + timedelta(seconds=10)
    assert sender.run_once() == 0  # not due yet
    clock.advance(seconds=11)
    assert sender.run_once() == 1
    r = row(rt, rid)
    assert (r.state, r.attempts, r.channel, r.sent_at) == (ob.SENT, 2, "custom", clock.now())
    assert fake_wechat.texts_to(openid_for("王老师")) == ["BX1 已派单"]


def test_dropped_connection_retried_then_delivered(chat, rt, fake_wechat, sender, clock):
    chat.person("王老师", "teacher")
    rid = queue(rt, "王老师", "你好")
    fake_wechat.drop_next(CUSTOM_PATH)
    sender.run_once()
    assert row(rt, rid).state == ob.PENDING and "network" in (row(rt, rid).last_error or "")
    clock.advance(minutes=1)
    sender.run_once()
    assert row(rt, rid).state == ob.SENT
    assert fake_wechat.texts_to(openid_for("王老师")) == ["你好"]


@pytest.mark.parametrize("code", [43004, 45015, 45047, 40003, 48001])
def test_permanent_failure_recorded_and_not_retried(chat, rt, fake_wechat, sender, clock, code):
    chat.person("王老师", "teacher")
    rid = queue(rt, "王老师", "通知")
    fake_wechat.fail_next(CUSTOM_PATH, code)
    assert sender.run_once() == 1
    r = row(rt, rid)
    assert (r.state, r.errcode, r.attempts) == (ob.FAILED, code, 1)
    assert str(code) in (r.last_error or "")
    clock.advance(days=2)
    assert sender.run_once() == 0
    assert len(fake_wechat.calls(CUSTOM_PATH)) == 1


def test_bad_template_id_is_permanent(chat, rt, fake_wechat, sender):
    fake_wechat.templates = {"GOOD"}
    try:
        rt.settings.templates["repair"] = "BAD"
        chat.person("王老师", "teacher")
        rid = queue(rt, "王老师", "BX1", kind="repair")
        sender.run_once()
        r = row(rt, rid)
        assert (r.state, r.errcode, r.channel) == (ob.FAILED, 40037, "template")
        assert "模板" in (r.last_error or "")
    finally:
        fake_wechat.templates = None


def test_gives_up_after_max_attempts(chat, rt, fake_wechat, clock):
    chat.person("王老师", "teacher")
    rid = queue(rt, "王老师", "通知")
    fake_wechat.fail_next(CUSTOM_PATH, -1, times=10)
    with OutboxSender(rt, max_attempts=3) as sender:
        for _ in range(5):
            sender.run_once()
            clock.advance(hours=2)
    r = row(rt, rid)
    assert (r.state, r.attempts, r.errcode) == (ob.FAILED, 3, -1)
    assert "重试 3 次" in (r.last_error or "")
    assert len(fake_wechat.calls(CUSTOM_PATH)) == 3


def test_backoff_grows_with_jitter():
    first = [backoff(1) for _ in range(50)]
    assert all(5 <= d <= 10 for d in first) and len(set(first)) > 1
    assert all(40 <= backoff(4) <= 80 for _ in range(20))
    assert backoff(30) <= 3600


def test_row_left_sending_after_a_crash_is_sent_again(chat, rt, fake_wechat, sender, clock):
    """A sender claimed the row and died before sending: after the lease, another one sends it."""
    chat.person("王老师", "teacher")
    rid = queue(rt, "王老师", "提醒：消防演练")
    jobs, _ = OutboxSender(rt, lease_seconds=60).claim(10)  # claimed, then the process "dies"
    assert [j.id for j in jobs] == [rid] and row(rt, rid).state == ob.SENDING
    assert sender.run_once() == 0  # the lease still holds
    clock.advance(seconds=61)
    assert sender.run_once() == 1
    r = row(rt, rid)
    assert (r.state, r.attempts) == (ob.SENT, 2)
    assert fake_wechat.texts_to(openid_for("王老师")) == ["提醒：消防演练"]


def test_crash_after_sending_before_recording_sends_again(chat, rt, fake_wechat, sender, clock):
    """At least once: the rare duplicate when a sender dies between WeChat's answer and the commit."""
    chat.person("王老师", "teacher")
    rid = queue(rt, "王老师", "通知")
    dying = OutboxSender(rt, lease_seconds=60)
    jobs, _ = dying.claim(10)
    dying.api.send_text(jobs[0].openid, jobs[0].text)  # sent, but the outcome never reaches the database
    clock.advance(seconds=61)
    sender.run_once()
    assert row(rt, rid).state == ob.SENT
    assert fake_wechat.texts_to(openid_for("王老师")) == ["通知", "通知"]


def test_two_senders_never_send_a_row_twice(rt, fake_wechat):
    n = 120
    with rt.db.session() as s:
        for i in range(n):
            ob.enqueue(s, None, "system", f"msg {i}", now=rt.clock.now(), openid=f"o_{i:03d}")
    fake_wechat.latency(0.005)
    senders = [OutboxSender(rt, threads=4, rate=10_000) for _ in range(2)]
    counts = [0, 0]

    def work(k: int) -> None:
        while (got := senders[k].run_once(limit=15)) > 0:
            counts[k] += got

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in senders:
        s.close()
    sends = fake_wechat.sends()
    assert len(sends) == n and len({c.touser for c in sends}) == n
    assert sum(counts) == n and all(counts)  # both took part
    with rt.db.session() as s:
        states = {r.state for r in s.exec(select(ob.OutboxMessage)).all()}
    assert states == {ob.SENT}


def test_template_when_configured_else_customer_service(chat, rt, fake_wechat, sender):
    rt.settings.templates["repair"] = "TPL_REPAIR"
    chat.person("王老师", "teacher")
    t = queue(rt, "王老师", "报修 BX3 已完成\n请评价：评价 BX3 5", kind="repair")
    c = queue(rt, "王老师", "访客 FK1 到访", kind="visitor")
    f = queue(rt, "王老师", "直接回复", kind="repair", force_cs=True)
    sender.run_once()
    assert [row(rt, i).channel for i in (t, c, f)] == ["template", "custom", "custom"]
    tpl = fake_wechat.calls(TEMPLATE_PATH)[0]
    assert tpl.body["template_id"] == "TPL_REPAIR" and tpl.touser == openid_for("王老师")
    assert tpl.body["data"]["first"]["value"] == "报修 BX3 已完成"
    assert tpl.body["data"]["keyword1"]["value"] == "报修 BX3 已完成\n请评价：评价 BX3 5"
    assert tpl.body["data"]["keyword2"]["value"] == "2026-12-01 09:00"
    assert row(rt, t).wechat_msgid and row(rt, c).wechat_msgid is None
    # Per-recipient order is kept: one person's rows go out in the order they were queued.
    assert fake_wechat.texts_to(openid_for("王老师")) == [
        "报修 BX3 已完成\n请评价：评价 BX3 5", "访客 FK1 到访", "直接回复"]


def test_template_fields_from_row_data():
    data = template_data("x", START_TIME, {"template": {"thing1": "教学楼301", "time2": {"value": "9:00"}}})
    assert data == {"thing1": {"value": "教学楼301"}, "time2": {"value": "9:00"}}


def test_unsubscribed_and_unbound_people_are_skipped(chat, rt, fake_wechat, sender):
    chat.person("王老师", "teacher")
    chat.person("李老师", "teacher", bind=False)
    chat.event("王老师", "unsubscribe")
    a = queue(rt, "王老师", "通知")
    b = queue(rt, "李老师", "通知")
    assert sender.run_once() == 2
    assert (row(rt, a).state, row(rt, a).last_error) == (ob.SKIPPED, "已取消关注公众号")
    assert (row(rt, b).state, row(rt, b).last_error) == (ob.SKIPPED, "未绑定微信")
    assert fake_wechat.sends() == []


def test_late_reply_to_an_openid_goes_as_customer_service(rt, fake_wechat, sender):
    rt.settings.templates["reply"] = "TPL"  # a reply is an answer: customer service all the same
    rid = queue(rt, "o_stranger", "请先绑定", kind="reply", person=False)
    sender.run_once()
    assert (row(rt, rid).state, row(rt, rid).channel) == (ob.SENT, "custom")
    assert fake_wechat.texts_to("o_stranger") == ["请先绑定"]


def test_template_delivery_status_from_the_webhook(chat, rt, fake_wechat, sender):
    rt.settings.templates["repair"] = "TPL_REPAIR"
    chat.person("王老师", "teacher")
    rid = queue(rt, "王老师", "BX1 已派单", kind="repair")
    sender.run_once()
    msgid = row(rt, rid).wechat_msgid
    assert msgid
    chat.wx.event(openid_for("王老师"), "TEMPLATESENDJOBFINISH", MsgID=msgid, Status="success")
    assert row(rt, rid).delivery_status == "success"


def test_chat_helper_collects_pushes_through_the_real_sender(chat, rt, fake_wechat):
    rt.settings.templates["repair"] = "TPL_REPAIR"
    chat.person("王老师", "teacher")
    queue(rt, "王老师", "BX1 已派单", kind="repair")
    queue(rt, "王老师", "FK1 到访", kind="visitor")
    assert chat.pushes("王老师") == ["BX1 已派单", "FK1 到访"]
    assert chat.last_push("王老师") == "FK1 到访"
    assert {r.state for r in chat.outbox()} == {ob.SENT}


def test_background_sender_woken_at_once(rt, fake_wechat):
    svc = start_sender(rt)
    try:
        queue(rt, "o_late", "稍后的回复", kind="reply", person=False)
        rt.wake_sender()
        deadline = time.monotonic() + 5
        while not fake_wechat.texts_to("o_late") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake_wechat.texts_to("o_late") == ["稍后的回复"]
    finally:
        svc.stop()


# --- the rate limiter ---

def fake_time():  # a monotonic clock that sleeping moves forward
    now = [0.0]

    def sleep(d: float) -> None:
        now[0] += d

    return (lambda: now[0]), sleep


def test_rate_limiter_never_exceeds_the_rate_in_any_second():
    monotonic, sleep = fake_time()
    limiter = RateLimiter(5, margin=0.0, monotonic=monotonic, sleep=sleep)
    starts = [limiter.acquire() for _ in range(12)]
    assert starts == [0.0] * 5 + [1.0] * 5 + [2.0] * 2
    assert max(sum(1 for s in starts if t <= s < t + 1) for t in starts) == 5


def test_rate_limiter_margin_widens_the_window():
    monotonic, sleep = fake_time()
    limiter = RateLimiter(2, margin=0.25, monotonic=monotonic, sleep=sleep)
    assert [limiter.acquire() for _ in range(5)] == [0.0, 0.0, 1.25, 1.25, 2.5]


def test_rate_limiter_below_one_per_second():
    monotonic, sleep = fake_time()
    limiter = RateLimiter(0.5, margin=0.0, monotonic=monotonic, sleep=sleep)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 2.0, 4.0]


def test_sender_is_throttled_by_its_rate_limit(rt, fake_wechat):
    with rt.db.session() as s:
        for i in range(6):
            ob.enqueue(s, None, "system", f"m{i}", now=rt.clock.now(), openid=f"o_{i}")
    monotonic, sleep = fake_time()
    with OutboxSender(rt, threads=1) as sender:  # one thread: the fake clock is not shared safely
        sender.limiter = RateLimiter(2, margin=0.0, monotonic=monotonic, sleep=sleep)
        assert sender.run_once() == 6
    assert monotonic() == 2.0  # 6 sends at 2 per second: two waits of a second
    assert len(fake_wechat.sends()) == 6


# --- the menu ---

def test_menu_push_installs_the_menu(settings, fake_wechat, monkeypatch):
    import typer

    from bot.cli import menu as cli_menu

    app = typer.Typer()
    cli_menu.register(app)
    env = {"WECHAT_API_BASE_URL": fake_wechat.base_url, "WECHAT_APP_ID": settings.wechat_app_id,
           "WECHAT_APP_SECRET": settings.wechat_app_secret, "REDIS_URL": "", "HOUQIN_ENV": "development"}
    monkeypatch.chdir(ROOT / "tests")  # no stray .env
    env["DATABASE_URL"] = settings.database_url
    result = CliRunner().invoke(app, ["menu", "push"], env=env)
    assert result.exit_code == 0, result.output
    assert "菜单已更新" in result.output
    menu = fake_wechat.menu
    assert menu is not None and len(menu["button"]) <= 3
    keys = {b.get("key") for top in menu["button"] for b in (top.get("sub_button") or [top])}
    assert "帮助" in keys and "报修" not in keys  # the default menu offers nothing a parent would be refused
    # one conditional menu per role, each matching that role's tag, created on the way
    tags = {name: tid for tid, name in fake_wechat.tags.items()}
    assert set(tags) == {"后勤·" + zh for zh in ("后勤管理员", "校领导", "门卫", "维修工", "班主任", "教师", "家长")}
    calls = [c.path.rsplit("/cgi-bin/", 1)[1] for c in fake_wechat.received if c.path != "/cgi-bin/token"]
    assert calls[:2] == ["menu/delete", "menu/create"] and calls.count("menu/addconditional") == 7
    by_tag = {int(m["matchrule"]["tag_id"]): m["button"] for m in fake_wechat.conditional_menus}
    guard = [b["name"] for top in by_tag[tags["后勤·门卫"]] for b in [top, *(top.get("sub_button") or [])]]
    assert guard[:3] == ["访客登记", "核验", "更多"] and guard[3] == "在校访客"
    assert [b["name"] for b in by_tag[tags["后勤·家长"]]][:2] == ["请假", "我的请假"]
    assert by_tag[tags["后勤·维修工"]][0]["name"] == "我的任务"
    assert [b["name"] for b in by_tag[tags["后勤·教师"]]][:2] == ["报修", "请假"]
    # pushing again replaces the menus rather than piling conditional menus up
    assert CliRunner().invoke(app, ["menu", "push"], env=env).exit_code == 0
    assert len(fake_wechat.conditional_menus) == 7 and len(fake_wechat.tags) == 7


def test_people_are_tagged_for_their_roles_menu_when_they_bind_and_when_roles_change(chat, rt, fake_wechat):
    from bot.wechat.api import WeChatAPI
    from bot.wechat.menu import install, load_menu
    from storage import people as people_service

    install(WeChatAPI(rt.settings, rt.kv), load_menu())
    chat.students(("2024001", "李明", "七(3)班"))
    with rt.db.session() as s:
        _, parent = people_service.invite(s, "李明家长", ["parent"], now=rt.clock.now(), student_nos=["2024001"])
        _, guard = people_service.invite(s, "孙门卫", ["guard"], now=rt.clock.now())
        _, teacher = people_service.invite(s, "王老师", ["teacher"], now=rt.clock.now())
        codes = {"李明家长": parent.code, "孙门卫": guard.code, "王老师": teacher.code}
    for name, code in codes.items():
        assert "绑定成功" in chat.say(name, f"绑定 {code}")
    fake_wechat.fail_next("/cgi-bin/tags/members/batchtagging", -1)  # WeChat hiccups: the outbox retries
    chat.deliver()
    rt.clock.advance(minutes=10)
    chat.deliver()
    assert fake_wechat.tags_of(openid_for("李明家长")) == ["后勤·家长"]
    assert fake_wechat.tags_of(openid_for("孙门卫")) == ["后勤·门卫"]
    assert fake_wechat.menu_for(openid_for("李明家长"))["button"][0]["name"] == "请假"  # type: ignore[index]
    assert fake_wechat.menu_for(openid_for("孙门卫"))["button"][0]["name"] == "访客登记"  # type: ignore[index]
    assert fake_wechat.menu_for("oNobody")["button"][0]["name"] == "使用帮助"  # type: ignore[index]
    tagging = [c for c in fake_wechat.calls("tags/members/batchtagging")]
    assert [c.ok for c in tagging].count(False) == 1 and len([c for c in tagging if c.ok]) == 3

    # a role change retags: 王老师 becomes a head teacher, then an admin
    from storage import roster
    with rt.db.session() as s:
        roster.set_head_teacher(s, "七(3)班", "王老师", now=rt.clock.now())
    chat.deliver()
    assert fake_wechat.tags_of(openid_for("王老师")) == ["后勤·班主任"]
    assert len(fake_wechat.calls("tags/members/batchuntagging")) == 1
    assert [r.kind for r in chat.outbox() if r.person_id is not None].count("menu_tag") == 4
    assert all(r.state == "sent" for r in chat.outbox() if r.kind == "menu_tag")


def test_menu_push_reports_wechat_errors(settings, fake_wechat, monkeypatch):
    import typer

    from bot.cli import menu as cli_menu

    app = typer.Typer()
    cli_menu.register(app)
    fake_wechat.fail_next(MENU_PATH, 40016)
    env = {"WECHAT_API_BASE_URL": fake_wechat.base_url, "WECHAT_APP_ID": settings.wechat_app_id,
           "WECHAT_APP_SECRET": settings.wechat_app_secret, "REDIS_URL": ""}
    monkeypatch.chdir(ROOT / "tests")
    result = CliRunner().invoke(app, ["menu", "push"], env=env)
    assert result.exit_code == 1
    assert "40016" in result.output


def test_menu_click_runs_the_command(chat):
    chat.person("王老师", "teacher")
    assert "王老师" in chat.event("王老师", "CLICK", "帮助")



def test_notify_writes_the_rows_enqueue_would(chat, rt, clock):
    """`notify` writes through Core (the hot path); its rows must equal the ORM's, defaults included."""
    chat.person("甲", "teacher")
    with rt.db.session() as s:
        a = people.find_one(s, "甲").id
        ob.enqueue(s, a, "repair", "orm", now=clock.now(), data={"ticket": 7})
        assert ob.notify(s, [a, None, a], "repair", "core", now=clock.now(), data={"ticket": 7}) == 1
        assert ob.notify(s, [a], "repair", "skipped", now=clock.now(), skip=a) == 0
        assert ob.notify(s, [a], "repair", "once", now=clock.now(), dedup="k") == 1
        assert ob.notify(s, [a], "repair", "twice", now=clock.now(), dedup="k") == 0
    with rt.db.session() as s:
        rows = s.exec(select(ob.OutboxMessage).order_by(ob.OutboxMessage.id)).all()
    assert [r.text for r in rows] == ["orm", "core", "once"]
    columns = [c.name for c in ob.OutboxMessage.__table__.columns if c.name not in ("id", "text")]  # type: ignore[attr-defined]
    assert [getattr(rows[0], c) for c in columns] == [getattr(rows[1], c) for c in columns]
    assert rows[2].dedup_key == f"k:{a}"


def test_deactivating_or_unbinding_takes_the_role_menu_away(chat, rt, fake_wechat):
    """A person who is deactivated (or whose binding is revoked) no longer sees a role's menu: their WeChat
    account is moved back to the default menu, although the person can no longer be reached by chat."""
    from bot.wechat.api import WeChatAPI
    from bot.wechat.menu import install, load_menu
    from storage import people as people_service

    install(WeChatAPI(rt.settings, rt.kv), load_menu())
    with rt.db.session() as s:
        codes = {name: people_service.invite(s, name, [role], now=rt.clock.now())[1].code
                 for name, role in (("孙门卫", "guard"), ("李师傅", "worker"))}
    for name, code in codes.items():
        assert "绑定成功" in chat.say(name, f"绑定 {code}")
    chat.deliver()
    assert fake_wechat.tags_of(openid_for("孙门卫")) == ["后勤·门卫"]
    assert fake_wechat.tags_of(openid_for("李师傅")) == ["后勤·维修工"]
    with rt.db.session() as s:
        people_service.deactivate(s, "孙门卫", now=rt.clock.now())
        people_service.unbind(s, people_service.person_by_ref(s, "李师傅").id, now=rt.clock.now())  # type: ignore[arg-type]
    chat.deliver()
    assert fake_wechat.tags_of(openid_for("孙门卫")) == []
    assert fake_wechat.tags_of(openid_for("李师傅")) == []
    assert fake_wechat.menu_for(openid_for("孙门卫"))["button"][0]["name"] == "使用帮助"  # type: ignore[index]
    assert all(r.state == "sent" for r in chat.outbox() if r.kind == "menu_tag")
