"""WeChat message signatures and AES (safe/compatible mode), on top of wechatpy's implementation."""

from __future__ import annotations

import hmac
import time
from xml.parsers import expat

from wechatpy.crypto import PrpCrypto, WeChatCrypto, _get_signature
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.utils import WeChatSigner, to_text


class Rejected(Exception):
    """The request is refused; `status` is the HTTP answer (403 forged/stale, 400 malformed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def url_signature(token: str, timestamp: str, nonce: str) -> str:
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce)
    return signer.signature


def msg_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return _get_signature(token, timestamp, nonce, encrypt)


def check_url_signature(token: str, signature: str | None, timestamp: str | None, nonce: str | None) -> None:
    if not signature or not timestamp or not nonce:
        raise Rejected(403, "missing signature")
    if not hmac.compare_digest(url_signature(token, timestamp, nonce), signature):
        raise Rejected(403, "bad signature")


def check_timestamp(timestamp: str | None, tolerance: int, now: float | None = None) -> None:
    if tolerance <= 0:
        return
    try:
        ts = int(timestamp or "")
    except ValueError:
        raise Rejected(403, "bad timestamp") from None
    if abs((now if now is not None else time.time()) - ts) > tolerance:
        raise Rejected(403, "stale timestamp")


class _Forbidden(Exception):
    pass


def _forbid(*_args: object) -> None:
    raise _Forbidden


class _Flat:
    """The expat handlers of `parse_xml_safely`: the root's tag, and each child's text up to its first element."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.root = ""
        self.depth = 0
        self.child = ""
        self.nested = False
        self.text: list[str] = []

    def start(self, tag: str, _attrs: object) -> None:
        self.depth += 1
        if self.depth == 1:
            self.root = tag
        elif self.depth == 2:
            self.child, self.nested = tag, False
            self.text.clear()
        else:
            self.nested = True  # a child's .text is what comes before its first sub-element

    def end(self, _tag: str) -> None:
        if self.depth == 2:
            self.fields[self.child] = "".join(self.text)
        self.depth -= 1

    def chars(self, data: str) -> None:
        if self.depth == 2 and not self.nested:
            self.text.append(data)


def parse_xml_safely(body: bytes | str) -> dict[str, str]:
    """Parse WeChat's flat XML (`<xml><Name>value</Name>…</xml>`): the root's children and their text, as
    ElementTree's `{child.tag: child.text}` would give. A document type declaration or any entity declaration
    is refused outright (XXE, billion laughs), as defusedxml does (forbid_dtd, forbid_entities,
    forbid_external) — with one expat parser and three handlers, which costs a third of building defusedxml's
    parser for every message (bench/cpu.py)."""
    flat = _Flat()
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _forbid
    parser.EntityDeclHandler = _forbid
    parser.UnparsedEntityDeclHandler = _forbid
    parser.ExternalEntityRefHandler = _forbid
    parser.StartElementHandler = flat.start
    parser.EndElementHandler = flat.end
    parser.CharacterDataHandler = flat.chars
    try:
        parser.Parse(body, True)
    except _Forbidden:
        raise Rejected(400, "malformed xml: DTD or entity forbidden") from None
    except (expat.ExpatError, ValueError, TypeError) as exc:
        raise Rejected(400, f"malformed xml: {type(exc).__name__}") from None
    if flat.root != "xml":
        raise Rejected(400, "not a WeChat message")
    return flat.fields


class Cipher:
    """Decrypts inbound and encrypts outbound messages for one 公众号.

    The msg_signature is checked once, here (constant time, before any decryption); wechatpy is used for the
    AES layer only (PrpCrypto), since its decrypt_message would check the signature a second time and parse
    the XML again with a parser that is not hardened.
    """

    def __init__(self, token: str, aes_key: str, app_id: str) -> None:
        self.crypto = WeChatCrypto(token, aes_key, app_id)
        self.token = token
        self.app_id = app_id
        # One AES layer for every message (it makes a fresh encryptor/decryptor per call, so threads may share
        # it): building it per message was a quarter of safe mode's extra CPU (bench/cpu.py).
        self.prp = PrpCrypto(self.crypto.key)

    def decrypt(self, body: bytes, signature: str | None, timestamp: str, nonce: str) -> str:
        fields = parse_xml_safely(body)
        encrypt = fields.get("Encrypt")
        if not encrypt:
            raise Rejected(400, "no Encrypt element")
        if not signature or not hmac.compare_digest(msg_signature(self.token, timestamp, nonce, encrypt), signature):
            raise Rejected(403, "bad msg_signature")
        try:
            return self.prp.decrypt(encrypt, self.app_id)  # type: ignore[no-any-return]
        except InvalidAppIdException:
            raise Rejected(403, "wrong AppID in cipher") from None
        except Exception as exc:
            raise Rejected(400, f"cannot decrypt: {type(exc).__name__}") from None

    def encrypt(self, xml: str, nonce: str, timestamp: str) -> str:
        """The reply in WeChat's encrypted envelope (as wechatpy's `encrypt_message` writes it)."""
        encrypt = to_text(self.prp.encrypt(xml, self.app_id))
        signature = msg_signature(self.token, timestamp, nonce, encrypt)
        return (f"<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
                f"<TimeStamp>{timestamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>")
