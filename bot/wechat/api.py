"""The WeChat API client: wechatpy's `WeChatClient`, pointed at `WECHAT_API_BASE_URL` for every call.

wechatpy 1.8 hard-codes `https://api.weixin.qq.com/cgi-bin/token` (and the base of every other call) and keeps
the access token per client object. Here the base URL applies to all calls, the token fetch included, and
the token lives in the KV store (Redis: shared by every worker process), refreshed by one process at a time
under a KV lock. An invalid/expired token answer (40001/40014/42001) triggers one refresh and one retry.
Every failure becomes a `WeChatAPIError` that says whether trying again later can help (`transient`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from bot.config import REAL_WECHAT_API, Settings
from storage.kv import KV, kv_lock

log = logging.getLogger("houqin.wechat")

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential / invalid token / expired token
# Worth trying again later: WeChat busy, API quota reached, and a token still refused after one refresh.
TRANSIENT_ERRCODES = frozenset({-1, 45009}) | TOKEN_ERRCODES
ERRCODE_ZH: dict[int, str] = {
    -1: "微信系统繁忙",
    40001: "access_token 无效",
    40003: "OpenID 无效",
    40013: "AppID 无效",
    40014: "access_token 无效",
    40037: "模板 ID 无效",
    40125: "AppSecret 无效",
    40164: "调用接口的 IP 不在白名单中",
    42001: "access_token 已过期",
    43004: "用户未关注公众号",
    45009: "接口调用超过频率/次数限制",
    45015: "超出 48 小时客服消息时限（用户近 48 小时未发消息）",
    45047: "客服消息超过下发条数上限",
}
SHOWQRCODE_HOST = "https://mp.weixin.qq.com"
TOKEN_EARLY_REFRESH = 300  # s: a token is dropped from the cache this long before WeChat says it expires
TOKEN_FAILURE_PAUSE = 5.0  # s: after a failed token fetch, fail fast instead of asking again at once


class WeChatAPIError(Exception):
    """A failed WeChat API call. `errcode` is WeChat's code (None for network/HTTP failures)."""

    transient = False

    def __init__(self, errcode: int | None, errmsg: str, *, http_status: int | None = None) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.http_status = http_status
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line for the outbox's last_error and the console: code, Chinese meaning, WeChat's words."""
        parts = []
        if self.errcode is not None:
            parts.append(str(self.errcode))
            if self.errcode in ERRCODE_ZH:
                parts.append(ERRCODE_ZH[self.errcode])
        elif self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.errmsg:
            parts.append(f"({self.errmsg})" if parts else self.errmsg)
        return " ".join(parts) or "未知错误"


class TransientError(WeChatAPIError):
    """Network trouble, timeouts, HTTP 5xx, -1 busy, 45009 rate limit, a token refused after the retry."""

    transient = True


class PermanentError(WeChatAPIError):
    """Trying again will not help: 43004 unsubscribed, 45015 out of window, 40003 bad OpenID, unknown codes."""


def classify(errcode: int | None, errmsg: str = "", *, http_status: int | None = None) -> WeChatAPIError:
    if errcode is None:
        if http_status is None or http_status >= 500 or http_status == 429:
            return TransientError(None, errmsg, http_status=http_status)
        return PermanentError(None, errmsg, http_status=http_status)
    cls = TransientError if errcode in TRANSIENT_ERRCODES else PermanentError
    return cls(errcode, errmsg, http_status=http_status)


class KVSessionStorage(SessionStorage):
    """wechatpy's session storage over our KV store, so the token is shared by every worker process.

    Anything stored with a TTL (the access token: 7200 s) is kept TOKEN_EARLY_REFRESH seconds less, so no
    process keeps using a token in its last minutes.
    """

    def __init__(self, kv: KV, prefix: str = "wechat:") -> None:
        self.kv = kv
        self.prefix = prefix

    def get(self, key: str, default: Any = None) -> Any:
        value = self.kv.get(self.prefix + key)
        return default if value is None else value

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        if ttl is not None and ttl > 2 * TOKEN_EARLY_REFRESH:
            ttl -= TOKEN_EARLY_REFRESH
        self.kv.set(self.prefix + key, str(value), ttl)

    def delete(self, key: str) -> None:
        self.kv.delete(self.prefix + key)


class _ThrottledSession(requests.Session):
    """Waits for the API's throttle (the sender's rate limit) right before a call goes on the wire, so the
    limit holds for what WeChat sees rather than for when a thread happened to start its work."""

    def __init__(self, api: WeChatAPI) -> None:
        super().__init__()
        self._api = api

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        throttle = self._api.throttle
        if throttle is not None:
            throttle()
        return super().request(method, url, *args, **kwargs)


class _Client(WeChatClient):
    """One thread's wechatpy client (requests.Session is not shared between threads)."""

    def __init__(self, api: WeChatAPI) -> None:
        super().__init__(api.appid, api.secret, session=KVSessionStorage(api.kv), timeout=api.timeout,
                         auto_retry=False)  # we retry ourselves: once, and with the refresh under a lock
        self._api = api
        self._http = _ThrottledSession(api)
        self.API_BASE_URL = api.base_url + "/cgi-bin/"  # wechatpy reads it from the instance on every call
        self.used_token: str | None = None

    @property
    def access_token(self) -> str:
        """The shared token (fetched if there is none); remembered so a refusal refreshes only that one."""
        token = self.session.get(self.access_token_key)
        if not token:
            self.fetch_access_token()
            token = self.session.get(self.access_token_key)
            if not token:
                raise TransientError(None, "no access_token after refresh")
        self.used_token = token
        return token  # type: ignore[no-any-return]

    def fetch_access_token(self, stale: str | None = None) -> None:
        """Refresh the shared token unless another process already replaced `stale` (or got one)."""
        api = self._api
        with kv_lock(api.kv, f"wechat-token:{self.appid}", ttl=30, wait=15) as held:
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return  # someone else refreshed while we waited for the lock
            if not held:
                raise TransientError(None, "could not take the access_token refresh lock")
            api.check_token_pause()
            try:
                self._fetch_token_from_wechat()
            except WeChatAPIError:
                api.note_token_failure()
                raise
            except requests.RequestException:
                api.note_token_failure()
                raise

    def _fetch_token_from_wechat(self) -> None:
        # Replaces wechatpy's _fetch_access_token: its URL is hard-coded and it has no timeout.
        res = requests.Session.request(  # not throttled: the token fetch is not a message
            self._http, "GET",
            self._api.base_url + "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            timeout=self.timeout,
        )
        if res.status_code >= 400:
            raise classify(None, f"token fetch: HTTP {res.status_code}", http_status=res.status_code)
        try:
            result = res.json()
        except ValueError as exc:
            raise TransientError(None, f"token fetch: not JSON ({exc})") from exc
        if result.get("errcode"):
            # Bad AppID/secret/IP whitelist are fixed by the admin; the messages should wait, not be lost.
            raise TransientError(int(result["errcode"]), "token fetch: " + str(result.get("errmsg", "")))
        token = result.get("access_token")
        if not token:
            raise TransientError(None, "token fetch: no access_token in the answer")
        expires_in = int(result.get("expires_in") or 7200)
        self.session.set(self.access_token_key, token, expires_in)
        self.expires_at = int(time.time()) + expires_in
        log.info("fetched a new WeChat access_token (valid %s s)", expires_in)


