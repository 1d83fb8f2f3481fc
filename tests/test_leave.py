"""Student leave slips (SPEC section 5), end to end through the webhook: request → head teacher → gate →
parents, every refusal, the timed alerts, and two guards letting the same student out at the same moment."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from sqlmodel import select

from jobs import leave as leave_jobs
from storage import leave, people
from storage.errors import UserError

T = datetime(2026, 12, 1)  # the clock fixture starts at 09:00 on this day (a Tuesday)


def at(hour: int, minute: int = 0, day: int = 1) -> datetime:
    return T.replace(day=day, hour=hour, minute=minute)


@pytest.fixture
def school(chat):  # type: ignore[no-untyped-def]
    chat.students(
        ("2024001", "李明", "七(3)班"),
        ("2024002", "王芳", "七(3)班"),
        ("2024003", "张伟", "七(3)班"),
        ("2024101", "李明", "八(1)班"),
    )
    chat.person("王老师", "teacher", klass="七(3)班")
    chat.person("赵老师", "teacher", klass="八(1)班")
    chat.person("张老师", "teacher")
    chat.person("刘门卫", "guard")
    chat.person("陈门卫", "guard")
    chat.person("李明家长", "parent", students=["2024001"])
    chat.person("双胞胎家长", "parent", students=["2024002", "2024003"])
    chat.person("孙主任", "admin")
    chat.person("周校长", "leader")
    return chat


def slip(rt, n: int) -> leave.LeaveSlip:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        found = s.get(leave.LeaveSlip, n)
        assert found is not None
        return found


def run_job(rt, fn) -> None:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        fn(s, rt.clock.now())


def approved_slip(chat, span: str = "今天14:00-16:00", extra: str = "") -> None:  # type: ignore[no-untyped-def]
    """QJ<n> for 七(3)班 李明, requested by 张老师 and approved by 王老师."""
    reply = chat.say("张老师", f"请假 七(3)班 李明 {span} 看病{extra}")
    if "已有请假" in reply:  # the same student again at overlapping hours: the bot asks first
        reply = chat.say("张老师", "是")
    n = reply.split("QJ", 1)[1].split("：", 1)[0]
    assert "已批准" in chat.say("王老师", f"批准 QJ{n}")


# --------------------------------------------------------------------------------------------------------
# The whole path


def test_teacher_head_teacher_guard_parent(school, clock, rt):  # type: ignore[no-untyped-def]
    chat = school
    reply = chat.say("张老师", "请假 七(3)班 李明 今天14:00-16:00 看病")
    assert "QJ1" in reply and "待审批" in reply and "王老师" in reply
    assert "12月1日 14:00-16:00" in reply

    push = chat.last_push("王老师")
    assert "QJ1" in push and "李明（七(3)班）" in push and "看病" in push and "张老师" in push
    assert "批准 QJ1" in push and "驳回 QJ1" in push  # the exact reply to send
    assert chat.pushes("李明家长") == []  # nothing decided yet

    listing = chat.say("王老师", "待审批")
    assert "QJ1" in listing and "李明" in listing
    assert "没有待审批" in chat.say("赵老师", "待审批")  # another class

    # the guard, before approval
    assert "不可出校" in chat.say("刘门卫", "核验 QJ1") and "审批" in chat.say("刘门卫", "核验 QJ1")
    assert "不可出校" in chat.say("刘门卫", "出校 QJ1")

    assert "已批准" in chat.say("王老师", "批准 qj1")
    assert "已批准" in chat.last_push("张老师") and "QJ1" in chat.last_push("张老师")
    assert "已批准" in chat.last_push("李明家长")
    assert slip(rt, 1).state == leave.APPROVED and not slip(rt, 1).deputy

    # before the window opens (30 min before 14:00)
    check = chat.say("刘门卫", "核验 QJ1")
    assert "不可出校" in check and "13:30" in check and "\n" not in check
    assert "不可出校" in chat.say("刘门卫", "出校 QJ1")

    clock.set(at(13, 30))
    check = chat.say("刘门卫", "核验 QJ1")
    assert "可以出校" in check and "不可" not in check
    assert "可以出校" in chat.say("刘门卫", "核验 七(3)班 李明")
    assert "七(3)班" in chat.say("刘门卫", "核验 李明") and "八(1)班" in chat.say("刘门卫", "核验 李明")  # which?

    parent_before = len(chat.pushes("李明家长"))
    reply = chat.say("刘门卫", "出校 QJ1")
    assert "已登记出校" in reply and "李明" in reply
    exit_push = chat.pushes("李明家长")[parent_before:]
    assert len(exit_push) == 1 and "出校" in exit_push[0] and "13:30" in exit_push[0]
    assert "出校" in chat.last_push("张老师")

    today = chat.say("刘门卫", "今日请假")
    assert "QJ1" in today and "已出校 13:30" in today and "未返校" in today

    clock.set(at(15, 50))
    reply = chat.say("陈门卫", "返校 QJ1")
    assert "已登记返校" in reply
    assert "返校" in chat.last_push("李明家长") and "15:50" in chat.last_push("李明家长")
    assert "返校" in chat.last_push("张老师")
    assert "已返校 15:50" in chat.say("王老师", "今日请假")
    assert "不可出校" in chat.say("刘门卫", "核验 七(3)班 李明")  # the slip is used up

    with rt.db.session() as s:
        assert leave.pending_count(s, clock.now()) == 0
        [row] = leave.ledger_rows(s, at(0), at(0, day=2), clock.now())
        assert row["编号"] == "QJ1" and row["审批人"] == "王老师" and row["出校时间"] == at(13, 30)
        actions = [e.action for e in leave.history(s, 1)]
        gate = [(g.kind, g.at) for g in leave.gate_events(s, 1)]
    assert actions == ["申请", "批准", "出校", "返校"]
    assert gate == [("exit", at(13, 30)), ("return", at(15, 50))]


def test_head_teachers_own_request_is_approved_at_once(school, clock, rt):  # type: ignore[no-untyped-def]
    chat = school
    reply = chat.say("王老师", "请假 七（3）班 李明 明天全天 家中有事")  # full-width brackets normalised
    assert "已批准" in reply and "QJ1" in reply and "12月2日 07:00-18:00" in reply
    assert "已批准" in chat.last_push("李明家长")
    assert chat.pushes("王老师") == []
    assert slip(rt, 1).state == leave.APPROVED
    # but a head teacher asking for another class's pupil waits for that class's head teacher
    reply = chat.say("王老师", "请假 八(1)班 李明 明天全天 比赛")
    assert "待审批" in reply and "赵老师" in reply
    assert "批准 QJ2" in chat.last_push("赵老师")


def test_parent_requests_for_own_child_only(school, clock, rt):  # type: ignore[no-untyped-def]
    chat = school
    reply = chat.say("李明家长", "请假 明天上午 复诊")  # one child: the name may be left out
    assert "QJ1" in reply and "待审批" in reply and "李明（七(3)班）" in reply
    assert "批准 QJ1" in chat.last_push("王老师")
    reply = chat.say("李明家长", "请假 李明 后天全天 发烧")  # the name is fine too — and not ambiguous
    assert "QJ2" in reply and "七(3)班" in reply

    refused = chat.say("李明家长", "请假 王芳 明天全天 发烧")
    assert "自己的孩子" in refused and "QJ" not in refused
    refused = chat.say("李明家长", "请假 八(1)班 李明 明天全天 发烧")
    assert "QJ" not in refused
    refused = chat.say("双胞胎家长", "请假 明天全天 发烧")
    assert "王芳" in refused and "张伟" in refused  # which child?
    assert "QJ3" in chat.say("双胞胎家长", "请假 张伟 明天全天 发烧")

    chat.say("王老师", "驳回 QJ1 本周有考试")
    push = chat.last_push("李明家长")
    assert "驳回" in push and "本周有考试" in push
    with rt.db.session() as s:
        assert len(s.exec(select(leave.LeaveSlip)).all()) == 3


def test_request_refusals_and_ambiguous_names(school, clock, rt):  # type: ignore[no-untyped-def]
    chat = school
    ask = chat.say("张老师", "请假 李明 明天全天 发烧")
    assert "七(3)班" in ask and "八(1)班" in ask and "班级" in ask and "QJ" not in ask
    assert "QJ1" in chat.say("张老师", "请假 八(1)班 李明 明天全天 发烧")

    assert "已经过去" in chat.say("张老师", "请假 张伟 今天7:00-8:30 看病")  # wholly in the past
    assert "结束时间早于开始时间" in chat.say("张老师", "请假 张伟 12月2日 16:00-12月2日 14:00 看病")
    assert "事由" in chat.say("张老师", "请假 张伟 明天全天")
    assert "未找到学生" in chat.say("张老师", "请假 李小龙 明天全天 发烧")
    assert "未找到班级" in chat.say("张老师", "请假 九(9)班 张伟 明天全天 发烧")
    assert "没有名为" in chat.say("张老师", "请假 八(1)班 张伟 明天全天 发烧")
    assert "时间" in chat.say("张老师", "请假 张伟 下辈子 发烧")
    assert "请假格式" in chat.say("张老师", "请假")
    assert "无权限" in chat.say("刘门卫", "请假 张伟 明天全天 发烧")
    with rt.db.session() as s:
        assert len(s.exec(select(leave.LeaveSlip)).all()) == 1  # refusals wrote nothing

    reply = chat.say("张老师", "请假 张伟 今天下午 回家 不返校")
    assert "不返校" in reply and not slip(rt, 2).expects_return


def test_glued_and_spoken_requests(school, clock, rt):  # type: ignore[no-untyped-def]
    chat = school
    reply = chat.wx.voice(chat_openid("张老师"), "请假，七(3)班李明，明天全天，发烧。")  # speech recognition
    assert "QJ1" in reply and "李明（七(3)班）" in reply and "12月2日 07:00-18:00" in reply
    reply = chat.say("张老师", "请假 八(1)班 李明明天下午 比赛")
    assert "QJ2" in reply and "李明（八(1)班）" in reply and "12月2日 12:00-18:00" in reply
    assert "结束时间早于开始时间" in chat.say("李明家长", "请假 明天16:00-14:00 发烧")
    assert "QJ1" in chat.say("刘门卫", "核验七(3)班李明")


# --------------------------------------------------------------------------------------------------------
# Deciding


def test_who_may_decide(school, clock, rt):  # type: ignore[no-untyped-def]
    chat = school
    chat.say("张老师", "请假 七(3)班 李明 今天14:00-16:00 看病")
    refused = chat.say("赵老师", "批准 QJ1")  # head teacher of another class: as if it did not exist
    assert refused == "未找到 QJ1"
    assert "无权限" in chat.say("张老师", "批准 QJ1")  # a teacher without a class
    assert "无权限" in chat.say("刘门卫", "批准 QJ1")
    assert "无权限" in chat.say("李明家长", "驳回 QJ1 不行")
    assert "未找到 QJ99" in chat.say("王老师", "批准 QJ99")
    assert "编号格式" in chat.say("王老师", "批准 BX1")
    assert "理由" in chat.say("王老师", "驳回 QJ1")
    assert slip(rt, 1).state == leave.PENDING

    assert "已驳回" in chat.say("王老师", "驳回 QJ1 当天有考试")
    assert "已被驳回" in chat.say("王老师", "批准 QJ1")
    assert slip(rt, 1).reject_reason == "当天有考试"


def test_deputy_approval_by_admin_and_leader(school, clock, rt):  # type: ignore[no-untyped-def]
    chat = school
    chat.say("张老师", "请假 七(3)班 李明 今天14:00-16:00 看病")
    chat.say("李明家长", "请假 明天全天 发烧")
    assert "QJ1" in chat.say("孙主任", "待审批") and "QJ2" in chat.say("周校长", "待审批")

    reply = chat.say("孙主任", "批准 QJ1")
    assert "已批准" in reply and "代班主任" in reply
    assert slip(rt, 1).deputy and slip(rt, 1).decided_by_id is not None
    assert "代班主任" in chat.last_push("张老师") and "孙主任" in chat.last_push("张老师")
    assert "已批准" in chat.last_push("李明家长")
    assert "孙主任" in chat.last_push("王老师")  # the head teacher learns a deputy decided

    reply = chat.say("周校长", "驳回 QJ2 请先到校说明")
    assert "已驳回" in reply and "代班主任" in reply
    assert "请先到校说明" in chat.last_push("李明家长")
    with rt.db.session() as s:
        assert [e.action for e in leave.history(s, 2)] == ["申请", "代驳回"]


# --------------------------------------------------------------------------------------------------------
# The gate


def test_gate_refusals(school, clock, rt):  # type: ignore[no-untyped-def]
    chat = school
    chat.say("张老师", "请假 七(3)班 李明 今天9:00-10:00 看牙")  # QJ1, pending
    assert "审批" in chat.say("刘门卫", "出校 QJ1")
    chat.say("王老师", "驳回 QJ1 不同意")
    refused = chat.say("刘门卫", "出校 QJ1")
    assert "不可出校" in refused and "驳回" in refused
    assert "驳回" in chat.say("刘门卫", "核验 QJ1")

    approved_slip(chat, "今天9:30-10:00")  # QJ2
    assert "尚未出校" in chat.say("刘门卫", "返校 QJ2")  # return without exit
    assert "已登记出校" in chat.say("刘门卫", "出校 QJ2")
    refused = chat.say("陈门卫", "出校 QJ2")  # a second exit on one slip
    assert "不可出校" in refused and "不能再次出校" in refused
    assert "已登记返校" in chat.say("陈门卫", "返校 QJ2")
    assert "无需重复" in chat.say("刘门卫", "返校 QJ2")
    assert "不可出校" in chat.say("刘门卫", "出校 QJ2")  # returned: the slip is used up

    approved_slip(chat, "今天10:00-11:00")  # QJ3, never used
    clock.set(at(11, 0))
    refused = chat.say("刘门卫", "出校 QJ3")  # expired
    assert "不可出校" in refused and "过期" in refused
    assert "过期" in chat.say("刘门卫", "核验 QJ3")

    assert "未找到 QJ99" in chat.say("刘门卫", "出校 QJ99")
    assert "无权限" in chat.say("张老师", "出校 QJ2")
    assert "无权限" in chat.say("李明家长", "核验 QJ2")
    assert "今天没有请假单" in chat.say("刘门卫", "核验 王芳")
    assert "今天没有请假单" in chat.say("刘门卫", "核验 2024101")  # by 学号
    with rt.db.session() as s:
        exits = s.exec(select(leave.LeaveGateEvent).where(leave.LeaveGateEvent.kind == "exit")).all()
        assert [g.slip_id for g in exits] == [2]


def test_today_list_by_role(school, clock, rt):  # type: ignore[no-untyped-def]
    chat = school
    chat.say("张老师", "请假 七(3)班 李明 今天14:00-16:00 看病")  # QJ1
    chat.say("张老师", "请假 八(1)班 李明 今天下午 比赛")  # QJ2
    chat.say("张老师", "请假 张伟 明天全天 发烧")  # QJ3, not today
    guard = chat.say("刘门卫", "今日请假")
    assert "QJ1" in guard and "QJ2" in guard and "QJ3" not in guard and "待审批" in guard
    mine = chat.say("王老师", "今日请假")
    assert "QJ1" in mine and "QJ2" not in mine
    assert "QJ2" in chat.say("赵老师", "今日请假") and "QJ1" not in chat.say("赵老师", "今日请假")
    assert "QJ1" in chat.say("孙主任", "今日请假")
    assert "无权限" in chat.say("张老师", "今日请假")


# --------------------------------------------------------------------------------------------------------
# Timed alerts


def test_overdue_return_alerts_the_head_teacher_once(school, clock, rt):  # type: ignore[no-untyped-def]
    chat = school
    approved_slip(chat, "今天9:00-10:00")  # QJ1
    approved_slip(chat, "今天9:00-10:00", extra=" 不返校")  # QJ2: no return expected
    chat.say("刘门卫", "出校 QJ1")
    chat.say("刘门卫", "出校 QJ2")
    before = len(chat.pushes("王老师"))

    clock.set(at(10, 29))
    run_job(rt, leave_jobs.overdue_returns)
    assert len(chat.pushes("王老师")) == before
    assert "未返校" in chat.say("刘门卫", "今日请假")

    clock.set(at(10, 30))
    run_job(rt, leave_jobs.overdue_returns)
    got = chat.pushes("王老师")[before:]
    assert len(got) == 1 and "QJ1" in got[0] and "未按时返校" in got[0] and "李明" in got[0]
    assert "逾期未返校" in chat.say("刘门卫", "今日请假")

    clock.set(at(11, 0))
    run_job(rt, leave_jobs.overdue_returns)  # once only
    assert len(chat.pushes("王老师")) == before + 1
    assert slip(rt, 1).overdue_notified_at == at(10, 30)
    assert slip(rt, 2).overdue_notified_at is None

    chat.say("刘门卫", "返校 QJ1")  # the head teacher, who was alerted, hears the student is back
    assert "返校" in chat.last_push("王老师")


def test_pending_slip_is_pushed_again_before_it_starts(school, clock, rt):  # type: ignore[no-untyped-def]
    chat = school
    chat.say("张老师", "请假 七(3)班 李明 今天14:00-16:00 看病")  # QJ1, pending
    approved_slip(chat, "今天14:00-16:00")  # QJ2, decided: never re-pushed
    head_before, admin_before = len(chat.pushes("王老师")), len(chat.pushes("孙主任"))

    clock.set(at(13, 29))
    run_job(rt, leave_jobs.repush_pending)
    assert len(chat.pushes("王老师")) == head_before and len(chat.pushes("孙主任")) == admin_before

    clock.set(at(13, 30))
    run_job(rt, leave_jobs.repush_pending)
    head_got, admin_got = chat.pushes("王老师")[head_before:], chat.pushes("孙主任")[admin_before:]
    assert len(head_got) == 1 and len(admin_got) == 1
    assert "QJ1" in head_got[0] and "批准 QJ1" in head_got[0] and "QJ2" not in head_got[0]
    assert "批准 QJ1" in admin_got[0]

    clock.set(at(13, 45))
    run_job(rt, leave_jobs.repush_pending)  # once only
    assert len(chat.pushes("王老师")) == head_before + 1 and len(chat.pushes("孙主任")) == admin_before + 1
    assert "代班主任" in chat.say("孙主任", "批准 QJ1")


# --------------------------------------------------------------------------------------------------------
# Two guards, one slip, the same moment


def _exit_count(rt) -> int:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        rows = s.exec(select(leave.LeaveGateEvent).where(leave.LeaveGateEvent.kind == "exit")).all()
        return len(rows)


def test_two_guards_exit_at_once_through_the_webhook(school, clock, rt):  # type: ignore[no-untyped-def]
    chat = school
    approved_slip(chat, "今天9:00-10:00")
    parent_before = len(chat.pushes("李明家长"))
    start = threading.Barrier(2)
    replies: dict[str, str] = {}

    def guard(name: str) -> None:
        start.wait()
        replies[name] = chat.say(name, "出校 QJ1")

    threads = [threading.Thread(target=guard, args=(n,)) for n in ("刘门卫", "陈门卫")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted("已登记出校" in r for r in replies.values()) == [False, True], replies
    assert any("不可出校" in r for r in replies.values())
    assert _exit_count(rt) == 1
    assert len(chat.pushes("李明家长")) == parent_before + 1


def test_concurrent_exit_is_refused_by_the_database(school, clock, rt):  # type: ignore[no-untyped-def]
    """The race made certain: guard B reads the slip as approved while guard A's exit is not yet committed.
    B's conditional UPDATE waits for A (row lock on PostgreSQL, the write lock on SQLite) and then matches
    no row, so B is refused instead of recording a second exit."""
    chat = school
    approved_slip(chat, "今天9:00-10:00")
    with rt.db.session() as s:
        a = people.actor_by_openid(s, chat_openid("刘门卫"))
        b = people.actor_by_openid(s, chat_openid("陈门卫"))
    assert a is not None and b is not None
    outcome: dict[str, object] = {}

    def second_guard() -> None:
        try:
            with rt.db.session() as s2:
                leave.record_exit(s2, b, 1, now=rt.clock.now())
            outcome["b"] = "exit"
        except UserError as exc:
            outcome["b"] = exc.message

    with rt.db.session() as s1:
        leave.record_exit(s1, a, 1, now=rt.clock.now())  # A holds its transaction open…
        t = threading.Thread(target=second_guard)
        t.start()
        t.join(timeout=0.5)
        assert t.is_alive(), "guard B should be waiting for guard A's transaction"
    t.join(timeout=30)  # …and commits here
    assert not t.is_alive()
    assert isinstance(outcome["b"], str) and "不可出校" in outcome["b"], outcome
    assert _exit_count(rt) == 1
    assert slip(rt, 1).state == leave.OUT


def chat_openid(name: str) -> str:
    from tests.school import openid_for

    return openid_for(name)


# --------------------------------------------------------------------------------------------------------
# Classes and head teachers (CLI)


def test_classes_cli(school, rt, database_url, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from bot import cli
    from bot.cli import classes as cli_leave

    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    app = cli.app
    if not any(g.name == "classes" for g in app.registered_groups):
        cli_leave.register(app)
    runner = CliRunner()
    result = runner.invoke(app, ["classes", "set", "八（1）班", "张老师"])
    assert result.exit_code == 0, result.output
    assert "八(1)班" in result.output and "张老师" in result.output and "赵老师" in result.output
    result = runner.invoke(app, ["classes", "list"])
    assert result.exit_code == 0 and "八(1)班\t班主任：张老师\t学生 1 人" in result.output
    assert "七(3)班\t班主任：王老师\t学生 3 人" in result.output
    result = runner.invoke(app, ["classes", "set", "八(1)班", "无此人"])
    assert result.exit_code == 1 and "未找到人员" in result.output

    # 张老师 is now a head teacher and approves for 八(1)班
    school.say("赵老师", "请假 八(1)班 李明 明天全天 比赛")
    assert "批准 QJ1" in school.last_push("张老师")
    assert "已批准" in school.say("张老师", "批准 QJ1")
