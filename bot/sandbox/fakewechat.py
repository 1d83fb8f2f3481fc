"""A fake WeChat API server for tests, the demo and anyone without a 公众号.

It speaks the few endpoints the bot uses (token, customer-service and template messages, the default and
conditional menus, user tags, media),
records every call, and can be told to misbehave: error codes, latency, dropped connections, expired
tokens. `FakeWeChat().start()` serves it with uvicorn on 127.0.0.1 in a background thread;
`python -m bot.sandbox.fakewechat --port 8081` runs it standalone; `FakeWeChat().app` can be mounted elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import segno
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

TOKEN_PATH = "/cgi-bin/token"
CUSTOM_PATH = "/cgi-bin/message/custom/send"
TEMPLATE_PATH = "/cgi-bin/message/template/send"
MENU_PATH = "/cgi-bin/menu/create"
MEDIA_PATH = "/cgi-bin/media/get"
MENU_DELETE_PATH = "/cgi-bin/menu/delete"
MENU_CONDITIONAL_PATH = "/cgi-bin/menu/addconditional"
TAGS_CREATE_PATH = "/cgi-bin/tags/create"
TAGS_GET_PATH = "/cgi-bin/tags/get"
TAGGING_PATH = "/cgi-bin/tags/members/batchtagging"
UNTAGGING_PATH = "/cgi-bin/tags/members/batchuntagging"
TAG_IDS_PATH = "/cgi-bin/tags/getidlist"
QRCODE_PATH = "/cgi-bin/qrcode/create"
SHOWQRCODE_PATH = "/cgi-bin/showqrcode"
QR_ACTIONS = ("QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE")
SEND_PATHS = (CUSTOM_PATH, TEMPLATE_PATH)

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40003: "invalid openid",
    40007: "invalid media_id",
    40013: "invalid appid",
    40014: "invalid access_token",
    40016: "invalid button size",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44002: "empty post data",
    44004: "empty content",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    45157: "invalid tag name: the name already exists",
    45159: "invalid tag id",
    65303: "there is no selfmenu, please create selfmenu first",
}

# A 1x1 JPEG: what /media/get answers for a media id nobody registered.
TINY_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a1f"
    "1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b080001000101011100ffc4001f0000"
    "010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000017d0102030004"
    "1105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a3435363738393a43"
    "4445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92939495969798999aa2a3a4a5a6"
    "a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda"
    "0008010100003f00fbd3ffd9"
)


@dataclass
class Call:
    """One request the fake received, with what it answered."""

    seq: int
    path: str
    body: dict[str, Any] | None
    access_token: str | None
    query: dict[str, str]
    at: float  # time.monotonic() on arrival
    errcode: int = 0
    http_status: int = 200
    answered: bool = False  # set once the answer is decided (readers in other threads may look earlier)

    @property
    def ok(self) -> bool:
        return self.answered and self.errcode == 0 and self.http_status == 200

    @property
    def touser(self) -> str | None:
        return (self.body or {}).get("touser")

    @property
    def text(self) -> str | None:
        """The text a person would read: the content of a customer-service message, or for a template
        message the `keyword1` field, where bot.wechat.sender puts the whole text."""
        body = self.body or {}
        if self.path == CUSTOM_PATH:
            return ((body.get("text") or {}).get("content")) if body.get("msgtype") == "text" else None
        if self.path == TEMPLATE_PATH:
            data = body.get("data") or {}
            value = (data.get("keyword1") or data.get("first") or {}).get("value")
            return str(value) if value is not None else None
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "path": self.path, "body": self.body, "access_token": self.access_token,
                "query": self.query, "errcode": self.errcode, "http_status": self.http_status, "at": self.at,
                "ok": self.ok, "text": self.text}


@dataclass
class _Fault:
    errcode: int | None
    times: int
    http_status: int = 200
    errmsg: str | None = None


@dataclass
class _State:
    tokens: dict[str, bool] = field(default_factory=dict)  # token → still valid
    expired_code: dict[str, int] = field(default_factory=dict)
    faults: dict[str, list[_Fault]] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)
    openid_errors: dict[str, int] = field(default_factory=dict)
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    latency: float = 0.0
    token_fetches: int = 0
    menu: dict[str, Any] | None = None
    conditional: list[dict[str, Any]] = field(default_factory=list)  # {"menuid", "button", "matchrule"}
    tags: dict[int, str] = field(default_factory=dict)  # tag id → name
    user_tags: dict[str, list[int]] = field(default_factory=dict)  # openid → tag ids
    qr: dict[str, tuple[str, str]] = field(default_factory=dict)  # ticket → (scene, the URL its image encodes)


def _norm(path: str) -> str:
    """`message/custom/send`, `/cgi-bin/message/custom/send` and full URLs all name the same endpoint."""
    if "://" in path:
        path = "/" + path.split("://", 1)[1].split("/", 1)[1]
    path = path.split("?", 1)[0]
    if not path.startswith("/"):
        path = "/cgi-bin/" + path
    return path


class FakeWeChat:
    """The fake API, its recorded calls and its fault switches. Thread-safe."""

    _running: ClassVar[dict[str, FakeWeChat]] = {}

    def __init__(self, appid: str | None = None, secret: str | None = None, *, templates: set[str] | None = None,
                 token_ttl: int = 7200, host: str = "127.0.0.1", port: int = 0) -> None:
        self.appid = appid  # None: any appid/secret gets a token
        self.secret = secret
        self.templates = templates  # None: any template id is accepted
        self.token_ttl = token_ttl
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._msgids = itertools.count(int(time.time()) % 10**6 * 1000 + 1)
        self._calls: list[Call] = []
        self._state = _State()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.app = self._build_app()

    # --- running it ---
    def start(self) -> FakeWeChat:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(512)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.asgi, log_level="warning", access_log=False, lifespan="off", interface="asgi3",
                                timeout_keep_alive=30, backlog=512)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="fake-wechat", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake WeChat server did not start")
            time.sleep(0.01)
        self.base_url = f"http://{self.host}:{self.port}"
        FakeWeChat._running[self.base_url] = self
        return self

    def stop(self) -> None:
        FakeWeChat._running.pop(self.base_url, None)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    def at(cls, base_url: str) -> FakeWeChat | None:
        """The fake started in this process that serves `base_url`, if any."""
        return cls._running.get(base_url.rstrip("/"))

    # --- what it received ---
    @property
    def received(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls(self, path: str) -> list[Call]:
        p = _norm(path)
        return [c for c in self.received if c.path == p]

    def sends(self) -> list[Call]:
        """Messages actually delivered (customer-service and template), in arrival order."""
        return [c for c in self.received if c.path in SEND_PATHS and c.ok]

    def messages_to(self, openid: str) -> list[Call]:
        return [c for c in self.sends() if c.touser == openid]

    def texts_to(self, openid: str) -> list[str]:
        return [c.text or "" for c in self.messages_to(openid)]

    @property
    def token_fetches(self) -> int:
        with self._lock:
            return self._state.token_fetches

    @property
    def menu(self) -> dict[str, Any] | None:
        with self._lock:
            return self._state.menu

    @property
    def conditional_menus(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._state.conditional]

    @property
    def tags(self) -> dict[int, str]:
        with self._lock:
            return dict(self._state.tags)

    def tags_of(self, openid: str) -> list[str]:
        """The names of the tags this follower carries."""
        with self._lock:
            return [self._state.tags[t] for t in self._state.user_tags.get(openid, []) if t in self._state.tags]

    def menu_for(self, openid: str) -> dict[str, Any] | None:
        """The menu WeChat would show this follower: the newest conditional menu whose tag they carry, else the
        default menu."""
        with self._lock:
            mine = set(self._state.user_tags.get(openid, []))
            for m in reversed(self._state.conditional):
                tag = str((m.get("matchrule") or {}).get("tag_id") or "")
                if tag.isdigit() and int(tag) in mine:
                    return {"button": m["button"]}
            return self._state.menu

    # --- behaviour switches ---
    def reset(self) -> None:
        """Forget calls, tokens, faults and the menu: a fresh WeChat."""
        with self._lock:
            self._calls.clear()
            self._state = _State()

    def scene_of(self, url: str) -> str | None:
        """The scene of the QR code whose image encodes `url` (what WeChat knows when someone scans it)."""
        with self._lock:
            return next((scene for scene, u in self._state.qr.values() if u == url), None)

    def fail_next(self, path: str, errcode: int | None = -1, times: int = 1, *, http_status: int = 200,
                  errmsg: str | None = None) -> None:
        """The next `times` calls to `path` answer `errcode` (or, with http_status >= 400, that HTTP error)."""
        with self._lock:
            self._state.faults.setdefault(_norm(path), []).append(_Fault(errcode, times, http_status, errmsg))

    def fail_openid(self, openid: str, errcode: int | None) -> None:
        """Every message to this OpenID answers `errcode` from now on (None: back to normal)."""
        with self._lock:
            if errcode is None:
                self._state.openid_errors.pop(openid, None)
            else:
                self._state.openid_errors[openid] = errcode

    def latency(self, seconds: float) -> None:
        """Added to every answer (the server stays concurrent: requests wait in parallel)."""
        with self._lock:
            self._state.latency = seconds

    def drop_next(self, path: str, times: int = 1) -> None:
        """The next `times` calls to `path` get their connection closed without an answer (and do nothing)."""
        with self._lock:
            p = _norm(path)
            self._state.drops[p] = self._state.drops.get(p, 0) + times

    def expire_tokens(self, errcode: int = 42001) -> None:
        """Every token handed out so far answers `errcode` (42001 expired, or 40001 invalid)."""
        with self._lock:
            for token in self._state.tokens:
                self._state.tokens[token] = False
                self._state.expired_code[token] = errcode

    def add_media(self, media_id: str, content: bytes, content_type: str = "image/jpeg") -> None:
        with self._lock:
            self._state.media[media_id] = (content, content_type)

    # --- the ASGI app ---
    async def asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The app as served: closes the connection for injected drops, else the FastAPI app."""
        if scope["type"] == "http":
            path = _norm(scope.get("path", ""))
            with self._lock:
                drop = self._state.drops.get(path, 0) > 0
                if drop:
                    self._state.drops[path] -= 1
            if drop:
                # uvicorn's `send` is a method of the request cycle, which holds the transport.
                cycle: Any = getattr(send, "__self__", None)
                transport = getattr(cycle, "transport", None)
                if transport is not None:
                    transport.abort()
                    cycle.disconnected = True  # so uvicorn does not log a missing response
                    return
                await send({"type": "http.response.start", "status": 502, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)

    def _record(self, path: str, body: dict[str, Any] | None, token: str | None, query: dict[str, str]) -> Call:
        call = Call(next(self._seq), path, body, token, query, time.monotonic())
        with self._lock:
            self._calls.append(call)
        return call

    def _fault(self, path: str) -> _Fault | None:
        with self._lock:
            queue = self._state.faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def _check_token(self, token: str | None) -> int:
        if not token:
            return 41001
        with self._lock:
            valid = self._state.tokens.get(token)
            if valid is None:
                return 40001
            return 0 if valid else self._state.expired_code.get(token, 42001)

    @staticmethod
    def _answer(call: Call, errcode: int, errmsg: str | None = None, **extra: Any) -> JSONResponse:
        call.errcode = errcode
        call.answered = True
        payload: dict[str, Any] = {"errcode": errcode, "errmsg": errmsg or ERRMSG.get(errcode, "ok" if errcode == 0
                                                                                     else "error")}
        payload.update(extra)
        return JSONResponse(payload)

    async def _send_common(self, request: Request, path: str) -> tuple[Call, dict[str, Any], Response | None]:
        """What both send endpoints check first: the common checks, a body, a known follower."""
        call, early = await self._common(request, path)
        if early is not None:
            return call, {}, early
        body = call.body or {}
        if not body:
            return call, body, self._answer(call, 44002)
        code = self._openid_check(body.get("touser"))
        return call, body, (self._answer(call, code) if code else None)

    async def _common(self, request: Request, path: str) -> tuple[Call, Response | None]:
        """Recording, injected faults, the token check and latency, shared by every API endpoint."""
        body: dict[str, Any] | None = None
        try:
            raw = await request.body()
        except ClientDisconnect:
            raw = b""
        if raw:
            try:
                parsed = json.loads(raw.decode("utf-8"))
                body = parsed if isinstance(parsed, dict) else {"_": parsed}
            except (ValueError, UnicodeDecodeError):
                body = {"_raw": raw.decode("utf-8", "replace")}
        query = dict(request.query_params)
        call = self._record(path, body, query.get("access_token"), query)
        early = self._early_answer(call, path)
        with self._lock:
            delay = self._state.latency
        if delay:
            await asyncio.sleep(delay)  # after recording: a caller that times out may still have been served
        return call, early

    def _early_answer(self, call: Call, path: str) -> Response | None:
        fault = self._fault(path)
        if fault is not None:
            if fault.http_status >= 400:
                call.http_status = fault.http_status
                call.errcode = -1
                call.answered = True
                return Response(b"<html>fake server error</html>", status_code=fault.http_status,
                                media_type="text/html")
            return self._answer(call, fault.errcode if fault.errcode is not None else -1, fault.errmsg)
        if path != TOKEN_PATH:
            code = self._check_token(call.access_token)
            if code:
                return self._answer(call, code)
        return None

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="fake WeChat API", docs_url=None, redoc_url=None, openapi_url=None)
        app.state.fake = self  # the endpoints below find their fake here
        app.include_router(router)
        return app

    @staticmethod
    def _bad_buttons(buttons: Any) -> bool:
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return True
        for b in buttons:
            subs = (b.get("sub_button") or []) if isinstance(b, dict) else None
            if subs is None or len(subs) > 5 or not b.get("name") or (not subs and not (b.get("key") or b.get("url"))):
                return True
        return False

    def _openid_check(self, openid: Any) -> int:
        if not isinstance(openid, str) or not openid:
            return 40003
        with self._lock:
            return self._state.openid_errors.get(openid, 0)


