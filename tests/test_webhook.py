"""The WeChat webhook: signatures, the three modes, hostile input, events, exactly-once, the 4.5 s rule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlmodel import select
from wechatpy.crypto import WeChatCrypto

from bot.app import create_app
from bot.runtime import Runtime
from handlers import base
from storage import people
from storage.db import Database
from storage.outbox import OutboxMessage
from tests.conftest import AES_KEY, APP_ID, PG_URL, TOKEN
from tests.support import Wx, sha1_sign, xml_of
from tests.tcpproxy import TcpProxy


@contextmanager
def temp_command(rt: Runtime, word: str, func, roles=None) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """A command that exists only for one test (to observe effects and timing precisely)."""
    base.command(word, roles=roles, help=f"{word}（测试）")(func)
    rt.router.words = base.all_words()
    try:
        yield
    finally:
        base.COMMANDS[:] = [c for c in base.COMMANDS if word not in c.words]
        rt.router.words = base.all_words()


def bind_teacher(rt: Runtime, name: str = "张老师", openid: str = "o_teacher", roles=("teacher",)) -> str:
    with rt.db.session() as s:
        p = people.create_person(s, name, list(roles), now=rt.clock.now())
        p.openid = openid
        s.add(p)
    return openid


# --- URL check -----------------------------------------------------------------------------------

def test_url_check_echoes_with_good_signature(client):
    ts, nonce = str(int(time.time())), "123"
    r = client.get("/wechat", params={"signature": sha1_sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce,
                                       "echostr": "hello123"})
    assert r.status_code == 200 and r.text == "hello123"


def test_url_check_forged_signature_is_403(client):
    r = client.get("/wechat", params={"signature": "0" * 40, "timestamp": "1", "nonce": "2", "echostr": "x"})
    assert r.status_code == 403


# --- signatures and modes ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["plain", "aes", "compat"])
def test_three_modes_answer(wx, mode):
    reply = wx.text("o_stranger", "你好", mode=mode)
    assert "绑定" in reply


@pytest.mark.parametrize("mode,tamper", [("plain", "signature"), ("aes", "msg_signature"), ("aes", "appid"),
                                         ("compat", "msg_signature")])
def test_forged_requests_are_403_and_change_nothing(wx, rt, mode, tamper):
    with rt.db.session() as s:
        _, inv = people.invite(s, "王老师", ["teacher"], now=rt.clock.now())
        code = inv.code
    xml = xml_of(wx.message("o_forger", "text", Content=f"绑定 {code}"))
    r = wx.post_xml(xml, mode=mode, tamper=tamper)
    assert r.status_code == 403
    with rt.db.session() as s:
        assert s.exec(select(people.Person).where(people.Person.openid == "o_forger")).first() is None


def test_stale_timestamp_is_403(wx):
    xml = xml_of(wx.message("o_x", "text", Content="帮助"))
    assert wx.post_xml(xml, timestamp=str(int(time.time()) - 301)).status_code == 403
    assert wx.post_xml(xml, mode="aes", timestamp=str(int(time.time()) + 400)).status_code == 403


def test_message_encrypted_by_wechatpy_and_reply_accepted_by_wechatpy(client, settings):
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    ts, nonce = str(int(time.time())), "98765"
    plain = xml_of({"ToUserName": "gh_x", "FromUserName": "o_py", "CreateTime": int(ts), "MsgType": "text",
                    "Content": "帮助", "MsgId": 424242})
    envelope = crypto.encrypt_message(plain, nonce, ts)  # wechatpy builds Encrypt + MsgSignature
    from defusedxml import ElementTree as ET
    f = {c.tag: c.text for c in ET.fromstring(envelope)}
    body = f"<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[{f['Encrypt']}]]></Encrypt></xml>"
    r = client.post("/wechat", params={"timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
                                        "msg_signature": f["MsgSignature"]}, content=body)
    assert r.status_code == 200
    g = {c.tag: c.text for c in ET.fromstring(r.text)}
    decrypted = crypto.decrypt_message(r.text, g["MsgSignature"], g["TimeStamp"], g["Nonce"])
    assert "绑定" in decrypted and "o_py" in decrypted


def test_cipher_that_does_not_decrypt_is_400(client):
    ts, nonce = str(int(time.time())), "1"
    garbage = "bm90IGEgY2lwaGVydGV4dA=="
    body = f"<xml><Encrypt><![CDATA[{garbage}]]></Encrypt></xml>"
    r = client.post("/wechat", params={"timestamp": ts, "nonce": nonce, "encrypt_type": "aes",
                                        "msg_signature": sha1_sign(TOKEN, ts, nonce, garbage)}, content=body)
    assert r.status_code == 400


def test_require_safe_mode_refuses_plaintext(rt, settings, client):
    rt.settings.wechat_require_safe_mode = True
    wx = Wx(client, rt.settings)
    assert wx.post_xml(xml_of(wx.message("o_x", "text", Content="帮助")), mode="plain").status_code == 403
    assert "绑定" in wx.text("o_x", "帮助", mode="aes")


# --- hostile and malformed input -----------------------------------------------------------------

XXE = """<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>a</ToUserName><FromUserName>&xxe;</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>hi</Content><MsgId>1</MsgId></xml>"""
LAUGHS = """<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;">]><xml><Content>&lol3;</Content></xml>"""


