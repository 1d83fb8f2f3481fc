"""Repair commands 报修 (BX) and the guided 报修 dialog: parse, call storage.repair, format the reply."""

from __future__ import annotations

import re
from typing import Any

from handlers.base import Context, command, dialog
from handlers.text import normalise, parse_ref
from handlers.understand.lexicon import lexicon
from handlers.understand.places import split_place
from storage import repair
from storage.errors import UserError
from storage.people import STAFF
from storage.repair import RepairTicket

URGENT_WORDS = frozenset({"紧急", "加急", "急"})
DIALOG = "repair"
DONE_WORDS = frozenset({"完成", "跳过", "提交", "没有", "无", "好了", "好"})  # end of the photo step
SCORE_WORDS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
ADMIN_LEADER = frozenset({"admin", "leader"})


def _ref(ctx: Context) -> int:
    return parse_ref(ctx.args[0] if ctx.args else None, repair.PREFIX)


def _state_line(t: RepairTicket, assignee: str) -> str:
    return f"{t.state}（维修工：{assignee}）" if assignee else t.state


def _created(t: RepairTicket, worker: repair.Worker | None, photos: int = 0) -> str:
    urgent = "【紧急】" if t.urgent else ""
    with_photos = f"，照片{photos}张" if photos else ""
    if worker is not None:
        state = f"{t.state}（维修工：{worker.name}）"
    else:
        state = f"{t.state}（等待后勤管理员派单）"
    return (f"已报修 {t.ref}{urgent}：{t.place}，{t.description}（类别：{t.category}{with_photos}）。\n"
            f"状态：{state}\n查看进度发送「查询 {t.ref}」，取消发送「取消 {t.ref}」。")


# --- reporting ------------------------------------------------------------------------------------------


@command("报修", roles=STAFF, help="报修 教学楼301 灯不亮（报修；「报修 紧急 …」加急；只发「报修」按提示填写）")
def report(ctx: Context) -> str:
    args = ctx.args
    urgent = bool(args) and args[0] in URGENT_WORDS
    skip = 1 if urgent else 0
    if len(args) <= skip:
        ctx.start_dialog(DIALOG, {"step": "place", "urgent": urgent})
        return ("好的，开始报修" + ("（紧急）" if urgent else "") + "。请发送报修地点，例如：教学楼301。\n"
                "随时发送「取消」退出。")
    place, description = args[skip], ctx.after(skip + 1)
    if not description:  # `报修 教学楼301灯不亮`: the place glued to the fault
        glued = split_place(lexicon(ctx.session), ctx.after(skip))
        if glued is not None:
            place, description = glued
    if not description:
        raise UserError(f"请写上故障描述，例如：报修 {place} 灯不亮（也可以只发「报修」按提示填写）")
    ticket, worker = repair.create_ticket(ctx.session, ctx.me, place, description, urgent=urgent, now=ctx.now)
    return _created(ticket, worker)


@dialog(DIALOG, roles=STAFF)
def report_step(ctx: Context, state: dict[str, Any]) -> str:
    """地点 → 描述 → photos until 完成/跳过. `取消` and the 10-minute expiry are handled by the router."""
    inbound = ctx.inbound
    text = normalise(inbound.text) if inbound.type in ("text", "voice") else ""
    step = state.get("step")
    if step == "place":
        if not text:
            return "请先用文字发送报修地点，例如：教学楼301（发送「取消」退出）。"
        first, _, rest = text.partition(" ")
        if first in URGENT_WORDS and rest.strip():
            state["urgent"], text = True, rest.strip()
        if len(text) > repair.MAX_PLACE:
            return f"地点太长了（最多{repair.MAX_PLACE}字），请重新发送报修地点。"
        state.update(step="description", place=text)
        ctx.save_dialog(DIALOG, state)
        return f"地点：{text}。请描述故障情况，例如：灯不亮、水龙头漏水。"
    if step == "description":
        if not text:
            return "请用文字描述故障情况，例如：灯不亮（发送「取消」退出）。"
        if len(text) > repair.MAX_DESCRIPTION:
            return f"描述太长了（最多{repair.MAX_DESCRIPTION}字），请精简后重新发送。"
        state.update(step="photos", description=text, photos=[])
        ctx.save_dialog(DIALOG, state)
        return "如有现场照片，请直接发送（可多张）；发完回复「完成」，没有照片回复「跳过」。"
    if step == "photos":
        photos: list[dict[str, str | None]] = list(state.get("photos") or [])
        if inbound.type == "image":
            if len(photos) >= repair.MAX_PHOTOS:
                return f"最多{repair.MAX_PHOTOS}张照片，请回复「完成」提交报修。"
            photos.append({"media_id": inbound.media_id, "pic_url": inbound.pic_url})
            state["photos"] = photos
            ctx.save_dialog(DIALOG, state)
            return f"已收到第{len(photos)}张照片。继续发送，或回复「完成」提交报修。"
        if text in DONE_WORDS:
            ticket, worker = repair.create_ticket(
                ctx.session, ctx.me, str(state.get("place", "")), str(state.get("description", "")),
                urgent=bool(state.get("urgent")), now=ctx.now,
                photos=[repair.Photo(p.get("media_id"), p.get("pic_url")) for p in photos],
            )
            ctx.end_dialog()  # only once the ticket exists: a refusal leaves the dialog where it was
            return _created(ticket, worker, len(photos))
        return "请发送现场照片，或回复「完成」提交报修（没有照片回复「跳过」，发送「取消」放弃）。"
    ctx.end_dialog()  # a state we do not know (e.g. written by an older version): start over
    return "报修对话已失效，请重新发送「报修」。"


