"""Reminders 提醒 (TX): parsing and replies, each recurrence kind, school days, permissions, receipts and
escalation, missed-while-down, exactly once, built-in schedules and `houqin init`."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path

import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from jobs import builtin
from jobs import reminder as reminder_jobs
from storage import outbox as ob
from storage import reminder as rem
from storage.people import Person


def fire(rt) -> rem.FireReport:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return reminder_jobs.fire(s, rt.clock.now())


def escalate(rt) -> str | None:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return reminder_jobs.escalate(s, rt.clock.now())


def reminder(rt, n: int) -> rem.Reminder:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        r = s.get(rem.Reminder, n)
        assert r is not None
        return r


def occurrences(rt) -> list[rem.ReminderOccurrence]:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return list(s.exec(select(rem.ReminderOccurrence).order_by(col(rem.ReminderOccurrence.id))).all())


@pytest.fixture
def school(chat):  # type: ignore[no-untyped-def]
    chat.person("赵主任", "admin")
    chat.person("钱校长", "leader")
    chat.person("王老师", "teacher")
    chat.person("李老师", "teacher")
    chat.person("孙门卫", "guard")
    chat.person("周门卫", "guard")
    chat.person("吴师傅", "worker")
    return chat


# --------------------------------------------------------------------------------------------------------
# Setting, one-off


def test_one_off_for_self(school, rt, clock):  # type: ignore[no-untyped-def]
    reply = school.say("王老师", "提醒 明天8:00 交教案")
    assert "TX1" in reply and "12月2日 08:00（周三）" in reply and "您本人（1 人）" in reply
    assert "交教案" in reply
    clock.set(datetime(2026, 12, 2, 7, 59, 59))
    assert fire(rt).sent == 0
    clock.set(datetime(2026, 12, 2, 8, 0))
    report = fire(rt)
    assert report.sent == 1 and report.lags == [0.0]
    push = school.last_push("王老师")
    assert "交教案" in push and "TX1" in push
    assert reminder(rt, 1).state == rem.DONE and reminder(rt, 1).next_due_at is None
    clock.advance(minutes=5)
    assert fire(rt).sent == 0
    assert len(school.pushes("王老师")) == 1


def test_relative_seconds_and_targets(school, rt, clock):  # type: ignore[no-untyped-def]
    reply = school.say("赵主任", "提醒 30秒后 巡查东门 @门卫")
    assert "12月1日 09:00:30（周二）" in reply and "@门卫，共 2 人" in reply
    clock.advance(seconds=30)
    assert fire(rt).outbox == 2
    assert "巡查东门" in school.last_push("孙门卫") and "巡查东门" in school.last_push("周门卫")
    assert school.pushes("王老师") == []


def test_role_and_name_targets_count(school, rt, clock):  # type: ignore[no-untyped-def]
    school.person("郑老师", "teacher", bind=False)
    reply = school.say("钱校长", "提醒 今天下午3点 开会，带上材料 @教师 @吴师傅")
    assert "12月1日 15:00（周二）" in reply
    assert "共 4 人" in reply and "1 人未绑定" in reply
    assert "内容：开会，带上材料" in reply
    clock.set(datetime(2026, 12, 1, 15, 0))
    assert fire(rt).outbox == 3  # the unbound teacher has nobody to push to
    assert "开会，带上材料" in school.last_push("吴师傅")


def test_all_staff_excludes_parents(school, rt, clock):  # type: ignore[no-untyped-def]
    school.students(("2024001", "小明", "七(3)班"))
    school.person("小明妈妈", "parent", students=["2024001"])
    reply = school.say("赵主任", "提醒 10分钟后 全校大扫除 @全体")
    assert "共 7 人" in reply
    clock.advance(minutes=10)
    fire(rt)
    assert school.pushes("小明妈妈") == []
    assert "大扫除" in school.last_push("吴师傅")


def test_permissions(school):  # type: ignore[no-untyped-def]
    assert school.say("王老师", "提醒 明天8:00 开会 @全体").startswith("无权限")
    assert school.say("王老师", "提醒 明天8:00 开会 @李老师").startswith("无权限")
    assert school.say("孙门卫", "提醒 明天8:00 开会 @门卫").startswith("无权限")
    assert "TX1" in school.say("王老师", "提醒 明天8:00 交材料 @王老师")  # herself by name is fine
    assert "TX2" in school.say("钱校长", "提醒 明天8:00 检查 @门卫")
    assert "TX3" in school.say("赵主任", "提醒 明天8:00 检查 @李老师")


def test_bad_input_gets_clear_replies(school, rt):  # type: ignore[no-untyped-def]
    assert "用法" in school.say("王老师", "提醒")
    assert "无法识别时间" in school.say("王老师", "提醒 下班后 交材料")
    assert "请写上提醒内容" in school.say("王老师", "提醒 明天8:00")
    assert "时间已过" in school.say("王老师", "提醒 今天8:00 交材料")
    assert "找不到提醒对象" in school.say("赵主任", "提醒 明天8:00 交材料 @不存在")
    assert "日期不存在" in school.say("王老师", "提醒 2月30日 8:00 交材料")
    assert "未找到 TX9" in school.say("王老师", "取消提醒 TX9")
    assert "编号" in school.say("王老师", "取消提醒 BX9")
    with rt.db.session() as s:
        assert s.exec(select(rem.Reminder)).first() is None


# --------------------------------------------------------------------------------------------------------
# Recurrence kinds


def test_daily(school, rt, clock):  # type: ignore[no-untyped-def]
    reply = school.say("王老师", "提醒 每天17:30 填写日志")
    assert "每天 17:30" in reply and "下次 12月1日 17:30（周二）" in reply
    clock.set(datetime(2026, 12, 1, 17, 30))
    fire(rt)
    assert reminder(rt, 1).next_due_at == datetime(2026, 12, 2, 17, 30)
    clock.set(datetime(2026, 12, 2, 17, 30, 0, 500000))
    fire(rt)
    assert len(school.pushes("王老师")) == 2
    assert reminder(rt, 1).state == rem.ACTIVE


def test_weekly(school, rt, clock):  # type: ignore[no-untyped-def]
    reply = school.say("王老师", "提醒 每周一 8:00 升旗仪式")
    assert "每周一 08:00" in reply and "12月7日 08:00（周一）" in reply
    clock.set(datetime(2026, 12, 7, 8, 0))
    fire(rt)
    assert reminder(rt, 1).next_due_at == datetime(2026, 12, 14, 8, 0)


def test_monthly(school, rt, clock):  # type: ignore[no-untyped-def]
    reply = school.say("王老师", "提醒 每月1日 9:00 交月报")
    assert "每月1日 09:00" in reply
    assert reminder(rt, 1).next_due_at == datetime(2027, 1, 1, 9, 0)  # 12月1日 09:00 is now, not after it
    clock.set(datetime(2027, 1, 1, 9, 0))
    fire(rt)
    assert reminder(rt, 1).next_due_at == datetime(2027, 2, 1, 9, 0)
    assert "交月报" in school.last_push("王老师")


def test_workday_follows_the_official_calendar(school, rt, clock):  # type: ignore[no-untyped-def]
    clock.set(datetime(2026, 9, 30, 8, 0))  # the Wednesday before National Day
    reply = school.say("王老师", "提醒 工作日 7:30 晨检")
    assert "工作日 07:30" in reply and "下次 10月8日 07:30（周四）" in reply  # 10月1日–7日 are holidays
    dues = []
    for _ in range(3):
        clock.set(reminder(rt, 1).next_due_at)  # type: ignore[arg-type]
        fire(rt)
        dues.append(clock.now())
    assert dues == [datetime(2026, 10, 8, 7, 30), datetime(2026, 10, 9, 7, 30),
                    datetime(2026, 10, 10, 7, 30)]  # 10月10日 is a make-up Saturday: a school day
    assert reminder(rt, 1).next_due_at == datetime(2026, 10, 12, 7, 30)


def test_workday_beyond_the_calendar_goes_on_provisionally(school, rt, clock):  # type: ignore[no-untyped-def]
    clock.set(datetime(2026, 12, 31, 7, 0))
    school.say("王老师", "提醒 工作日 7:30 晨检")
    clock.set(datetime(2026, 12, 31, 7, 30))
    fire(rt)
    r = reminder(rt, 1)
    assert r.state == rem.ACTIVE and r.next_due_at == datetime(2027, 1, 4, 7, 30)  # 元旦 off, then the weekend
    assert len(school.pushes("王老师")) == 1
    listed = school.say("王老师", "提醒列表")
    assert "工作日 07:30" in listed and "按法定假日推算" in listed
    reply = school.say("王老师", "提醒 工作日 7:30 晨检")
    assert "相同的提醒 TX1" in reply  # the same one again: asked first
    assert "TX2" in school.say("王老师", "确认")


# --------------------------------------------------------------------------------------------------------
# List and cancel


def test_list_and_cancel(school, rt, clock):  # type: ignore[no-untyped-def]
    school.say("王老师", "提醒 明天8:00 交教案")
    school.say("李老师", "提醒 每周一 8:00 升旗")
    school.say("赵主任", "提醒 明天9:00 检查 @门卫 需回执")
    mine = school.say("王老师", "提醒列表")
    assert "TX1" in mine and "TX2" not in mine and "交教案" in mine
    everyone = school.say("赵主任", "提醒列表")
    assert all(f"TX{i}" in everyone for i in (1, 2, 3))
    assert "（王老师）" in everyone and "[需回执]" in everyone and "每周一 08:00" in everyone
    assert school.say("李老师", "取消提醒 TX1") == "未找到 TX1"
    assert "已取消提醒 TX1" in school.say("王老师", "取消提醒 tx1")
    assert "已取消" in school.say("王老师", "取消提醒 1")
    assert "已取消提醒 TX2" in school.say("赵主任", "取消提醒 TX2")
    assert "暂无" in school.say("王老师", "提醒列表")
    clock.set(datetime(2026, 12, 7, 8, 0))
    fire(rt)
    assert school.pushes("王老师") == [] and school.pushes("李老师") == []


# --------------------------------------------------------------------------------------------------------
# Receipts and escalation


def test_receipt_ack_and_escalation_once(school, rt, clock):  # type: ignore[no-untyped-def]
    reply = school.say("赵主任", "提醒 10分钟后 检查消防器材 @门卫 需回执")
    assert "需回执" in reply
    assert "还没到提醒时间" in school.say("孙门卫", "收到 TX1")
    clock.advance(minutes=10)
    fire(rt)
    push = school.last_push("孙门卫")
    assert "收到 TX1" in push and "完成 TX1" in push
    assert "已确认收到 TX1" in school.say("孙门卫", "收到 TX1")
    assert "确认过 TX1" in school.say("孙门卫", "收到 tx1")
    assert school.say("王老师", "收到 TX1") == "未找到 TX1"
    clock.advance(minutes=29)
    assert escalate(rt) is None
    clock.advance(minutes=1)
    assert escalate(rt)
    told = school.pushes("赵主任")
    assert len(told) == 1 and "周门卫" in told[0] and "孙门卫" not in told[0] and "TX1" in told[0]
    clock.advance(minutes=30)
    assert escalate(rt) is None
    assert len(school.pushes("赵主任")) == 1


def test_all_acknowledged_nothing_escalates(school, rt, clock):  # type: ignore[no-untyped-def]
    school.say("赵主任", "提醒 10分钟后 晚间巡查 @门卫 [回执]")
    clock.advance(minutes=10)
    fire(rt)
    assert "已确认收到" in school.say("孙门卫", "收到 TX1")
    reply = school.say("周门卫", "完成 TX1 东门围栏有破损")
    assert "已记录完成 TX1" in reply and "东门围栏有破损" in reply
    assert "东门围栏有破损" in school.last_push("赵主任")  # the finding goes to whoever set it
    clock.advance(hours=2)
    assert escalate(rt) is None
    assert all("未回执" not in p for p in school.pushes("赵主任"))


def test_done_routes_by_prefix_and_receipt_word_is_not_content(school, rt, clock):  # type: ignore[no-untyped-def]
    school.say("赵主任", "提醒 10分钟后 检查水泵 @吴师傅 需回执")
    reply = school.say("赵主任", "提醒 10分钟后 交回执单 @吴师傅")
    assert "需回执" not in reply and "交回执单" in reply
    clock.advance(minutes=10)
    fire(rt)
    assert "已记录完成 TX1" in school.say("吴师傅", "完成 TX1 水泵正常")  # a worker: 完成 BX… is repairs'
    assert "不需要回执" in school.say("吴师傅", "收到 TX2")


def test_personal_receipt_reminds_the_author_not_the_admins(school, rt, clock):  # type: ignore[no-untyped-def]
    reply = school.say("王老师", "提醒 10分钟后 交教案 需回执")
    assert "需回执" in reply and "管理员" not in reply and "再提醒您" in reply
    clock.advance(minutes=10)
    fire(rt)
    clock.advance(minutes=30)
    assert escalate(rt)
    assert school.pushes("赵主任") == []
    assert "您还没有回执" in school.last_push("王老师") and "收到 TX1" in school.last_push("王老师")


def test_receipt_not_needed(school, rt, clock):  # type: ignore[no-untyped-def]
    school.say("王老师", "提醒 10分钟后 喝水")
    clock.advance(minutes=10)
    fire(rt)
    assert "不需要回执" in school.say("王老师", "收到 TX1")
    assert school.say("李老师", "收到 TX1") == "未找到 TX1"


# --------------------------------------------------------------------------------------------------------
# Missed while down


def test_missed_less_than_an_hour_fires_on_start(school, rt, clock):  # type: ignore[no-untyped-def]
    school.say("赵主任", "提醒 今天9:10 开门 @门卫")
    clock.set(datetime(2026, 12, 1, 10, 9, 59))  # server back 59 min 59 s late
    report = fire(rt)
    assert report.sent == 1 and report.missed == 0
    assert "开门" in school.last_push("孙门卫")


def test_missed_more_than_an_hour_is_recorded_and_admins_told(school, rt, clock):  # type: ignore[no-untyped-def]
    school.say("王老师", "提醒 今天9:10 开门")
    clock.set(datetime(2026, 12, 1, 10, 10, 1))
    report = fire(rt)
    assert report.sent == 0 and report.missed == 1
    assert school.pushes("王老师") == []
    told = school.pushes("赵主任")
    assert len(told) == 1 and "错过" in told[0] and "TX1" in told[0] and "09:10" in told[0]
    occ = occurrences(rt)
    assert [o.status for o in occ] == [rem.MISSED]
    assert reminder(rt, 1).state == rem.DONE
    fire(rt)
    assert len(school.pushes("赵主任")) == 1


def test_recurring_down_for_days(school, rt, clock):  # type: ignore[no-untyped-def]
    school.say("王老师", "提醒 每天9:30 晨读")
    clock.set(datetime(2026, 12, 4, 10, 0))  # down since the 1st: 1st–3rd missed, the 4th 30 min late
    report = fire(rt)
    assert report.missed == 3 and report.sent == 1
    assert ["晨读" in p for p in school.pushes("王老师")] == [True]
    told = school.pushes("赵主任")
    assert len(told) == 1 and "等 3 次" in told[0]
    assert reminder(rt, 1).next_due_at == datetime(2026, 12, 5, 9, 30)


# --------------------------------------------------------------------------------------------------------
# Exactly once


def test_second_process_finds_the_occurrence_taken(school, rt, clock):  # type: ignore[no-untyped-def]
    """Process B read the reminder before A committed: B's insert of the same occurrence does nothing."""
    school.say("赵主任", "提醒 10分钟后 锁门 @门卫")
    due = reminder(rt, 1).next_due_at
    clock.advance(minutes=10)
    with rt.db.session() as s:
        s.add(rem.ReminderOccurrence(reminder_id=1, due_at=due, fired_at=clock.now(), status=rem.SENT))
    report = fire(rt)
    assert report.sent == 0 and report.outbox == 0
    assert reminder(rt, 1).next_due_at is None
    assert school.pushes("孙门卫") == []