# --- the endpoints: module functions, each answering for the FakeWeChat found on its app's state ---------------

router = APIRouter()
Answer = Callable[[FakeWeChat, Call], Response]


def _api(path: str, *methods: str, send: bool = False) -> Callable[[Answer], Answer]:
    """Registers `answer(fake, call)` for an API endpoint, after what every endpoint does first (recording,
    injected faults, the token check, latency: `FakeWeChat._common`); `send`: also the send endpoints' checks
    (a body, a known follower: `FakeWeChat._send_common`)."""
    def register(answer: Answer) -> Answer:
        async def endpoint(request: Request) -> Response:
            fake: FakeWeChat = request.app.state.fake
            if send:
                call, _, early = await fake._send_common(request, path)
            else:
                call, early = await fake._common(request, path)
            return early if early is not None else answer(fake, call)

        router.add_api_route(path, endpoint, methods=list(methods or ["POST"]), name=answer.__name__)
        return answer

    return register


def _json(call: Call, payload: Any) -> JSONResponse:
    """A success answered with its own payload (no errcode), as WeChat does for these."""
    call.errcode, call.answered = 0, True
    return JSONResponse(payload)


@_api(TOKEN_PATH, "GET")
def token(fake: FakeWeChat, call: Call) -> Response:
    q = call.query
    if q.get("grant_type") != "client_credential":
        return fake._answer(call, 40002, "invalid grant_type")
    if fake.appid is not None and q.get("appid") != fake.appid:
        return fake._answer(call, 40013)
    if fake.secret is not None and q.get("secret") != fake.secret:
        return fake._answer(call, 40125)
    new = "FAKE_" + secrets.token_urlsafe(24)
    with fake._lock:
        fake._state.token_fetches += 1
        fake._state.tokens[new] = True
    return _json(call, {"access_token": new, "expires_in": fake.token_ttl})


