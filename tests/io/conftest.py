"""Helpers of the import / export tests: files built from the registry factories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import shapely
from geoalchemy2.shape import to_shape
from shapely.geometry import MultiPolygon, box
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, MetaData, func, select

from gridgov.layers import vault
from gridgov.layers.io.importer import ImportOptions, import_file
from gridgov.layers.io.report import ImportReport
from gridgov.layers.registry import Registry, default_registry
from gridgov.settings import Settings
from tests.factories import WUXI_LAT, WUXI_LON, insert_pyramid, insert_row, valid_row

SKIP_COLUMNS = {"id", "updated_at", "geom_3857"}  # geom_3857: computed from geom


@pytest.fixture
def pyramid(connection: Connection, metadata: MetaData, registry: Registry) -> None:
    """District 320213, township 320213001 and community 320213001001 on one Wuxi square."""
    insert_pyramid(connection, metadata, registry)


def run_import(
    connection: Connection, registry: Registry, layer: str, path: Path, **options: Any
) -> ImportReport:
    return import_file(connection, registry, layer, path, ImportOptions(**options))


def grid_box(k: int, n: int = 4) -> MultiPolygon:
    """The k-th of n×n cells tiling the community square (0.01° wide)."""
    step = 0.01 / n
    x, y = WUXI_LON + (k % n) * step, WUXI_LAT + (k // n) * step
    return MultiPolygon([box(x, y, x + step, y + step)])


def table_rows(connection: Connection, metadata: MetaData, layer: str) -> list[dict[str, Any]]:
    """Every stored row (without id / updated_at), geometry as shapely, in id order.

    Personal data sealed in the vault is decrypted back into its column, so that rows
    compare by what they hold, wherever it is stored.
    """
    table = metadata.tables[layer]
    spec = default_registry().get(layer)
    personal = vault.masked_columns(spec, table, unmasked=True)
    rows = connection.execute(select(table, *personal).order_by(table.c.id)).mappings().all()
    key = Settings().require_data_key()
    out = []
    for row in rows:
        item = {
            k: v
            for k, v in row.items()
            if k not in SKIP_COLUMNS and not k.startswith(("__vm_", "__vc_"))
        }
        for column in vault.personal_columns(spec):
            item[column] = vault.personal_value(spec, row, column, key, row["id"])
        item["geom"] = to_shape(item["geom"])
        out.append(item)
    return out


def count(connection: Connection, metadata: MetaData, layer: str) -> int:
    table = metadata.tables[layer]
    return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def same_geometry(a: BaseGeometry, b: BaseGeometry, tol: float = 1e-7) -> bool:
    return bool(shapely.hausdorff_distance(a, b) <= tol) and a.geom_type.replace(
        "Multi", ""
    ) == b.geom_type.replace("Multi", "")


def insert_grids(
    connection: Connection, metadata: MetaData, registry: Registry, n: int = 3, **overrides: Any
) -> None:
    spec = registry.get("grid")
    for k in range(n):
        row = valid_row(
            spec,
            code=f"{CODES_COMMUNITY}{k + 1:03d}",
            name=f"梁溪{k + 1}号网格",
            geom=grid_box(k),
            **overrides,
        )
        insert_row(connection, metadata, "grid", row)


CODES_COMMUNITY = "320213001001"
