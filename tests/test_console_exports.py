"""The console's ledger exports (台账): not only Chinese headers, but the rows a school would check —
every value in its column, numbers masked, times as stored (school-local)."""

from __future__ import annotations

from datetime import datetime

from storage import people
from tests.test_console import PHONE, cheap_kdf, id_number, school, signed_in, xlsx_rows  # noqa: F401 - fixtures

ID = id_number("32050119900101123")


def sheet(client, key: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    rows = xlsx_rows(client.get(f"/admin/export/{key}.xlsx", params={"from": "2026-11-01", "to": "2026-12-31"}))
    header, *data = rows
    return [dict(zip(header, row, strict=True)) for row in data]


def test_leave_outbox_people_and_blacklist_exports_hold_the_records(school, client, rt, clock):  # type: ignore[no-untyped-def]  # noqa: F811
    school.students(("2024001", "李明", "七(3)班"))
    school.person("陈老师", "teacher", klass="七(3)班")
    school.person("李爸爸", "parent", students=["2024001"])
    school.person("赵师傅", "worker", categories=["电", "水"])
    with rt.db.session() as s:
        _, invite = people.invite(s, "新老师", ["teacher"], now=clock.now())
        code = invite.code
    school.say("陈老师", "请假 李明 今天10:00-12:00 看病")
    clock.set(datetime(2026, 12, 1, 9, 45))
    school.say("李门卫", "出校 QJ1")
    school.deliver()
    csrf = signed_in(client, "刘主任")
    client.post("/admin/blacklist", data={"csrf": csrf, "number": PHONE, "reason": "曾闹事"})
    client.post("/admin/blacklist", data={"csrf": csrf, "number": ID, "reason": "冒用证件"})

    assert sheet(client, "leave") == [{
        "编号": "QJ1", "学生": "李明", "学号": "2024001", "班级": "七(3)班", "开始时间": datetime(2026, 12, 1, 10, 0),
        "结束时间": datetime(2026, 12, 1, 12, 0), "事由": "看病", "申请人": "陈老师", "申请时间": datetime(2026, 12, 1, 9, 0),
        "状态": "已出校", "审批人": "陈老师", "审批时间": datetime(2026, 12, 1, 9, 0), "代批": "否", "驳回理由": None,
        "出校时间": datetime(2026, 12, 1, 9, 45), "返校时间": None, "需返校": "是", "门岗状态": "已出校 09:45·未返校"}]

    outbox = sheet(client, "outbox")
    assert [(r["编号"], r["创建时间"], r["接收人"], r["类型"], r["状态"], r["渠道"], r["尝试次数"], r["发送时间"])
            for r in outbox] == [
        (1, datetime(2026, 12, 1, 9, 0), "李爸爸", "请假", "已发送", "custom", 1, datetime(2026, 12, 1, 9, 45)),
        (2, datetime(2026, 12, 1, 9, 45), "李爸爸", "请假", "已发送", "custom", 1, datetime(2026, 12, 1, 9, 45)),
        (3, datetime(2026, 12, 1, 9, 45), "陈老师", "请假", "已发送", "custom", 1, datetime(2026, 12, 1, 9, 45))]
    assert str(outbox[0]["内容"]).startswith("您的孩子李明（七(3)班）的请假已批准（班主任 陈老师）：QJ1")
    assert outbox[1]["内容"] == outbox[2]["内容"] == "李明（七(3)班） 已于 12月1日 09:45 出校（QJ1，门卫 李门卫），请假至 12月1日 12:00。"

    roster = {r["姓名"]: r for r in sheet(client, "people")}
    assert list(roster) == ["刘主任", "孙校长", "王老师", "李师傅", "张师傅", "李门卫", "陈老师", "李爸爸", "赵师傅", "新老师"]
    assert (roster["陈老师"]["角色"], roster["陈老师"]["班主任班级"]) == ("教师、班主任", "七(3)班")
    assert (roster["李爸爸"]["角色"], roster["李爸爸"]["子女"]) == ("家长", "李明（2024001）")
    assert (roster["赵师傅"]["角色"], roster["赵师傅"]["维修类别"]) == ("维修工", "电,水")
    assert (roster["刘主任"]["绑定状态"], roster["刘主任"]["绑定时间"]) == ("已绑定", datetime(2026, 12, 1, 9, 0))
    new = roster["新老师"]
    assert (new["绑定状态"], new["绑定时间"], new["邀请码状态"], new["邀请码有效期至"]) == (
        "未绑定", None, "有效", datetime(2026, 12, 8, 9, 0))
    assert code not in str(new)  # a usable invite code is a credential: not in a spreadsheet

    blacklist = sheet(client, "blacklist")
    assert sorted((r["类型"], r["号码（脱敏）"], r["原因"], r["添加人"], r["添加时间"]) for r in blacklist) == [
        ("手机", "138****1111", "曾闹事", "刘主任", datetime(2026, 12, 1, 9, 45)),
        ("身份证", ID[:4] + "*" * 10 + ID[-4:], "冒用证件", "刘主任", datetime(2026, 12, 1, 9, 45))]
    assert PHONE not in str(blacklist) and ID not in str(blacklist)
