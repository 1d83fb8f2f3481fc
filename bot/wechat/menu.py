"""The account's custom menus: bot/wechat/menu.json, checked against WeChat's limits, one per role.

`button` is the default menu (people not bound yet, or not tagged yet); `roles` holds a menu per role, installed
as WeChat conditional menus matching a user tag per role (`后勤·门卫` …). A person carries the tag of one role,
the first of storage.people.MENU_ROLE_ORDER they hold; the tag is set through the outbox (kind `menu_tag`) when
they bind and when their roles change. WeChat allows at most 3 top-level buttons with at most 5 sub-buttons
each. Every button is a CLICK whose key is a command word: the CLICK event runs that command
(handlers/account.py `on_click`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.wechat.api import WeChatAPI
from storage.people import MENU_ROLE_ORDER, ROLES

TAG_PREFIX = "后勤·"
MENU_FILE = Path(__file__).with_name("menu.json")


def load_menu(path: Path = MENU_FILE) -> dict[str, Any]:
    """Read and check a menu file against WeChat's limits; ValueError says what is wrong, in Chinese."""
    try:
        menu = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"无法读取菜单文件 {path}：{exc}") from exc
    if not isinstance(menu, dict):
        raise ValueError("菜单文件须是一个 JSON 对象")
    _check_menu(menu, "默认菜单")
    roles = menu.get("roles") or {}
    if not isinstance(roles, dict):
        raise ValueError("roles 须是 角色 → 菜单 的对象")
    for role, sub in roles.items():
        if role not in ROLES:
            raise ValueError(f"未知角色：{role}（可用：{'、'.join(ROLES)}）")
        _check_menu(sub, f"{ROLES[role]}的菜单")
    return menu


def _check_menu(menu: Any, what: str) -> None:
    buttons = menu.get("button") if isinstance(menu, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise ValueError(f"{what}须有 1 到 3 个一级按钮")
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
    """One line per menu: the default one, then each role's."""
    lines = [f"默认：{_describe(menu)}"]
    lines += [f"{ROLES[role]}：{_describe(sub)}" for role, sub in (menu.get("roles") or {}).items()]
    return "\n".join(lines)


def menu_for(menu: dict[str, Any], roles: frozenset[str] | set[str]) -> dict[str, Any]:
    """The buttons a person with these roles sees (what WeChat picks by their tag)."""
    role = menu_role_of(roles)
    sub = (menu.get("roles") or {}).get(role) if role else None
    return {"button": (sub or menu)["button"]}


def menu_role_of(roles: frozenset[str] | set[str]) -> str | None:
    return next((r for r in MENU_ROLE_ORDER if r in roles), None)


def tag_name(role: str) -> str:
    return f"{TAG_PREFIX}{ROLES[role]}"


def install(api: WeChatAPI, menu: dict[str, Any]) -> dict[str, int]:
    """Replace the account's menus: the default one, then one conditional menu per role, matching that role's
    tag (created when missing). Returns role → tag id."""
    api.delete_menu()  # also removes the conditional menus of an earlier push
    api.create_menu({"button": menu["button"]})
    roles = list(menu.get("roles") or {})
    have = api.tags()
    ids: dict[str, int] = {}
    for role in roles:
        name = tag_name(role)
        ids[role] = have[name] if name in have else api.create_tag(name)
    for role in roles:
        api.add_conditional_menu({"button": menu["roles"][role]["button"], "matchrule": {"tag_id": str(ids[role])}})
    return ids


def apply_tag(api: WeChatAPI, openid: str, role: str | None) -> None:
    """Give this follower the tag of `role` (None: the default menu) and take away our other role tags."""
    have = api.tags()
    ours = {have[tag_name(r)] for r in ROLES if tag_name(r) in have}
    target = None
    if role is not None:
        name = tag_name(role)
        target = have[name] if name in have else api.create_tag(name)
    current = api.tag_ids_of(openid)
    for tid in current:
        if tid in ours and tid != target:
            api.untag_users(tid, [openid])
    if target is not None and target not in current:
        api.tag_users(target, [openid])


def _describe(menu: dict[str, Any]) -> str:
    parts = []
    for top in menu["button"]:
        subs = top.get("sub_button")
        parts.append(f"{top['name']}（{'、'.join(s['name'] for s in subs)}）" if subs else top["name"])
    return "、".join(parts)
