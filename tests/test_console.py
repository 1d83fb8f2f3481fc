"""The admin console /admin (SPEC section 9) through the real app: sign-in rules, CSRF, leaders read-only,
the ledgers and their Excel exports, changes through the same services as chat, the ID-reveal log."""

from __future__ import annotations

import io
import re
from datetime import date, datetime
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import select

from storage import console_users, duty, ledger, people
from storage import outbox as ob
from storage.errors import UserError

PASSWORD = "correct-horse-9"
PHONE = "13812341111"


def id_number(base17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return base17 + "10X98765432"[sum(int(d) * w for d, w in zip(base17, weights)) % 11]


ID = id_number("32050119900101123")


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:2000]
    return m.group(1)


def set_password(rt, name: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        console_users.set_password(s, name, password)


def login(client: TestClient, name: str, password: str = PASSWORD, next_: str = "/admin"):  # type: ignore[no-untyped-def]
    page = client.get("/admin/login")
    assert page.status_code == 200
    return client.post("/admin/login", data={"name": name, "password": password, "csrf": csrf_of(page.text),
                                             "next": next_}, follow_redirects=False)


def signed_in(client: TestClient, name: str) -> str:
    """Log in and return the session's CSRF token (from the dashboard's forms)."""
    r = login(client, name)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/admin"
    page = client.get("/admin")
    assert page.status_code == 200
    return csrf_of(page.text)


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):  # type: ignore[no-untyped-def]
    """The real cost (n=2**14) is for servers; tests hash dozens of times. The hash records its own cost."""
    monkeypatch.setattr(console_users, "_N", 2**8)


@pytest.fixture
def school(chat, rt):  # type: ignore[no-untyped-def]
    chat.person("刘主任", "admin")
    chat.person("孙校长", "leader")
    chat.person("王老师", "teacher")
    chat.person("李师傅", "worker")
    chat.person("张师傅", "worker")
    chat.person("李门卫", "guard")
    set_password(rt, "刘主任")
    set_password(rt, "孙校长")
    return chat


def other_client(client: TestClient) -> TestClient:
    return TestClient(client.app, raise_server_exceptions=False)


# --- sign-in and access ---------------------------------------------------------------------------------------

PAGES = ["/admin", "/admin/repairs", "/admin/repairs/BX1", "/admin/visitors", "/admin/leave", "/admin/leave/QJ1",
         "/admin/reminders", "/admin/reminders/TX1", "/admin/duty", "/admin/people", "/admin/blacklist",
         "/admin/outbox", "/admin/export"] + [f"/admin/export/{k}.xlsx" for k in ledger.LEDGERS]
POSTS = ["/admin/repairs/BX1/assign", "/admin/repairs/BX1/cancel", "/admin/visitors/FK1/reveal", "/admin/blacklist",
         "/admin/leave/QJ1/decide", "/admin/reminders", "/admin/reminders/TX1/cancel", "/admin/duty", "/admin/people/invite",
         "/admin/people/1/unbind", "/admin/people/1/reinvite", "/admin/invites/1/revoke", "/admin/outbox/1/retry",
         "/admin/logout"]


def test_no_page_or_export_without_a_session(school, client):
    for path in PAGES:
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/admin/login?next="), path
        assert "xlsx" not in r.headers.get("content-type", "")
    for path in POSTS:
        r = client.post(path, data={"csrf": "x", "worker": "李师傅"}, follow_redirects=False)
        assert r.status_code in (303, 401, 403), path
        assert r.headers.get("location", "/admin/login").startswith("/admin/login"), path


def test_forged_or_expired_cookie_is_no_session(school, client):
    client.cookies.set("houqin_admin", "eyJwIjoxfQ.forged.signature", path="/admin")
    r = client.get("/admin", follow_redirects=False)
    assert r.status_code == 303