@_api(CUSTOM_PATH, send=True)
def custom_send(fake: FakeWeChat, call: Call) -> Response:
    body = call.body or {}
    if body.get("msgtype") == "text" and not (body.get("text") or {}).get("content"):
        return fake._answer(call, 44004)
    return fake._answer(call, 0)


@_api(TEMPLATE_PATH, send=True)
def template_send(fake: FakeWeChat, call: Call) -> Response:
    tid = (call.body or {}).get("template_id")
    if not tid or (fake.templates is not None and tid not in fake.templates):
        return fake._answer(call, 40037)
    return fake._answer(call, 0, msgid=next(fake._msgids))


@_api(MENU_PATH)
def menu_create(fake: FakeWeChat, call: Call) -> Response:
    if fake._bad_buttons((call.body or {}).get("button")):
        return fake._answer(call, 40016, "invalid button")
    with fake._lock:
        fake._state.menu = call.body
    return fake._answer(call, 0)


@_api(MENU_DELETE_PATH, "GET", "POST")
def menu_delete(fake: FakeWeChat, call: Call) -> Response:
    with fake._lock:
        fake._state.menu = None
        fake._state.conditional.clear()
    return fake._answer(call, 0)


@_api(MENU_CONDITIONAL_PATH)
def menu_conditional(fake: FakeWeChat, call: Call) -> Response:
    body = call.body or {}
    if fake._bad_buttons(body.get("button")):
        return fake._answer(call, 40016, "invalid button")
    tag = str((body.get("matchrule") or {}).get("tag_id") or "")
    with fake._lock:
        if fake._state.menu is None:
            code = 65303
        elif not tag.isdigit() or int(tag) not in fake._state.tags:
            code = 45159
        else:
            code = 0
            menuid = str(400000000 + len(fake._state.conditional) + 1)
            fake._state.conditional.append({"menuid": menuid, "button": body["button"],
                                            "matchrule": body["matchrule"]})
    return fake._answer(call, code, **({"menuid": menuid} if code == 0 else {}))


