"""Repairs 报修 (BX) end to end: through the signed webhook, with the pushes the fake WeChat API received."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from jobs import repair as repair_jobs
from storage import repair
from storage.kernel import fmt_duration
from storage.repair import RepairHistory, RepairPhoto, RepairTicket
from tests.school import openid_for


@pytest.fixture
def school(chat):  # type: ignore[no-untyped-def]
    chat.person("王老师", "teacher")
    chat.person("陈老师", "teacher")
    chat.person("赵主任", "admin")
    chat.person("孙校长", "leader")
    chat.person("李师傅", "worker", categories=["电"])
    chat.person("周师傅", "worker", categories=["水"])
    return chat


def ticket(rt, n: int) -> RepairTicket:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        t = s.get(RepairTicket, n)
        assert t is not None
        return t


def count_rows(rt, model) -> int:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return len(s.exec(select(model)).all())


def run_escalation(rt, clock) -> str | None:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return repair_jobs.escalate(s, clock.now())


# --- reporting ------------------------------------------------------------------------------------------


def test_one_liner_is_categorised_auto_assigned_and_the_worker_told(school, rt):
    reply = school.say("王老师", "报修 教学楼301 灯不亮")
    assert "BX1" in reply and "已派单" in reply and "李师傅" in reply and "类别：电" in reply
    push = school.last_push("李师傅")
    assert "BX1" in push and "教学楼301" in push and "接单 BX1" in push
    assert school.pushes("周师傅") == [] and school.pushes("赵主任") == []
    assert school.pushes("王老师") == []  # the reporter has the reply; no duplicate push
    t = ticket(rt, 1)
    assert (t.state, t.category, t.urgent) == ("已派单", "电", False)


def test_no_matching_worker_waits_for_the_admins(school, rt):
    reply = school.say("陈老师", "报修：图书馆 三楼电脑无法开机")  # colon after the word, 电脑 is 信息化 not 电
    assert "BX1" in reply and "待派单" in reply and "信息化" in reply
    push = school.last_push("赵主任")
    assert "BX1" in push and "派单 BX1" in push
    assert school.pushes("李师傅") == []
    assert ticket(rt, 1).state == "待派单"


def test_urgent_and_full_width_input(school, rt):
    reply = school.say("王老师", "报修　紧急，实验楼２０１，水管爆裂　到处是水。")
    assert "BX1【紧急】" in reply and "周师傅" in reply
    t = ticket(rt, 1)
    assert t.urgent and t.place == "实验楼201" and t.description == "水管爆裂 到处是水"
    assert "【紧急】" in school.last_push("周师傅")
    assert "紧急：是" in school.say("王老师", "查询 BX1")


def test_report_needs_a_description_and_staff(school, chat, rt):
    assert "请写上故障描述" in school.say("王老师", "报修 教学楼301")
    chat.students(("2024001", "李明", "七(3)班"))
    chat.person("李爸爸", "parent", students=["2024001"])
    assert school.say("李爸爸", "报修 教学楼301 灯不亮").startswith("无权限")
    assert "没有进行中的对话" in school.say("李爸爸", "取消")  # 取消 alone still gets a plain answer
    chat.person("钱师傅", "guard")
    assert "BX1" in school.say("钱师傅", "报修 门卫室 插座没电")
    assert ticket(rt, 1).category == "电"  # 门卫室 names a place, not a door fault
    assert count_rows(rt, RepairTicket) == 1


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("教学楼301 灯不亮", "电"),
        ("三楼女厕所 马桶堵了", "水"),
        ("初二(1)班 窗户玻璃碎了", "门窗"),
        ("办公室 柜门掉了", "家具"),
        ("多媒体教室 投影仪不亮", "信息化"),
        ("操场 跑道有个坑", "其他"),
        ("行政楼 WiFi连不上", "信息化"),
    ],
)
def test_category_keyword_table(text, category):
    assert repair.guess_category(text) == category


# --- the guided dialog ----------------------------------------------------------------------------------


def test_dialog_with_photos(school, rt):
    assert "地点" in school.say("王老师", "报修")
    assert "描述" in school.say("王老师", "实验楼二楼")
    assert "照片" in school.say("王老师", "水龙头关不上，一直流水")
    assert "第1张" in school.wx.image(openid_for("王老师"), media_id="m-1", pic_url="http://mmbiz.example/1.jpg")
    assert "第2张" in school.wx.image(openid_for("王老师"), media_id="m-2", pic_url="http://mmbiz.example/2.jpg")
    assert "请发送现场照片" in school.say("王老师", "还有别的吗")  # not a photo and not 完成: ask again
    reply = school.say("王老师", "完成")  # 完成 is dialog input here, not the worker's 完成 BX…
    assert "BX1" in reply and "照片2张" in reply and "周师傅" in reply
    with rt.db.session() as s:
        photos = s.exec(select(RepairPhoto).order_by(RepairPhoto.id)).all()
        assert [(p.ticket_id, p.media_id, p.pic_url) for p in photos] == [
            (1, "m-1", "http://mmbiz.example/1.jpg"), (1, "m-2", "http://mmbiz.example/2.jpg")]
    t = ticket(rt, 1)
    assert (t.place, t.description, t.category) == ("实验楼二楼", "水龙头关不上,一直流水", "水")
    assert "照片：2张" in school.say("王老师", "查询 BX1")
    assert "BX1" in school.last_push("周师傅")
    assert "没有听懂" in school.say("王老师", "实验楼")  # the dialog is over


def test_dialog_skip_photos_and_urgent(school, rt):
    school.say("王老师", "报修 紧急")
    school.say("王老师", "行政楼")
    school.say("王老师", "断电了")
    reply = school.say("王老师", "跳过")
    assert "BX1【紧急】" in reply and "李师傅" in reply
    assert ticket(rt, 1).urgent
    assert count_rows(rt, RepairPhoto) == 0


def test_dialog_by_voice(school, rt):
    school.say("王老师", "报修")
    school.wx.voice(openid_for("王老师"), "行政楼一楼")  # WeChat's speech recognition is handled as text
    school.wx.voice(openid_for("王老师"), "插座冒火花")
    assert "BX1" in school.wx.voice(openid_for("王老师"), "跳过")
    t = ticket(rt, 1)
    assert (t.place, t.description, t.category) == ("行政楼一楼", "插座冒火花", "电")


def test_dialog_refuses_images_before_the_photo_step(school, rt):
    school.say("王老师", "报修")
    assert "地点" in school.image("王老师")
    assert "描述" in school.say("王老师", "教学楼301")
    assert "描述" in school.image("王老师")
    assert count_rows(rt, RepairTicket) == 0


def test_dialog_cancel(school, rt):
    school.say("王老师", "报修")
    school.say("王老师", "教学楼301")
    assert "已取消" in school.say("王老师", "取消")
    assert count_rows(rt, RepairTicket) == 0
    assert "报修地点" in school.say("王老师", "灯不亮")  # a fault without a place: asked where (a new dialog)
    assert "已取消" in school.say("王老师", "取消")
    # 取消 with nothing going on explains how to cancel a ticket
    assert "取消 BX12" in school.say("王老师", "取消")


def test_dialog_expires(school, rt, clock):
    school.say("王老师", "报修")
    school.say("王老师", "教学楼301")
    clock.advance(minutes=10, seconds=1)  # the KV store's expiries follow the frozen clock (both sides: test_time_windows)
    assert "报修地点" in school.say("王老师", "灯不亮")  # a new question, not the old dialog's next step
    assert "跳过" not in school.say("王老师", "帮助")  # no dialog swallowing commands
    assert count_rows(rt, RepairTicket) == 0


def test_image_outside_a_dialog_points_to_the_dialog(school):
    assert "报修" in school.image("王老师")


# --- the lifecycle --------------------------------------------------------------------------------------


def test_full_lifecycle_with_pushes_and_history(school, rt, clock):
    school.say("王老师", "报修 图书馆 借阅台电脑坏了")  # 信息化: nobody matches → 待派单
    assert "派单 BX1" in school.last_push("赵主任")
    assert "BX1" in school.say("赵主任", "待派单")

    reply = school.say("赵主任", "派单 BX1 李师傅")
    assert "已将 BX1" in reply and "李师傅" in reply
    assert "接单 BX1" in school.last_push("李师傅")
    assert "已派给李师傅" in school.last_push("王老师")
    assert "BX1" in school.say("李师傅", "我的任务")
    assert "目前没有待派单" in school.say("赵主任", "待派单")

    clock.advance(minutes=20)
    assert "维修中" in school.say("李师傅", "接单 bx1")
    assert "李师傅已接单" in school.last_push("王老师")

    clock.advance(hours=1, minutes=10)
    assert "已完成" in school.say("李师傅", "完成 BX1 更换了主机电源")
    push = school.last_push("王老师")
    assert "评价 BX1 5" in push and "更换了主机电源" in push
    assert "没有维修任务" in school.say("李师傅", "我的任务")

    assert "已评价" in school.say("王老师", "评价 BX1 4 修得很及时")
    assert "4分" in school.last_push("李师傅") and "修得很及时" in school.last_push("李师傅")

    details = school.say("王老师", "查询 BX1")
    for expected in ("地点：图书馆", "描述：借阅台电脑坏了", "类别：信息化", "紧急：否", "状态：已评价", "维修工：李师傅",
                     "照片：0张", "维修说明：更换了主机电源", "评价：4分", "王老师 报修", "赵主任 派单→已派单",
                     "李师傅 接单→维修中", "李师傅 完成→已完成", "王老师 评价→已评价"):
        assert expected in details, expected
    with rt.db.session() as s:
        h = s.exec(select(RepairHistory).order_by(RepairHistory.id)).all()
        assert [(x.action, x.from_state, x.to_state) for x in h] == [
            ("报修", None, "待派单"), ("派单", "待派单", "已派单"), ("接单", "已派单", "维修中"),
            ("完成", "维修中", "已完成"), ("评价", "已完成", "已评价")]
        assert [x.at for x in h][-2] == datetime(2026, 12, 1, 10, 30)
    assert "已评价" in school.say("王老师", "我的报修")


def test_record_numbers_with_or_without_prefix(school, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    assert "维修中" in school.say("李师傅", "接单 1")
    assert "编号格式不对" in school.say("李师傅", "完成 QJ1")
    assert "完成 BX1" in school.say("李师傅", "完成")  # one job: restated, not done on a guess
    assert "已完成" in school.say("李师傅", "完成 Bx1")


# --- illegal transitions: a clear reply naming the state, and nothing changes ---------------------------


def _refused(rt, school, who: str, text: str) -> str:  # type: ignore[no-untyped-def]
    """`who` says `text`: the reply, after checking that no history row and no push came of it."""
    names = ("王老师", "李师傅", "周师傅", "赵主任")
    rows, pushes = count_rows(rt, RepairHistory), {n: len(school.pushes(n)) for n in names}
    reply = school.say(who, text)
    assert count_rows(rt, RepairHistory) == rows
    for name, n in pushes.items():
        assert len(school.pushes(name)) == n, name
    return reply


def test_finish_before_take(school, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    reply = _refused(rt, school, "李师傅", "完成 BX1")
    assert "当前状态为「已派单」" in reply and "接单 BX1" in reply
    assert ticket(rt, 1).state == "已派单"


def test_rate_before_finish(school, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    school.say("李师傅", "接单 BX1")
    reply = _refused(rt, school, "王老师", "评价 BX1 5")
    assert "当前状态为「维修中」" in reply and "不能评价" in reply
    assert ticket(rt, 1).rating is None


def test_take_a_ticket_assigned_to_someone_else(school, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")  # auto-assigned to 李师傅
    reply = _refused(rt, school, "周师傅", "接单 BX1")
    assert reply == "未找到 BX1"  # someone else's job: neither its state nor its worker is told (issue 13)
    t = ticket(rt, 1)
    assert (t.state, t.assignee_id) == ("已派单", repair_person_id(rt, "李师傅"))
    # nor finish or give back someone else's job
    school.say("李师傅", "接单 BX1")
    assert school.say("周师傅", "完成 BX1") == "未找到 BX1"
    assert school.say("周师傅", "退单 BX1 太忙") == "未找到 BX1"
    assert ticket(rt, 1).state == "维修中"


def test_cancel_after_finish(school, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    school.say("李师傅", "接单 BX1")
    school.say("李师傅", "完成 BX1")
    reply = _refused(rt, school, "王老师", "取消 BX1")
    assert "当前状态为「已完成」" in reply and "不能取消" in reply
    assert ticket(rt, 1).state == "已完成"
    school.say("王老师", "评价 BX1 5")
    assert "当前状态为「已评价」" in school.say("赵主任", "取消 BX1")
    assert "当前状态为「已评价」" in school.say("王老师", "评价 BX1 3")
    assert ticket(rt, 1).rating == 5


def test_more_refusals(school, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    assert "请给1-5分" in school.say("王老师", "评价 BX1 好")
    assert "1-5" in school.say("王老师", "评价 BX1 9")
    assert "请写上分数" in school.say("王老师", "评价 BX1")
    assert "没有名为「张三」的维修工" in school.say("赵主任", "派单 BX1 张三")
    assert "请写上维修工姓名" in school.say("赵主任", "派单 BX1")
    assert "无需重复派单" in school.say("赵主任", "派单 BX1 李师傅")
    assert "请写上退单原因" in school.say("李师傅", "退单 BX1")
    assert "未找到 BX99" in school.say("李师傅", "接单 BX99")
    assert school.say("王老师", "接单 BX1").startswith("无权限")
    assert school.say("王老师", "派单 BX1 李师傅").startswith("无权限")
    assert school.say("王老师", "报修统计").startswith("无权限")
    school.say("李师傅", "接单 BX1")
    assert "当前状态为「维修中」" in school.say("赵主任", "派单 BX1 周师傅")
    assert "当前状态为「维修中」" in school.say("李师傅", "接单 BX1")
    assert ticket(rt, 1).state == "维修中"


def repair_person_id(rt, name: str) -> int:  # type: ignore[no-untyped-def]
    from storage.people import find_people

    with rt.db.session() as s:
        pid = find_people(s, name)[0].id
        assert pid is not None
        return pid


# --- assignment -----------------------------------------------------------------------------------------


def test_worker_may_take_an_unassigned_ticket(school, rt):
    school.say("王老师", "报修 图书馆 书架倒了")  # 家具: nobody has it
    reply = school.say("周师傅", "接单 BX1")
    assert "维修中" in reply
    assert "周师傅已接单" in school.last_push("王老师")
    t = ticket(rt, 1)
    assert t.assignee_id == repair_person_id(rt, "周师傅") and t.assigned_at is not None


def test_reassign_tells_the_previous_worker(school):
    school.say("王老师", "报修 教学楼301 灯不亮")
    school.say("赵主任", "派单 BX1 周师傅")
    assert "已改派给周师傅" in school.last_push("李师傅")
    assert "接单 BX1" in school.last_push("周师傅")
    assert "已派给周师傅" in school.last_push("王老师")
    assert "未找到 BX1" in school.say("李师傅", "查询 BX1")


def test_auto_assignment_round_robin_by_open_load(chat, rt):
    chat.person("王老师", "teacher")
    chat.person("甲师傅", "worker", categories=["电", "水"])
    chat.person("乙师傅", "worker", categories=["电"])
    chat.person("丙师傅", "worker", categories=["水"])
    chat.person("丁师傅", "worker", categories=["电"], bind=False)  # cannot receive or take jobs yet
    a, b = repair_person_id(rt, "甲师傅"), repair_person_id(rt, "乙师傅")
    for _ in range(3):
        chat.say("王老师", "报修 教学楼 灯不亮")
        rt.clock.advance(minutes=1)
    # 1 → 甲 (lowest id), 2 → 乙 (甲 has one open), 3 → 甲 (equal load; 甲 assigned longest ago)
    assert [ticket(rt, n).assignee_id for n in (1, 2, 3)] == [a, b, a]
    chat.say("乙师傅", "接单 BX2")
    chat.say("乙师傅", "完成 BX2")
    chat.say("王老师", "报修 教学楼 开关坏了")  # 乙 has no open job now
    assert ticket(rt, 4).assignee_id == b
    assert [m for m in chat.pushes("甲师傅") if "新维修任务" in m].__len__() == 2
    chat.say("王老师", "报修 食堂 水管漏水")  # 水: 甲 has 2 open, 丙 none
    assert ticket(rt, 5).assignee_id == repair_person_id(rt, "丙师傅")


def test_give_back_returns_to_pending_and_tells_admins(school, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    school.say("李师傅", "接单 BX1")
    reply = school.say("李师傅", "退单 BX1 需要电工证，缺少配件")
    assert "待派单" in reply
    push = school.last_push("赵主任")
    assert "李师傅退单" in push and "缺少配件" in push and "派单 BX1" in push
    assert "被维修工退回" in school.last_push("王老师")
    t = ticket(rt, 1)
    assert (t.state, t.assignee_id, t.taken_at) == ("待派单", None, None)
    assert "未找到 BX1" in school.say("李师傅", "查询 BX1")  # no longer his
    assert "BX1" in school.say("赵主任", "待派单")
    assert "李师傅 退单→待派单（需要电工证，缺少配件）" in school.say("赵主任", "查询 BX1")


# --- cancel, nudge, access ------------------------------------------------------------------------------


def test_cancel_by_reporter_and_by_admin(school, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    school.say("王老师", "报修 教学楼302 灯不亮")
    assert "已取消报修 BX1" in school.say("王老师", "取消 BX1")
    assert "已被王老师取消" in school.last_push("李师傅")
    assert ticket(rt, 1).state == "已取消"
    assert "已取消报修 BX2" in school.say("赵主任", "取消 bx2 重复报修")
    assert "重复报修" in school.last_push("王老师")
    assert "当前状态为「已取消」" in school.say("李师傅", "接单 BX2")


def test_cancel_refused_to_others(school, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    assert "未找到 BX1" in school.say("陈老师", "取消 BX1")
    assert school.say("孙校长", "取消 BX1") == "未找到 BX1"  # as for a ticket that does not exist
    assert ticket(rt, 1).state == "已派单"


def test_nudge_once_an_hour(school, rt, clock):
    school.say("王老师", "报修 教学楼301 灯不亮")
    reply = school.say("王老师", "催办 BX1")
    assert "已催办 BX1" in reply and "李师傅" in reply
    push = school.last_push("李师傅")
    assert "王老师催办 BX1" in push and "接单 BX1" in push
    clock.advance(minutes=59)
    assert "一小时内只能催办一次" in school.say("王老师", "催办 BX1")
    assert len([p for p in school.pushes("李师傅") if "催办" in p]) == 1
    clock.advance(minutes=1)
    assert "已催办" in school.say("王老师", "催办 BX1")
    assert len([p for p in school.pushes("李师傅") if "催办" in p]) == 2
    assert school.say("赵主任", "催办 BX1") == "未找到 BX1"
    assert "未找到 BX1" in school.say("陈老师", "催办 BX1")


def test_nudge_unassigned_goes_to_admins_and_not_after_finish(school, clock):
    school.say("王老师", "报修 操场 围栏松了")
    school.say("王老师", "催办 BX1")
    assert "王老师催办 BX1" in school.last_push("赵主任") and "派单 BX1" in school.last_push("赵主任")
    school.say("周师傅", "接单 BX1")
    school.say("周师傅", "完成 BX1")
    clock.advance(hours=2)
    assert "无需催办" in school.say("王老师", "催办 BX1")


def test_access_control(school, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    # someone else's ticket gets exactly the reply of one that does not exist
    assert school.say("陈老师", "查询 BX99") == "未找到 BX99"
    assert school.say("陈老师", "查询 BX1") == "未找到 BX1"
    assert "未找到 BX1" in school.say("陈老师", "评价 BX1 1")
    assert "未找到 BX1" in school.say("周师傅", "查询 BX1")  # a worker who is not on it
    assert "状态：已派单" in school.say("孙校长", "查询 BX1")
    assert "状态：已派单" in school.say("赵主任", "查询 BX1")
    assert "状态：已派单" in school.say("李师傅", "查询 BX1")
    assert "状态：已派单" in school.say("王老师", "查询 BX1")
    assert "还没有报修记录" in school.say("陈老师", "我的报修")
    assert school.say("赵主任", "评价 BX1 5") == "未找到 BX1"


# --- escalation -----------------------------------------------------------------------------------------


def test_escalation_not_taken_in_two_hours(school, rt, clock):
    school.say("王老师", "报修 教学楼301 灯不亮")  # assigned to 李师傅, never taken
    school.say("王老师", "报修 教学楼302 灯不亮")
    school.say("李师傅", "接单 BX2")  # taken: no escalation for this rule
    before = len(school.pushes("赵主任"))
    clock.advance(hours=1, minutes=59)
    assert run_escalation(rt, clock) is None
    clock.advance(minutes=1)
    assert run_escalation(rt, clock) is not None
    pushes = school.pushes("赵主任")[before:]
    assert len(pushes) == 1 and "超时未接单" in pushes[0] and "BX1" in pushes[0] and "李师傅" in pushes[0]
    clock.advance(minutes=30)
    assert run_escalation(rt, clock) is None  # once per ticket per rule
    assert len(school.pushes("赵主任")) == before + 1
    assert "超时提醒" in school.say("赵主任", "查询 BX1")


def test_escalation_urgent_after_thirty_minutes(school, rt, clock):
    school.say("王老师", "报修 紧急 实验楼 漏电冒烟")
    clock.advance(minutes=29)
    assert run_escalation(rt, clock) is None
    clock.advance(minutes=1)
    assert run_escalation(rt, clock) is not None
    assert "BX1【紧急】" in school.last_push("赵主任")


def test_escalation_unfinished_after_two_school_days_over_a_weekend(school, rt, clock):
    clock.set(datetime(2026, 12, 4, 10, 0))  # a Friday
    school.say("王老师", "报修 教学楼301 灯不亮")
    school.say("李师傅", "接单 BX1")
    clock.set(datetime(2026, 12, 8, 9, 59))  # Tuesday: Saturday and Sunday do not count
    assert run_escalation(rt, clock) is None
    clock.set(datetime(2026, 12, 8, 10, 0))
    assert run_escalation(rt, clock) is not None
    push = school.last_push("赵主任")
    assert "超时未完成" in push and "BX1" in push and "李师傅" in push
    clock.advance(days=3)
    assert run_escalation(rt, clock) is None


def test_escalation_unfinished_skips_national_day(school, rt, clock):
    clock.set(datetime(2026, 9, 30, 10, 0))  # the day before 国庆 (10-01 … 10-07 off)
    school.say("王老师", "报修 教学楼301 灯不亮")
    school.say("李师傅", "接单 BX1")
    clock.set(datetime(2026, 10, 8, 12, 0))  # eight calendar days, one school day
    assert run_escalation(rt, clock) is None
    clock.set(datetime(2026, 10, 9, 10, 0))
    assert run_escalation(rt, clock) is not None
    assert "超时未完成" in school.last_push("赵主任")


def test_escalation_counts_a_make_up_workday(school, rt, clock):
    clock.set(datetime(2026, 9, 18, 10, 0))  # Friday; Sunday 09-20 is a make-up workday (调休上班)
    school.say("王老师", "报修 教学楼301 灯不亮")
    school.say("李师傅", "接单 BX1")
    clock.set(datetime(2026, 9, 21, 9, 59))
    assert run_escalation(rt, clock) is None
    clock.set(datetime(2026, 9, 21, 10, 0))  # Monday: Sunday counted, so two school days are up
    assert run_escalation(rt, clock) is not None


def test_escalation_job_is_registered():
    from jobs.registry import load_jobs

    assert load_jobs()["repair-escalation"].fn is repair_jobs.escalate


def test_finish_deadline_without_calendar_data_counts_weekdays():
    t = RepairTicket(reporter_id=1, place="x", description="y", category="其他", created_at=datetime(2031, 1, 3, 10))
    assert repair.finish_deadline(t) == datetime(2031, 1, 7, 10)  # Friday → Tuesday


# --- statistics -----------------------------------------------------------------------------------------


def test_statistics_this_and_last_month(school, rt, clock):
    clock.set(datetime(2026, 11, 20, 9, 0))
    school.say("王老师", "报修 教学楼301 灯不亮")
    clock.set(datetime(2026, 12, 1, 9, 0))
    school.say("王老师", "报修 教学楼301 灯不亮")  # BX2 电 → 李师傅
    school.say("王老师", "报修 食堂 水管漏水")  # BX3 水 → 周师傅
    school.say("王老师", "报修 操场 围栏松了")  # BX4 其他
    school.say("王老师", "取消 BX4")
    school.say("李师傅", "接单 BX2")
    clock.advance(hours=2)
    school.say("李师傅", "完成 BX2")
    school.say("王老师", "评价 BX2 4")
    school.say("周师傅", "接单 BX3")
    clock.advance(hours=2)
    school.say("周师傅", "完成 BX3")
    school.say("王老师", "评价 BX3 5")
    reply = school.say("孙校长", "报修统计")
    assert "2026年12月" in reply and "共 3 张" in reply
    assert "已评价 2" in reply and "已取消 1" in reply and "待派单 0" in reply
    assert "电 1" in reply and "水 1" in reply and "其他 1" in reply
    assert "平均完成用时：3.0 小时（2 张）" in reply
    assert "平均评分：4.5 分（2 张）" in reply
    last = school.say("赵主任", "报修统计 上月")
    assert "2026年11月" in last and "共 1 张" in last and "已派单 1" in last and "暂无评价" in last
    assert "共 0 张" in school.say("赵主任", "报修统计 2026-10")
    assert "报修统计 本月" in school.say("赵主任", "报修统计 去年")


def test_month_range_wraps_the_year():
    assert repair.month_range(datetime(2026, 1, 15), 1) == (datetime(2025, 12, 1).date(), datetime(2026, 1, 1).date())
    assert repair.month_range(datetime(2026, 12, 15)) == (datetime(2026, 12, 1).date(), datetime(2027, 1, 1).date())


# --- lists ----------------------------------------------------------------------------------------------


def test_lists(school, rt, clock):
    assert "没有维修任务" in school.say("李师傅", "我的任务")
    school.say("王老师", "报修 教学楼301 灯不亮")
    school.say("王老师", "报修 紧急 行政楼 停电了")
    school.say("王老师", "报修 操场 围栏松了")
    tasks = school.say("李师傅", "我的任务")
    assert tasks.index("BX2【紧急】") < tasks.index("BX1")  # urgent first
    assert "BX3" not in tasks
    mine = school.say("王老师", "我的报修")
    assert mine.index("BX3") < mine.index("BX2") < mine.index("BX1")  # newest first
    assert "已派单（维修工：李师傅）" in mine and "待派单" in mine
    pending = school.say("赵主任", "待派单")
    assert "BX3" in pending and "BX1" not in pending


def test_help_lists_repair_commands_by_role(school):
    teacher = school.say("王老师", "帮助")
    assert "报修 教学楼301" in teacher and "评价 BX12" in teacher and "接单" not in teacher and "派单 BX12" not in teacher
    worker = school.say("李师傅", "帮助")
    assert "接单 BX12" in worker and "完成 BX12" in worker and "退单 BX12" in worker


def test_many_tickets_are_paged(school):
    for i in range(12):
        school.say("王老师", f"报修 教学楼{300 + i} 窗户关不上，窗框变形，需要尽快更换新的窗框和合页")
    first = school.say("赵主任", "待派单")
    assert len(first) <= 600 and "更多" in first
    assert "BX" in school.say("赵主任", "更多")


def test_refused_creation_writes_nothing(school, rt):
    assert "描述太长" in school.say("王老师", "报修 教学楼301 " + "灯" * 501)
    assert count_rows(rt, RepairTicket) == 0 and count_rows(rt, RepairHistory) == 0
    assert school.pushes("李师傅") == []


def test_repairs_reach_the_fake_wechat_server(school, rt):
    school.say("王老师", "报修 教学楼301 灯不亮")
    rows = [m for m in school.outbox() if m.kind == "repair"]
    assert len(rows) == 1 and rows[0].person_id == repair_person_id(rt, "李师傅")
    assert '"ticket": 1' in rows[0].data


def test_stale_dialog_state_is_dropped(school, rt):
    rt.kv.set(f"dialog:{openid_for('王老师')}", '{"name": "repair", "state": {"step": "bogus"}}', ttl=600)
    assert "重新发送「报修」" in school.say("王老师", "你好")
    assert "后勤助手" in school.say("王老师", "你好")


def test_time_helpers():
    assert fmt_duration(timedelta(minutes=5)) == "5分钟"
    assert fmt_duration(timedelta(hours=2, minutes=5)) == "2小时5分钟"
    assert fmt_duration(timedelta(days=3, hours=1)) == "3天1小时"


def test_bare_number_finds_the_repair_for_a_worker_even_though_reminders_share_the_word(chat):
    """`完成 12` without a prefix: the router tries the worker's 完成 (BX) before the reminder one (TX)."""
    chat.person("王老师", "teacher")
    chat.person("李师傅", "worker", categories=["电"])
    assert "BX1" in chat.say("王老师", "报修 教学楼301 灯不亮")
    chat.say("李师傅", "接单 1")
    reply = chat.say("李师傅", "完成 1 换了灯管")
    assert "BX1" in reply and "未找到" not in reply
    assert chat.say("李师傅", "完成 99").startswith("未找到")


