"""The demo school (bot/sandbox/demo.py), the chat simulator API (bot/sandbox/simulator.py) and `houqin simulate`."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import demo as cli_demo
from bot.sandbox import demo
from bot.config import REAL_WECHAT_API
from bot.sandbox.fakewechat import TINY_JPEG, FakeWeChat
from bot.runtime import Runtime
from storage import console_users, duty, people


@pytest.fixture
def school(rt: Runtime) -> demo.DemoSchool:
    with rt.db.session() as s:
        return demo.build(s, rt.clock.now())


SIM_TOKEN = "simulator-token-for-tests-0123456789"


@pytest.fixture
def sim(client: TestClient, school: demo.DemoSchool, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("HOUQIN_SIMULATOR", "1")
    monkeypatch.setenv("HOUQIN_SIMULATOR_TOKEN", SIM_TOKEN)
    client.headers["X-Simulator-Token"] = SIM_TOKEN
    return client


def oid(name: str) -> str:
    return demo.demo_openid(name)


def say(sim: TestClient, name: str, text: str) -> str:
    resp = sim.post("/simulator/api/send", json={"openid": oid(name), "text": text})
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["status"] == 200, data
    return str(data["reply"])


def deliver(rt: Runtime) -> None:
    """What the background sender does in the demo: send what is due to the fake WeChat server."""
    from bot.wechat.sender import OutboxSender

    with OutboxSender(rt) as sender:
        while sender.run_once() > 0:
            pass


def events(sim: TestClient, after: int = 0) -> list[dict[str, Any]]:
    resp = sim.get(f"/simulator/api/events?after={after}")
    assert resp.status_code == 200
    return list(resp.json()["events"])


# --- the demo school ---

def test_demo_school_has_every_role(rt: Runtime, school: demo.DemoSchool) -> None:
    with rt.db.session() as s:
        everyone = {p.name: (p, people.roles_of(s, p.id)) for p, _ in people.list_people(s)}  # type: ignore[arg-type]
        for role in people.ROLES:
            assert people.people_with_role(s, role), f"no {role} in the demo school"
        assert everyone["王主任"][1] == {"admin"}
        assert len(people.people_with_role(s, "leader")) == 2
        heads = {k.name: s.get(people.Person, k.head_teacher_id).name  # type: ignore[union-attr]
                 for k in s.exec(select(people.SchoolClass)).all()}
        assert heads == {"七(1)班": "刘老师", "七(3)班": "周老师"}
        assert everyone["李师傅"][0].categories == "电" and everyone["钱师傅"][0].categories == "水"
        kids = people.children_of(s, everyone["王小明妈妈"][0].id)  # type: ignore[arg-type]
        assert [k.name for k in kids] == ["王小明"]
        students = s.exec(select(people.Student)).all()
        assert len(students) == school.students == 8
        bound = [p for p, _ in everyone.values() if p.openid]
        assert all(p.openid == oid(p.name) for p in bound)
        assert everyone["吴老师"][0].openid is None  # left for the simulator's 新用户 to bind
    assert school.invite_for == "吴老师" and school.invite_code and len(school.invite_code) == 6
    assert school.classes == ["七(1)班", "七(3)班"]


def test_demo_admin_and_leader_may_log_in_to_the_console(rt: Runtime, school: demo.DemoSchool) -> None:
    assert school.console == ["王主任", "李校长"]
    with rt.db.session() as s:
        assert console_users.authenticate(s, "王主任", demo.CONSOLE_PASSWORD) is not None
        assert console_users.authenticate(s, "张老师", demo.CONSOLE_PASSWORD) is None


def test_demo_school_has_a_duty_rota(rt: Runtime, school: demo.DemoSchool) -> None:
    with rt.db.session() as s:
        rows = duty.coming(s, rt.clock.now().date())
    assert rows, school.notes  # December 2026 has weekends: the leaders take turns
    assert {p.name for _, p in rows} == {"李校长", "赵副校长"}
    assert any(n.startswith("值班表：已生成") for n in school.notes)


def test_create_wipes_unless_kept(tmp_path: Path) -> None:
    now = datetime(2026, 12, 1, 9, 0)
    url, school = demo.create(tmp_path, now)
    assert school is not None and (tmp_path / demo.DB_NAME).exists()
    from storage.db import Database

    db = Database(url)
    with db.session() as s:
        people.create_person(s, "临时工", ["teacher"], now=now)
    db.dispose()

    def names() -> set[str]:
        d = Database(url)
        with d.session() as s:
            got = {p.name for p, _ in people.list_people(s)}
        d.dispose()
        return got

    _, kept = demo.create(tmp_path, now, keep=True)
    assert kept is None and "临时工" in names()
    _, again = demo.create(tmp_path, now)
    assert again is not None and "临时工" not in names() and "张老师" in names()


def test_demo_settings_are_safe_mode_without_credentials() -> None:
    s = cli_demo.demo_settings("sqlite:///demo.db", "http://127.0.0.1:9")
    assert s.wechat_aes_key and len(s.wechat_aes_key) == 43
    assert s.wechat_api_base_url == "http://127.0.0.1:9" and s.redis_url is None
    assert s.scheduler == "on" and s.sender == "on" and s.env == "development"
    from bot.wechat.crypto import Cipher

    Cipher(s.wechat_token, s.wechat_aes_key, s.wechat_app_id)  # a valid EncodingAESKey


# --- the simulator's switch ---

def test_simulator_is_off_unless_enabled(client: TestClient, school: demo.DemoSchool,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOUQIN_SIMULATOR", raising=False)
    assert client.get("/simulator").status_code == 404
    assert client.get("/simulator/api/people").status_code == 404
    assert client.post("/simulator/api/send", json={"openid": oid("张老师"), "text": "帮助"}).status_code == 404
    monkeypatch.setenv("HOUQIN_SIMULATOR", "0")
    assert client.get("/simulator/api/events").status_code == 404


def test_simulator_refuses_when_outbound_goes_to_real_wechat(sim: TestClient, rt: Runtime,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rt.settings, "wechat_api_base_url", REAL_WECHAT_API)
    assert sim.get("/simulator").status_code == 404
    assert sim.post("/simulator/api/send", json={"openid": oid("张老师"), "text": "帮助"}).status_code == 404


# --- the page and its API ---

def test_page_and_assets_load(sim: TestClient) -> None:
    page = sim.get("/simulator")
    assert page.status_code == 200 and "聊天模拟器" in page.text and "simulator.js" in page.text
    for name in ("simulator.js", "simulator.css"):
        assert sim.get(f"/simulator/assets/{name}").status_code == 200
    assert sim.get("/simulator/assets/..%2Fsimulator.py").status_code == 404


def test_people_list_in_role_order_with_the_newcomer(sim: TestClient, school: demo.DemoSchool) -> None:
    data = sim.get("/simulator/api/people").json()
    names = [p["name"] for p in data["people"]]
    assert names[0] == "王主任" and names[-1] == "王小明妈妈"
    assert "吴老师" not in names  # not bound yet
    liu = next(p for p in data["people"] if p["name"] == "刘老师")
    assert liu["roles"] == "教师、班主任" and liu["detail"] == "七(1)班" and liu["openid"] == oid("刘老师")
    assert next(p for p in data["people"] if p["name"] == "李师傅")["detail"] == "类别：电"
    assert data["newcomer"]["openid"] == demo.NEWCOMER_OPENID
    assert school.invite_code in data["newcomer"]["detail"]
    assert data["safe_mode"] is True  # the test settings carry an EncodingAESKey


def test_help_through_the_webhook_in_safe_mode(sim: TestClient) -> None:
    reply = say(sim, "张老师", "帮助")
    assert "报修" in reply
    got = events(sim)
    assert [(e["kind"], e["openid"]) for e in got] == [("in", oid("张老师")), ("reply", oid("张老师"))]
    assert got[0]["text"] == "帮助" and got[1]["text"] == reply


def test_plaintext_mode_when_no_aes_key(sim: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rt, "cipher", None)
    assert "报修" in say(sim, "张老师", "帮助")
    assert sim.get("/simulator/api/people").json()["safe_mode"] is False


def test_a_refusal_by_the_webhook_shows_as_an_error(sim: TestClient, rt: Runtime,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator only signs like WeChat; the webhook still decides (here: plaintext refused)."""
    monkeypatch.setattr(rt, "cipher", None)
    monkeypatch.setattr(rt.settings, "wechat_require_safe_mode", True)
    data = sim.post("/simulator/api/send", json={"openid": oid("张老师"), "text": "帮助"}).json()
    assert data["status"] == 403 and data["answer"]["kind"] == "error" and "403" in data["answer"]["text"]