def test_concurrent_ticks_deliver_once(school, rt, clock):  # type: ignore[no-untyped-def]
    for i in range(20):
        school.say("赵主任", f"提醒 10分钟后 任务{i} @门卫 @吴师傅")
    clock.advance(minutes=10)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            fire(rt)
        except Exception as exc:  # noqa: BLE001 - pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = [r for r in school.outbox() if r.kind == "reminder"]
    assert len(rows) == 60
    assert len({r.dedup_key for r in rows}) == 60
    assert len(occurrences(rt)) == 20


def test_scheduler_tick_and_periodic_slots(school, rt, clock):  # type: ignore[no-untyped-def]
    from jobs.registry import PeriodicJob
    from jobs.scheduler import Scheduler

    woken = []
    rt.wake_sender = lambda: woken.append(1)
    school.say("赵主任", "提醒 1分钟后 交班 @门卫")
    sched = Scheduler(rt)
    assert sched.tick() == 0
    clock.advance(minutes=1)
    assert sched.tick() == 2 and woken
    assert sched.tick() == 0
    runs: list[datetime] = []
    job = PeriodicJob("test-job", lambda s, now: runs.append(now) or "ok", 60)
    other = Scheduler(rt)  # another process
    assert sched.run_periodic(job, slot=100) == "ok"
    assert other.run_periodic(job, slot=100) is None
    assert other.run_periodic(job, slot=101) == "ok"
    assert len(runs) == 2

    def boom(s, now):  # type: ignore[no-untyped-def]
        raise RuntimeError("job failed")

    failing = PeriodicJob("test-job", boom, 60)
    assert sched.run_periodic(failing, slot=102) is None
    assert other.run_periodic(job, slot=102) == "ok"  # the failed run released its slot
    assert "reminder-receipts" in sched.jobs


