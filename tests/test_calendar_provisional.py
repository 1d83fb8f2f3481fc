"""Beyond the official holiday data the bot keeps working on a provisional calendar, says so, and re-resolves
when the data arrives (SPEC section 6). Clocks here are deliberately *not* in the middle of 2026: the year end
of the last covered year, and years past the data up to 2030."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from jobs import builtin
from jobs import reminder as reminder_jobs
from storage import calendar_sync, duty
from storage import reminder as rem
from storage.clock import FrozenClock
from storage.outbox import OutboxMessage
from tests.conftest import commands_on
from tests.test_schoolcal import add_official_2027

ROOT = Path(__file__).resolve().parent.parent
TERM = """
[term]
name = "学期"
start = {start}
end = {end}

[fire_drill]
times = [{drill}]

[canteen_meeting]
time = "15:30"
"""


def cli(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    from bot.cli import _load_plugins, app

    _load_plugins()
    return CliRunner().invoke(app, list(args), env=env)


def term_config(tmp: Path, now: datetime) -> str:
    """The kind of term a school would configure at `now`: this term, a fire drill next week."""
    y = now.year
    start, end = (date(y, 9, 1), date(y + 1, 1, 22)) if now.month >= 8 else (date(y, 2, 20), date(y, 7, 5))
    drill = now.replace(hour=15, minute=0) + (date(y, 1, 8) - date(y, 1, 1))
    path = tmp / "houqin.toml"
    path.write_text(TERM.format(start=start, end=end, drill=drill.isoformat()), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 12, 1, 9, 30),  # the day the issue was found
        datetime(2026, 12, 31, 23, 59),  # the last minute of the last covered year
        datetime(2027, 1, 1, 0, 0),  # the first minute past it
        datetime(2027, 6, 15, 10, 0),
        datetime(2028, 2, 1, 8, 0),
        datetime(2030, 12, 31, 12, 0),
    ],
)
def test_init_never_fails_for_lack_of_calendar_data(at, database_url, db, tmpdir_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmpdir_path)
    commands_on(FrozenClock(at), monkeypatch)
    env = {"DATABASE_URL": database_url, "HOUQIN_CONFIG": term_config(tmpdir_path, at), "REDIS_URL": ""}
    result = cli(env, "init")
    assert result.exit_code == 0, result.output
    assert "内置提醒：新建" in result.output
    assert "暂按法定假日推算，待国务院公布后自动更新" in result.output
    if at.year >= 2027 or at.month == 12:
        assert "个日期为推算" in result.output  # the term runs into a year without official data
    again = cli(env, "init")
    assert again.exit_code == 0 and "新建 0 条" in again.output


def test_init_with_the_real_clock_in_a_fresh_install(tmp_path: Path) -> None:
    """`houqin init` as a new school runs it: a new process, the machine's own clock, the default config."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}", "REDIS_URL": "", "HOUQIN_CONFIG": ""}
    env.pop("HOUQIN_ENV", None)
    shutil_houqin = Path(sys.executable).with_name("houqin")
    cmd = [str(shutil_houqin), "init"] if shutil_houqin.exists() else [sys.executable, "-m", "bot.cli", "init"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "内置提醒" in done.stdout and "节假日日历：官方数据覆盖" in done.stdout


# --------------------------------------------------------------------------------------------------------
# Duty over provisional dates


@pytest.fixture
def school(chat, clock):  # type: ignore[no-untyped-def]
    clock.set(datetime(2026, 12, 20, 9, 0))
    chat.person("赵主任", "admin")
    chat.person("钱校长", "leader")
    chat.person("孙校长", "leader")
    chat.person("王老师", "teacher")
    chat.person("周门卫", "guard")
    return chat


def test_duty_generate_asks_for_provisional(school, database_url, tmpdir_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmpdir_path)
    env = {"DATABASE_URL": database_url, "REDIS_URL": "", "HOUQIN_CONFIG": ""}
    refused = cli(env, "duty", "generate", "--from", "2026-12-26", "--to", "2027-01-03")
    assert refused.exit_code == 1
    assert "2027 年的放假安排还没有官方数据" in refused.output and "--provisional" in refused.output
    done = cli(env, "duty", "generate", "--from", "2026-12-26", "--to", "2027-01-03", "--provisional")
    assert done.exit_code == 0, done.output
    assert "2027-01-01" in done.output and "（推算）" in done.output and "待国务院公布后自动更新" in done.output
    assert "2026-12-26" in done.output and "2026-12-26 （推算）" not in done.output  # 2026 is official

    rota = school.say("王老师", "值班表")
    assert "1月1日（周五） 钱校长*" in rota or "1月1日（周五） 孙校长*" in rota
    assert "（暂按法定假日推算，待国务院公布后自动更新）" in rota
    assert "12月26日（周六） " in rota and "12月26日（周六） 钱校长*" not in rota


def test_workday_reminder_and_escalation_across_the_year_end(school, rt, clock):  # type: ignore[no-untyped-def]
    clock.set(datetime(2026, 12, 31, 7, 0))
    school.say("王老师", "提醒 工作日 7:30 晨检")
    for day in (datetime(2026, 12, 31, 7, 30), datetime(2027, 1, 4, 7, 30), datetime(2027, 1, 5, 7, 30)):
        clock.set(day)
        with rt.db.session() as s:
            reminder_jobs.fire(s, clock.now())
    pushes = school.pushes("王老师")
    assert len(pushes) == 3 and all("晨检" in p for p in pushes)
    with rt.db.session() as s:
        r = s.get(rem.Reminder, 1)
        assert r is not None and r.next_due_at == datetime(2027, 1, 6, 7, 30) and rem.provisional(r)


# --------------------------------------------------------------------------------------------------------
# The official data arrives


def test_an_upgrade_re_resolves_and_tells_the_admins_once(school, rt, clock, monkeypatch):  # type: ignore[no-untyped-def]
    clock.set(datetime(2027, 9, 20, 9, 0))
    with rt.db.session() as s:
        calendar_sync.resolve(s, clock.now())  # what `houqin init` recorded: official data through 2026
        duty.generate(s, date(2027, 10, 1), date(2027, 10, 10), now=clock.now(), provisional=True)
    provisional_days = set(rota_days(rt))
    # Law only: 10.1–10.3 off, then the weekend 10.9–10.10; 10.4–10.8 school days.
    assert provisional_days == {date(2027, 10, d) for d in (1, 2, 3, 9, 10)}
    clock.set(datetime(2027, 10, 8, 7, 0))
    school.say("王老师", "提醒 工作日 7:30 晨检")
    tx = reminder_id(rt, "晨检")
    with rt.db.session() as s:
        r = s.get(rem.Reminder, tx)
        assert r is not None and r.next_due_at == datetime(2027, 10, 8, 7, 30)
    clock.set(datetime(2027, 10, 8, 8, 0))
    with rt.db.session() as s:
        reminder_jobs.fire(s, clock.now())
        assert s.get(rem.Reminder, tx).next_due_at == datetime(2027, 10, 11, 7, 30)  # type: ignore[union-attr]

    add_official_2027(monkeypatch)  # 国庆 10.1–10.7, make-up workday Saturday 10.9
    with rt.db.session() as s:
        report = calendar_sync.resolve(s, clock.now())
    assert report.newly_official == [2027]
    assert any("晨检" in c and "10月11日" in c and "10月9日" in c for c in report.changes), report.changes
    assert any("10月9日" in c and "调休上班" in c for c in report.changes), report.changes
    assert not any("10月4日" in c for c in report.changes)  # in the past at 10.8: not reported
    with rt.db.session() as s:
        assert s.get(rem.Reminder, tx).next_due_at == datetime(2027, 10, 9, 7, 30)  # type: ignore[union-attr]
    assert date(2027, 10, 9) not in rota_days(rt) and date(2027, 10, 10) in rota_days(rt)
    with rt.db.session() as s:  # the day's duty reminders went with it
        keys = [r.builtin_key for r in s.exec(select(rem.Reminder).where(rem.Reminder.state == rem.ACTIVE)).all()]
    assert not any(k and k.startswith("duty:20271009") for k in keys)

    told = [p for p in school.pushes("赵主任") if "【日历更新】" in p]  # (the rest: duty reminders missed in the test)
    assert len(told) == 1 and "2027" in told[0] and "晨检" in told[0] and "调休上班" in told[0]
    with rt.db.session() as s:  # a second process, or the next hourly check: nothing new, nobody told again
        assert calendar_sync.resolve(s, clock.now()).changes == []
    assert len([p for p in school.pushes("赵主任") if "【日历更新】" in p]) == 1
    assert "*" not in school.say("王老师", "值班表")  # no longer provisional


def test_an_upgrade_lists_new_days_off_without_duty(school, rt, clock, monkeypatch):  # type: ignore[no-untyped-def]
    clock.set(datetime(2027, 9, 1, 9, 0))
    with rt.db.session() as s:
        calendar_sync.resolve(s, clock.now())
        duty.generate(s, date(2027, 9, 25), date(2027, 10, 10), now=clock.now(), provisional=True)
    add_official_2027(monkeypatch)
    with rt.db.session() as s:
        report = calendar_sync.resolve(s, clock.now())
    new_days = [c for c in report.changes if "尚未安排值班" in c]
    assert [c.split(" ")[0] for c in new_days] == [f"2027年10月{d}日（周{w}）" for d, w in
                                                   ((4, "一"), (5, "二"), (6, "三"), (7, "四"))]
    assert "换班 10月4日 领导姓名" in new_days[0]


def test_the_scheduler_job_re_resolves_built_ins_from_the_config(school, rt, clock, monkeypatch, tmpdir_path):  # type: ignore[no-untyped-def]
    clock.set(datetime(2027, 9, 20, 9, 0))
    path = tmpdir_path / "houqin.toml"
    path.write_text(TERM.format(start="2027-09-01", end="2028-01-20", drill="2027-10-09T10:00:00"), encoding="utf-8")
    cfg = builtin.load_config(str(path))
    with rt.db.session() as s:
        calendar_sync.resolve(s, clock.now())
        summary = builtin.sync_builtin(s, cfg, clock.now())
    assert "个日期为推算" in summary
    drill = [r for r in builtin_rows(rt) if "fire-drill" in (r.builtin_key or "") and r.builtin_key.endswith("ahead")]  # type: ignore[union-attr]
    assert [r.next_due_at for r in drill] == [datetime(2027, 10, 11, 9, 0)]  # Saturday 10.9 → Monday, provisional
    add_official_2027(monkeypatch)  # 10.9 becomes a make-up workday: the drill stays on 10.9
    with rt.db.session() as s:
        result = builtin.calendar_check(s, clock.now(), config=cfg)
    assert result and "change" in result
    drill = [r for r in builtin_rows(rt) if "fire-drill" in (r.builtin_key or "") and r.state == rem.ACTIVE
             and r.builtin_key.endswith("ahead")]  # type: ignore[union-attr]
    assert [r.next_due_at for r in drill] == [datetime(2027, 10, 9, 9, 0)]
    told = school.pushes("赵主任")
    assert len(told) == 1 and "举行消防演" in told[0] and "→ 10月9日 09:00（周六）" in told[0]


def test_reminders_stopped_by_an_earlier_release_resume(school, rt, clock):  # type: ignore[no-untyped-def]
    clock.set(datetime(2026, 12, 31, 7, 0))
    school.say("王老师", "提醒 工作日 7:30 晨检")
    with rt.db.session() as s:  # what the earlier release left: stopped at the year end for lack of data
        r = s.get(rem.Reminder, 1)
        assert r is not None
        r.state, r.next_due_at = rem.STOPPED, None
        s.add(r)
    clock.set(datetime(2027, 1, 2, 10, 0))
    with rt.db.session() as s:
        report = calendar_sync.resolve(s, clock.now())
        r = s.get(rem.Reminder, 1)
        assert r is not None and r.state == rem.ACTIVE and r.next_due_at == datetime(2027, 1, 4, 7, 30)
    assert any("恢复" in c for c in report.changes)
    with rt.db.session() as s:
        n = len(s.exec(select(OutboxMessage).where(OutboxMessage.kind == "system")).all())
    assert n == 1


def rota_days(rt) -> list[date]:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return [r.day for r in s.exec(select(duty.DutyRota)).all()]


def reminder_id(rt, text: str) -> int:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        r = s.exec(select(rem.Reminder).where(rem.Reminder.text == text)).first()
        assert r is not None and r.id is not None
        return r.id


def builtin_rows(rt) -> list[rem.Reminder]:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return list(s.exec(select(rem.Reminder).where(rem.Reminder.source == rem.SOURCE_BUILTIN)).all())
