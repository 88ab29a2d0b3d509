"""After migration, every registry layer exists in PostGIS as the registry says."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, MetaData, text

from gridgov.layers import migrate
from gridgov.layers.registry import Registry, default_registry
from gridgov.layers.spec import SRID, GeometryKind, digits_check

LAYER_IDS = default_registry().ids


def test_database_is_at_head(connection: Connection) -> None:
    assert migrate.current_revision(connection) == migrate.head_revision()


def test_migrations_match_the_registry(connection: Connection, metadata: MetaData) -> None:
    """A spec changed without a migration shows up here as a difference."""
    assert migrate.schema_drift(connection, metadata) == []


@pytest.mark.parametrize("layer", LAYER_IDS)
def test_geometry_column_srid_and_type(
    connection: Connection, registry: Registry, layer: str
) -> None:
    spec = registry.get(layer)
    row = connection.execute(
        text(
            "SELECT srid, type, coord_dimension FROM geometry_columns "
            "WHERE f_table_name = :t AND f_geometry_column = 'geom'"
        ),
        {"t": layer},
    ).one()
    assert row.srid == SRID
    assert row.coord_dimension == 2
    expected = "GEOMETRY" if spec.geometry is GeometryKind.POINT_OR_POLYGON else spec.geometry.value
    assert row.type == expected


@pytest.mark.parametrize("layer", LAYER_IDS)
def test_gist_index_on_geometry(connection: Connection, layer: str) -> None:
    definitions = (
        connection.execute(
            text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": layer}
        )
        .scalars()
        .all()
    )
    assert any("USING gist (geom)" in d for d in definitions), definitions


def _checks(connection: Connection, layer: str) -> dict[str, str]:
    rows = connection.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype = 'c'"
        ),
        {"t": layer},
    ).all()
    return {r.conname: r.definition for r in rows}


@pytest.mark.parametrize("layer", LAYER_IDS)
def test_geometry_and_code_checks(connection: Connection, registry: Registry, layer: str) -> None:
    spec = registry.get(layer)
    checks = _checks(connection, layer)
    assert "st_isvalid(geom)" in checks[f"ck_{layer}_geom_valid"].lower()
    assert f"ck_{layer}_geom_in_china" in checks
    for level in spec.admin_levels:
        column = spec.admin_column(level)
        definition = checks[f"ck_{layer}_{column}_format"]
        assert f"octet_length({column}) = {level.code_length}" in definition, definition
    assert not [d for d in checks.values() if "[0-9]{" in d and "landlord" not in d]


@pytest.mark.parametrize(
    "value",
    [
        "320213001001001",
        "32021300100100",  # one digit short
        "3202130010010011",
        "32021300100100a",
        "320213001001 01",
        " 32021300100100",
        "３２０２１３００１００１００",  # full-width digits: 15 characters, 45 bytes
        "32021300100100١",  # an Arabic-Indic digit
        "",
        None,
    ],
)
def test_code_check_is_the_regular_expression_it_replaced(
    connection: Connection, value: str | None
) -> None:
    """Migration 0016 swapped ``~ '^[0-9]{15}$'`` for a cheaper test: same verdicts."""
    same = connection.execute(
        text(
            f"SELECT ({digits_check('v', 15)}) IS NOT DISTINCT FROM (v ~ '^[0-9]{{15}}$') "
            "FROM (SELECT CAST(:v AS text) AS v) s"
        ),
        {"v": value},
    ).scalar_one()
    assert same is True


def test_every_declared_check_exists(connection: Connection, metadata: MetaData) -> None:
    """Autogenerate does not emit CHECKs on existing tables: catch one a migration forgot."""
    from sqlalchemy import CheckConstraint

    declared = {
        str(c.name)
        for table in metadata.tables.values()
        for c in table.constraints
        if isinstance(c, CheckConstraint)
    }
    present = set(
        connection.execute(text("SELECT conname FROM pg_constraint WHERE contype = 'c'")).scalars()
    )
    assert declared - present == set()


def test_foreign_keys_go_up_the_pyramid(connection: Connection) -> None:
    rows = connection.execute(
        text(
            "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent "
            "FROM pg_constraint WHERE contype = 'f'"
        )
    ).all()
    edges = {(r.child, r.parent) for r in rows}
    assert {
        ("township", "district"),
        ("community", "township"),
        ("community", "district"),
        ("grid", "community"),
        ("building", "community"),
        ("incident", "township"),
    } <= edges


def test_grid_versions_have_validity_and_exclusion(connection: Connection) -> None:
    columns = connection.execute(
        text(
            "SELECT column_name, is_nullable FROM information_schema.columns "
            "WHERE table_name = 'grid' AND column_name IN ('valid_from', 'valid_to')"
        )
    ).all()
    assert dict(columns) == {"valid_from": "NO", "valid_to": "YES"}
    definition = connection.execute(
        text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'ex_grid_code_period'"
        )
    ).scalar_one()
    assert definition.startswith("EXCLUDE USING gist")
    assert "tstzrange(valid_from, valid_to)" in definition