def test_admin_logs_in_and_is_sent_back_where_they_were(school, client):
    r = client.get("/admin/repairs?state=待派单", follow_redirects=False)
    target = r.headers["location"]
    page = client.get(target)
    assert "后勤管理后台" in page.text and 'name="next" value="/admin/repairs?state=' in page.text
    r = login(client, "刘主任", next_="/admin/repairs?state=待派单")
    assert r.status_code == 303 and unquote(r.headers["location"]) == "/admin/repairs?state=待派单"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/admin" in cookie
    assert client.get("/admin").status_code == 200


def test_next_never_leaves_the_console(school, client):
    for evil in ("//evil.example/admin", "https://evil.example", "/wechat"):
        r = login(other_client(client), "刘主任", next_=evil)
        assert r.headers["location"] == "/admin"


def test_wrong_password_and_unknown_name_look_alike(school, client):
    a = login(client, "刘主任", "wrong-password")
    b = login(client, "没这个人", "wrong-password")
    assert a.status_code == b.status_code == 401
    assert "姓名或密码错误" in a.text and "姓名或密码错误" in b.text
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_a_teacher_cannot_log_in(school, client, rt):
    with pytest.raises(UserError, match="只有后勤管理员和校领导"):
        set_password(rt, "王老师")
    with rt.db.session() as s:  # even with a hash stored by some other means
        teacher = people.find_people(s, "王老师")[0]
        teacher.password_hash = console_users.hash_password(PASSWORD)
        s.add(teacher)
    r = login(client, "王老师")
    assert r.status_code == 401 and "姓名或密码错误" in r.text
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_losing_the_role_or_a_new_password_ends_the_session(school, client, rt):
    signed_in(client, "孙校长")
    set_password(rt, "孙校长", "another-pass-1")
    assert client.get("/admin", follow_redirects=False).status_code == 303
    assert login(client, "孙校长", "another-pass-1").status_code == 303
    assert client.get("/admin", follow_redirects=False).status_code == 200
    with rt.db.session() as s:
        leader = people.find_people(s, "孙校长")[0]
        s.delete(s.get(people.PersonRole, (leader.id, "leader")))
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_logout_ends_the_session_even_for_a_copied_cookie(school, client):
    csrf = signed_in(client, "刘主任")
    stolen = client.cookies.get("houqin_admin")
    r = client.post("/admin/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    assert client.get("/admin", follow_redirects=False).status_code == 303
    thief = other_client(client)
    thief.cookies.set("houqin_admin", stolen, path="/admin")
    assert thief.get("/admin", follow_redirects=False).status_code == 303


def test_login_attempts_are_rate_limited_per_address_and_name(school, client):
    for _ in range(5):
        assert login(client, "刘主任", "wrong-password").status_code == 401
    r = login(client, "刘主任")  # even the right password, now
    assert r.status_code == 429 and "15 分钟" in r.text
    assert client.get("/admin", follow_redirects=False).status_code == 303
    assert login(client, "孙校长").status_code == 303  # another name from the same address still may


def test_login_form_needs_its_csrf_token(school, client):
    r = client.post("/admin/login", data={"name": "刘主任", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    client.get("/admin/login")
    r = client.post("/admin/login", data={"name": "刘主任", "password": PASSWORD, "csrf": "guess"},
                    follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_csrf_rejected_on_every_change(school, client, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    signed_in(client, "刘主任")
    for token in (None, "", "0" * 64):
        data = {"worker": "李师傅"} | ({"csrf": token} if token is not None else {})
        r = client.post("/admin/repairs/BX1/assign", data=data, follow_redirects=False)
        assert r.status_code == 403 and "安全校验" in r.text
    other = other_client(client)
    other_csrf = signed_in(other, "孙校长")  # a token from another session does not fit this one
    r = client.post("/admin/repairs/BX1/assign", data={"worker": "李师傅", "csrf": other_csrf}, follow_redirects=False)
    assert r.status_code == 403
    with rt.db.session() as s:
        from storage.repair import RepairTicket

        assert s.get(RepairTicket, 1).state == "待派单"


def test_leader_reads_everything_and_changes_nothing(school, client, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    school.say("李门卫", f"访客 张三 {PHONE} 送材料 {ID}")
    csrf = signed_in(client, "孙校长")
    for path in PAGES:
        if path.endswith(("/BX1", "/QJ1", "/TX1")):
            continue
        r = client.get(path)
        assert r.status_code == 200, path
    repairs_page = client.get("/admin/repairs").text
    assert "BX1" in repairs_page and "/assign" not in repairs_page and "校领导（只读）" in repairs_page
    assert "/reveal" not in client.get("/admin/visitors").text
    assert "/people/invite" not in client.get("/admin/people").text
    for path in POSTS[:-1]:
        r = client.post(path, data={"csrf": csrf, "worker": "李师傅", "field": "id_number", "when": "明天8:00",
                                    "text": "x", "name": "新人", "role": "teacher", "number": PHONE},
                        follow_redirects=False)
        assert r.status_code == 403, path
        assert "修改仅限后勤管理员" in r.text
    with rt.db.session() as s:
        from storage.repair import RepairTicket
        from storage.visitor import IdRevealLog

        assert s.get(RepairTicket, 1).state == "待派单"
        assert s.exec(select(IdRevealLog)).all() == []
        assert people.find_people(s, "新人") == []


# --- the pages ------------------------------------------------------------------------------------------------


def test_dashboard_shows_the_day(school, client, rt, clock):
    school.say("王老师", "报修 教学楼301 灯不亮")
    school.say("王老师", "报修 紧急 食堂 水管爆了")
    clock.advance(hours=5)
    school.say("李门卫", f"访客 张三 {PHONE} 送材料")
    with rt.db.session() as s:
        ob.enqueue(s, None, "system", "测试失败消息", now=clock.now(), openid="oX").state = ob.FAILED
    signed_in(client, "刘主任")
    page = client.get("/admin").text
    assert "未完成报修" in page and "BX1" in page and "BX2" in page and "紧急" in page
    assert "已5小时" in page
    assert "张三" in page and "138****1111" in page and PHONE not in page
    assert "发送失败消息" in page and "测试失败消息" in page
    assert "今日值班" in page and "即将提醒" in page and "待审批请假" in page


def test_repairs_list_filters_and_detail_with_history_and_photos(school, client, rt, clock):
    school.say("王老师", "报修 教学楼301 灯不亮")
    clock.advance(days=2)
    school.say("王老师", "报修 紧急 食堂 水管爆了")
    with rt.db.session() as s:
        from storage.repair import RepairPhoto

        s.add(RepairPhoto(ticket_id=1, pic_url="http://mmbiz.example/p1.jpg", created_at=clock.now()))
    signed_in(client, "刘主任")
    page = client.get("/admin/repairs").text
    assert "BX1" in page and "BX2" in page
    only = client.get("/admin/repairs", params={"q": "水管"}).text
    assert "BX2" in only and "教学楼301" not in only
    urgent = client.get("/admin/repairs", params={"flag": "urgent"}).text
    assert "BX2" in urgent and "教学楼301" not in urgent
    day1 = client.get("/admin/repairs", params={"from": "2026-12-01", "to": "2026-12-01"}).text
    assert "教学楼301" in day1 and "水管爆了" not in day1
    assert "共 1 条" in client.get("/admin/repairs", params={"q": "bx2"}).text
    detail = client.get("/admin/repairs/BX1").text
    assert "处理记录" in detail and "报修" in detail and "王老师" in detail
    assert 'src="http://mmbiz.example/p1.jpg"' in detail and 'referrerpolicy="no-referrer"' in detail
    assert client.get("/admin/repairs/BX99").status_code == 404
    assert client.get("/admin/repairs", params={"from": "昨天"}).status_code == 400


def test_assign_from_the_console_is_the_chat_assignment(school, client, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    csrf = signed_in(client, "刘主任")
    r = client.post("/admin/repairs/BX1/assign", data={"worker": "李师傅", "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/repairs/BX1"
    page = client.get(r.headers["location"]).text
    assert "已将 BX1 派给李师傅" in page
    assert "已派单" in page and "派给李师傅" in page and "刘主任" in page  # the history says who
    assert "BX1" in school.last_push("李师傅")
    assert "李师傅" in school.last_push("王老师")
    assert "已将 BX1" not in client.get("/admin/repairs/BX1").text  # the message shows once
    # The same rules: a worker name that is not a worker is refused with the chat's wording.
    r = client.post("/admin/repairs/BX1/assign", data={"worker": "王老师", "csrf": csrf})
    assert "没有名为「王老师」的维修工" in r.text
    r = client.post("/admin/repairs/BX1/cancel", data={"csrf": csrf, "reason": "重复报修"})
    assert "已取消 BX1" in r.text
    with rt.db.session() as s:
        from storage.repair import RepairTicket

        assert s.get(RepairTicket, 1).state == "已取消"


def test_visitors_are_masked_and_an_admin_reveal_is_logged(school, client, rt, clock):
    school.say("李门卫", f"访客 张三 {PHONE} 送材料 {ID}")
    csrf = signed_in(client, "刘主任")
    page = client.get("/admin/visitors").text
    assert "FK1" in page and "138****1111" in page and "3205**********" in page
    assert PHONE not in page and ID not in page
    assert "FK1" in client.get("/admin/visitors", params={"q": PHONE}).text  # a full phone finds by keyed hash
    assert "共 0 条" in client.get("/admin/visitors", params={"q": "13999999999"}).text
    clock.advance(minutes=7)
    r = client.post("/admin/visitors/FK1/reveal", data={"csrf": csrf, "field": "id_number"})
    assert r.status_code == 200 and ID in r.text and "本次查看已记录" in r.text
    assert r.headers["cache-control"] == "no-store"
    with rt.db.session() as s:
        from storage.visitor import IdRevealLog

        logs = s.exec(select(IdRevealLog)).all()
    assert [(x.entry_id, x.field_name, x.admin_name, x.revealed_at) for x in logs] == [
        (1, "id_number", "刘主任", datetime(2026, 12, 1, 9, 7))]
    page = client.get("/admin/visitors").text
    assert "完整号码查看记录" in page and "2026-12-01 09:07" in page and ID not in page
    r = client.post("/admin/visitors/FK1/reveal", data={"field": "id_number"})
    assert r.status_code == 403  # no CSRF token, no reveal
    with rt.db.session() as s:
        assert len(s.exec(select(IdRevealLog)).all()) == 1


def test_leave_slips_with_gate_times(school, client, rt, clock):
    school.students(("2024001", "李明", "七(3)班"))
    school.person("陈老师", "teacher", klass="七(3)班")
    school.say("陈老师", "请假 李明 今天10:00-12:00 看病")
    clock.set(datetime(2026, 12, 1, 9, 45))
    school.say("李门卫", "出校 QJ1")
    clock.set(datetime(2026, 12, 1, 11, 30))
    school.say("李门卫", "返校 QJ1")
    signed_in(client, "刘主任")
    page = client.get("/admin/leave").text
    assert "QJ1" in page and "李明" in page and "七(3)班" in page
    assert "2026-12-01 09:45" in page and "2026-12-01 11:30" in page and "已返校" in page
    assert "QJ1" in client.get("/admin/leave", params={"q": "2024001"}).text
    assert "共 0 条" in client.get("/admin/leave", params={"state": "待审批"}).text
    detail = client.get("/admin/leave/QJ1").text
    assert "看病" in detail and "陈老师" in detail and "出校" in detail


def test_people_invite_bind_and_revoke(school, client, rt):
    csrf = signed_in(client, "刘主任")
    r = client.post("/admin/people/invite", data={"csrf": csrf, "name": "赵老师", "role": ["teacher"]})
    m = re.search(r"邀请码 ([A-Z0-9]{6})", r.text)
    assert m, r.text
    assert "绑定" in school.wx.text("o-new-teacher", f"绑定 {m.group(1)}")
    with rt.db.session() as s:
        zhao = people.find_people(s, "赵老师")[0]
    assert zhao.openid == "o-new-teacher"
    page = client.get("/admin/people").text
    assert "赵老师" in page and "已使用" in page
    r = client.post(f"/admin/people/{zhao.id}/unbind", data={"csrf": csrf})
    assert "已解除 赵老师 的微信绑定" in r.text
    with rt.db.session() as s:
        assert s.get(people.Person, zhao.id).openid is None
    assert "绑定" in school.wx.text("o-new-teacher", "报修 教学楼301 灯不亮")  # no longer trusted
    r = client.post(f"/admin/people/{zhao.id}/reinvite", data={"csrf": csrf})
    code = re.search(r"新邀请码 ([A-Z0-9]{6})", r.text).group(1)  # type: ignore[union-attr]
    with rt.db.session() as s:
        inv = s.exec(select(people.Invite).where(people.Invite.code == code)).one()
    r = client.post(f"/admin/invites/{inv.id}/revoke", data={"csrf": csrf})
    assert f"已作废邀请码 {code}" in r.text
    assert "邀请码无效" in school.wx.text("o-other", f"绑定 {code}")
    bad = client.post("/admin/people/invite", data={"csrf": csrf, "name": "无角色"})
    assert "至少需要一个角色" in bad.text


def test_outbox_failed_row_is_retried(school, client, rt, clock):
    with rt.db.session() as s:
        row = ob.enqueue(s, None, "system", "需要重发的消息", now=clock.now(), openid="oX")
        row.state, row.attempts, row.errcode, row.last_error = ob.FAILED, 8, 45015, "超出48小时"
        s.flush()
        sent = ob.enqueue(s, None, "system", "已发送的消息", now=clock.now(), openid="oY")
        sent.state = ob.SENT
    csrf = signed_in(client, "刘主任")
    page = client.get("/admin/outbox", params={"state": "failed"}).text
    assert "需要重发的消息" in page and "45015" in page and "已发送的消息" not in page
    clock.advance(minutes=3)
    r = client.post("/admin/outbox/1/retry", data={"csrf": csrf, "back": "/admin/outbox?state=failed"},
                    follow_redirects=False)
    assert r.headers["location"] == "/admin/outbox?state=failed"
    with rt.db.session() as s:
        row = s.get(ob.OutboxMessage, 1)
        assert (row.state, row.attempts, row.next_attempt_at) == (ob.PENDING, 0, clock.now())
    r = client.post("/admin/outbox/2/retry", data={"csrf": csrf})
    assert "只有失败的消息可以重发" in r.text


def test_reminder_from_the_console_goes_through_the_reminder_service(school, client, rt):
    csrf = signed_in(client, "刘主任")
    r = client.post("/admin/reminders", data={"csrf": csrf, "when": "每周一 8:00", "text": "检查消防器材",
                                              "targets": "@门卫 @维修工", "receipt": "1"})
    assert "已设置提醒 TX1" in r.text, r.text
    with rt.db.session() as s:
        from storage.reminder import Reminder

        rem = s.get(Reminder, 1)
    assert (rem.kind, rem.needs_receipt, rem.creator_id is not None) == ("weekly", True, True)
    assert rem.next_due_at == datetime(2026, 12, 7, 8, 0)
    page = client.get("/admin/reminders").text
    assert "检查消防器材" in page and "@门卫 @维修工" in page
    detail = client.get("/admin/reminders/TX1").text
    assert "还没有发送过" in detail
    bad = client.post("/admin/reminders", data={"csrf": csrf, "when": "昨天8:00", "text": "x"})
    assert "TX2" not in bad.text and "flash error" in bad.text
    r = client.post("/admin/reminders/TX1/cancel", data={"csrf": csrf})
    assert "已取消提醒 TX1" in r.text


def test_reminder_deliveries_and_receipts(school, client, rt, clock):
    school.say("刘主任", "提醒 10分钟后 检查灭火器 @门卫 需回执")
    from storage import reminder as rem

    clock.advance(minutes=10)
    with rt.db.session() as s:
        rem.fire_due(s, clock.now())
    school.say("李门卫", "收到 TX1")
    signed_in(client, "刘主任")
    detail = client.get("/admin/reminders/TX1").text
    assert "已发送" in detail and "李门卫" in detail and "回执 1/1" in detail
    wb = load_workbook(io.BytesIO(client.get("/admin/export/reminders.xlsx").content))
    ws = wb.active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:6] == ("编号", "内容", "对象", "应提醒时间", "发送时间", "发送结果")
    assert rows[1][0] == "TX1" and rows[1][1] == "检查灭火器" and rows[1][3] == datetime(2026, 12, 1, 9, 10)
    assert rows[1][8] == 1 and rows[1][9] == 0


# --- exports --------------------------------------------------------------------------------------------------


def xlsx_rows(response) -> list[tuple]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "attachment" in response.headers["content-disposition"]
    wb = load_workbook(io.BytesIO(response.content))
    return list(wb.active.iter_rows(values_only=True))


def test_repairs_export_for_a_date_range(school, client, clock):
    school.say("王老师", "报修 教学楼301 灯不亮")
    clock.advance(days=1)
    school.say("王老师", "报修 =1+1 公式注入")
    clock.advance(days=1)
    school.say("王老师", "报修 食堂 水管爆了")
    csrf = signed_in(client, "刘主任")
    client.post("/admin/repairs/BX2/assign", data={"worker": "张师傅", "csrf": csrf})
    rows = xlsx_rows(client.get("/admin/export/repairs.xlsx", params={"from": "2026-12-02", "to": "2026-12-03"}))
    assert rows[0][:8] == ("编号", "报修时间", "报修人", "地点", "描述", "类别", "紧急", "状态")
    assert [r[0] for r in rows[1:]] == ["BX2", "BX3"]
    bx2 = rows[1]
    assert bx2[1] == datetime(2026, 12, 2, 9, 0) and bx2[2] == "王老师" and bx2[3] == "=1+1"  # text, not a formula
    assert bx2[7] == "已派单" and bx2[8] == "张师傅" and bx2[9] == datetime(2026, 12, 3, 9, 0)
    everything = xlsx_rows(client.get("/admin/export/repairs.xlsx"))
    assert len(everything) == 4
    filtered = xlsx_rows(client.get("/admin/export/repairs.xlsx", params={"q": "水管"}))
    assert [r[0] for r in filtered[1:]] == ["BX3"]


def test_visitors_export_masks_phone_and_id(school, client):
    school.say("李门卫", f"访客 张三 {PHONE} 送材料 {ID} 苏E12345")
    signed_in(client, "刘主任")
    response = client.get("/admin/export/visitors.xlsx", params={"from": "2026-12-01", "to": "2026-12-01"})
    rows = xlsx_rows(response)
    assert rows[0][:4] == ("编号", "姓名", "手机（脱敏）", "身份证号（脱敏）")
    assert rows[1][:4] == ("FK1", "张三", "138****1111", "3205**********" + ID[-4:])
    assert rows[1][9] == datetime(2026, 12, 1, 9, 0) and rows[1][10] in ("", None)
    text = repr(rows)
    assert PHONE not in text and ID not in text and ID[:15] not in text


@pytest.mark.parametrize("key", sorted(ledger.LEDGERS))
def test_every_ledger_exports_with_chinese_headers(school, client, key):
    school.say("王老师", "报修 教学楼301 灯不亮")
    signed_in(client, "孙校长")  # reading, exports included, is for leaders too
    rows = xlsx_rows(client.get(f"/admin/export/{key}.xlsx", params={"from": "2026-11-01", "to": "2026-12-31"}))
    assert rows[0] and all(re.search(r"[\u4e00-\u9fff]", h) for h in rows[0] if h)


def test_export_dates_are_excel_dates_with_a_number_format(school, client):
    school.say("王老师", "报修 教学楼301 灯不亮")
    signed_in(client, "刘主任")
    response = client.get("/admin/export/repairs.xlsx")
    ws = load_workbook(io.BytesIO(response.content)).active
    created = ws["B2"]
    assert created.is_date and created.value == datetime(2026, 12, 1, 9, 0)
    assert created.number_format == "yyyy-mm-dd hh:mm"
    assert ws["J2"].value in ("", None)  # not assigned yet: blank, not a zero date


def test_export_page_defaults_cover_what_each_page_shows(school, client, rt, clock):  # type: ignore[no-untyped-def]
    with rt.db.session() as s:  # the coming rota: the December weekends from today (12-01, a Tuesday)
        duty.generate(s, date(2026, 12, 1), date(2026, 12, 31), now=clock.now())
    signed_in(client, "刘主任")
    page = client.get("/admin/duty").text
    assert "12月5日" in page or "12-05" in page
    html = client.get("/admin/export").text
    duty_form = html.split('action="/admin/export/duty.xlsx"', 1)[1].split("</form>", 1)[0]
    start = re.search(r'name="from" value="([0-9-]+)"', duty_form).group(1)  # type: ignore[union-attr]
    end = re.search(r'name="to" value="([0-9-]+)"', duty_form).group(1)  # type: ignore[union-attr]
    assert (start, end) == ("2026-12-01", "2026-12-27")  # the last Sunday on the rota
    rows = xlsx_rows(client.get("/admin/export/duty.xlsx", params={"from": start, "to": end}))
    assert len(rows) - 1 >= 8  # every day the page lists, not a header alone
    repairs_form = html.split('action="/admin/export/repairs.xlsx"', 1)[1].split("</form>", 1)[0]
    assert 'name="from" value="2026-12-01"' in repairs_form and 'name="to" value="2026-12-01"' in repairs_form


def test_export_of_an_unknown_ledger_or_bad_dates(school, client):
    signed_in(client, "刘主任")
    assert client.get("/admin/export/secrets.xlsx").status_code == 404
    r = client.get("/admin/export/repairs.xlsx", params={"from": "2026-13-01"})
    assert r.status_code == 400 and "日期格式不对" in r.text


# --- the command line -----------------------------------------------------------------------------------------


def test_cli_sets_a_console_password(school, client, database_url, monkeypatch):
    from typer.testing import CliRunner

    from bot import cli

    cli._load_plugins() if "admin" not in {g.name for g in cli.app.registered_groups} else None
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    r = runner.invoke(cli.app, ["admin", "password", "刘主任", "--password", "a-new-password"])
    assert r.exit_code == 0, r.output
    assert "已设置 刘主任 的后台密码" in r.output
    assert login(client, "刘主任", "a-new-password").status_code == 303
    r = runner.invoke(cli.app, ["admin", "password", "王老师", "--password", "a-new-password"])
    assert r.exit_code == 1 and "只有后勤管理员和校领导" in r.output
    r = runner.invoke(cli.app, ["admin", "password", "刘主任", "--password", "short"])
    assert r.exit_code == 1 and "至少 8 位" in r.output
    r = runner.invoke(cli.app, ["admin", "password", "孙校长"], input="prompted-pass\nprompted-pass\n")
    assert r.exit_code == 0, r.output
    assert login(other_client(client), "孙校长", "prompted-pass").status_code == 303


def test_password_hash_is_a_salted_kdf():
    a, b = console_users.hash_password("same-password"), console_users.hash_password("same-password")
    assert a != b and a.startswith("scrypt$256$8$1$") and "same-password" not in a
    assert console_users.verify_password("pw-at-full-cost", console_users.hash_password("pw-at-full-cost", n=2**14))
    assert console_users.verify_password("same-password", a)
    assert not console_users.verify_password("other-password", a)
    assert not console_users.verify_password("same-password", "garbage")
    assert not console_users.verify_password("same-password", None)


def test_static_stylesheet(client):
    assert client.get("/admin/static/console.css").status_code == 200
    assert client.get("/admin/static/..%2Fconsole.py").status_code == 404


def test_phone_numbers_never_reach_a_page_unmasked(school, client, clock):
    school.say("李门卫", f"访客 张三 {PHONE} 送材料 {ID}")
    signed_in(client, "刘主任")
    for path in ("/admin", "/admin/visitors", "/admin/visitors?flag=in", "/admin/outbox", "/admin/blacklist"):
        text = client.get(path).text
        assert PHONE not in text and ID not in text, path


def test_blacklist_add_from_the_console(school, client, rt):
    csrf = signed_in(client, "刘主任")
    r = client.post("/admin/blacklist", data={"csrf": csrf, "number": PHONE, "reason": "曾闹事"})
    assert "已加入黑名单：138****1111" in r.text
    page = client.get("/admin/blacklist").text
    assert "曾闹事" in page and "刘主任" in page and PHONE not in page
    reply = school.say("李门卫", f"访客 张三 {PHONE} 送材料")
    assert reply.startswith("⚠ 注意：此访客在黑名单中（曾闹事），已通知管理员") and "已登记访客 FK1" in reply
    alert = school.last_push("刘主任")
    assert "黑名单访客到校：FK1 张三（138****1111）" in alert and "黑名单原因：曾闹事" in alert


def test_times_are_shown_as_stored_school_local(school, client, clock):
    """Times shown are the naive school-local times stored, not shifted by a time zone."""
    school.say("王老师", "报修 教学楼301 灯不亮")
    signed_in(client, "刘主任")
    assert "2026-12-01 09:00" in client.get("/admin/repairs").text


def test_duty_rota_and_a_change_from_the_console(school, client, rt, clock):
    from storage import duty

    school.person("钱校长", "leader")
    with rt.db.session() as s:
        duty.assign(s, clock.now().date(), people.find_people(s, "孙校长")[0], now=clock.now(), source="import")
    csrf = signed_in(client, "刘主任")
    page = client.get("/admin/duty").text
    assert "孙校长" in page and "今天" in page
    r = client.post("/admin/duty", data={"csrf": csrf, "day": "2026-12-01", "leader": "钱校长"})
    assert "孙校长 → 钱校长" in r.text
    assert "改由您担任节假日行政值日" in school.last_push("钱校长")
    r = client.post("/admin/duty", data={"csrf": csrf, "day": "2026-12-05", "leader": "王老师"})
    assert "不是校领导" in r.text
    rows = xlsx_rows(client.get("/admin/export/duty.xlsx", params={"from": "2026-12-01", "to": "2026-12-31"}))
    assert rows[0] == ("日期", "星期", "值班领导", "来源", "更新时间")
    assert rows[1][:4] == (datetime(2026, 12, 1), "周二", "钱校长", "换班")


def test_duty_page_marks_provisional_days(school, client, rt, clock):  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        duty.generate(s, date(2026, 12, 26), date(2027, 1, 3), now=clock.now(), provisional=True)
    signed_in(client, "刘主任")
    page = client.get("/admin/duty").text
    assert page.count(">推算</span>") == 3  # 2027-01-01 to 01-03; the December weekend is official
    assert "暂按法定假日推算，待国务院公布后自动更新" in page and "只到 2026 年" in page


def test_favicon_is_served(school, client):  # type: ignore[no-untyped-def]
    r = client.get("/favicon.ico", follow_redirects=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg")
    signed_in(client, "刘主任")
    assert '<link rel="icon" href="/admin/static/favicon.svg"' in client.get("/admin").text