@command("我的报修", roles=STAFF, help="我的报修（我报的修和进度）")
def my_reports(ctx: Context) -> str:
    rows = repair.reported_by(ctx.session, ctx.me)
    if not rows:
        return "您还没有报修记录。报修请发送：报修 教学楼301 灯不亮"
    lines = [f"我的报修（最近{len(rows)}条）："]
    for t, assignee in rows:
        urgent = "【紧急】" if t.urgent else ""
        lines.append(f"{t.ref}{urgent} {t.created_at:%m-%d} {repair.summary(t, 24)} — {_state_line(t, assignee)}")
    lines.append("详情发送「查询 BX编号」。")
    return "\n".join(lines)


@command("查询", roles=STAFF, record="BX", help="查询 BX12（报修详情和处理记录）")
def query(ctx: Context) -> str:
    d = repair.details(ctx.session, ctx.me, _ref(ctx))
    t = d.ticket
    lines = [
        f"{t.ref}{'【紧急】' if t.urgent else ''}",
        f"地点：{t.place}",
        f"描述：{t.description}",
        f"类别：{t.category}",
        f"紧急：{'是' if t.urgent else '否'}",
        f"状态：{t.state}",
        f"维修工：{d.assignee or '未派单'}",
        f"报修人：{d.reporter}（{t.created_at:%m-%d %H:%M}）",
        f"照片：{d.photos}张",
    ]
    if t.finish_note:
        lines.append(f"维修说明：{t.finish_note}")
    if t.rating is not None:
        lines.append(f"评价：{t.rating}分" + (f"，{t.rating_comment}" if t.rating_comment else ""))
    lines.append("处理记录：")
    for h in d.history:
        move = f"→{h.to_state}" if h.from_state != h.to_state else ""
        note = f"（{h.note}）" if h.note else ""
        lines.append(f"· {h.at:%m-%d %H:%M} {h.who} {h.action}{move}{note}")
    return "\n".join(lines)


@command("催办", roles=STAFF, record="BX", help="催办 BX12（催促维修，每小时一次）")
def hurry(ctx: Context) -> str:
    ticket, names = repair.nudge(ctx.session, ctx.me, _ref(ctx), now=ctx.now)
    who = "、".join(names) if names else "后勤管理员"
    return f"已催办 {ticket.ref}，已提醒{who}（当前状态：{ticket.state}）。"


@command("取消", roles=STAFF, record="BX", help="取消 BX12（取消报修）")
def cancel(ctx: Context) -> str:
    if not ctx.args:
        return "当前没有进行中的对话。要取消报修，请发送「取消 BX12」（BX12 换成您的报修编号）。"
    ticket = repair.cancel(ctx.session, ctx.me, _ref(ctx), ctx.after(1), now=ctx.now)
    return f"已取消报修 {ticket.ref}（{repair.summary(ticket)}）。"


@command("取消", record=None, hidden=True, help="取消（结束当前对话）")
def cancel_nothing(ctx: Context) -> str:
    # `取消` ends a dialog in the router; people who cannot cancel repairs still deserve a plain answer.
    return "当前没有进行中的对话，无需取消。发送「帮助」查看可用命令。"


def _score(text: str | None) -> int:
    s = (text or "").strip().rstrip("分星")
    if s in SCORE_WORDS:
        return SCORE_WORDS[s]
    if re.fullmatch(r"\d{1,2}", s):
        return int(s)
    raise UserError("请给1-5分，例如：评价 BX12 5 修得很及时")


@command("评价", roles=STAFF, record="BX", help="评价 BX12 5 修得很及时（完成后打分1-5，可附评语）")
def rate(ctx: Context) -> str:
    n = _ref(ctx)
    if len(ctx.args) < 2:
        raise UserError(f"请写上分数（1-5），例如：评价 BX{n} 5 修得很及时")
    ticket = repair.rate(ctx.session, ctx.me, n, _score(ctx.args[1]), ctx.after(2), now=ctx.now)
    return f"感谢评价！{ticket.ref} 评分：{ticket.rating}分，状态：{ticket.state}。"


