"""The server checks that every command and the test suite rely on."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from gridgov.errors import DatabaseUnavailableError, PostgisMissingError
from gridgov.layers.db import check_server, make_engine
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
