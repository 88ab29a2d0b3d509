"""Adding a layer is adding one spec: a throw-away spec becomes a constrained table."""

from __future__ import annotations

import pytest
from shapely.geometry import Point
from sqlalchemy import Connection, inspect
from sqlalchemy.exc import DBAPIError

from gridgov.layers import migrate
from gridgov.layers.registry import default_registry
from gridgov.layers.spec import (
    AdminLevel,
    Column,
    ColumnType,
    GeometryKind,
    LayerGroup,
    LayerSpec,
    Style,
    choices,
)
from gridgov.layers.tables import build_metadata
from tests.factories import WUXI_LAT, WUXI_LON, insert_pyramid, insert_row, valid_row

NOISE_SENSOR = LayerSpec(
    id="noise_sensor",
    title_zh="噪声监测点",
    title_en="Noise sensor",
    geometry=GeometryKind.POINT,
    group=LayerGroup.SITES,
    carries=(AdminLevel.DISTRICT, AdminLevel.TOWNSHIP),
    required_levels=(AdminLevel.DISTRICT,),
    columns=(
        Column("decibels", ColumnType.FLOAT, "分贝", "decibels", required=True, minimum=0),
        Column(
            "kind",
            ColumnType.TEXT,
            "类型",
            "kind",
            required=True,
            choices=choices(
                ("fixed", "固定", "fixed", "#000000"), ("mobile", "移动", "mobile", "#ff0000")
            ),
        ),
    ),
    style=Style(stroke="#000000", by="kind"),
)


def test_one_spec_makes_a_table_with_every_constraint(connection: Connection) -> None:
    registry = default_registry().with_layers(NOISE_SENSOR)
    metadata = build_metadata(registry)
    # The migration tool sees one new table (and its indexes) to generate, nothing else.
    drift = migrate.schema_drift(connection, metadata)
    assert [d[1].name for d in drift if d[0] == "add_table"] == ["noise_sensor"]
    assert {d[0] for d in drift} == {"add_table", "add_index"}
    assert {d[1].table.name for d in drift if d[0] == "add_index"} == {"noise_sensor"}

    metadata.tables["noise_sensor"].create(connection)
    inspector = inspect(connection)
    assert {c["name"] for c in inspector.get_columns("noise_sensor")} >= {
        "id",
        "district_code",
        "township_code",
        "decibels",
        "kind",
        "geom",
        "synthetic",
    }
    insert_pyramid(connection, metadata, registry)
    insert_row(connection, metadata, "noise_sensor", valid_row(NOISE_SENSOR))

    for bad in (
        {"decibels": -3.0},
        {"kind": "satellite"},
        {"district_code": "3202"},
        {"geom": Point(WUXI_LAT, WUXI_LON)},
    ):
        with pytest.raises(DBAPIError), connection.begin_nested():
            insert_row(connection, metadata, "noise_sensor", valid_row(NOISE_SENSOR, **bad))
    assert [e.title_zh for e in NOISE_SENSOR.legend()] == ["固定", "移动"]
