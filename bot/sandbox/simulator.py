"""The chat simulator (`/simulator`): act as any bound person, chat with the bot, watch the pushes arrive.

Messages go through the real webhook: the backend builds WeChat's XML, signs it with the configured token
(and encrypts it in safe mode when an EncodingAESKey is configured) and posts it to this app's own `/wechat`
in-process, then reads the XML reply. Pushes are what the fake WeChat API server received (bot.sandbox.fakewechat:
the instance running in this process, else its `/fake/received` over HTTP).

Letting anyone act as anyone is the point, and the danger: every route answers 404 unless the environment
variable HOUQIN_SIMULATOR is 1/true/on (set by `houqin demo`) and outbound messages go to a server other than
the real WeChat API.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import re
import secrets
import threading
import time
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from defusedxml import ElementTree as SafeET
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import or_
from sqlmodel import col, select

from bot.config import SIMULATOR_SWITCH, simulator_enabled, simulator_token
from bot.runtime import Runtime
from bot.sandbox.fakewechat import SEND_PATHS, TINY_JPEG, Call, FakeWeChat
from bot.wechat.crypto import url_signature
from bot.wechat.menu import load_menu, menu_for
from storage import inspection, leave, people, repair
from storage import outbox as ob

ENV_SWITCH = SIMULATOR_SWITCH
NEWCOMER_OPENID = "oDemoNewcomer0000000000000000"  # the 新用户 entry: anyone who has not bound yet
TO_USER = "gh_simulator"
MAX_EVENTS = 3000
MAX_MEDIA = 100
MAX_NEWCOMERS = 50
MAX_IMAGE_BYTES = 5 * 1024 * 1024
ROLE_ORDER = ("admin", "leader", "head_teacher", "teacher", "guard", "worker", "parent")
_OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HERE = Path(__file__).parent
PAGE = _HERE / "templates" / "simulator.html"
ASSETS = {"simulator.js": "application/javascript; charset=utf-8", "simulator.css": "text/css; charset=utf-8"}


def enabled(rt: Runtime) -> bool:
    return simulator_enabled(rt.settings)


TOKEN_HEADER = "X-Simulator-Token"


def _guard(request: Request) -> None:
    """Off → 404. On: the per-run token (header, or `?token=` for the page a browser opens) on everything but
    the static assets and the uploaded pictures (random names); a POST must be JSON (no cross-site form)."""
    if not enabled(request.app.state.runtime):
        raise HTTPException(status_code=404)
    path = request.url.path
    if not (path.startswith("/simulator/assets/") or path.startswith("/simulator/media/")):
        given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
        if not hmac.compare_digest(given.encode(), simulator_token().encode()):
            raise HTTPException(status_code=403, detail="需要模拟器令牌：请打开 houqin demo 显示的完整地址")
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            raise HTTPException(status_code=415, detail="请求必须是 JSON")


router = APIRouter(prefix="/simulator", dependencies=[Depends(_guard)])


# --------------------------------------------------------------------------------------------------------
# What the simulator has seen: one log per app (the demo runs one worker)


class SimLog:
    """Messages sent, replies and pushes, in order; pushes are pulled from the fake WeChat server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.next_id = 1
        self.fake_seen = 0  # highest fake-server call number already looked at
        self.media: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self.newcomers: list[str] = [NEWCOMER_OPENID]  # OpenIDs of the 新用户 entries, in creation order
        self.outbox_used: set[int] = set()  # outbox rows already matched to a push (for its sent time)

    def add(self, openid: str, kind: str, text: str, at: datetime, **extra: Any) -> dict[str, Any]:
        with self.lock:
            event = {"id": self.next_id, "openid": openid, "kind": kind, "text": text,
                     "time": at.strftime("%H:%M:%S"), "date": at.strftime("%Y-%m-%d"), **extra}
            self.next_id += 1
            self.events.append(event)
            del self.events[:-MAX_EVENTS]
            return event

    def new_newcomer(self) -> str:
        with self.lock:
            openid = f"oSimNew{secrets.token_hex(8)}"
            self.newcomers.append(openid)
            del self.newcomers[:-MAX_NEWCOMERS]
            return openid

    def after(self, n: int) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["id"] > n]

    def keep_media(self, media_id: str, content: bytes, ctype: str) -> None:
        with self.lock:
            self.media[media_id] = (content, ctype)
            while len(self.media) > MAX_MEDIA:
                self.media.popitem(last=False)


