"""The demo school's checkpoints and routes, and the simulator's scan buttons: a SCAN event through the real
webhook, as a WeChat scan of the checkpoint's QR code would send it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.runtime import Runtime
from bot.sandbox import demo
from storage import inspection
from tests.test_demo import SIM_TOKEN


@pytest.fixture
def sim(client: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    with rt.db.session() as s:
        demo.build(s, rt.clock.now())
    monkeypatch.setenv("HOUQIN_SIMULATOR", "1")
    monkeypatch.setenv("HOUQIN_SIMULATOR_TOKEN", SIM_TOKEN)
    client.headers["X-Simulator-Token"] = SIM_TOKEN
    return client


def test_simulator_scans_a_checkpoint_through_the_webhook(sim: TestClient, rt: Runtime) -> None:
    cps = sim.get("/simulator/api/checkpoints").json()["checkpoints"]
    assert {"key": "cp:7", "code": "JS-301", "name": "教学楼301"} in cps and len(cps) == len(demo.CHECKPOINTS)
    guard = demo.demo_openid("孙师傅")
    data = sim.post("/simulator/api/send", json={"openid": guard, "type": "scan", "key": "cp:4",
                                                 "label": "南校门（XC-01）"}).json()
    assert data["status"] == 200 and data["sent"]["text"] == "[扫码] 南校门（XC-01）"
    assert "已记录巡查 XC1：南校门" in data["reply"] and "临时检查" in data["reply"]
    teacher = demo.demo_openid("张老师")
    data = sim.post("/simulator/api/send", json={"openid": teacher, "type": "scan", "key": "cp:7"}).json()
    assert data["reply"].startswith("教学楼301：请直接说明问题")
    data = sim.post("/simulator/api/send", json={"openid": teacher, "text": "窗户关不上"}).json()
    assert "已报修 BX1：教学楼301，窗户关不上" in data["reply"]
    bad = sim.post("/simulator/api/send", json={"openid": teacher, "type": "scan", "key": "invite_X"})
    assert bad.status_code == 400
    with rt.db.session() as s:
        assert inspection.count_visits(s) == 1


def test_demo_school_gets_checkpoints_and_builtin_routes(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    url, school = demo.create(tmp_path, clock.now())
    assert school is not None
    assert any("巡查点位：9 个" in n for n in school.notes)
    assert any("巡查路线：" in n and "晚间巡查" in n and "每日消防器材检查" in n for n in school.notes), school.notes
