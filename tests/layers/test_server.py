"""The server checks that every command and the test suite rely on."""

from __future__ import annotations

import pytest
from psycopg.pq import Format
from sqlalchemy import Engine, text

from gridgov.errors import DatabaseUnavailableError, PostgisMissingError
from gridgov.layers.db import BINARY_RESULTS, check_server, make_engine, make_read_engine
from gridgov.settings import Settings


def test_database_without_postgis_is_refused(settings: Settings, engine: Engine) -> None:
    # The cluster's maintenance database exists on every server and has no PostGIS.
    bare = make_engine(settings, engine.url.set(database="postgres"))
    try:
        with pytest.raises(PostgisMissingError, match="CREATE EXTENSION postgis"):
            check_server(bare)
    finally:
        bare.dispose()


def test_unknown_database_is_unavailable_with_the_reason(
    settings: Settings, engine: Engine
) -> None:
    missing = make_engine(settings, engine.url.set(database="gridgov_no_such_db"))
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            check_server(missing)
    finally:
        missing.dispose()
    assert "gridgov_no_such_db" in str(caught.value)
    assert engine.url.password is None or engine.url.password not in str(caught.value)


def test_server_info_reports_postgis(engine: Engine) -> None:
    info = check_server(engine)
    major = int(info.postgis_version.split(".")[0])
    assert major >= 3
    assert info.database == engine.url.database


def test_statements_that_ask_get_binary_results_on_both_engines(
    settings: Settings, engine: Engine
) -> None:
    """Tiles come back as their exact bytes (binary format), not as hex text to decode;
    every other statement keeps the text format SQLAlchemy's types expect."""
    mvt = text(
        "SELECT ST_AsMVT(q, 'layer', 4096, 'geom') FROM (SELECT ST_AsMVTGeom("
        "ST_Point(1000, 1000, 3857), ST_TileEnvelope(0, 0, 0)) AS geom) q"
    )
    read = make_read_engine(settings, engine.url)
    try:
        for each in (engine, read):
            with each.connect() as conn:
                binary = conn.execute(mvt, execution_options=BINARY_RESULTS)
                assert binary.cursor is not None
                assert binary.cursor.pgresult.fformat(0) == Format.BINARY
                tile = binary.scalar_one()
                plain = conn.execute(mvt)
                assert plain.cursor is not None
                assert plain.cursor.pgresult.fformat(0) == Format.TEXT
                assert isinstance(tile, bytes)
                assert len(tile) > 10
                assert tile == plain.scalar_one()
    finally:
        read.dispose()
