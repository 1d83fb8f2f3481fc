"""`houqin demo` (a demo school served with the chat simulator, no WeChat needed) and `houqin simulate`
(the simulator in a terminal)."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import socket
import sys
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn

from bot.app import create_app
from bot.cli.common import fail
from bot.config import Settings
from bot.wechat.api import WeChatAPI
from bot.wechat.menu import install, load_menu
from storage.clock import Clock
from storage.kv import make_kv

# Fixed on purpose: the demo has no secrets to keep (it talks only to the fake WeChat server on loopback),
# and a stable SECRET_KEY keeps encrypted visitor ID numbers readable across `--keep` runs.
DEMO_TOKEN = "houqin-demo-token"
DEMO_AES_KEY = "HouqinDemoEncodingAESKey0123456789abcdefghi"  # 43 characters: the demo runs in safe mode
DEMO_APP_ID = "wxdemo0000000000"
DEMO_SECRET_KEY = "houqin-demo-secret-key-not-for-production"


def demo_settings(database_url: str, api_base_url: str, config_file: str | None = None) -> Settings:
    """The demo's Settings: its own database, the fake WeChat API, one process (no Redis), safe mode.
    A `.env` in the working directory is ignored: it may hold a real school's database and credentials."""
    extra: dict[str, Any] = {"HOUQIN_CONFIG": config_file} if config_file else {}
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        HOUQIN_ENV="development",
        database_url=database_url,
        wechat_api_base_url=api_base_url,
        wechat_token=DEMO_TOKEN,
        wechat_aes_key=DEMO_AES_KEY,
        wechat_app_id=DEMO_APP_ID,
        wechat_app_secret="demo-app-secret",
        wechat_require_safe_mode=False,
        redis_url=None,
        secret_key=DEMO_SECRET_KEY,
        scheduler="on",
        sender="on",
        school_name=os.environ.get("SCHOOL_NAME") or "阳光实验中学",
        **extra,
    )


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(f"端口 {port} 无法使用（{exc.strerror}）：可能已有服务在运行，换一个端口：houqin demo --port 8001")
    sock.listen(128)
    return sock


def run_demo(port: int, host: str, data_dir: Path, keep: bool, fake_port: int) -> None:
    # Deliberately here, not at the top: the sandbox (demo school, fake WeChat) is loaded only when `houqin demo`
    # runs, never by the other commands or the server (tests/test_layering.py holds every module to that).
    from bot.sandbox import demo as demo_school
    from bot.sandbox.fakewechat import FakeWeChat

    sock = _bind(host, port)
    tz = os.environ.get("TIMEZONE") or "Asia/Shanghai"
    now = Clock(tz).now()
    typer.echo(f"正在准备演示学校（数据目录 {data_dir.resolve()}）…")
    url, school = demo_school.create(data_dir, now, keep=keep)
    fake = FakeWeChat(port=fake_port).start()
    os.environ["HOUQIN_SIMULATOR"] = "1"  # bot.sandbox.simulator answers only when this is set
    token = os.environ.get("HOUQIN_SIMULATOR_TOKEN", "").strip()
    if len(token) < 16:  # a new secret per run: only who reads this terminal can drive the simulator
        token = secrets.token_urlsafe(24)
        os.environ["HOUQIN_SIMULATOR_TOKEN"] = token
    settings = demo_settings(url, fake.base_url, str(data_dir.resolve() / demo_school.CONFIG_NAME))
    menus = WeChatAPI(settings, make_kv(None))
    try:
        install(menus, load_menu())  # as `houqin menu push` would: the default menu and one per role
    finally:
        menus.close()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every scheduler tick at INFO
    app = create_app(settings)

    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    base_url = f"http://{shown}:{sock.getsockname()[1]}"
    sim_url = f"{base_url}/simulator?token={token}"
    lines = ["", "=" * 60, f"  校园后勤助手 · 演示学校「{settings.school_name}」"]
    if school is None:
        lines.append("  沿用已有的演示数据（--keep）")
    else:
        lines.append(f"  {len(school.people)} 位教职工和家长，{len(school.classes)} 个班级"
                     f"（{'、'.join(school.classes)}），{school.students} 名学生")
        for name, roles, _ in school.people:
            lines.append(f"    {name}（{roles}）")
        if school.invite_code:
            lines.append(f"  {school.invite_for} 尚未绑定，邀请码 {school.invite_code}（在模拟器里选「新用户」发送"
                         f"「绑定 {school.invite_code}」）")
        lines += [f"  {note}" for note in school.notes]
    lines += [
        f"  模拟微信服务器：{fake.base_url}（所有推送都发到这里，不连接真实微信）",
        "",
        f"  打开聊天模拟器：{sim_url}",
        *_console_line(school, base_url, demo_school.CONSOLE_PASSWORD),
        f"  终端版：houqin simulate --as 张老师 --url {base_url} --token {token}",
        "  按 Ctrl+C 结束。",
        "=" * 60,
        "",
    ]
    if host in ("0.0.0.0", "::"):
        lines.insert(-2, "  注意：模拟器允许任何人冒充任何人，只在可信的网络里这样开放。")
    typer.echo("\n".join(lines))
    config = uvicorn.Config(app, log_level="info", access_log=False, lifespan="on", workers=1)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        fake.stop()