def test_repair_report_pushes_to_the_auto_assigned_worker(sim: TestClient, rt: Runtime) -> None:
    reply = say(sim, "张老师", "报修 教学楼301 灯不亮")
    assert "BX1" in reply
    before = events(sim)
    deliver(rt)
    pushes = [e for e in events(sim, before[-1]["id"]) if e["kind"] == "push"]
    assert pushes, "no push reached the fake WeChat server"
    push = pushes[0]
    assert push["openid"] == oid("李师傅") and push["to_name"] == "李师傅"
    assert "BX1" in push["text"] and push["channel"] in ("custom", "template")
    assert events(sim, push["id"]) == []  # each push once


def test_pushes_from_a_fake_in_another_process(sim: TestClient, rt: Runtime, fake_wechat: FakeWeChat,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """When the fake WeChat server is not in this process, the simulator reads its /fake/received."""
    from storage import outbox

    with rt.db.session() as s:
        li = people.find_people(s, "李师傅")[0]
        outbox.enqueue(s, li.id, "system", "测试推送\n第二行", now=rt.clock.now())
    deliver(rt)
    monkeypatch.setattr(FakeWeChat, "at", classmethod(lambda cls, base_url: None))
    pushes = [e for e in events(sim) if e["kind"] == "push"]
    assert [(p["to_name"], p["text"]) for p in pushes] == [("李师傅", "测试推送\n第二行")]


def test_repair_dialog_with_a_photo(sim: TestClient, fake_wechat: FakeWeChat) -> None:
    assert "地点" in say(sim, "张老师", "报修")
    say(sim, "张老师", "教学楼301")
    assert "照片" in say(sim, "张老师", "灯不亮")
    png = base64.b64encode(TINY_JPEG).decode()
    resp = sim.post("/simulator/api/send", json={"openid": oid("张老师"), "type": "image",
                                                 "image": "data:image/jpeg;base64," + png}).json()
    assert "第1张" in resp["reply"]
    media = resp["sent"]["media"]
    assert sim.get(media).content == TINY_JPEG
    media_id = media.rsplit("/", 1)[1]
    assert fake_wechat._state.media[media_id][0] == TINY_JPEG  # /cgi-bin/media/get answers that picture
    assert "BX1" in say(sim, "张老师", "完成")


def test_menu_click_runs_the_command(sim: TestClient) -> None:
    menu = sim.get("/simulator/api/people").json()["menu"]
    if menu is not None:
        keys = [b.get("key") for top in menu["button"] for b in [top, *(top.get("sub_button") or [])]]
        assert "帮助" in keys
    data = sim.post("/simulator/api/send",
                    json={"openid": oid("张老师"), "type": "click", "key": "帮助", "label": "帮助"}).json()
    assert data["status"] == 200 and "报修" in data["reply"]
    assert data["sent"]["text"] == "[菜单] 帮助"


def test_newcomer_binds_with_the_invite_code(sim: TestClient, school: demo.DemoSchool) -> None:
    new = demo.NEWCOMER_OPENID
    first = sim.post("/simulator/api/send", json={"openid": new, "text": "报修 教学楼301 灯不亮"}).json()
    assert "绑定" in first["reply"]
    bound = sim.post("/simulator/api/send", json={"openid": new, "text": f"绑定 {school.invite_code}"}).json()
    assert "吴老师" in bound["reply"]
    data = sim.get("/simulator/api/people").json()
    assert data["newcomer"] is None
    assert next(p for p in data["people"] if p["name"] == "吴老师")["openid"] == new


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"openid": "bad openid!", "text": "帮助"}, "openid"),
    ({"openid": "oDemoX", "text": "   "}, "不能为空"),
    ({"openid": "oDemoX", "type": "video"}, "不支持"),
    ({"openid": "oDemoX", "type": "click"}, "菜单"),
    ({"openid": "oDemoX", "type": "image", "image": "data:text/plain;base64,aGk="}, "图片"),
    ({"openid": "oDemoX", "type": "image", "image": "***"}, "图片数据"),
    ({"openid": "oDemoX", "text": "长" * 2001}, "太长"),
]