def test_scheduler_starts_and_stops(rt, clock):  # type: ignore[no-untyped-def]
    from jobs.scheduler import start_scheduler

    sched = start_scheduler(rt)
    try:
        assert sched._aps is not None and sched._aps.running
    finally:
        sched.stop()
    assert sched._aps is None


# --------------------------------------------------------------------------------------------------------
# Built-in schedules


CONFIG = """
[term]
name = "2026年秋季学期"
start = 2026-08-31
end = 2026-12-31

[fire_drill]
times = [2026-12-09T15:00:00, 2026-12-12T10:00:00]
place = "操场"

[canteen_meeting]
time = "15:30"
days_before_end = 4

[property_inspection]
day = 5
time = "09:00"

[guard]
fire_equipment_check = "08:00"
evening_patrol = "21:00"

[reminders]
receipt_escalation_minutes = 20
"""


def write_config(tmp: Path, text: str = CONFIG) -> str:
    path = tmp / "houqin.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def keyed(rt) -> dict[str, rem.Reminder]:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        rows = s.exec(select(rem.Reminder).where(rem.Reminder.source == rem.SOURCE_BUILTIN)).all()
        return {r.builtin_key: r for r in rows}  # type: ignore[misc]


def test_builtin_schedules(school, rt, clock, tmpdir_path):  # type: ignore[no-untyped-def]
    cfg = builtin.load_config(write_config(tmpdir_path))
    assert cfg.receipt_minutes == 20
    with rt.db.session() as s:
        summary = builtin.sync_builtin(s, cfg, clock.now())
    assert "新建" in summary and "2026年秋季学期" in summary
    rows = keyed(rt)
    drill = {k: r for k, r in rows.items() if "fire-drill" in k}
    # 12月12日 is a Saturday: the drill moves to Monday 14th, same time.
    assert sorted(r.next_due_at for r in drill.values()) == [  # type: ignore[type-var]
        datetime(2026, 12, 8, 16, 0), datetime(2026, 12, 9, 14, 0),
        datetime(2026, 12, 13, 16, 0), datetime(2026, 12, 14, 9, 0)]
    assert all(r.targets == '["all"]' for r in drill.values())
    canteen = [r for k, r in rows.items() if "canteen" in k]
    assert sorted(r.next_due_at for r in canteen) == [  # type: ignore[type-var]
        datetime(2026, 12, 27, 16, 0), datetime(2026, 12, 28, 14, 30)]  # 31st − 4 days = Sunday 27th → Monday
    guard = rows["builtin:guard-fire-check"]
    assert guard.needs_receipt and guard.kind == "daily" and guard.next_due_at == datetime(2026, 12, 2, 8, 0)
    assert rows["builtin:guard-patrol"].next_due_at == datetime(2026, 12, 1, 21, 0)
    prop = rows["builtin:property-inspection"]
    assert prop.school_days_only and prop.next_due_at == datetime(2026, 12, 7, 9, 0)  # 5th is a Saturday
    assert not any("pre-term" in k for k in rows)  # term began in August: that one is past
    # The day-before notice of the drill reaches all staff.
    clock.set(datetime(2026, 12, 8, 16, 0))
    fire(rt)
    push = school.last_push("吴师傅")
    assert "明天12月9日（周三） 15:00 在操场举行消防演练" in push


