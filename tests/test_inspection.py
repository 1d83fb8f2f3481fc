"""Inspections 巡查 (XC) end to end: QR scans through the real webhook, rounds, findings → repairs, the jobs'
reminders and missed-checkpoint alerts (once, however often they run), scan-to-report, certificates, XLSX."""

from __future__ import annotations

import io
import threading
from datetime import date, datetime, time

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from jobs import inspection as insp_jobs
from storage import certificates, inspection
from storage.inspection import InspectionFinding, InspectionVisit
from tests.conftest import backend
from tests.school import openid_for

CHECKPOINTS = [
    ["编号", "名称", "位置", "类型", "检查项"],
    ["XF-101", "教学楼一楼灭火器", "教学楼一楼东", "灭火器", ""],
    ["PD-1", "配电间", "行政楼配电间", "配电间", ""],
    ["XM-1", "校门", "南校门", "巡查点", "门锁完好；照明正常"],
]


def setup_school(chat, rt, *, route: bool = True) -> None:  # type: ignore[no-untyped-def]
    chat.person("王门卫", "guard")
    chat.person("赵主任", "admin")
    chat.person("李师傅", "worker", categories=["电"])
    with rt.db.session() as s:
        n, errors = inspection.import_checkpoints(s, CHECKPOINTS, now=rt.clock.now())
        assert (n, errors) == (3, [])
        if route:
            inspection.save_route(s, name="晚间巡查", checkpoint_codes=["XF-101", "PD-1", "XM-1"], start=time(21),
                                  end=time(22), roles=["guard"], now=rt.clock.now())


def run_rounds(rt) -> str | None:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return insp_jobs.rounds(s, rt.clock.now())


def scan(chat, name: str, n: int) -> str:  # type: ignore[no-untyped-def]
    return chat.event(name, "SCAN", f"cp:{n}")


def visits(rt) -> list[InspectionVisit]:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        return list(s.exec(select(InspectionVisit).order_by(InspectionVisit.id)).all())


def test_round_done_by_scans_with_one_finding_that_opens_a_linked_repair(chat, rt, clock) -> None:  # type: ignore[no-untyped-def]
    setup_school(chat, rt)
    clock.set(datetime(2026, 12, 1, 21, 0))
    assert run_rounds(rt)
    push = chat.last_push("王门卫")
    assert "晚间巡查" in push and "共 3 个点位" in push
    assert run_rounds(rt) is None  # reminded once

    reply = scan(chat, "王门卫", 1)
    assert "【晚间巡查】已记录巡查 XC1：教学楼一楼灭火器" in reply
    assert "压力正常" in reply and "铅封完好" in reply and "「正常」" in reply and "「异常 情况说明」" in reply
    assert "XC1 教学楼一楼灭火器：正常，已记录" in chat.say("王门卫", "正常")

    clock.advance(minutes=10)
    assert "无杂物堆放" in scan(chat, "王门卫", 2)  # the 配电间 kind's default items
    reply = chat.say("王门卫", "异常 配电箱有焦糊味，电线发烫")
    assert "XC2 配电间：异常已记录" in reply and "已自动报修 BX1" in reply and "类别：电" in reply
    assert "BX1" in chat.last_push("李师傅")  # auto-assigned by category through the normal repair service
    assert "已收到第1张照片" in chat.image("王门卫", "m1")
    assert "报修 BX1 正在处理" in chat.say("王门卫", "完成")

    reply = scan(chat, "王门卫", 3)
    assert "门锁完好" in reply and "压力正常" not in reply  # its own items
    assert "本轮全部完成" in chat.say("王门卫", "正常")
    assert "已完成 3/3" in chat.say("王门卫", "巡查进度")

    with rt.db.session() as s:
        finding = inspection.finding_for_ticket(s, 1)  # ticket → finding
        assert finding is not None and finding.visit_id == 2 and finding.photos == 1
        f2 = s.exec(select(InspectionFinding)).one()  # finding → ticket
        assert f2.ticket_id == 1
        rows = inspection.ledger(s, inspection.LedgerFilter())
        assert [r.result_text for r in rows] == ["正常", "异常", "正常"]
        assert rows[1].handling == "配电箱有焦糊味，电线发烫；已报修 BX1（已派单）"
    detail = chat.say("赵主任", "查询 BX1")
    assert "行政楼配电间" in detail and "巡查 XC2 发现" in detail and "照片：1张" in detail

    clock.set(datetime(2026, 12, 1, 22, 0))
    run_rounds(rt)
    assert not any("漏检" in t for t in chat.pushes("王门卫") + chat.pushes("赵主任"))