@_api(TAGS_CREATE_PATH)
def tags_create(fake: FakeWeChat, call: Call) -> Response:
    name = str(((call.body or {}).get("tag") or {}).get("name") or "")
    if not name or len(name) > 30:
        return fake._answer(call, 45158, "tag name too long")
    with fake._lock:
        if name in fake._state.tags.values():
            return fake._answer(call, 45157)
        tid = 100 + len(fake._state.tags)  # ids 0-2 are WeChat's own
        fake._state.tags[tid] = name
    return _json(call, {"tag": {"id": tid, "name": name}})


@_api(TAGS_GET_PATH, "GET")
def tags_get(fake: FakeWeChat, call: Call) -> Response:
    with fake._lock:
        tags = [{"id": tid, "name": name, "count": sum(tid in ids for ids in fake._state.user_tags.values())}
                for tid, name in fake._state.tags.items()]
    return _json(call, {"tags": tags})


def _tag_members(fake: FakeWeChat, call: Call, add: bool) -> Response:
    body = call.body or {}
    openids = body.get("openid_list")
    if not isinstance(openids, list) or not openids or len(openids) > 50:
        return fake._answer(call, 40032, "invalid openid list size")
    tid = body.get("tagid")
    with fake._lock:
        if not isinstance(tid, int) or tid not in fake._state.tags:
            return fake._answer(call, 45159)
        for openid in openids:
            ids = fake._state.user_tags.setdefault(str(openid), [])
            if add and tid not in ids:
                if len(ids) >= 20:
                    return fake._answer(call, 45059, "fans have too many tags")
                ids.append(tid)
            elif not add and tid in ids:
                ids.remove(tid)
    return fake._answer(call, 0)


