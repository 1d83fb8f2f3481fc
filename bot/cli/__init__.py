"""`houqin`: the command line for the server and the logistics admin (SPEC section 9).

The top-level commands (serve, init, invite) are here; each command group is a module named after it
(`houqin classes` → bot/cli/classes.py) with a `register(app)` function, listed in GROUPS below.
"""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from bot.cli import admin, blacklist, checkpoints, classes, demo, duty, menu, people, scheduler, students
from bot.cli.common import fail, read_csv, runtime
from bot.cli.zh import chinese_command
from bot.config import Settings
from handlers.text import normalise
from jobs import inspection as inspection_jobs
from jobs.builtin import init_builtin
from jobs.term_config import config_path, load_config
from storage import people as people_service
from storage.errors import UserError

__all__ = ["app", "fail", "main", "read_csv", "runtime"]

app = typer.Typer(help="校园后勤助手 命令行。每个命令加 --help 查看用法，例如：houqin invite --help",
                  no_args_is_help=True, add_completion=False)
people.register(app)
students.register(app)

# Registered by _load_plugins() (main() calls it; tests call it or a group's register() as they need).
GROUPS = (admin, demo, duty, scheduler, classes, menu, blacklist, checkpoints)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="监听地址；在 nginx 后面用 127.0.0.1，直接对外用 0.0.0.0")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="监听端口")] = 8000,
    workers: Annotated[int, typer.Option(help="工作进程数；多于 1 个时须配置 REDIS_URL 和 PostgreSQL")] = 1,
) -> None:
    """运行服务：微信回调 /wechat，管理后台 /admin。"""
    Settings()  # fail early on bad configuration
    runtime().db.dispose()
    uvicorn.run("bot.app:app", host=host, port=port, workers=workers, proxy_headers=True)


@app.command()
def init() -> None:
    """迁移数据库，并按配置中的学期日历建立内置提醒。"""
    rt = runtime()
    typer.echo("数据库已迁移到最新版本。")
    try:
        typer.echo(init_builtin(rt))
        with rt.db.session() as s:  # built-in inspection routes from the same term calendar
            typer.echo(inspection_jobs.sync_builtin_routes(s, load_config(config_path(rt.settings.config_file)),
                                                           rt.clock.now()))
    except UserError as exc:
        fail(exc.message)


@app.command()
def invite(
    name: str,
    role: Annotated[list[str], typer.Option("--role", "-r", help="角色，可重复：teacher/教师 …")],
    klass: Annotated[str | None, typer.Option("--class", help="班主任的班级，如 七(3)班")] = None,
    student: Annotated[list[str] | None, typer.Option("--student", help="家长的孩子学号，可重复")] = None,
    category: Annotated[list[str] | None, typer.Option("--category", help="维修工的类别：电、水 …")] = None,
) -> None:
    """新建人员并生成邀请码（最后一行只有邀请码）。"""
    rt = runtime()
    roles = [r for item in role for r in item.replace("，", ",").split(",") if r]
    try:
        with rt.db.session() as s:
            person, inv = people_service.invite(
                s, name, roles, now=rt.clock.now(), class_name=normalise(klass) if klass else None,
                student_nos=student, categories=category,
            )
            roles_text = people_service.role_names(people_service.roles_of(s, person.id))  # type: ignore[arg-type]
    except UserError as exc:
        fail(exc.message)
    typer.echo(f"已为 {name}（{roles_text}）生成邀请码，7天内有效，请对方在公众号发送：绑定 {inv.code}")
    typer.echo(inv.code)


def _load_plugins() -> None:
    for group in GROUPS:
        group.register(app)


def main() -> None:
    _load_plugins()
    chinese_command(app)(prog_name="houqin")
