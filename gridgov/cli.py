"""``gridgov``: the one command-line entry point for operators."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import URL

from gridgov.errors import GridgovError
from gridgov.layers import migrate
from gridgov.layers.db import check_server, connect, ensure_database, make_engine, server_label
from gridgov.layers.registry import default_registry
from gridgov.settings import Settings, libpq_url

app = typer.Typer(
    help="gridgov 网格化服务管理 GIS 服务 (grid management GIS service)", no_args_is_help=True
)
db_app = typer.Typer(help="数据库 (database): migrate, status, url, create", no_args_is_help=True)
layers_app = typer.Typer(help="图层注册表 (layer registry)", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(layers_app, name="layers")

console = Console()
err_console = Console(stderr=True)

TestOption = Annotated[bool, typer.Option("--test", help="Use the test database instead.")]


def _fail(error: GridgovError) -> typer.Exit:
    err_console.print(
        f"[bold red]{error.title_zh} ({error.title_en}):[/] {escape(str(error))}", highlight=False
    )
    return typer.Exit(code=1)


def _url(settings: Settings, test: bool) -> URL:
    return settings.require_test_database_url() if test else settings.require_database_url()


@db_app.command("url")
def db_url(test: TestOption = False) -> None:
    """Print the connection URL alone, for `psql "$(gridgov db url)"` and scripts."""
    try:
        print(libpq_url(_url(Settings(), test)))
    except GridgovError as error:
        raise _fail(error) from error


@db_app.command("status")
def db_status(test: TestOption = False) -> None:
    """Server, PostGIS version and migration state (the password is never shown)."""
    settings = Settings()
    try:
        url = _url(settings, test)
        engine = make_engine(settings, url)
        info = check_server(engine)
        with connect(engine) as conn:
            current = migrate.current_revision(conn)
        engine.dispose()
    except GridgovError as error:
        raise _fail(error) from error
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


@db_app.command("migrate")
def db_migrate(
    test: TestOption = False,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Bring the database schema to the newest migration (or to --revision)."""
    settings = Settings()
    try:
        url = _url(settings, test)
        engine = make_engine(settings, url)
        check_server(engine)
        with connect(engine) as conn:
            before = migrate.current_revision(conn)
            migrate.upgrade(conn, revision)
            conn.commit()
            after = migrate.current_revision(conn)
        engine.dispose()
    except GridgovError as error:
        raise _fail(error) from error
    if before == after:
        console.print(f"{server_label(url)}: already at {after} 无需迁移")
    else:
        console.print(f"{server_label(url)}: migrated {before or 'empty'} → {after} 迁移完成")


@db_app.command("create")
def db_create(test: TestOption = False) -> None:
    """Create the database and its extensions if missing (for a PostGIS at DATABASE_URL)."""
    settings = Settings()
    try:
        url = _url(settings, test)
        created = ensure_database(settings, url)
    except GridgovError as error:
        raise _fail(error) from error
    console.print(f"{server_label(url)}: {'created 已创建' if created else 'exists 已存在'}")


@db_app.command("revision")
def db_revision(message: Annotated[str, typer.Option("-m", "--message")]) -> None:
    """Autogenerate a migration from the registry (for developers, after adding a spec)."""
    settings = Settings()
    try:
        migrate.new_revision(settings.require_database_url(), message)
    except GridgovError as error:
        raise _fail(error) from error


@layers_app.command("list")
def layers_list() -> None:
    """Every registered layer with its table, geometry, admin codes and zoom range."""
    table = Table(title="图层 (layers)")
    for column in ("id", "名称", "title", "geometry", "admin codes", "zoom"):
        table.add_column(column)
    for spec in default_registry():
        table.add_row(
            spec.id,
            spec.title_zh,
            spec.title_en,
            spec.geometry.value,
            ", ".join(level.value for level in spec.admin_levels),
            f"{spec.min_zoom}–{spec.max_zoom}",
        )
    console.print(table)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (GRIDGOV_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (GRIDGOV_PORT).")] = None,
) -> None:
    """Serve the web app and API (http://127.0.0.1:8000 by default)."""
    import uvicorn

    from gridgov.api.app import create_app

    settings = Settings()
    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = settings.model_copy(update=updates)
    console.print(f"gridgov: http://{settings.host}:{settings.port}  (接口文档 /docs)")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    app()
