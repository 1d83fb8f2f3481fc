"""Checkpoint QR labels: each checkpoint's permanent WeChat QR code (created once through the API, the ticket
kept on the checkpoint) and an A4 sheet of labels to print — QR, name, code, 「微信扫一扫 巡查/报修」 — with a
CJK font embedded, so the Chinese prints the same on any machine."""

from __future__ import annotations

import io
import os
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from sqlmodel import Session

from bot.wechat.api import WeChatAPI
from storage import inspection
from storage.errors import UserError
from storage.inspection import Checkpoint

FONT = "HouqinCJK"
# TrueType CJK fonts reportlab can embed (OpenType/CFF ones such as Noto CJK it cannot): Debian's
# fonts-wqy-zenhei first (scripts/services.sh installs it), then others a server may have. LABEL_FONT overrides.
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)
SCAN_HINT = "微信扫一扫 巡查/报修"
COLUMNS, ROWS = 3, 4  # 12 labels on an A4 page


def cjk_font_path() -> str:
    configured = os.environ.get("LABEL_FONT")
    for path in ([configured] if configured else []) + list(FONT_CANDIDATES):
        if path and Path(path).is_file():
            return path
    raise UserError("找不到可嵌入的中文字体：请安装 fonts-wqy-zenhei（apt-get install fonts-wqy-zenhei），"
                    "或用环境变量 LABEL_FONT 指定一个 TrueType 中文字体文件。")


def _register_font() -> None:
    if FONT in pdfmetrics.getRegisteredFontNames():
        return
    path = cjk_font_path()
    font = TTFont(FONT, path, subfontIndex=0) if path.lower().endswith(".ttc") else TTFont(FONT, path)
    pdfmetrics.registerFont(font)


def ensure_qr_codes(session: Session, api: WeChatAPI, checkpoints: list[Checkpoint]) -> int:
    """Create the permanent QR code of each checkpoint that has none yet (the ticket is cached on it).
    Returns how many were created."""
    created = 0
    for cp in checkpoints:
        if cp.qr_ticket:
            continue
        ticket, url = api.create_qr_scene(cp.scene)
        inspection.set_qr(session, cp, ticket, url)
        created += 1
    session.flush()
    return created


def qr_images(api: WeChatAPI, checkpoints: list[Checkpoint]) -> list[tuple[Checkpoint, bytes]]:
    out = []
    for cp in checkpoints:
        assert cp.qr_ticket, "ensure_qr_codes first"
        out.append((cp, api.qr_image(cp.qr_ticket)))
    return out


def _fit(c: canvas.Canvas, text: str, size: float, width: float) -> float:
    while size > 6 and pdfmetrics.stringWidth(text, FONT, size) > width:
        size -= 0.5
    return size


def label_sheet(labels: list[tuple[Checkpoint, bytes]], title: str = "") -> bytes:
    """An A4 PDF of labels, 3 × 4 a page, cut lines dotted."""
    if not labels:
        raise UserError("没有可打印的点位。先导入点位：houqin checkpoints import 点位.csv")
    _register_font()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    c.setTitle(title or "巡查点位二维码")
    page_w, page_h = A4
    margin = 10 * mm
    cell_w = (page_w - 2 * margin) / COLUMNS
    cell_h = (page_h - 2 * margin) / ROWS
    qr = min(cell_w, cell_h) - 26 * mm
    for i, (cp, png) in enumerate(labels):
        slot = i % (COLUMNS * ROWS)
        if i and slot == 0:
            c.showPage()
        col, row = slot % COLUMNS, slot // COLUMNS
        x0 = margin + col * cell_w
        y0 = page_h - margin - (row + 1) * cell_h
        c.setDash(2, 3)
        c.setLineWidth(0.4)
        c.rect(x0, y0, cell_w, cell_h)
        c.setDash()
        cx = x0 + cell_w / 2
        c.drawImage(ImageReader(io.BytesIO(png)), cx - qr / 2, y0 + cell_h - qr - 5 * mm, qr, qr)
        name_size = _fit(c, cp.name, 13, cell_w - 6 * mm)
        c.setFont(FONT, name_size)
        c.drawCentredString(cx, y0 + 14 * mm, cp.name)
        c.setFont(FONT, 9)
        c.drawCentredString(cx, y0 + 9 * mm, f"编号 {cp.code}" + (f" · {cp.kind}" if cp.kind else ""))
        c.setFont(FONT, 10)
        c.drawCentredString(cx, y0 + 4 * mm, SCAN_HINT)
    c.save()
    return buf.getvalue()


def build_labels(session: Session, api: WeChatAPI, checkpoints: list[Checkpoint]) -> bytes:
    """QR codes created where missing, images fetched through the API, the sheet rendered."""
    ensure_qr_codes(session, api, checkpoints)
    return label_sheet(qr_images(api, checkpoints))
