"""Vector tiles decoded with mapbox-vector-tile and checked against the database; the cache
is invalidated by a change to a feature in the tile (and only then)."""

from __future__ import annotations

from typing import Any

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from gridgov.gis.webmercator import tile_for
from gridgov.layers.tiles import MARGIN

Z = 15  # incidents come as points (not clusters) from zoom 15
X, Y = tile_for(120.305, 31.565, Z)


def decode(data: bytes) -> dict[str, Any]:
    return dict(mapbox_vector_tile.decode(data))


def ids_in_tile(conn: Connection, layer: str, z: int, x: int, y: int) -> set[int]:
    rows = conn.execute(
        text(
            f"SELECT id FROM {layer} WHERE ST_Intersects(geom, ST_Transform("
            "ST_TileEnvelope(:z, :x, :y, margin => :m), 4490))"
        ),
        {"z": z, "x": x, "y": y, "m": MARGIN},
    ).scalars()
    return set(rows)


def fetch(client: TestClient, layer: str, z: int = Z, x: int = X, y: int = Y) -> dict[str, Any]:
    response = client.get(f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    return decode(response.content)


def test_incident_tile_matches_database(
    client: TestClient, connection: Connection, city: list[int]
) -> None:
    features = fetch(client, "incident")["incident"]["features"]
    expected = ids_in_tile(connection, "incident", Z, X, Y)
    assert {f["id"] for f in features} == expected
    assert expected
    rows = {
        r.id: r
        for r in connection.execute(text("SELECT id, category, status, grid_code FROM incident"))
    }
    for feature in features:
        props, row = feature["properties"], rows[feature["id"]]
        assert (props["category"], props["status"], props["grid_code"]) == (
            row.category,
            row.status,
            row.grid_code,
        )
        assert "description" not in props


def test_grid_tile_and_personal_data(client: TestClient, city: list[int]) -> None:
    grids = fetch(client, "grid")["grid"]["features"]
    assert {f["properties"]["code"] for f in grids} >= {"320213001001001"}
    rentals = fetch(client, "rental_housing", 16, *tile_for(120.305, 31.565, 16))
    props = rentals["rental_housing"]["features"][0]["properties"]
    assert not {"landlord_name", "landlord_id_number", "landlord_phone"} & set(props)


def test_multi_layer_tile(client: TestClient, city: list[int]) -> None:
    response = client.get(f"/tiles/WebMercatorQuad/{Z}/{X}/{Y}?collections=grid,incident")
    assert response.status_code == 200
    assert set(decode(response.content)) == {"grid", "incident"}
    bad = client.get(f"/tiles/WebMercatorQuad/{Z}/{X}/{Y}?collections=grid,nowhere")
    assert bad.status_code == 400


def test_empty_tiles_and_zoom_range(client: TestClient, city: list[int]) -> None:
    far = tile_for(100.0, 40.0, Z)  # nothing out there
    assert (
        client.get(f"/collections/grid/tiles/WebMercatorQuad/{Z}/{far[0]}/{far[1]}").status_code
        == 204
    )
    low = tile_for(120.305, 31.565, 8)  # grid starts at zoom 12
    assert (
        client.get(f"/collections/grid/tiles/WebMercatorQuad/8/{low[0]}/{low[1]}").status_code
        == 204
    )
    assert client.get("/collections/grid/tiles/WebMercatorQuad/3/9/0").status_code == 400
    assert client.get("/collections/grid/tiles/WebMercatorQuad/x/1/1").status_code == 400
    assert client.get(f"/collections/nowhere/tiles/WebMercatorQuad/{Z}/{X}/{Y}").status_code == 404
    assert client.get(f"/collections/grid/tiles/WorldCRS84Quad/{Z}/{X}/{Y}").status_code == 404


def cached(conn: Connection, layer: str, x: int = X, y: int = Y) -> int:
    return int(
        conn.execute(
            text(
                "SELECT count(*) FROM tile_cache WHERE layer = :l AND z = :z AND x = :x AND y = :y"
            ),
            {"l": layer, "z": Z, "x": x, "y": y},
        ).scalar_one()
    )


def test_cache_is_invalidated_by_changes_in_the_tile(
    client: TestClient, connection: Connection, city: list[int]
) -> None:
    first = fetch(client, "incident")["incident"]["features"]
    assert cached(connection, "incident") == 1
    target = first[0]["id"]
    # A change far away keeps the tile cached.
    connection.execute(text("UPDATE key_site SET name = '远处' WHERE true"))
    assert cached(connection, "incident") == 1
    # Update inside the tile: the cached tile goes, the new value comes back.
    connection.execute(
        text("UPDATE incident SET category = 'environment', status = 'closed' WHERE id = :id"),
        {"id": target},
    )
    assert cached(connection, "incident") == 0
    again = {f["id"]: f for f in fetch(client, "incident")["incident"]["features"]}
    assert again[target]["properties"]["category"] == "environment"
    assert cached(connection, "incident") == 1
    # Move it out of the tile: both the old and the new place are invalidated.
    other = tile_for(120.335, 31.575, Z)
    fetch(client, "incident", Z, *other)
    assert cached(connection, "incident", *other) == 1
    connection.execute(
        text(
            "UPDATE incident SET geom = ST_SetSRID(ST_MakePoint(120.335, "
            "31.575), 4490) WHERE id = :id"
        ),
        {"id": target},
    )
    assert cached(connection, "incident") == 0
    assert cached(connection, "incident", *other) == 0
    assert target not in {f["id"] for f in fetch(client, "incident")["incident"]["features"]}
    assert target in {f["id"] for f in fetch(client, "incident", Z, *other)["incident"]["features"]}
    # Delete and insert invalidate too.
    connection.execute(text("DELETE FROM incident WHERE id = :id"), {"id": first[1]["id"]})
    assert cached(connection, "incident") == 0
    fetch(client, "incident")
    connection.execute(
        text(
            "INSERT INTO incident (township_code, district_code, category, "
            "source, reported_at, geom) SELECT township_code, district_code, "
            "category, source, reported_at, geom FROM incident WHERE id = :id"
        ),
        {"id": first[2]["id"]},
    )
    assert cached(connection, "incident") == 0


def test_tilejson_and_tile_matrix_set(client: TestClient, city: list[int]) -> None:
    body = client.get("/collections/incident/tiles/WebMercatorQuad").json()
    assert body["tilejson"] == "3.0.0"
    assert body["tiles"][0].endswith("/collections/incident/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert (body["minzoom"], body["maxzoom"]) == (12, 22)
    fields = body["vector_layers"][0]["fields"]
    assert {"id", "category", "status", "grid_code"} <= set(fields)
    tms = client.get("/tileMatrixSets/WebMercatorQuad").json()
    assert tms["id"] == "WebMercatorQuad"
    assert len(tms["tileMatrices"]) == 25
    assert tms["tileMatrices"][0]["scaleDenominator"] == pytest.approx(559082264.0287178)


def test_every_layer_has_change_triggers(connection: Connection, registry: Any) -> None:
    """A layer without them would serve stale tiles: refuse that here."""
    rows = connection.execute(
        text(
            "SELECT c.relname, count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname LIKE 'gridgov_%_changed_%' GROUP BY c.relname"
        )
    ).all()
    assert dict(rows) == {spec.table_name: 4 for spec in registry}
