"""Every role's area scope on every path: a parametrised matrix (role × layer × path).

The city: township A (320213001, west) and township B (320213002, east) of district
320213, and a second district 320214 elsewhere. Every account but the admin is limited to
A (the grid worker to one grid of A). Whatever an account reads (items, bbox, attribute
filters, single items, tiles, exports, aggregates, incidents, the area selector) must hold
nothing of B; a row of B is a 404, exactly like a missing one; a write into B is a 403.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import Connection, MetaData, text

from gridgov.gis.webmercator import tile_for
from gridgov.layers.registry import Registry, default_registry
from gridgov.layers.spec import GeometryKind
from gridgov.security.roles import Role, can_edit, can_read
from tests.api.ogc.city import build_mini_city
from tests.conftest import ClientAs
from tests.factories import insert_row, valid_row

A, B = "320213001", "320213002"
GRID_A = "320213001001001"
CODES_B = {
    "district_code": "320213",
    "township_code": B,
    "community_code": "320213002001",
    "grid_code": "320213002001001",
}
POINT_A = (120.305, 31.565)  # in grid A-001
POINT_B = (120.325, 31.565)  # in grid B-001
BOX_B = box(120.321, 31.561, 120.329, 31.569)
SCOPE = {
    Role.ADMIN: (),
    Role.SUPERVISOR: (A,),
    Role.PLANNER: (A,),
    Role.POLICE: (A,),
    Role.GRID_WORKER: (GRID_A,),
    Role.VIEWER: (A,),
}
ROLES = list(SCOPE)
LAYERS = default_registry().ids


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> dict[str, set[int]]:
    """The mini city plus a row of every layer in B; returns the ids of B's rows per layer."""
    build_mini_city(connection, metadata, registry, incidents=24)
    connection.execute(
        text("UPDATE police_unit SET township_code = :b WHERE code = 'PCS2'"), {"b": B}
    )
    insert_row(
        connection,
        metadata,
        "district",
        valid_row(
            registry.get("district"),
            code="320214",
            name="另一区",
            geom=MultiPolygon([box(120.5, 31.5, 120.6, 31.6)]),
        ),
    )
    for layer in (
        "building",
        "hazard_zone",
        "key_site",
        "shelter",
        "rental_housing",
        "urban_unit",
        "emergency_unit",
    ):
        spec = registry.get(layer)
        codes = {spec.admin_column(lv): CODES_B[f"{lv.value}_code"] for lv in spec.admin_levels}
        geom: Any = Point(*POINT_B)
        if spec.geometry is GeometryKind.MULTIPOLYGON:
            geom = MultiPolygon([BOX_B])
        elif spec.geometry is GeometryKind.POINT_OR_POLYGON:
            geom = BOX_B
        extra: dict[str, Any] = (
            {"code": "B-UNIT-1"} if "code" in [c.name for c in spec.columns] else {}
        )
        insert_row(connection, metadata, layer, valid_row(spec, geom=geom, **codes, **extra))
    outside: dict[str, set[int]] = {}
    for spec in registry:
        if spec.level is not None:
            condition = "code = '320214'" if spec.id == "district" else "code LIKE :b || '%'"
        else:
            condition = "township_code = :b"
        ids = connection.execute(
            text(f"SELECT id FROM {spec.table_name} WHERE {condition}"), {"b": B}
        ).scalars()
        outside[spec.id] = set(ids)
        assert outside[spec.id], spec.id  # every layer has something the scoped may not see
    return outside


@pytest.fixture
def as_role(client_as: ClientAs) -> Callable[[Role], TestClient]:
    def build(role: Role) -> TestClient:
        return client_as(role, SCOPE[role])

    return build


def _inside(role: Role, props: dict[str, Any]) -> bool:
    """Independent of gridgov.layers.scope: the row's own codes against the account's."""
    if role is Role.ADMIN:
        return True
    raw = [props.get(k) for k in ("grid_code", "community_code", "township_code", "code")]
    codes = [c for c in raw if isinstance(c, str) and c.isdigit()]
    (scope,) = SCOPE[role]
    finest = max(codes, key=len)
    return finest.startswith(scope) or scope.startswith(finest)