def test_builtin_is_idempotent_and_follows_the_config(school, rt, clock, tmpdir_path):  # type: ignore[no-untyped-def]
    path = write_config(tmpdir_path)
    with rt.db.session() as s:
        builtin.sync_builtin(s, builtin.load_config(path), clock.now())
    before = keyed(rt)
    with rt.db.session() as s:
        summary = builtin.sync_builtin(s, builtin.load_config(path), clock.now())
    assert "新建 0 条，更新 0 条" in summary
    assert keyed(rt).keys() == before.keys()
    # The admin cancels the evening patrol; the first drill is dropped from the config.
    patrol = before["builtin:guard-patrol"]
    assert "已取消" in school.say("赵主任", f"取消提醒 TX{patrol.id}")
    write_config(tmpdir_path, CONFIG.replace("2026-12-09T15:00:00, ", ""))
    with rt.db.session() as s:
        summary = builtin.sync_builtin(s, builtin.load_config(path), clock.now())
    assert "停用 2 条" in summary
    after = keyed(rt)
    assert after["builtin:guard-patrol"].state == rem.CANCELLED  # stays as the admin left it
    assert [r.state for k, r in after.items() if "202612091500" in k] == [rem.CANCELLED] * 2


def test_builtin_guard_check_escalates(school, rt, clock, tmpdir_path):  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        builtin.sync_builtin(s, builtin.load_config(write_config(tmpdir_path)), clock.now())
    n = keyed(rt)["builtin:guard-fire-check"].id
    clock.set(datetime(2026, 12, 2, 8, 0))
    with rt.db.session() as s:
        reminder_jobs.fire(s, clock.now(), reminder_jobs.ReminderSettings(receipt_minutes=20))
    assert f"收到 TX{n}" in school.last_push("孙门卫")
    school.say("孙门卫", f"完成 TX{n} 正常")
    clock.advance(minutes=20)
    escalate(rt)
    told = [p for p in school.pushes("赵主任") if "未回执" in p]
    assert len(told) == 1 and "周门卫" in told[0]


