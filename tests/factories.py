"""Valid rows for any layer, built from its spec: tests change one thing and see it refused."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, MetaData, insert

from gridgov.layers.catalog import ID_NUMBER, PHONE, UNIT_CODE
from gridgov.layers.registry import Registry
from gridgov.layers.spec import SRID, AdminLevel, ColumnType, GeometryKind, LayerSpec

# A real corner of Wuxi (梁溪区), in CGCS2000 lon/lat.
WUXI_LON, WUXI_LAT = 120.30, 31.57
CODES = {
    AdminLevel.DISTRICT: "320213",
    AdminLevel.TOWNSHIP: "320213001",
    AdminLevel.COMMUNITY: "320213001001",
    AdminLevel.GRID: "320213001001001",
}
PATTERN_EXAMPLES = {UNIT_CODE: "PCS-0001", ID_NUMBER: "32020219800101123X", PHONE: "13800001234"}


def wuxi_square(dx: float = 0.0, size: float = 0.01) -> Polygon:
    return box(WUXI_LON + dx, WUXI_LAT, WUXI_LON + dx + size, WUXI_LAT + size)


def geometry_for(spec: LayerSpec) -> BaseGeometry:
    if spec.geometry is GeometryKind.POINT:
        return Point(WUXI_LON + 0.005, WUXI_LAT + 0.005)
    if spec.geometry is GeometryKind.MULTIPOLYGON:
        return MultiPolygon([wuxi_square()])
    return wuxi_square()


def value_for(column_type: ColumnType, pattern: str | None, first_choice: str | None) -> Any:
    if first_choice is not None:
        return first_choice
    if pattern is not None:
        return PATTERN_EXAMPLES[pattern]
    return {
        ColumnType.TEXT: "测试",
        ColumnType.INTEGER: 1,
        ColumnType.BIGINT: 1,
        ColumnType.FLOAT: 1.5,
        ColumnType.BOOLEAN: False,
        ColumnType.DATE: date(2026, 1, 1),
        ColumnType.TIMESTAMP: datetime(2026, 1, 1, 8, 0, tzinfo=UTC),
    }[column_type]


def valid_row(spec: LayerSpec, **overrides: Any) -> dict[str, Any]:
    """A row that satisfies every constraint of ``spec``; ``overrides`` win."""
    row: dict[str, Any] = {}
    for level in spec.admin_levels:
        row[spec.admin_column(level)] = CODES[level]
    for col in spec.columns:
        if col.references and not col.required:
            continue  # optional links to other rows stay empty unless a test sets them
        first = col.choices[0].value if col.choices else None
        row[col.name] = value_for(col.type, col.pattern, first)
    row["geom"] = geometry_for(spec)
    row.update(overrides)
    if isinstance(row.get("geom"), BaseGeometry):
        row["geom"] = from_shape(row["geom"], srid=SRID)
    return row


def insert_row(conn: Connection, metadata: MetaData, layer: str, row: dict[str, Any]) -> int:
    table = metadata.tables[layer]
    new_id: int = conn.execute(insert(table).values(**row).returning(table.c.id)).scalar_one()
    return new_id


def insert_pyramid(conn: Connection, metadata: MetaData, registry: Registry) -> None:
    """District, township and community rows that every other test row can refer to."""
    for level in (AdminLevel.DISTRICT, AdminLevel.TOWNSHIP, AdminLevel.COMMUNITY):
        spec = registry.for_level(level)
        assert spec is not None
        insert_row(conn, metadata, spec.id, valid_row(spec))
