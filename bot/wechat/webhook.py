"""`GET/POST /wechat`: verify first, then parse, dedup and dispatch (SPEC section 7)."""

from __future__ import annotations

import logging
import secrets
import time

from sqlalchemy.exc import OperationalError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.runtime import Runtime
from bot.wechat.crypto import Rejected, check_timestamp, check_url_signature, parse_xml_safely
from bot.wechat.reply import check_fields, text_reply
from handlers.base import Inbound
from storage.db import DatabaseUnavailable

log = logging.getLogger("houqin.webhook")

TEXT_TYPES = {"text", "voice"}


def _plain(body: str, status: int = 200) -> Response:
    return Response(content=body, status_code=status, media_type="text/plain; charset=utf-8")


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def verify_url(request: Request) -> Response:
    rt = runtime_of(request)
    q = request.query_params
    try:
        check_url_signature(rt.settings.wechat_token, q.get("signature"), q.get("timestamp"), q.get("nonce"))
    except Rejected as exc:
        return _plain(exc.reason, exc.status)
    return _plain(q.get("echostr", ""))


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Rejected(413, "body too large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, "body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def to_inbound(fields: dict[str, str]) -> tuple[str, Inbound]:
    """WeChat's message → our transport-free Inbound, plus the dedup key."""
    openid = fields.get("FromUserName", "")
    mtype = (fields.get("MsgType") or "").lower()
    if mtype == "event":
        event = (fields.get("Event") or "").lower()
        key_text = fields.get("EventKey", "")
        extra = {"event": event, "key": key_text, "fields": fields}
        if event == "subscribe" and key_text.startswith("qrscene_"):
            extra["key"] = key_text[len("qrscene_"):]
        dedup = f"{openid}:{fields.get('CreateTime', '')}:{event}"
        return dedup, Inbound(openid=openid, type="event", text="", extra=extra)
    text = ""
    if mtype == "text":
        text = fields.get("Content", "")
    elif mtype == "voice":
        text = fields.get("Recognition", "") or ""
    msgid = fields.get("MsgId") or f"{openid}:{fields.get('CreateTime', '')}"
    extra = {k: v for k, v in fields.items() if k in ("Location_X", "Location_Y", "Label", "Url", "Title", "Format")}
    return msgid, Inbound(
        openid=openid, type=mtype or "unknown", text=text, media_id=fields.get("MediaId"),
        pic_url=fields.get("PicUrl"), extra=extra,
    )


async def receive(request: Request) -> Response:
    rt = runtime_of(request)
    s = rt.settings
    q = request.query_params
    encrypted = (q.get("encrypt_type") or "raw").lower() == "aes"
    try:
        body = await _read_body(request, s.max_body_bytes)
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if encrypted:
            if rt.cipher is None:
                raise Rejected(403, "encrypted message but WECHAT_AES_KEY is not set")
            if q.get("signature"):
                check_url_signature(s.wechat_token, q.get("signature"), timestamp, nonce)
            check_timestamp(timestamp, s.timestamp_tolerance)
            xml = rt.cipher.decrypt(body, q.get("msg_signature"), timestamp, nonce)
        else:
            if s.safe_mode_required:
                raise Rejected(403, "plaintext messages refused (safe mode: WECHAT_AES_KEY is set)")
            check_url_signature(s.wechat_token, q.get("signature"), timestamp, nonce)
            check_timestamp(timestamp, s.timestamp_tolerance)
            xml = body.decode("utf-8", errors="strict") if body else ""
        fields = check_fields(parse_xml_safely(xml))
        if not fields.get("MsgType") or not fields.get("FromUserName"):
            raise Rejected(400, "not a WeChat message")
    except Rejected as exc:
        if exc.status != 400:
            log.warning("refused %s: %s", request.url.path, exc.reason)
        return _plain(exc.reason, exc.status)
    except UnicodeDecodeError:
        return _plain("body is not UTF-8", 400)

    key, inbound = to_inbound(fields)
    try:
        reply = await rt.inbox.receive(key, inbound)
    except (DatabaseUnavailable, OperationalError) as exc:
        log.error("database unavailable, answering 503 so WeChat retries: %s", exc)
        return _plain("database unavailable", 503)
    except Exception:
        log.exception("unexpected failure for %s", key)
        return _plain("success")
    if not reply:
        return _plain("success")
    xml_reply = text_reply(inbound.openid, fields.get("ToUserName", ""), reply, int(time.time()))
    if encrypted and rt.cipher is not None:
        xml_reply = rt.cipher.encrypt(xml_reply, secrets.token_hex(5), str(int(time.time())))
    return Response(content=xml_reply, media_type="application/xml; charset=utf-8")


# Plain Starlette routes: the webhook needs no FastAPI parameter parsing or validation, and skipping it
# is measurably faster on the hot path (bench/webhook.py).
routes = [Route("/wechat", verify_url, methods=["GET"]), Route("/wechat", receive, methods=["POST"])]