_log_lock = threading.Lock()


def sim_log(request: Request) -> SimLog:
    state = request.app.state
    with _log_lock:
        if not hasattr(state, "simulator_log"):
            state.simulator_log = SimLog()
        return state.simulator_log  # type: ignore[no-any-return]


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------------------
# Pushes: what the fake WeChat server delivered


async def _received_calls(rt: Runtime, after: int) -> list[Call]:
    base = rt.settings.wechat_api_base_url.rstrip("/")
    fake = FakeWeChat.at(base)
    if fake is not None:
        return [c for c in fake.received if c.seq > after]
    try:  # a fake running in another process
        async with httpx.AsyncClient(timeout=2.0) as client:
            got = (await client.get(base + "/fake/received")).json()
    except (httpx.HTTPError, ValueError):
        return []
    calls = []
    for d in got if isinstance(got, list) else []:
        if isinstance(d, dict) and int(d.get("seq", 0)) > after:
            calls.append(Call(int(d["seq"]), str(d.get("path")), d.get("body"), d.get("access_token"),
                              d.get("query") or {}, 0.0, int(d.get("errcode") or 0), int(d.get("http_status") or 200),
                              answered=True))
    return calls


async def sync_pushes(request: Request) -> None:
    rt, log = _rt(request), sim_log(request)
    calls = sorted(await _received_calls(rt, log.fake_seen), key=lambda c: c.seq)
    fresh: list[Call] = []
    for call in calls:
        if not call.answered:  # still waiting for its answer (latency): look again next time
            break
        with log.lock:
            if call.seq <= log.fake_seen:
                continue
            log.fake_seen = call.seq
        if call.path in SEND_PATHS and call.ok and call.touser:
            fresh.append(call)
    if not fresh:
        return
    names = _names(rt, {c.touser for c in fresh if c.touser})
    sent = _sent_times(rt, log, fresh)
    now = rt.clock.now()
    for call in fresh:
        channel = "template" if call.path.endswith("template/send") else "custom"
        to = call.touser or ""
        log.add(to, "push", call.text or "", sent.get(call.seq) or now, channel=channel,
                to_name=names.get(to, "未知用户"))


def _sent_times(rt: Runtime, log: SimLog, calls: list[Call]) -> dict[int, datetime]:
    """When each push was sent, as the outbox recorded it (not when this page happened to fetch it): the
    outbox row to the same person with the same text, oldest first, each row used once."""
    P, M = people.Person, ob.OutboxMessage
    openids = {c.touser for c in calls if c.touser}
    with rt.db.session() as s:
        rows = s.exec(
            select(M.id, M.text, M.sent_at, M.openid, P.openid)
            .outerjoin(P, col(P.id) == col(M.person_id))
            .where(col(M.state) == ob.SENT, col(M.sent_at).is_not(None),
                   or_(col(P.openid).in_(openids), col(M.openid).in_(openids)))
            .order_by(col(M.id))
        ).all()
    out: dict[int, datetime] = {}
    with log.lock:
        for call in calls:
            for rid, text, sent_at, direct, bound in rows:
                if rid in log.outbox_used or (bound or direct) != call.touser or text != call.text:
                    continue
                log.outbox_used.add(rid)
                out[call.seq] = sent_at
                break
    return out


def _names(rt: Runtime, openids: set[str]) -> dict[str, str]:
    with rt.db.session() as s:
        rows = s.exec(select(people.Person).where(col(people.Person.openid).in_(openids))).all()
        return {p.openid: p.name for p in rows if p.openid}


