"""A session-scoped real PostGIS test database, migrated from scratch, and a transaction
rolled back after every test. There is no fallback: without PostGIS the suite fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, MetaData

from gridgov.api.app import create_app
from gridgov.api.deps import get_connection, get_read_connection
from gridgov.layers import migrate
from gridgov.layers.db import check_server, make_engine
from gridgov.layers.registry import Registry, default_registry
from gridgov.layers.tables import build_metadata
from gridgov.settings import Settings

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Settings whose working database is the test database (never the real one)."""
    return Settings().for_tests()


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings)
    # Fails loudly (DatabaseUnavailableError / PostgisMissingError) rather than skipping.
    check_server(engine)
    with engine.connect() as conn:
        if migrate.current_revision(conn) is not None:
            migrate.downgrade(conn, "base")
        migrate.upgrade(conn, "head")
        conn.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            yield conn
        finally:
            transaction.rollback()


@pytest.fixture(scope="session")
def registry() -> Registry:
    return default_registry()


@pytest.fixture(scope="session")
def metadata(registry: Registry) -> MetaData:
    return build_metadata(registry)


@pytest.fixture
def app(settings: Settings, connection: Connection) -> FastAPI:
    """The real app, its requests running inside the test's transaction (as savepoints)."""
    # No start-up warm-up: it reads committed data, not the test's transaction (it has its
    # own test in tests/api/ogc/test_aggregates.py).
    application = create_app(settings.model_copy(update={"warm_up": False}))

    def shared_connection() -> Iterator[Connection]:
        with connection.begin_nested():
            yield connection

    application.dependency_overrides[get_connection] = shared_connection
    application.dependency_overrides[get_read_connection] = shared_connection
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where page tests leave their screenshots (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
