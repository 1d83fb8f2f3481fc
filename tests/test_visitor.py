"""Visitors (SPEC section 4), end to end through the webhook: check-in, hosts, bookings, lists, blacklist,
jobs, and personal data never shown or stored in clear."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlmodel import select

from jobs import visitor as visitor_jobs
from storage import people, visitor
from storage.errors import Forbidden, UserError
from tests.test_visitor_parse import make_id

PHONE = "13812341111"
PHONE2 = "13987654321"
ID = make_id("32050119900101123")
ID2 = make_id("11010519491231002")
SECRET = "test-secret-key-0123456789"  # as in tests/conftest.py settings
SECRETS = (PHONE, PHONE2, ID, ID2, ID[:15])


class School:
    """The chat fixture plus a record of every reply, so each test can assert nothing leaked."""

    def __init__(self, chat) -> None:  # type: ignore[no-untyped-def]
        self.chat = chat
        self.replies: list[str] = []

    def say(self, name: str, message: str) -> str:
        reply = self.chat.say(name, message)
        self.replies.append(reply)
        return reply

    def pushes(self, name: str) -> list[str]:
        return self.chat.pushes(name)

    def last_push(self, name: str) -> str:
        return self.chat.last_push(name)

    def assert_no_plain_numbers(self) -> None:
        self.chat.deliver()
        texts = self.replies + [t for got in self.chat.received.values() for t in got]
        texts += [row.text for row in self.chat.outbox()]
        for t in texts:
            for secret in SECRETS:
                assert secret not in t, (secret, t)


@pytest.fixture
def school(chat):  # type: ignore[no-untyped-def]
    chat.person("李门卫", "guard")
    chat.person("赵门卫", "guard")
    chat.person("王老师", "teacher")
    chat.person("刘主任", "admin")
    chat.person("孙校长", "leader")
    s = School(chat)
    yield s
    s.assert_no_plain_numbers()


def run_job(rt, fn, **kw):  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return fn(s, rt.clock.now(), **kw)


# --- check-in --------------------------------------------------------------------------------------------


def test_check_in_tells_the_host_and_masks_numbers(school):
    reply = school.say("李门卫", f"访客 张三 {PHONE} 送货 找王老师 苏E12345 {ID} 2人")
    assert "已登记访客 FK1" in reply and "张三（138****1111）" in reply and "2人" in reply
    assert "被访人：王老师（已通知）" in reply and "苏E12345" in reply
    assert f"证件：{ID[:4]}**********{ID[-4:]}" in reply
    push = school.last_push("王老师")
    assert "FK1" in push and "138****1111" in push and "不认识 FK1" in push and "送货" in push


def test_optional_tokens_in_any_order(school):
    reply = school.say("李门卫", f"访客 张三 {PHONE} 2人 {ID} 找王老师 送 苏AD12345 材料")
    assert "事由：送 材料" in reply and "苏AD12345" in reply and "已通知" in reply


def test_host_says_stranger_alerts_the_guards(school, chat):
    chat.person("陈老师", "teacher")
    school.say("李门卫", f"访客 张三 {PHONE} 送货 找王老师")
    assert school.say("陈老师", "不认识 FK1") == "未找到 FK1"
    reply = school.say("王老师", "不认识 fk1")
    assert "已通知门卫" in reply
    for guard in ("李门卫", "赵门卫"):
        alert = school.last_push(guard)
        assert "不认识" in alert and "FK1" in alert and "138****1111" in alert
    assert "⚠被访人不认识" in school.say("李门卫", "在校访客")


def test_unknown_and_unbound_hosts(school, chat):
    chat.person("钱老师", "teacher", bind=False)
    assert "被访人：赵六（不在系统中，未通知）" in school.say("李门卫", f"访客 张三 {PHONE} 送货 找赵六")
    assert "被访人：钱老师（未绑定微信，未通知）" in school.say("李门卫", f"访客 李四 {PHONE2} 开会 找钱老师")


def test_ambiguous_host_asks_which_one(school, chat):
    chat.person("张伟", "teacher")
    chat.person("张伟", "worker", bind=False)
    reply = school.say("李门卫", f"访客 张三 {PHONE} 送货 找张伟")
    assert "被访人「张伟」有 2 位" in reply and "找张伟(教师)" in reply and "找张伟(维修工)" in reply
    assert "还没有访客登记" in school.say("李门卫", "今日访客")  # nothing recorded until resent
    reply = school.say("李门卫", f"访客 张三 {PHONE} 送货 找张伟(教师)")
    assert "被访人：张伟（已通知）" in reply
    assert "FK1" in school.last_push("张伟")


def test_only_guards_check_in(school):
    assert school.say("王老师", f"访客 张三 {PHONE} 送货").startswith("无权限")


@pytest.mark.parametrize(
    "line, expected",
    [
        ("访客 张三 12812341111 送货", "手机号不对：须为大陆手机号，1开头、第二位为3-9，共11位数字"),
        ("访客 张三 1381234111 送货", "手机号不对"),
        (f"访客 张三 {PHONE} 送货 {ID[:17]}{'0' if ID[17] != '0' else '1'}", "校验位不对"),
        (f"访客 张三 {PHONE} 送货 {ID[:6]}{ID[8:17]}", "15位旧身份证号已停用，请登记18位身份证号"),
        (f"访客 {PHONE} 送货", "缺少访客姓名"),
        ("访客 张三 送货", "缺少手机号"),
        (f"访客 张三 {PHONE}", "缺少事由"),
        ("访客", "格式：访客 <姓名> <手机> <事由>"),
    ],
)
def test_validation_errors_say_which_field(school, line, expected):
    reply = school.say("李门卫", line)
    assert expected in reply
    assert "还没有访客登记" in school.say("李门卫", "今日访客")


def test_unknown_fk_number(school):
    assert school.say("李门卫", "离开 FK7") == "未找到 FK7"
    assert school.say("李门卫", "离开 7") == "未找到 FK7"
    assert school.say("王老师", "不认识 FK7") == "未找到 FK7"


# --- check-out and lists ---------------------------------------------------------------------------------


def test_check_out_and_lists(school, clock):
    school.say("李门卫", f"访客 张三 {PHONE} 送货 找王老师")
    school.say("李门卫", f"访客 李四 {PHONE2} 开会 3人")
    reply = school.say("刘主任", "在校访客")
    assert "在校访客 2 批，共 4 人" in reply and "FK1 张三 138****1111" in reply and "FK2 李四 139****4321 3人" in reply
    clock.advance(minutes=80)
    reply = school.say("赵门卫", "离开 FK1")
    assert "已登记离开：FK1 张三（138****1111），在校 1小时20分" in reply
    assert "已于" in school.say("李门卫", "离开 FK1")
    assert "已登记离开：FK2 李四" in school.say("李门卫", "离开 李四")
    assert "目前没有在校访客" in school.say("孙校长", "在校访客")
    reply = school.say("孙校长", "今日访客")
    assert "今日访客 2 批（在校 0 批）" in reply and "09:00–10:20 已离开" in reply
    assert school.say("王老师", "在校访客").startswith("无权限")


def test_long_stay_flagged_in_lists_and_told_once(school, clock, rt):
    school.say("李门卫", f"访客 张三 {PHONE} 送货")
    clock.advance(hours=3, minutes=59)
    assert "⚠" not in school.say("李门卫", "在校访客")
    assert run_job(rt, visitor_jobs.long_stay, hours=4) is None
    clock.advance(minutes=2)
    reply = school.say("李门卫", "在校访客")
    assert "FK1" in reply and "⚠超4小时" in reply and "1 批已在校超过4小时" in reply
    assert "flagged 1" in run_job(rt, visitor_jobs.long_stay, hours=4)
    assert "已超过4小时" in school.last_push("赵门卫") and "离开 FK1" in school.last_push("李门卫")
    assert run_job(rt, visitor_jobs.long_stay, hours=4) is None  # once per visit
    assert "⚠超4小时" in school.say("刘主任", "今日访客")


def test_end_of_day_list_once_a_day(school, clock, rt):
    school.say("李门卫", f"访客 张三 {PHONE} 送货")
    school.say("李门卫", f"访客 李四 {PHONE2} 开会")
    school.say("李门卫", "离开 FK2")
    clock.set(datetime(2026, 12, 1, 17, 59))
    assert run_job(rt, visitor_jobs.day_end, day_end="18:00") is None
    clock.set(datetime(2026, 12, 1, 18, 0))
    assert "2 guard" in run_job(rt, visitor_jobs.day_end, day_end="18:00")
    for guard in ("李门卫", "赵门卫"):
        push = school.last_push(guard)
        assert "仍有 1 批访客未登记离开" in push and "FK1 张三 138****1111" in push and "⚠超4小时" in push
        assert "FK2" not in push
    assert not any("仍有" in p for p in school.pushes("王老师"))
    clock.advance(minutes=5)
    assert run_job(rt, visitor_jobs.day_end, day_end="18:00") is None  # once a day
    clock.set(datetime(2026, 12, 2, 18, 30))
    assert run_job(rt, visitor_jobs.day_end, day_end="18:00")  # still in the next evening: listed again
    assert "12月1日09:00入校" in school.last_push("李门卫")


def test_end_of_day_default_from_settings(school, clock, rt, monkeypatch):
    monkeypatch.setenv("VISITOR_DAY_END", "17:00")
    school.say("李门卫", f"访客 张三 {PHONE} 送货")
    clock.set(datetime(2026, 12, 1, 16, 59))
    assert run_job(rt, visitor_jobs.day_end) is None  # not the built-in 18:00, not yet the configured 17:00
    clock.set(datetime(2026, 12, 1, 17, 0))
    assert run_job(rt, visitor_jobs.day_end) == "listed visitors still in to 2 guard(s)"
    assert "仍有 1 批访客未登记离开" in school.last_push("李门卫") and "FK1 张三" in school.last_push("赵门卫")


# --- bookings --------------------------------------------------------------------------------------------


def test_booking_links_the_check_in_and_tells_the_teacher(school, clock):
    reply = school.say("王老师", f"预约 张三 {PHONE} 今天10:00 送教材")
    assert "已预约访客：张三（138****1111），12月1日 10:00，事由：送教材" in reply
    school.say("王老师", f"预约 李四 {PHONE2} 明天9:00 面试")
    reply = school.say("李门卫", "今日预约")
    assert "今日预约 1 个" in reply and "10:00 张三 138****1111 送教材（王老师预约）未到" in reply
    clock.advance(minutes=50)
    reply = school.say("李门卫", f"访客 张三 {PHONE} 送教材")
    assert "已关联王老师的预约（10:00）" in reply and "被访人：王老师（已通知）" in reply
    pushes = school.pushes("王老师")
    assert len(pushes) == 1 and "您预约的访客 张三（138****1111） 已到校" in pushes[0] and "FK1" in pushes[0]
    assert "已到校 FK1" in school.say("孙校长", "今日预约")
    # tomorrow's booking does not link today
    assert "预约" not in school.say("李门卫", f"访客 李四 {PHONE2} 面试")


def test_booking_only_links_once_and_only_same_day(school, clock):
    school.say("王老师", f"预约 张三 {PHONE} 今天10:00 送教材")
    assert "已关联" in school.say("李门卫", f"访客 张三 {PHONE} 送教材")
    assert "已关联" not in school.say("李门卫", f"访客 张三 {PHONE} 又来了")
    clock.advance(days=1)
    assert "今天没有访客预约" in school.say("李门卫", "今日预约")


def test_booking_validation_and_permissions(school, chat):
    assert "手机号不对" in school.say("王老师", "预约 张三 1381234 明天9:00 送材料")
    assert "缺少访客姓名" in school.say("王老师", f"预约 {PHONE} 明天9:00 送材料")
    assert "无法识别时间" in school.say("王老师", f"预约 张三 {PHONE} 送材料")
    assert "缺少事由" in school.say("王老师", f"预约 张三 {PHONE} 明天9:00")
    assert "已经过去" in school.say("王老师", f"预约 张三 {PHONE} 2026-11-30 9:00 送材料")
    assert "日期不存在" in school.say("王老师", f"预约 张三 {PHONE} 2月30日 9:00 送材料")
    assert school.say("李门卫", f"预约 张三 {PHONE} 明天9:00 送材料").startswith("无权限")
    assert "已预约" in school.say("刘主任", f"预约 张三 {PHONE} 明天9:00 送材料")
    # a teacher sees only their own bookings
    chat.person("陈老师", "teacher")
    school.say("陈老师", f"预约 李四 {PHONE2} 今天15:00 面试")
    school.say("王老师", f"预约 张三 {PHONE} 今天16:00 送材料")
    mine = school.say("陈老师", "今日预约")
    assert "李四" in mine and "张三" not in mine
    everyone = school.say("李门卫", "今日预约")
    assert "李四" in everyone and "张三" in everyone


# --- blacklist -------------------------------------------------------------------------------------------


@pytest.fixture
def cli(database_url, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from bot import cli as cli_mod
    from bot.cli import blacklist as cli_visitor

    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.delenv("REDIS_URL", raising=False)
    if not any(g.name == "blacklist" for g in cli_mod.app.registered_groups):
        cli_visitor.register(cli_mod.app)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli_mod.app, list(args))


def test_blacklisted_phone_alerts_guards_and_admins(school, cli):
    result = cli("blacklist", "add", PHONE, "--reason", "多次冒充家长")
    assert result.exit_code == 0, result.output
    assert "已加入黑名单：138****1111" in result.output and PHONE not in result.output
    result = cli("blacklist", "list")
    assert "手机\t138****1111\t多次冒充家长" in result.output and PHONE not in result.output

    reply = school.say("李门卫", f"访客 张三 {PHONE} 找人 找王老师")
    assert reply.startswith("⚠ 注意：此访客在黑名单中（多次冒充家长）") and "已登记访客 FK1" in reply
    for who in ("刘主任", "李门卫", "赵门卫"):
        alert = school.last_push(who)
        assert "黑名单访客到校：FK1 张三（138****1111）" in alert and "多次冒充家长" in alert
    assert "⚠黑名单" in school.say("刘主任", "在校访客")  # the check-in was still recorded
    assert not any("黑名单" in p for p in school.pushes("王老师"))

    assert "已移出黑名单：138****1111" in cli("blacklist", "remove", PHONE).output
    result = cli("blacklist", "remove", PHONE)
    assert result.exit_code == 1 and "不在黑名单中" in result.output
    assert "黑名单为空" in cli("blacklist", "list").output
    assert "黑名单" not in school.say("李门卫", f"访客 张三 {PHONE} 送货")


def test_blacklisted_id_number(school, rt, cli):
    result = cli("blacklist", "add", ID[:17] + "0" if ID[17] != "0" else ID[:17] + "1", "--reason", "x")
    assert result.exit_code == 1 and "校验位不对" in result.output
    assert cli("blacklist", "add", "123", "--reason", "x").exit_code == 1
    with rt.db.session() as s:
        visitor.blacklist_add(s, ID, "曾在校内滋事", now=rt.clock.now(), secret_key=SECRET, by="测试")
    reply = school.say("李门卫", f"访客 张三 {PHONE2} 送货 {ID}")
    assert "黑名单" in reply and "曾在校内滋事" in reply
    assert "黑名单访客到校" in school.last_push("刘主任")


# --- privacy ---------------------------------------------------------------------------------------------


def test_database_holds_no_plaintext_numbers(school, rt):
    school.say("王老师", f"预约 张三 {PHONE} 今天10:00 送材料 代{PHONE2}取件")
    school.say("李门卫", f"访客 张三 {PHONE} 送货 {ID} 联系{PHONE2}")
    with rt.db.session() as s:
        visitor.blacklist_add(s, ID2, "测试", now=rt.clock.now(), secret_key=SECRET)
    dumped = []
    with rt.db.engine.connect() as conn:
        for table in ("visitorentry", "visitorbooking", "visitorblacklist", "outboxmessage"):
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                dumped.append(" ".join(str(v) for v in row))
    assert dumped
    blob = "\n".join(dumped)
    for secret in (PHONE, PHONE2, ID, ID2, ID[:14], ID[-10:]):
        assert secret not in blob
    with rt.db.engine.connect() as conn:
        enc = conn.execute(text("SELECT id_enc, phone_enc, id_masked FROM visitorentry")).one()
    assert enc[2] == ID[:4] + "*" * 10 + ID[-4:]
    assert visitor.decrypt(SECRET, enc[0]) == ID and visitor.decrypt(SECRET, enc[1]) == PHONE


def test_numbers_are_encrypted_with_the_secret_key_and_hashed_with_a_key(school, rt):
    """Not just absent in clear: readable only with this SECRET_KEY, never the same ciphertext twice, and a
    matching hash that a dictionary of plain hashes cannot reverse (phone and ID numbers are guessable)."""
    school.say("李门卫", f"访客 张三 {PHONE} 送货 {ID}")
    school.say("李门卫", f"访客 张三 {PHONE} 取货 {ID}")  # the same person, the same numbers
    with rt.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT id_enc, phone_enc, id_hash, phone_hash FROM visitorentry ORDER BY id")).all()
    (id1, phone1, idh1, phoneh1), (id2, phone2, idh2, phoneh2) = rows
    assert [visitor.decrypt(SECRET, v) for v in (id1, phone1, id2, phone2)] == [ID, PHONE, ID, PHONE]
    assert id1 != id2 and phone1 != phone2  # a fresh IV each time: equal numbers do not show as equal
    for stolen in (id1, phone1):
        with pytest.raises(UserError, match="SECRET_KEY"):
            visitor.decrypt("another-secret-key-9876543210", stolen)
        raw = base64.urlsafe_b64decode(stolen + "=" * (-len(stolen) % 4))
        assert ID.encode() not in raw and PHONE.encode() not in raw
    assert idh1 == idh2 == visitor.keyed_hash(SECRET, ID) and phoneh1 == phoneh2 == visitor.keyed_hash(SECRET, PHONE)
    for value, keyed in ((ID, idh1), (PHONE, phoneh1)):
        plain = {hashlib.new(algo, value.encode()).hexdigest() for algo in ("md5", "sha1", "sha256", "sha512")}
        assert keyed not in plain
        assert keyed != visitor.keyed_hash("another-secret-key-9876543210", value)


def test_admin_reveal_is_logged(school, rt, clock):
    school.say("李门卫", f"访客 张三 {PHONE} 送货 {ID}")
    school.say("李门卫", f"访客 李四 {PHONE2} 送货")
    with rt.db.session() as s:
        admin = people.actor_for(s, people.find_people(s, "刘主任")[0])
        guard = people.actor_for(s, people.find_people(s, "李门卫")[0])
        assert visitor.reveal_id_number(s, admin, 1, clock.now(), secret_key=SECRET) == ID
        assert visitor.reveal_phone(s, admin, 1, clock.now(), secret_key=SECRET) == PHONE
        with pytest.raises(Forbidden):
            visitor.reveal_id_number(s, guard, 1, clock.now(), secret_key=SECRET)
        with pytest.raises(Exception, match="未登记身份证号"):
            visitor.reveal_id_number(s, admin, 2, clock.now(), secret_key=SECRET)
    with rt.db.session() as s:
        log = visitor.reveal_log(s, 1)
        assert [(r.field_name, r.admin_name, r.revealed_at) for r in log] == [
            ("id_number", "刘主任", clock.now()), ("phone", "刘主任", clock.now())]


# --- purge -----------------------------------------------------------------------------------------------


def test_purge_after_retention(school, clock, rt):
    school.say("王老师", f"预约 张三 {PHONE} 今天10:00 送材料")
    school.say("李门卫", f"访客 张三 {PHONE} 送材料")
    school.say("李门卫", "离开 FK1")
    clock.advance(days=100)
    school.say("李门卫", f"访客 李四 {PHONE2} 开会")
    clock.advance(days=80)
    assert "记录 0 条、预约 0 条" in run_job(rt, visitor_jobs.purge)
    clock.advance(days=1)
    assert run_job(rt, visitor_jobs.purge) == "已删除超过180天的访客记录 1 条、预约 1 条"
    with rt.db.session() as s:
        left = s.exec(select(visitor.VisitorEntry)).all()
        assert [e.name for e in left] == ["李四"]
        assert s.exec(select(visitor.VisitorBooking)).all() == []
    assert "记录 1 条" in run_job(rt, visitor_jobs.purge, retention_days=30)
    assert school.say("李门卫", "离开 FK1") == "未找到 FK1"
