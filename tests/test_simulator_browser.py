"""The chat simulator in a real headless browser, against the real `houqin demo` server process.

Needs Debian's chromium (/usr/bin/chromium, installed by .ci/run); without it this test fails, it does not
skip. Screenshots go to $HOUQIN_SCREENSHOTS when set (docs/simulator-*.png are made that way), else to a
temporary directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import chromium, houqin, screenshot_dir

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`houqin demo` as its own process, on a free port, with a temporary data directory."""
    data = tmp_path_factory.mktemp("demo-data")
    env = {k: v for k, v in os.environ.items() if k not in ("HOUQIN_SIMULATOR", "DATABASE_URL", "REDIS_URL")}
    with houqin("demo", "--data-dir", str(data), data=data, cwd=ROOT, env=env) as running:
        # the URL it tells the user to open, with the simulator's per-run token
        found = re.search(re.escape(running.base) + r"/simulator\?token=([\w-]+)", running.output())
        assert found, running.output()
        yield f"{running.base}\0{found.group(1)}"


def sim_url(demo_server: str) -> str:
    base, token = demo_server.split("\0")
    return f"{base}/simulator?token={token}"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshot_dir(tmp_path)


def api(demo_server: str, path: str):  # type: ignore[no-untyped-def]
    import httpx

    base, token = demo_server.split("\0")
    return httpx.get(base + path, headers={"X-Simulator-Token": token})


def send(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#text", text)
    page.press("#text", "Enter")


def test_chat_in_the_simulator(demo_server: str, browser, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(sim_url(demo_server))
    expect(page.locator(".person")).to_have_count(12)  # 11 bound demo people and the 新用户
    page.click('.person[data-name="张老师"]')
    expect(page.locator("#who-name")).to_have_text("张老师")

    send(page, "帮助")
    reply = page.locator('#messages .row.bot .bubble.reply').last
    expect(reply).to_contain_text("报修", timeout=10_000)
    expect(page.locator('#messages .row.mine .bubble').last).to_have_text("帮助")

    send(page, "报修 教学楼301 灯不亮")
    expect(page.locator('#messages .row.bot .bubble.reply').last).to_contain_text("BX1", timeout=10_000)
    # The electrician is assigned automatically; the push reaches the fake WeChat server, and the page
    # (polling every second) shows it in the feed and in 李师傅's chat.
    feed = page.locator(".feed-item").filter(has_text="李师傅")
    expect(feed.first).to_contain_text("BX1", timeout=15_000)
    expect(page.locator('.person[data-name="李师傅"] .badge')).to_have_text("1")
    page.click('.person[data-name="李师傅"]')
    expect(page.locator("#messages .card").first).to_contain_text("BX1")
    send(page, "接单 BX1")
    expect(page.locator('#messages .row.bot .bubble.reply').last).to_contain_text("BX1", timeout=10_000)
    page.click('.person[data-name="张老师"]')  # the reporter is told the worker started
    expect(page.locator("#messages .card").last).to_contain_text("BX1", timeout=15_000)
    page.screenshot(path=str(shots / "simulator-desktop.png"))
    page.close()


def test_simulator_on_a_phone(demo_server: str, browser, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                              has_touch=True)
    page = ctx.new_page()
    page.goto(sim_url(demo_server))
    # On a phone the list of people opens as a drawer over the chat.
    expect(page.locator("#people-panel")).to_be_in_viewport()
    page.click('.person[data-name="王小明妈妈"]')
    expect(page.locator("#people-panel")).not_to_be_in_viewport()
    send(page, "我的信息")
    expect(page.locator('#messages .row.bot .bubble.reply').last).to_contain_text("王小明", timeout=10_000)
    send(page, "帮助")
    expect(page.locator('#messages .row.bot .bubble.reply').last).to_contain_text("请假", timeout=10_000)
    box = page.locator("#composer").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 391  # nothing wider than the phone
    page.screenshot(path=str(shots / "simulator-phone.png"))
    ctx.close()


def menu_names(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.strip() for t in page.locator("#menubar .menu-btn").all_inner_texts()]


def test_each_person_sees_their_roles_menu(demo_server: str, browser, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                              has_touch=True)
    page = ctx.new_page()
    page.goto(sim_url(demo_server))
    # The demo installed the role menus on its fake WeChat server and tagged everyone through the outbox: the
    # bar shows what WeChat would show this person.
    for name, first in [("王小明妈妈", ["请假", "我的请假"]), ("李师傅", ["我的任务"]), ("张老师", ["报修", "请假"]),
                        ("新用户", ["使用帮助"])]:
        person = page.locator(f'.person[data-name="{name}"]')
        expect(person).to_have_count(1)
        page.wait_for_timeout(400)  # the drawer's slide
        box = person.bounding_box()
        if box is None or box["x"] + box["width"] <= 0 or box["x"] >= 390:
            page.click("#open-people")  # on a phone the list of people is a drawer
            page.wait_for_timeout(400)
        person.click()
        expect(page.locator("#menubar .menu-btn").first).to_have_text(first[0], timeout=15_000)
        assert menu_names(page)[:len(first)] == first, (name, menu_names(page))
        if name == "王小明妈妈":
            page.locator("#menubar .menu-btn", has_text="我的请假").click()  # a tap runs the command
            expect(page.locator("#messages .row.bot .bubble.reply").last).to_contain_text("请假", timeout=10_000)
            page.screenshot(path=str(shots / "simulator-parent-menu-phone.png"))
    ctx.close()


def test_new_user_button_and_push_times(demo_server: str, browser, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(sim_url(demo_server))
    before = 12  # 11 bound demo people and the first 新用户
    expect(page.locator(".person")).to_have_count(before)
    page.click("#new-user")
    expect(page.locator(".person")).to_have_count(before + 1)
    expect(page.locator("#who-name")).to_have_text(re.compile(r"^新用户\d+$"))
    first = page.locator("#who-name").inner_text()
    expect(page.locator("#messages .row.bot .bubble.reply").last).to_contain_text("绑定", timeout=10_000)  # welcome
    page.click("#new-user")  # another, with its own OpenID
    expect(page.locator(".person")).to_have_count(before + 2)
    expect(page.locator("#who-name")).not_to_have_text(first)
    send(page, "帮助")
    expect(page.locator("#messages .row.bot .bubble.reply").last).to_contain_text("绑定", timeout=10_000)
    openids = {p["openid"] for p in api(demo_server, "/simulator/api/people").json()["newcomers"]}
    assert len(openids) == before + 2 - 11  # the first 新用户 and the two made here

    page.click('.person[data-name="周老师"]')
    send(page, "报修 办公楼105 门锁坏了")
    reply = page.locator("#messages .row.bot .bubble.reply").last
    expect(reply).to_contain_text("BX", timeout=10_000)
    ref = re.search(r"BX\d+", reply.inner_text()).group(0)  # type: ignore[union-attr]
    card = page.locator(".feed-item", has_text=f"新报修 {ref}").first
    expect(card).to_be_visible(timeout=15_000)
    events = api(demo_server, "/simulator/api/events").json()["events"]
    push = next(e for e in events if e["kind"] == "push" and f"新报修 {ref}" in e["text"])
    assert re.fullmatch(r"\d\d:\d\d:\d\d", push["time"])
    expect(card.locator(".fi-head")).to_contain_text(push["time"])  # when the outbox sent it
    page.screenshot(path=str(shots / "simulator-new-user.png"))
    page.close()
