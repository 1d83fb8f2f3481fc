"""`houqin`: the command line for the server and the logistics admin (SPEC section 9).

Domain commands live in `bot/cli_<domain>.py` modules with a `register(app)` function, found automatically.
"""

from __future__ import annotations

import csv
import importlib
import io
import pkgutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.config import Settings

app = typer.Typer(help="校园后勤助手 命令行", no_args_is_help=True, add_completion=False)
people_app = typer.Typer(help="人员管理", no_args_is_help=True)
students_app = typer.Typer(help="学生名册", no_args_is_help=True)
app.add_typer(people_app, name="people")
app.add_typer(students_app, name="students")


def runtime():  # type: ignore[no-untyped-def]
    """A Runtime for one CLI command: migrated database, no background services."""
    from bot.runtime import Runtime

    rt = Runtime(Settings())
    rt.db.migrate()
    return rt


def fail(message: str) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code=1)


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
) -> None:
    """运行服务（WeChat 回调 /wechat，管理后台 /admin）。"""
    import uvicorn

    Settings()  # fail early on bad configuration
    runtime().db.dispose()
    uvicorn.run("bot.app:app", host=host, port=port, workers=workers, proxy_headers=True)


@app.command()
def init() -> None:
    """迁移数据库，并按配置中的学期日历建立内置提醒。"""
    rt = runtime()
    typer.echo("数据库已迁移到最新版本。")
    from jobs.builtin import init_builtin
    from storage.errors import UserError

    try:
        typer.echo(init_builtin(rt))
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
    from handlers.text import normalise
    from storage import people
    from storage.errors import UserError

    rt = runtime()
    roles = [r for item in role for r in item.replace("，", ",").split(",") if r]
    try:
        with rt.db.session() as s:
            person, inv = people.invite(
                s, name, roles, now=rt.clock.now(), class_name=normalise(klass) if klass else None,
                student_nos=student, categories=category,
            )
            roles_text = people.role_names(people.roles_of(s, person.id))  # type: ignore[arg-type]
    except UserError as exc:
        fail(exc.message)
    typer.echo(f"已为 {name}（{roles_text}）生成邀请码，7天内有效，请对方在公众号发送：绑定 {inv.code}")
    typer.echo(inv.code)


@people_app.command("list")
def people_list() -> None:
    """列出所有人员。"""
    from storage import people

    rt = runtime()
    with rt.db.session() as s:
        rows = people.list_people(s)
        for p, roles in rows:
            state = "已绑定" if p.openid else "未绑定"
            if p.openid and not p.subscribed:
                state = "已取消关注"
            cats = f" 类别:{p.categories}" if p.categories else ""
            typer.echo(f"{p.id}\t{p.name}\t{people.role_names(roles)}\t{state}{cats}")


@people_app.command("set")
def people_set(
    name: str,
    category: Annotated[list[str] | None, typer.Option("--category", help="维修工类别，如 电 水")] = None,
) -> None:
    """修改人员信息（维修工类别）。"""
    from storage import people

    rt = runtime()
    with rt.db.session() as s:
        found = people.find_people(s, name)
        if len(found) != 1:
            fail(f"找到 {len(found)} 个名为 {name} 的人员")
        p = found[0]
        if category is not None:
            p.categories = ",".join(c for item in category for c in item.replace("，", ",").split(",") if c)
        s.add(p)
    typer.echo(f"已更新 {name}")


@students_app.command("import")
def students_import(file: Path) -> None:
    """导入学生名册 CSV（学号,姓名,班级）；错误的行按行号报告，其余照常导入。"""
    from storage import people

    rows = read_csv(file)
    rt = runtime()
    with rt.db.session() as s:
        n, errors = people.import_students(s, rows)
    for e in errors:
        typer.echo(e, err=True)
    typer.echo(f"导入 {n} 名学生，{len(errors)} 行有误。")


def read_csv(file: Path) -> list[list[str]]:
    """A CSV file as rows of normalised cells; UTF-8 (with or without BOM) or GB18030, as Excel saves it."""
    from handlers.text import normalise

    if not file.exists():
        fail(f"文件不存在：{file}")
    raw = file.read_bytes()
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        fail("无法识别文件编码，请保存为 UTF-8 CSV")
    return [[normalise(c) for c in row] for row in csv.reader(io.StringIO(text))]


def _load_plugins() -> None:
    import bot

    for mod in pkgutil.iter_modules(bot.__path__):
        if mod.name.startswith("cli_"):
            importlib.import_module(f"bot.{mod.name}").register(app)


def main() -> None:
    _load_plugins()
    app(prog_name="houqin")


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
