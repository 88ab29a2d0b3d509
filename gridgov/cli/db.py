"""``gridgov db``: create, migrate and inspect the database."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gridgov.cli.common import BenchOption, TestOption, console, database_url, fail
from gridgov.errors import GridgovError
from gridgov.layers import migrate
from gridgov.layers.db import check_server, connect, ensure_database, make_engine, server_label
from gridgov.settings import Settings, libpq_url

app = typer.Typer(help="数据库 (database): migrate, status, url, create", no_args_is_help=True)


@app.command("url")
def db_url(test: TestOption = False) -> None:
    """Print the connection URL alone, for `psql "$(gridgov db url)"` and scripts."""
    try:
        print(libpq_url(database_url(Settings(), test)))
    except GridgovError as error:
        raise fail(error) from error


@app.command("status")
def db_status(test: TestOption = False) -> None:
    """Server, PostGIS version and migration state (the password is never shown)."""
    settings = Settings()
    try:
        url = database_url(settings, test)
        engine = make_engine(settings, url)
        info = check_server(engine)
        with connect(engine) as conn:
            current = migrate.current_revision(conn)
        engine.dispose()
    except GridgovError as error:
        raise fail(error) from error
    head = migrate.head_revision()
    table = Table(show_header=False, box=None)
    table.add_row("database 数据库", url.render_as_string(hide_password=True))
    table.add_row("PostgreSQL", info.postgres_version)
    table.add_row("PostGIS", info.postgis_version)
    table.add_row("migration 迁移", f"{current or '(none 未迁移)'}  (head {head})")
    state = "up to date 已是最新" if current == head else "needs `gridgov db migrate` 需要迁移"
    table.add_row("state 状态", state)
    console.print(table)
    if current != head:
        raise typer.Exit(code=3)


@app.command("migrate")
def db_migrate(
    test: TestOption = False,
    bench: BenchOption = False,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Bring the database schema to the newest migration (or to --revision)."""
    settings = Settings()
    try:
        url = database_url(settings, test, bench)
        engine = make_engine(settings, url)
        check_server(engine)
        with connect(engine) as conn:
            before = migrate.current_revision(conn)
            migrate.upgrade(conn, revision)
            conn.commit()
            after = migrate.current_revision(conn)
        engine.dispose()
    except GridgovError as error:
        raise fail(error) from error
    if before == after:
        console.print(f"{server_label(url)}: already at {after} 无需迁移")
    else:
        console.print(f"{server_label(url)}: migrated {before or 'empty'} → {after} 迁移完成")


@app.command("create")
def db_create(test: TestOption = False, bench: BenchOption = False) -> None:
    """Create the database and its extensions if missing (for a PostGIS at DATABASE_URL)."""
    settings = Settings()
    try:
        url = database_url(settings, test, bench)
        created = ensure_database(settings, url)
    except GridgovError as error:
        raise fail(error) from error
    console.print(f"{server_label(url)}: {'created 已创建' if created else 'exists 已存在'}")


@app.command("revision")
def db_revision(message: Annotated[str, typer.Option("-m", "--message")]) -> None:
    """Autogenerate a migration from the registry (for developers, after adding a spec)."""
    settings = Settings()
    try:
        migrate.new_revision(settings.require_database_url(), message)
    except GridgovError as error:
        raise fail(error) from error
