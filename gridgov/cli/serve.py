"""``gridgov serve``: the web app and API."""

from __future__ import annotations

from typing import Annotated

import typer

from gridgov.cli.common import console, err_console
from gridgov.errors import GridgovError
from gridgov.layers import migrate
from gridgov.layers.db import connect, make_engine
from gridgov.settings import Settings

OUT_OF_DATE = 3  # the exit code of `gridgov db status` for the same state


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (GRIDGOV_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (GRIDGOV_PORT).")] = None,
) -> None:
    """Serve the web app and API (http://127.0.0.1:8000 by default)."""
    import uvicorn

    from gridgov.api.app import create_app

    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings().model_copy(update=updates)
    require_current_schema(settings)
    console.print(f"gridgov: http://{settings.host}:{settings.port}  (接口文档 /docs)")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


def require_current_schema(settings: Settings) -> None:
    """Refuse to serve a database whose schema is not this code's: every request touching
    a changed table would fail with a 500 (a column the code reads is missing). A
    database that cannot be reached is served all the same: requests answer 503 until it
    is back."""
    try:
        engine = make_engine(settings, settings.require_database_url())
        try:
            with connect(engine) as conn:
                current = migrate.current_revision(conn)
        finally:
            engine.dispose()
    except GridgovError:
        return
    head = migrate.head_revision()
    if current != head:
        err_console.print(
            f"[bold red]数据库结构版本为 {current or '（未迁移）'}，本程序需要 {head}：请先运行 "
            f"gridgov db migrate[/] (the database schema is at {current or '(none)'}, this "
            f"code needs {head}: run `gridgov db migrate` first)",
            highlight=False,
        )
        raise typer.Exit(code=OUT_OF_DATE)
