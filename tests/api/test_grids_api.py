"""``/grids`` and the measures over HTTP on the small city: ETags, refusals, every edit."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon, box, mapping, shape
from sqlalchemy import Connection, MetaData, text

from gridgov.layers.accounts import User
from gridgov.layers.registry import Registry
from tests.conftest import ClientAs
from tests.small_city import HOLE, MID, E, N, S, W, build_small_city

G1, G2 = "320213001001001", "320213001001002"
PROBLEM = "application/problem+json"


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    return build_small_city(connection, metadata, registry)


def feature(geom: Any, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": mapping(geom), "properties": properties}


def read(client: TestClient, code: str) -> tuple[dict[str, Any], str]:
    response = client.get(f"/grids/{code}")
    assert response.status_code == 200, response.text
    return response.json(), response.headers["ETag"]


@pytest.mark.usefixtures("city")
def test_get_returns_the_feature_and_its_etag(client: TestClient) -> None:
    body, tag = read(client, G2)
    assert body["id"] == G2
    assert body["properties"]["etag"] == tag
    assert shape(body["geometry"]).equals(box(MID, S, E, N))
    assert client.get("/grids/320213001001099").status_code == 404


@pytest.mark.usefixtures("city")
def test_if_match_missing_is_428_and_stale_is_412(client: TestClient) -> None:
    _, tag = read(client, G2)
    body = {**feature(box(MID, S, E, N), name="东片"), "reason": "改名"}
    missing = client.put(f"/grids/{G2}", json=body)
    assert missing.status_code == 428
    assert missing.headers["content-type"].startswith(PROBLEM)
    assert "If-Match" in missing.json()["detail"]
    done = client.put(f"/grids/{G2}", json=body, headers={"If-Match": tag})
    assert done.status_code == 200, done.text
    new_tag = done.headers["ETag"]
    assert new_tag != tag
    assert read(client, G2)[1] == new_tag
    stale = client.put(f"/grids/{G2}", json=body, headers={"If-Match": tag})
    assert stale.status_code == 412
    assert stale.json()["codes"] == G2
    assert stale.json()["current_etags"] == new_tag


@pytest.mark.usefixtures("city")
def test_overlap_is_409_with_the_geometry_then_taken(client: TestClient) -> None:
    _, tag = read(client, G1)
    grown = box(W, S, 120.313, N).difference(HOLE)
    body = {**feature(grown), "reason": "扩大"}
    refused = client.put(f"/grids/{G1}", json=body, headers={"If-Match": tag})
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["reason"] == "overlap"
    assert problem["title"] == "网格编辑与相邻网格冲突 (Grid edit conflicts with its neighbours)"
    drawn = problem["problems"]["features"][0]
    assert drawn["properties"]["codes"] == [G2]
    assert shape(drawn["geometry"]).symmetric_difference(box(MID, S, 120.313, N)).area < 1e-12
    taken = client.put(f"/grids/{G1}?overlap=take", json=body, headers={"If-Match": tag})
    assert taken.status_code == 200, taken.text
    assert taken.json()["followers"] == [G2]
    east, _ = read(client, G2)
    assert shape(east["geometry"]).symmetric_difference(box(120.313, S, E, N)).area < 1e-12


@pytest.mark.usefixtures("city")
def test_outside_the_community_and_bad_geometry_are_422(client: TestClient) -> None:
    _, tag = read(client, G2)
    body = {**feature(box(MID, S, 120.33, N)), "reason": "越界"}
    outside = client.put(f"/grids/{G2}?overlap=take", json=body, headers={"If-Match": tag})
    assert outside.status_code == 422
    piece = outside.json()["problems"]["features"][0]
    assert piece["properties"]["kind"] == "outside-community"
    assert outside.json()["title"] == "网格编辑无效 (Invalid grid edit)"
    assert shape(piece["geometry"]).symmetric_difference(box(E, S, 120.33, N)).area < 1e-12
    bowtie = {"type": "Polygon", "coordinates": [[[MID, S], [E, N], [E, S], [MID, N], [MID, S]]]}
    invalid = client.put(
        f"/grids/{G2}",
        json={"type": "Feature", "geometry": bowtie, "reason": "x"},
        headers={"If-Match": tag},
    )
    assert invalid.status_code == 422
    assert invalid.json()["title"] == "网格编辑无效 (Invalid grid edit)"
    where = invalid.json()["problems"]["features"][0]["geometry"]
    assert where["type"] == "Point"
    no_reason = client.put(
        f"/grids/{G2}", json=feature(box(MID, S, E, N)), headers={"If-Match": tag}
    )
    assert no_reason.status_code == 422


@pytest.mark.usefixtures("city")
def test_create_split_merge_boundary_retire_and_the_log(
    client: TestClient, admin_user: User
) -> None:
    """The actor in the edit log is the logged-in account."""
    _, tag2 = read(client, G2)
    split = client.post(
        f"/grids/{G2}/split",
        json={
            "line": {
                "type": "LineString",
                "coordinates": [[MID - 0.001, 31.57], [E + 0.001, 31.57]],
            },
            "reason": "拆分",
        },
        headers={"If-Match": tag2},
    )
    assert split.status_code == 200, split.text
    assert split.json()["created"] == ["320213001001003"]
    _, tag1 = read(client, G1)
    _, tag2 = read(client, G2)
    # …002 is now the southern half only: the boundary moves east there.
    west = box(W, S, 120.312, 31.57).union(box(W, 31.57, MID, N)).difference(HOLE)
    moved = client.post(
        f"/grids/{G1}/boundary",
        json={"neighbour": G2, "reason": "对齐道路", "geometry": mapping(west)},
        headers={"If-Match": f"{tag1}, {tag2}"},
    )
    assert moved.status_code == 200, moved.text
    _, tag2 = read(client, G2)
    _, tag3 = read(client, "320213001001003")
    merged = client.post(
        "/grids/merge",
        json={"codes": [G2, "320213001001003"], "reason": "合并"},
        headers={"If-Match": f"{tag2},{tag3}"},
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["retired"] == ["320213001001003"]
    _, tag2 = read(client, G2)
    retired = client.delete(
        f"/grids/{G2}",
        params={"reason": "撤销", "gap": "give"},
        headers={"If-Match": tag2},
    )
    assert retired.status_code == 200, retired.text
    assert client.get(f"/grids/{G2}").status_code == 404
    created = client.post(
        "/grids?overlap=take",
        json={
            **feature(box(E - 0.002, S, E, N), name="新网格"),
            "community_code": "320213001001",
            "reason": "新建",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["created"] == ["320213001001004"]  # …002 and …003 never reused
    assert created.headers["Location"] == "/grids/320213001001004"
    log = client.get("/grids/edits", params={"community_code": "320213001001"}).json()["items"]
    assert [e["operation"] for e in log] == ["create", "retire", "merge", "move_boundary", "split"]
    assert {e["actor"] for e in log} == {admin_user.username}
    history = client.get(f"/grids/{G2}/versions").json()["features"]
    assert history[-1]["properties"]["valid_to"] is not None


@pytest.mark.usefixtures("city")
def test_measures_endpoints(client: TestClient) -> None:
    grid = client.get(f"/grids/{G2}/measures", params={"from": "2025-01-01", "to": "2025-12-31"})
    assert grid.status_code == 200, grid.text
    assert grid.json()["period"]["days"] == 365
    assert {d["unit_level"] for d in grid.json()["docking"]} >= {"station", "policing_area"}
    area = client.get("/areas/320213001001/measures")
    assert area.status_code == 200
    assert [g["code"] for g in area.json()["grids"]] == [G1, G2]
    assert area.json()["coverage"]["pieces"]["features"][0]["properties"]["kind"] == "gap"
    assert client.get("/areas/320213001/measures").json()["level"] == "township"
    assert client.get("/areas/3202/measures").status_code == 422
    proposed = client.post(
        "/measures",
        json={
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "id": "n", "geometry": mapping(box(W, 31.57, E, N))},
                {"type": "Feature", "id": "s", "geometry": mapping(box(W, S, E, 31.57))},
            ],
        },
    )
    assert proposed.status_code == 200, proposed.text
    assert [g["key"] for g in proposed.json()["grids"]] == ["n", "s"]
    assert proposed.json()["balance"]["workload"]["n"] == 2
    bad = client.get(f"/grids/{G2}/measures", params={"from": "2025-12-31", "to": "2025-01-01"})
    assert bad.status_code == 422


@pytest.mark.usefixtures("city")
def test_planners_edit_grids_only_in_their_area(
    client_as: ClientAs, connection: Connection
) -> None:
    """In scope: read, edit, and the edit is audited. Out of scope: reads 404, writes 403.
    Roles that may not edit grids get 403 even inside their area."""
    mine = client_as("planner", ["320213001"])
    body, tag = read(mine, G2)
    edit = {**feature(shape(body["geometry"]), name="东片"), "reason": "改名"}
    # the audit log is append-only: committed page tests (the editor) leave their edits in it
    count = text("SELECT count(*) FROM audit_log WHERE action = 'grid_edit' AND outcome = 'ok'")
    audited = connection.execute(count).scalar_one()
    done = mine.put(f"/grids/{G2}", json=edit, headers={"If-Match": tag})
    assert done.status_code == 200, done.text
    assert connection.execute(count).scalar_one() == audited + 1

    elsewhere = client_as("planner", ["320213002"])
    assert elsewhere.get(f"/grids/{G2}").status_code == 404
    assert elsewhere.get(f"/grids/{G2}/measures").status_code == 404
    assert elsewhere.get("/areas/320213001001/measures").status_code == 404
    assert elsewhere.get("/grids/edits").json()["items"] == []
    tag = done.headers["ETag"]
    refused = elsewhere.put(f"/grids/{G2}", json=edit, headers={"If-Match": tag})
    assert refused.status_code == 403
    proposal = {"type": "FeatureCollection", "features": [feature(box(MID, S, E, N))]}
    assert elsewhere.post("/measures", json=proposal).status_code == 403
    assert mine.post("/measures", json=proposal).status_code == 200

    viewer = client_as("viewer", ["320213001"])
    assert viewer.get(f"/grids/{G2}").status_code == 200
    assert viewer.put(f"/grids/{G2}", json=edit, headers={"If-Match": tag}).status_code == 403


@pytest.mark.usefixtures("city")
def test_measures_scope_ignores_slivers_of_a_neighbouring_community(
    client_as: ClientAs, connection: Connection, metadata: MetaData, registry: Registry
) -> None:
    """Community polygons overlap their neighbours by slivers (real and demo data): a grid
    lying in the planner's own community is measured even where another township's
    community overlaps it by dust; reaching further into that community is refused."""
    from tests.factories import insert_row, valid_row

    # another township's community, overlapping ours by a 0.1 mm strip along lon = E
    neighbour = MultiPolygon([box(E - 1e-9, S, E + 0.01, N)])
    township = valid_row(
        registry.get("township"), code="320213002", district_code="320213", geom=neighbour
    )
    insert_row(connection, metadata, "township", township)
    community = valid_row(
        registry.get("community"),
        code="320213002001",
        township_code="320213002",
        district_code="320213",
        geom=neighbour,
    )
    insert_row(connection, metadata, "community", community)
    mine = client_as("planner", ["320213001"])
    own = {"type": "FeatureCollection", "features": [feature(box(MID, S, E, N))]}
    assert mine.post("/measures", json=own).status_code == 200
    # sent back with rounded coordinates, a grid strays a centimetre past its edge along
    # the whole border: a ribbon of more than the dust's area, but no real reach
    rounded = {"type": "FeatureCollection", "features": [feature(box(MID, S, E + 1e-7, N))]}
    assert mine.post("/measures", json=rounded).status_code == 200
    reaching = {"type": "FeatureCollection", "features": [feature(box(MID, S, E + 0.001, N))]}
    refused = mine.post("/measures", json=reaching)
    assert refused.status_code == 403
    assert "320213002001" in refused.json()["detail"]
