"""`houqin people list|set`: the staff and parents the bot knows."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.common import fail, runtime
from storage import people
from storage.errors import UserError

people_app = typer.Typer(help="人员管理", no_args_is_help=True)


@people_app.command("list")
def people_list() -> None:
    """列出所有人员。"""
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
    rt = runtime()
    with rt.db.session() as s:
        try:
            p = people.find_one(s, name)
        except UserError as exc:
            fail(exc.message)
        if category is not None:
            p.categories = ",".join(c for item in category for c in item.replace("，", ",").split(",") if c)
        s.add(p)
    typer.echo(f"已更新 {name}")


def register(app: typer.Typer) -> None:
    app.add_typer(people_app, name="people")
