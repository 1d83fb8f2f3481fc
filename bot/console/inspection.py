"""Console pages for inspections 巡查 and certificates 证照: the 巡查记录 ledger (filters, XLSX laid out like the
paper 消防巡查记录表), checkpoints (add/edit, the label sheet), certificates (expired ones in red). The same
storage services as the chat commands and the CLI."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from bot.console.routes import ConsoleRoute, admin_action, admin_form, ledger_view, render, viewer, xlsx_response
from bot.labels import build_labels
from bot.wechat.api import WeChatAPI, WeChatAPIError
from storage import certificates, inspection, listing
from storage.errors import UserError

router = APIRouter(prefix="/admin", route_class=ConsoleRoute, include_in_schema=False)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 10 else None


def _ledger_filter(request: Request) -> inspection.LedgerFilter:
    p = request.query_params
    return inspection.LedgerFilter(
        route_id=_int(p.get("route")), checkpoint_id=_int(p.get("checkpoint")),
        person=(p.get("person") or "").strip()[:50], start=listing.parse_date(p.get("from")),
        end=listing.parse_date(p.get("to")), result=p.get("result") or "")


@router.get("/inspections", response_class=HTMLResponse)
def inspections(request: Request) -> Response:
    v = ledger_view(request, "inspectionvisit", "巡查", filters=_ledger_filter)
    with v.rt.db.session() as s:
        rows = inspection.ledger(s, v.f, limit=500)
        findings = inspection.open_findings(s)
        routes = inspection.all_routes(s)
        cps = inspection.all_checkpoints(s)
    return v.render("admin/inspections.html", rows=rows, routes=routes, checkpoints=cps, findings=findings,
                    active="inspections")


@router.get("/inspections.xlsx")
def inspections_xlsx(request: Request) -> Response:
    v = ledger_view(request, "inspectionvisit", "巡查", filters=_ledger_filter)
    with v.rt.db.session() as s:
        data = inspection.export_xlsx(inspection.ledger(s, v.f, limit=listing.EXPORT_LIMIT),
                                      inspection.open_findings(s), today=v.rt.clock.now().date())
    return xlsx_response(data, f"消防巡查记录表-{v.rt.clock.now():%Y%m%d}.xlsx")


@router.get("/checkpoints", response_class=HTMLResponse)
def checkpoints(request: Request) -> Response:
    user, rt = viewer(request, "checkpoint", "巡查点位")
    with rt.db.session() as s:
        cps = inspection.all_checkpoints(s)
        routes = [(r, inspection.describe_schedule(r), inspection.responsible_text(s, r),
                   inspection.stops(s, r.id)) for r in inspection.all_routes(s)]  # type: ignore[arg-type]
    edit = _int(request.query_params.get("edit"))
    editing = next((cp for cp in cps if cp.id == edit), None)
    return render(request, "admin/checkpoints.html", user=user, checkpoints=cps, routes=routes, editing=editing,
                  kinds=list(inspection.KIND_ITEMS), active="checkpoints")


@router.post("/checkpoints")
async def checkpoint_save(request: Request) -> Response:
    _, form = await admin_form(request)

    def act(s: Session, now: datetime) -> str:
        cp, created = inspection.save_checkpoint(
            s, code=form.get("code", ""), name=form.get("name", ""), location=form.get("location", ""),
            kind=form.get("kind", ""), items=form.get("items", ""), now=now, checkpoint_id=_int(form.get("id")),
            active=form.get("active", "on") == "on")
        return f"已{'添加' if created else '保存'}点位 {cp.code} {cp.name}。"

    return admin_action(request, "/admin/checkpoints", act)


@router.get("/checkpoints/labels.pdf")
def checkpoint_labels(request: Request) -> Response:
    _, rt = viewer(request, "checkpoint", "巡查点位")
    api = WeChatAPI(rt.settings, rt.kv)
    try:
        with rt.db.session() as s:
            pdf = build_labels(s, api, inspection.all_checkpoints(s, active_only=True))
    except WeChatAPIError as exc:
        raise UserError(f"微信接口调用失败：{exc.describe()}") from exc
    finally:
        api.close()
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": "inline; filename=checkpoint-labels.pdf"})


@router.get("/certificates", response_class=HTMLResponse)
def certificates_page(request: Request) -> Response:
    user, rt = viewer(request, "certificate", "证照")
    with rt.db.session() as s:
        rows = certificates.listing(s, rt.clock.now().date())
    return render(request, "admin/certificates.html", user=user, rows=rows, active="certificates")


@router.post("/certificates")
async def certificate_save(request: Request) -> Response:
    _, form = await admin_form(request)

    def act(s: Session, now: datetime) -> str:
        expires: date = certificates.parse_day(form.get("expires_on", ""))
        cert, created = certificates.save(s, name=form.get("name", ""), type_=form.get("type", ""),
                                          number=form.get("number", ""), expires_on=expires, now=now)
        return f"已{'添加' if created else '更新'}证照：{form.get('name', '').strip()} {cert.type}，有效期至 {cert.expires_on}。"

    return admin_action(request, "/admin/certificates", act)

