"""The app factory: no engine, settings or registry is created at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from gridgov import __version__
from gridgov.api import docs
from gridgov.api.admission import AdmissionMiddleware
from gridgov.api.auth import SessionCache, get_principal, get_read_principal
from gridgov.api.errors import COMMON_PROBLEMS, SESSION_PROBLEMS, install_error_handlers
from gridgov.api.limits import BodyLimitMiddleware
from gridgov.api.routes import (
    aggregates,
    auth,
    docking,
    grids,
    health,
    incidents,
    layer_io,
    maps,
    measures,
    ogc,
    optimise,
    plan_units,
    plans,
    tiles,
    units,
)
from gridgov.layers import unit_plans
from gridgov.layers.db import make_engine, make_read_engine
from gridgov.layers.registry import Registry, default_registry
from gridgov.settings import Settings

log = logging.getLogger("gridgov.api")

STATIC_DIR = Path(__file__).resolve().parent / "static"

DESCRIPTION = """
网格化服务管理 GIS 服务：网格、危险源、出租房屋、重点场所等图层，事件分派与地图服务。

GIS service for city grid management: layers, incident assignment and map APIs.
"""


async def _apply_due_unit_plans(app: FastAPI) -> None:
    """Unit plans published for a later day take force when it comes (the unit tables hold
    the units in force only): every ``unit_plan_poll_s`` seconds, in a worker thread."""
    settings: Settings = app.state.settings

    def run() -> None:
        unit_plans.apply_due(
            app.state.engine,
            app.state.registry,
            tolerance_m=settings.assign_tolerance_m,
            max_vertices=settings.grid_max_vertices,
        )

    while True:
        try:
            await anyio.to_thread.run_sync(run)
        except Exception:  # the database may be down for a while: try again next round
            log.exception("applying due unit plans failed")
        await anyio.sleep(settings.unit_plan_poll_s)


def create_app(settings: Settings, registry: Registry | None = None) -> FastAPI:
    """Build the app for ``settings``; the database is reached lazily, per request.

    Public without a session: ``/health``, ``/login`` and ``/auth/login``, the static
    assets, the API description (``/docs``, ``/openapi.json``) and the OGC landing and
    conformance documents (they describe the interface, never data). Every other route
    needs a session (401 without one; the map pages redirect to ``/login``).
    """
    settings.require_secret_key()  # refuse to start without a signing key
    engine = make_engine(settings)
    read_engine = make_read_engine(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.warm_up:
            # Before serving: the first heatmap request must not pay for loading the cube.
            await anyio.to_thread.run_sync(aggregates.warm_up, app)
        async with anyio.create_task_group() as background:
            if settings.unit_plan_poll_s > 0:
                background.start_soon(_apply_due_unit_plans, app)
            yield
            background.cancel_scope.cancel()
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
    app.state.session_cache = SessionCache(settings.session_cache_seconds)
    install_error_handlers(app)
    # Added before the body limit, so inside it (the last added runs first): an oversized
    # request is refused at once rather than after waiting in line.
    app.add_middleware(
        AdmissionMiddleware,
        limit=settings.max_active_requests,
        wait_s=settings.request_queue_timeout_s,
        retry_after_s=settings.retry_after_s,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        default=settings.max_body_bytes,
        larger=[(layer_io.IMPORT_PATH, settings.max_upload_bytes)],
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(docs.router, responses=COMMON_PROBLEMS)
    app.include_router(health.router, responses=COMMON_PROBLEMS)
    app.include_router(auth.router, responses=SESSION_PROBLEMS)
    # the landing page `/` and `/conformance`; pages redirect to /login, their data needs a session
    app.include_router(ogc.public_router, responses=COMMON_PROBLEMS)
    app.include_router(maps.router, responses=SESSION_PROBLEMS)
    # Tiles check the session on their read connection, through the short session cache.
    # First of the private routes: a map view asks for tiles far more often than for
    # anything else, and routes are matched in order (no other path has their shape).
    tile_session = [Depends(get_read_principal)]
    app.include_router(tiles.router, dependencies=tile_session, responses=SESSION_PROBLEMS)
    session = [Depends(get_principal, scope="function")]
    for private in (
        layer_io,
        incidents,
        docking,
        measures,
        grids,
        plans,
        optimise,
        ogc,
        aggregates,
        units,
    ):
        app.include_router(private.router, dependencies=session, responses=SESSION_PROBLEMS)
    app.include_router(plans.grids_router, dependencies=session, responses=SESSION_PROBLEMS)
    app.include_router(plan_units.router, dependencies=session, responses=SESSION_PROBLEMS)
    app.include_router(units.live_router, dependencies=session, responses=SESSION_PROBLEMS)

    return app


def app_from_environment() -> FastAPI:
    """The app for settings from the environment: a factory for multi-worker servers
    (``uvicorn gridgov.api.app:app_from_environment --factory --workers N``)."""
    return create_app(Settings())
