"""`houqin classes set|list`: which teacher heads which class (the head teacher approves its leave slips)."""

from __future__ import annotations

import typer

from bot.cli.common import fail, runtime
from handlers.text import normalise
from storage import roster
from storage.errors import UserError

classes_app = typer.Typer(help="班级与班主任", no_args_is_help=True)


@classes_app.command("set")
def classes_set(klass: str, teacher: str) -> None:
    """设置班级的班主任：houqin classes set 七(3)班 王老师"""
    rt = runtime()
    try:
        with rt.db.session() as s:
            k, person, previous = roster.set_head_teacher(s, normalise(klass), normalise(teacher),
                                                          now=rt.clock.now())
            line = f"已设置 {k.name} 的班主任为 {person.name}"
            if previous:
                line += f"（原班主任：{previous}）"
    except UserError as exc:
        fail(exc.message)
        return
    typer.echo(line + "。")


@classes_app.command("list")
def classes_list() -> None:
    """列出班级、班主任和学生人数。"""
    rt = runtime()
    with rt.db.session() as s:
        rows = roster.list_classes(s)
        if not rows:
            typer.echo("还没有班级，请先导入学生名册（houqin students import）。")
        for klass, head, count in rows:
            typer.echo(f"{klass.name}\t班主任：{head or '未设置'}\t学生 {count} 人")


def register(app: typer.Typer) -> None:
    app.add_typer(classes_app, name="classes")