@_api(TAGGING_PATH)
def batch_tagging(fake: FakeWeChat, call: Call) -> Response:
    return _tag_members(fake, call, add=True)


@_api(UNTAGGING_PATH)
def batch_untagging(fake: FakeWeChat, call: Call) -> Response:
    return _tag_members(fake, call, add=False)


@_api(TAG_IDS_PATH)
def tag_ids(fake: FakeWeChat, call: Call) -> Response:
    openid = (call.body or {}).get("openid")
    if not isinstance(openid, str) or not openid:
        return fake._answer(call, 40003)
    with fake._lock:
        ids = list(fake._state.user_tags.get(openid, []))
    return fake._answer(call, 0, tagid_list=ids)


@_api(MEDIA_PATH, "GET")
def media_get(fake: FakeWeChat, call: Call) -> Response:
    media_id = call.query.get("media_id") or ""
    if not media_id:
        return fake._answer(call, 40007)
    with fake._lock:
        content, ctype = fake._state.media.get(media_id, (TINY_JPEG, "image/jpeg"))
    call.errcode, call.answered = 0, True
    return Response(content, media_type=ctype, headers={"Content-Disposition": f'attachment; filename="{media_id}.jpg"'})


@_api(QRCODE_PATH)
def qrcode_create(fake: FakeWeChat, call: Call) -> Response:
    body = call.body or {}
    scene = ((body.get("action_info") or {}).get("scene") or {})
    value = scene.get("scene_str") if "STR" in str(body.get("action_name")) else scene.get("scene_id")
    if body.get("action_name") not in QR_ACTIONS or value in (None, "") or len(str(value)) > 64:
        return fake._answer(call, 40053 if body else 44002, "invalid action info")
    ticket = "gQ" + secrets.token_urlsafe(30)
    url = f"http://weixin.qq.com/q/{secrets.token_urlsafe(16)}"
    with fake._lock:
        fake._state.qr[ticket] = (str(value), url)
    return fake._answer(call, 0, ticket=ticket, url=url,
                        **({"expire_seconds": 2592000} if "LIMIT" not in body["action_name"] else {}))