def test_builtin_plans_a_year_without_data_provisionally(rt, clock, tmpdir_path):  # type: ignore[no-untyped-def]
    text = CONFIG.replace("end = 2026-12-31", "end = 2027-01-22")
    with rt.db.session() as s:
        summary = builtin.sync_builtin(s, builtin.load_config(write_config(tmpdir_path, text)), clock.now())
    assert "2027 年起暂按法定假日推算" in summary
    assert "个日期为推算" in summary
    assert any("canteen:期末:202701181530" in k for k in keyed(rt))  # the term-end meeting, a Monday in 2027


def test_bad_config_is_explained(tmpdir_path):  # type: ignore[no-untyped-def]
    from storage.errors import UserError

    for text, words in [("[term]\nstart = 2026-09-01\n", "end"),
                        ("[guard]\nevening_patrol = \"25:00\"\n", "guard.evening_patrol"),
                        ("[term\n", "格式有误")]:
        with pytest.raises(UserError) as err:
            builtin.load_config(write_config(tmpdir_path, text))
        assert words in err.value.message
    with pytest.raises(UserError):
        builtin.load_config(str(tmpdir_path / "nope.toml"))


@pytest.mark.parametrize("text, where, what", [
    ("[term]\nname = \"秋季\"\nstart = 2026-09-01\n", "[term]", "需要 start 和 end"),  # term.end missing
    ("[term]\nstart = \"2026/09/01\"\nend = 2027-01-22\n", "term.start", "「2026/09/01」不是日期（应为 2026-09-01）"),
    ("[term]\nstart = 2026-09-01\nend = 2026-08-31\n", "[term]", "期末日期早于开学日期"),
    ("term = \"2026秋\"\n", "[term]", "应为一个表"),
    ("[fire_drill]\ntimes = [\"下周三\"]\n", "fire_drill.times", "「下周三」不是日期时间"),
    ("[fire_drill]\ntargets = [3]\n", "fire_drill.targets", "应为对象列表"),
    ("[notices]\nhours_before = 0\n", "notices.hours_before", "应为 0–24 的小时数"),
    ("[notices]\nhours_before = \"1\"\n", "notices.hours_before", "应为 0–24 的小时数"),
    ("[canteen_meeting]\ndays_after_start = 2.5\n", "canteen_meeting.days_after_start", "应为 0–60 的整数"),
    ("[property_inspection]\nday = 31\n", "property_inspection.day", "应为 1–28 的整数"),
    ("[pre_term_inspection]\ndays_before = true\n", "pre_term_inspection.days_before", "应为 0–60 的整数"),
    ("[duty]\nmorning = \"七点半\"\n", "duty.morning", "「七点半」不是时间"),
    ("[reminders]\nreceipt_escalation_minutes = 0\n", "reminders.receipt_escalation_minutes", "应为 1–1440 的整数"),
    ("[reminders]\ntick_seconds = 10\n", "reminders.tick_seconds", "应为 0.1–5 秒"),
    # the first mistake in the file's order of tables is the one told
    ("[reminders]\ntick_seconds = 10\n[guard]\nevening_patrol = \"25:00\"\n", "guard.evening_patrol", "「25:00」"),
])
def test_config_mistakes_name_the_file_and_the_key(tmpdir_path, text, where, what):  # type: ignore[no-untyped-def]
    from storage.errors import UserError

    path = write_config(tmpdir_path, text)
    with pytest.raises(UserError) as err:
        builtin.load_config(path)
    assert err.value.message.startswith(f"配置文件 {path} 中 {where} 有误：")
    assert what in err.value.message


