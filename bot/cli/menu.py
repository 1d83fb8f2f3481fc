"""`houqin menu push|show`: install the account's custom menu from bot/wechat/menu.json (or --file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import fail
from bot.config import Settings
from bot.wechat.api import WeChatAPI, WeChatAPIError
from bot.wechat.menu import MENU_FILE, describe, load_menu
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
    ) -> None:
        """把自定义菜单安装到公众号（报修 / 访客 / 请假 / 提醒 / 帮助）。"""
        menu = _menu_or_fail(file)
        settings = Settings()
        try:
            WeChatAPI(settings, make_kv(settings.redis_url)).create_menu(menu)
        except WeChatAPIError as exc:
            fail(f"菜单更新失败：{exc.describe()}")
            return
        typer.echo(f"菜单已更新：{describe(menu)}")

    @menu_app.command("show")
    def show(
        file: Annotated[Path | None, typer.Option("--file", help="菜单 JSON 文件，默认 bot/wechat/menu.json")] = None,
    ) -> None:
        """显示将要安装的菜单。"""
        typer.echo(describe(_menu_or_fail(file)))
