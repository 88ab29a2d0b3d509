"""What makes tiles fast must not change what they say: the stored Web Mercator geometry
follows every write, clusters computed live equal the stored ones and follow the area
chosen on the map (and the caller's scope), and the session cache of the tile routes
forgets a logged-out session at once and a revoked one after its bounded delay."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from gridgov.api.auth import SessionCache
from gridgov.gis.webmercator import tile_for
from gridgov.layers import accounts, tiles
from gridgov.layers.registry import Registry
from gridgov.layers.tables import TILE_GEOMETRY, has_tile_geometry
from gridgov.security import tokens
from tests.api.ogc.city import GRIDS

TOWNSHIP_1, COMMUNITY_1 = GRIDS[0][0], GRIDS[0][1]
LON, LAT = 120.32, 31.57  # the middle of the mini city


def out_of_step(conn: Connection, table: str) -> int:
    """Rows whose stored 3857 geometry is not the 3857 projection of ``geom``."""
    return int(
        conn.execute(
            text(
                f"SELECT count(*) FROM {table} WHERE {TILE_GEOMETRY} IS NULL "
                f"OR NOT ST_Equals({TILE_GEOMETRY}, ST_Transform(geom, 3857)) "
                f"OR ST_SRID({TILE_GEOMETRY}) <> 3857"
            )
        ).scalar_one()
    )


def test_stored_web_mercator_geometry_follows_inserts_and_edits(
    connection: Connection, city: list[int], registry: Registry
) -> None:
    polygon_layers = [s for s in registry if has_tile_geometry(s)]
    assert {s.id for s in polygon_layers} >= {"grid", "community", "district", "police_unit"}
    for spec in polygon_layers:
        assert out_of_step(connection, spec.table_name) == 0, spec.id
    count = connection.execute(text("SELECT count(*) FROM grid")).scalar_one()
    assert count == len(GRIDS)
    # an edit that moves a boundary: the stored copy moves with it, whoever writes
    connection.execute(
        text("UPDATE grid SET geom = ST_Multi(ST_Buffer(geom, -0.001)) WHERE code = :c"),
        {"c": GRIDS[0][2]},
    )
    moved = connection.execute(
        text(
            f"SELECT ST_Area({TILE_GEOMETRY}) AS a, ST_Area(ST_Transform(geom, 3857)) AS b "
            "FROM grid WHERE code = :c"
        ),
        {"c": GRIDS[0][2]},
    ).one()
    assert moved.a == pytest.approx(moved.b)
    assert out_of_step(connection, "grid") == 0
    # nobody can write it by hand
    with pytest.raises(Exception, match="generated"), connection.begin_nested():
        connection.execute(text(f"UPDATE grid SET {TILE_GEOMETRY} = NULL"))
    # point layers keep one geometry (a point is cheap to project; imports stay lean)
    assert not has_tile_geometry(registry.get("incident"))


def decode(data: bytes, layer: str) -> list[dict[str, Any]]:
    if not data:
        return []
    found: list[dict[str, Any]] = (
        dict(mapbox_vector_tile.decode(data)).get(layer, {}).get("features", [])
    )
    return found


def clusters(features: list[dict[str, Any]]) -> Counter[tuple[int, int, int]]:
    return Counter((f["properties"]["count"], *f["geometry"]["coordinates"]) for f in features)


def cluster_zooms(registry: Registry) -> range:
    spec = registry.get("incident")
    assert spec.cluster_max_zoom is not None
    return range(spec.min_zoom, spec.cluster_max_zoom + 1)


def test_live_clusters_equal_the_stored_clusters(
    connection: Connection, city: list[int], registry: Registry
) -> None:
    spec = registry.get("incident")
    for z in cluster_zooms(registry):
        x, y = tile_for(LON, LAT, z)
        params = {"z": z, "x": x, "y": y, "margin": tiles.MARGIN, "layer": spec.id}
        stored = connection.execute(text(tiles._mvt_sql(spec, z)), params).scalar_one()
        live_sql = f"WITH {tiles._ENV} {tiles._live_clusters_sql(spec, 'true')}"
        live = connection.execute(text(live_sql), params).scalar_one()
        assert clusters(decode(bytes(live), "incident")) == clusters(
            decode(bytes(stored), "incident")
        )
        assert sum(c[0] for c in clusters(decode(bytes(live), "incident")).elements()) > 100


def in_tile(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in features if all(0 <= c < tiles.EXTENT for c in f["geometry"]["coordinates"])]


def counted(conn: Connection, z: int, x: int, y: int, where: str, **params: str) -> int:
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM incident, LATERAL ST_Transform(geom, 3857) p "
                "WHERE ST_X(p) >= ST_XMin(ST_TileEnvelope(:z, :x, :y)) "
                "AND ST_X(p) < ST_XMax(ST_TileEnvelope(:z, :x, :y)) "
                "AND ST_Y(p) > ST_YMin(ST_TileEnvelope(:z, :x, :y)) "
                f"AND ST_Y(p) <= ST_YMax(ST_TileEnvelope(:z, :x, :y)) AND {where}"
            ),
            {"z": z, "x": x, "y": y, **params},
        ).scalar_one()
    )


def test_clusters_follow_the_area_chosen_on_the_map(
    client: TestClient, connection: Connection, city: list[int], registry: Registry
) -> None:
    for z in cluster_zooms(registry):
        x, y = tile_for(LON, LAT, z)
        url = f"/collections/incident/tiles/WebMercatorQuad/{z}/{x}/{y}"
        whole = in_tile(decode(client.get(url).content, "incident"))
        chosen = client.get(url, params={"area": COMMUNITY_1})
        assert chosen.status_code == 200, chosen.text
        part = in_tile(decode(chosen.content, "incident"))
        assert all(set(f["properties"]) == {"count"} for f in part)  # still clusters
        total = sum(f["properties"]["count"] for f in part)
        want = counted(connection, z, x, y, "community_code = :c", c=COMMUNITY_1)
        assert total == want > 0
        assert total < sum(f["properties"]["count"] for f in whole)
        township = client.get(url, params={"area": TOWNSHIP_1})
        assert sum(
            f["properties"]["count"] for f in in_tile(decode(township.content, "incident"))
        ) == (counted(connection, z, x, y, "township_code = :t", t=TOWNSHIP_1))
    # above the cluster zooms the features themselves are limited to the area
    z = max(cluster_zooms(registry)) + 1
    x, y = tile_for(120.305, 31.565, z)
    url = f"/collections/incident/tiles/WebMercatorQuad/{z}/{x}/{y}"
    features = decode(client.get(url, params={"area": COMMUNITY_1}).content, "incident")
    assert features
    assert {f["properties"]["community_code"] for f in features} == {COMMUNITY_1}
    # the multi-layer tile takes the same filter
    multi = client.get(
        f"/tiles/WebMercatorQuad/{z}/{x}/{y}",
        params={"collections": "grid,incident", "area": "320213002001"},
    )
    assert multi.status_code in (200, 204)
    decoded = mapbox_vector_tile.decode(multi.content) if multi.content else {}
    for layer in decoded.values():
        assert {f["properties"]["community_code"] for f in layer["features"]} <= {"320213002001"}


@pytest.mark.parametrize(
    "area", ["32021", "abc123", "3202130010011", "", "３２０２１３", "²２０２１３"]
)
def test_a_bad_area_is_a_400_naming_it(client: TestClient, city: list[int], area: str) -> None:
    response = client.get(
        "/collections/incident/tiles/WebMercatorQuad/12/3428/1665", params={"area": area}
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "area" in detail
    assert "区县" in detail  # Chinese first, then English


def test_scoped_clusters_count_only_the_callers_area(
    client_as: Any, connection: Connection, city: list[int], registry: Registry
) -> None:
    scoped = client_as("supervisor", [COMMUNITY_1])
    z = min(cluster_zooms(registry))
    x, y = tile_for(LON, LAT, z)
    url = f"/collections/incident/tiles/WebMercatorQuad/{z}/{x}/{y}"
    found = in_tile(decode(scoped.get(url).content, "incident"))
    assert all(set(f["properties"]) == {"count"} for f in found)
    assert sum(f["properties"]["count"] for f in found) == counted(
        connection, z, x, y, "community_code = :c", c=COMMUNITY_1
    )
    # choosing another area never widens the scope: nothing of it is shown
    other = scoped.get(url, params={"area": "320213002001"})
    assert other.status_code == 204


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_tile_session_cache_bounds_revocation(
    app: FastAPI, connection: Connection, admin_user: Any, settings: Any, city: list[int]
) -> None:
    clock = Clock()
    app.state.session_cache = SessionCache(5.0, clock=clock)
    session_id, token = _session(connection, admin_user, settings)
    url = TILE_URL
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.get(url).status_code in (200, 204)
        # revoked elsewhere (another worker, the CLI): tiles see it within the cache's life
        accounts.end_session(connection, session_id)
        assert client.get(url).status_code in (200, 204)
        assert client.get("/collections").status_code == 401  # other routes: at once
        clock.now += 5.01
        assert client.get(url).status_code == 401
        # a forged token is refused whatever the cache holds
        bad = client.get(url, headers={"Authorization": f"Bearer {token}x"})
        assert bad.status_code == 401


def test_tile_token_cache_still_checks_expiry(
    app: FastAPI, connection: Connection, admin_user: Any, settings: Any
) -> None:
    """A verified token is remembered (not decoded again for each tile), but never past its
    own expiry: remembered claims that have expired are not used (the token is decoded
    again), and a logout forgets the token with the session."""
    cache = app.state.session_cache = SessionCache(60.0)
    session_id, token = _session(connection, admin_user, settings)
    url = TILE_URL
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.get(url).status_code in (200, 204)
        claims = cache.verified(token)
        assert claims is not None
        assert claims.session_id == session_id
        expired = replace(claims, expires_at=datetime.now(UTC) - timedelta(seconds=1))
        cache.remember(token, expired)
        assert cache.verified(token) is None
        assert client.get(url).status_code in (200, 204)  # decoded again: still valid
        assert client.post("/auth/logout").status_code == 200
        assert cache.verified(token) is None  # logout forgets the token too
        assert client.get(url).status_code == 401


def test_logout_forgets_the_session_at_once(
    app: FastAPI, connection: Connection, admin_user: Any, settings: Any
) -> None:
    app.state.session_cache = SessionCache(60.0)
    _, token = _session(connection, admin_user, settings)
    url = TILE_URL
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.get(url).status_code in (200, 204)
        assert client.post("/auth/logout").status_code == 200
        assert client.get(url).status_code == 401


TILE_URL = "/collections/grid/tiles/WebMercatorQuad/14/13666/6676"


def _session(connection: Connection, user: Any, settings: Any) -> tuple[str, str]:
    """A session of ``user`` in the test's transaction and its signed token."""
    session_id, _ = accounts.open_session(connection, user.id, "test", _hour())
    token, _ = tokens.issue(
        settings.require_secret_key(), user.id, user.username, session_id, _hour()
    )
    return session_id, token


def _hour() -> Any:
    from datetime import timedelta

    return timedelta(hours=1)
