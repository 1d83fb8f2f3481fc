"""Checkpoints (点位), routes and their stops, rounds, visits (XC) and findings: the tables, the check items by
kind and the schedules a route can have."""

from __future__ import annotations

import re
from datetime import date, datetime, time

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Column, Field, SQLModel

__all__ = ["ABNORMAL", "DAILY", "DEFAULT_KIND", "KIND_ITEMS", "MAX_CODE", "MAX_LOCATION", "MAX_NAME", "MAX_NOTE",
           "MONTHLY", "NORMAL", "ONCE", "PREFIX", "SCENE_PREFIX", "SCHEDULES", "SCHOOL_DAYS", "WEEKLY", "Checkpoint",
           "InspectionFinding", "InspectionRound", "InspectionRoute", "InspectionVisit", "RouteStop", "split_items"]

PREFIX = "XC"
SCENE_PREFIX = "cp:"

NORMAL, ABNORMAL = "正常", "异常"
MAX_CODE, MAX_NAME, MAX_LOCATION, MAX_NOTE = 30, 60, 100, 300
DEFAULT_KIND = "巡查点"

# Check items by kind (a checkpoint may list its own).
KIND_ITEMS: dict[str, str] = {
    "灭火器": "压力正常；铅封完好；在有效期；无遮挡",
    "消防器材": "压力正常；铅封完好；在有效期；无遮挡",
    "消火栓": "箱门完好；水带水枪齐全；无遮挡",
    "应急照明": "通电正常；疏散指示清晰",
    "安全出口": "疏散通道畅通；出口指示灯完好",
    "配电间": "门锁完好；无异味异响；无杂物堆放；警示标识完好",
    "食堂": "燃气阀门关闭；灶具完好；食材与留样规范；冰箱温度正常",
    "饮用水": "饮水机清洁；滤芯在有效期；水质无异常",
    "教室": "门窗关好；灯和电器断电；无安全隐患",
    "监控": "画面正常；录像正常",
    "周界报警": "布防正常；报警测试正常",
    "运动场地": "器材牢固；场地无破损；无安全隐患",
    "财产": "数量相符；完好无损；标签清楚",
    DEFAULT_KIND: "门窗完好；无异常人员；无安全隐患",
}

SCHOOL_DAYS, DAILY, WEEKLY, MONTHLY, ONCE = "school_days", "daily", "weekly", "monthly", "once"
SCHEDULES = (SCHOOL_DAYS, DAILY, WEEKLY, MONTHLY, ONCE)


class Checkpoint(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=MAX_CODE)
    name: str = Field(max_length=MAX_NAME)
    location: str = Field(default="", max_length=MAX_LOCATION)  # the place a repair is reported for
    kind: str = Field(default=DEFAULT_KIND, max_length=20)
    items: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))  # 「；」 separated
    active: bool = True
    qr_ticket: str | None = Field(default=None, max_length=200)  # WeChat's permanent QR ticket, cached
    qr_url: str | None = Field(default=None, max_length=300)
    created_at: datetime

    @property
    def scene(self) -> str:
        return f"{SCENE_PREFIX}{self.id}"

    @property
    def place(self) -> str:
        return self.location or self.name

    def item_list(self) -> list[str]:
        return split_items(self.items) or split_items(KIND_ITEMS.get(self.kind, KIND_ITEMS[DEFAULT_KIND]))


class InspectionRoute(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str | None = Field(default=None, unique=True, max_length=80)  # built-in routes: builtin:<name>
    name: str = Field(max_length=MAX_NAME)
    schedule: str = Field(default=SCHOOL_DAYS, max_length=12)
    schedule_day: int | None = None  # weekly: 0 = Monday; monthly: day of the month
    schedule_date: date | None = None  # once
    start: time
    end: time
    roles: str = Field(default="", max_length=100)  # role keys, comma separated
    person_ids: str = Field(default="", max_length=200)  # named people, comma separated ids
    active: bool = True
    created_at: datetime


class RouteStop(SQLModel, table=True):
    route_id: int = Field(foreign_key="inspectionroute.id", primary_key=True)
    checkpoint_id: int = Field(foreign_key="checkpoint.id", primary_key=True)
    position: int = 0


class InspectionRound(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("route_id", "day"),)
    id: int | None = Field(default=None, primary_key=True)
    route_id: int = Field(foreign_key="inspectionroute.id")
    day: date
    starts_at: datetime
    ends_at: datetime = Field(index=True)
    reminded_at: datetime | None = None
    closed_at: datetime | None = None
    missed: int | None = None  # checkpoints not visited, counted at the end of the window


class InspectionVisit(SQLModel, table=True):
    __table_args__ = (Index("ix_inspectionvisit_person_at", "person_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    checkpoint_id: int = Field(foreign_key="checkpoint.id", index=True)
    round_id: int | None = Field(default=None, foreign_key="inspectionround.id", index=True)  # None: extra check
    person_id: int = Field(foreign_key="person.id")
    at: datetime = Field(index=True)
    via: str = Field(default="scan", max_length=10)  # scan | text (巡查 <点位>)
    result: str | None = Field(default=None, max_length=4)  # 正常 | 异常 | None: not answered yet
    note: str | None = Field(default=None, max_length=MAX_NOTE)

    @property
    def ref(self) -> str:
        return f"{PREFIX}{self.id}"


class InspectionFinding(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="inspectionvisit.id", unique=True)
    checkpoint_id: int = Field(foreign_key="checkpoint.id")
    description: str = Field(max_length=MAX_NOTE)
    ticket_id: int | None = Field(default=None, foreign_key="repairticket.id", index=True)
    photos: int = 0
    created_at: datetime


def split_items(text: str | None) -> list[str]:
    return [s.strip() for s in re.split(r"[;；、\n|]+", text or "") if s.strip()]