@pytest.mark.parametrize("body", [XXE, LAUGHS, "<xml><unclosed>", "not xml at all", "", "<other/>",
                                  "<xml><MsgType>text</MsgType></xml>", "\xff\xfe"])
@pytest.mark.parametrize("mode", ["plain", "aes"])
def test_malformed_and_hostile_xml_is_400(wx, body, mode):
    r = wx.post_xml(body, mode=mode)
    assert r.status_code == 400, r.text


def test_body_over_64kb_is_413(wx):
    big = xml_of(wx.message("o_x", "text", Content="x" * 70000))
    assert wx.post_xml(big).status_code == 413


# --- message and event types ---------------------------------------------------------------------

HELP_UNBOUND = "首次使用请发送「绑定 邀请码」完成身份绑定"
HELP_BOUND = "张老师（教师），您可以发送：\n· "  # the help of a bound teacher (its order is the help's own business)
NOT_BOUND = "您还没有绑定身份，请发送「绑定 邀请码」（邀请码由后勤管理员提供，6位）"


def got(noun: str) -> str:
    return f"已收到您的{noun}。如需报修并附照片，请先发送「报修」按提示操作；发送「帮助」查看全部命令。"


@pytest.mark.parametrize("msg_type,fields,unbound_reply,bound_reply", [
    ("text", {"Content": "帮助"}, HELP_UNBOUND, HELP_BOUND),
    ("voice", {"MediaId": "m", "Format": "amr", "Recognition": "帮助"}, HELP_UNBOUND, HELP_BOUND),
    ("voice", {"MediaId": "m", "Format": "amr"}, NOT_BOUND, got("语音")),
    ("image", {"PicUrl": "http://x/p.jpg", "MediaId": "m"}, NOT_BOUND, got("图片")),
    ("location", {"Location_X": "31.3", "Location_Y": "120.6", "Scale": "15", "Label": "苏州"}, NOT_BOUND, got("位置")),
    ("link", {"Title": "t", "Description": "d", "Url": "http://x"}, NOT_BOUND, got("链接")),
    ("video", {"MediaId": "m", "ThumbMediaId": "t"}, NOT_BOUND, got("视频")),
    ("shortvideo", {"MediaId": "m", "ThumbMediaId": "t"}, NOT_BOUND, got("视频")),
    ("weird", {"Foo": "bar"}, NOT_BOUND, got("消息")),
])
@pytest.mark.parametrize("bound", [False, True])
def test_every_message_type_is_answered(wx, rt, msg_type, fields, unbound_reply, bound_reply, bound):
    openid = bind_teacher(rt) if bound else "o_new"
    r = wx.post_xml(xml_of(wx.message(openid, msg_type, **fields)))
    assert r.status_code == 200
    reply = wx.reply_text(r)
    assert (bound_reply if bound else unbound_reply) in reply, reply
    assert (unbound_reply if bound else bound_reply) not in reply


@pytest.mark.parametrize("event,extra,answer", [
    ("subscribe", {}, "欢迎回来，张老师！发送「帮助」查看可用命令。"),
    ("CLICK", {"EventKey": "帮助"}, HELP_BOUND),
    # Nothing to say: an empty `success` (no reply XML at all).
    ("unsubscribe", {}, None), ("SCAN", {"EventKey": "123", "Ticket": "t"}, None),
    ("VIEW", {"EventKey": "http://x"}, None),
    ("LOCATION", {"Latitude": "31.1", "Longitude": "120.1", "Precision": "20"}, None),
    ("TEMPLATESENDJOBFINISH", {"MsgID": "200163836", "Status": "success"}, None),
    ("MASSSENDJOBFINISH", {}, None), ("something_new", {}, None),
])
def test_every_event_type_is_answered(wx, rt, event, extra, answer):
    openid = bind_teacher(rt)
    fields = wx.message(openid, "event", Event=event, **extra)
    r = wx.post_xml(xml_of(fields))
    assert r.status_code == 200
    if answer is None:
        assert r.text == "success"
    else:
        assert answer in wx.reply_text(r), r.text


