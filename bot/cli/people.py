"""`houqin people list|set|deactivate`: the staff and parents the bot knows, their roles, and revoking access."""

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
            if not p.active:
                state = "已停用"
            cats = f" 类别:{p.categories}" if p.categories else ""
            typer.echo(f"{p.id}\t{p.name}\t{people.role_names(roles)}\t{state}{cats}")


def _split(values: list[str] | None) -> list[str]:
    return [x for item in values or [] for x in item.replace("，", ",").split(",") if x.strip()]


@people_app.command("set")
def people_set(
    name: str,
    category: Annotated[list[str] | None, typer.Option("--category", help="维修工类别，如 电 水")] = None,
    add_role: Annotated[list[str] | None, typer.Option("--add-role", help="增加角色，可重复：teacher/教师 …")] = None,
    remove_role: Annotated[list[str] | None, typer.Option("--remove-role", help="移除角色，可重复")] = None,
) -> None:
    """修改人员信息：维修工类别、增加或移除角色。

    下一条消息、下一次后台操作起生效；公众号菜单随角色更新。
    """
    rt = runtime()
    try:
        with rt.db.session() as s:
            p = people.person_by_ref(s, name)
            if category is not None:
                p.categories = ",".join(_split(category))
                s.add(p)
            roles = None
            if add_role or remove_role:
                p, roles = people.set_roles(s, name, add=_split(add_role), remove=_split(remove_role),
                                            now=rt.clock.now())
    except UserError as exc:
        fail(exc.message)
    typer.echo(f"已更新 {name}" + (f"，角色：{people.role_names(roles)}" if roles is not None else ""))


@people_app.command("deactivate")
def people_deactivate(name: str) -> None:
    """停用人员：立即不能在公众号操作和登录后台。

    已登录的后台会话随之失效；记录保留。
    """
    rt = runtime()
    try:
        with rt.db.session() as s:
            people.deactivate(s, name, now=rt.clock.now())
    except UserError as exc:
        fail(exc.message)
    typer.echo(f"已停用 {name}：不能再在公众号操作或登录后台，记录保留。")


def register(app: typer.Typer) -> None:
    app.add_typer(people_app, name="people")
