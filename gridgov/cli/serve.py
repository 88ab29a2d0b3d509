"""``gridgov serve``: the web app and API."""

from __future__ import annotations

from typing import Annotated

import typer

from gridgov.cli.common import console
from gridgov.settings import Settings


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (GRIDGOV_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (GRIDGOV_PORT).")] = None,
) -> None:
    """Serve the web app and API (http://127.0.0.1:8000 by default)."""
    import uvicorn

    from gridgov.api.app import create_app

    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings().model_copy(update=updates)
    console.print(f"gridgov: http://{settings.host}:{settings.port}  (接口文档 /docs)")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)