def test_missed_checkpoints_told_once_to_the_person_and_the_admins(chat, rt, clock) -> None:  # type: ignore[no-untyped-def]
    setup_school(chat, rt)
    clock.set(datetime(2026, 12, 1, 21, 5))
    scan(chat, "王门卫", 1)  # the round exists from the scan even before the job reminds
    chat.say("王门卫", "正常")
    clock.set(datetime(2026, 12, 1, 22, 0, 30))

    def job() -> None:
        with rt.db.session() as s:
            insp_jobs.rounds(s, rt.clock.now())

    if backend() == "postgres":  # two workers at once, each in its own transaction
        threads = [threading.Thread(target=job) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    job()
    job()
    for name in ("王门卫", "赵主任"):
        missed = [t for t in chat.pushes(name) if "漏检" in t]
        assert len(missed) == 1, (name, missed)
        assert "2 个点位未巡查：配电间（PD-1）、校门（XM-1）" in missed[0] and "已完成 1/3" in missed[0]
    assert "负责人：王门卫" in [t for t in chat.pushes("赵主任") if "漏检" in t][0]
    assert not any("漏检" in t for t in chat.pushes("李师傅"))


def test_a_round_nobody_started_is_reported_whole_and_the_next_day_is_a_new_round(chat, rt, clock) -> None:  # type: ignore[no-untyped-def]
    setup_school(chat, rt)
    clock.set(datetime(2026, 12, 1, 23, 0))
    run_rounds(rt)
    assert "3 个点位未巡查" in [t for t in chat.pushes("王门卫") if "漏检" in t][0]
    clock.set(datetime(2026, 12, 5, 21, 10))  # a Saturday: not a school day, no round
    assert run_rounds(rt) is None
    assert "今天没有需要您负责的巡查" in chat.say("王门卫", "巡查进度")
    clock.set(datetime(2026, 12, 7, 21, 10))  # Monday
    run_rounds(rt)
    assert "巡查提醒" in chat.last_push("王门卫")
    assert "已完成 0/3" in chat.say("王门卫", "巡查进度")


def test_scan_to_report_for_a_teacher(chat, rt, clock) -> None:  # type: ignore[no-untyped-def]
    setup_school(chat, rt)
    chat.person("张老师", "teacher")
    with rt.db.session() as s:
        inspection.save_checkpoint(s, code="JX-301", name="教学楼301", kind="教室", now=rt.clock.now())
    reply = scan(chat, "张老师", 4)
    assert reply.startswith("教学楼301：请直接说明问题（文字、语音或照片）")
    assert visits(rt) == []
    reply = chat.say("张老师", "投影仪不亮了")
    assert "已报修 BX1：教学楼301，投影仪不亮了" in reply
    assert "BX1" in chat.say("张老师", "我的报修")
    # a photo works as the message too
    scan(chat, "张老师", 4)
    assert "已报修 BX2：教学楼301，（见照片）" in chat.image("张老师", "p1")
    assert visits(rt) == []


def test_text_fallback_and_extra_checks(chat, rt, clock) -> None:  # type: ignore[no-untyped-def]
    setup_school(chat, rt)
    clock.set(datetime(2026, 12, 1, 21, 0))
    reply = chat.say("王门卫", "巡查 xf-101")
    assert "【晚间巡查】已记录巡查 XC1：教学楼一楼灭火器" in reply
    assert "校门" in chat.say("王门卫", "巡查 南校门")
    assert "对应多个点位" not in chat.say("王门卫", "巡查 配电间")
    assert chat.say("王门卫", "巡查 体育馆") == "未找到 点位「体育馆」"
    assert "请先扫描点位上的二维码" in chat.say("赵主任", "正常")
    reply = scan(chat, "赵主任", 1)  # not responsible for this round: an extra check
    assert "临时检查" in reply
    assert "正常，已记录" in chat.say("赵主任", "正常")
    rows = visits(rt)
    assert [(v.via, v.round_id is None) for v in rows] == [("text", False), ("text", False), ("text", False),
                                                            ("scan", True)]


def test_unbound_follower_scanning_gets_the_binding_hint_and_nothing_is_recorded(chat, rt, wx) -> None:  # type: ignore[no-untyped-def]
    setup_school(chat, rt)
    stranger = openid_for("路人")
    assert "绑定 邀请码" in wx.event(stranger, "SCAN", "cp:1")
    assert "绑定 邀请码" in wx.event(stranger, "subscribe", "qrscene_cp:1")
    assert visits(rt) == []


def test_subscribe_with_a_checkpoint_scene_records_the_visit_of_a_bound_person(chat, rt, clock) -> None:  # type: ignore[no-untyped-def]
    setup_school(chat, rt)
    clock.set(datetime(2026, 12, 1, 21, 30))
    assert "已记录巡查 XC1" in chat.event("王门卫", "subscribe", "qrscene_cp:2")
    assert "已停用或不存在" in scan(chat, "王门卫", 99)


def test_certificate_reminders_30_and_7_days_before_expiry_once_each(chat, rt, clock) -> None:  # type: ignore[no-untyped-def]
    chat.person("赵主任", "admin")
    chat.person("刘阿姨", "worker")  # bound canteen staff
    with rt.db.session() as s:
        n, errors = certificates.import_rows(s, [["姓名", "证照类型", "编号", "有效期至"],
                                                 ["刘阿姨", "健康证", "JK-001", "2026-12-31"],
                                                 ["陈师傅", "", "", "2027/06/30"],  # never binds
                                                 ["", "健康证", "", "2027-01-01"],
                                                 ["周师傅", "健康证", "", "明年"]], now=rt.clock.now())
        assert n == 2 and errors == ["第4行：需要 姓名,证照类型,编号,有效期至（类型可空，默认健康证）",
                                     "第5行：「明年」不是日期（应为 2027-03-31）"]

    def job() -> None:
        with rt.db.session() as s:
            insp_jobs.certificate_expiry(s, rt.clock.now())

    job()
    job()
    assert [t for t in chat.pushes("刘阿姨") if "证照到期" in t] == [
        "证照到期提醒：您的健康证（JK-001）将于30 天后（2026-12-31）到期。请尽快复查换证；健康证过期不得从事食堂工作。"]
    assert len([t for t in chat.pushes("赵主任") if "刘阿姨的健康证" in t]) == 1
    clock.set(datetime(2026, 12, 24, 9, 0))
    job()
    job()
    mine = [t for t in chat.pushes("刘阿姨") if "证照到期" in t]
    assert len(mine) == 2 and "7 天后" in mine[1]
    assert len([t for t in chat.pushes("赵主任") if "刘阿姨的健康证" in t]) == 2
    clock.set(datetime(2027, 1, 2, 9, 0))
    with rt.db.session() as s:
        assert [r.person for r in certificates.expired(s, date(2027, 1, 2))] == ["刘阿姨"]


def test_checkpoint_import_reports_bad_rows_and_keeps_good_ones(rt) -> None:  # type: ignore[no-untyped-def]
    with rt.db.session() as s:
        n, errors = inspection.import_checkpoints(s, [
            ["XF-1", "灭火器1", "一楼", "灭火器"],
            ["", "没有编号"],
            ["XF-1", "重复"],
            ["坏 编号", "名称"],
            ["XF-2", "灭火器2", "二楼", "灭火器", "压力正常；在有效期"],
        ], now=rt.clock.now())
        assert n == 2
        assert errors == ["第2行：需要 编号,名称（位置、类型、检查项可选）", "第3行：编号 XF-1 与第1行重复",
                          "第4行：点位编号「坏 编号」只能用字母、数字、- 和 _"]
        cps = inspection.all_checkpoints(s)
        assert [c.item_list() for c in cps] == [["压力正常", "铅封完好", "在有效期", "无遮挡"],
                                                ["压力正常", "在有效期"]]


def test_xlsx_is_laid_out_like_the_paper_form(chat, rt, clock) -> None:  # type: ignore[no-untyped-def]
    setup_school(chat, rt)
    clock.set(datetime(2026, 11, 30, 21, 5))
    scan(chat, "王门卫", 1)
    chat.say("王门卫", "正常")
    clock.set(datetime(2026, 12, 1, 21, 10))
    scan(chat, "王门卫", 2)
    chat.say("王门卫", "异常 配电柜门锁坏了")
    clock.advance(minutes=5)
    scan(chat, "王门卫", 3)
    with rt.db.session() as s:
        data = inspection.export_xlsx(inspection.ledger(s, inspection.LedgerFilter()), inspection.open_findings(s))
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["2026年11月", "2026年12月", "未整改问题"]
    nov, dec, open_ = wb["2026年11月"], wb["2026年12月"], wb["未整改问题"]
    assert nov["A1"].value == "消防巡查记录表（2026年11月）"
    assert [c.value for c in nov[2]] == ["日期", "时间", "部位", "情况", "发现问题及处理", "巡查人"]
    assert [c.value for c in nov[3]] == ["2026-11-30", "21:05", "教学楼一楼灭火器（教学楼一楼东）", "正常", None, "王门卫"]
    assert nov.max_row == 3
    assert [c.value for c in dec[3]] == ["2026-12-01", "21:10", "配电间（行政楼配电间）", "异常",
                                         "配电柜门锁坏了；已报修 BX1（已派单）", "王门卫"]
    assert [c.value for c in dec[4]] == ["2026-12-01", "21:15", "校门（南校门）", "未反馈", None, "王门卫"]
    assert dec.max_row == 4
    assert [c.value for c in open_[3]] == ["2026-12-01", "配电间（行政楼配电间）", "配电柜门锁坏了", "BX1", "已派单"]


@pytest.mark.parametrize("when, expected", [
    (date(2026, 12, 1), True), (date(2026, 12, 5), False), (date(2027, 1, 1), False),
])
def test_school_day_routes_follow_the_calendar(when: date, expected: bool) -> None:
    route = inspection.InspectionRoute(name="r", start=time(8), end=time(9), created_at=datetime(2026, 1, 1))
    assert inspection.runs_on(route, when) is expected
    monthly = inspection.InspectionRoute(name="m", schedule=inspection.MONTHLY, schedule_day=1, start=time(8),
                                         end=time(9), created_at=datetime(2026, 1, 1))
    assert inspection.runs_on(monthly, date(2027, 1, 4))  # 1 Jan is 元旦: moved to the next school day
    assert not inspection.runs_on(monthly, date(2027, 1, 1))


def test_builtin_routes_from_the_term_calendar(chat, rt, clock) -> None:  # type: ignore[no-untyped-def]
    from jobs.term_config import Config

    setup_school(chat, rt, route=False)
    cfg = Config(term_start=date(2027, 2, 22), term_end=date(2027, 7, 2))
    with rt.db.session() as s:
        text = insp_jobs.sync_builtin_routes(s, cfg, rt.clock.now())
        again = insp_jobs.sync_builtin_routes(s, cfg, rt.clock.now())
        assert text == again and len(inspection.all_routes(s)) == 4
    assert "巡查路线「晚间巡查」：每个上课日 21:00–22:00，1 个点位，门卫负责" in text
    assert "巡查路线「每日消防器材检查」：每个上课日 08:00–09:00，1 个点位，门卫负责" in text
    assert "巡查路线「每月消防检查」：每月1日（遇节假日顺延） 09:00–12:00，1 个点位，后勤管理员负责" in text
    assert "巡查路线「每月财产检查」：还没有财产等点位，未建立" in text
    assert "巡查路线「开学前食品与饮用水检查」：还没有食堂/饮用水等点位，未建立" in text
    assert "巡查路线「开学安全大检查」：2027-02-22 09:00–17:00，1 个点位，后勤管理员负责" in text
    clock.set(datetime(2026, 12, 1, 8, 0))
    run_rounds(rt)
    assert "每日消防器材检查" in chat.last_push("王门卫") and "教学楼一楼灭火器" in chat.last_push("王门卫")