# --- the hot path's Core writes (same rows as the ORM would write) --------------------------------------


def test_enqueue_many_writes_the_rows_notify_would(chat, rt, clock):
    from storage import outbox

    chat.person("甲", "teacher")
    chat.person("乙", "teacher")
    a, b = repair_person_id(rt, "甲"), repair_person_id(rt, "乙")
    columns = [c.name for c in outbox.OutboxMessage.__table__.columns if c.name not in ("id", "text")]  # type: ignore[attr-defined]
    with rt.db.session() as s:
        assert outbox.notify(s, [b, None, a, b], "repair", "orm", now=clock.now(), data={"ticket": 7}) == 2
        assert outbox.enqueue_many(s, [b, None, a, b], "repair", "core", now=clock.now(), data={"ticket": 7}) == 2
        assert outbox.enqueue_many(s, [None], "repair", "nobody", now=clock.now()) == 0
        assert outbox.enqueue_many(s, [a], "repair", "one", now=clock.now()) == 1
    with rt.db.session() as s:
        rows = s.exec(select(outbox.OutboxMessage).order_by(outbox.OutboxMessage.id)).all()
    assert [(r.text, r.person_id) for r in rows] == [("orm", b), ("orm", a), ("core", b), ("core", a), ("one", a)]
    for orm, core in zip(rows[:2], rows[2:4], strict=True):
        assert [getattr(orm, c) for c in columns] == [getattr(core, c) for c in columns]
    assert rows[4].data == "{}" and rows[4].state == outbox.PENDING and rows[4].attempts == 0


