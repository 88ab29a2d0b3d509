"""``gridgov optimise``: proposed grids for a community or township (网格优化方案).

Read-only: it prints the measures before and after and can write the proposal to a
GeoPackage for review in QGIS; it never changes the grids in force.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import geopandas as gpd
import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridgov.cli.common import TestOption, console, fail, transaction
from gridgov.errors import GridgovError, InvalidInputError
from gridgov.gis.measures import WorkloadWeights
from gridgov.layers import optimise
from gridgov.layers.registry import default_registry
from gridgov.settings import Settings

# (key in the summary, Chinese label, English, format); lower is better for the first two.
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("grids", "网格数", "grids", "{:d}"),
    ("workload_cv", "工作量变异系数", "CV of workload", "{:.3f}"),
    ("households_cv", "户数变异系数", "CV of households", "{:.3f}"),
    ("compactness", "紧凑度 (Polsby-Popper)", "compactness", "{:.3f}"),
    ("docking_score", "警务区对接得分", "docking score", "{:.1f}"),
    ("contiguous_share", "连通网格占比", "contiguity", "{:.0%}"),
    ("households_moved", "变动户数", "households moved", "{:d}"),
)


def parse_weights(raw: str | None) -> dict[str, float]:
    """``k=v,k=v`` into a mapping; a malformed pair is an error naming it."""
    values: dict[str, float] = {}
    for pair in (raw or "").split(","):
        if not pair.strip():
            continue
        name, sep, value = pair.partition("=")
        try:
            if not sep:
                raise ValueError(pair)
            values[name.strip()] = float(value)
        except ValueError as error:
            raise InvalidInputError(
                f"权重格式应为 名称=数值：{pair!r}", f"weights are name=value pairs: {pair!r}"
            ) from error
    return values


def _cell(value: Any, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def summary_table(proposal: optimise.Proposal) -> Table:
    table = Table(title=f"网格优化方案 {proposal.area_code} (grid proposal)")
    table.add_column("指标 (measure)")
    table.add_column("现状 (today)", justify="right")
    table.add_column("方案 (proposed)", justify="right")
    for key, zh, en, fmt in ROWS:
        table.add_row(
            f"{zh} ({en})",
            _cell(proposal.before.get(key), fmt),
            _cell(proposal.after.get(key), fmt),
        )
    return table


def write_gpkg(proposal: optimise.Proposal, path: Path) -> int:
    """The proposed grids as one GeoPackage layer ``proposal`` (CGCS2000, EPSG:4490)."""
    rows = [f["properties"] | {"key": f["id"]} for f in proposal.feature_collection()["features"]]
    geoms = [g for c in proposal.communities for g in c.grids]
    frame = gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4490")
    frame.to_file(path, layer="proposal", driver="GPKG", engine="pyogrio")
    return len(frame)


def optimise_command(
    community: Annotated[
        str | None, typer.Option("--community", help="12-digit community code.")
    ] = None,
    township: Annotated[
        str | None, typer.Option("--township", help="9-digit township code (each community).")
    ] = None,
    target_households: Annotated[
        int | None,
        typer.Option(help="Households per grid (default: GRIDGOV_GRID_TARGET_HOUSEHOLDS)."),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            help="balance=,compactness=,docking=,moved= (objective) and any workload weight "
            "(households=, incidents_per_year=, …) as k=v,k=v."
        ),
    ] = None,
    min_change: Annotated[
        bool, typer.Option("--min-change", help="Move as few households as possible.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed, the same proposal.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the proposed grids to this .gpkg.")
    ] = None,
    plan: Annotated[
        str | None,
        typer.Option(
            "--plan", help="Save the proposal as a draft plan of this name (per community)."
        ),
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Who saves the plan (with --plan).")
    ] = None,
    reason: Annotated[
        str, typer.Option("--reason", help="Why (with --plan).")
    ] = "网格优化方案 (grid proposal)",
    test: TestOption = False,
) -> None:
    """Propose contiguous, compact, balanced grids docked with the police (网格优化方案)."""
    if (community is None) == (township is None):
        raise fail(
            InvalidInputError("请给出 --community 或 --township 之一", "give one of them"), 2
        )
    if plan is not None and not (actor or "").strip():
        raise fail(
            InvalidInputError("保存为方案须用 --actor 注明操作人", "--plan needs --actor"), 2
        )
    settings = Settings()
    registry = default_registry()
    saved: dict[str, int] = {}
    try:
        objective, workload = optimise.split_weights(
            parse_weights(weights), WorkloadWeights.from_mapping(settings.workload_weights)
        )
        target = target_households or settings.grid_target_households
        if target <= 0:
            raise InvalidInputError("目标户数须为正数", "target households must be positive")
        options = optimise.ProposalOptions(
            target_households=target,
            seed=seed,
            min_change=min_change,
            objective=objective,
            workload=workload,
        )
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
        )
        area = community or township or ""
        with Progress(*columns, console=console) as progress, transaction(test) as conn:
            task = progress.add_task("优化网格 (optimising)", total=1.0)

            def report(code: str, done: float) -> None:
                progress.update(task, completed=done, description=f"优化网格 (optimising) {code}")

            proposal = optimise.propose(conn, registry, area, options, report)
            if plan is not None:
                saved = optimise.save_as_plans(
                    conn,
                    registry,
                    proposal.grids_by_community(),
                    name=plan,
                    actor=actor or "",
                    reason=reason,
                    max_vertices=settings.grid_max_vertices,
                )
    except GridgovError as error:
        raise fail(error) from error
    console.print(summary_table(proposal))
    if out is not None:
        written = write_gpkg(proposal, out)
        console.print(f"已写出 {written} 个拟议网格 (wrote {written} proposed grids) → {out}")
    for code, plan_id in saved.items():
        console.print(f"已保存为方案 {plan_id}（村社区 {code}） (saved as draft plan {plan_id})")
