"""``/health`` and the error mapping, against the real database and a dead one."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from gridgov.api.app import create_app
from gridgov.api.deps import ConnectionDep
from gridgov.settings import Settings


def test_health_reports_database_and_postgis(client: TestClient, connection: Connection) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert (
        body["postgis_version"]
        == connection.execute(text("SELECT postgis_lib_version()")).scalar_one()
    )
    assert body["postgres_version"].startswith(
        connection.execute(text("SHOW server_version")).scalar_one().split()[0]
    )


def _closed_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_health_is_503_problem_json_when_database_is_unreachable(settings: Settings) -> None:
    url = make_url(settings.database_url or "")
    dead = url.set(host="127.0.0.1", port=_closed_port(), password="s3cret-never-shown")
    dead_settings = settings.model_copy(
        update={
            "database_url": dead.render_as_string(hide_password=False),
            "db_connect_timeout_s": 2,
        }
    )
    with TestClient(create_app(dead_settings)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503
    assert body["type"] == "urn:gridgov:problem:database-unavailable"
    assert "数据库不可用" in body["title"]
    assert body["instance"] == "/health"
    raw = response.text
    for secret in ("s3cret", str(dead.port), "psycopg", "127.0.0.1"):
        assert secret not in raw


def test_unknown_path_is_problem_json(client: TestClient) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "/no/such/thing" in response.json()["detail"]


def test_sql_errors_never_leak(app_with_broken_route: TestClient) -> None:
    response = app_with_broken_route.get("/broken")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    raw = response.text
    assert "no_such_table" not in raw
    assert "SELECT" not in raw
    assert "数据库操作失败" in response.json()["detail"]


def test_validation_errors_name_the_field_not_the_value(app_with_broken_route: TestClient) -> None:
    response = app_with_broken_route.get("/needs-int", params={"n": "3202<script>"})
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["loc"] == ["query", "n"]
    assert "<script>" not in response.text


@pytest.fixture
def app_with_broken_route(app: FastAPI) -> Iterator[TestClient]:
    """The real app plus two routes that fail the way careless code would."""
    router = APIRouter()

    @router.get("/broken")
    def broken(conn: ConnectionDep) -> None:
        conn.execute(text("SELECT secret FROM no_such_table"))

    @router.get("/needs-int")
    def needs_int(n: int) -> int:
        return n

    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
