"""Inspections 巡查 (XC) by QR scan, scan-to-report 扫码报修: parse, call storage.inspection, word the reply.

A checkpoint's QR carries the scene `cp:<id>`: SCAN (or subscribe with that scene) records a visit and answers
with the check items; `正常` / `异常 <说明>` (then photos) answer it; `巡查 <点位>` stands in for a torn label;
`巡查进度` shows the round. A teacher scanning with no round due reports a repair for that place instead.
"""

from __future__ import annotations

from typing import Any

from handlers.base import Context, command, dialog, on_scene
from handlers.text import normalise
from storage import inspection, repair
from storage.errors import UserError
from storage.inspection import Checkpoint, Progress
from storage.people import STAFF

PHOTOS = "inspection-photos"
REPORT = "scan-report"
DONE_WORDS = frozenset({"完成", "跳过", "提交", "没有", "无", "好了", "好"})
UNBOUND = ("您还没有绑定身份，扫码巡查和报修仅限已绑定的教职工。请先发送「绑定 邀请码」（邀请码向后勤管理员索取），"
           "例如：绑定 AB12CD。")


def _items(cp: Checkpoint) -> str:
    return "；".join(f"{i}. {item}" for i, item in enumerate(cp.item_list(), start=1))


def _where(cp: Checkpoint) -> str:
    return f"{cp.name}（{cp.code}" + (f"，{cp.location}" if cp.location and cp.location != cp.name else "") + "）"


def _progress_line(p: Progress) -> str:
    line = f"「{p.route.name}」进度 {len(p.done)}/{p.total}"
    if p.missing:
        line += "，下一个：" + p.missing[0].name
    else:
        line += "，本轮全部完成，辛苦了！"
    return line


def _scanned(ctx: Context, cp: Checkpoint, via: str) -> str:
    out = inspection.scan(ctx.session, ctx.me, cp, now=ctx.now, via=via)
    if out.visit is None:  # a teacher with no round due: the next message is a repair for this place
        ctx.start_dialog(REPORT, {"place": cp.place, "checkpoint": cp.id})
        return f"{cp.place}：请直接说明问题（文字、语音或照片）。发送「取消」放弃。"
    head = f"已记录巡查 {out.visit.ref}：{_where(cp)}"
    if out.progress is not None:
        p = out.progress
        index = next((i for i, c in enumerate(p.done + p.missing, start=1) if c.id == cp.id), len(p.done))
        head = f"【{p.route.name}】{head}（本轮第{index}个点位，共{p.total}个）"
        if out.repeat:
            head += "（本轮已检查过，再次记录）"
    else:
        head += "（临时检查，不在当前巡查路线内）"
    return (f"{head}\n检查项：{_items(cp)}\n"
            "全部正常请回复「正常」；有问题回复「异常 情况说明」（可接着发现场照片），将自动报修。")


@on_scene(inspection.SCENE_PREFIX)
def on_checkpoint_scan(ctx: Context) -> str | None:
    if ctx.actor is None:  # an unbound follower: told how to bind, nothing recorded
        return UNBOUND
    cp = inspection.checkpoint_by_scene(ctx.session, str(ctx.inbound.extra.get("key") or ""))
    if cp is None:
        return "该点位二维码已停用或不存在，请联系后勤管理员。"
    return _scanned(ctx, cp, "scan")


@command("巡查", roles=STAFF, help="巡查 XF-101（二维码损坏时，用点位编号或名称代替扫码）")
def inspect(ctx: Context) -> str:
    if not ctx.rest.strip():
        return ("巡查时请用微信扫描点位上的二维码；二维码损坏时发送「巡查 点位编号或名称」，例如：巡查 XF-101。"
                "查看本轮完成情况发送「巡查进度」。")
    cp = inspection.find_checkpoint(ctx.session, ctx.rest)
    return _scanned(ctx, cp, "text")


