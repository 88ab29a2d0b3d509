"""Database faults under a real server: killed connections, statement timeouts, an
exhausted pool, a failed commit and a restarted PostgreSQL.

Each is a 503 problem+json with ``Retry-After``, nothing half-written, and the same app
process serves normally afterwards. The server that is restarted is a private, throwaway
PostgreSQL (``tests/pg_private.py``), never the shared test cluster. Requests carry a
client timeout only as a guard against hanging; no test asserts a duration.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from gridgov.api.app import create_app
from gridgov.layers import migrate
from gridgov.layers.registry import Registry
from gridgov.layers.tables import build_metadata
from gridgov.settings import Settings
from tests.live import committed_login, serve
from tests.pg_private import PrivatePostgres, create_private_postgres
from tests.small_city import build_small_city

GUARD_S = 30.0  # a request that takes longer than this is hanging: the test fails
REPORT = {
    "category": "dispute",
    "source": "hotline",
    "reported_at": "2025-03-01T09:30:00",
    "lon": 120.305,
    "lat": 31.575,
}


@pytest.fixture(scope="module")
def pg(registry: Registry) -> Iterator[PrivatePostgres]:
    """A private PostGIS, migrated, with the small city committed in it."""
    server = create_private_postgres()
    try:
        engine = create_engine(server.url())
        with engine.connect() as conn:
            migrate.upgrade(conn, "head")
            conn.commit()
        with engine.begin() as conn:
            build_small_city(conn, build_metadata(registry), registry)
        engine.dispose()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def admin(pg: PrivatePostgres) -> Iterator[Engine]:
    engine = create_engine(pg.url(superuser=True), pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def auth(pg: PrivatePostgres, settings: Settings) -> Iterator[dict[str, str]]:
    """A committed admin session in the private database (every data route needs one)."""
    engine = create_engine(pg.url(), pool_pre_ping=True)  # the tests kill its connections
    try:
        with committed_login(engine, settings) as token:
            yield {"Authorization": f"Bearer {token}"}
    finally:
        engine.dispose()


@contextmanager
def running(settings: Settings, pg: PrivatePostgres, **changes: Any) -> Iterator[str]:
    """The real app (own pool, real commits) against the private server, over HTTP."""
    url = pg.url().render_as_string(hide_password=False)
    app = create_app(settings.model_copy(update={"database_url": url, **changes}))
    with serve(app) as base:
        yield base


def incidents(admin: Engine) -> int:
    with admin.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM incident")).scalar_one())


@contextmanager
def locked(admin: Engine, table: str) -> Iterator[Connection]:
    """Hold an ACCESS EXCLUSIVE lock on ``table`` until the block ends."""
    conn = admin.connect()
    transaction = conn.begin()
    conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
    try:
        yield conn
    finally:
        with suppress(DBAPIError):  # the server may have gone away meanwhile
            transaction.rollback()
        conn.close()


def app_backends(admin: Engine, where: str) -> list[int]:
    with admin.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'gridgov' "
                f"AND datname = current_database() AND {where}"
            )
        ).all()
    return [int(r[0]) for r in rows]


def wait_for(found: Callable[[], list[int]], what: str) -> list[int]:
    """Poll until the app's request is where the test wants it (bounded)."""
    for _ in range(300):
        pids = found()
        if pids:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"never saw {what}")


def in_background(call: Callable[[], httpx.Response]) -> Future[httpx.Response]:
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(call)
    pool.shutdown(wait=False)
    return future


