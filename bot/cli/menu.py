"""`houqin menu push|show`: install the account's custom menus from bot/wechat/menu.json (or --file): the default
menu and one conditional menu per role, then queue every bound person's role tag (delivered by the server's
outbox sender)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sqlmodel import col, select

from bot.cli.common import fail, runtime
from bot.config import Settings
from bot.wechat.api import WeChatAPI, WeChatAPIError
from bot.wechat.menu import MENU_FILE, describe, install, load_menu
from storage import people
from storage.kv import make_kv


def _menu_or_fail(file: Path | None) -> dict[str, Any]:
    try:
        return load_menu(file or MENU_FILE)
    except ValueError as exc:
        fail(str(exc))
        raise  # unreachable: fail() exits


def register(app: typer.Typer) -> None:
    menu_app = typer.Typer(help="公众号自定义菜单", no_args_is_help=True)
    app.add_typer(menu_app, name="menu")

    @menu_app.command("push")
    def push(
        file: Annotated[Path | None, typer.Option("--file", help="菜单 JSON 文件，默认 bot/wechat/menu.json")] = None,
        tag: Annotated[bool, typer.Option("--tag/--no-tag", help="同时为已绑定的人员按角色排队打标签")] = True,
    ) -> None:
        """安装公众号菜单：默认菜单和各角色的菜单。

        各角色的菜单是按用户标签区分的个性化菜单；同时为已绑定的人员按角色排队打标签。
        """
        menu = _menu_or_fail(file)
        settings = Settings()
        try:
            install(WeChatAPI(settings, make_kv(settings.redis_url)), menu)
        except WeChatAPIError as exc:
            fail(f"菜单更新失败：{exc.describe()}")
            return
        typer.echo(f"菜单已更新：\n{describe(menu)}")
        if tag:
            rt = runtime()
            with rt.db.session() as s:
                bound = s.exec(select(people.Person.id).where(col(people.Person.openid).is_not(None),
                                                              col(people.Person.active).is_(True))).all()
                for pid in bound:
                    assert pid is not None
                    people.queue_menu_tag(s, pid, now=rt.clock.now())
            typer.echo(f"已为 {len(bound)} 位已绑定人员排队设置角色标签（由运行中的服务发送，失败会重试）。")

    @menu_app.command("show")
    def show(
        file: Annotated[Path | None, typer.Option("--file", help="菜单 JSON 文件，默认 bot/wechat/menu.json")] = None,
    ) -> None:
        """显示将要安装的菜单。"""
        typer.echo(describe(_menu_or_fail(file)))
