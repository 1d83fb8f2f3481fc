"""`GET/POST /wechat`: verify first, then parse, dedup and dispatch (SPEC section 7)."""

from __future__ import annotations

import logging
import secrets
import time
from urllib.parse import parse_qsl

from sqlalchemy.exc import OperationalError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

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


async def _read_body(headers: list[tuple[bytes, bytes]], receive: Receive, limit: int) -> bytes:
    for name, value in headers:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise Rejected(413, "body too large")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Rejected(400, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Rejected(413, "body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
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


async def receive(rt: Runtime, scope: Scope, receive: Receive, send: Send) -> None:
    """`POST /wechat` as a plain ASGI call: the busiest request of all needs no request or response objects
    (they were a sixth of a `帮助`'s CPU on the event loop: bench/cpu.py)."""
    status, content_type, body = await answer(rt, scope, receive)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


PLAIN, XML = b"text/plain; charset=utf-8", b"application/xml; charset=utf-8"


async def answer(rt: Runtime, scope: Scope, receive: Receive) -> tuple[int, bytes, bytes]:
    """The status, content type and body to answer a `POST /wechat` with."""
    s = rt.settings
    q = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    encrypted = (q.get("encrypt_type") or "raw").lower() == "aes"
    try:
        body = await _read_body(scope.get("headers", []), receive, s.max_body_bytes)
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
            log.warning("refused %s: %s", scope.get("path"), exc.reason)
        return exc.status, PLAIN, exc.reason.encode()
    except UnicodeDecodeError:
        return 400, PLAIN, b"body is not UTF-8"

    key, inbound = to_inbound(fields)
    try:
        reply = await rt.inbox.receive(key, inbound)
    except (DatabaseUnavailable, OperationalError) as exc:
        log.error("database unavailable, answering 503 so WeChat retries: %s", exc)
        return 503, PLAIN, b"database unavailable"
    except Exception:
        log.exception("unexpected failure for %s", key)
        return 200, PLAIN, b"success"
    if not reply:
        return 200, PLAIN, b"success"
    xml_reply = text_reply(inbound.openid, fields.get("ToUserName", ""), reply, int(time.time()))
    if encrypted and rt.cipher is not None:
        xml_reply = rt.cipher.encrypt(xml_reply, secrets.token_hex(5), str(int(time.time())))
    return 200, XML, xml_reply.encode()


async def _receive_route(request: Request) -> Response:
    """The same, as a Starlette route (the app answers `POST /wechat` before routing; this is for a router
    mounted elsewhere)."""
    status, content_type, body = await answer(runtime_of(request), request.scope, request.receive)
    return Response(content=body, status_code=status, media_type=content_type.decode().split(";")[0])


# Plain Starlette routes: the webhook needs no FastAPI parameter parsing or validation, and skipping it
# is measurably faster on the hot path (bench/webhook.py).
routes = [Route("/wechat", verify_url, methods=["GET"]), Route("/wechat", _receive_route, methods=["POST"])]
