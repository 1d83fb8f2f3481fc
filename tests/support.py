"""Test helpers: a WeChat server stand-in that signs (and encrypts) messages for our webhook, and a school.

Everything goes through the real HTTP app: signed XML in, XML out.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import ElementTree as SafeET
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.config import Settings

_ids = itertools.count(int(time.time() * 1000) % 10**9 * 1000)


def sha1_sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def xml_of(fields: dict[str, Any]) -> str:
    body = []
    for k, v in fields.items():
        if isinstance(v, int):
            body.append(f"<{k}>{v}</{k}>")
        else:
            body.append(f"<{k}><![CDATA[{v}]]></{k}>")
    return "<xml>" + "".join(body) + "</xml>"


def aes_encrypt(plaintext: str, aes_key: str, app_id: str, random16: bytes | None = None) -> str:
    """WeChat's scheme, written independently of wechatpy (AES-256-CBC, IV = key[:16], PKCS#7 to 32)."""
    key = base64.b64decode(aes_key + "=")
    raw = (random16 or os.urandom(16)) + struct.pack(">I", len(plaintext.encode())) + plaintext.encode() + app_id.encode()
    pad = 32 - len(raw) % 32
    raw += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(raw) + enc.finalize()).decode()


def aes_decrypt(encrypted: str, aes_key: str) -> tuple[str, str]:
    key = base64.b64decode(aes_key + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    raw = dec.update(base64.b64decode(encrypted)) + dec.finalize()
    raw = raw[: -raw[-1]]
    n = struct.unpack(">I", raw[16:20])[0]
    return raw[20 : 20 + n].decode(), raw[20 + n :].decode()


class Wx:
    """Plays WeChat's server: builds messages, signs them, posts them, reads the reply."""

    def __init__(self, client: TestClient, settings: Settings, mode: str = "plain") -> None:
        self.client = client
        self.settings = settings
        self.mode = mode  # plain | aes | compat
        self.to = "gh_school"

    def post_xml(self, xml: str, mode: str | None = None, timestamp: str | None = None,
                 tamper: str | None = None) -> Any:
        mode = mode or self.mode
        s = self.settings
        ts = timestamp or str(int(time.time()))
        nonce = str(next(_ids))
        params = {"timestamp": ts, "nonce": nonce, "signature": sha1_sign(s.wechat_token, ts, nonce)}
        if tamper == "signature":
            params["signature"] = "0" * 40
        body = xml
        if mode in ("aes", "compat"):
            assert s.wechat_aes_key
            enc = aes_encrypt(xml, s.wechat_aes_key, s.wechat_app_id if tamper != "appid" else "wxOTHER000000000")
            params["encrypt_type"] = "aes"
            params["msg_signature"] = sha1_sign(s.wechat_token, ts, nonce, enc)
            if tamper == "msg_signature":
                params["msg_signature"] = "f" * 40
            inner = f"<ToUserName><![CDATA[{self.to}]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt>"
            if mode == "compat":
                body = xml.replace("</xml>", f"<Encrypt><![CDATA[{enc}]]></Encrypt></xml>")
            else:
                body = f"<xml>{inner}</xml>"
        return self.client.post("/wechat", params=params, content=body.encode())

    def reply_text(self, response: Any) -> str:
        assert response.status_code == 200, (response.status_code, response.text)
        text = response.text
        if text == "success" or not text:
            return ""
        root = SafeET.fromstring(text)
        fields = {c.tag: c.text or "" for c in root}
        if "Encrypt" in fields:
            assert self.settings.wechat_aes_key
            ts, nonce = fields["TimeStamp"], fields["Nonce"]
            assert fields["MsgSignature"] == sha1_sign(self.settings.wechat_token, ts, nonce, fields["Encrypt"])
            inner, appid = aes_decrypt(fields["Encrypt"], self.settings.wechat_aes_key)
            assert appid == self.settings.wechat_app_id
            fields = {c.tag: c.text or "" for c in SafeET.fromstring(inner)}
        return fields.get("Content", "")

    def message(self, openid: str, msg_type: str = "text", msgid: int | None = None, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "ToUserName": self.to, "FromUserName": openid, "CreateTime": int(time.time()), "MsgType": msg_type,
        }
        fields.update(extra)
        if msg_type != "event":
            fields["MsgId"] = msgid if msgid is not None else next(_ids)
        return fields

    def text(self, openid: str, content: str, **kw: Any) -> str:
        return self.reply_text(self.post_xml(xml_of(self.message(openid, "text", Content=content)), **kw))

    def voice(self, openid: str, recognition: str) -> str:
        return self.reply_text(self.post_xml(xml_of(self.message(
            openid, "voice", MediaId="voice1", Format="amr", Recognition=recognition))))

    def image(self, openid: str, media_id: str = "media1", pic_url: str = "http://mmbiz.example/pic.jpg") -> str:
        return self.reply_text(self.post_xml(xml_of(self.message(openid, "image", PicUrl=pic_url, MediaId=media_id))))

    def event(self, openid: str, event: str, key: str | None = None, create_time: int | None = None,
              **extra: Any) -> str:
        fields = self.message(openid, "event", Event=event, **extra)
        if create_time is not None:
            fields["CreateTime"] = create_time
        else:
            fields["CreateTime"] = int(time.time()) * 1000 % 10**9 + next(_ids) % 1000  # unique per event
        if key is not None:
            fields["EventKey"] = key
        return self.reply_text(self.post_xml(xml_of(fields)))


def escape_xml(s: str) -> str:
    return escape(s)


@contextmanager
def scratch_schema(pg_url: str, name: str) -> Iterator[str]:
    """A URL for a fresh PostgreSQL schema `name` in the test database (for a server process of a test's own),
    dropped afterwards. A schema, not a database: creating and dropping databases forces checkpoints on a
    server that other test runs share (measured: 20-40 s per drop under load)."""
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        url = make_url(pg_url).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()
