"""`houqin duty import|generate|list`: the holiday duty rota."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import fail, read_csv, runtime
from bot.runtime import Runtime
from jobs.term_config import config_path, load_config
from storage import duty
from storage.duty import DutyTimes, parse_date
from storage.errors import UserError
from storage.kernel import fmt_day
from storage.people import Person
from storage.schoolcal import CalendarUnavailable

duty_app = typer.Typer(help="节假日行政值日（值班表）", no_args_is_help=True)


def _times(rt: Runtime) -> DutyTimes:
    return load_config(config_path(rt.settings.config_file)).duty


def _day(value: str, what: str) -> date:
    try:
        return parse_date(value)
    except ValueError:
        fail(f"{what}日期格式不对：{value}（应为 2026-10-01）")


@duty_app.command("import")
def duty_import(file: Path) -> None:
    """导入值班表 CSV（日期,领导）：领导按姓名查找；有任何错误则整表不导入。"""
    rows = read_csv(file)
    rt = runtime()
    try:
        with rt.db.session() as s:
            done, errors, warnings = duty.import_rows(s, rows, now=rt.clock.now(), times=_times(rt))
            lines = [f"{r.day:%Y-%m-%d} {fmt_day(r.day)[-4:]} {s.get(Person, r.leader_id).name}"  # type: ignore[union-attr]
                     for r in done]
    except UserError as exc:
        fail(exc.message)
        return
    for w in warnings:
        typer.echo(w, err=True)
    if errors:
        for e in errors:
            typer.echo(e, err=True)
        fail(f"值班表有 {len(errors)} 行错误，未导入任何内容，请改正后重试。")
    typer.echo(f"已导入 {len(done)} 天的值班安排：")
    for line in lines:
        typer.echo(line)


@duty_app.command("generate")
def duty_generate(
    from_: Annotated[str, typer.Option("--from", help="开始日期，如 2026-10-01")],
    to: Annotated[str, typer.Option("--to", help="结束日期（含），如 2026-10-31")],
    provisional: Annotated[bool, typer.Option(
        "--provisional", help="官方放假安排未公布时按法定假日推算； 公布后自动核对并告知管理员")] = False,
) -> None:
    """按法定节假日和周末（调休上班日除外）轮流安排校领导值班。"""
    start, end = _day(from_, "开始"), _day(to, "结束")
    rt = runtime()
    try:
        with rt.db.session() as s:
            rows = duty.generate(s, start, end, now=rt.clock.now(), times=_times(rt), provisional=provisional)
            lines = [f"{r.day:%Y-%m-%d} {fmt_day(r.day)[-4:]} {s.get(Person, r.leader_id).name}"  # type: ignore[union-attr]
                     + ("（推算）" if duty.is_provisional_row(r) else "") for r in rows]
    except CalendarUnavailable as exc:
        fail(f"无法生成值班表：{exc}，调休上班日和补休日期未知。若先按法定假日推算排班，请加 --provisional"
             "（官方安排公布、升级 chinesecalendar 后自动核对，变化会告知管理员）；或用 houqin duty import 导入自排的值班表。")
        return
    except UserError as exc:
        fail(exc.message)
        return
    if not rows:
        typer.echo(f"{start:%Y-%m-%d} 至 {end:%Y-%m-%d} 没有节假日或周末，无需值班。")
        return
    typer.echo(f"已生成 {start:%Y-%m-%d} 至 {end:%Y-%m-%d} 的值班表，共 {len(rows)} 天：")
    for line in lines:
        typer.echo(line)
    if any("（推算）" in line for line in lines):
        typer.echo(f"标“推算”的日期{duty.PROVISIONAL_NOTE}")


@duty_app.command("list")
def duty_list() -> None:
    """列出今天起的值班安排。"""
    rt = runtime()
    with rt.db.session() as s:
        rows = duty.coming(s, rt.clock.now().date(), limit=1000)
        for r, p in rows:
            typer.echo(f"{r.day:%Y-%m-%d} {fmt_day(r.day)[-4:]} {p.name}")
    if not rows:
        typer.echo("暂无值班安排。")


def register(app: typer.Typer) -> None:
    if getattr(app, "_houqin_duty", False):  # tests may load the plugins more than once
        return
    app.add_typer(duty_app, name="duty")
    app._houqin_duty = True  # type: ignore[attr-defined]
