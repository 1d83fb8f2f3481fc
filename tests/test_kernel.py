"""The shared domain kernel's small pieces: durations, dates and the state machine's one refusal wording."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest

from storage.errors import UserError
from storage.kernel import StateMachine, Transition, fmt_day, fmt_duration, fmt_time


def test_durations():
    assert fmt_duration(timedelta(minutes=5)) == "5分钟"
    assert fmt_duration(timedelta(hours=1, minutes=20)) == "1小时20分钟"
    assert fmt_duration(timedelta(hours=5)) == "5小时"
    assert fmt_duration(timedelta(days=3, hours=1)) == "3天1小时"
    assert fmt_duration(timedelta(hours=5, minutes=30), coarse=True) == "5小时"
    assert fmt_duration(timedelta(days=3, hours=1), coarse=True) == "3天"
    assert fmt_duration(timedelta(seconds=-5)) == "0分钟"


def test_dates():
    assert fmt_day(date(2026, 12, 1)) == "12月1日（周二）"
    assert fmt_day(date(2027, 1, 3), year=True) == "2027年1月3日（周日）"
    at = datetime(2026, 12, 2, 8, 0, 30)
    assert fmt_time(at) == "12月2日 08:00"
    assert fmt_time(at, weekday=True, seconds=True, year=True) == "2026年12月2日 08:00:30（周三）"


@dataclass
class Job:
    id: int
    state: str
    done_at: datetime | None = None

    @property
    def ref(self) -> str:
        return f"XC{self.id}"


MACHINE = StateMachine({"finish": Transition("完成", frozenset({"进行中"}), "已完成", "done_at")},
                       {("finish", "已完成"): "已经完成过了（{ref}）。"})


def test_state_machine_moves_along_the_table_and_refuses_in_one_wording():
    job = Job(1, "进行中")
    assert MACHINE.move(job, "finish", datetime(2026, 12, 1, 9)) == "进行中"
    assert job.state == "已完成" and job.done_at == datetime(2026, 12, 1, 9)
    with pytest.raises(UserError) as refused:
        MACHINE.move(job, "finish", datetime(2026, 12, 1, 10))
    assert refused.value.message == "XC1 当前状态为「已完成」，不能完成。已经完成过了（XC1）。"
    with pytest.raises(UserError) as refused:
        MACHINE.check(Job(2, "待开始"), "finish")
    assert refused.value.message == "XC2 当前状态为「待开始」，不能完成。"
