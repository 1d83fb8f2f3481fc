"""Holiday duty 节假日行政值日: generation over the 2026 Spring Festival and National Day, import, reminders,
值班 / 值班表 / 换班, and the `houqin duty` commands."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from jobs import reminder as reminder_jobs
from storage import duty
from storage.errors import UserError
from storage.people import Person
from storage.schoolcal import CalendarUnavailable


def fire(rt) -> None:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        reminder_jobs.fire(s, rt.clock.now())


def rota(rt) -> dict[date, str]:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return {r.day: p.name for r, p in duty.coming(s, date(2000, 1, 1), limit=1000)}


def generate(rt, start: date, end: date) -> list[duty.DutyRota]:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return duty.generate(s, start, end, now=rt.clock.now())


@pytest.fixture
def school(chat, clock):  # type: ignore[no-untyped-def]
    clock.set(datetime(2026, 1, 20, 9, 0))
    chat.person("赵主任", "admin")
    chat.person("钱校长", "leader")
    chat.person("孙校长", "leader")
    chat.person("李书记", "leader")
    chat.person("王老师", "teacher")
    chat.person("周门卫", "guard")
    return chat


def test_spring_festival_2026(school, rt):  # type: ignore[no-untyped-def]
    rows = generate(rt, date(2026, 2, 14), date(2026, 2, 28))
    days = [r.day for r in rows]
    # 2月15日–23日 is the holiday; 2月14日 and 2月28日 are make-up Saturdays (school days): no duty.
    assert days == [date(2026, 2, d) for d in range(15, 24)]
    names = list(rota(rt).values())
    assert names[:4] == ["钱校长", "孙校长", "李书记", "钱校长"]
    assert {n: names.count(n) for n in set(names)} == {"钱校长": 3, "孙校长": 3, "李书记": 3}


def test_national_day_2026_and_round_robin_carries_on(school, rt, clock):  # type: ignore[no-untyped-def]
    clock.set(datetime(2026, 9, 1, 9, 0))
    generate(rt, date(2026, 9, 19), date(2026, 9, 30))
    generate(rt, date(2026, 10, 1), date(2026, 10, 11))
    r = rota(rt)
    assert date(2026, 9, 20) not in r and date(2026, 10, 10) not in r  # make-up workdays
    assert [d for d in r if d.month == 10] == [date(2026, 10, d) for d in (1, 2, 3, 4, 5, 6, 7, 11)]
    september = [r[d] for d in sorted(r) if d.month == 9]
    leaders = ["钱校长", "孙校长", "李书记"]
    nxt = leaders[(leaders.index(september[-1]) + 1) % 3]
    assert r[date(2026, 10, 1)] == nxt  # the second run continues the rotation, it does not restart it


def test_generate_refuses_uncovered_year(school, rt):  # type: ignore[no-untyped-def]
    with pytest.raises(CalendarUnavailable) as err:
        generate(rt, date(2026, 12, 26), date(2027, 1, 3))
    assert "2027" in str(err.value)
    assert rota(rt) == {}


def test_generate_needs_leaders(chat, rt, clock):  # type: ignore[no-untyped-def]
    with pytest.raises(UserError) as err:
        generate(rt, date(2026, 12, 5), date(2026, 12, 6))
    assert "校领导" in err.value.message


def test_duty_reminders(school, rt, clock):  # type: ignore[no-untyped-def]
    generate(rt, date(2026, 2, 15), date(2026, 2, 16))
    r = rota(rt)
    first, second = r[date(2026, 2, 15)], r[date(2026, 2, 16)]
    with rt.db.session() as s:
        phone = s.exec(select(Person).where(Person.name == first)).one()
        phone.phone = "13800001111"
        s.add(phone)
    clock.set(datetime(2026, 2, 14, 18, 0))
    fire(rt)
    eve = school.pushes(first)
    assert len(eve) == 1 and "明天 2月15日（周日）" in eve[0] and "值日" in eve[0]
    assert school.pushes("周门卫") == [] and school.pushes(second) == []
    clock.set(datetime(2026, 2, 15, 7, 30))
    fire(rt)
    assert "今天 2月15日（周日） 由您值班" in school.last_push(first)
    guard = school.pushes("周门卫")
    assert len(guard) == 1 and f"值班领导：{first}" in guard[0]
    clock.set(datetime(2026, 2, 15, 18, 0))
    fire(rt)
    assert "明天 2月16日（周一）" in school.last_push(second)
    assert school.pushes("王老师") == []


def test_on_duty_and_rota_commands(school, rt, clock):  # type: ignore[no-untyped-def]
    generate(rt, date(2026, 2, 14), date(2026, 2, 28))
    r = rota(rt)
    reply = school.say("王老师", "值班")  # 1月20日, a school day
    assert "今天不是值班日" in reply and f"2月15日（周日），值班领导：{r[date(2026, 2, 15)]}" in reply
    clock.set(datetime(2026, 2, 17, 10, 0))
    assert school.say("周门卫", "值班") == f"今天 2月17日（周二） 值班领导：{r[date(2026, 2, 17)]}"
    table = school.say("王老师", "值班表")
    assert "2月17日（周二）" in table and "2月23日（周一）" in table and "2月15日" not in table
    clock.set(datetime(2026, 3, 2, 9, 0))
    assert "近期暂无值班安排" in school.say("王老师", "值班")
    assert school.say("王老师", "值班表") == "暂无值班安排。"
    clock.set(datetime(2026, 3, 7, 9, 0))  # a Saturday with no rota
    assert "还没有安排值班领导" in school.say("王老师", "值班")


def test_swap_reassigns_and_tells_both(school, rt, clock):  # type: ignore[no-untyped-def]
    generate(rt, date(2026, 2, 15), date(2026, 2, 17))
    old = rota(rt)[date(2026, 2, 16)]
    new = next(n for n in ("钱校长", "孙校长", "李书记") if n != old)
    assert school.say("王老师", f"换班 2月16日 {new}").startswith("无权限")
    reply = school.say("赵主任", f"换班 2月16日 {new}")
    assert f"{old} → {new}" in reply and "已通知两位领导" in reply
    assert rota(rt)[date(2026, 2, 16)] == new
    assert f"已改由 {new} 担任" in school.last_push(old)
    assert "改由您担任" in school.last_push(new) and f"原为 {old}" in school.last_push(new)
    # The day's reminders follow the new leader.
    clock.set(datetime(2026, 2, 15, 18, 0))
    fire(rt)
    assert "明天 2月16日（周一）" in school.last_push(new)
    assert all("明天 2月16日" not in p for p in school.pushes(old))
    clock.set(datetime(2026, 2, 16, 7, 30))
    fire(rt)
    assert f"值班领导：{new}" in school.last_push("周门卫")


def test_swap_two_days(school, rt, clock):  # type: ignore[no-untyped-def]
    generate(rt, date(2026, 2, 15), date(2026, 2, 16))
    a, b = rota(rt)[date(2026, 2, 15)], rota(rt)[date(2026, 2, 16)]
    reply = school.say("赵主任", "换班 2026-02-15 2026-02-16")
    assert "已互换" in reply
    assert rota(rt)[date(2026, 2, 15)] == b and rota(rt)[date(2026, 2, 16)] == a
    assert "调整为 2月16日" in school.last_push(a) and "调整为 2月15日" in school.last_push(b)


def test_swap_refusals(school, rt, clock):  # type: ignore[no-untyped-def]
    generate(rt, date(2026, 2, 15), date(2026, 2, 16))
    cur = rota(rt)[date(2026, 2, 15)]
    assert "用法" in school.say("赵主任", "换班")
    assert "找不到校领导" in school.say("赵主任", "换班 2月15日 不存在")
    assert "不是校领导" in school.say("赵主任", "换班 2月15日 王老师")
    assert "本来就是" in school.say("赵主任", f"换班 2月15日 {cur}")
    assert "没有值班安排" in school.say("赵主任", "换班 2月15日 3月1日")
    assert "无法识别时间" in school.say("赵主任", "换班 哪天 钱校长")
    clock.set(datetime(2026, 2, 20, 9, 0))
    assert "已经过去" in school.say("赵主任", "换班 2026-02-15 钱校长")


def test_import_rows(school, rt):  # type: ignore[no-untyped-def]
    rows = [["日期", "领导"], ["2026-10-01", "钱校长"], ["2026/10/2", "孙校长"], ["2026年10月10日", "李书记"]]
    with rt.db.session() as s:
        done, errors, warnings = duty.import_rows(s, rows, now=rt.clock.now())
    assert len(done) == 3 and not errors
    assert warnings == ["第4行：2026-10-10 是工作日（上课日），仍按表导入"]
    bad = [["2026-10-03", "钱校长"], ["10-04", "孙校长"], ["2026-10-05", "王老师"], ["2026-10-03", "李书记"]]
    with rt.db.session() as s:
        done, errors, _ = duty.import_rows(s, bad, now=rt.clock.now())
    assert done == [] and len(errors) == 3
    assert date(2026, 10, 3) not in rota(rt)  # all or nothing


# --------------------------------------------------------------------------------------------------------
# CLI


def cli(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    from bot.cli import _load_plugins, app

    _load_plugins()
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def env(database_url, tmpdir_path, monkeypatch) -> dict[str, str]:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmpdir_path)
    return {"DATABASE_URL": database_url, "REDIS_URL": "", "HOUQIN_CONFIG": ""}


def test_cli_generate(school, env):  # type: ignore[no-untyped-def]
    result = cli(env, "duty", "generate", "--from", "2026-10-01", "--to", "2026-10-11")
    assert result.exit_code == 0, result.output
    assert "共 8 天" in result.output and "2026-10-01" in result.output and "2026-10-10" not in result.output
    result = cli(env, "duty", "generate", "--from", "2026-12-26", "--to", "2027-01-03")
    assert result.exit_code == 1 and "2027" in result.output
    result = cli(env, "duty", "generate", "--from", "明天", "--to", "2026-10-11")
    assert result.exit_code == 1 and "日期格式不对" in result.output
    result = cli(env, "duty", "list")
    assert result.exit_code == 0 and "2026-10-11" in result.output


def test_cli_import(school, env, tmpdir_path: Path, rt):  # type: ignore[no-untyped-def]
    good = tmpdir_path / "rota.csv"
    good.write_text("日期,领导\n2026-10-01,钱校长\n2026-10-02,孙校长\n", encoding="utf-8")
    result = cli(env, "duty", "import", str(good))
    assert result.exit_code == 0, result.output
    assert "已导入 2 天" in result.output
    assert rota(rt) == {date(2026, 10, 1): "钱校长", date(2026, 10, 2): "孙校长"}
    gbk = tmpdir_path / "gbk.csv"
    gbk.write_bytes("日期,领导\n2026-10-03,李书记\n".encode("gb18030"))
    assert cli(env, "duty", "import", str(gbk)).exit_code == 0
    bad = tmpdir_path / "bad.csv"
    bad.write_text("日期,领导\n2026-10-04,钱校长\n2026-10-05,无名氏\n", encoding="utf-8")
    result = cli(env, "duty", "import", str(bad))
    assert result.exit_code == 1 and "第3行" in result.output and "未导入" in result.output
    assert date(2026, 10, 4) not in rota(rt)
    assert cli(env, "duty", "import", str(tmpdir_path / "none.csv")).exit_code == 1


def test_guard_learns_of_a_swap_made_after_the_evening(school, rt, clock):  # type: ignore[no-untyped-def]
    generate(rt, date(2026, 2, 15), date(2026, 2, 15))
    old = rota(rt)[date(2026, 2, 15)]
    new = next(n for n in ("钱校长", "孙校长", "李书记") if n != old)
    clock.set(datetime(2026, 2, 14, 18, 0))
    fire(rt)
    clock.set(datetime(2026, 2, 14, 20, 0))
    school.say("赵主任", f"换班 2月15日 {new}")
    clock.set(datetime(2026, 2, 15, 7, 30))
    fire(rt)
    assert f"值班领导：{new}" in school.last_push("周门卫")
    assert "由您值班" in school.last_push(new)
    assert all("由您值班" not in p for p in school.pushes(old))
