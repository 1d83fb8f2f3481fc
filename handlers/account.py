"""Binding, help, my info, and the WeChat events that are about the person (subscribe, scan, menu)."""

from __future__ import annotations

from handlers.base import Context, command, help_lines, on_event, record_prefixes, scene_handler
from storage import outbox, people

WELCOME = (
    "欢迎关注{school}后勤助手！报修、访客登记、学生请假、提醒和值班都可以在这里办理。\n"
    "首次使用请发送「绑定 邀请码」完成身份绑定（邀请码向后勤管理员索取），例如：绑定 AB12CD"
)


@command("绑定", bound=False, help="绑定 AB12CD（用管理员给的邀请码绑定身份）", who="所有人")
def bind(ctx: Context) -> str:
    if not ctx.args:
        return "请发送「绑定 邀请码」，例如：绑定 AB12CD（邀请码向后勤管理员索取）"
    person = people.bind(ctx.session, ctx.kv, ctx.openid, ctx.args[0], now=ctx.now)
    roles = people.role_names(people.roles_of(ctx.session, person.id))  # type: ignore[arg-type]
    return f"绑定成功！您好，{person.name}（{roles}）。发送「帮助」查看您可以使用的命令。"


@command("帮助", "help", "?", "菜单", bound=False, help="帮助（查看可用命令）", who="所有人")
def help_(ctx: Context) -> str:
    if ctx.actor is None:
        return WELCOME.format(school=ctx.options.school_name)
    lines = [f"{ctx.actor.name}（{people.role_names(ctx.actor.roles)}），您可以发送："]
    lines += [f"· {line}" for line in help_lines(ctx.actor)]
    prefixes = record_prefixes(ctx.actor)
    example = f"编号可带或不带前缀（{prefixes[0]}12 或 12）；" if prefixes else ""
    lines.append(f"{example}「取消」结束当前对话。")
    return "\n".join(lines)


@command("我的信息", help="我的信息（查看绑定的身份）")
def my_info(ctx: Context) -> str:
    me = ctx.me
    lines = [f"姓名：{me.name}", f"身份：{people.role_names(me.roles)}"]
    classes = people.classes_headed_by(ctx.session, me.id)
    if classes:
        lines.append("班主任：" + "、".join(c.name for c in classes))
    kids = people.children_of(ctx.session, me.id)
    if kids:
        lines.append("孩子：" + "、".join(f"{k.name}（{k.student_no}）" for k in kids))
    return "\n".join(lines)


def _bind_from_scene(ctx: Context, scene: str) -> str | None:
    code = scene.strip()
    if code.lower().startswith("invite_"):
        code = code[len("invite_"):]
    if len(code) != 6 or not code.isalnum():
        return None
    if ctx.actor is not None:
        return f"您已绑定为「{ctx.actor.name}」。"
    person = people.bind(ctx.session, ctx.kv, ctx.openid, code, now=ctx.now)
    return f"绑定成功！您好，{person.name}。发送「帮助」查看您可以使用的命令。"


@on_event("subscribe")
def on_subscribe(ctx: Context) -> str | None:
    people.set_subscribed(ctx.session, ctx.openid, True)
    scene = str(ctx.inbound.extra.get("key") or "")
    if scene and (by_scene := scene_handler(scene)) is not None:  # a checkpoint QR (cp:<id>) …
        return by_scene(ctx)
    if scene:
        bound = _bind_from_scene(ctx, scene)
        if bound:
            return bound
    if ctx.actor is not None:
        return f"欢迎回来，{ctx.actor.name}！发送「帮助」查看可用命令。"
    return WELCOME.format(school=ctx.options.school_name)


@on_event("scan")
def on_scan(ctx: Context) -> str | None:
    scene = str(ctx.inbound.extra.get("key") or "")
    by_scene = scene_handler(scene)
    return by_scene(ctx) if by_scene is not None else _bind_from_scene(ctx, scene)


@on_event("unsubscribe")
def on_unsubscribe(ctx: Context) -> None:
    people.set_subscribed(ctx.session, ctx.openid, False)  # no more pushes to this person


@on_event("click")
def on_click(ctx: Context) -> str | None:
    key = str(ctx.inbound.extra.get("key") or "").strip()
    return ctx.run(key) if key else None


@on_event("view", "location")
def on_quiet(ctx: Context) -> None:
    return None


@on_event("templatesendjobfinish")
def on_template_finished(ctx: Context) -> None:
    fields = ctx.inbound.extra.get("fields") or {}
    msgid = str(fields.get("MsgID") or fields.get("MsgId") or "")
    if msgid:
        outbox.record_delivery(ctx.session, msgid, str(fields.get("Status") or ""))