def test_bad_requests_get_a_clear_error(sim: TestClient) -> None:
    client = sim
    for body, message in BAD_REQUESTS:
        resp = client.post("/simulator/api/send", json=body)
        assert resp.status_code == 400 and message in resp.json()["error"], (body, resp.text)
    assert client.post("/simulator/api/send", content=b"not json",
                       headers={"Content-Type": "application/json"}).status_code == 400
    assert client.post("/simulator/api/send", json=["a list"]).status_code == 400


# --- houqin simulate ---

def test_simulate_repl_prints_replies_and_pushes(sim: TestClient, rt: Runtime) -> None:
    out: list[str] = []
    lines = iter(["我的任务", "/退出"])

    def read(prompt: str) -> str:
        assert prompt == "李师傅> "
        line = next(lines)
        if line == "我的任务":  # meanwhile a teacher reports a fault and the sender delivers the push
            say(sim, "张老师", "报修 教学楼301 灯不亮")
            deliver(rt)
        return line

    cli_demo.repl(sim, "李师傅", read=read, out=out.append, follow=False)
    text = "\n".join(out)
    assert "以 李师傅（维修工）的身份" in out[0]
    assert "公众号：" in text and "BX1" in text
    pushes = [line for line in out if line.startswith(("【客服消息", "【模板消息"))]
    assert len(pushes) == 1 and "BX1" in pushes[0]


