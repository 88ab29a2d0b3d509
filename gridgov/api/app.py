"""The app factory: no engine, settings or registry is created at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gridgov import __version__
from gridgov.api import docs
from gridgov.api.errors import install_error_handlers
from gridgov.api.routes import aggregates, docking, health, incidents, layer_io, maps, ogc, tiles
from gridgov.layers.db import make_engine, make_read_engine
from gridgov.layers.registry import Registry, default_registry
from gridgov.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"

DESCRIPTION = """
网格化服务管理 GIS 服务：网格、危险源、出租房屋、重点场所等图层，事件分派与地图服务。

GIS service for city grid management: layers, incident assignment and map APIs.
"""


def create_app(settings: Settings, registry: Registry | None = None) -> FastAPI:
    """Build the app for ``settings``; the database is reached lazily, per request."""
    engine = make_engine(settings)
    read_engine = make_read_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.warm_up:
            # Before serving: the first heatmap request must not pay for loading the cube.
            await anyio.to_thread.run_sync(aggregates.warm_up, app)
        yield
        engine.dispose()
        read_engine.dispose()

    app = FastAPI(
        title="gridgov 网格化服务管理",
        description=DESCRIPTION,
        version=__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.read_engine = read_engine
    app.state.registry = registry or default_registry()
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(docs.router)
    app.include_router(health.router)
    app.include_router(layer_io.router)
    app.include_router(incidents.router)
    app.include_router(maps.router)
    app.include_router(docking.router)
    app.include_router(ogc.router)  # includes the landing page `/`
    app.include_router(tiles.router)
    app.include_router(aggregates.router)

    return app
