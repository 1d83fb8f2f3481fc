"""The admin console in a real headless browser, against the real server (`houqin serve`) as its own process.

The server runs on a free port against a database seeded here (an admin and a leader with passwords, workers,
repairs, visitors, a leave slip, reminders, the duty rota): a temporary SQLite file, or in the PostgreSQL pass
(TEST_DB=postgres TEST_KV=redis) a scratch schema of its own in the PostgreSQL test database, and the test Redis. Needs Debian's chromium
(/usr/bin/chromium, installed by .ci/run): without it these tests fail, they do not skip. Screenshots go to
$HOUQIN_SCREENSHOTS when set (docs/console-*.png are made with HOUQIN_SCREENSHOTS=docs), else to a temporary
directory.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from tests.browser import chromium, houqin, screenshot_dir
from tests.conftest import PG_URL, REDIS_URL, backend, kv_backend
from tests.support import scratch_schema

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SECRET = "browser-test-secret-0123456789"
ADMIN_PW = "admin-pass-123"
LEADER_PW = "leader-pass-123"


def seed(url: str, now: datetime) -> None:
    """A small school with a morning's worth of records, written through the domain services."""
    from storage import duty, leave, people, reminder, repair, visitor
    from storage.console_users import set_password
    from storage.db import Database
    from storage.visitor.parse import VisitorLine

    db = Database(url)
    db.migrate()

    def person(s, name: str, *roles: str, bound: bool = True, **kw):  # type: ignore[no-untyped-def]
        p = people.create_person(s, name, list(roles), now=now - timedelta(days=30), **kw)
        if bound:
            p.openid, p.bound_at = f"o-{p.id}-seed", now - timedelta(days=29)
        s.add(p)
        s.flush()
        return people.actor_for(s, p)

    with db.session() as s:
        admin = person(s, "刘主任", "admin")
        leader = person(s, "孙校长", "leader")
        teacher = person(s, "王老师", "teacher")
        person(s, "陈老师", "teacher", class_name="七(3)班")
        person(s, "李师傅", "worker")
        person(s, "张师傅", "worker")
        guard = person(s, "李门卫", "guard")
        person(s, "赵老师", "teacher", bound=False)
        people.new_invite(s, s.get(people.Person, 8), now=now - timedelta(hours=1))  # type: ignore[arg-type]
        set_password(s, "刘主任", ADMIN_PW)
        set_password(s, "孙校长", LEADER_PW)
        s.flush()
        for hours, place, text, urgent in [
            (75, "实验楼2楼", "走廊灯管闪烁", False),
            (26, "教学楼301", "投影仪无法开机", False),
            (5, "食堂后厨", "水管漏水，地面积水", True),
            (3, "办公楼105", "门锁坏了，关不上", False),
            (1, "操场东侧", "篮球架螺丝松动", False),
        ]:
            repair.create_ticket(s, teacher, place, text, now=now - timedelta(hours=hours), urgent=urgent)
        repair.assign(s, admin, 1, "张师傅", now=now - timedelta(hours=70))
        worker = people.actor_for(s, people.find_people(s, "张师傅")[0])
        repair.take(s, worker, 1, now=now - timedelta(hours=69))
        repair.assign(s, admin, 2, "李师傅", now=now - timedelta(hours=20))
        secret = SECRET
        for minutes, name, phone, purpose, host in [
            (150, "张三", "13812341111", "送教学材料", "王老师"),
            (40, "刘女士", "13900001234", "家长会咨询", "陈老师"),
        ]:
            visitor.check_in(s, guard, VisitorLine(name=name, phone=phone, purpose=purpose, host=host),
                             now=now - timedelta(minutes=minutes), secret_key=secret)
        people.import_students(s, [["2024001", "李明", "七(3)班"], ["2024002", "周晓", "七(3)班"]])
        student = s.exec(select(people.Student).where(people.Student.student_no == "2024002")).one()
        parent = person(s, "周晓家长", "parent", student_nos=["2024002"])
        leave.request_leave(s, parent, student, now + timedelta(hours=3), now + timedelta(hours=5), "看牙医",
                            now=now - timedelta(minutes=20))
        reminder.create(s, admin, now + timedelta(hours=2), "检查消防器材并填写记录", ["role:guard"], now=now,
                        needs_receipt=True, target_label="@门卫")
        reminder.create(s, leader, now + timedelta(days=1), "食堂管理委员会会议", ["all"], now=now,
                        target_label="@全体")
        duty.assign(s, now.date(), people.find_people(s, "孙校长")[0], now=now - timedelta(days=3), source="import")
        duty.assign(s, now.date() + timedelta(days=6), people.find_people(s, "孙校长")[0], now=now, source="import")
        from storage import outbox

        failed = outbox.enqueue(s, 3, "repair", "您的报修 BX3 已派给李师傅维修。", now=now - timedelta(minutes=30))
        failed.state, failed.errcode, failed.last_error = outbox.FAILED, 43004, "对方已取消关注"
    db.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of `houqin serve` on a free port against a seeded database."""
    from storage.clock import Clock
    from storage.kv import RedisKV

    data = tmp_path_factory.mktemp("console-browser")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "HOUQIN_CONFIG")}
    with ExitStack() as stack:
        url = stack.enter_context(scratch_schema(PG_URL, f"houqin_browser_{os.getpid()}")) if backend() == "postgres" else f"sqlite:///{data / 'houqin.db'}"
        if kv_backend() == "redis":
            kv = RedisKV(REDIS_URL)  # the server's own prefix (houqin:); emptied before and after
            kv.flush()
            stack.callback(kv.flush)
            env["REDIS_URL"] = REDIS_URL
        seed(url, Clock("Asia/Shanghai").now().replace(second=0, microsecond=0))
        env.update(DATABASE_URL=url, SECRET_KEY=SECRET, SCHEDULER="off", SENDER="off", HOUQIN_ENV="development",
                   WECHAT_API_BASE_URL="http://127.0.0.1:9", SCHOOL_NAME="示例中学")
        running = stack.enter_context(houqin("serve", data=data, cwd=data, env=env))
        yield running.base, url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return screenshot_dir(tmp_path)


def log_in(page, base: str, name: str, password: str) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page.goto(base + "/admin")
    expect(page).to_have_url(re.compile(re.escape(base) + r"/admin/login\?next=(/|%2F)admin$"))
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("h1.page")).to_contain_text("今日概况")


def ticket(url: str, n: int):  # type: ignore[no-untyped-def]
    from storage.db import Database
    from storage.repair import RepairHistory, RepairTicket

    db = Database(url)
    try:
        with db.session() as s:
            t = s.get(RepairTicket, n)
            history = s.exec(select(RepairHistory).where(RepairHistory.ticket_id == n)).all()
            return t, list(history)
    finally:
        db.dispose()


def test_admin_logs_in_filters_assigns_and_exports(server, browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    base, url = server
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = ctx.new_page()
    try:
        page.goto(base + "/admin/login")
        page.fill("input[name=name]", "刘主任")
        page.fill("input[name=password]", "wrong-password")
        page.click("button[type=submit]")
        expect(page.locator(".flash.error")).to_contain_text("姓名或密码错误")

        log_in(page, base, "刘主任", ADMIN_PW)
        tiles = page.locator(".tiles")
        expect(tiles).to_contain_text("未完成报修")
        expect(tiles.locator("a.tile").first.locator(".num")).to_have_text("5")
        expect(page.locator("#repairs-panel")).to_contain_text("食堂后厨")
        expect(page.locator("body")).to_contain_text("在校访客")
        expect(page.locator("body")).to_contain_text("138****1111")
        expect(page.locator("body")).to_contain_text("孙校长")  # today's duty leader
        expect(page.locator("body")).to_contain_text("检查消防器材")
        expect(page.locator("body")).to_contain_text("对方已取消关注")

        page.click("nav.tabs >> text=报修")
        expect(page.locator("h1.page")).to_contain_text("共 5 条")
        page.fill("input[name=q]", "水管")
        page.click("form.filters button[type=submit]")
        expect(page.locator("h1.page")).to_contain_text("共 1 条")
        expect(page.locator("table.table tbody tr")).to_have_count(1)
        expect(page.locator("table.table")).to_contain_text("BX3")
        page.click("text=清除")
        page.select_option("select[name=state]", "待派单")
        page.click("form.filters button[type=submit]")
        expect(page.locator("h1.page")).to_contain_text("共 3 条")

        row = page.locator("table.table tbody tr", has_text="BX4")
        row.locator("select[name=worker]").select_option("李师傅")
        row.locator("button", has_text="派单").click()
        expect(page.locator(".flash.ok")).to_contain_text("已将 BX4 派给李师傅")
        expect(page.locator("h1.page")).to_contain_text("共 2 条")  # still filtered on 待派单: BX4 has left
        t, history = ticket(url, 4)
        assert (t.state, t.assignee_id) == ("已派单", 5)
        assert history[-1].action == "派单" and history[-1].actor_id == 1

        page.goto(base + "/admin/repairs/BX4")
        expect(page.locator(".timeline")).to_contain_text("派给李师傅")

        page.goto(base + "/admin/repairs")
        with page.expect_download() as info:
            page.click("a.export")
        download = info.value
        assert download.suggested_filename.endswith(".xlsx")
        path = tmp_path / "repairs.xlsx"
        download.save_as(path)
        rows = list(load_workbook(path).active.iter_rows(values_only=True))
        assert rows[0][:8] == ("编号", "报修时间", "报修人", "地点", "描述", "类别", "紧急", "状态")
        by_ref = {r[0]: r for r in rows[1:]}
        assert sorted(by_ref) == ["BX1", "BX2", "BX3", "BX4", "BX5"]
        assert by_ref["BX4"][7] == "已派单" and by_ref["BX4"][8] == "李师傅"
        assert by_ref["BX3"][6] == "是" and by_ref["BX1"][7] == "维修中"

        page.goto(base + "/admin/export")
        with page.expect_download() as info:
            page.locator("section.card", has_text="访客台账").locator("button").click()
        data = io.BytesIO(Path(info.value.path()).read_bytes())
        visitors = list(load_workbook(data).active.iter_rows(values_only=True))
        assert {r[2] for r in visitors[1:]} == {"138****1111", "139****1234"}
        assert "13812341111" not in repr(visitors)
    finally:
        ctx.close()


def test_leader_sees_but_cannot_change(server, browser) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    base, url = server
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    try:
        log_in(page, base, "孙校长", LEADER_PW)
        expect(page.locator(".who")).to_contain_text("校领导（只读）")
        page.goto(base + "/admin/repairs")
        expect(page.locator("table.table")).to_contain_text("BX5")
        expect(page.locator("form[action$='/assign']")).to_have_count(0)
        page.goto(base + "/admin/visitors")
        expect(page.locator("table.table")).to_contain_text("张三")
        expect(page.locator("form[action$='/reveal']")).to_have_count(0)
        page.goto(base + "/admin/people")
        expect(page.locator("form[action='/admin/people/invite']")).to_have_count(0)
        # Forging the form anyway, with the leader's own valid CSRF token: refused by the server.
        status = page.evaluate("""async () => {
            const csrf = document.querySelector('input[name=csrf]').value;
            const body = new URLSearchParams({csrf, worker: '张师傅'});
            const r = await fetch('/admin/repairs/BX5/assign', {method: 'POST', body});
            return [r.status, await r.text()];
        }""")
        assert status[0] == 403 and "修改仅限后勤管理员" in status[1]
        t, _ = ticket(url, 5)
        assert (t.state, t.assignee_id) == ("待派单", None)
        with page.expect_download() as info:  # reading includes exports
            page.goto(base + "/admin/export")
            page.locator("section.card", has_text="报修台账").locator("button").click()
        assert info.value.suggested_filename.endswith(".xlsx")
    finally:
        ctx.close()


def test_screenshots_at_phone_and_desktop_width(server, browser, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    base, _ = server
    for label, viewport, extra in [
        ("desktop", {"width": 1280, "height": 860}, {}),
        ("phone", {"width": 390, "height": 844}, {"device_scale_factor": 2, "is_mobile": True, "has_touch": True}),
    ]:
        ctx = browser.new_context(viewport=viewport, locale="zh-CN", **extra)
        page = ctx.new_page()
        missing: list[str] = []
        page.on("response", lambda r, seen=missing: seen.append(r.url) if r.status == 404 else None)
        try:
            log_in(page, base, "刘主任", ADMIN_PW)
            # Every section reachable at a glance: at phone width the tabs wrap, none hides off-screen.
            for tab in page.locator("nav.tabs a").all():
                box = tab.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (
                    f"tab {tab.inner_text()} is off-screen at {label} width: {box}")
            for name in ("黑名单", "消息", "导出"):
                expect(page.locator("nav.tabs a", has_text=name)).to_be_in_viewport()
            for name, path, ready in [("dashboard", "/admin", "#repairs-panel"),
                                      ("repairs", "/admin/repairs", "table.table")]:
                page.goto(base + path)
                expect(page.locator(ready)).to_be_visible()
                page.evaluate("document.fonts.ready")
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], f"{name} overflows sideways at {label} width: {width}px"
                page.screenshot(path=str(shots / f"console-{name}-{label}.png"), full_page=label == "desktop")
            assert not missing, f"404s at {label} width: {missing}"  # the favicon among them, before
        finally:
            ctx.close()
