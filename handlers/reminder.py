"""Reminders and holiday duty in chat: 提醒 / 提醒列表 / 取消提醒 / 收到 / 完成 TX3 / 值班 / 值班表 / 换班."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from handlers.base import YES, Context, command, dialog
from handlers.text import parse_ref
from handlers.timeexpr import TimeParseError, split_time_prefix
from storage import duty
from storage import reminder as rem
from storage.errors import UserError
from storage.kernel import fmt_day
from storage.people import Person
from storage.schoolcal import PROVISIONAL_NOTE, Recurrence, is_duty_day, is_provisional

USAGE = ("用法：提醒 <时间> <内容> [@对象]，例如：\n"
         "提醒 明天8:00 交教案\n"
         "提醒 每周一 8:00 升旗仪式 @全体\n"
         "提醒 工作日 7:30 检查校门 @门卫 需回执")
SELF_USAGE = ("用法：提醒 <时间> <内容>，例如：\n"
              "提醒 明天8:00 交教案\n"
              "提醒 每周一 8:00 交周报\n"
              "提醒 今天17:00 给家长回电话 需回执")


def _usage(ctx: Context) -> str:
    """Only admins and leaders may remind others: nobody else is shown @对象 they would be refused."""
    return USAGE if ctx.me.has("admin", "leader") else SELF_USAGE

# Input normalisation turned ， into , — give Chinese text its comma back for the push.
_CJK_COMMA = re.compile(r"(?<=[^\x00-\x7f]),\s*|,\s*(?=[^\x00-\x7f])")
_TARGET = re.compile(r"@([^\s,，@]+)")
# 需回执 as a word of its own, or 回执 in brackets anywhere: 「交回执单」 is content, not the option.
_RECEIPT = re.compile(r"(?:(?<=\s)|^)(?:需要回执|需回执|要回执|回执)(?=\s|$)|[\[【(（]\s*(?:需)?回执\s*[\]】)）]")


@command("提醒", help="提醒 明天8:00 交教案（可写 每天/每周一/每月1日/工作日；加「需回执」）",
         help_for={frozenset({"admin", "leader"}):
                   "提醒 明天8:00 交教案（可写 每天/每周一/每月1日/工作日；@门卫 @姓名；加「需回执」）"})
def remind(ctx: Context) -> str:
    return _remind(ctx, ctx.rest, confirmed=False)


def _remind(ctx: Context, text: str, *, confirmed: bool) -> str:
    original = text
    if not text:
        return _usage(ctx)
    labels = _TARGET.findall(text)
    text = _TARGET.sub(" ", text)
    needs_receipt = bool(_RECEIPT.search(text))
    text = " ".join(_RECEIPT.sub(" ", text).split())
    try:
        when, content = split_time_prefix(text, ctx.now, "when")
    except TimeParseError as exc:
        raise UserError(f"{exc}\n{_usage(ctx)}") from None
    if not content:
        raise UserError(f"请写上提醒内容。\n{_usage(ctx)}")
    content = _CJK_COMMA.sub("，", content)
    assert isinstance(when, (datetime, Recurrence))
    specs = rem.parse_targets(ctx.session, ctx.me, labels)
    label = " ".join(f"@{x}" for x in labels)
    same = None if confirmed else rem.same_as(ctx.session, ctx.me, when, content, specs, now=ctx.now)
    if same is not None:
        rem.check(ctx.me, when, content, specs, now=ctx.now)  # refusals first: no question before a no
        ctx.start_dialog("remind-again", {"text": original})
        due = same.next_due_at or same.first_due_at
        return (f"您已设置过相同的提醒 {same.ref}：{rem.fmt_moment(due, ctx.now)} {same.text}"
                f"{' ' + same.target_label if same.target_label else ''}\n"
                f"仍要再设一个吗？回复「是」或「确认」设置，回复「取消」放弃。")
    r = rem.create(ctx.session, ctx.me, when, content, specs, now=ctx.now, needs_receipt=needs_receipt,
                   target_label=label)
    total, bound = rem.reach(ctx.session, specs)
    lines = [f"已设置提醒 {r.ref}"]
    if isinstance(when, Recurrence):
        assert r.next_due_at is not None
        lines.append(f"时间：{when.describe()}，下次 {rem.fmt_moment(r.next_due_at, ctx.now)}")
    else:
        lines.append(f"时间：{rem.fmt_moment(r.first_due_at, ctx.now)}")
    if rem.only_self(specs, ctx.me):
        lines.append("对象：您本人（1 人）")
    else:
        unbound = f"（其中 {total - bound} 人未绑定，暂时收不到）" if bound < total else ""
        if total == 0:
            unbound = "（目前没有这类人员；到时按当时的人员发送）"
        lines.append(f"对象：{label}，共 {total} 人{unbound}")
    lines.append(f"内容：{r.text}")
    if needs_receipt:
        after = ("未按时确认会再提醒您一次" if rem.only_self(specs, ctx.me)
                 else "未按时确认将告知后勤管理员")
        lines.append(f"需回执：收到后回复「收到 {r.ref}」，{after}")
    lines.append(f"取消请发送：取消提醒 {r.ref}")
    return "\n".join(lines)


@dialog("remind-again")
def confirm_again(ctx: Context, state: dict[str, Any]) -> str:
    """The answer to "已设置过相同的提醒，仍要再设吗？": 是/确认 sets it; anything else is read as usual."""
    ctx.end_dialog()
    if ctx.inbound.text.strip().rstrip("。.!！") not in YES:
        return ctx.run(ctx.inbound.text) if ctx.inbound.text.strip() else "已放弃。"
    return _remind(ctx, str(state["text"]), confirmed=True)


@command("提醒列表", "我的提醒", help="提醒列表（查看待提醒的事项）")
def list_reminders(ctx: Context) -> str:
    rows, total = rem.upcoming(ctx.session, ctx.me)
    if not rows:
        return "暂无待提醒的事项。设置示例：提醒 明天8:00 交教案"
    admin = ctx.me.has("admin")
    names: dict[int, str] = {}
    lines = [f"待提醒的事项（共 {total} 条）："]
    for r in rows:
        assert r.next_due_at is not None
        when = rem.fmt_moment(r.next_due_at, ctx.now)
        if r.recurrence is not None:
            when = f"{rem.describe_when(r)}，下次 {when}"
        to = r.target_label or ("本人" if r.creator_id else _specs_label(json.loads(r.targets)))
        extra = " [需回执]" if r.needs_receipt else ""
        by = ""
        if admin:
            if r.creator_id is None:
                by = "（内置）"
            elif r.creator_id != ctx.me.id:
                if r.creator_id not in names:
                    p = ctx.session.get(Person, r.creator_id)
                    names[r.creator_id] = p.name if p else "?"
                by = f"（{names[r.creator_id]}）"
        lines.append(f"{r.ref} {when} {rem.short(r.text, 40)} → {to}{extra}{by}")
    if total > len(rows):
        lines.append(f"……另有 {total - len(rows)} 条未列出")
    lines.append("取消：取消提醒 TX编号")
    return "\n".join(lines)


def _specs_label(specs: list[str]) -> str:
    return " ".join(f"@{rem.role_label(s)}" for s in specs)


@command("取消提醒", help="取消提醒 TX3")
def cancel_reminder(ctx: Context) -> str:
    n = parse_ref(ctx.args[0] if ctx.args else None, "TX")
    r = rem.cancel(ctx.session, ctx.me, n, now=ctx.now)
    return f"已取消提醒 {r.ref}：{rem.short(r.text, 40)}"


@command("收到", record="TX", help="收到 TX3（确认需回执的提醒）")
def receipt(ctx: Context) -> str:
    n = parse_ref(ctx.args[0] if ctx.args else None, "TX")
    ack = rem.acknowledge(ctx.session, ctx.me, n, done=False, note="", now=ctx.now)
    if ack.already:
        return f"您已于 {rem.fmt_moment(ack.receipt.acked_at, ctx.now)} 确认过 {ack.reminder.ref}。"  # type: ignore[arg-type]
    return f"已确认收到 {ack.reminder.ref}：{rem.short(ack.reminder.text, 40)}"


@command("完成", record="TX", help="完成 TX3 已检查无异常（回执并说明情况）")
def done(ctx: Context) -> str:
    n = parse_ref(ctx.args[0] if ctx.args else None, "TX")
    note = ctx.after(1)
    ack = rem.acknowledge(ctx.session, ctx.me, n, done=True, note=note, now=ctx.now)
    if ack.already:
        return f"{ack.reminder.ref} 已于 {rem.fmt_moment(ack.receipt.acked_at, ctx.now)} 记录为完成。"  # type: ignore[arg-type]
    tail = f"，情况：{note}" if note else ""
    return f"已记录完成 {ack.reminder.ref}：{rem.short(ack.reminder.text, 40)}{tail}"


# --------------------------------------------------------------------------------------------------------
# Holiday duty


def _leader(p: Person) -> str:
    return f"{p.name}（电话 {p.phone}）" if p.phone else p.name


@command("值班", "今日值班", help="值班（今天谁值班）")
def on_duty(ctx: Context) -> str:
    today = ctx.now.date()
    found = duty.on_day(ctx.session, today)
    if found:
        return f"今天 {fmt_day(today)} 值班领导：{_leader(found[1])}"
    nxt = duty.coming(ctx.session, today + timedelta(days=1), limit=1)
    note = PROVISIONAL_NOTE if is_provisional(today) else ""
    head = (f"今天是节假日{note}，但还没有安排值班领导（请后勤管理员排班）。" if is_duty_day(today)
            else f"今天不是值班日{note}。")
    if nxt:
        row, p = nxt[0]
        mark = PROVISIONAL_NOTE if duty.is_provisional_row(row) else ""
        return f"{head}下一个值班日：{fmt_day(row.day)}{mark}，值班领导：{_leader(p)}"
    return f"{head}近期暂无值班安排。"


@command("值班表", help="值班表（近期节假日值班安排）")
def rota(ctx: Context) -> str:
    rows = duty.coming(ctx.session, ctx.now.date())
    if not rows:
        return "暂无值班安排。"
    lines = ["节假日行政值日安排："]
    lines += [f"{fmt_day(r.day, year=r.day.year != ctx.now.year)} {p.name}{'*' if duty.is_provisional_row(r) else ''}"
              for r, p in rows]
    if any(duty.is_provisional_row(r) for r, _ in rows):
        lines.append(f"* 日期{PROVISIONAL_NOTE}")
    return "\n".join(lines)


@command("换班", roles={"admin"}, help="换班 10月2日 李校长（改派值班领导；或 换班 10月2日 10月3日 互换）")
def swap(ctx: Context) -> str:
    usage = "用法：换班 <日期> <领导姓名>，例如：换班 10月2日 李校长；或 换班 10月2日 10月3日（两天互换）"
    if not ctx.rest:
        return usage
    try:
        when, rest = split_time_prefix(ctx.rest, ctx.now, "moment")
    except TimeParseError as exc:
        raise UserError(f"{exc}\n{usage}") from None
    assert isinstance(when, datetime)
    if not rest:
        raise UserError(usage)
    other = None
    try:
        other_when, leftover = split_time_prefix(rest, ctx.now, "moment")
        if isinstance(other_when, datetime) and not leftover:
            other = other_when.date()
    except TimeParseError:
        pass
    if other is not None:
        return swap_reply(duty.swap(ctx.session, ctx.me, when.date(), now=ctx.now, other_day=other))
    return swap_reply(duty.swap(ctx.session, ctx.me, when.date(), now=ctx.now, leader_name=rest.split()[0]))


def swap_reply(change: duty.Swap) -> str:
    """The reply to a 换班, in chat and in the console."""
    day, new, old = fmt_day(change.day), change.new.name, change.old.name if change.old else None
    if change.other_day is not None:
        return f"已互换：{day} 改由 {new} 值班，{fmt_day(change.other_day)} 改由 {old} 值班，已通知两位领导。"
    if old is not None:
        return f"已换班：{day} 值班领导 {old} → {new}，已通知两位领导。"
    return f"已安排：{day} 由 {new} 值班，已通知本人。"
