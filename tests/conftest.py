"""A session-scoped real PostGIS test database, migrated from scratch, and a transaction
rolled back after every test. There is no fallback: without PostGIS the suite fails."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, MetaData, text

from gridgov.api.app import create_app
from gridgov.api.deps import get_connection, get_read_connection, get_read_connector
from gridgov.layers import accounts, migrate
from gridgov.layers.accounts import User
from gridgov.layers.db import check_server, make_engine
from gridgov.layers.registry import Registry, default_registry
from gridgov.layers.tables import build_metadata
from gridgov.security import tokens
from gridgov.security.passwords import hash_password
from gridgov.security.roles import Role
from gridgov.settings import Settings
from tests.api.ogc.city import remove_everything
from tests.factories import insert_pyramid

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# Test-only keys (also inherited by CLI subprocesses); real ones come from `make serve`.
os.environ.setdefault("GRIDGOV_SECRET_KEY", "test-only-signing-key-0123456789abcdef")
os.environ.setdefault("GRIDGOV_DATA_KEY", "dGVzdC1vbmx5LWRhdGEta2V5LTAxMjM0NTY3ODlhYmM=")
TEST_PASSWORD = "Test-Passw0rd!"

MakeUser = Callable[..., User]
TokenFor = Callable[[User], str]
ClientAs = Callable[..., TestClient]


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
        # Tests hold their data in transactions they roll back. Autovacuum, set off by the
        # dead rows that leaves, writes a table's committed row count (none) into pg_class
        # in place, and an open transaction's planner believes it (seen: grid_atom at 0
        # rows in 387 pages while the demo city's transaction held 11,000 pieces; a
        # reassignment's fast path was still running after 6 minutes). A database that
        # only ever rolls back has no use for autovacuum.
        conn.execute(
            text(
                """
                DO $$ DECLARE t regclass; BEGIN
                    FOR t IN SELECT c.oid FROM pg_class c
                             WHERE c.relnamespace = current_schema()::regnamespace
                               AND c.relkind = 'r' AND c.relowner = current_user::regrole
                    LOOP
                        EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = false)', t);
                    END LOOP;
                END $$
                """
            )
        )
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
    application = create_app(settings.model_copy(update={"warm_up": False, "unit_plan_poll_s": 0}))

    def shared_connection() -> Iterator[Connection]:
        with connection.begin_nested():
            yield connection

    def shared_read_connection() -> Iterator[Connection]:
        # Inside the request's savepoint already (the session check opened it): a second
        # savepoint would be released out of order, since the two end in different scopes.
        yield connection

    application.dependency_overrides[get_connection] = shared_connection
    application.dependency_overrides[get_read_connection] = shared_read_connection
    application.dependency_overrides[get_read_connector] = lambda: lambda: nullcontext(connection)
    return application


@pytest.fixture(scope="session")
def password_hash() -> str:
    """argon2 is slow on purpose: hash the test password once per session."""
    return hash_password(TEST_PASSWORD)


@pytest.fixture
def make_user(connection: Connection, password_hash: str) -> MakeUser:
    """Insert an account (password ``TEST_PASSWORD``) in the test's transaction."""
    counter = iter(range(1, 10_000))

    def make(
        role: Role | str = Role.ADMIN,
        codes: Iterable[str] = (),
        grants: Iterable[str] = (),
        username: str | None = None,
    ) -> User:
        role = Role(role)
        name = username or f"t_{role.value}_{next(counter)}"
        return accounts.insert_user(connection, name, password_hash, role, codes, grants)

    return make


@pytest.fixture
def token_for(connection: Connection, settings: Settings) -> TokenFor:
    """A live session token for a user, without a (slow) password check."""

    def issue(user: User) -> str:
        session_id, _ = accounts.open_session(connection, user.id, "testclient", timedelta(hours=1))
        token, _ = tokens.issue(
            settings.require_secret_key(), user.id, user.username, session_id, timedelta(hours=1)
        )
        return token

    return issue


@pytest.fixture
def admin_user(make_user: MakeUser) -> User:
    return make_user(Role.ADMIN, username="test_admin")


@pytest.fixture
def client(app: FastAPI, admin_user: User, token_for: TokenFor) -> Iterator[TestClient]:
    """The app as an admin (every area; personal data masked: no grant)."""
    headers = {"Authorization": f"Bearer {token_for(admin_user)}"}
    with TestClient(app, headers=headers) as test_client:
        yield test_client


@pytest.fixture
def anon_client(app: FastAPI) -> Iterator[TestClient]:
    """The app without any session."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def client_as(app: FastAPI, make_user: MakeUser, token_for: TokenFor) -> ClientAs:
    """``client_as("police", ["320213001"], grants=())``: a client logged in as a new account."""

    def build(
        role: Role | str, codes: Iterable[str] = (), grants: Iterable[str] = ()
    ) -> TestClient:
        user = make_user(role, codes, grants)
        return TestClient(app, headers={"Authorization": f"Bearer {token_for(user)}"})

    return build


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where page tests leave their screenshots (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def auth_headers(admin_user: User, token_for: TokenFor) -> dict[str, str]:
    """Headers that let a test request act as an administrator (the schemathesis fuzz run
    drives every route with them)."""
    return {"Authorization": f"Bearer {token_for(admin_user)}"}


@pytest.fixture
def committed_pyramid(engine: Engine, metadata: MetaData, registry: Registry) -> Iterator[Engine]:
    """For commands that commit (the CLI): a committed pyramid, every row removed after."""
    with engine.begin() as conn:
        insert_pyramid(conn, metadata, registry)
    try:
        yield engine
    finally:
        with engine.begin() as conn:
            remove_everything(conn, registry)