# --------------------------------------------------------------------------------------------------------
# Through the real webhook


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(openid: str, msg_type: str, **fields: str | int) -> str:
    body: dict[str, str | int] = {"ToUserName": TO_USER, "FromUserName": openid, "CreateTime": int(time.time()),
                                  "MsgType": msg_type}
    if msg_type != "event":
        body["MsgId"] = secrets.randbelow(2**62) + 1
    body.update(fields)
    parts = [f"<{k}>{v}</{k}>" if isinstance(v, int) else f"<{k}>{_cdata(v)}</{k}>" for k, v in body.items()]
    return "<xml>" + "".join(parts) + "</xml>"


def _fields(xml: str) -> dict[str, str]:
    return {child.tag: child.text or "" for child in SafeET.fromstring(xml)}


async def post_to_webhook(request: Request, xml: str) -> tuple[int, str]:
    """Sign (and in safe mode encrypt) a message as WeChat would, post it to this app's /wechat, and
    return (HTTP status, reply text; "" for `success`)."""
    rt = _rt(request)
    token = rt.settings.wechat_token
    ts, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
    params = {"timestamp": ts, "nonce": nonce, "signature": url_signature(token, ts, nonce)}
    body = xml
    if rt.cipher is not None:
        sealed = _fields(rt.cipher.encrypt(xml, nonce, ts))
        params.update(encrypt_type="aes", msg_signature=sealed["MsgSignature"])
        body = f"<xml><ToUserName>{_cdata(TO_USER)}</ToUserName><Encrypt>{_cdata(sealed['Encrypt'])}</Encrypt></xml>"
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://simulator", timeout=30.0) as client:
        resp = await client.post("/wechat", params=params, content=body.encode("utf-8"))
    if resp.status_code != 200:
        return resp.status_code, resp.text
    text = resp.text.strip()
    if not text or text == "success":
        return 200, ""
    reply = _fields(text)
    if "Encrypt" in reply and rt.cipher is not None:
        inner = rt.cipher.decrypt(text.encode(), reply.get("MsgSignature"), reply.get("TimeStamp", ""),
                                  reply.get("Nonce", ""))
        reply = _fields(inner)
    return 200, reply.get("Content", "")


# --------------------------------------------------------------------------------------------------------
# Routes


@router.get("", response_class=HTMLResponse)
def page(request: Request) -> HTMLResponse:
    school = html.escape(str(_rt(request).settings.school_name))
    return HTMLResponse(PAGE.read_text(encoding="utf-8").replace("{{school_name}}", school))


@router.get("/assets/{name}")
def asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(status_code=404)
    return Response((_HERE / "static" / name).read_bytes(), media_type=ASSETS[name],
                    headers={"Cache-Control": "no-cache"})


@router.get("/media/{media_id}")
def media(media_id: str, request: Request) -> Response:
    got = sim_log(request).media.get(media_id)
    if got is None:
        raise HTTPException(status_code=404)
    return Response(got[0], media_type=got[1])


@router.get("/api/people")
def list_people(request: Request) -> JSONResponse:
    """Everyone who can write to the bot (bound and active), in role order, plus the unbound 新用户 entries
    (one at first, one more for each press of the page's 新用户 button), each with the menu WeChat shows them."""
    rt, log = _rt(request), sim_log(request)
    now = rt.clock.now()
    out: list[dict[str, Any]] = []
    with rt.db.session() as s:
        bound_openids: set[str] = set()
        for p, roles in people.list_people(s):
            if not p.openid or not p.active:
                continue
            bound_openids.add(p.openid)
            assert p.id is not None
            out.append({"openid": p.openid, "name": p.name, "roles": people.role_names(roles),
                        "role_keys": sorted(roles), "detail": _detail(s, p, roles),
                        "subscribed": p.subscribed, "suggest": _suggest(s, p, roles, now),
                        "menu": _menu(rt, p.openid, roles),
                        "_rank": min((ROLE_ORDER.index(r) for r in roles if r in ROLE_ORDER), default=99)})
        stmt = (select(people.Invite, people.Person)
                .join(people.Person, col(people.Person.id) == col(people.Invite.person_id))
                .where(col(people.Invite.used_at).is_(None), col(people.Invite.revoked).is_(False),
                       col(people.Invite.expires_at) > now, col(people.Person.openid).is_(None))
                .order_by(col(people.Invite.id)))
        row = s.exec(stmt).first()
        invite = {"code": row[0].code, "name": row[1].name} if row else None
    out.sort(key=lambda d: d.pop("_rank"))
    with log.lock:
        waiting = [o for o in log.newcomers if o not in bound_openids]
    hint = (f"发送「绑定 {invite['code']}」即成为 {invite['name']}" if invite
            else "尚未绑定：可发送「帮助」，或用 houqin invite 生成的邀请码「绑定 XXXXXX」")
    newcomers = [{"openid": o, "name": "新用户" if i == 0 else f"新用户{i + 1}", "roles": "未绑定", "role_keys": [],
                  "detail": hint, "subscribed": True, "suggest": [], "menu": _menu(rt, o, frozenset())}
                 for i, o in enumerate(waiting)]
    return JSONResponse({"people": out, "newcomer": newcomers[0] if newcomers else None, "newcomers": newcomers,
                         "menu": _menu(rt, "", frozenset()),
                         "school": rt.settings.school_name, "safe_mode": rt.cipher is not None})


