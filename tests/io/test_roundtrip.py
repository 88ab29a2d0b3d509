"""Import → export → re-import of every format gives the same rows and geometry."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point
from sqlalchemy import Connection, MetaData

from gridgov.layers.io.exporter import ExportOptions, export_layer
from gridgov.layers.io.formats import Format
from gridgov.layers.registry import Registry
from tests.factories import insert_row, valid_row
from tests.io.conftest import count, insert_grids, run_import, same_geometry, table_rows

FORMATS = [
    (Format.GEOJSON, "out.geojson", {}),
    (Format.GPKG, "out.gpkg", {}),
    (Format.SHP, "out.zip", {}),
    (Format.SHP, "out.shp", {}),
    (Format.CSV, "out.csv", {"crs": "cgcs2000"}),
]


def _assert_same(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> None:
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        assert same_geometry(old.pop("geom"), new.pop("geom"))
        assert old == new


def _round_trip(
    connection: Connection,
    metadata: MetaData,
    registry: Registry,
    layer: str,
    tmp_path: Path,
    fmt: Format,
    name: str,
    options: dict[str, Any],
) -> None:
    before = table_rows(connection, metadata, layer)
    path = tmp_path / name
    written = export_layer(
        connection,
        registry,
        layer,
        path,
        ExportOptions(format=fmt, include_personal=True, all_versions=True),
    )
    assert written == len(before)
    report = run_import(connection, registry, layer, path, mode="replace", **options)
    assert report.problems == []
    assert report.rows_written == len(before)
    _assert_same(before, table_rows(connection, metadata, layer))


@pytest.mark.parametrize(("fmt", "name", "options"), FORMATS)
def test_grid_round_trip(
    connection: Connection,
    metadata: MetaData,
    registry: Registry,
    pyramid: None,
    tmp_path: Path,
    fmt: Format,
    name: str,
    options: dict[str, Any],
) -> None:
    insert_grids(connection, metadata, registry, n=4, households=420, worker_name="王小明")
    _round_trip(connection, metadata, registry, "grid", tmp_path, fmt, name, options)
    assert count(connection, metadata, "grid") == 4


@pytest.mark.parametrize(("fmt", "name", "options"), FORMATS)
def test_rental_and_incident_round_trip(
    connection: Connection,
    metadata: MetaData,
    registry: Registry,
    pyramid: None,
    tmp_path: Path,
    fmt: Format,
    name: str,
    options: dict[str, Any],
) -> None:
    rental = registry.get("rental_housing")
    incident = registry.get("incident")
    for k in range(3):
        point = Point(120.301 + k * 0.001, 31.571 + k * 0.0013)
        insert_row(
            connection,
            metadata,
            "rental_housing",
            valid_row(
                rental,
                grid_code=None,
                address=f"无锡市梁溪区南长街{k + 1}号",
                is_group_rental=k == 1,
                rooms=k or None,
                last_inspected_at=date(2026, 3, k + 1),
                landlord_name="张三丰",
                geom=point,
            ),
        )
        insert_row(
            connection,
            metadata,
            "incident",
            valid_row(
                incident,
                grid_code=None,
                external_id=f"12345-{k}",
                reported_at=datetime(2026, 5, 1, 8, k, 30, 123000, tzinfo=UTC),
                closed_at=None,
                description="楼道堆放杂物" if k else None,
                geom=point,
            ),
        )
    for layer in ("rental_housing", "incident"):
        _round_trip(
            connection, metadata, registry, layer, tmp_path, fmt, f"{layer}-{name}", options
        )