def _ticket_list(title: str, rows: list[tuple[repair.RepairTicket, str]], empty: str, hint: str, *,
                 state: bool = False, category: bool = False) -> str:
    """A list of tickets with its count, then a line a ticket — number (urgent marked), its state if asked, when,
    its category if asked, what, who reported — and what to send next; `empty` when there is none."""
    if not rows:
        return empty
    lines = [f"{title} {len(rows)} 张："]
    for t, reporter in rows:
        urgent = "【紧急】" if t.urgent else ""
        before = f"{t.state} " if state else ""
        after = f"[{t.category}] " if category else ""
        lines.append(f"{t.ref}{urgent} {before}{t.created_at:%m-%d %H:%M} {after}{repair.summary(t, 30)}（{reporter}）")
    lines.append(hint)
    return "\n".join(lines)


# --- the admin ------------------------------------------------------------------------------------------


@command("待派单", roles={"admin"}, help="待派单（未派单的报修）")
def pending(ctx: Context) -> str:
    return _ticket_list("待派单", repair.unassigned(ctx.session), "目前没有待派单的报修。",
                        "派单请发送：派单 BX编号 维修工姓名", category=True)


@command("派单", roles={"admin"}, record="BX", help="派单 BX12 李师傅（把报修派给维修工）")
def assign(ctx: Context) -> str:
    ticket, worker = repair.assign(ctx.session, ctx.me, _ref(ctx), ctx.after(1), now=ctx.now)
    unbound = "（注意：该维修工尚未绑定微信，收不到通知）" if not worker.openid else "，已通知维修工"
    return f"已将 {ticket.ref}（{repair.summary(ticket)}）派给{worker.name}{unbound}。状态：{ticket.state}。"


@command("报修统计", roles=ADMIN_LEADER, help="报修统计 本月（或 上月；按状态、类别，平均用时和评分）")
def statistics(ctx: Context) -> str:
    which = ctx.args[0] if ctx.args else "本月"
    m = re.fullmatch(r"(\d{4})-(\d{1,2})", which)
    if which == "本月":
        start, end = repair.month_range(ctx.now)
    elif which == "上月":
        start, end = repair.month_range(ctx.now, 1)
    elif m and 1 <= int(m.group(2)) <= 12:
        first = ctx.now.replace(year=int(m.group(1)), month=int(m.group(2)), day=1)
        start, end = repair.month_range(first)
    else:
        raise UserError("请发送「报修统计 本月」或「报修统计 上月」（也可以写月份，如 报修统计 2026-11）。")
    s = repair.stats(ctx.session, start, end)
    lines = [f"报修统计（{start:%Y年%m月}）：共 {s.total} 张"]
    if s.total:
        lines.append("按状态：" + "、".join(f"{k} {v}" for k, v in s.by_state.items()))
        lines.append("按类别：" + "、".join(f"{k} {v}" for k, v in s.by_category.items()))
    lines.append(f"平均完成用时：{s.avg_hours:.1f} 小时（{s.finished} 张）" if s.avg_hours is not None
                 else "平均完成用时：暂无（没有已完成的报修）")
    lines.append(f"平均评分：{s.avg_rating:.1f} 分（{s.rated} 张）" if s.avg_rating is not None
                 else "平均评分：暂无评价")
    return "\n".join(lines)


# --- the worker -----------------------------------------------------------------------------------------


@command("我的任务", roles={"worker"}, help="我的任务（派给我的维修）")
def my_tasks(ctx: Context) -> str:
    return _ticket_list("我的任务", repair.tasks_of(ctx.session, ctx.me), "您目前没有维修任务。",
                        "开始维修发「接单 BX编号」，修好发「完成 BX编号 说明」，无法处理发「退单 BX编号 原因」。", state=True)


@command("接单", roles={"worker"}, record="BX", help="接单 BX12（开始维修）")
def take(ctx: Context) -> str:
    ticket = repair.take(ctx.session, ctx.me, _ref(ctx), now=ctx.now)
    return (f"已接单 {ticket.ref}（{ticket.place}，{ticket.description}），状态：{ticket.state}。"
            f"修好后发送「完成 {ticket.ref} 维修说明」。")


@command("完成", roles={"worker"}, record="BX", help="完成 BX12 更换了灯管（维修完成）")
def finish(ctx: Context) -> str:
    ticket = repair.finish(ctx.session, ctx.me, _ref(ctx), ctx.after(1), now=ctx.now)
    return f"{ticket.ref} 已完成，辛苦了！已请报修人评价。"


@command("退单", roles={"worker"}, record="BX", help="退单 BX12 缺少配件（退回重新派单）")
def give_back(ctx: Context) -> str:
    n = _ref(ctx)
    ticket = repair.give_back(ctx.session, ctx.me, n, ctx.after(1), now=ctx.now)
    return f"已退单 {ticket.ref}，状态：{ticket.state}，已告知后勤管理员重新派单。"