@command("巡查进度", roles=STAFF, help="巡查进度（本轮已查和未查的点位）")
def round_progress(ctx: Context) -> str:
    rounds = inspection.my_progress(ctx.session, ctx.me, ctx.now)
    if not rounds:
        return "今天没有需要您负责的巡查路线。临时检查可直接扫描点位二维码。"
    lines = []
    for p in rounds:
        window = f"{p.route.start:%H:%M}–{p.route.end:%H:%M}"
        lines.append(f"「{p.route.name}」{window}：已完成 {len(p.done)}/{p.total}")
        if p.done:
            lines.append("已查：" + "、".join(cp.name for cp in p.done))
        lines.append("未查：" + ("、".join(f"{cp.name}（{cp.code}）" for cp in p.missing) if p.missing else "无"))
    return "\n".join(lines)


@command("正常", roles=STAFF, help="正常（扫码后：本点位检查项全部正常）")
def normal(ctx: Context) -> str:
    a = inspection.mark_normal(ctx.session, ctx.me, now=ctx.now)
    tail = "\n" + _progress_line(a.progress) if a.progress else ""
    return f"{a.visit.ref} {a.checkpoint.name}：正常，已记录。{tail}"


@command("异常", roles=STAFF, help="异常 压力表指针在红区（扫码后：记录问题并自动报修）")
def abnormal(ctx: Context) -> str:
    a = inspection.report_problem(ctx.session, ctx.me, ctx.after(0), now=ctx.now)
    assert a.ticket is not None and a.finding is not None
    ctx.start_dialog(PHOTOS, {"finding": a.finding.id, "ticket": a.ticket.id, "visit": a.visit.ref})
    who = f"已派给{a.worker.name}" if a.worker else "等待后勤管理员派单"
    tail = "\n" + _progress_line(a.progress) if a.progress else ""
    return (f"{a.visit.ref} {a.checkpoint.name}：异常已记录（{a.finding.description}），已自动报修 {a.ticket.ref}"
            f"（{a.ticket.place}，类别：{a.ticket.category}，{who}）。\n"
            f"如有现场照片请直接发送（可多张），发完回复「完成」。{tail}")


@dialog(PHOTOS)
def photos_step(ctx: Context, state: dict[str, Any]) -> str:
    inbound = ctx.inbound
    if inbound.type == "image":
        finding = inspection.add_finding_photo(ctx.session, int(state["finding"]), inbound.media_id, inbound.pic_url,
                                               now=ctx.now)
        return f"已收到第{finding.photos}张照片（已附到报修 BX{state.get('ticket')}）。继续发送，或回复「完成」。"
    text = normalise(inbound.text) if inbound.type in ("text", "voice") else ""
    ctx.end_dialog()
    if text in DONE_WORDS:
        return f"好的，{state.get('visit')} 的异常已记录，报修 BX{state.get('ticket')} 正在处理。"
    return ctx.run(text) if text else "照片步骤已结束。"


@dialog(REPORT)
def report_step(ctx: Context, state: dict[str, Any]) -> str:
    """Scan to report: the message after the scan becomes a repair for that place (text, voice or a photo)."""
    inbound = ctx.inbound
    place = str(state.get("place") or "")
    photos: list[repair.Photo] = []
    if inbound.type == "image":
        description = "（见照片）"
        photos.append(repair.Photo(inbound.media_id, inbound.pic_url))
    elif inbound.type in ("text", "voice") and normalise(inbound.text):
        description = normalise(inbound.text)
    else:
        return f"{place}：请用文字、语音或照片说明问题（发送「取消」放弃）。"
    urgent = description.startswith(("紧急", "加急"))
    try:
        ticket, worker = repair.create_ticket(ctx.session, ctx.me, place, description, now=ctx.now, urgent=urgent,
                                              photos=photos)
    except UserError as exc:
        return exc.message + "（请重新说明，或发送「取消」放弃）"
    ctx.end_dialog()
    state_text = f"{ticket.state}（维修工：{worker.name}）" if worker else f"{ticket.state}（等待后勤管理员派单）"
    return (f"已报修 {ticket.ref}{'【紧急】' if ticket.urgent else ''}：{ticket.place}，{ticket.description}"
            f"（类别：{ticket.category}{'，照片1张' if photos else ''}）。\n状态：{state_text}\n"
            f"查看进度发送「查询 {ticket.ref}」。")
