"""``gridgov demo``: the synthetic Wuxi demo city."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gridgov.cli.common import TestOption, console, database_url, fail
from gridgov.errors import GridgovError
from gridgov.gis import wuxi
from gridgov.gis.demo.city import DemoInputs, DemoOptions, build_city
from gridgov.layers.db import check_server, connect, make_engine
from gridgov.layers.demo import is_empty, load_city
from gridgov.layers.registry import default_registry
from gridgov.layers.tables import build_metadata
from gridgov.settings import Settings

app = typer.Typer(
    help="演示数据 (demo city of Wuxi; synthetic below district level)", no_args_is_help=True
)


@app.command("load")
def demo_load(
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same city.")
    ] = DemoOptions.seed,
    incidents: Annotated[
        int, typer.Option(help="Number of incidents over two years.")
    ] = DemoOptions.incidents,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing (exit 0) if the database holds data.")
    ] = False,
    test: TestOption = False,
) -> None:
    """Build the Wuxi demo city and load it, in one transaction, into an empty database."""
    settings = Settings()
    registry = default_registry()
    metadata = build_metadata(registry)
    try:
        engine = make_engine(settings, database_url(settings, test))
        check_server(engine)
        with connect(engine) as conn:
            empty = is_empty(conn, registry, metadata)
        if not empty and if_empty:
            console.print("数据库已有数据，跳过演示数据 (database holds data; demo not loaded)")
            return
        started = time.monotonic()
        options = DemoOptions(
            seed=seed, incidents=incidents, grid_target_households=settings.grid_target_households
        )
        inputs = DemoInputs(wuxi.load_districts(), wuxi.load_townships(), wuxi.load_communities())
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            steps = progress.add_task("生成演示城市 (building the city)", total=12)
            city = build_city(
                inputs,
                options,
                lambda layer: progress.update(
                    steps, advance=1, description=f"生成 (building) {layer}"
                ),
            )
            progress.update(steps, completed=12, description="生成完成 (city built)")
            tasks = {
                layer: progress.add_task(f"写入 (writing) {layer}", total=len(frame))
                for layer, frame in city.items()
            }
            with connect(engine) as conn, conn.begin():
                written = load_city(
                    conn,
                    registry,
                    metadata,
                    city,
                    settings.assign_tolerance_m,
                    lambda layer, n: progress.advance(tasks[layer], n),
                )
        engine.dispose()
    except GridgovError as error:
        raise fail(error) from error
    total = sum(written.values())
    console.print(
        f"演示城市已载入 (demo city loaded): {total:,} rows, seed {seed}, "
        f"{time.monotonic() - started:.0f} s. 区县以下数据均为合成数据 (synthetic below "
        "district level)."
    )
