"""OGC API – Features on the mini city: paging, filters, CRS axis order, masking, errors."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import Connection, text

from tests.api.ogc.city import LANDLORD

EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def count(conn: Connection, sql: str, **params: object) -> int:
    return int(conn.execute(text(sql), params).scalar_one())


def test_landing_conformance_and_collections(client: TestClient, city: list[int]) -> None:
    landing = client.get("/").json()
    rels = {link["rel"]: link["href"] for link in landing["links"]}
    assert rels["service-doc"].endswith("/docs")
    assert rels["data"].endswith("/collections")
    conformance = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conformance
    collections = client.get("/collections").json()["collections"]
    grid = next(c for c in collections if c["id"] == "grid")
    assert grid["title"] == "网格"
    assert grid["storageCrs"] == EPSG + "4490"
    assert {CRS84, EPSG + "4326", EPSG + "4490", EPSG + "4549"} <= set(grid["crs"])
    assert len(collections) == 13


def test_paging_follows_next_links(client: TestClient, city: list[int]) -> None:
    seen: list[int] = []
    url: str | None = "/collections/incident/items?limit=70"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/geo+json")
        body = response.json()
        assert body["numberMatched"] == len(city)
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert sorted(seen) == sorted(city)


def test_attribute_filters_match_sql(
    client: TestClient, connection: Connection, city: list[int]
) -> None:
    body = client.get(
        "/collections/incident/items",
        params={
            "category": "dispute,public_order",
            "status": "closed",
            "limit": 1000,
            "township_code": "320213002",
        },
    ).json()
    expected = count(
        connection,
        "SELECT count(*) FROM incident WHERE category IN ('dispute', 'public_order') "
        "AND status = 'closed' AND township_code = '320213002'",
    )
    assert body["numberMatched"] == expected == len(body["features"]) > 0
    prefix = client.get("/collections/grid/items", params={"code": "320213001*"}).json()
    assert {f["properties"]["code"] for f in prefix["features"]} == {
        "320213001001001",
        "320213001001002",
    }
    level = client.get("/collections/police_unit/items", params={"level": "station"}).json()
    assert {f["properties"]["code"] for f in level["features"]} == {"PCS1", "PCS2"}


def test_datetime_on_incidents_and_grid_versions(
    client: TestClient, connection: Connection, city: list[int]
) -> None:
    interval = "2025-03-01T00:00:00Z/2025-03-31T23:59:59Z"
    body = client.get(
        "/collections/incident/items", params={"datetime": interval, "limit": 1000}
    ).json()
    expected = count(
        connection,
        "SELECT count(*) FROM incident WHERE reported_at BETWEEN "
        "'2025-03-01T00:00:00Z' AND '2025-03-31T23:59:59Z'",
    )
    assert body["numberMatched"] == expected > 0
    # Retire one grid version: by default only versions in force now are served.
    connection.execute(
        text("UPDATE grid SET valid_to = now() - interval '1 day' WHERE code = '320213001001001'")
    )
    now = client.get("/collections/grid/items").json()
    assert now["numberMatched"] == 3
    past = client.get("/collections/grid/items", params={"datetime": "2024-06-01T00:00:00Z"})
    assert past.json()["numberMatched"] == 4
    refused = client.get("/collections/district/items", params={"datetime": "2025-01-01"})
    assert refused.status_code == 400


def test_personal_data_is_masked(client: TestClient, city: list[int]) -> None:
    body = client.get("/collections/rental_housing/items").json()
    assert body["features"]
    for feature in body["features"]:
        props = feature["properties"]
        assert props["landlord_name"] == "张*"
        assert props["landlord_id_number"] == "3202**********123X"
        assert props["landlord_phone"] == "138****5678"
    one = client.get(f"/collections/rental_housing/items/{body['features'][0]['id']}").text
    for value in LANDLORD.values():
        assert value not in one


def test_crs_axis_order(client: TestClient, connection: Connection, city: list[int]) -> None:
    fid = city[0]
    lon, lat = connection.execute(
        text("SELECT ST_X(geom), ST_Y(geom) FROM incident WHERE id = :id"), {"id": fid}
    ).one()

    def coords(crs: str | None) -> tuple[list[float], str]:
        params = {"crs": crs} if crs else {}
        response = client.get(f"/collections/incident/items/{fid}", params=params)
        assert response.status_code == 200
        return response.json()["geometry"]["coordinates"], response.headers["content-crs"]

    xy, header = coords(None)
    assert xy == pytest.approx([lon, lat], abs=1e-7)
    assert header == f"<{CRS84}>"
    for code in ("4326", "4490"):
        yx, header = coords(EPSG + code)
        assert yx == pytest.approx([lat, lon], abs=1e-6)
        assert header == f"<{EPSG}{code}>"
    northing_easting, _ = coords(EPSG + "4549")
    easting, northing = Transformer.from_crs(4490, 4549, always_xy=True).transform(lon, lat)
    assert northing_easting == pytest.approx([northing, easting], abs=0.01)


def test_bbox_crs_axis_order(client: TestClient, connection: Connection, city: list[int]) -> None:
    inside = count(
        connection,
        "SELECT count(*) FROM incident WHERE ST_Intersects(geom, "
        "ST_MakeEnvelope(120.30, 31.56, 120.31, 31.57, 4490))",
    )
    assert inside > 0

    def matched(bbox: str, crs: str | None) -> int:
        params: dict[str, str] = {"bbox": bbox, "limit": "1000"}
        if crs:
            params["bbox-crs"] = crs
        response = client.get("/collections/incident/items", params=params)
        assert response.status_code == 200, response.text
        return int(response.json()["numberMatched"])

    assert matched("120.30,31.56,120.31,31.57", None) == inside
    assert matched("120.30,31.56,120.31,31.57", CRS84) == inside
    assert matched("31.56,120.30,31.57,120.31", EPSG + "4326") == inside
    assert matched("31.56,120.30,31.57,120.31", EPSG + "4490") == inside
    to_gk = Transformer.from_crs(4490, 4549, always_xy=True)
    (e1, e2), (n1, n2) = to_gk.transform([120.3, 120.31], [31.56, 31.57])
    # EPSG:4549 axis order is northing, easting; a 1 m inset avoids edge points.
    got = matched(f"{n1 + 1},{e1 + 1},{n2 - 1},{e2 - 1}", EPSG + "4549")
    assert abs(got - inside) <= 2


@pytest.mark.parametrize(
    ("url", "status", "parameter"),
    [
        ("/collections/incident/items?limit=10001", 400, "limit"),
        ("/collections/incident/items?limit=0", 400, "limit"),
        ("/collections/incident/items?limit=abc", 400, "limit"),
        ("/collections/incident/items?colour=red", 400, "colour"),
        ("/collections/incident/items?bbox=1,2,nan,4", 400, "bbox"),
        ("/collections/incident/items?bbox=120.4,31.5,120.3,31.6", 400, "bbox"),
        ("/collections/incident/items?bbox=120.3,31.5,120.4", 400, "bbox"),
        ("/collections/incident/items?bbox=120.3,31.5,inf,31.6", 400, "bbox"),
        ("/collections/incident/items?crs=EPSG:3857", 400, "crs"),
        ("/collections/incident/items?category=nonsense", 400, "category"),
        ("/collections/incident/items?district_code=32x", 400, "district_code"),
        ("/collections/incident/items?datetime=yesterday", 400, "datetime"),
        ("/collections/nowhere/items", 404, None),
        ("/collections/nowhere", 404, None),
        ("/collections/incident/items/999999999", 404, None),
        ("/collections/incident/items/abc", 404, None),
    ],
)
def test_errors_are_problems(
    client: TestClient, city: list[int], url: str, status: int, parameter: str | None
) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if parameter:
        assert response.json()["parameter"] == parameter


def test_queryables_list_filters_not_personal_data(client: TestClient) -> None:
    body = client.get("/collections/rental_housing/queryables").json()
    assert body["type"] == "object"
    assert "is_group_rental" in body["properties"]
    assert not {"landlord_name", "landlord_id_number", "landlord_phone"} & set(body["properties"])
    incident = client.get("/collections/incident/queryables").json()["properties"]
    assert incident["category"]["enum"][0] == "dispute"
    assert incident["district_code"]["type"] == "string"