def _console_line(school: Any, base: str, password: str) -> list[str]:
    if school is None or not school.console:
        return []
    return [f"  管理后台：{base}/admin（{' 或 '.join(school.console)}，密码 {password}）"]


# --------------------------------------------------------------------------------------------------------
# houqin simulate


class SimulateError(Exception):
    pass


def _get(client: httpx.Client, path: str) -> Any:
    resp = client.get(path)
    if resp.status_code == 404:
        raise SimulateError("这个服务没有开启聊天模拟器：请用 houqin demo 启动演示（或设置 HOUQIN_SIMULATOR=1）。")
    if resp.status_code == 403:
        raise SimulateError("模拟器令牌不对：请用 houqin demo 显示的 --token（或设置 HOUQIN_SIMULATOR_TOKEN）。")
    resp.raise_for_status()
    return resp.json()


def find_person(client: httpx.Client, name: str) -> dict[str, Any]:
    data = _get(client, "/simulator/api/people")
    everyone = data["people"] + ([data["newcomer"]] if data.get("newcomer") else [])
    for p in everyone:
        if p["name"] == name:
            return p  # type: ignore[no-any-return]
    names = "、".join(p["name"] for p in everyone)
    raise SimulateError(f"没有名为「{name}」的已绑定人员。可选：{names}")


class Session:
    """One person's conversation: send lines, print the reply and new pushes to that person."""

    def __init__(self, client: httpx.Client, person: dict[str, Any], out: Callable[[str], None]) -> None:
        self.client = client
        self.person = person
        self.out = out
        self.lock = threading.Lock()
        self.last = int(_get(client, "/simulator/api/events?after=0")["last"])

    def send(self, line: str) -> str:
        body: dict[str, Any] = {"openid": self.person["openid"], "type": "text", "text": line}
        if line.startswith(("/图片", "/image")):
            body = {"openid": self.person["openid"], "type": "image"}
            path = line.split(maxsplit=1)[1].strip() if len(line.split(maxsplit=1)) > 1 else ""
            if path:
                body["image"] = base64.b64encode(Path(path).expanduser().read_bytes()).decode()
        elif line.startswith(("/菜单", "/click")):
            key = line.split(maxsplit=1)[1].strip() if len(line.split(maxsplit=1)) > 1 else ""
            body = {"openid": self.person["openid"], "type": "click", "key": key}
        with self.lock:
            resp = self.client.post("/simulator/api/send", json=body)
            data = resp.json()
            if resp.status_code != 200:
                reply = f"（{data.get('error', resp.status_code)}）"
            elif data["status"] != 200:
                reply = f"（公众号服务器返回 {data['status']}）"
            else:
                reply = data["reply"] or "（公众号没有回复）"
            self.last = max(self.last, int(data.get("answer", {}).get("id", 0)))
        self.out(_indent("公众号", reply))
        self.pushes()
        return reply

    def pushes(self, prompt: str | None = None) -> list[str]:
        """Print pushes to this person that arrived since the last look (`prompt`: printed while the user
        sits at this prompt, so start on a fresh line and show the prompt again after)."""
        with self.lock:
            got = _get(self.client, f"/simulator/api/events?after={self.last}")
            self.last = max(self.last, int(got["last"]))
        texts = []
        for e in got["events"]:
            if e["kind"] == "push" and e["openid"] == self.person["openid"]:
                label = "模板消息" if e.get("channel") == "template" else "客服消息"
                self.out(("\r" if prompt else "") + _indent(f"【{label} {e['time']}】", e["text"], sep=""))
                texts.append(e["text"])
        if texts and prompt:
            sys.stdout.write(prompt)
            sys.stdout.flush()
        return texts


