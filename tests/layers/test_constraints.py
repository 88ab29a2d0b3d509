"""The database itself refuses bad rows, whatever path they come by."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from sqlalchemy import Connection, MetaData, func, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from gridgov.layers.registry import Registry, default_registry
from gridgov.layers.spec import AdminLevel
from tests.factories import (
    CODES,
    WUXI_LAT,
    WUXI_LON,
    insert_pyramid,
    insert_row,
    valid_row,
    wuxi_square,
)

BOWTIE = Polygon(
    [
        (WUXI_LON, WUXI_LAT),
        (WUXI_LON + 0.01, WUXI_LAT + 0.01),
        (WUXI_LON + 0.01, WUXI_LAT),
        (WUXI_LON, WUXI_LAT + 0.01),
    ]
)


@pytest.fixture
def pyramid(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    insert_pyramid(connection, metadata, registry)
    return connection


def refused(conn: Connection, metadata: MetaData, layer: str, row: dict[str, Any]) -> str:
    """Insert inside a savepoint, expect the database to refuse, return its message."""
    with pytest.raises(DBAPIError) as caught, conn.begin_nested():
        insert_row(conn, metadata, layer, row)
    return str(caught.value.orig)


@pytest.mark.parametrize("layer", default_registry().ids)
def test_a_valid_row_is_accepted_in_every_layer(
    pyramid: Connection, metadata: MetaData, registry: Registry, layer: str
) -> None:
    spec = registry.get(layer)
    overrides = {}
    if spec.level is not None and spec.level is not AdminLevel.GRID:
        # The pyramid fixture already holds this code: use the next one.
        code = CODES[spec.level][:-1] + "9"
        overrides["code"] = code
    new_id = insert_row(pyramid, metadata, layer, valid_row(spec, **overrides))
    table = metadata.tables[layer]
    stored = pyramid.execute(
        select(func.ST_SRID(table.c.geom), func.ST_IsValid(table.c.geom)).where(
            table.c.id == new_id
        )
    ).one()
    assert tuple(stored) == (4490, True)


def test_self_intersecting_polygon_is_refused(
    pyramid: Connection, metadata: MetaData, registry: Registry
) -> None:
    message = refused(
        pyramid, metadata, "grid", valid_row(registry.get("grid"), geom=MultiPolygon([BOWTIE]))
    )
    assert "ck_grid_geom_valid" in message


def test_empty_geometry_is_refused(
    pyramid: Connection, metadata: MetaData, registry: Registry
) -> None:
    message = refused(
        pyramid, metadata, "shelter", valid_row(registry.get("shelter"), geom=Polygon())
    )
    assert "ck_shelter_geom" in message


def test_wrong_geometry_type_is_refused(
    pyramid: Connection, metadata: MetaData, registry: Registry
) -> None:
    message = refused(
        pyramid, metadata, "grid", valid_row(registry.get("grid"), geom=Point(WUXI_LON, WUXI_LAT))
    )
    assert "Geometry type (Point) does not match column type (MultiPolygon)" in message
    message = refused(
        pyramid,
        metadata,
        "key_site",
        valid_row(
            registry.get("key_site"),
            geom=LineString([(WUXI_LON, WUXI_LAT), (WUXI_LON + 0.01, WUXI_LAT)]),
        ),
    )
    assert "ck_key_site_geom_type" in message


def test_wrong_srid_is_refused(pyramid: Connection, metadata: MetaData, registry: Registry) -> None:
    from geoalchemy2.shape import from_shape

    row = valid_row(registry.get("incident"))
    row["geom"] = from_shape(Point(WUXI_LON, WUXI_LAT), srid=4326)
    message = refused(pyramid, metadata, "incident", row)
    assert "SRID (4326) does not match column SRID (4490)" in message


def test_coordinates_outside_china_are_refused(
    pyramid: Connection, metadata: MetaData, registry: Registry
) -> None:
    # Swapped lon/lat of Wuxi lands in the Indian Ocean.
    message = refused(
        pyramid,
        metadata,
        "building",
        valid_row(registry.get("building"), geom=Point(WUXI_LAT, WUXI_LON)),
    )
    assert "ck_building_geom_in_china" in message


@pytest.mark.parametrize(
    ("layer", "column", "bad"),
    [
        ("district", "code", "32021"),
        ("district", "code", "32021X"),
        ("township", "code", "3202130010"),
        ("community", "code", "32021300100"),
        ("grid", "code", "32021300100100"),
        ("incident", "grid_code", "3202130010010011"),
    ],
)
def test_bad_code_format_is_refused(
    pyramid: Connection, metadata: MetaData, registry: Registry, layer: str, column: str, bad: str
) -> None:
    message = refused(pyramid, metadata, layer, valid_row(registry.get(layer), **{column: bad}))
    assert f"ck_{layer}_{column}_format" in message


def test_codes_must_nest_by_prefix(
    pyramid: Connection, metadata: MetaData, registry: Registry
) -> None:
    # A community whose code does not start with its township's code.
    message = refused(
        pyramid, metadata, "community", valid_row(registry.get("community"), code="320213002001")
    )
    assert "ck_community_code_in_township" in message
    message = refused(
        pyramid, metadata, "grid", valid_row(registry.get("grid"), code="320213001002001")
    )
    assert "ck_grid_code_in_community" in message


def test_parent_must_exist(pyramid: Connection, metadata: MetaData, registry: Registry) -> None:
    row = valid_row(registry.get("township"), code="320214001", district_code="320214")
    with (
        pytest.raises(IntegrityError, match="fk_township_district_code_district"),
        pyramid.begin_nested(),
    ):
        insert_row(pyramid, metadata, "township", row)


def test_choices_counts_and_nan_are_checked(
    pyramid: Connection, metadata: MetaData, registry: Registry
) -> None:
    assert "ck_incident_category_choice" in refused(
        pyramid, metadata, "incident", valid_row(registry.get("incident"), category="alien")
    )
    assert "ck_shelter_capacity_min" in refused(
        pyramid, metadata, "shelter", valid_row(registry.get("shelter"), capacity=-1)
    )
    assert "ck_shelter_area_m2_not_nan" in refused(
        pyramid, metadata, "shelter", valid_row(registry.get("shelter"), area_m2=float("nan"))
    )
    assert "ck_rental_housing_landlord_id_number_format" in refused(
        pyramid,
        metadata,
        "rental_housing",
        valid_row(registry.get("rental_housing"), landlord_id_number="12345"),
    )


def _at(year: int) -> datetime:
    return datetime(year, 1, 1, tzinfo=UTC)


def test_grid_versions_may_follow_but_never_overlap(
    pyramid: Connection, metadata: MetaData, registry: Registry
) -> None:
    grid = registry.get("grid")
    insert_row(pyramid, metadata, "grid", valid_row(grid, valid_from=_at(2024), valid_to=_at(2025)))
    # The redrawn grid takes over exactly when the old version ends: allowed.
    insert_row(
        pyramid,
        metadata,
        "grid",
        valid_row(grid, valid_from=_at(2025), geom=MultiPolygon([wuxi_square(size=0.02)])),
    )
    # A third version in force during 2025 collides with the open-ended one.
    message = refused(
        pyramid, metadata, "grid", valid_row(grid, valid_from=_at(2024), valid_to=_at(2026))
    )
    assert "ex_grid_code_period" in message
    assert "ck_grid_valid_period" in refused(
        pyramid,
        metadata,
        "grid",
        valid_row(grid, code="320213001001002", valid_from=_at(2025), valid_to=_at(2024)),
    )