def test_simulate_help_and_unknown_person(sim: TestClient) -> None:
    out: list[str] = []
    lines = iter(["帮助"])

    def read(prompt: str) -> str:
        for line in lines:
            return line
        raise EOFError  # Ctrl+D ends it

    cli_demo.repl(sim, "张老师", read=read, out=out.append, follow=False)
    assert any("公众号：" in line and "报修" in line for line in out)
    with pytest.raises(cli_demo.SimulateError, match="张老师"):
        cli_demo.find_person(sim, "不存在的人")


def test_simulate_against_a_server_without_simulator(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOUQIN_SIMULATOR", raising=False)
    with pytest.raises(cli_demo.SimulateError, match="houqin demo"):
        cli_demo.find_person(client, "张老师")


@pytest.fixture
def cli() -> Iterator[typer.Typer]:
    app = typer.Typer()
    cli_demo.register(app)
    yield app


def test_cli_commands_are_registered(cli: typer.Typer) -> None:
    runner = CliRunner()
    assert "--data-dir" in runner.invoke(cli, ["demo", "--help"]).output
    assert "--as" in runner.invoke(cli, ["simulate", "--help"]).output
    result = runner.invoke(cli, ["simulate", "--as", "张老师", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "houqin demo" in result.output


# --- issue 16: any number of new users, each person's menu, real chips, push times, the terminal hint ---

def test_new_user_button_makes_a_fresh_openid_each_time(sim: TestClient, rt: Runtime) -> None:
    first = sim.post("/simulator/api/newcomer", json={}).json()["openid"]
    second = sim.post("/simulator/api/newcomer", json={}).json()["openid"]
    assert first != second and demo.NEWCOMER_OPENID not in (first, second)
    got = [e for e in events(sim) if e["openid"] == second]
    assert got[0]["text"] == "[关注公众号]" and "绑定" in got[1]["text"]  # the welcome through the webhook
    waiting = sim.get("/simulator/api/people").json()["newcomers"]
    assert [n["openid"] for n in waiting] == [demo.NEWCOMER_OPENID, first, second]
    assert [n["name"] for n in waiting] == ["新用户", "新用户2", "新用户3"]
    # an invite made in the console binds the second new user; the others stay new users
    with rt.db.session() as s:
        _, inv = people.invite(s, "新来的老师", ["teacher"], now=rt.clock.now())
        code = inv.code
    resp = sim.post("/simulator/api/send", json={"openid": second, "text": f"绑定 {code}"})
    assert "绑定成功" in resp.json()["reply"]
    data = sim.get("/simulator/api/people").json()
    assert second not in [n["openid"] for n in data["newcomers"]]
    assert any(p["openid"] == second and p["name"] == "新来的老师" for p in data["people"])


def test_each_person_gets_their_roles_menu(sim: TestClient, rt: Runtime, fake_wechat: FakeWeChat) -> None:
    from bot.wechat.api import WeChatAPI
    from bot.wechat.menu import install, load_menu

    def first_buttons(data: dict[str, Any], name: str) -> list[str]:
        person = next(p for p in data["people"] + data["newcomers"] if p["name"] == name)
        return [b["name"] for b in person["menu"]["button"]]

    data = sim.get("/simulator/api/people").json()  # no menu on the fake yet: by their roles
    assert first_buttons(data, "王小明妈妈")[:2] == ["请假", "我的请假"]
    install(WeChatAPI(rt.settings, rt.kv), load_menu())  # what `houqin demo` does at start
    deliver(rt)  # the demo people's role tags, queued when the school was built
    data = sim.get("/simulator/api/people").json()
    assert first_buttons(data, "王小明妈妈")[:2] == ["请假", "我的请假"]
    assert first_buttons(data, "李师傅")[0] == "我的任务"
    guard = next(p for p in data["people"] if "guard" in p["role_keys"])["name"]
    assert first_buttons(data, guard)[:2] == ["访客登记", "核验"]
    assert first_buttons(data, "张老师")[:2] == ["报修", "请假"]
    assert first_buttons(data, "新用户")[0] == "使用帮助"
    assert fake_wechat.tags_of(oid("李师傅")) == ["后勤·维修工"]


def test_worker_chips_are_their_open_tickets(sim: TestClient, rt: Runtime) -> None:
    def chips() -> list[str]:
        data = sim.get("/simulator/api/people").json()
        return list(next(p for p in data["people"] if p["name"] == "李师傅")["suggest"])

    assert chips() == []
    say(sim, "张老师", "报修 教学楼301 灯不亮")  # auto-assigned to 李师傅 (电)
    assert chips() == ["接单 BX1"]
    say(sim, "李师傅", "接单 BX1")
    assert chips() == ["完成 BX1 已修好"]


def test_pushes_show_when_they_were_sent(sim: TestClient, rt: Runtime, clock: Any) -> None:
    from storage import outbox

    with rt.db.session() as s:
        li = people.find_people(s, "李师傅")[0]
        outbox.enqueue(s, li.id, "system", "十点的推送", now=rt.clock.now())
    clock.set(datetime(2026, 12, 1, 10, 0, 5))
    deliver(rt)
    clock.set(datetime(2026, 12, 1, 11, 30))  # the page looks much later
    push = next(e for e in events(sim) if e["kind"] == "push")
    assert (push["date"], push["time"]) == ("2026-12-01", "10:00:05")


def test_demo_banner_names_the_real_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    printed: list[str] = []
    for name in ("HOUQIN_SIMULATOR", "HOUQIN_SIMULATOR_TOKEN"):  # run_demo sets them: restored after the test
        monkeypatch.setenv(name, "")
    monkeypatch.setattr(typer, "echo", lambda msg="", **kw: printed.append(str(msg)))
    real_run = uvicorn.Server.run

    def run(self: Any, sockets: Any = None) -> None:  # the fake WeChat server runs; the demo's own does not
        if isinstance(getattr(self.config.app, "__self__", None), FakeWeChat):
            real_run(self, sockets=sockets)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    cli_demo.run_demo(0, "127.0.0.1", tmp_path / "demo", False, 0)
    banner = "\n".join(printed)
    port = banner.split("打开聊天模拟器：http://127.0.0.1:", 1)[1].split("/", 1)[0]
    assert port.isdigit() and port != "8000"
    assert f"houqin simulate --as 张老师 --url http://127.0.0.1:{port}" in banner


@pytest.mark.parametrize("today", [datetime(2026, 12, 1, 9), datetime(2027, 1, 25, 9), datetime(2027, 7, 20, 9),
                                   datetime(2027, 3, 10, 9)])
def test_demo_reminders_include_the_canteen_meeting(tmp_path: Path, today: datetime) -> None:
    from storage import reminder as rem
    from storage.db import Database

    url, _ = demo.create(tmp_path / "demo", today)
    db = Database(url)
    try:
        with db.session() as s:
            texts = [r.text for r in s.exec(select(rem.Reminder)).all()]
    finally:
        db.dispose()
    assert any("食堂管理委员会会议" in t for t in texts), texts[-5:]


def test_readme_and_users_guide_stand_alone() -> None:
    """The README links the user's guide that ships in docs/ (not a spec in a folder a clone does not have),
    and both describe the menus that menu.json really installs."""
    from bot.wechat.menu import load_menu

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    guide = (root / "docs" / "USER_GUIDE.md").read_text(encoding="utf-8")
    assert "docs/USER_GUIDE.md" in readme and "shared folder" not in readme
    menu = load_menu()
    for role, sub in menu["roles"].items():
        names = [b["name"] for b in sub["button"]]
        zh = people.ROLES[role]
        row = next(line for line in guide.splitlines() if line.startswith(f"| {zh} |"))
        assert all(n in row for n in names), (role, names, row)
    default = [b["name"] for b in menu["button"]]
    assert all(n in readme for n in default)
    # every command word of 帮助 appears in the guide
    from handlers import base

    base.load_handlers()
    for c in base.COMMANDS:
        if not c.hidden and c.words[0] not in ("帮助",):
            assert f"`{c.words[0]}" in guide or f"{c.words[0]} " in guide, c.words[0]
