"""Reply XML built safely, and the checks on what an inbound message's fields may hold.

wechatpy's TextReply puts the text into a CDATA section as it is: a user's `]]>` (a booking reason the guard
later lists) would close it and inject elements. Here `]]>` is split across two CDATA sections and the
characters XML 1.0 cannot carry are dropped, so every reply parses and says exactly the text.
"""

from __future__ import annotations

import re

from bot.wechat.crypto import Rejected

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

# Longest value WeChat sends for each field (with room to spare); longer is not WeChat: 400. A message's own
# text (Content, Recognition) is bounded by the body limit, and each handler checks its fields' lengths.
FIELD_LIMITS = {
    "ToUserName": 64, "FromUserName": 64, "MsgType": 32, "Event": 64, "MsgId": 64, "MsgID": 64,
    "CreateTime": 20, "MediaId": 128, "ThumbMediaId": 128, "Format": 16, "PicUrl": 1000, "Url": 1000,
    "EventKey": 256, "Ticket": 256, "Label": 500, "Title": 500, "Status": 64,
    "Location_X": 32, "Location_Y": 32, "Scale": 16, "Latitude": 32, "Longitude": 32, "Precision": 32,
}


def cdata(text: str) -> str:
    return "<![CDATA[" + _NOT_XML.sub("", text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(to_user: str, from_user: str, content: str, create_time: int) -> str:
    """A passive text reply (WeChat's `<xml>…<MsgType>text</MsgType>…</xml>`)."""
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName><FromUserName>{cdata(from_user)}</FromUserName>"
            f"<CreateTime>{int(create_time)}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{cdata(content)}</Content></xml>")


def check_fields(fields: dict[str, str]) -> dict[str, str]:
    """Refuse (400) a field longer than WeChat ever sends; drop a PicUrl/Url that is not http(s), so a
    `javascript:` address never reaches a ledger as a link. Returns the fields to use."""
    for name, limit in FIELD_LIMITS.items():
        value = fields.get(name)
        if value is not None and len(value) > limit:
            raise Rejected(400, f"{name} too long")
    out = dict(fields)
    for name in ("PicUrl", "Url"):
        value = out.get(name)
        if value is not None and not re.match(r"(?i)https?://[^\s]+$", value.strip()):
            out.pop(name)
    return out
