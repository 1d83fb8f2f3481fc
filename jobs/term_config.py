"""The term-calendar config file (TOML; HOUQIN_CONFIG, see houqin.example.toml): one pydantic model per table,
and the `Config` the built-in schedules and the scheduler read.

Unknown tables and keys are ignored, as they always were. A mistake is a `UserError` naming the file and the
key (`term.start`), or the table (`[term]`) for a mistake of the whole table.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from storage.duty import DutyTimes
from storage.errors import UserError
from storage.reminder import RECEIPT_MINUTES

__all__ = ["Config", "ConfigFile", "config_path", "load_config"]


@dataclass
class Config:
    """What the jobs read, flat, with every default: a key missing from the file keeps its value here."""

    path: str | None = None
    term_name: str = ""
    term_start: date | None = None
    term_end: date | None = None
    # 消防演练
    fire_drills: list[datetime] = field(default_factory=list)
    fire_drill_targets: list[str] = field(default_factory=lambda: ["全体"])
    fire_drill_place: str = ""
    notice_day_before: time = time(16, 0)
    notice_hours_before: float = 1.0
    # 食堂管理委员会会议
    canteen_time: time = time(15, 30)
    canteen_days_after_start: int = 0
    canteen_days_before_end: int = 0
    canteen_targets: list[str] = field(default_factory=lambda: ["领导", "管理员"])
    canteen_place: str = ""
    # 每月财产检查
    property_day: int = 1
    property_time: time = time(9, 0)
    property_targets: list[str] = field(default_factory=lambda: ["管理员", "维修工"])
    # 门卫：每日消防器材检查、晚间巡查（需回执）
    guard_check_time: time = time(8, 0)
    guard_patrol_time: time = time(21, 0)
    guard_targets: list[str] = field(default_factory=lambda: ["门卫"])
    # 开学前食品与饮用水安全检查
    pre_term_days_before: int = 3
    pre_term_time: time = time(9, 0)
    pre_term_targets: list[str] = field(default_factory=lambda: ["管理员", "领导"])
    # 值班与提醒
    duty: DutyTimes = field(default_factory=DutyTimes)
    missed_grace_minutes: int = 60
    receipt_minutes: int = RECEIPT_MINUTES
    tick_seconds: float = 0.5


# --------------------------------------------------------------------------------------------------------
# Values as the file may write them. Each raises its complaint in Chinese (PydanticCustomError "houqin");
# pydantic's own errors (types, ranges) are worded from the field's `description`.


def _complaint(template: str, value: Any) -> PydanticCustomError:
    return PydanticCustomError("houqin", template, {"value": value})


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise _complaint("「{value}」不是日期（应为 2026-09-01）", value) from None


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    try:
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise _complaint("「{value}」不是日期时间（应为 2026-12-09 15:00）", value) from None


def _clock_time(value: Any) -> time:
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    try:
        return time.fromisoformat(str(value).strip().replace("：", ":").zfill(5))
    except ValueError:
        raise _complaint("「{value}」不是时间（应为 \"16:00\"）", value) from None


def _targets(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _complaint("应为对象列表，如 [\"@全体\"]", value)
    return [v.strip().lstrip("@") for v in value if v.strip()]


Day = Annotated[date, BeforeValidator(_day)]
Moment = Annotated[datetime, BeforeValidator(_moment)]
ClockTime = Annotated[time, BeforeValidator(_clock_time)]
Targets = Annotated[list[str], BeforeValidator(_targets)]
Text = Annotated[str, BeforeValidator(str)]  # a name or a place: whatever was written, as text


def _integer(lo: int, hi: int, config: str) -> Any:
    """An integer key from lo to hi, read into the Config attribute `config`."""
    return Field(None, ge=lo, le=hi, strict=True, serialization_alias=config, description=f"应为 {lo}–{hi} 的整数")


def _to(config: str, **kw: Any) -> Any:
    """A key read into the Config attribute `config` when the file has it."""
    return Field(None, serialization_alias=config, **kw)


# --------------------------------------------------------------------------------------------------------
# The tables. A key left out is None here and keeps the Config default; `serialization_alias` names the
# Config attribute it sets.


class Table(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    def settings(self) -> dict[str, Any]:
        """The keys the file set, by their Config attribute names."""
        return self.model_dump(by_alias=True, exclude_none=True)


class Term(Table):
    """[term] 学期：开学、期末日期。"""

    name: Text | None = _to("term_name")
    start: Day = Field(serialization_alias="term_start")
    end: Day = Field(serialization_alias="term_end")

    @model_validator(mode="before")
    @classmethod
    def _both_dates(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("start" not in data or "end" not in data):
            raise PydanticCustomError("houqin", "需要 start 和 end（开学、期末日期）")
        return data

    @model_validator(mode="after")
    def _in_order(self) -> Term:
        if self.end < self.start:
            raise PydanticCustomError("houqin", "期末日期早于开学日期")
        return self


class FireDrill(Table):
    """[fire_drill] 消防演练。"""

    times: list[Moment] | None = _to("fire_drills", description="应为日期时间列表，如 [2026-12-09T15:00:00]")
    targets: Targets | None = _to("fire_drill_targets")
    place: Text | None = _to("fire_drill_place")


class Notices(Table):
    """[notices] 消防演练、食堂会议的提前通知。"""

    day_before: ClockTime | None = _to("notice_day_before")
    hours_before: float | None = _to("notice_hours_before", gt=0, le=24, strict=True, description="应为 0–24 的小时数")


class CanteenMeeting(Table):
    """[canteen_meeting] 食堂管理委员会会议：开学和期末各一次。"""

    time: ClockTime | None = _to("canteen_time")
    days_after_start: int | None = _integer(0, 60, "canteen_days_after_start")
    days_before_end: int | None = _integer(0, 60, "canteen_days_before_end")
    targets: Targets | None = _to("canteen_targets")
    place: Text | None = _to("canteen_place")


class PropertyInspection(Table):
    """[property_inspection] 每月财产检查。"""

    day: int | None = _integer(1, 28, "property_day")
    time: ClockTime | None = _to("property_time")
    targets: Targets | None = _to("property_targets")


class Guard(Table):
    """[guard] 门卫每日任务（需回执）。"""

    fire_equipment_check: ClockTime | None = _to("guard_check_time")
    evening_patrol: ClockTime | None = _to("guard_patrol_time")
    targets: Targets | None = _to("guard_targets")


class PreTermInspection(Table):
    """[pre_term_inspection] 开学前食品与饮用水安全检查。"""

    days_before: int | None = _integer(0, 60, "pre_term_days_before")
    time: ClockTime | None = _to("pre_term_time")
    targets: Targets | None = _to("pre_term_targets")


class Duty(Table):
    """[duty] 节假日行政值日：何时提醒值班领导。Its aliases name DutyTimes attributes: the table is Config.duty."""

    evening_before: ClockTime | None = _to("evening")
    morning: ClockTime | None = _to("morning")

    def settings(self) -> dict[str, Any]:
        return {"duty": DutyTimes(**super().settings())}


class Reminders(Table):
    """[reminders] 回执超时、停机补发、调度器检查间隔。"""

    missed_grace_minutes: int | None = _integer(1, 1440, "missed_grace_minutes")
    receipt_escalation_minutes: int | None = _integer(1, 1440, "receipt_minutes")
    tick_seconds: float | None = _to("tick_seconds", ge=0.1, le=5, strict=True, description="应为 0.1–5 秒")


class ConfigFile(BaseModel):
    """The whole file, table by table (checked in this order: the first mistake is the one reported)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    term: Term | None = None
    fire_drill: FireDrill = Field(default_factory=FireDrill)
    notices: Notices = Field(default_factory=Notices)
    canteen_meeting: CanteenMeeting = Field(default_factory=CanteenMeeting)
    property_inspection: PropertyInspection = Field(default_factory=PropertyInspection)
    guard: Guard = Field(default_factory=Guard)
    pre_term_inspection: PreTermInspection = Field(default_factory=PreTermInspection)
    duty: Duty = Field(default_factory=Duty)
    reminders: Reminders = Field(default_factory=Reminders)

    @model_validator(mode="before")
    @classmethod
    def _empty_term(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("term") == {}:  # `[term]` with nothing in it: no term calendar
            data = {k: v for k, v in data.items() if k != "term"}
        return data

    def config(self, path: str | None) -> Config:
        values: dict[str, Any] = {}
        for name in type(self).model_fields:
            table = getattr(self, name)
            if table is not None:
                values.update(table.settings())
        return Config(path=path, **values)


# --------------------------------------------------------------------------------------------------------
# Reading the file


def config_path(configured: str | None) -> str | None:
    """HOUQIN_CONFIG (Settings.config_file), else ./houqin.toml when there is one."""
    if configured:
        return configured
    return "houqin.toml" if Path("houqin.toml").is_file() else None


def _bad(path: str, where: str, what: str) -> UserError:
    return UserError(f"配置文件 {path} 中 {where} 有误：{what}")


def _table(name: str) -> type[Table]:
    annotation = ConfigFile.model_fields[name].annotation  # `Term | None` for the optional [term]
    return next(t for t in (annotation, *get_args(annotation)) if isinstance(t, type) and issubclass(t, Table))


def _explain(path: str, error: ErrorDetails) -> UserError:
    """pydantic's first error as the admin reads it: `term.start` (a key) or `[term]` (a whole table)."""
    table, *keys = [str(part) for part in error["loc"] if not isinstance(part, int)]  # no list positions
    if error["type"] == "houqin":
        what = error["msg"]
    elif not keys:
        what = "应为一个表"
    else:
        what = _table(table).model_fields[keys[0]].description or error["msg"]
    return _bad(path, f"{table}.{keys[0]}" if keys else f"[{table}]", what)


def load_config(path: str | None) -> Config:
    if path is None:
        return Config()
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"找不到配置文件：{path}（HOUQIN_CONFIG）") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"配置文件 {path} 格式有误：{exc}") from None
    try:
        return ConfigFile.model_validate(data).config(path)
    except ValidationError as exc:
        raise _explain(path, exc.errors()[0]) from None
