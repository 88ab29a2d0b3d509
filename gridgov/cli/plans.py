"""``gridgov plan``: list, show, export and publish grid plans (网格调整方案)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gridgov.cli.common import TestOption, console, database_url, fail, transaction
from gridgov.errors import GridgovError
from gridgov.layers import audit, plans, unit_plans
from gridgov.layers.db import make_engine
from gridgov.layers.measures import Period
from gridgov.layers.registry import default_registry
from gridgov.settings import Settings

app = typer.Typer(
    help="网格调整方案 (grid plans): list, show, export, publish", no_args_is_help=True
)

STATUS_TITLES = {
    "draft": "草稿",
    "submitted": "已提交",
    "approved": "已批准",
    "published": "已发布",
}


def _period() -> Period:
    """Incidents of the last year, as the API's default."""
    end = datetime.now(plans.LOCAL_TIME).replace(hour=0, minute=0, second=0, microsecond=0)
    end += timedelta(days=1)
    return Period(end - timedelta(days=366), end)


@app.command("list")
def list_plans(
    status: Annotated[
        str | None, typer.Option(help="draft, submitted, approved, published")
    ] = None,
    township: Annotated[str | None, typer.Option(help="9-digit township code")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    test: TestOption = False,
) -> None:
    """方案列表 (plans, newest first)."""
    if status is not None and status not in STATUS_TITLES:
        raise typer.BadParameter("--status: draft, submitted, approved or published")
    try:
        with transaction(test) as conn:
            found = plans.search(conn, None, status, township, limit)
    except GridgovError as exc:
        raise fail(exc) from exc
    table = Table("编号", "名称", "区域", "状态", "创建人", "生效")
    for p in found:
        effective = p.row.get("effective_from")
        table.add_row(
            str(p.id),
            p.name,
            p.area_code,
            f"{STATUS_TITLES[p.status]} ({p.status})",
            p.author,
            effective.isoformat(timespec="minutes") if isinstance(effective, datetime) else "-",
        )
    console.print(table)


@app.command("show")
def show(
    plan_id: Annotated[int, typer.Argument(min=1)],
    as_json: Annotated[bool, typer.Option("--json", help="The plan as JSON.")] = False,
    test: TestOption = False,
) -> None:
    """一个方案：状态、变化的网格、编辑记录 (one plan: state, changed grids, edits)."""
    try:
        with transaction(test) as conn:
            plan = plans.get(conn, plan_id)
            items = plans.grids(conn, plan)
            log = plans.edit_log(conn, plan_id, 20)
    except GridgovError as exc:
        raise fail(exc) from exc
    body = {
        **plan.as_dict(),
        "grids": [
            {
                "code": g.version.code,
                "change": g.change,
                "households": g.version.attrs["households"],
            }
            for g in items
        ],
        "edits": log,
    }
    if as_json:
        typer.echo(json.dumps(body, ensure_ascii=False, default=str))
        return
    console.print(
        f"[bold]方案 {plan.id}[/]「{plan.name}」 {plan.area_code} "
        f"{STATUS_TITLES[plan.status]} ({plan.status}) · 创建人 {plan.author}"
    )
    table = Table("网格编码", "变化 (change)", "户数")
    for g in items:
        if g.change != "unchanged":
            table.add_row(g.version.code, g.change, str(g.version.attrs["households"] or "-"))
    console.print(table)
    for entry in log:
        console.print(f"{entry['at']}  {entry['actor']}  {entry['operation']}  {entry['reason']}")


@app.command("export")
def export(
    plan_id: Annotated[int, typer.Argument(min=1)],
    out: Annotated[Path, typer.Argument(help="The .gpkg file to write.")],
    test: TestOption = False,
) -> None:
    """导出 GeoPackage：方案网格、现行网格、迁移 (plan grids, today's grids, moves)."""
    try:
        with transaction(test) as conn:
            content = plans.export_gpkg(conn, plans.get(conn, plan_id), _period())
    except GridgovError as exc:
        raise fail(exc) from exc
    out.write_bytes(content)
    console.print(f"已写出 written: {out} ({len(content)} bytes)")


@app.command("publish")
def publish(
    plan_id: Annotated[int, typer.Argument(min=1)],
    effective_date: Annotated[
        str, typer.Option("--date", help="生效日期 YYYY-MM-DD (Beijing; today or later)")
    ],
    actor: Annotated[str, typer.Option(help="Who publishes (written to the edit log).")],
    test: TestOption = False,
) -> None:
    """发布已批准的方案 (publish an approved plan from a date)."""
    try:
        day = date.fromisoformat(effective_date)
    except ValueError:
        raise typer.BadParameter("--date: use YYYY-MM-DD") from None
    settings = Settings()
    try:
        moment = plans.effective_moment(day)
        with transaction(test) as conn:
            result = plans.publish(
                conn,
                default_registry(),
                plan_id,
                actor=actor,
                effective_from=moment,
                tolerance_m=settings.assign_tolerance_m,
                max_vertices=settings.grid_max_vertices,
            )
            audit.record(
                conn,
                audit.AuditEvent(
                    action="plan_publish",
                    outcome="ok",
                    username=actor,
                    target=f"plan/{plan_id}",
                    detail={
                        "via": "cli",
                        "effective_from": result.effective_from.isoformat(),
                        "edits": [e.edit_id for e in result.edits],
                    },
                ),
            )
    except GridgovError as exc:
        raise fail(exc) from exc
    console.print(
        f"方案 {plan_id} 已发布 published, in force from {result.effective_from.isoformat()}"
    )
    for e in result.edits:
        console.print(
            f"  {e.community_code}: edit {e.edit_id}, created {e.created}, retired {e.retired}, "
            f"incidents moved {e.incidents_moved}"
        )


__all__ = ["app"]


@app.command("apply-due")
def apply_due(test: TestOption = False) -> None:
    """施行到期的部门单元方案 (write unit plans whose effective day has come; the server
    does this by itself every GRIDGOV_UNIT_PLAN_POLL_S seconds)."""
    settings = Settings()
    engine = make_engine(settings, database_url(settings, test))
    try:
        done = unit_plans.apply_due(
            engine,
            default_registry(),
            tolerance_m=settings.assign_tolerance_m,
            max_vertices=settings.grid_max_vertices,
        )
    except GridgovError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()
    if not done:
        console.print("没有到期的部门单元方案 (no unit plan is due)")
    failed = False
    for applied in done:
        if applied.edit_id is not None:
            console.print(f"方案 {applied.plan_id} 已施行 applied: unit edit {applied.edit_id}")
        else:
            failed = True
            console.print(f"方案 {applied.plan_id} 无法施行，已退回为已批准: {applied.problem}")
    if failed:
        raise typer.Exit(1)