def test_create_ticket_returns_the_row_as_written(chat, rt, clock):
    from storage.people import actor_by_openid

    chat.person("王老师", "teacher")
    chat.person("赵主任", "admin")
    chat.person("钱主任", "admin")
    chat.person("李师傅", "worker", categories=["电"])
    with rt.db.session() as s:
        teacher = actor_by_openid(s, openid_for("王老师"))
        assert teacher is not None
        photos = [repair.Photo("m1", None), repair.Photo(None, "http://p/2.jpg")]
        made = [repair.create_ticket(s, teacher, "教学楼301", "灯不亮", now=clock.now(), urgent=True, photos=photos),
                repair.create_ticket(s, teacher, "图书馆", "电脑无法开机", now=clock.now())]
    for t, _ in made:
        stored = ticket(rt, t.id or 0)
        assert t.model_dump() == stored.model_dump()
    (first, worker), (second, nobody) = made
    assert worker is not None and worker.name == "李师傅" and nobody is None
    assert (first.state, first.assignee_id, first.assigned_at, first.urgent) == ("已派单", worker.id, clock.now(), True)
    assert (second.state, second.assignee_id, second.assigned_at) == ("待派单", None, None)
    assert [(p.media_id, p.pic_url) for p in photos_of_ticket(rt, first.id)] == [("m1", None), (None, "http://p/2.jpg")]
    with rt.db.session() as s:
        history = s.exec(select(RepairHistory).order_by(RepairHistory.id)).all()
        assert [(h.ticket_id, h.action, h.from_state, h.to_state, h.note) for h in history] == [
            (first.id, "报修", None, "待派单", "紧急"),
            (first.id, "自动派单", "待派单", "已派单", "按类别「电」派给李师傅"),
            (second.id, "报修", None, "待派单", None),
        ]
    admins = [repair_person_id(rt, "赵主任"), repair_person_id(rt, "钱主任")]
    pushes = [(m.person_id, m.text[:6]) for m in chat.outbox() if m.kind == "repair"]
    assert pushes == [(worker.id, "新维修任务 "), (admins[0], "新报修 BX"), (admins[1], "新报修 BX")]


def photos_of_ticket(rt, ticket_id: int | None) -> list[RepairPhoto]:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return repair.photos_of(s, ticket_id or 0)


def test_pick_worker_matches_the_category_literally(chat, rt):
    chat.person("甲师傅", "worker", categories=["a_c"])
    chat.person("乙师傅", "worker", categories=["abc", "100%"])
    first, second = repair.Worker(repair_person_id(rt, "甲师傅"), "甲师傅"), repair.Worker(repair_person_id(rt, "乙师傅"), "乙师傅")
    with rt.db.session() as s:
        assert repair.pick_worker(s, "a_c") == first
        assert repair.pick_worker(s, "a%") is None and repair.pick_worker(s, "b") is None
        assert repair.pick_worker(s, "100%") == second
