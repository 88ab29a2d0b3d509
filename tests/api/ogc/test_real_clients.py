"""Real clients against a live server: GDAL's OGC API Features driver (via pyogrio).

The server runs in its own process: pyogrio holds the GIL while GDAL fetches features, so a
server thread in the test process would never answer. It uses its own connections, so the
mini city is committed here and deleted again when the module ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pyogrio
import pytest
from sqlalchemy import Engine, MetaData, text

from gridgov.layers.registry import Registry, default_registry
from gridgov.settings import Settings
from tests.api.ogc.city import build_mini_city, remove_everything
from tests.live import committed_login, free_port

SERVER = (
    "import sys, uvicorn; from gridgov.api.app import create_app; "
    "from gridgov.settings import Settings; "
    "uvicorn.run(create_app(Settings()), host='127.0.0.1', port=int(sys.argv[1]), "
    "log_level='warning')"
)


@contextmanager
def serve_process(settings: Settings) -> Iterator[str]:
    """gridgov in a uvicorn subprocess on loopback, on the test database."""
    port = free_port()
    # Both names: a DATABASE_URL in the environment would win over GRIDGOV_DATABASE_URL.
    url = str(settings.database_url)
    env = {**os.environ, "DATABASE_URL": url, "GRIDGOV_DATABASE_URL": url}
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/conformance", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the gridgov server did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def live_city(
    engine: Engine, metadata: MetaData, registry: Registry, settings: Settings
) -> Iterator[str]:
    with engine.begin() as conn:
        build_mini_city(conn, metadata, registry, incidents=1_234)
    try:
        with committed_login(engine, settings) as token, serve_process(settings) as base:
            # GDAL sends the session cookie with every (GET) request it makes.
            pyogrio.set_gdal_config_options({"GDAL_HTTP_COOKIE": f"gridgov_session={token}"})
            try:
                yield base
            finally:
                pyogrio.set_gdal_config_options({"GDAL_HTTP_COOKIE": None})
    finally:
        with engine.begin() as conn:
            remove_everything(conn, registry)


def test_gdal_lists_every_collection(live_city: str, registry: Registry) -> None:
    layers = pyogrio.list_layers(f"OAPIF:{live_city}/")
    assert {str(name) for name in layers[:, 0]} == set(registry.ids)


@pytest.mark.parametrize("layer", default_registry().ids)
def test_gdal_reads_every_feature(live_city: str, engine: Engine, layer: str) -> None:
    frame = pyogrio.read_dataframe(f"OAPIF:{live_city}/", layer=layer)
    with engine.connect() as conn:
        where = " WHERE valid_to IS NULL OR valid_to > now()" if layer == "grid" else ""
        expected = conn.execute(text(f"SELECT count(*) FROM {layer}{where}")).scalar_one()
    assert len(frame) == expected > 0
    assert frame.geometry.notna().all()
    bounds = frame.total_bounds
    assert 120.2 <= bounds[0] <= bounds[2] <= 120.4, bounds  # lon/lat, not swapped
    assert 31.5 <= bounds[1] <= bounds[3] <= 31.7, bounds
    if layer == "rental_housing":
        assert set(frame["landlord_name"]) == {"张*"}
