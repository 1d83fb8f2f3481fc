"""Issue 13, the findings in chat, transport, configuration and the CLI: secrets scrubbed (4), safe mode by default
and no signature in the access log (5), revoking access from the CLI (6), production refusing placeholders (7), the
simulator's guard (8), masking whatever the separators (9), reply XML (10), dialogs re-checking roles (11), field
lengths and SQL parameters (14), zero-width characters and an atomic bind limit (15)."""

from __future__ import annotations

import io
import logging
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from defusedxml import ElementTree as SafeET
from openpyxl import load_workbook
from pydantic import ValidationError
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import create_app
from bot.cli import _load_plugins, app as cli_app
from bot.config import Settings, simulator_enabled
from bot.wechat.sender import OutboxSender
from storage import outbox as ob
from storage import people, repair
from storage.redact import mask_numbers
from tests.school import openid_for
from tests.support import Wx, xml_of
from tests.test_console import cheap_kdf, signed_in

__all__ = ["cheap_kdf"]

REPO = Path(__file__).resolve().parent.parent


def reply_fields(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    root = SafeET.fromstring(response.text)
    tags = [c.tag for c in root]
    assert tags == ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Content"], tags
    return {c.tag: c.text or "" for c in root}


# --- finding 10: reply XML built safely ----------------------------------------------------------------------


def test_cdata_end_in_user_text_never_injects_xml(chat, wx):
    chat.person("王老师", "teacher")
    chat.person("李门卫", "guard")
    reason = "送材料]]></Content><Injected>x</Injected><Content><![CDATA["

    def cdata_safe(text: str) -> str:  # what WeChat sends: the text's own ]]> split across two sections
        return text.replace("]]>", "]]]]><![CDATA[>")

    assert "已预约" in chat.say("王老师", cdata_safe(f"预约 张三 13900001234 今天15:00 {reason}"))
    resp = wx.post_xml(xml_of(wx.message(openid_for("李门卫"), "text", Content="今日预约")))
    fields = reply_fields(resp)
    assert "<Injected>" in fields["Content"] and "]]>" in fields["Content"]  # said as text, not as XML
    resp = wx.post_xml(xml_of(wx.message(openid_for("王老师"), "text", Content=cdata_safe("]]><a>"))))
    reply_fields(resp)  # an echo of odd text still parses


# --- finding 14: field lengths, no stuck dialog, no SQL parameters in errors --------------------------------


def test_an_overlong_media_id_is_refused_and_the_dialog_goes_on(chat, wx, caplog):
    chat.person("王老师", "teacher")
    chat.say("王老师", "报修")
    chat.say("王老师", "教学楼301")
    chat.say("王老师", "灯不亮")
    resp = wx.post_xml(xml_of(wx.message(openid_for("王老师"), "image", PicUrl="http://mmbiz.qpic.cn/a.jpg",
                                         MediaId="M" * 300)))
    assert resp.status_code == 400
    assert "第1张" in chat.image("王老师", "media-ok")
    assert "BX1" in chat.say("王老师", "完成")
    assert "系统出了点问题" not in caplog.text and "Traceback" not in caplog.text


def test_a_database_error_never_carries_its_parameters(rt, caplog):
    id_number = "110101199003074578"
    with rt.db.session() as s:
        people.create_person(s, "甲", ["teacher"], now=rt.clock.now()).openid = id_number
    with pytest.raises(Exception) as info, rt.db.session() as s:
        p = people.create_person(s, "乙", ["teacher"], now=rt.clock.now())
        p.openid = id_number
        s.add(p)
        s.flush()
    assert "SQL parameters hidden" in str(info.value)  # hide_parameters
    # PostgreSQL's own DETAIL may quote the value: the log record is redacted all the same
    logging.getLogger("houqin.router").error("handler failed", exc_info=info.value)
    record = caplog.records[-1]
    assert id_number not in logging.Formatter().format(record)


# --- finding 5: safe mode by default once the AES key is set; no signature in the access log ----------------


def test_plaintext_is_refused_once_an_aes_key_is_set(settings, rt, client):
    strict = settings.model_copy(update={"wechat_require_safe_mode": None})
    assert strict.safe_mode_required
    rt.settings = strict
    wx = Wx(client, strict)
    assert wx.post_xml(xml_of(wx.message("o_x", "text", Content="帮助")), mode="plain").status_code == 403
    assert "绑定" in wx.text("o_x", "帮助", mode="aes")
    assert not settings.model_copy(update={"wechat_aes_key": None, "wechat_require_safe_mode": None}).safe_mode_required
    assert not Settings(wechat_aes_key=settings.wechat_aes_key, wechat_require_safe_mode=False,
                        _env_file=None).safe_mode_required  # type: ignore[call-arg]


def test_the_access_log_never_shows_query_strings(rt, caplog):
    import asyncio

    import uvicorn

    app = create_app(runtime=rt, background=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=True, lifespan="off", log_level="info")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    caplog.set_level(logging.INFO)
    thread.start()
    try:
        import httpx

        for _ in range(100):
            if server.started:
                break
            threading.Event().wait(0.05)
        httpx.post(f"http://127.0.0.1:{port}/wechat?signature=abcdef0123456789&timestamp=1&nonce=2"
                   "&encrypt_type=aes&msg_signature=fedcba9876543210", content=b"<xml/>")
        httpx.get(f"http://127.0.0.1:{port}/admin/visitors?q=13800001111")
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/wechat" in line for line in access), access
    text = "\n".join(access)
    assert "signature" not in text and "abcdef0123456789" not in text and "13800001111" not in text


# --- finding 4: secrets scrubbed from stored errors, the console, exports and the log ----------------------


def test_the_app_secret_never_reaches_the_outbox_console_export_or_log(chat, rt, client, caplog):
    chat.person("刘主任", "admin")
    from tests.test_console import set_password

    set_password(rt, "刘主任")
    with socket.socket() as s:  # a port nobody listens on: the token fetch fails with its URL in the error
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    secret = rt.settings.wechat_app_secret
    rt.settings = rt.settings.model_copy(update={"wechat_api_base_url": dead})
    with rt.db.session() as s:
        me = people.find_people(s, "刘主任")[0]
        ob.notify(s, [me.id], "system", "测试消息", now=rt.clock.now())  # type: ignore[list-item]
    caplog.set_level(logging.DEBUG)
    with OutboxSender(rt, max_attempts=1) as sender:
        sender.run_once()
    rows = chat.outbox()
    assert rows and rows[0].last_error, [r.state for r in rows]
    assert secret not in rows[0].last_error and "secret=" in rows[0].last_error.replace("secret=***", "secret=")
    signed_in(client, "刘主任")
    assert secret not in client.get("/admin/outbox").text
    export = client.get("/admin/export/outbox.xlsx")
    wb = load_workbook(io.BytesIO(export.content))
    cells = " ".join(str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value)
    assert secret not in cells
    assert secret not in caplog.text
    for record in caplog.records:
        assert secret not in record.getMessage() and secret not in (record.exc_text or "")


def test_stored_secrets_from_before_are_scrubbed_on_the_page_and_in_the_export(chat, rt, client):
    chat.person("刘主任", "admin")
    from tests.test_console import set_password

    set_password(rt, "刘主任")
    with rt.db.session() as s:
        me = people.find_people(s, "刘主任")[0]
        ob.notify(s, [me.id], "system", "x", now=rt.clock.now())  # type: ignore[list-item]
        row = s.exec(select(ob.OutboxMessage)).one()
        row.state, row.last_error = ob.FAILED, "network: /cgi-bin/token?appid=wx&secret=leaked-secret-value&x=1"
        s.add(row)
    signed_in(client, "刘主任")
    assert "leaked-secret-value" not in client.get("/admin/outbox").text
    assert "leaked-secret-value" not in client.get("/admin").text
    wb = load_workbook(io.BytesIO(client.get("/admin/export/outbox.xlsx").content))
    assert "leaked-secret-value" not in " ".join(str(c.value) for ws in wb.worksheets for r in ws.iter_rows()
                                                 for c in r if c.value)


# --- finding 7: production refuses placeholder and weak secrets --------------------------------------------


GOOD = {"HOUQIN_ENV": "production", "SECRET_KEY": "k3J9-xQ2vL8_pZ4mW7nB1cR6tY0uE5aS-dF", "WECHAT_TOKEN": "t0kenFromTheConsole",
        "WECHAT_APP_ID": "wx1234abcd5678ef90", "WECHAT_APP_SECRET": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"}


def _settings(monkeypatch, **env: str) -> Settings:  # type: ignore[no-untyped-def]
    for k in ("HOUQIN_ENV", "SECRET_KEY", "WECHAT_TOKEN", "WECHAT_APP_ID", "WECHAT_APP_SECRET", "DATABASE_URL",
              "WECHAT_AES_KEY", "WECHAT_REQUIRE_SAFE_MODE"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_production_refuses_placeholder_and_weak_secrets(monkeypatch):
    assert _settings(monkeypatch, **GOOD).env == "production"
    weak = [{"SECRET_KEY": "aaaaaaaaaaaaaaaa"}, {"SECRET_KEY": "a" * 40}, {"SECRET_KEY": "abababababababababababababababab"},
            {"SECRET_KEY": "short-but-random-9f8e"}, {"SECRET_KEY": "dev-secret-change-me"},
            {"WECHAT_TOKEN": "houqin-dev-token"}, {"WECHAT_APP_SECRET": "dev-app-secret"}]
    for change in weak:
        with pytest.raises(ValidationError) as info:
            _settings(monkeypatch, **(GOOD | change))
        assert list(change.values())[0] not in str(info.value)  # names the setting, never its value
    example = dict(re.findall(r"^([A-Z_]+)=(.*)$", (REPO / ".env.example").read_text(encoding="utf-8"), re.M))
    assert example.get("HOUQIN_ENV") == "production"
    for key in ("SECRET_KEY", "WECHAT_TOKEN", "WECHAT_APP_ID", "WECHAT_APP_SECRET", "DATABASE_URL"):
        with pytest.raises(ValidationError):
            _settings(monkeypatch, **(GOOD | {key: example[key]}))
    with pytest.raises(ValidationError):  # the whole file as it is shipped
        Settings(_env_file=str(REPO / ".env.example"))  # type: ignore[call-arg]
    assert _settings(monkeypatch, SECRET_KEY="short").env == "development"  # development is not refused


# --- finding 8: the simulator only on loopback, never in production, with a token and JSON -----------------


@pytest.mark.parametrize("base", ["https://api.weixin.qq.com:443", "HTTPS://API.WEIXIN.QQ.COM",
                                  "https://api.weixin.qq.com/cgi-bin/..", "https://api.weixin.qq.com.", "http://10.0.0.5:8000",
                                  "http://example.com", "http://127.0.0.1.evil.com", "not a url", "http://[::1"])
def test_the_simulator_stays_off_unless_the_api_is_on_loopback(settings, monkeypatch, base):
    monkeypatch.setenv("HOUQIN_SIMULATOR", "1")
    assert not simulator_enabled(settings.model_copy(update={"wechat_api_base_url": base}))


def test_the_simulator_stays_off_in_production(settings, monkeypatch):
    monkeypatch.setenv("HOUQIN_SIMULATOR", "1")
    assert simulator_enabled(settings)  # the fake WeChat on 127.0.0.1
    assert simulator_enabled(settings.model_copy(update={"wechat_api_base_url": "http://localhost:9"}))
    assert not simulator_enabled(settings.model_copy(update={"env": "production"}))


def test_the_simulator_wants_its_token_and_json(client, rt, monkeypatch):
    from bot.sandbox import demo

    with rt.db.session() as s:
        demo.build(s, rt.clock.now())
    monkeypatch.setenv("HOUQIN_SIMULATOR", "1")
    monkeypatch.setenv("HOUQIN_SIMULATOR_TOKEN", "the-right-token-0123456789")
    body = {"openid": demo.demo_openid("张老师"), "text": "帮助"}
    assert client.get("/simulator/api/people").status_code == 403
    assert client.get("/simulator/api/people", headers={"X-Simulator-Token": "wrong-token-0123456789"}).status_code == 403
    assert client.post("/simulator/api/send", json=body).status_code == 403
    assert client.get("/simulator").status_code == 403
    ok = {"X-Simulator-Token": "the-right-token-0123456789"}
    import json

    as_text = client.post("/simulator/api/send", content=json.dumps(body).encode(),
                          headers=ok | {"Content-Type": "text/plain"})
    assert as_text.status_code == 415  # what a cross-site form could send
    assert client.post("/simulator/api/send", json=body, headers=ok).status_code == 200
    assert client.get("/simulator?token=the-right-token-0123456789").status_code == 200


# --- finding 9: masked whatever the separators --------------------------------------------------------------


def test_phones_and_ids_with_separators_are_masked_in_replies_lists_and_exports(chat, rt, client):
    chat.person("李门卫", "guard")
    chat.person("刘主任", "admin")
    from tests.test_console import set_password

    set_password(rt, "刘主任")
    spaced_id = "3205 0119 9001 0112 34"
    reply = chat.say("李门卫", f"访客 张三 13800001234 送货，联系 138-0000-1111 或 139 0000 2222，证件 {spaced_id}")
    lists = chat.say("李门卫", "在校访客")
    signed_in(client, "刘主任")
    wb = load_workbook(io.BytesIO(client.get("/admin/export/visitors.xlsx").content))
    cells = " ".join(str(c.value) for ws in wb.worksheets for r in ws.iter_rows() for c in r if c.value)
    page = client.get("/admin/visitors").text
    for text in (reply, lists, cells, page):
        assert "张三" in text
        for full in ("0000-1111", "0000 2222", "0119 9001", "13800001234", "+86"):
            assert full not in text, (full, text[:300])
    # any reply, whatever stored the text: a repair description read back by 查询
    chat.person("王老师", "teacher")
    assert "BX1" in chat.say("王老师", "报修 教学楼301 灯不亮 请联系 138-0000-1111")
    detail = chat.say("王老师", "查询 BX1")
    assert "灯不亮" in detail and "0000-1111" not in detail and "138****1111" in detail
    for raw in ("138-0000-1111", "139 0000 2222", "+86 138 0000 1111", "8613800001111", spaced_id, "3205-0119-9001-0112-34"):
        assert re.sub(r"\D", "", raw)[-8:-4] not in mask_numbers(raw), raw


# --- finding 11: a removed role does not finish a dialog -----------------------------------------------------


def test_a_removed_role_ends_the_dialog(chat, rt):
    chat.person("王老师", "teacher")
    chat.say("王老师", "报修")
    chat.say("王老师", "教学楼301")
    chat.say("王老师", "灯不亮")
    with rt.db.session() as s:  # no staff role left (a parent only): 报修 is for staff
        p = people.find_people(s, "王老师")[0]
        for r in list(people.roles_of(s, p.id)):  # type: ignore[arg-type]
            s.delete(s.get(people.PersonRole, (p.id, r)))
        s.add(people.PersonRole(person_id=p.id, role="parent"))  # type: ignore[arg-type]
    reply = chat.say("王老师", "完成")
    assert "无权限" in reply
    with rt.db.session() as s:
        assert not s.exec(select(repair.RepairTicket)).all()


def test_a_deactivated_person_cannot_finish_a_dialog(chat, rt):
    chat.person("王老师", "teacher")
    chat.say("王老师", "报修")
    chat.say("王老师", "教学楼301")
    with rt.db.session() as s:
        people.deactivate(s, "王老师")
    assert "还没有绑定身份" in chat.say("王老师", "灯不亮")
    chat.image("王老师")
    chat.say("王老师", "完成")
    with rt.db.session() as s:
        assert not s.exec(select(repair.RepairTicket)).all()


# --- finding 6: the CLI deactivates and changes roles --------------------------------------------------------


def test_cli_deactivates_and_changes_roles(chat, rt, database_url, monkeypatch):
    _load_plugins()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    runner = CliRunner()
    chat.person("王老师", "teacher")
    chat.person("赵老师", "teacher")
    assert "BX1" in chat.say("王老师", "报修 教学楼301 灯不亮")
    result = runner.invoke(cli_app, ["people", "set", "赵老师", "--remove-role", "教师", "--add-role", "guard"])
    assert result.exit_code == 0, result.output
    assert "门卫" in result.output
    assert "无权限" in chat.say("赵老师", "预约 张三 13900001234 明天9:00 送材料")
    result = runner.invoke(cli_app, ["people", "deactivate", "王老师"])
    assert result.exit_code == 0, result.output
    assert "还没有绑定身份" in chat.say("王老师", "我的报修")
    assert "已停用" in runner.invoke(cli_app, ["people", "list"]).output
    assert runner.invoke(cli_app, ["people", "deactivate", "没有这个人"]).exit_code != 0
    assert runner.invoke(cli_app, ["people", "set", "赵老师", "--remove-role", "guard"]).exit_code != 0  # last role
    with rt.db.session() as s:
        assert s.exec(select(repair.RepairTicket)).one().reporter_id  # the record stays


# --- finding 15: zero-width characters, an atomic bind limit ------------------------------------------------


def test_zero_width_characters_never_defeat_command_words(chat):
    chat.person("王老师", "teacher")
    assert "BX1" in chat.say("王老师", "报\u200b修 教学楼301 灯不亮")
    assert "BX2" in chat.say("王老师", "\ufeff报修\u200d 教学楼302 门坏了")
    assert "报修" in chat.say("王老师", "帮\u2060助")
    chat.say("王老师", "报修")
    assert "已取消" in chat.say("王老师", "取\u200c消")
    assert "BX1" in chat.say("王老师", "查\u200b询 BX1")


def test_concurrent_wrong_bind_codes_are_limited_atomically(chat, wx):
    openid = "oBinder000000000000000000000"

    def attempt(i: int) -> str:
        return wx.text(openid, f"绑定 ZZZZ{i:02d}")

    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(attempt, range(40)))
    evaluated = [r for r in replies if "邀请码无效" in r]
    assert len(evaluated) <= 5, len(evaluated)
    assert all("邀请码无效" in r or "次数过多" in r for r in replies), replies


def test_runtime_installs_the_redacting_log(rt, caplog):
    caplog.set_level(logging.INFO)
    logging.getLogger("houqin.test").info("fetch %s failed", f"/cgi-bin/token?secret={rt.settings.wechat_app_secret}")
    logging.getLogger("houqin.test").info("visitor phone 138 0000 1111")
    try:
        raise RuntimeError(f"secret={rt.settings.wechat_app_secret} 13900002222")
    except RuntimeError:
        logging.getLogger("houqin.test").exception("boom")
    formatted = "\n".join(logging.Formatter().format(r) for r in caplog.records)
    assert rt.settings.wechat_app_secret not in formatted
    assert "0000 1111" not in formatted and "13900002222" not in formatted

