"""What a new user trips over (issue 16): help that fits the person, a parent's 我的请假, second slips and
repeated reminders asked about first, free text kept as typed."""

from __future__ import annotations

import pytest
from sqlmodel import select

from storage import leave
from storage import reminder as rem
from storage.repair import RepairTicket


@pytest.fixture
def school(chat):  # type: ignore[no-untyped-def]
    chat.students(("2024001", "李明", "七(3)班"), ("2024002", "王芳", "七(3)班"))
    chat.person("王老师", "teacher", klass="七(3)班")
    chat.person("张老师", "teacher")
    chat.person("李明家长", "parent", students=["2024001"])
    chat.person("刘门卫", "guard")
    chat.person("孙主任", "admin")
    chat.person("周校长", "leader")
    chat.person("李师傅", "worker", categories=["电"])
    return chat


# --- 帮助 advertises only what this person may do ---

def test_help_offers_reminder_targets_only_to_those_who_may_use_them(school):  # type: ignore[no-untyped-def]
    for name in ("张老师", "李明家长", "刘门卫", "李师傅"):
        assert "@门卫" not in school.say(name, "帮助") and "@姓名" not in school.say(name, "帮助"), name
        assert "@" not in school.say(name, "提醒"), name  # the usage a menu tap shows, too
    for name in ("孙主任", "周校长"):
        assert "@门卫 @姓名" in school.say(name, "帮助")
        assert "@门卫" in school.say(name, "提醒")


def test_a_parents_help_has_no_repair_numbers(school):  # type: ignore[no-untyped-def]
    reply = school.say("李明家长", "帮助")
    assert "BX" not in reply and "报修" not in reply
    assert "我的请假" in reply and "请假 今天14:00-16:00 看病" in reply
    assert "QJ12 或 12" in reply
    assert "BX12 或 12" in school.say("张老师", "帮助")


def test_a_parent_sees_their_childs_slips(school):  # type: ignore[no-untyped-def]
    assert "暂无请假记录" in school.say("李明家长", "我的请假")
    assert "QJ1" in school.say("张老师", "请假 李明 明天全天 发烧")
    assert "QJ2" in school.say("张老师", "请假 王芳 明天上午 复诊")
    mine = school.say("李明家长", "我的请假")
    assert "QJ1" in mine and "李明" in mine and "待审批" in mine and "发烧" in mine
    assert "QJ2" not in mine and "王芳" not in mine  # not their child
    teacher = school.say("张老师", "我的请假")
    assert "QJ1" in teacher and "QJ2" in teacher
    assert "无权限" in school.say("刘门卫", "我的请假")


# --- a second slip for the same hours, the same reminder twice: asked first ---

def test_overlapping_slip_is_quoted_and_needs_confirmation(school, rt):  # type: ignore[no-untyped-def]
    assert "QJ1" in school.say("李明家长", "请假 明天全天 发烧")
    reply = school.say("张老师", "请假 李明 明天上午 看病")
    assert "已有请假" in reply and "QJ1" in reply and "发烧" in reply and "「是」" in reply
    with rt.db.session() as s:
        assert len(s.exec(select(leave.LeaveSlip)).all()) == 1  # nothing created yet
    reply = school.say("张老师", "确认")
    assert "QJ2" in reply and "已提交请假" in reply
    # asked again, answered with something else: nothing is created and the message is read as usual
    assert "已有请假" in school.say("张老师", "请假 李明 明天下午 看病")
    assert "最近的请假" in school.say("张老师", "我的请假")  # not a 是: dropped, and read as a command
    with rt.db.session() as s:
        assert len(s.exec(select(leave.LeaveSlip)).all()) == 2
    # another day does not overlap: no question
    assert "已提交请假 QJ3" in school.say("张老师", "请假 李明 后天上午 看病")


def test_refused_slip_is_refused_without_a_question(school):  # type: ignore[no-untyped-def]
    school.say("张老师", "请假 李明 明天全天 发烧")
    reply = school.say("李明家长", "请假 王芳 明天全天 发烧")
    assert "已有请假" not in reply


def test_same_reminder_twice_needs_confirmation(school, rt):  # type: ignore[no-untyped-def]
    assert "TX1" in school.say("张老师", "提醒 明天8:00 交教案")
    reply = school.say("张老师", "提醒 明天8:00 交教案")
    assert "相同的提醒 TX1" in reply and "交教案" in reply and "「确认」" in reply
    with rt.db.session() as s:
        assert len(s.exec(select(rem.Reminder)).all()) == 1
    assert "已取消" in school.say("张老师", "取消")
    with rt.db.session() as s:
        assert len(s.exec(select(rem.Reminder)).all()) == 1
    school.say("张老师", "提醒 明天8:00 交教案")
    assert "已设置提醒 TX" in school.say("张老师", "是")
    with rt.db.session() as s:
        assert len(s.exec(select(rem.Reminder)).all()) == 2
    # different content, time or person: no question
    assert "已设置提醒" in school.say("张老师", "提醒 明天8:00 交周报")
    assert "已设置提醒" in school.say("张老师", "提醒 明天9:00 交教案")
    assert "已设置提醒" in school.say("王老师", "提醒 明天8:00 交教案")
    # a recurring one too
    assert "已设置提醒" in school.say("孙主任", "提醒 每周一 8:00 升旗仪式 @全体")
    assert "相同的提醒" in school.say("孙主任", "提醒 每周一 8:00 升旗仪式 @全体")


# --- free text keeps the user's punctuation ---

def test_description_keeps_chinese_punctuation(school, rt):  # type: ignore[no-untyped-def]
    assert "BX1" in school.say("张老师", "报修 教学楼301 投影仪不亮了，开机没反应！")
    with rt.db.session() as s:
        t = s.exec(select(RepairTicket)).one()
        assert t.place == "教学楼301" and t.description == "投影仪不亮了，开机没反应！"
    school.say("张老师", "请假 李明 明天全天 发烧，去医院")
    assert "发烧，去医院" in school.say("李明家长", "我的请假")


def test_asking_first_does_not_use_up_record_numbers(school):  # type: ignore[no-untyped-def]
    """Checking before a question writes nothing: on PostgreSQL even a rolled-back insert would skip a number."""
    school.say("张老师", "请假 李明 明天全天 发烧")
    school.say("张老师", "请假 李明 明天上午 看病")
    assert "QJ2" in school.say("张老师", "是")
    school.say("张老师", "提醒 明天8:00 交教案")
    school.say("张老师", "提醒 明天8:00 交教案")
    assert "TX2" in school.say("张老师", "是")