def test_config_reads_what_the_file_says_and_defaults_the_rest(tmpdir_path):  # type: ignore[no-untyped-def]
    text = ("[term]\nname = 2026\nstart = 2026-09-01T08:00:00\nend = \"2027-01-22\"\n"
            "[fire_drill]\ntimes = [2026-12-09T15:00:00, \"2026-12-10 15:00\"]\ntargets = \"@全体 @门卫\"\n"
            "[notices]\nday_before = \"8：30\"\nhours_before = 2\n[duty]\nmorning = 07:00:00\n"
            "[reminders]\ntick_seconds = 1\n[unknown]\nkey = 1\n[guard]\nunknown = 1\n")
    cfg = builtin.load_config(write_config(tmpdir_path, text))
    assert (cfg.term_name, cfg.term_start, cfg.term_end) == ("2026", date(2026, 9, 1), date(2027, 1, 22))
    assert cfg.fire_drills == [datetime(2026, 12, 9, 15, 0), datetime(2026, 12, 10, 15, 0)]
    assert cfg.fire_drill_targets == ["全体", "门卫"]
    assert (cfg.notice_day_before, cfg.notice_hours_before) == (clock_time(8, 30), 2.0)
    assert (cfg.duty.evening, cfg.duty.morning) == (clock_time(18, 0), clock_time(7, 0))
    assert cfg.tick_seconds == 1.0 and cfg.receipt_minutes == rem.RECEIPT_MINUTES
    assert cfg.guard_patrol_time == clock_time(21, 0) and cfg.canteen_targets == ["领导", "管理员"]


