"""A small city whose every edge case is known, for the assignment engine's tests.

Township 320213001 spans lon 120.30–120.34; its community and grids cover 120.30–120.32
only (the rest is a park nobody gridded). Grid …001 is the west half (with a hole), …002
the east half, sharing the edge lon = 120.31. Two community policing areas split the
community at lat 31.57, so every grid straddles them and needs a point test.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, MetaData, text

from gridgov.layers.assignment import refresh_grid_units
from gridgov.layers.registry import Registry
from tests.factories import insert_row, valid_row

W, E, S, N = 120.30, 120.32, 31.56, 31.58
MID = 120.31
TOLERANCE = 50.0
T2024 = datetime(2024, 6, 1, tzinfo=UTC)
T2025 = datetime(2025, 6, 1, tzinfo=UTC)
GRID_START = datetime(2024, 1, 1, tzinfo=UTC)
HOLE = box(120.302, 31.562, 120.304, 31.564)  # ~190 m × 220 m, not in any grid


def multi(geom: BaseGeometry) -> MultiPolygon:
    assert isinstance(geom, Polygon)
    return MultiPolygon([geom])


def build_small_city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    township_box = box(W, S, 120.34, N)
    community_box = box(W, S, E, N)

    def add(layer: str, **kw: object) -> None:
        insert_row(connection, metadata, layer, valid_row(registry.get(layer), **kw))

    add("district", geom=multi(box(120.2, 31.5, 120.4, 31.7)))
    add("township", geom=multi(township_box))
    add("community", geom=multi(community_box))
    add(
        "grid",
        code="320213001001001",
        geom=multi(box(W, S, MID, N).difference(HOLE)),
        valid_from=GRID_START,
    )
    add("grid", code="320213001001002", geom=multi(box(MID, S, E, N)), valid_from=GRID_START)
    add("police_unit", code="PCS1", level="station", geom=multi(township_box))
    add("police_unit", code="JWQ-S", level="policing_area", geom=multi(box(W, S, 120.34, 31.57)))
    add("police_unit", code="JWQ-N", level="policing_area", geom=multi(box(W, 31.57, 120.34, N)))
    add("urban_unit", code="CG1", geom=multi(township_box))
    add("emergency_unit", code="YJ1", geom=multi(township_box))
    refresh_grid_units(connection)
    return connection


REDRAW = datetime(2025, 1, 1, tzinfo=UTC)


def redraw_west_half(connection: Connection, metadata: MetaData, registry: Registry) -> None:
    """From 2025 grid …001 keeps the west quarter; the rest becomes the new grid …003.

    Every row it writes gets a fresh ``updated_at`` (clock time, not transaction time), so
    that "changed since" queries see exactly this redraw.
    """
    connection.execute(
        text(
            "UPDATE grid SET valid_to = :t, updated_at = clock_timestamp() "
            "WHERE code = '320213001001001'"
        ),
        {"t": REDRAW},
    )
    grid = registry.get("grid")
    for code, shape in (
        ("320213001001001", box(W, S, 120.305, N).difference(HOLE)),
        ("320213001001003", box(120.305, S, MID, N)),
    ):
        insert_row(
            connection,
            metadata,
            "grid",
            valid_row(grid, code=code, geom=multi(shape), valid_from=REDRAW),
        )
    connection.execute(
        text("UPDATE grid SET updated_at = clock_timestamp() WHERE valid_from = :t"),
        {"t": REDRAW},
    )
    refresh_grid_units(connection)
