"""WeChat's official known-answer vectors (../shared/wechat/VECTORS.md) against our crypto and webhook."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from wechatpy.crypto import PrpCrypto

from bot.app import create_app
from bot.config import Settings
from bot.wechat.crypto import Cipher, Rejected, msg_signature, url_signature
from bot.runtime import Runtime
from tests.support import aes_decrypt, aes_encrypt

B_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
B1 = dict(token="spamtest", appid="wx2c2769f8efd9abc2", timestamp="1409735669", nonce="1320562132",
          msg_signature="5d197aaffba7e9b25a30732f161a50dee96bd5fa")
B1_BODY = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]>"
    "</FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]>"
    "</Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8"
    "KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon"
    "8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpA"
    "e+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM6"
    "69WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>"
)
B1_PLAIN = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]>"
    "</FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]>"
    "</Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>"
)
B2 = dict(token="pamtest", appid="wxb11529c136998cb6", timestamp="1409304348", nonce="xxxxxx", random="aaaabbbbccccdddd")
B2_REPLY = "我是中文abcd123"
B2_ENC = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="

A_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
A3_IN = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
A3_OUT = """<xml>
<Encrypt><![CDATA[9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3]]></Encrypt>
<MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>
<TimeStamp>1411525903</TimeStamp>
<Nonce><![CDATA[461056294]]></Nonce>
</xml>"""


def test_b1_official_sample_decrypts_to_known_plaintext():
    cipher = Cipher(B1["token"], B_KEY, B1["appid"])
    plain = cipher.decrypt(B1_BODY.encode(), B1["msg_signature"], B1["timestamp"], B1["nonce"])
    assert plain == B1_PLAIN


def test_b1_with_another_appid_or_signature_is_refused():
    with pytest.raises(Rejected) as e:
        Cipher(B1["token"], B_KEY, "wxOTHER").decrypt(B1_BODY.encode(), B1["msg_signature"], B1["timestamp"], B1["nonce"])
    assert e.value.status == 403
    with pytest.raises(Rejected) as e:
        Cipher(B1["token"], B_KEY, B1["appid"]).decrypt(B1_BODY.encode(), "0" * 40, B1["timestamp"], B1["nonce"])
    assert e.value.status == 403


def test_b1_through_the_webhook(db, clock, kv):
    settings = Settings(wechat_token=B1["token"], wechat_aes_key=B_KEY, wechat_app_id=B1["appid"],
                        database_url=str(db.url), timestamp_tolerance=0, _env_file=None)  # type: ignore[call-arg]
    rt = Runtime(settings, clock=clock, kv=kv, db=db)
    with TestClient(create_app(runtime=rt, background=False)) as c:
        params = {"timestamp": B1["timestamp"], "nonce": B1["nonce"], "encrypt_type": "aes",
                  "msg_signature": B1["msg_signature"]}
        r = c.post("/wechat", params=params, content=B1_BODY)
        assert r.status_code == 200
        inner, appid = aes_decrypt(r.text.split("<![CDATA[")[1].split("]]>")[0], B_KEY)
        assert appid == B1["appid"] and "oyORnuP8q7ou2gfYjqLzSIWZf0rs" in inner and "绑定" in inner
        params["msg_signature"] = "1" * 40
        assert c.post("/wechat", params=params, content=B1_BODY).status_code == 403


def test_b2_encrypt_known_answer_independent_and_wechatpy(monkeypatch):
    assert aes_encrypt(B2_REPLY, B_KEY, B2["appid"], random16=B2["random"].encode()) == B2_ENC
    monkeypatch.setattr(PrpCrypto, "get_random_string", lambda self: B2["random"])
    import base64
    assert PrpCrypto(base64.b64decode(B_KEY + "=")).encrypt(B2_REPLY, B2["appid"]).decode() == B2_ENC
    assert msg_signature(B2["token"], B2["timestamp"], B2["nonce"], B2_ENC) == "82c962d39941aa48552f90ef55aa323dc620cc10"
    assert url_signature(B2["token"], B2["timestamp"], B2["nonce"]) == "76480565cbe296026c53aaacd1ad523a1ddba24f"


def test_a3_encrypted_reply_envelope_byte_for_byte(monkeypatch):
    monkeypatch.setattr(PrpCrypto, "get_random_string", lambda self: "1234567890123456")
    out = Cipher("123456", A_KEY, "wx49f0ab532d5d035a").encrypt(A3_IN, "461056294", "1411525903")
    assert out == A3_OUT


@pytest.mark.parametrize("signature", [None, "", "0" * 40, "5D197AAFFBA7E9B25A30732F161A50DEE96BD5FA",
                                       "other-token", "other-timestamp"])
def test_b1_msg_signature_is_checked_once_and_strictly(signature):
    """The Cipher's own check is the only one (wechatpy does the AES only): a valid ciphertext with any other
    msg_signature — missing, forged, upper-cased, made with another token or for another timestamp — is 403."""
    ts = B1["timestamp"]
    encrypt = B1_BODY.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    if signature == "other-token":
        signature = msg_signature("another-token", ts, B1["nonce"], encrypt)
    elif signature == "other-timestamp":
        signature = msg_signature(B1["token"], str(int(ts) + 1), B1["nonce"], encrypt)
    with pytest.raises(Rejected) as e:
        Cipher(B1["token"], B_KEY, B1["appid"]).decrypt(B1_BODY.encode(), signature, ts, B1["nonce"])
    assert e.value.status == 403 and e.value.reason == "bad msg_signature"
