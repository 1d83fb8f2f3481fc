"""`houqin blacklist add|remove|list`: phones and ID numbers the gate must be warned about (SPEC section 4).

Only a keyed hash and a masked form are stored, so the list shows masked numbers.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli.common import fail, runtime
from storage import visitor
from storage.errors import UserError

blacklist_app = typer.Typer(help="访客黑名单", no_args_is_help=True)


@blacklist_app.command("add")
def blacklist_add(
    value: Annotated[str, typer.Argument(help="手机号或18位身份证号")],
    reason: Annotated[str, typer.Option("--reason", help="原因")] = "",
) -> None:
    """加入黑名单：houqin blacklist add 13900001234 --reason 多次冒充家长"""
    rt = runtime()
    try:
        with rt.db.session() as s:
            row, created = visitor.blacklist_add(s, value, reason, now=rt.clock.now(),
                                                 secret_key=rt.settings.secret_key, by="命令行")
            masked, why = row.value_masked, row.reason
    except UserError as exc:
        fail(exc.message)
        return
    verb = "已加入黑名单" if created else "已在黑名单中，已更新原因"
    typer.echo(f"{verb}：{masked}（原因：{why or '未注明'}）。该号码登记入校时将提醒门卫和管理员。")


@blacklist_app.command("remove")
def blacklist_remove(value: Annotated[str, typer.Argument(help="手机号或18位身份证号")]) -> None:
    """移出黑名单：houqin blacklist remove 13900001234"""
    rt = runtime()
    try:
        with rt.db.session() as s:
            row = visitor.blacklist_remove(s, value, secret_key=rt.settings.secret_key)
            masked = row.value_masked
    except UserError as exc:
        fail(exc.message)
        return
    typer.echo(f"已移出黑名单：{masked}。")


@blacklist_app.command("list")
def blacklist_list() -> None:
    """列出黑名单（号码已打码）。"""
    rt = runtime()
    with rt.db.session() as s:
        rows = visitor.blacklist_all(s)
        if not rows:
            typer.echo("黑名单为空。")
            return
        for r in rows:
            kind = "手机" if r.kind == "phone" else "身份证"
            typer.echo(f"{r.id}\t{kind}\t{r.value_masked}\t{r.reason or '未注明'}\t{r.created_at:%Y-%m-%d %H:%M}")
        typer.echo(f"共 {len(rows)} 条。")


def register(app: typer.Typer) -> None:
    app.add_typer(blacklist_app, name="blacklist")