def assert_503(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    body: dict[str, Any] = response.json()
    assert body["status"] == 503
    assert "数据库" in body["detail"]
    return body


def test_killed_connection_mid_write_is_503_and_writes_nothing(
    auth: dict[str, str], settings: Settings, pg: PrivatePostgres, admin: Engine
) -> None:
    before = incidents(admin)
    with (
        running(settings, pg) as base,
        httpx.Client(base_url=base, headers=auth, timeout=GUARD_S) as client,
    ):
        with locked(admin, "incident_transition"):
            # The incident row is inserted, then the request waits for the history table.
            pending = in_background(lambda: client.post("/incidents", json=REPORT))
            pids = wait_for(
                lambda: app_backends(admin, "wait_event_type = 'Lock'"), "the blocked insert"
            )
            with admin.connect() as conn:
                for pid in pids:
                    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert_503(pending.result(timeout=GUARD_S))
        assert incidents(admin) == before  # the inserted row went with the transaction
        # Recovered without a restart: the next write is stored.
        again = client.post("/incidents", json=REPORT)
        assert again.status_code == 201, again.text
    assert incidents(admin) == before + 1


def test_statement_timeout_is_503(
    auth: dict[str, str], settings: Settings, pg: PrivatePostgres, admin: Engine
) -> None:
    with (
        running(settings, pg, db_statement_timeout_ms=300) as base,
        httpx.Client(base_url=base, headers=auth, timeout=GUARD_S) as client,
    ):
        with locked(admin, "incident"):
            body = assert_503(client.get("/incidents"))
            assert "超时" in body["detail"]
        assert client.get("/incidents").status_code == 200


def test_exhausted_pool_is_a_quick_503_then_recovers(
    auth: dict[str, str], settings: Settings, pg: PrivatePostgres, admin: Engine
) -> None:
    with (
        running(settings, pg, db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=0.5) as base,
        httpx.Client(base_url=base, headers=auth, timeout=GUARD_S) as client,
    ):
        with locked(admin, "incident"):
            # The only pooled connection waits on the lock ...
            holder = in_background(lambda: client.get("/incidents"))
            wait_for(lambda: app_backends(admin, "wait_event_type = 'Lock'"), "the holder")
            # ... so the next request finds no connection: 503, not a queue.
            body = assert_503(client.get("/health"))
            assert "占用" in body["detail"]
        assert holder.result(timeout=GUARD_S).status_code == 200
        assert client.get("/health").status_code == 200


def test_a_failed_commit_is_never_acknowledged(
    auth: dict[str, str], settings: Settings, pg: PrivatePostgres, admin: Engine
) -> None:
    """The connection dies during COMMIT (a deferred trigger holds it there): the client
    gets a 503, not a 201 for a row that was never stored."""
    with admin.begin() as conn:
        conn.execute(
            text(
                "CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_sleep(60); RETURN NULL; END $$"
            )
        )
        conn.execute(
            text(
                "CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON incident "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow_commit()"
            )
        )
    before = incidents(admin)
    try:
        with (
            running(settings, pg) as base,
            httpx.Client(base_url=base, headers=auth, timeout=GUARD_S + 60) as client,
        ):
            pending = in_background(lambda: client.post("/incidents", json=REPORT))
            pids = wait_for(lambda: app_backends(admin, "wait_event = 'PgSleep'"), "COMMIT")
            with admin.connect() as conn:
                for pid in pids:
                    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert_503(pending.result(timeout=GUARD_S))
    finally:
        with admin.begin() as conn:
            conn.execute(text("DROP TRIGGER test_slow_commit ON incident"))
            conn.execute(text("DROP FUNCTION test_slow_commit()"))
    assert incidents(admin) == before


def test_restart_during_requests_is_503_then_recovers(
    auth: dict[str, str], settings: Settings, pg: PrivatePostgres, admin: Engine
) -> None:
    before = incidents(admin)
    with (
        running(settings, pg) as base,
        httpx.Client(base_url=base, headers=auth, timeout=GUARD_S) as client,
    ):
        # Warm the pool: its connections will all be dead after the restart.
        for _ in range(3):
            assert client.get("/incidents").status_code == 200
        with locked(admin, "incident_transition"):
            in_flight = in_background(lambda: client.post("/incidents", json=REPORT))
            wait_for(lambda: app_backends(admin, "wait_event_type = 'Lock'"), "the write")
            stopper = threading.Thread(target=pg.stop, kwargs={"mode": "fast"})
            stopper.start()
            assert_503(in_flight.result(timeout=GUARD_S))  # cut off mid-request
            stopper.join(timeout=GUARD_S)
        try:
            # While the server is down: quick 503s, for reads and writes alike.
            assert_503(client.get("/health"))
            assert_503(client.get("/collections/incident/items"))
            assert_503(client.get("/aggregates/incidents/by/grid"))
            assert_503(client.post("/incidents", json=REPORT))
        finally:
            pg.start()
        # The same app process serves again at once: stale pooled connections are
        # detected by the pre-ping and replaced.
        assert client.get("/health").status_code == 200
        assert client.get("/incidents").status_code == 200
        assert client.get("/aggregates/incidents/by/grid").status_code == 200
        created = client.post("/incidents", json=REPORT)
        assert created.status_code == 201, created.text
    assert incidents(admin) == before + 1


def test_killed_import_is_503_not_a_refusal(
    auth: dict[str, str], settings: Settings, pg: PrivatePostgres, admin: Engine
) -> None:
    """The connection dies while the checked rows are being inserted: the database
    failed, not the rows, so the answer is a 503 (not a 422 'refused') and nothing stays."""
    square = [[120.301, 31.561], [120.302, 31.561], [120.302, 31.562], [120.301, 31.562]]
    feature = {
        "type": "Feature",
        "properties": {"code": "320213001001009", "name": "新网格"},
        "geometry": {"type": "Polygon", "coordinates": [[*square, square[0]]]},
    }
    body = json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()

    def grids() -> int:
        with admin.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM grid")).scalar_one())

    before = grids()
    with (
        running(settings, pg) as base,
        httpx.Client(base_url=base, headers=auth, timeout=GUARD_S) as client,
    ):
        with admin.connect() as conn, conn.begin():
            # SHARE mode: the import may read grids (its checks) but not insert any.
            conn.execute(text("LOCK TABLE grid IN SHARE MODE"))
            pending = in_background(
                lambda: client.post("/layers/grid/import", files={"file": ("g.geojson", body)})
            )
            pids = wait_for(
                lambda: app_backends(admin, "wait_event_type = 'Lock'"), "the blocked insert"
            )
            for pid in pids:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert_503(pending.result(timeout=GUARD_S))
        assert grids() == before
        again = client.post("/layers/grid/import", files={"file": ("g.geojson", body)})
        assert again.status_code == 200, again.text
    assert grids() == before + 1