class WeChatAPI:
    """The calls the bot makes. Thread-safe: each thread gets its own wechatpy client."""

    def __init__(self, settings: Settings, kv: KV, *, timeout: float = 10.0,
                 throttle: Callable[[], object] | None = None) -> None:
        self.throttle = throttle  # called right before each API request (not the token fetch)
        self.appid = settings.wechat_app_id
        self.secret = settings.wechat_app_secret
        self.base_url = settings.wechat_api_base_url.rstrip("/")
        self.kv = kv
        self.timeout = timeout
        self._local = threading.local()
        self._clients: list[_Client] = []
        self._clients_lock = threading.Lock()
        self._token_failed_at = 0.0

    # --- the calls ---
    def send_text(self, openid: str, text: str) -> None:
        """A customer-service text message (only within 48 h of the person's last message)."""
        self._json_call(lambda c: c.message.send_text(openid, text))

    def send_template(self, openid: str, template_id: str, data: dict[str, Any], url: str | None = None) -> str:
        """A template message; returns WeChat's msgid (TEMPLATESENDJOBFINISH reports on it later)."""
        result = self._json_call(lambda c: c.message.send_template(openid, template_id, data, url=url))
        return str(result.get("msgid", ""))

    def create_menu(self, menu: dict[str, Any]) -> None:
        self._json_call(lambda c: c.menu.create(menu))

    # --- conditional menus by user tag (one tag per role: bot/wechat/menu.py) ---
    def delete_menu(self) -> None:
        """Remove the default menu and every conditional one (`menu push` installs them afresh)."""
        self._json_call(lambda c: c.get("menu/delete"))

    def add_conditional_menu(self, menu: dict[str, Any]) -> str:
        result = self._json_call(lambda c: c.post("menu/addconditional", data=menu))
        return str(result.get("menuid", ""))

    def tags(self) -> dict[str, int]:
        """The account's user tags, name → id."""
        result = self._json_call(lambda c: c.get("tags/get"))
        return {str(t["name"]): int(t["id"]) for t in result.get("tags") or [] if "name" in t and "id" in t}

    def create_tag(self, name: str) -> int:
        result = self._json_call(lambda c: c.post("tags/create", data={"tag": {"name": name}}))
        return int((result.get("tag") or {})["id"])

    def tag_ids_of(self, openid: str) -> list[int]:
        result = self._json_call(lambda c: c.post("tags/getidlist", data={"openid": openid}))
        return [int(t) for t in result.get("tagid_list") or []]

    def tag_users(self, tag_id: int, openids: list[str]) -> None:
        self._json_call(lambda c: c.post("tags/members/batchtagging",
                                         data={"tagid": tag_id, "openid_list": openids}))

    def untag_users(self, tag_id: int, openids: list[str]) -> None:
        self._json_call(lambda c: c.post("tags/members/batchuntagging",
                                         data={"tagid": tag_id, "openid_list": openids}))

    def create_qr_scene(self, scene: str) -> tuple[str, str]:
        """A permanent QR code (QR_LIMIT_STR_SCENE) whose scans carry `scene`; returns (ticket, url)."""
        result = self._json_call(lambda c: c.qrcode.create(
            {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}}))
        ticket = str(result.get("ticket") or "")
        if not ticket:
            raise TransientError(None, "qrcode/create: no ticket in the answer")
        return ticket, str(result.get("url") or "")

    def qr_image(self, ticket: str) -> bytes:
        """The QR image of a ticket. WeChat serves it from mp.weixin.qq.com (wechatpy hard-codes that host);
        any other WECHAT_API_BASE_URL (the fake) serves it under its own /cgi-bin/showqrcode."""
        base = SHOWQRCODE_HOST if self.base_url == REAL_WECHAT_API else self.base_url
        try:
            res = requests.get(base + "/cgi-bin/showqrcode", params={"ticket": ticket}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise TransientError(None, f"network: {exc}") from exc
        if res.status_code >= 400 or not res.headers.get("content-type", "").startswith("image/"):
            raise classify(None, f"showqrcode: HTTP {res.status_code}", http_status=res.status_code)
        return res.content

    def get_media(self, media_id: str) -> bytes:
        """A temporary media file (e.g. a photo sent to the account) as bytes."""
        result = self._call(lambda c: c.media.download(media_id))
        if isinstance(result, requests.Response):
            return result.content
        return json.dumps(result, ensure_ascii=False).encode()  # video media answer with a JSON link

    def access_token(self) -> str:
        try:
            return self._client().access_token
        except requests.RequestException as exc:
            raise TransientError(None, f"network: {exc}") from exc

    def close(self) -> None:
        with self._clients_lock:
            for client in self._clients:
                client._http.close()
            self._clients.clear()
        self._local = threading.local()

    # --- plumbing ---
    def _client(self) -> _Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = _Client(self)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _json_call(self, fn: Any) -> dict[str, Any]:
        result = self._call(fn)
        if not isinstance(result, dict):  # wechatpy hands back the raw response when it is not JSON
            status = getattr(result, "status_code", None)
            raise TransientError(None, "unexpected answer (not JSON)", http_status=status)
        return result

    def _call(self, fn: Any) -> Any:
        client = self._client()
        refreshed = False
        while True:
            try:
                return fn(client)
            except WeChatAPIError:
                raise
            except WeChatClientException as exc:
                code = int(exc.errcode) if exc.errcode is not None else None
                if code in TOKEN_ERRCODES and not refreshed:
                    log.info("WeChat refused the access_token (%s): refreshing once and retrying", code)
                    refreshed = True
                    try:
                        client.fetch_access_token(stale=client.used_token)
                    except requests.RequestException as net:
                        raise TransientError(None, f"network: {net}") from net
                    continue
                status = exc.response.status_code if getattr(exc, "response", None) is not None else None
                raise classify(code, str(exc.errmsg or ""), http_status=status) from exc
            except requests.Timeout as exc:
                raise TransientError(None, f"timeout: {exc}") from exc
            except requests.RequestException as exc:
                raise TransientError(None, f"network: {exc}") from exc

    def check_token_pause(self) -> None:
        if time.monotonic() - self._token_failed_at < TOKEN_FAILURE_PAUSE:
            raise TransientError(None, "access_token fetch failed moments ago; waiting before asking again")

    def note_token_failure(self) -> None:
        self._token_failed_at = time.monotonic()