def _items(client: TestClient, layer: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/collections/{layer}/items", params={"limit": 5000} | params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("role", ROLES)
def test_items_bbox_and_filters_stay_in_scope(
    role: Role, layer: str, city: dict[str, set[int]], as_role: Any
) -> None:
    client = as_role(role)
    if not can_read(role, layer):
        assert client.get(f"/collections/{layer}/items").status_code == 403
        assert client.get(f"/collections/{layer}").status_code == 403
        listed = [i["id"] for i in client.get("/collections").json()["collections"]]
        assert layer not in listed
        return
    features = _items(client, layer)["features"]
    ids = {f["id"] for f in features}
    assert ids  # never vacuous
    if role is Role.ADMIN:
        assert city[layer] <= ids
        return
    assert not ids & city[layer]
    assert all(_inside(role, f["properties"]) for f in features)
    # A bbox over B and an attribute filter naming B find nothing of B either.
    west, south, east, north = BOX_B.bounds
    boxed = _items(client, layer, bbox=f"{west},{south},{east},{north}")["features"]
    assert not {f["id"] for f in boxed} & city[layer]
    spec = default_registry().get(layer)
    name = "township_code" if layer != "district" else "code"
    value = B if layer != "district" else "320214"
    if (
        spec.level is None
        or layer == "district"
        or "township" in [lv.value for lv in spec.admin_levels]
    ):
        filtered = _items(client, layer, **{name: value})
        assert filtered["numberMatched"] == 0
        assert filtered["features"] == []


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("role", ROLES)
def test_single_items_outside_are_404(
    role: Role, layer: str, city: dict[str, set[int]], as_role: Any, connection: Connection
) -> None:
    client = as_role(role)
    outside_id = min(city[layer])
    response = client.get(f"/collections/{layer}/items/{outside_id}")
    if not can_read(role, layer):
        assert response.status_code == 403
        return
    if role is Role.ADMIN:
        assert response.status_code == 200
        return
    assert response.status_code == 404
    missing = client.get(f"/collections/{layer}/items/999999999")
    assert missing.status_code == 404
    assert response.json()["detail"] == missing.json()["detail"].replace("999999999", "") or (
        response.json()["title"] == missing.json()["title"]
    )
    inside_id = _items(client, layer)["features"][0]["id"]
    assert client.get(f"/collections/{layer}/items/{inside_id}").status_code == 200


def _tile_ids(client: TestClient, layer: str, lon: float, lat: float) -> set[int] | int:
    spec = default_registry().get(layer)
    # Above the cluster zooms, so that every tile carries its features with their ids.
    z = max(spec.min_zoom, (spec.cluster_max_zoom or 13) + 1)
    x, y = tile_for(lon, lat, z)
    response = client.get(f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}")
    if response.status_code != 200:
        return response.status_code
    decoded = mapbox_vector_tile.decode(response.content)
    return {int(f["id"]) for f in decoded[layer]["features"]}


def _a_vertex(geometry: dict[str, Any]) -> tuple[float, float]:
    """A point of the geometry just inside its first ring (or the point itself)."""
    coordinates: Any = geometry["coordinates"]
    while isinstance(coordinates[0], list):
        coordinates = coordinates[0]
    if geometry["type"] == "Point":
        return float(coordinates[0]), float(coordinates[1])
    ring = (
        geometry["coordinates"][0]
        if geometry["type"] == "Polygon"
        else geometry["coordinates"][0][0]
    )
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return (min(xs) + 1e-4, min(ys) + 1e-4)


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("role", ROLES)
def test_tiles_hold_nothing_outside(
    role: Role, layer: str, city: dict[str, set[int]], as_role: Any
) -> None:
    client = as_role(role)
    seen = _tile_ids(client, layer, *POINT_B)
    if not can_read(role, layer):
        assert seen == 403
        return
    outside = city[layer] if layer != "district" else set()  # 320214 lies far away
    if role is Role.ADMIN:
        assert isinstance(seen, set)
        assert seen & outside or layer == "district"
        return
    assert seen == 204 or not (seen & outside)  # type: ignore[operator]
    first = _items(client, layer, limit=1)["features"][0]
    inside = _tile_ids(client, layer, *_a_vertex(first["geometry"]))
    assert isinstance(inside, set)
    assert first["id"] in inside


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("role", ROLES)
def test_exports_hold_nothing_outside(
    role: Role, layer: str, city: dict[str, set[int]], as_role: Any
) -> None:
    client = as_role(role)
    response = client.get(f"/layers/{layer}/export", params={"format": "geojson"})
    if not can_read(role, layer):
        assert response.status_code == 403
        return
    assert response.status_code == 200
    features = json.loads(response.content)["features"]
    assert features
    assert all(_inside(role, f["properties"]) for f in features)
    if role is not Role.ADMIN:
        b_codes = {f["properties"].get("township_code") for f in features} | {
            f["properties"].get("code") for f in features
        }
        assert B not in b_codes


@pytest.mark.parametrize("role", ROLES)
def test_aggregates_count_only_the_area(
    role: Role, city: dict[str, set[int]], as_role: Any, connection: Connection
) -> None:
    client = as_role(role)
    response = client.get("/aggregates/incidents/by/township")
    h3 = client.get("/aggregates/incidents/h3", params={"resolution": 8})
    trend = client.get("/aggregates/incidents/trend")
    if not can_read(role, "incident"):
        assert {response.status_code, h3.status_code, trend.status_code} == {403}
        assert client.get("/map/heatmap").status_code == 403
        return
    assert client.get("/map/heatmap").status_code == 200
    items = response.json()["items"]
    (scope,) = SCOPE[role] or ("",)
    column = {9: "township_code", 15: "grid_code"}.get(len(scope), "district_code")
    expected = connection.execute(
        text(f"SELECT count(*) FROM incident WHERE {column} LIKE :s || '%'"), {"s": scope}
    ).scalar_one()
    assert sum(i["count"] for i in items) == expected > 0
    assert sum(f["properties"]["count"] for f in h3.json()["features"]) == expected
    assert sum(i["count"] for i in trend.json()["items"]) == expected
    codes = {i["code"] for i in items}
    assert codes == ({A, B} if role is Role.ADMIN else {A})


@pytest.mark.parametrize("role", ROLES)
def test_incident_endpoints(
    role: Role, city: dict[str, set[int]], as_role: Any, connection: Connection
) -> None:
    client = as_role(role)
    outside = min(city["incident"])
    paths = [
        f"/incidents/{outside}",
        f"/incidents/{outside}/assignment",
        f"/incidents/{outside}/history",
    ]
    listed = client.get("/incidents", params={"limit": 1000})
    moved = client.post(f"/incidents/{outside}/transitions", json={"to": "registered"})
    report = {
        "lon": POINT_B[0],
        "lat": POINT_B[1],
        "crs": "cgcs2000",
        "category": "dispute",
        "source": "grid_worker",
        "reported_at": "2026-01-01T09:00:00+08:00",
    }
    in_b = client.post("/incidents", json=report)
    in_a = client.post("/incidents", json={**report, "lon": POINT_A[0], "lat": POINT_A[1]})
    before = connection.execute(text("SELECT count(*) FROM incident")).scalar_one()
    if not can_read(role, "incident"):
        assert listed.status_code == 403
        assert all(client.get(p).status_code == 403 for p in paths)
        assert moved.status_code == 403
        assert in_b.status_code == in_a.status_code == 403
        return
    features = listed.json()["features"]
    assert features
    if role is Role.ADMIN:
        assert all(client.get(p).status_code == 200 for p in paths)
        assert in_b.status_code == in_a.status_code == 201
        return
    assert all(_inside(role, f["properties"]) for f in features)
    assert all(client.get(p).status_code == 404 for p in paths)
    assert moved.status_code == 404  # it does not exist for them: no existence leak
    assert in_b.status_code == 403  # a write outside the area
    if can_edit(role, "incident"):
        assert in_a.status_code == 201, in_a.text
        own = in_a.json()["id"]
        assert (
            client.post(f"/incidents/{own}/transitions", json={"to": "registered"}).status_code
            == 200
        )
    else:
        assert in_a.status_code == 403
    after = connection.execute(text("SELECT count(*) FROM incident")).scalar_one()
    assert after == before  # the refused report in B was not stored


@pytest.mark.parametrize(
    "role", [r for r in ROLES if r is not Role.ADMIN and can_edit(r, "incident")]
)
def test_a_ticket_number_outside_the_area_is_not_shown(
    role: Role, city: dict[str, set[int]], as_role: Any, connection: Connection
) -> None:
    """An external id is unique city-wide, so its use cannot be hidden; the incident that
    holds it, outside the caller's area, is neither returned nor described."""
    report = {
        "lon": POINT_B[0],
        "lat": POINT_B[1],
        "category": "dispute",
        "source": "hotline",
        "reported_at": "2026-01-01T09:00:00+08:00",
        "external_id": "12345-B-1",
    }
    stored = as_role(Role.ADMIN).post("/incidents", json=report)
    assert stored.status_code == 201, stored.text
    client = as_role(role)
    before = connection.execute(text("SELECT count(*) FROM incident")).scalar_one()
    for body in (report, {**report, "lon": POINT_A[0], "lat": POINT_A[1]}):
        refused = client.post("/incidents", json=body)
        assert refused.status_code == 403, refused.text
        assert "12345-B-1 属于您管辖区域之外的事件" in refused.json()["detail"]
        assert str(stored.json()["id"]) not in refused.text
    assert connection.execute(text("SELECT count(*) FROM incident")).scalar_one() == before


@pytest.mark.parametrize("role", ROLES)
def test_area_selector_and_pages(role: Role, city: dict[str, set[int]], as_role: Any) -> None:
    client = as_role(role)
    townships = {
        a["code"] for a in client.get("/map/areas", params={"level": "township"}).json()["items"]
    }
    assert townships == ({A, B} if role is Role.ADMIN else {A})
    page = client.get("/map")
    assert page.status_code == 200
    for layer in LAYERS:
        assert (f'"{layer}"' in page.text) == can_read(role, layer)


def _grid_file(code: str, west: float) -> bytes:
    feature = {
        "type": "Feature",
        "properties": {"code": code, "name": "新网格", "kind": "base"},
        "geometry": {
            "type": "MultiPolygon",
            "coordinates": [
                [
                    [
                        [west, 31.561],
                        [west + 0.001, 31.561],
                        [west + 0.001, 31.562],
                        [west, 31.562],
                        [west, 31.561],
                    ]
                ]
            ],
        },
    }
    return json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()


@pytest.mark.parametrize("role", ROLES)
def test_imports_only_into_the_area(
    role: Role, city: dict[str, set[int]], as_role: Any, connection: Connection
) -> None:
    client = as_role(role)
    # A new grid at the edge of each township's community (codes nest by prefix).
    into_b = _grid_file("320213002001009", 120.3215)
    into_a = _grid_file("320213001001009", 120.3015)
    before = connection.execute(text("SELECT count(*) FROM grid")).scalar_one()
    b = client.post("/layers/grid/import", files={"file": ("b.geojson", into_b)})
    a = client.post("/layers/grid/import", files={"file": ("a.geojson", into_a)})
    if not can_edit(role, "grid"):
        assert b.status_code == a.status_code == 403
    elif role is Role.ADMIN:
        assert b.status_code == a.status_code == 200, (b.text, a.text)
        return
    else:
        assert b.status_code == 403
        assert "管辖区域" in b.json()["detail"]
        assert a.status_code == 200, a.text
        replace = client.post(
            "/layers/grid/import", data={"mode": "replace"}, files={"file": ("a.geojson", into_a)}
        )
        assert replace.status_code == 403
        assert connection.execute(text("SELECT count(*) FROM grid")).scalar_one() == before + 1
        return
    assert connection.execute(text("SELECT count(*) FROM grid")).scalar_one() == before


def _ledger(rows: list[tuple[str, tuple[float, float]]]) -> bytes:
    """A 12345 ledger as Excel saves it: Chinese headers and titles, GBK, 上午/下午 times."""
    lines = ["编号,经度,纬度,类别,来源,上报时间"] + [
        f"{ticket},{x},{y},矛盾纠纷,12345热线,2026/1/1 下午3:05" for ticket, (x, y) in rows
    ]
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


def _stored(connection: Connection, tickets: list[str]) -> dict[str, tuple[Any, ...]]:
    rows = connection.execute(
        text(
            "SELECT external_id, grid_code, township_code, assign_method, category, source, "
            "reported_at FROM incident WHERE external_id = ANY(:t)"
        ),
        {"t": tickets},
    ).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def _grid_at(connection: Connection, point: tuple[float, float]) -> str:
    """Independent of the assignment engine: the current grid whose polygon holds the point."""
    return str(
        connection.execute(
            text(
                "SELECT code FROM grid WHERE valid_to IS NULL "
                "AND ST_Contains(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4490))"
            ),
            {"x": point[0], "y": point[1]},
        ).scalar_one()
    )


@pytest.mark.parametrize("role", ROLES)
def test_incident_upload_is_assigned_and_kept_to_the_area(
    role: Role, city: dict[str, set[int]], as_role: Any, connection: Connection
) -> None:
    """``POST /layers/incident/import`` runs the incident import: every row is assigned to
    its grid (the layer import stored them unassigned), and an account limited to an area
    may upload rows only inside it: one row outside refuses the file."""
    client = as_role(role)
    into_a = [("UP-A-1", POINT_A), ("UP-A-2", (POINT_A[0] + 0.001, POINT_A[1]))]
    mixed = [*into_a, ("UP-B-1", POINT_B)]
    tickets = [t for t, _ in mixed]
    upload = {"file": ("12345台账.csv", _ledger(mixed)), "crs": (None, "cgcs2000")}
    answer = client.post("/layers/incident/import", files=upload)
    if not can_edit(role, "incident"):
        assert answer.status_code == 403
        assert _stored(connection, tickets) == {}
        return
    if role is not Role.ADMIN:
        assert answer.status_code == 403, answer.text
        assert "1 行不在您的管辖区域内" in answer.json()["detail"]
        assert _stored(connection, tickets) == {}  # not even the rows inside the area
        mine = {"file": ("a.csv", _ledger(into_a)), "crs": (None, "cgcs2000")}
        answer = client.post("/layers/incident/import", files=mine)
        mixed = into_a
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["rows_written"] == len(mixed)
    assert body["by_method"] == {"inside": len(mixed)}
    stored = _stored(connection, tickets)
    assert set(stored) == {t for t, _ in mixed}
    for ticket, point in mixed:
        grid, township, method, category, source, at = stored[ticket]
        assert grid == _grid_at(connection, point)
        assert township == grid[:9]
        assert (method, category, source) == ("inside", "dispute", "hotline")
        assert at.isoformat() == "2026-01-01T07:05:00+00:00"  # 下午3:05 in Beijing
    again = client.post("/layers/incident/import", files=upload if role is Role.ADMIN else mine)
    assert again.status_code == 200, again.text
    assert again.json()["rows_unchanged"] == len(mixed)
    assert again.json()["rows_written"] == 0


def test_incident_upload_dry_run_answers_the_report_and_keeps_nothing(
    city: dict[str, set[int]], as_role: Any, connection: Connection
) -> None:
    rows = [("DRY-A", POINT_A), ("DRY-B", POINT_B)]
    before = connection.execute(text("SELECT count(*) FROM incident")).scalar_one()
    trial = as_role(Role.ADMIN).post(
        "/layers/incident/import",
        data={"dry_run": "true"},
        files={"file": ("ledger.csv", _ledger(rows))},
    )
    assert trial.status_code == 200, trial.text
    body = trial.json()
    assert body["dry_run"] is True
    assert body["rows_written"] == 2
    assert body["by_method"] == {"inside": 2}
    assert connection.execute(text("SELECT count(*) FROM incident")).scalar_one() == before
    # A layer file the incident import does not read is refused by name, before any row.
    package = as_role(Role.ADMIN).post(
        "/layers/incident/import", files={"file": ("ledger.gpkg", b"not a geopackage")}
    )
    assert package.status_code == 422, package.text
    assert "不支持的文件类型 .gpkg" in package.json()["detail"]


def test_incident_upload_names_bad_rows_and_writes_only_with_skip_invalid(
    city: dict[str, set[int]], as_role: Any, connection: Connection
) -> None:
    admin = as_role(Role.ADMIN)
    ledger = _ledger([("BAD-1", POINT_A), ("BAD-2", (POINT_A[1], POINT_A[0]))])  # swapped
    refused = admin.post("/layers/incident/import", files={"file": ("l.csv", ledger)})
    assert refused.status_code == 422, refused.text
    assert refused.json()["rows_written"] == 0
    assert [e["row"] for e in refused.json()["errors"]] == [2]
    assert _stored(connection, ["BAD-1", "BAD-2"]) == {}
    kept = admin.post(
        "/layers/incident/import",
        data={"skip_invalid": "true"},
        files={"file": ("l.csv", ledger)},
    )
    assert kept.status_code == 200, kept.text
    body = kept.json()
    assert (body["rows_written"], body["rows_rejected"]) == (1, 1)
    assert body["problems"][0]["row"] == 2
    assert set(_stored(connection, ["BAD-1", "BAD-2"])) == {"BAD-1"}


@pytest.mark.parametrize(
    "role", [r for r in ROLES if r is not Role.ADMIN and can_edit(r, "incident")]
)
def test_incident_upload_refuses_a_ticket_of_another_area_and_replace(
    role: Role, city: dict[str, set[int]], as_role: Any, connection: Connection
) -> None:
    """A ticket number held by an incident outside the area is refused without showing
    that incident, as ``POST /incidents`` does; the incident layer is never replaced."""
    admin, scoped = as_role(Role.ADMIN), as_role(role)
    held = admin.post(
        "/layers/incident/import", files={"file": ("b.csv", _ledger([("T-9", POINT_B)]))}
    )
    assert held.status_code == 200, held.text
    stored_id = connection.execute(
        text("SELECT id FROM incident WHERE external_id = 'T-9'")
    ).scalar_one()
    reuse = {"file": ("a.csv", _ledger([("T-9", POINT_A)]))}
    refused = scoped.post("/layers/incident/import", files=reuse)
    assert refused.status_code == 403, refused.text
    assert "第 1 行的外部编号 T-9 属于您管辖区域之外的事件" in refused.json()["detail"]
    assert str(stored_id) not in refused.text
    replace = admin.post("/layers/incident/import", data={"mode": "replace"}, files=reuse)
    assert replace.status_code == 422
    assert "不能整体替换" in replace.json()["detail"]
    assert _stored(connection, ["T-9"])["T-9"][1] == B


def _layer_ids(content: bytes) -> dict[str, set[int]]:
    decoded = mapbox_vector_tile.decode(content) if content else {}
    return {name: {int(f["id"]) for f in layer["features"]} for name, layer in decoded.items()}


@pytest.mark.parametrize("role", ROLES)
def test_multi_layer_tiles_measures_and_docking_stay_in_scope(
    role: Role, city: dict[str, set[int]], as_role: Any
) -> None:
    """The paths beside the per-layer ones: the multi-layer tile (each layer rendered with
    the scope), grid and area measures (a grid or area of B is a 404, like a missing one)
    and the docking lists (only grids of the area)."""
    client = as_role(role)
    z = 15
    x, y = tile_for(*POINT_B, z)
    tile = client.get(
        f"/tiles/WebMercatorQuad/{z}/{x}/{y}", params={"collections": "grid,incident"}
    )
    if not (can_read(role, "grid") and can_read(role, "incident")):
        assert tile.status_code == 403
    else:
        assert tile.status_code in (200, 204)
        seen = _layer_ids(tile.content)
        leaked = {name: ids & city[name] for name, ids in seen.items()}
        if role is Role.ADMIN:
            assert any(leaked.values())  # B's grid and incidents are there for the admin
        else:
            assert not any(leaked.values()), leaked
    grid_b, area_b = CODES_B["grid_code"], B
    expected = 200 if role is Role.ADMIN else 404
    assert client.get(f"/grids/{grid_b}/measures").status_code == expected
    assert client.get(f"/areas/{area_b}/measures").status_code == expected
    if role is not Role.ADMIN:  # their own area still answers
        own = GRID_A if role is Role.GRID_WORKER else A
        path = f"/grids/{own}/measures" if len(own) == 15 else f"/areas/{own}/measures"
        assert client.get(path).status_code == 200
    docking = client.get("/docking/grids", params={"unit_layer": "police_unit"})
    if not can_read(role, "police_unit"):
        assert docking.status_code == 403
        return
    assert docking.status_code == 200, docking.text
    codes = {f["properties"]["grid_code"] for f in docking.json()["features"]}
    if role is not Role.ADMIN:
        assert not {c for c in codes if c.startswith(B)}
