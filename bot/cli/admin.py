"""`houqin admin password <姓名>`: set the console password of an admin or a leader."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.common import fail, runtime
from storage.console_users import set_password
from storage.errors import UserError

admin_app = typer.Typer(help="管理后台账号", no_args_is_help=True)


@admin_app.command("password")
def password(
    name: str,
    value: Annotated[str | None, typer.Option("--password", help="新密码（不写则提示输入，不回显）")] = None,
) -> None:
    """设置管理后台的登录密码（后勤管理员、校领导）。

    密码至少8位；旧的登录会话随之失效。
    """
    if value is None:
        value = typer.prompt("新密码", hide_input=True, confirmation_prompt="再输入一次")
    rt = runtime()
    try:
        with rt.db.session() as s:
            person = set_password(s, name, value)
            who = person.name
    except UserError as exc:
        fail(exc.message)
    typer.echo(f"已设置 {who} 的后台密码。登录地址：/admin")


def register(app: typer.Typer) -> None:
    app.add_typer(admin_app, name="admin")
