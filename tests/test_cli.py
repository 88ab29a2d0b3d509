"""The operator commands against the real test database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from gridgov.cli import app
from gridgov.layers import migrate

runner = CliRunner()


def test_db_url_prints_a_libpq_url(engine: Engine) -> None:
    result = runner.invoke(app, ["db", "url", "--test"])
    assert result.exit_code == 0, result.output
    url = make_url(result.output.strip())
    assert url.drivername == "postgresql"
    assert (url.host, url.port, url.database) == (
        engine.url.host,
        engine.url.port,
        engine.url.database,
    )


def test_db_status_hides_password_and_shows_head(engine: Engine) -> None:
    result = runner.invoke(app, ["db", "status", "--test"])
    assert result.exit_code == 0, result.output
    assert "PostGIS" in result.output
    assert migrate.head_revision() in result.output
    assert "up to date" in result.output
    if engine.url.password:
        assert engine.url.password not in result.output
        assert "***" in result.output


def test_db_migrate_is_idempotent(engine: Engine) -> None:
    result = runner.invoke(app, ["db", "migrate", "--test"])
    assert result.exit_code == 0, result.output
    assert "already at" in result.output


def test_layers_list_names_every_layer() -> None:
    result = runner.invoke(app, ["layers", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for layer in ("district", "grid", "police_unit", "hazard_zone", "incident"):
        assert layer in result.output
    assert "网格" in result.output


def test_unreachable_database_is_a_clear_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:pw@127.0.0.1:9/gridgov")
    monkeypatch.setenv("GRIDGOV_DB_CONNECT_TIMEOUT_S", "2")
    result = runner.invoke(app, ["db", "status"])
    assert result.exit_code == 1
    assert "数据库不可用" in result.output
    assert "pw@" not in result.output


def test_serve_refuses_a_database_whose_schema_is_not_this_codes(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served anyway, every request touching a changed table failed with a 500."""
    from gridgov.cli.serve import require_current_schema
    from gridgov.settings import Settings

    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    require_current_schema(Settings())  # the test database is at head: no refusal
    monkeypatch.setattr(migrate, "head_revision", lambda: "9999_later")
    result = runner.invoke(app, ["serve", "--port", "9"], env={"COLUMNS": "200"})
    assert result.exit_code == 3, result.output
    assert "请先运行 gridgov db migrate" in result.output
    assert "9999_later" in result.output
