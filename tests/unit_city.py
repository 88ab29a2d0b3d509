"""The small city with its police units nested: policing areas JWQ-S and JWQ-N under
station PCS1 (the township), and a second station PCS2 east of it (lon 120.34–120.36)."""

from __future__ import annotations

from shapely.geometry import MultiPolygon, box
from sqlalchemy import Connection, MetaData, text

from gridgov.layers.registry import Registry
from tests.factories import insert_row, valid_row
from tests.small_city import N, S, build_small_city

EAST = 120.34


def build_unit_city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    build_small_city(connection, metadata, registry)
    insert_row(
        connection,
        metadata,
        "police_unit",
        valid_row(
            registry.get("police_unit"),
            code="PCS2",
            level="station",
            geom=MultiPolygon([box(EAST, S, 120.36, N)]),
        ),
    )
    connection.execute(
        text(
            "UPDATE police_unit SET parent_code = CASE WHEN level = 'station' THEN NULL "
            "ELSE 'PCS1' END"
        )
    )
    return connection