def test_unsubscribe_then_subscribe_is_recorded(wx, rt):
    openid = bind_teacher(rt)
    wx.event(openid, "unsubscribe")
    with rt.db.session() as s:
        assert s.exec(select(people.Person).where(people.Person.openid == openid)).one().subscribed is False
    assert "欢迎回来" in wx.event(openid, "subscribe")
    with rt.db.session() as s:
        assert s.exec(select(people.Person).where(people.Person.openid == openid)).one().subscribed is True


def test_subscribe_with_invite_scene_binds(wx, rt):
    with rt.db.session() as s:
        _, inv = people.invite(s, "刘门卫", ["guard"], now=rt.clock.now())
    reply = wx.event("o_scan", "subscribe", key=f"qrscene_{inv.code}")
    assert "绑定成功" in reply and "刘门卫" in reply
    with rt.db.session() as s:
        _, inv2 = people.invite(s, "陈老师", ["teacher"], now=rt.clock.now())
    assert "绑定成功" in wx.event("o_scan2", "SCAN", key=inv2.code)


def test_database_down_answers_503(settings, clock, kv):
    down = Database("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    rt = Runtime(settings, clock=clock, kv=kv, db=down)
    with TestClient(create_app(runtime=rt, background=False), raise_server_exceptions=False) as c:
        wx = Wx(c, settings)
        r = wx.post_xml(xml_of(wx.message("o_x", "text", Content="帮助")))
        assert r.status_code == 503
        again = wx.post_xml(xml_of(wx.message("o_x", "text", Content="帮助", msgid=77)))
        assert again.status_code == 503  # the claim was released: WeChat's retry is processed, not swallowed


def test_database_that_goes_down_mid_run_answers_503_and_comes_back(settings, clock, kv):
    """Our PostgreSQL database (TEST_PG_URL) behind a loopback proxy that the test stops and starts again: the
    pooled connections are cut and new ones refused (503, so WeChat retries, and the message is not marked
    handled), then the database is back and the same retry is answered."""
    real = make_url(PG_URL)
    Database(PG_URL).migrate()  # the PostgreSQL pass has done it already; the SQLite pass has not
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432).start()
    db = Database(real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    rt = Runtime(settings, clock=clock, kv=kv, db=db)
    try:
        with TestClient(create_app(runtime=rt, background=False), raise_server_exceptions=False) as c:
            wx = Wx(c, settings)
            assert "首次使用请发送「绑定 邀请码」" in wx.text("o_x", "帮助")  # connections are pooled now
            proxy.stop()
            message = xml_of(wx.message("o_x", "text", Content="帮助", msgid=880001))
            assert wx.post_xml(message).status_code == 503
            assert wx.post_xml(message).status_code == 503  # WeChat's retry: tried again, not taken as a duplicate
            proxy.start()
            back = wx.post_xml(message)  # the next retry, with the database back
            assert back.status_code == 200 and "首次使用请发送「绑定 邀请码」" in wx.reply_text(back)
            assert "首次使用请发送「绑定 邀请码」" in wx.text("o_x", "帮助")
    finally:
        rt.close()
        proxy.stop()
        db.dispose()


# --- exactly once --------------------------------------------------------------------------------

def test_four_concurrent_copies_act_once_and_get_the_same_reply(rt, settings):
    openid = bind_teacher(rt)
    calls = []

    def count(ctx):  # type: ignore[no-untyped-def]
        calls.append(1)
        time.sleep(0.2)  # the copies arrive while the first is still working
        return f"第{len(calls)}次"

    app = create_app(runtime=rt, background=False)
    with temp_command(rt, "计数", count):
        fields = Wx(None, settings).message(openid, "text", Content="计数", msgid=555001)  # type: ignore[arg-type]
        xml = xml_of(fields)
        ts, nonce = str(int(time.time())), "42"
        params = {"timestamp": ts, "nonce": nonce, "signature": sha1_sign(TOKEN, ts, nonce)}

        async def burst() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as ac:
                return await asyncio.gather(*[ac.post("/wechat", params=params, content=xml) for _ in range(4)])

        responses = asyncio.run(burst())
    assert len(calls) == 1
    contents = {Wx(None, settings).reply_text(r) for r in responses}  # type: ignore[arg-type]
    assert contents == {"第1次"}  # (whole bodies may differ in CreateTime across a second boundary)


def test_event_retries_are_deduplicated_by_sender_and_time(wx, rt):
    with rt.db.session() as s:
        _, inv = people.invite(s, "周老师", ["teacher"], now=rt.clock.now())
    first = wx.event("o_evt", "subscribe", key=f"qrscene_{inv.code}", create_time=1700000000)
    again = wx.event("o_evt", "subscribe", key=f"qrscene_{inv.code}", create_time=1700000000)
    assert "绑定成功" in first and again == first  # the retry is not re-run (which would say 已绑定)


def test_slow_handler_answers_success_and_sends_reply_later(rt, chat):
    openid = bind_teacher(rt)
    rt.inbox.reply_timeout = 0.3

    def slow(ctx):  # type: ignore[no-untyped-def]
        time.sleep(0.8)
        return "慢慢来的答复"

    with temp_command(rt, "慢", slow):
        xml = xml_of(chat.wx.message(openid, "text", Content="慢", msgid=777001))
        r = chat.wx.post_xml(xml)
        assert r.status_code == 200 and r.text == "success"
        retry = chat.wx.post_xml(xml)  # WeChat's retry while the work goes on
        assert retry.text == "success"
        deadline = time.time() + 5
        while time.time() < deadline:
            with rt.db.session() as s:
                row = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "reply")).first()
            if row:
                break
            time.sleep(0.05)
    assert row is not None and row.text == "慢慢来的答复" and row.force_cs and row.openid == openid
    assert chat.wx.post_xml(xml).text == "success"  # a late retry still does not run it again
    chat.deliver()
    assert chat.received.get(openid) == ["慢慢来的答复"]


