"""Low-zoom incident tiles carry clusters: the trigger-kept ``tile_cluster`` table always
equals a GROUP BY over the raw incidents (after inserts, moves, status changes, deletes),
and a clustered tile's counts add up to the incidents inside it."""

from __future__ import annotations

import math
from typing import Any

import mapbox_vector_tile
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from gridgov.gis.webmercator import ORIGIN, tile_for
from gridgov.layers.registry import Registry
from gridgov.layers.tiles import CELL_BITS, EXTENT

Cells = dict[tuple[int, int, int], tuple[int, float, float]]


def expected_cells(conn: Connection, zooms: range) -> Cells:
    """Cells computed here from the raw points (3857 from PostGIS, binning in Python)."""
    points = conn.execute(
        text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(geom, 3857) p FROM incident) s")
    ).all()
    sums: dict[tuple[int, int, int], list[float]] = {}
    for z in zooms:
        size = 2 * ORIGIN / (1 << (z + CELL_BITS))
        for x, y in points:
            key = (z, math.floor((x + ORIGIN) / size), math.floor((ORIGIN - y) / size))
            acc = sums.setdefault(key, [0, 0.0, 0.0])
            acc[0] += 1
            acc[1] += x
            acc[2] += y
    return {k: (int(v[0]), v[1], v[2]) for k, v in sums.items()}


def stored_cells(conn: Connection) -> Cells:
    rows = conn.execute(
        text("SELECT z, cx, cy, n, sx, sy FROM tile_cluster WHERE layer = 'incident'")
    ).all()
    return {(r.z, r.cx, r.cy): (r.n, r.sx, r.sy) for r in rows}


def assert_same(got: Cells, want: Cells) -> None:
    assert set(got) == set(want)
    for key, (n, sx, sy) in want.items():
        assert got[key][0] == n, key
        assert math.isclose(got[key][1], sx, rel_tol=1e-12, abs_tol=1e-3)
        assert math.isclose(got[key][2], sy, rel_tol=1e-12, abs_tol=1e-3)


def cluster_zooms(registry: Registry) -> range:
    spec = registry.get("incident")
    assert spec.cluster_max_zoom is not None
    return range(spec.min_zoom, spec.cluster_max_zoom + 1)


def test_clusters_equal_group_by_after_every_kind_of_write(
    connection: Connection, city: list[int], registry: Registry
) -> None:
    zooms = cluster_zooms(registry)
    assert_same(stored_cells(connection), expected_cells(connection, zooms))
    assert stored_cells(connection)
    connection.execute(  # insert: copies of ten incidents, one far away
        text(
            "INSERT INTO incident (district_code, township_code, category, source, "
            "reported_at, geom) SELECT district_code, township_code, category, source, "
            "reported_at, CASE WHEN id = :far THEN ST_SetSRID(ST_MakePoint(120.31, "
            "31.561), 4490) ELSE geom END FROM incident WHERE id = ANY(:ids)"
        ),
        {"ids": city[:10], "far": city[0]},
    )
    assert_same(stored_cells(connection), expected_cells(connection, zooms))
    connection.execute(  # move some points
        text(
            "UPDATE incident SET geom = ST_SetSRID(ST_MakePoint(ST_X(geom) + 0.003, "
            "ST_Y(geom)), 4490) WHERE id = ANY(:ids)"
        ),
        {"ids": city[10:30]},
    )
    assert_same(stored_cells(connection), expected_cells(connection, zooms))
    connection.execute(  # change attributes only: nothing to move
        text("UPDATE incident SET status = 'closed' WHERE id = ANY(:ids)"), {"ids": city[30:60]}
    )
    assert_same(stored_cells(connection), expected_cells(connection, zooms))
    connection.execute(text("DELETE FROM incident WHERE id = ANY(:ids)"), {"ids": city[60:200]})
    assert_same(stored_cells(connection), expected_cells(connection, zooms))
    assert not connection.execute(text("SELECT 1 FROM tile_cluster WHERE n <= 0")).first()
    connection.execute(text("DELETE FROM incident"))
    assert stored_cells(connection) == {}


def inside(conn: Connection, z: int, x: int, y: int) -> int:
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM incident WHERE ST_Transform(geom, 3857) "
                "&& ST_TileEnvelope(:z, :x, :y) AND ST_X(ST_Transform(geom, 3857)) "
                "< ST_XMax(ST_TileEnvelope(:z, :x, :y)) AND ST_Y(ST_Transform(geom, 3857)) "
                "> ST_YMin(ST_TileEnvelope(:z, :x, :y))"
            ),
            {"z": z, "x": x, "y": y},
        ).scalar_one()
    )


def features(client: TestClient, z: int, x: int, y: int) -> list[dict[str, Any]]:
    response = client.get(f"/collections/incident/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert response.status_code == 200, response.text
    decoded: dict[str, Any] = dict(mapbox_vector_tile.decode(response.content))
    found: list[dict[str, Any]] = decoded["incident"]["features"]
    return found


def test_clustered_tile_counts_the_incidents_inside_it(
    client: TestClient, connection: Connection, city: list[int], registry: Registry
) -> None:
    for z in cluster_zooms(registry):
        x, y = tile_for(120.32, 31.57, z)
        found = features(client, z, x, y)
        assert all(set(f["properties"]) == {"count"} for f in found)
        assert in_tile_total(client, z, x, y) == inside(connection, z, x, y) > 0
        assert max(f["properties"]["count"] for f in found) > 1  # clusters, not points
    # above the cluster zooms every point comes with its attributes again
    z = max(cluster_zooms(registry)) + 1
    x, y = tile_for(120.305, 31.565, z)
    assert all("category" in f["properties"] for f in features(client, z, x, y))


def in_tile_total(client: TestClient, z: int, x: int, y: int) -> int:
    found = features(client, z, x, y)
    in_tile = [f for f in found if all(0 <= c < EXTENT for c in f["geometry"]["coordinates"])]
    return sum(f["properties"]["count"] for f in in_tile)


def test_clustered_tile_cache_follows_changes(
    client: TestClient, connection: Connection, city: list[int], registry: Registry
) -> None:
    z = min(cluster_zooms(registry))
    x, y = tile_for(120.32, 31.57, z)
    before = in_tile_total(client, z, x, y)
    assert connection.execute(
        text("SELECT count(*) FROM tile_cache WHERE layer = 'incident' AND z = :z"), {"z": z}
    ).scalar_one()
    connection.execute(text("DELETE FROM incident WHERE id = ANY(:ids)"), {"ids": city[:100]})
    after = in_tile_total(client, z, x, y)
    assert after == inside(connection, z, x, y) < before
