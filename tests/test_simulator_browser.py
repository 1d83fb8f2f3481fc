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
