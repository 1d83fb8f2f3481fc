"""`houqin checkpoints import|list|qr`, `houqin routes list` and `houqin certs import|list`: inspection
checkpoints (点位), their QR label sheet, routes and people's certificates (证照)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import fail, import_csv, runtime
from bot.labels import build_labels
from bot.wechat.api import WeChatAPI, WeChatAPIError
from storage import certificates, inspection
from storage.errors import UserError

checkpoints_app = typer.Typer(help="巡查点位", no_args_is_help=True)
routes_app = typer.Typer(help="巡查路线", no_args_is_help=True)
certs_app = typer.Typer(help="证照（健康证等）", no_args_is_help=True)


@checkpoints_app.command("import")
def checkpoints_import(file: Path) -> None:
    """导入点位 CSV。

    列：编号,名称,位置,类型,检查项（后三列可空，检查项用；分隔）。错误的行按行号报告，其余照常导入。
    """
    import_csv(file, "个点位", lambda s, rows, now: inspection.import_checkpoints(s, rows, now=now))


@checkpoints_app.command("list")
def checkpoints_list() -> None:
    """列出点位。"""
    rt = runtime()
    with rt.db.session() as s:
        for cp in inspection.all_checkpoints(s):
            state = "" if cp.active else "（停用）"
            typer.echo(f"{cp.code}\t{cp.name}\t{cp.location}\t{cp.kind}\t{'；'.join(cp.item_list())}{state}")


@checkpoints_app.command("qr")
def checkpoints_qr(
    out: Annotated[Path, typer.Option("--out", "-o", help="输出的 PDF 文件")] = Path("labels.pdf"),
    code: Annotated[list[str] | None, typer.Option("--code", help="只打印这些编号（可重复）")] = None,
) -> None:
    """生成点位二维码标签（A4，可直接打印张贴）。

    二维码为微信永久二维码，首次生成后缓存。
    """
    rt = runtime()
    api = WeChatAPI(rt.settings, rt.kv)
    try:
        with rt.db.session() as s:
            cps = inspection.all_checkpoints(s, active_only=True)
            if code:
                wanted = {c.strip().upper() for c in code}
                cps = [cp for cp in cps if cp.code in wanted]
                missing = wanted - {cp.code for cp in cps}
                if missing:
                    fail("没有这些点位编号：" + "、".join(sorted(missing)))
            pdf = build_labels(s, api, cps)
    except UserError as exc:
        fail(exc.message)
    except WeChatAPIError as exc:
        fail(f"微信接口调用失败：{exc.describe()}")
    finally:
        api.close()
    out.write_bytes(pdf)
    typer.echo(f"已生成 {len(cps)} 个点位的二维码标签：{out}")


@routes_app.command("list")
def routes_list() -> None:
    """列出巡查路线。"""
    rt = runtime()
    with rt.db.session() as s:
        for r in inspection.all_routes(s):
            assert r.id is not None
            stops = "→".join(cp.code for cp in inspection.stops(s, r.id))
            typer.echo(f"{r.name}\t{inspection.describe_schedule(r)}\t{inspection.responsible_text(s, r)}\t{stops}")


@certs_app.command("import")
def certs_import(file: Path) -> None:
    """导入证照 CSV。

    列：姓名,证照类型,编号,有效期至（类型可空，默认健康证）。没有的人员自动建立（无需绑定微信）。
    """
    import_csv(file, "张证照", lambda s, rows, now: certificates.import_rows(s, rows, now=now))


@certs_app.command("list")
def certs_list() -> None:
    """列出证照和到期情况。"""
    rt = runtime()
    with rt.db.session() as s:
        for r in certificates.listing(s, rt.clock.now().date()):
            typer.echo(f"{r.person}\t{r.cert.type}\t{r.cert.number}\t{r.cert.expires_on:%Y-%m-%d}\t{r.status}")


def register(app: typer.Typer) -> None:
    app.add_typer(checkpoints_app, name="checkpoints")
    app.add_typer(routes_app, name="routes")
    app.add_typer(certs_app, name="certs")
