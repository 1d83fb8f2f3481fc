"""The account's custom menu: bot/wechat/menu.json, checked against WeChat's limits.

WeChat allows at most 3 top-level buttons with at most 5 sub-buttons each, so the five commands of the spec
(报修 / 访客 / 请假 / 提醒 / 帮助) sit as 报修, 办事 ▸ (访客 请假 提醒 值班), 帮助. Every button is a CLICK whose
key is a command word: the CLICK event runs that command (handlers/account.py `on_click`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MENU_FILE = Path(__file__).with_name("menu.json")


def load_menu(path: Path = MENU_FILE) -> dict[str, Any]:
    """Read and check a menu file against WeChat's limits; ValueError says what is wrong, in Chinese."""
    try:
        menu = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"无法读取菜单文件 {path}：{exc}") from exc
    buttons = menu.get("button") if isinstance(menu, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise ValueError("菜单须有 1 到 3 个一级按钮")
    for top in buttons:
        _check_button(top, max_bytes=16)
        subs = top.get("sub_button")
        if subs is not None:
            if not isinstance(subs, list) or not 1 <= len(subs) <= 5:
                raise ValueError(f"「{top.get('name')}」的子按钮须有 1 到 5 个")
            for sub in subs:
                _check_button(sub, max_bytes=60, leaf=True)
        elif top.get("type") is None:
            raise ValueError(f"「{top.get('name')}」既没有类型也没有子按钮")
    return menu


def _check_button(button: Any, *, max_bytes: int, leaf: bool = False) -> None:
    if not isinstance(button, dict) or not button.get("name"):
        raise ValueError("每个按钮都要有名称（name）")
    name = str(button["name"])
    if len(name.encode("utf-8")) > max_bytes:
        raise ValueError(f"按钮名称「{name}」太长（最多 {max_bytes} 字节）")
    kind = button.get("type")
    if kind == "click" and not button.get("key"):
        raise ValueError(f"CLICK 按钮「{name}」缺少 key（命令词）")
    if kind == "view" and not button.get("url"):
        raise ValueError(f"VIEW 按钮「{name}」缺少 url")
    if leaf and kind is None:
        raise ValueError(f"子按钮「{name}」缺少类型（type）")


def describe(menu: dict[str, Any]) -> str:
    parts = []
    for top in menu["button"]:
        subs = top.get("sub_button")
        parts.append(f"{top['name']}（{'、'.join(s['name'] for s in subs)}）" if subs else top["name"])
    return "、".join(parts)
