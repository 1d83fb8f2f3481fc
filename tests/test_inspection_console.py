"""The console's inspection pages: 巡查记录 with filters and its XLSX, checkpoints add/edit and the label sheet,
certificates (expired in red), the dashboard's panel; leaders read, only admins change."""

from __future__ import annotations

import io
from datetime import datetime, time

import pytest
from openpyxl import load_workbook

from storage import certificates, console_users, inspection
from tests.test_console import csrf_of, signed_in

PASSWORD = "correct-horse-9"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(console_users, "_N", 2**8)


@pytest.fixture
def school(chat, rt, clock):  # type: ignore[no-untyped-def]
    chat.person("刘主任", "admin")
    chat.person("孙校长", "leader")
    chat.person("王门卫", "guard")
    chat.person("李门卫", "guard")
    with rt.db.session() as s:
        console_users.set_password(s, "刘主任", PASSWORD)
        console_users.set_password(s, "孙校长", PASSWORD)
        inspection.import_checkpoints(s, [["XF-101", "教学楼一楼灭火器", "教学楼一楼东", "灭火器"],
                                          ["PD-1", "配电间", "行政楼配电间", "配电间"],
                                          ["XM-1", "校门", "南校门"]], now=clock.now())
        inspection.save_route(s, name="晚间巡查", checkpoint_codes=["XF-101", "PD-1", "XM-1"], start=time(21),
                              end=time(22), roles=["guard"], now=clock.now())
        certificates.save(s, name="刘阿姨", expires_on=datetime(2026, 11, 20).date(), number="JK-9", now=clock.now())
    clock.set(datetime(2026, 12, 1, 21, 5))
    chat.event("王门卫", "SCAN", "cp:1")
    chat.say("王门卫", "正常")
    chat.event("李门卫", "SCAN", "cp:2")
    chat.say("李门卫", "异常 配电柜门锁坏了")
    return chat


def test_ledger_filters_export_and_dashboard(school, client, rt, clock) -> None:  # type: ignore[no-untyped-def]
    signed_in(client, "孙校长")  # a leader reads
    page = client.get("/admin/inspections").text
    assert "XC1" in page and "XC2" in page and "配电柜门锁坏了" in page and "/admin/repairs/BX1" in page
    only = client.get("/admin/inspections", params={"person": "李门卫"}).text
    assert "XC2" in only and "XC1" not in only
    assert "XC1" in client.get("/admin/inspections", params={"result": "正常"}).text
    assert "XC1" not in client.get("/admin/inspections", params={"checkpoint": "2"}).text
    assert "没有符合条件" in client.get("/admin/inspections", params={"from": "2026-12-02"}).text
    r = client.get("/admin/inspections.xlsx", params={"result": "异常"})
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.content))["2026年12月"]
    assert [c.value for c in ws[3]] == ["2026-12-01", "21:05", "配电间（行政楼配电间）", "异常",
                                        "配电柜门锁坏了；已报修 BX1（待派单）", "李门卫"]
    assert ws.max_row == 3
    board = client.get("/admin").text
    assert "今日巡查" in board and "晚间巡查" in board and "已查 2/3" in board and "进行中" in board
    assert "未整改问题：<b class=\"bad\">1</b>" in board
    assert '<b class="expired">刘阿姨 健康证（2026-11-20）</b>' in board
    assert "/admin/checkpoints" in board and "点位" in board
    certs = client.get("/admin/certificates").text
    assert 'class="urgent"' in certs and "已过期 11 天" in certs


def test_admin_adds_and_edits_checkpoints_and_certificates(school, client, rt) -> None:  # type: ignore[no-untyped-def]
    csrf = signed_in(client, "刘主任")
    r = client.post("/admin/checkpoints", data={"csrf": csrf, "code": "jx-301", "name": "教学楼301", "kind": "教室",
                                                "location": "", "items": ""}, follow_redirects=True)
    assert "已添加点位 JX-301 教学楼301" in r.text and "门窗关好" in r.text
    page = client.get("/admin/checkpoints", params={"edit": "4"}).text
    assert "编辑点位 JX-301" in page
    r = client.post("/admin/checkpoints", data={"csrf": csrf_of(page), "id": "4", "code": "JX-301",
                                                "name": "教学楼三楼301", "kind": "教室", "items": "投影正常；门窗关好",
                                                "active": "on"}, follow_redirects=True)
    assert "已保存点位 JX-301 教学楼三楼301" in r.text and "投影正常；门窗关好" in r.text
    r = client.post("/admin/checkpoints", data={"csrf": csrf, "code": "坏 编号", "name": "x"}, follow_redirects=True)
    assert "只能用字母" in r.text
    r = client.post("/admin/certificates", data={"csrf": csrf, "name": "陈师傅", "type": "健康证", "number": "",
                                                 "expires_on": "2027-05-01"}, follow_redirects=True)
    assert "已添加证照：陈师傅 健康证，有效期至 2027-05-01" in r.text
    pdf = client.get("/admin/checkpoints/labels.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_leader_cannot_change(school, client, rt) -> None:  # type: ignore[no-untyped-def]
    csrf = signed_in(client, "孙校长")
    for path in ("/admin/checkpoints", "/admin/certificates"):
        r = client.post(path, data={"csrf": csrf, "code": "X1", "name": "x", "expires_on": "2027-01-01"},
                        follow_redirects=False)
        assert r.status_code == 403
    with rt.db.session() as s:
        assert len(inspection.all_checkpoints(s)) == 3
