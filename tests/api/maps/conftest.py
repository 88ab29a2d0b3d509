"""Fixtures of the map-page tests: a small committed demo city, a live server, Chromium.

The live server has its own connections, so the demo is committed (not rolled back like
other tests' data) and every table is truncated afterwards so that later tests start empty.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser
from sqlalchemy import Engine, MetaData, text

from gridgov.api.app import create_app
from gridgov.gis import wuxi
from gridgov.gis.demo.city import DemoInputs, DemoOptions, build_city
from gridgov.layers.demo import load_city
from gridgov.layers.registry import Registry
from gridgov.security.roles import Role
from gridgov.settings import Settings
from tests.api.maps.pages import BASEMAP_PREFIX, PNG_1X1
from tests.live import chromium, committed_login, serve

SMALL_CITY = DemoOptions(incidents=3000, rentals=300, hazards=50)


def truncate_all(engine: Engine, metadata: MetaData) -> None:
    """Empty every gridgov table (layers, support tables, caches) in one statement."""
    names = ", ".join(f'"{name}"' for name in metadata.tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="package")
def demo_city(
    engine: Engine, registry: Registry, metadata: MetaData, settings: Settings
) -> Iterator[None]:
    """The small Wuxi demo (3,000 incidents), committed once for every page test."""
    inputs = DemoInputs(wuxi.load_districts(), wuxi.load_townships(), wuxi.load_communities())
    city = build_city(inputs, SMALL_CITY)
    truncate_all(engine, metadata)  # a crashed earlier run may have left rows behind
    with engine.begin() as conn:
        load_city(conn, registry, metadata, city, settings.assign_tolerance_m)
    try:
        yield
    finally:
        truncate_all(engine, metadata)


def with_test_basemap(app: FastAPI) -> FastAPI:
    """Add a local base-map tile route (a 1×1 PNG for every tile), for base-map tests."""

    async def tile(z: int, x: int, y: int) -> object:
        from fastapi.responses import Response

        return Response(PNG_1X1, media_type="image/png")

    app.add_api_route(BASEMAP_PREFIX + "{z}/{x}/{y}.png", tile, include_in_schema=False)
    return app


@pytest.fixture(scope="package")
def live_token(engine: Engine, settings: Settings, demo_city: None) -> Iterator[str]:
    """A committed admin account (``tests.live.LIVE_USER``) and a session token for it;
    pages log in through the real login page (``pages.open_page``)."""
    with committed_login(engine, settings) as token:
        yield token


@pytest.fixture
def live_auth(live_token: str) -> dict[str, str]:
    """Headers for plain HTTP calls to the live server."""
    return {"Authorization": f"Bearer {live_token}"}


@pytest.fixture(scope="module")
def live_url(settings: Settings, demo_city: None, live_token: str) -> Iterator[str]:
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


# The editor pages (grids): the first township with grids, and a planner and a viewer of it.
@pytest.fixture(scope="module")
def township(engine: Engine, demo_city: None) -> str:
    with engine.connect() as conn:
        code: str = conn.execute(
            text("SELECT min(township_code) FROM grid WHERE valid_to IS NULL")
        ).scalar_one()
    return code


@pytest.fixture(scope="module")
def planner_token(engine: Engine, settings: Settings, township: str) -> Iterator[str]:
    with committed_login(engine, settings, Role.PLANNER, (township,), "editor_planner") as token:
        yield token


@pytest.fixture(scope="module")
def viewer_token(engine: Engine, settings: Settings, township: str) -> Iterator[str]:
    with committed_login(engine, settings, Role.VIEWER, (township,), "editor_viewer") as token:
        yield token