def _indent(label: str, text: str, sep: str = "：") -> str:
    """`label：first line` with the following lines under the first (Chinese characters are two columns)."""
    width = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in label + sep)
    pad = " " * width
    first, *rest = text.split("\n")
    return "\n".join([f"{label}{sep}{first}"] + [pad + r for r in rest])


def repl(client: httpx.Client, name: str, *, read: Callable[[str], str] = input,
         out: Callable[[str], None] = print, follow: bool = True) -> None:
    """Read lines, send each as `name`, print replies and pushes. `follow`: also print pushes that arrive
    while waiting for input (a background poll every second)."""
    person = find_person(client, name)
    sess = Session(client, person, out)
    prompt = f"{person['name']}> "
    out(f"以 {person['name']}（{person['roles']}）的身份和公众号对话。输入消息回车发送；"
        "/图片 [文件] 发送图片，/菜单 <命令> 点菜单，/退出 结束。")
    stop = threading.Event()
    if follow:
        def loop() -> None:
            while not stop.wait(1.0):
                try:
                    sess.pushes(prompt)
                except (httpx.HTTPError, SimulateError, ValueError):
                    pass  # the server went away or restarted: the next send says so

        threading.Thread(target=loop, name="simulate-pushes", daemon=True).start()
    try:
        while True:
            try:
                line = read(prompt).strip()
            except (EOFError, KeyboardInterrupt):
                out("")
                break
            if line in ("/退出", "/quit", "/exit"):
                break
            if line:
                sess.send(line)
    finally:
        stop.set()


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        port: Annotated[int, typer.Option(help="模拟器和回调的端口")] = 8000,
        host: Annotated[str, typer.Option(help="监听地址（0.0.0.0 可让同一网络的手机访问）")] = "127.0.0.1",
        data_dir: Annotated[Path, typer.Option("--data-dir", help="演示数据库所在目录")] = Path("./demo-data"),
        keep: Annotated[bool, typer.Option("--keep", help="沿用上次的演示数据（默认每次重建）")] = False,
        fake_port: Annotated[int, typer.Option("--fake-port", help="模拟微信服务器的端口（0 = 自动）")] = 0,
    ) -> None:
        """演示学校和聊天模拟器，不需要微信公众号。

        建一所演示学校（各角色人员、两个班级、值班表），启动服务和聊天模拟器。

        每次运行都会清空并重建 DATA_DIR 下的演示数据库（--keep 沿用）。出站消息全部发到内置的模拟微信服务器。
        打开 http://127.0.0.1:8000/simulator 选择身份聊天。
        """
        run_demo(port, host, data_dir, keep, fake_port)

    @app.command()
    def simulate(
        as_: Annotated[str, typer.Option("--as", help="以谁的身份对话（姓名，如 张老师；未绑定的用 新用户）")],
        url: Annotated[str, typer.Option(help="正在运行的演示服务（houqin demo 启动时会显示）")] = "http://127.0.0.1:8000",
        token: Annotated[str, typer.Option(help="houqin demo 显示的模拟器令牌", envvar="HOUQIN_SIMULATOR_TOKEN")] = "",
    ) -> None:
        """聊天模拟器的终端版。

        以某人的身份给公众号发消息，显示回复和发给此人的推送。

        连接一个正在运行、开启了模拟器的服务（先在另一个终端运行 houqin demo）。每行消息经由该服务的
        /simulator 接口签名后发到真实的 /wechat 回调；推送取自它的模拟微信服务器。
        /图片 [文件] 发送图片（报修照片），/菜单 <命令> 模拟点击菜单，/退出 或 Ctrl+D 结束。
        """
        try:
            with httpx.Client(base_url=url.rstrip("/"), timeout=30.0,
                              headers={"X-Simulator-Token": token.strip()}) as client:
                repl(client, as_.strip())
        except SimulateError as exc:
            fail(str(exc))
        except httpx.HTTPError as exc:
            fail(f"连接不上 {url}（{exc}）：请先在另一个终端运行 houqin demo。")
        sys.stdout.flush()
