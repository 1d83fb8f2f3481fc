"""Checkpoint QR codes and the label sheet: `houqin checkpoints import|qr` and `houqin certs import` on the CLI,
the QR created through WECHAT_API_BASE_URL (the fake WeChat server), the PDF rendered to PNG by poppler and its
QR codes decoded back to the checkpoints' scenes."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date, datetime
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli import _load_plugins, app
from bot.sandbox.fakewechat import QRCODE_PATH, SHOWQRCODE_PATH
from storage import certificates, inspection
from storage.people import Person
from tests.browser import screenshot_dir
from tests.conftest import APP_ID, APP_SECRET

runner = CliRunner()
_load_plugins()


@pytest.fixture
def cli_env(db, database_url, fake_wechat, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("WECHAT_API_BASE_URL", fake_wechat.base_url)
    monkeypatch.setenv("WECHAT_APP_ID", APP_ID)
    monkeypatch.setenv("WECHAT_APP_SECRET", APP_SECRET)
    monkeypatch.delenv("REDIS_URL", raising=False)
    return db


def test_checkpoints_import_gb18030_reports_bad_rows_by_line(cli_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "点位.csv"
    f.write_bytes("编号,名称,位置,类型,检查项\nXF-101,教学楼一楼灭火器,教学楼一楼东,灭火器,\n,没有编号,,,\n"
                  "PD-1,配电间,行政楼,配电间,门锁完好；无异味\n".encode("gb18030"))
    result = runner.invoke(app, ["checkpoints", "import", str(f)])
    assert result.exit_code == 0, result.output
    assert "第3行：需要 编号,名称" in result.output and "导入 2 个点位，1 行有误" in result.output
    listed = runner.invoke(app, ["checkpoints", "list"]).output
    assert "XF-101\t教学楼一楼灭火器\t教学楼一楼东\t灭火器\t压力正常；铅封完好；在有效期；无遮挡" in listed
    assert "PD-1\t配电间\t行政楼\t配电间\t门锁完好；无异味" in listed


def test_certs_import_creates_unbound_people(cli_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "证照.csv"
    f.write_text("姓名,证照类型,编号,有效期至\n刘阿姨,健康证,JK-1,2027-03-31\n陈师傅,,,2026/12/20\n王五,健康证,,不知道\n",
                 encoding="utf-8-sig")
    result = runner.invoke(app, ["certs", "import", str(f)])
    assert result.exit_code == 0, result.output
    assert "第4行：「不知道」不是日期" in result.output and "导入 2 张证照，1 行有误" in result.output
    with cli_env.session() as s:
        rows = certificates.listing(s, date(2026, 12, 1))
        assert [(r.person, r.cert.type, r.status) for r in rows] == [("陈师傅", "健康证", "19 天后到期"),
                                                                     ("刘阿姨", "健康证", "有效")]
        assert all(s.get(Person, r.cert.person_id).openid is None for r in rows)  # type: ignore[union-attr]


def test_qr_labels_through_the_api_render_and_decode_back_to_the_scenes(cli_env, fake_wechat, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with cli_env.session() as s:
        inspection.import_checkpoints(s, [["XF-101", "教学楼一楼灭火器", "教学楼一楼东", "灭火器"],
                                          ["PD-1", "行政楼配电间", "", "配电间"]], now=datetime(2026, 12, 1))
    out = tmp_path / "labels.pdf"
    result = runner.invoke(app, ["checkpoints", "qr", "--out", str(out)])
    assert result.exit_code == 0, result.output
    creates = fake_wechat.calls(QRCODE_PATH)
    assert [c.body for c in creates] == [
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": f"cp:{n}"}}} for n in (2, 1)]
    assert all(c.access_token for c in creates)  # through the API with the token
    assert len(fake_wechat.calls(SHOWQRCODE_PATH)) == 2
    with cli_env.session() as s:
        assert all(cp.qr_ticket for cp in s.exec(select(inspection.Checkpoint)).all())
    # a second sheet reuses the cached tickets
    assert runner.invoke(app, ["checkpoints", "qr", "--out", str(out), "--code", "xf-101"]).exit_code == 0
    assert len(fake_wechat.calls(QRCODE_PATH)) == 2
    result = runner.invoke(app, ["checkpoints", "qr", "--out", str(out)])
    assert result.exit_code == 0

    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True, check=True).stdout
    assert any("WenQuanYi" in line and "yes yes yes" in line for line in fonts.splitlines()), fonts  # embedded
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True, check=True).stdout
    for word in ("教学楼一楼灭火器", "行政楼配电间", "编号 XF-101", "编号 PD-1", "微信扫一扫 巡查/报修"):
        assert word in text
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(out), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == 1
    png = Image.open(pages[0])
    assert png.size == (1241, 1754)  # A4 at 150 dpi
    urls = [b.text for b in zxingcpp.read_barcodes(png) if b.format == zxingcpp.BarcodeFormat.QRCode]
    assert sorted(fake_wechat.scene_of(u) or "" for u in urls) == ["cp:1", "cp:2"]
    shutil.copy(pages[0], screenshot_dir(tmp_path / "shots") / "checkpoint-labels.png")  # docs/ with HOUQIN_SCREENSHOTS


def test_qr_without_checkpoints_is_a_clear_error(cli_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["checkpoints", "qr", "--out", str(tmp_path / "x.pdf")])
    assert result.exit_code == 1 and "没有可打印的点位" in result.output
