"""Visitor commands (SPEC section 4): 访客, 离开, 预约, 不认识, and the lists 在校访客 / 今日访客 / 今日预约.

Every reply shows phone and ID numbers masked; the service stores them encrypted.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from handlers.base import Context, command
from handlers.text import parse_ref
from handlers.understand import lexicon
from handlers.timeexpr import TimeParseError, split_time_prefix
from storage import visitor
from storage.errors import UserError
from storage.kernel import fmt_duration, fmt_time
from storage.visitor.parse import BOOK_USAGE, USAGE, check_name, check_phone, mask_text, parse_visitor_line

LIST_ROLES = {"guard", "admin", "leader"}


def _secret(ctx: Context) -> str:
    return ctx.options.secret_key


def _hours(ctx: Context) -> float:
    return ctx.options.visitor_long_stay_hours or visitor.LONG_STAY_HOURS


@command("访客", "访客登记", roles={"guard"}, help="访客 张三 13900001234 送货 找王老师 苏E12345 2人（登记入校）")
def check_in(ctx: Context) -> str:
    if not ctx.rest:
        return USAGE
    line = parse_visitor_line(ctx.rest)
    if line.host and not line.host_hint:  # 找陈老师 / 找郑主任 / 找汪丽老师: the one person meant, as understanding reads it
        who = lexicon.resolve_person(lexicon.lexicon(ctx.session), line.host)
        if who is not None:
            line = replace(line, host=who.name)
    got = visitor.check_in(ctx.session, ctx.me, line, now=ctx.now, secret_key=_secret(ctx))
    e = got.entry
    lines = []
    if got.blacklist:
        reasons = "；".join(b.reason for b in got.blacklist if b.reason) or "未注明"
        lines.append(f"⚠ 注意：此访客在黑名单中（{reasons}），已通知管理员，请核实后再放行。")
    lines.append(f"已登记访客 {visitor.fk(e)}：{e.name}（{e.phone_masked}）" + (f" {e.party}人" if e.party > 1 else ""))
    lines.append(f"事由：{e.purpose}")
    if e.host_name:
        if got.host_told:
            note = "已通知"
        elif got.host is not None:
            note = "未绑定微信，未通知"
        else:
            note = "不在系统中，未通知"
        lines.append(f"被访人：{e.host_name}（{note}）")
    if got.booking is not None:
        teacher = got.booking_teacher.name if got.booking_teacher else ""
        lines.append(f"已关联{teacher}的预约（{visitor.hm(got.booking.expected_at)}），已通知{teacher}。")
    if e.plate:
        lines.append(f"车牌：{e.plate}")
    if e.id_masked:
        lines.append(f"证件：{e.id_masked}")
    lines.append(f"入校：{visitor.hm(e.checked_in_at)}。离开时发送「离开 {visitor.fk(e)}」。")
    return "\n".join(lines)


@command("离开", "离校", roles={"guard"}, record="FK", help="离开 FK7（访客离校）")
def check_out(ctx: Context) -> str:
    arg = ctx.args[0] if ctx.args else None
    if not arg:
        return "请写访客编号，例如：离开 FK7（编号见「在校访客」）"
    if arg[0].isdigit() or arg[:2].upper() == "FK":
        entry = visitor.get_entry(ctx.session, parse_ref(arg, "FK"))
    else:
        entry = visitor.entry_by_name(ctx.session, arg)
    e = visitor.check_out(ctx.session, ctx.me, entry, now=ctx.now)
    stay = fmt_duration(ctx.now - e.checked_in_at)
    return f"已登记离开：{visitor.fk(e)} {e.name}（{e.phone_masked}），在校 {stay}。"


@command("不认识", help="不认识 FK7（告诉门卫您不认识来找您的访客）", hidden=True)
def deny(ctx: Context) -> str:
    n = parse_ref(ctx.args[0] if ctx.args else None, "FK")
    e = visitor.deny(ctx.session, ctx.me, n, now=ctx.now)
    return f"已通知门卫核实访客 {visitor.fk(e)} {e.name}。"


@command("预约", "访客预约", roles={"teacher", "head_teacher", "admin"},
         help="预约 张三 13900001234 明天9:00 送材料（预约访客）")
def book(ctx: Context) -> str:
    if not ctx.args:
        return BOOK_USAGE
    check_name(ctx.args[0], BOOK_USAGE)
    check_phone(ctx.args[1] if len(ctx.args) > 1 else None, BOOK_USAGE)
    rest = ctx.after(2)
    if not rest:
        raise UserError(f"缺少到访时间。{BOOK_USAGE}")
    try:
        when, purpose = split_time_prefix(rest, ctx.now, "moment")
    except TimeParseError as exc:
        raise UserError(mask_text(str(exc))) from None
    if not isinstance(when, datetime):  # "moment" always gives a datetime; keep the type checker honest
        raise UserError(BOOK_USAGE)
    if not purpose:
        raise UserError(f"缺少事由。{BOOK_USAGE}")
    b = visitor.book(ctx.session, ctx.me, ctx.args[0], ctx.args[1], when, purpose, now=ctx.now,
                     secret_key=_secret(ctx))
    return (f"已预约访客：{b.name}（{b.phone_masked}），{fmt_time(b.expected_at)}，事由：{b.purpose}。\n"
            "当天门卫用同一手机号登记时会自动关联，并通知您。")


@command("在校访客", roles=LIST_ROLES, help="在校访客（还在校内的访客）")
def on_campus(ctx: Context) -> str:
    rows = visitor.on_campus(ctx.session)
    if not rows:
        return "目前没有在校访客。"
    hours = _hours(ctx)
    people_in = sum(e.party for e in rows)
    lines = [f"在校访客 {len(rows)} 批，共 {people_in} 人："]
    lines += [visitor.entry_line(e, ctx.now, hours) for e in rows]
    long_ = sum(1 for e in rows if visitor.is_long_stay(e, ctx.now, hours))
    if long_:
        lines.append(f"其中 {long_} 批已在校超过{hours:g}小时（⚠）。")
    return "\n".join(lines)


@command("今日访客", roles=LIST_ROLES, help="今日访客（今天登记的访客）")
def today(ctx: Context) -> str:
    rows = visitor.entries_on(ctx.session, ctx.now)
    if not rows:
        return "今天还没有访客登记。"
    inside = sum(1 for e in rows if e.checked_out_at is None)
    lines = [f"今日访客 {len(rows)} 批（在校 {inside} 批）："]
    lines += [visitor.entry_line(e, ctx.now, _hours(ctx)) for e in rows]
    return "\n".join(lines)


@command("今日预约", roles=LIST_ROLES | {"teacher", "head_teacher"}, help="今日预约（今天预约的访客）")
def today_bookings(ctx: Context) -> str:
    rows = visitor.bookings_on(ctx.session, ctx.now, ctx.me)
    if not rows:
        return "今天没有访客预约。"
    lines = [f"今日预约 {len(rows)} 个："]
    lines += [visitor.booking_line(ctx.session, b) for b in rows]
    return "\n".join(lines)