@router.post("/api/newcomer")
async def newcomer(request: Request) -> JSONResponse:
    """A fresh OpenID that has just followed the account (the welcome arrives as its first reply): try an
    invite made in the console, as many times as you like."""
    rt, log = _rt(request), sim_log(request)
    openid = log.new_newcomer()
    log.add(openid, "in", "[关注公众号]", rt.clock.now(), type="event")
    status, reply = await post_to_webhook(request, message_xml(openid, "event", Event="subscribe"))
    log.add(openid, "reply" if status == 200 else "error", reply if status == 200 else f"公众号服务器返回 {status}",
            rt.clock.now())
    return JSONResponse({"openid": openid})


@router.get("/api/checkpoints")
def list_checkpoints(request: Request) -> JSONResponse:
    """The checkpoints whose QR codes the simulator can "scan" (one button each)."""
    with _rt(request).db.session() as s:
        cps = inspection.all_checkpoints(s, active_only=True)
        return JSONResponse({"checkpoints": [{"key": cp.scene, "code": cp.code, "name": cp.name} for cp in cps]})


def _detail(s: Any, p: people.Person, roles: frozenset[str]) -> str:
    bits = []
    assert p.id is not None
    if "head_teacher" in roles:
        bits += [k.name for k in people.classes_headed_by(s, p.id)]
    if "worker" in roles and p.categories:
        bits.append("类别：" + p.categories.replace(",", "、"))
    if "parent" in roles:
        kids = people.children_of(s, p.id)
        bits += [f"孩子：{k.name}" for k in kids]
    if not p.subscribed:
        bits.append("已取消关注")
    return "，".join(bits)


def _suggest(s: Any, p: people.Person, roles: frozenset[str], now: datetime) -> list[str]:
    """Chips from this person's real records: a worker's open tickets, a head teacher's pending slips."""
    assert p.id is not None
    actor = people.Actor(p.id, p.name, p.openid, roles)
    out: list[str] = []
    if "worker" in roles:
        for t, _ in repair.tasks_of(s, actor)[:3]:
            out.append(f"接单 {t.ref}" if t.state == repair.ASSIGNED else f"完成 {t.ref} 已修好")
    if "head_teacher" in roles:
        out += [f"批准 {leave.ref(slip)}" for slip in leave.pending_for(s, actor, now)[:2]]
    return out


def _menu(rt: Runtime, openid: str, roles: frozenset[str]) -> dict[str, Any] | None:
    """The menu this person sees: as the fake WeChat server would show it (by their tag) once `menu push`
    installed the menus there, else the one their roles will get."""
    fake = FakeWeChat.at(rt.settings.wechat_api_base_url.rstrip("/"))
    if fake is not None and fake.menu is not None:
        return fake.menu_for(openid)
    try:
        return menu_for(load_menu(), roles)
    except ValueError:  # the menu is a nicety: no menu file, no buttons
        return None


@router.get("/api/events")
async def events(request: Request, after: int = 0) -> JSONResponse:
    await sync_pushes(request)
    log = sim_log(request)
    got = log.after(after)
    return JSONResponse({"events": got, "last": got[-1]["id"] if got else max(after, 0)})