@router.get(SHOWQRCODE_PATH)
async def showqrcode(request: Request) -> Response:
    # Like WeChat's: no access_token, the ticket alone; a real QR image of the code's URL.
    fake: FakeWeChat = request.app.state.fake
    call = fake._record(SHOWQRCODE_PATH, None, None, dict(request.query_params))
    with fake._lock:
        found = fake._state.qr.get(call.query.get("ticket") or "")
    call.answered = True
    if found is None:
        call.http_status = 404
        return Response(b"ticket not found", status_code=404, media_type="text/plain")
    call.errcode = 0
    buf = io.BytesIO()
    segno.make_qr(found[1], error="m").save(buf, kind="png", scale=8, border=4)
    return Response(buf.getvalue(), media_type="image/png")


# Inspection for the demo and for a fake running in another process.
@router.get("/fake/received")
async def fake_received(request: Request) -> JSONResponse:
    return JSONResponse([c.as_dict() for c in request.app.state.fake.received])


@router.get("/fake/menu")
async def fake_menu(request: Request, openid: str = "") -> JSONResponse:
    fake: FakeWeChat = request.app.state.fake
    return JSONResponse({"menu": fake.menu_for(openid), "tags": fake.tags_of(openid)})


@router.post("/fake/reset")
async def fake_reset(request: Request) -> JSONResponse:
    request.app.state.fake.reset()
    return JSONResponse({"ok": True})


def main() -> None:  # pragma: no cover - manual use
    parser = argparse.ArgumentParser(description="fake WeChat API server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    fake = FakeWeChat(host=args.host, port=args.port).start()
    fake.latency(args.latency)
    print(f"fake WeChat API at {fake.base_url} (set WECHAT_API_BASE_URL={fake.base_url})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