# --- binding -------------------------------------------------------------------------------------

def test_binding_good_reused_expired_and_bruteforce(wx, rt, clock):
    with rt.db.session() as s:
        _, inv = people.invite(s, "孙老师", ["teacher"], now=clock.now())
        _, old = people.invite(s, "赵老师", ["teacher"], now=clock.now())
        _, spare = people.invite(s, "钱老师", ["teacher"], now=clock.now())
    assert "绑定成功" in wx.text("o_sun", f"绑定 {inv.code.lower()}")
    assert "已被使用" in wx.text("o_other", f"绑定 {inv.code}")
    clock.advance(days=8)
    assert "过期" in wx.text("o_zhao", f"绑定 {old.code}")
    for _ in range(4):
        assert "无效" in wx.text("o_brute", "绑定 ZZZZZZ")
    assert "无效" in wx.text("o_brute", "绑定 ZZZZZ9")
    assert "次数过多" in wx.text("o_brute", f"绑定 {spare.code}")  # even the right code is refused now
    with rt.db.session() as s:
        assert s.exec(select(people.Person).where(people.Person.openid == "o_brute")).first() is None


def test_fullwidth_bind_command(wx, rt):
    with rt.db.session() as s:
        _, inv = people.invite(s, "吴老师", ["teacher"], now=rt.clock.now())
    fw = "".join(chr(ord(c) + 0xFEE0) for c in inv.code)
    assert "绑定成功" in wx.text("o_wu", f"绑定：\u3000{fw}。")


def test_role_refusal_names_who_may(wx, rt):
    openid = bind_teacher(rt)
    with temp_command(rt, "管理测试", lambda ctx: "ok", roles={"admin"}):
        reply = wx.text(openid, "管理测试")
    assert reply.startswith("无权限") and "后勤管理员" in reply


def test_unknown_command_hints_help(wx, rt):
    openid = bind_teacher(rt)
    assert "帮助" in wx.text(openid, "随便说点什么")


def test_handler_crash_is_an_apology_and_writes_nothing(wx, rt):
    openid = bind_teacher(rt)

    def boom(ctx):  # type: ignore[no-untyped-def]
        people.create_person(ctx.session, "半截人", ["teacher"], now=ctx.now)
        raise RuntimeError("bug")

    with temp_command(rt, "崩溃", boom):
        assert "抱歉" in wx.text(openid, "崩溃")
    with rt.db.session() as s:
        assert s.exec(select(people.Person).where(people.Person.name == "半截人")).first() is None


def test_long_replies_are_paged(wx, rt):
    openid = bind_teacher(rt)
    long_text = "\n".join(f"第{i}行 " + "内容" * 20 for i in range(40))
    with temp_command(rt, "长文", lambda ctx: long_text):
        first = wx.text(openid, "长文")
        assert len(first) <= 600 and "更多" in first
        pages = [first]
        while "更多" in pages[-1]:
            pages.append(wx.text(openid, "更多"))
            assert len(pages[-1]) <= 600
    assert "第39行" in pages[-1]
    assert wx.text(openid, "更多") == "没有更多内容了。"