@router.post("/api/send")
async def send(request: Request) -> JSONResponse:
    """{openid, type: text|image|click|subscribe|unsubscribe, text?, key?, image? (base64 or data: URL)}."""
    try:
        data = await request.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return JSONResponse({"error": "请求格式不对"}, status_code=400)
    openid = str(data.get("openid") or "")
    if not _OPENID.match(openid):
        return JSONResponse({"error": "openid 不对"}, status_code=400)
    kind = str(data.get("type") or "text")
    rt, log = _rt(request), sim_log(request)
    now = rt.clock.now()
    if kind == "text":
        text = str(data.get("text") or "")
        if not text.strip():
            return JSONResponse({"error": "消息不能为空"}, status_code=400)
        if len(text) > 2000:
            return JSONResponse({"error": "消息太长（最多2000字）"}, status_code=400)
        xml = message_xml(openid, "text", Content=text)
        sent = log.add(openid, "in", text, now, type="text")
    elif kind == "image":
        try:
            content, ctype = _image(data.get("image"))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        media_id = "sim_" + secrets.token_hex(8)
        log.keep_media(media_id, content, ctype)
        fake = FakeWeChat.at(rt.settings.wechat_api_base_url.rstrip("/"))
        if fake is not None:  # so /cgi-bin/media/get answers this very picture
            fake.add_media(media_id, content, ctype)
        pic_url = str(request.base_url).rstrip("/") + f"/simulator/media/{media_id}"
        xml = message_xml(openid, "image", PicUrl=pic_url, MediaId=media_id)
        sent = log.add(openid, "in", "[图片]", now, type="image", media=f"/simulator/media/{media_id}")
    elif kind == "click":
        key = str(data.get("key") or "")
        if not key or len(key) > 128:
            return JSONResponse({"error": "菜单 key 不对"}, status_code=400)
        xml = message_xml(openid, "event", Event="CLICK", EventKey=key)
        sent = log.add(openid, "in", f"[菜单] {data.get('label') or key}", now, type="click")
    elif kind == "scan":  # a checkpoint's QR code scanned with WeChat (SCAN, scene cp:<id>)
        key = str(data.get("key") or "")
        if not re.fullmatch(r"cp:\d{1,9}", key):
            return JSONResponse({"error": "点位二维码不对"}, status_code=400)
        xml = message_xml(openid, "event", Event="SCAN", EventKey=key, Ticket="sim")
        sent = log.add(openid, "in", f"[扫码] {str(data.get('label') or key)[:40]}", now, type="scan")
    elif kind in ("subscribe", "unsubscribe"):
        xml = message_xml(openid, "event", Event=kind)
        sent = log.add(openid, "in", "[关注公众号]" if kind == "subscribe" else "[取消关注]", now, type="event")
    else:
        return JSONResponse({"error": f"不支持的消息类型：{kind}"}, status_code=400)
    status, reply = await post_to_webhook(request, xml)
    if status != 200:
        answer = log.add(openid, "error", f"公众号服务器返回 {status}：{reply[:200]}", rt.clock.now())
    else:
        answer = log.add(openid, "reply", reply, rt.clock.now())
    await sync_pushes(request)  # a reply may come with pushes already sent (e.g. a quick sender)
    return JSONResponse({"status": status, "reply": reply, "sent": sent, "answer": answer})


def _image(value: Any) -> tuple[bytes, str]:
    """A picture from the page (a data: URL or bare base64); none → a tiny JPEG."""
    if not value:
        return TINY_JPEG, "image/jpeg"
    text = str(value)
    ctype = "image/jpeg"
    if text.startswith("data:"):
        head, _, text = text.partition(",")
        ctype = head[5:].split(";", 1)[0] or ctype
    if not ctype.startswith("image/"):
        raise ValueError("只能发送图片")
    if len(text) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise ValueError("图片太大（最多5MB）")
    try:
        return base64.b64decode(text, validate=True), ctype
    except (binascii.Error, ValueError):
        raise ValueError("图片数据不对") from None
