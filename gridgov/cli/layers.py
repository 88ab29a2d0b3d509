"""``gridgov layers``: what the layer registry holds."""

from __future__ import annotations

import typer
from rich.table import Table

from gridgov.cli.common import console
from gridgov.layers.registry import default_registry

app = typer.Typer(help="图层注册表 (layer registry)", no_args_is_help=True)


@app.command("list")
def layers_list() -> None:
    """Every registered layer with its geometry, admin codes and zoom range."""
    table = Table(title="图层 (layers)")
    for column in ("id", "名称", "title", "geometry", "admin codes", "zoom"):
        table.add_column(column)
    for spec in default_registry():
        table.add_row(
            spec.id,
            spec.title_zh,
            spec.title_en,
            spec.geometry.value,
            " ".join(level.title_zh for level in spec.admin_levels),
            f"{spec.min_zoom}–{spec.max_zoom}",
        )
    console.print(table)
