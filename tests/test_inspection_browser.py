"""The console's inspection pages in headless Chromium against `houqin serve` (its own process, a seeded
temporary SQLite file): the dashboard panel, 巡查记录 filtered, 点位 added, 证照 with the expired one in red.
Screenshots go to $HOUQIN_SCREENSHOTS (docs/console-inspections-*.png are made with HOUQIN_SCREENSHOTS=docs)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest

from tests.browser import chromium, houqin, screenshot_dir

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SECRET = "browser-test-secret-0123456789"
ADMIN_PW = "admin-pass-123"


def seed(url: str, now: datetime) -> None:
    from storage import certificates, inspection, people
    from storage.console_users import set_password
    from storage.db import Database

    db = Database(url)
    db.migrate()
    day = now.replace(hour=21, minute=0)
    with db.session() as s:
        admin = people.create_person(s, "刘主任", ["admin"], now=now - timedelta(days=30))
        guard = people.create_person(s, "王门卫", ["guard"], now=now - timedelta(days=30))
        set_password(s, "刘主任", ADMIN_PW)
        inspection.import_checkpoints(s, [["XF-101", "教学楼一楼灭火器", "教学楼一楼东", "灭火器"],
                                          ["XF-102", "教学楼二楼灭火器", "教学楼二楼西", "灭火器"],
                                          ["PD-1", "配电间", "行政楼配电间", "配电间"],
                                          ["XM-1", "校门", "南校门", "巡查点"]], now=now - timedelta(days=10))
        inspection.save_route(s, name="晚间巡查", checkpoint_codes=["XF-101", "XF-102", "PD-1", "XM-1"],
                              start=time(0, 0), end=time(23, 59), roles=["guard"], now=now - timedelta(days=10))
        g = people.actor_for(s, guard)
        for i, (n, result) in enumerate([(1, "正常"), (3, "异常")]):
            cp = s.get(inspection.Checkpoint, n)
            assert cp is not None
            inspection.scan(s, g, cp, now=day - timedelta(hours=3) + timedelta(minutes=10 * i))
            if result == "正常":
                inspection.mark_normal(s, g, now=day - timedelta(hours=3))
            else:
                inspection.report_problem(s, g, "配电柜门锁坏了，柜内有灰尘", now=day - timedelta(hours=3, minutes=-10))
        certificates.save(s, name="刘阿姨", number="JK-2025-031", expires_on=(now - timedelta(days=3)).date(),
                          now=now)
        certificates.save(s, name="陈师傅", number="JK-2026-007", expires_on=(now + timedelta(days=20)).date(),
                          now=now)
        certificates.save(s, name="周阿姨", number="JK-2026-118", expires_on=(now + timedelta(days=200)).date(),
                          now=now)
        assert admin.id
    db.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from storage.clock import Clock

    data = tmp_path_factory.mktemp("inspection-browser")
    url = f"sqlite:///{data / 'houqin.db'}"
    seed(url, Clock("Asia/Shanghai").now().replace(second=0, microsecond=0))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "HOUQIN_CONFIG")}
    env.update(DATABASE_URL=url, SECRET_KEY=SECRET, SCHEDULER="off", SENDER="off", HOUQIN_ENV="development",
               WECHAT_API_BASE_URL="http://127.0.0.1:9", SCHOOL_NAME="示例中学")
    with houqin("serve", data=data, cwd=data, env=env) as running:
        yield running.base


def test_inspection_pages(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    shots = screenshot_dir(tmp_path)
    with chromium() as browser:
        ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto(server + "/admin")
        page.fill("input[name=name]", "刘主任")
        page.fill("input[name=password]", ADMIN_PW)
        page.click("button[type=submit]")
        panel = page.locator("#inspection-panel")
        expect(panel).to_contain_text("晚间巡查")
        expect(panel).to_contain_text("已查 2/4")
        expect(panel.locator("b.expired")).to_contain_text("刘阿姨 健康证")
        assert "rgb(" in panel.locator("b.expired").evaluate("e => getComputedStyle(e).color")
        assert panel.locator("b.expired").evaluate("e => getComputedStyle(e).color") != "rgb(0, 0, 0)"
        panel.screenshot(path=str(shots / "console-inspections-dashboard.png"))

        page.click("nav.tabs >> text=巡查")
        expect(page.locator("h1.page")).to_contain_text("共 2 条")
        page.select_option("select[name=result]", "异常")
        page.click("form.filters button[type=submit]")
        expect(page.locator("h1.page")).to_contain_text("共 1 条")
        expect(page.locator("table.table")).to_contain_text("配电柜门锁坏了")
        expect(page.locator("table.table")).to_contain_text("BX1")
        page.click("text=清除")
        page.screenshot(path=str(shots / "console-inspections-desktop.png"), full_page=True)

        page.click("nav.tabs >> text=点位")
        page.click("summary >> text=添加点位")
        page.fill("input[name=code]", "jx-301")
        page.fill("input[name=name]", "教学楼301")
        page.select_option("select[name=kind]", "教室")
        page.click("form.stack button[type=submit]")
        expect(page.locator(".flash.ok")).to_contain_text("已添加点位 JX-301 教学楼301")
        expect(page.locator("table.table")).to_contain_text("门窗关好")
        page.screenshot(path=str(shots / "console-checkpoints-desktop.png"), full_page=True)

        page.click("nav.tabs >> text=证照")
        expired = page.locator("table.table tbody tr.urgent")
        expect(expired).to_have_count(1)
        expect(expired).to_contain_text(re.compile(r"已过期 3 天"))
        page.screenshot(path=str(shots / "console-certificates-desktop.png"), full_page=True)
        ctx.close()