def test_example_config_loads() -> None:
    example = Path(__file__).resolve().parent.parent / "houqin.example.toml"
    cfg = builtin.load_config(str(example))
    assert cfg.term_start is not None and cfg.fire_drills


def cli(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    from bot.cli import _load_plugins, app

    _load_plugins()
    return CliRunner().invoke(app, list(args), env=env)


def test_cli_init(database_url, db, tmpdir_path, clock, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmpdir_path)
    env = {"DATABASE_URL": database_url, "HOUQIN_CONFIG": write_config(tmpdir_path), "REDIS_URL": ""}
    result = cli(env, "init")
    assert result.exit_code == 0, result.output
    assert "内置提醒：新建" in result.output and "消防演练" in result.output
    env["HOUQIN_CONFIG"] = write_config(tmpdir_path, CONFIG.replace("end = 2026-12-31", "end = 2027-01-22"))
    result = cli(env, "init")
    assert result.exit_code == 0 and "2027 年起暂按法定假日推算" in result.output


def test_cli_scheduler_starts_and_stops(database_url, db, clock, monkeypatch, tmpdir_path):  # type: ignore[no-untyped-def]
    import bot.cli.scheduler

    monkeypatch.chdir(tmpdir_path)
    monkeypatch.setattr(bot.cli.scheduler, "wait_for_signal", lambda: time.sleep(0.3))  # instead of Ctrl+C
    result = cli({"DATABASE_URL": database_url, "REDIS_URL": "", "SENDER": "off", "HOUQIN_CONFIG": ""}, "scheduler")
    assert result.exit_code == 0, result.output
    assert "调度器已启动" in result.output and "调度器已停止" in result.output


def test_escalation_uses_configured_delay(school, rt, clock):  # type: ignore[no-untyped-def]
    school.say("赵主任", "提醒 1分钟后 关窗 @门卫 需回执")
    clock.advance(minutes=1)
    with rt.db.session() as s:
        reminder_jobs.fire(s, clock.now(), reminder_jobs.ReminderSettings(receipt_minutes=5))
    clock.advance(minutes=4, seconds=59)
    assert escalate(rt) is None  # not the default 30 minutes, and not before the configured 5
    clock.advance(seconds=1)
    assert escalate(rt) == "1 条提醒的回执超时，已告知管理员"
    school.deliver()
    push = school.last_push("赵主任")
    assert push.startswith("【回执未确认】TX1「关窗」") and "已过 5 分钟，尚有 2 人未回执" in push, push
    assert "孙门卫" in push and "周门卫" in push


def test_outbox_rows_carry_dedup_keys(school, rt, clock):  # type: ignore[no-untyped-def]
    school.say("赵主任", "提醒 1分钟后 关窗 @门卫")
    clock.advance(minutes=1)
    fire(rt)
    with rt.db.session() as s:
        rows = s.exec(select(ob.OutboxMessage)).all()
        people = {p.id: p.name for p in s.exec(select(Person)).all()}
    keys = sorted((people[r.person_id], r.dedup_key) for r in rows)  # type: ignore[index]
    assert all(k.startswith("tx1:20261201090100:") for _, k in keys)
    assert sorted(n for n, _ in keys) == ["周门卫", "孙门卫"]


def test_lag_is_recorded(school, rt, clock):  # type: ignore[no-untyped-def]
    school.say("王老师", "提醒 1分钟后 喝水")
    clock.advance(minutes=1, seconds=0.25)
    assert fire(rt).lags == [pytest.approx(0.25)]
