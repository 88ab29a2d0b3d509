"""``/units/{layer}`` over HTTP on the small city: ETags, refusals with geometry, every
operation, versions, the edit and audit logs, incidents and docking, and who may edit.

Police station PCS1 covers the township (lon 120.30–120.34); its two community policing
areas JWQ-S and JWQ-N split it at lat 31.57 (here given PCS1 as their parent). A second
station PCS2 lies east of it (120.34–120.36), so that stations have a neighbour.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping, shape
from sqlalchemy import Connection, MetaData, text

from gridgov.layers import incidents
from gridgov.layers.accounts import User
from gridgov.layers.incidents import NewIncident
from gridgov.layers.registry import Registry
from tests.conftest import ClientAs
from tests.small_city import HOLE, MID, TOLERANCE, N, S, W
from tests.unit_city import EAST, build_unit_city

PROBLEM = "application/problem+json"
SOUTH, NORTH = box(W, S, EAST, 31.57), box(W, 31.57, EAST, N)
SPOT = (120.305, 31.571)  # in JWQ-N, 110 m north of the shared edge


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    return build_unit_city(connection, metadata, registry)


@pytest.fixture
def spot_incident(city: Connection) -> int:
    return incidents.create(
        city,
        NewIncident(*SPOT, "dispute", "hotline", datetime(2026, 3, 1, tzinfo=UTC)),
        TOLERANCE,
        "test",
    )


def read(client: TestClient, code: str, layer: str = "police_unit") -> tuple[dict[str, Any], str]:
    response = client.get(f"/units/{layer}/{code}")
    assert response.status_code == 200, response.text
    return response.json(), response.headers["ETag"]


def same(geometry: dict[str, Any], expected: Any) -> bool:
    return bool(shape(geometry).symmetric_difference(expected).area < 1e-12)


def marks(conn: Connection) -> tuple[int, int]:
    """The highest ids of the append-only logs, taken when a test starts."""
    audit_max = conn.execute(text("SELECT COALESCE(max(id), 0) FROM audit_log")).scalar_one()
    edit_max = conn.execute(text("SELECT COALESCE(max(id), 0) FROM unit_edit")).scalar_one()
    return int(audit_max), int(edit_max)


def test_get_with_etag_then_428_and_412(city: Connection, client: TestClient) -> None:
    body, tag = read(client, "JWQ-S")
    assert body["properties"]["etag"] == tag
    assert body["properties"]["level"] == "policing_area"
    assert same(body["geometry"], SOUTH)
    assert client.get("/units/police_unit/NOPE").status_code == 404
    assert client.get("/units/grid/JWQ-S").status_code == 422  # not a unit layer
    request = {"type": "Feature", "geometry": mapping(SOUTH), "reason": "核对"}
    missing = client.put("/units/police_unit/JWQ-S", json=request)
    assert missing.status_code == 428
    assert missing.headers["content-type"].startswith(PROBLEM)
    done = client.put("/units/police_unit/JWQ-S", json=request, headers={"If-Match": tag})
    assert done.status_code == 200, done.text
    assert done.headers["ETag"] != tag
    stale = client.put("/units/police_unit/JWQ-S", json=request, headers={"If-Match": tag})
    assert stale.status_code == 412
    assert stale.json()["current_etags"] == done.headers["ETag"]


def test_move_boundary_neighbour_follows_incident_and_docking_move(
    city: Connection, client: TestClient, spot_incident: int, admin_user: User
) -> None:
    audit_start, edit_start = marks(city)
    before = city.execute(
        text("SELECT policing_area_code FROM incident WHERE id = :i"), {"i": spot_incident}
    ).scalar_one()
    assert before == "JWQ-N"
    _, tag_s = read(client, "JWQ-S")
    _, tag_n = read(client, "JWQ-N")
    grown = box(W, S, EAST, 31.572)
    moved = client.post(
        "/units/police_unit/JWQ-S/boundary",
        json={"neighbour": "JWQ-N", "geometry": mapping(grown), "reason": "按道路调整警务区"},
        headers={"If-Match": f"{tag_s}, {tag_n}"},
    )
    assert moved.status_code == 200, moved.text
    answer = moved.json()
    units = {f["id"]: f for f in answer["units"]["features"]}
    assert same(units["JWQ-S"]["geometry"], grown)
    assert same(units["JWQ-N"]["geometry"], box(W, 31.572, EAST, N))
    assert answer["incidents"]["moves"] == [
        {"column": "policing_area_code", "from": "JWQ-N", "to": "JWQ-S", "count": 1}
    ]
    after = city.execute(
        text("SELECT policing_area_code FROM incident WHERE id = :i"), {"i": spot_incident}
    ).scalar_one()
    assert after == "JWQ-S"
    # Docking: grid …001 (the west half, with a hole in the south) now lies more in JWQ-S.
    g1 = box(W, S, MID, N).difference(HOLE)
    expected = g1.intersection(grown).area / g1.area
    share = city.execute(
        text(
            "SELECT gu.share FROM grid_unit gu JOIN grid g ON g.id = gu.grid_id "
            "WHERE g.code = '320213001001001' AND gu.unit_code = 'JWQ-S'"
        )
    ).scalar_one()
    assert share == pytest.approx(expected, rel=1e-6)
    assert expected > 0.5  # it was below a half before (the hole is in the south)
    # Versions: the state before the edit and the new one, for both units.
    history = client.get("/units/police_unit/JWQ-S/versions").json()["versions"]
    assert len(history) == 2
    assert history[0]["valid_to"] == history[1]["valid_from"] == answer["edit"]["at"]
    assert history[1]["valid_to"] is None
    assert history[1]["edit_id"] == answer["edit"]["id"]
    assert same(history[0]["geometry"], SOUTH)
    edits = city.execute(
        text("SELECT operation, actor, reason, codes FROM unit_edit WHERE id > :m"),
        {"m": edit_start},
    ).all()
    assert [tuple(e[:3]) for e in edits] == [
        ("move_boundary", admin_user.username, "按道路调整警务区")
    ]
    assert sorted(edits[0].codes) == ["JWQ-N", "JWQ-S"]
    audit = city.execute(
        text("SELECT action, target, detail FROM audit_log WHERE id > :m AND action = 'unit_edit'"),
        {"m": audit_start},
    ).all()
    assert len(audit) == 1
    assert audit[0].target == "police_unit/district/320213"
    assert audit[0].detail["reason"] == "按道路调整警务区"
    log = client.get("/units/edits?layer=police_unit&code=JWQ-N").json()["items"]
    assert log[0]["id"] == answer["edit"]["id"]


def test_overlap_and_gap_are_409_with_geometry_then_take_and_give(
    city: Connection, client: TestClient
) -> None:
    _, tag = read(client, "JWQ-S")
    grown = {"type": "Feature", "geometry": mapping(box(W, S, EAST, 31.575)), "reason": "扩大"}
    refused = client.put("/units/police_unit/JWQ-S", json=grown, headers={"If-Match": tag})
    assert refused.status_code == 409
    piece = refused.json()["problems"]["features"][0]
    assert piece["properties"]["kind"] == "overlap"
    assert piece["properties"]["codes"] == ["JWQ-N"]
    assert same(piece["geometry"], box(W, 31.57, EAST, 31.575))
    assert "警务单元" in refused.json()["detail"]
    shrunk = {"type": "Feature", "geometry": mapping(box(W, S, EAST, 31.565)), "reason": "缩小"}
    gap = client.put("/units/police_unit/JWQ-S", json=shrunk, headers={"If-Match": tag})
    assert gap.status_code == 409
    hole = gap.json()["problems"]["features"][0]
    assert hole["properties"]["kind"] == "gap"
    assert same(hole["geometry"], box(W, 31.565, EAST, 31.57))
    given = client.put("/units/police_unit/JWQ-S?gap=give", json=shrunk, headers={"If-Match": tag})
    assert given.status_code == 200, given.text
    assert given.json()["followers"] == ["JWQ-N"]
    north, _tag_n = read(client, "JWQ-N")
    assert same(north["geometry"], box(W, 31.565, EAST, N))
    _, tag = read(client, "JWQ-S")
    taken = client.put(
        "/units/police_unit/JWQ-S?overlap=take", json=grown, headers={"If-Match": tag}
    )
    assert taken.status_code == 200, taken.text
    north, _ = read(client, "JWQ-N")
    assert same(north["geometry"], box(W, 31.575, EAST, N))


def test_outside_parent_and_child_outside_are_refused(city: Connection, client: TestClient) -> None:
    _, tag = read(client, "JWQ-S")
    beyond = {"type": "Feature", "geometry": mapping(box(W, 31.55, EAST, 31.57)), "reason": "越界"}
    outside = client.put("/units/police_unit/JWQ-S", json=beyond, headers={"If-Match": tag})
    assert outside.status_code == 422
    piece = outside.json()["problems"]["features"][0]
    assert piece["properties"]["kind"] == "outside-parent"
    assert same(piece["geometry"], box(W, 31.55, EAST, S))
    _, tag1 = read(client, "PCS1")
    _, tag2 = read(client, "PCS2")
    narrower = box(W, S, 120.33, N)
    clash = client.post(
        "/units/police_unit/PCS1/boundary",
        json={"neighbour": "PCS2", "geometry": mapping(narrower), "reason": "调整派出所辖区"},
        headers={"If-Match": f"{tag1},{tag2}"},
    )
    assert clash.status_code == 409, clash.text
    problems = clash.json()["problems"]["features"]
    assert {p["properties"]["kind"] for p in problems} == {"child-outside"}
    stuck = shapely.union_all([shape(p["geometry"]) for p in problems])
    assert stuck.symmetric_difference(box(120.33, S, EAST, N)).area < 1e-12
    retire = client.delete(
        "/units/police_unit/PCS1?reason=撤销&gap=give", headers={"If-Match": tag1}
    )
    assert retire.status_code == 409
    assert retire.json()["reason"] == "has-children"


def test_split_merge_retire_and_codes_are_never_reused(
    city: Connection, client: TestClient, spot_incident: int
) -> None:
    _, tag = read(client, "JWQ-N")
    line = {"type": "LineString", "coordinates": [[120.325, 31.569], [120.325, 31.581]]}
    split = client.post(
        "/units/police_unit/JWQ-N/split",
        json={"line": line, "reason": "拆分警务区"},
        headers={"If-Match": tag},
    )
    assert split.status_code == 200, split.text
    assert split.json()["created"] == ["PCS1-01"]
    piece, piece_tag = read(client, "PCS1-01")
    assert piece["properties"]["parent_code"] == "PCS1"
    assert piece["properties"]["level"] == "policing_area"
    assert piece["properties"]["township_code"] == "320213001"
    _, tag = read(client, "JWQ-N")
    merged = client.post(
        "/units/police_unit/merge",
        json={"codes": ["JWQ-N", "PCS1-01"], "reason": "合并回原警务区"},
        headers={"If-Match": f"{tag},{piece_tag}"},
    )
    assert merged.status_code == 200, merged.text
    assert merged.json()["retired"] == ["PCS1-01"]
    assert client.get("/units/police_unit/PCS1-01").status_code == 404
    (only,) = client.get("/units/police_unit/PCS1-01/versions").json()["versions"]
    assert only["valid_to"] == merged.json()["edit"]["at"]  # opened by the split, closed
    north, tag = read(client, "JWQ-N")
    assert same(north["geometry"], NORTH)
    again = client.post(
        "/units/police_unit/JWQ-N/split",
        json={"line": line, "reason": "再次拆分"},
        headers={"If-Match": tag},
    )
    assert again.status_code == 200, again.text
    assert again.json()["created"] == ["PCS1-02"]  # 01 was retired: never given again
    # Retire JWQ-N: its area and its incident go to JWQ-S (gap=give), then the row leaves.
    _, tag = read(client, "JWQ-N")
    refused = client.delete("/units/police_unit/JWQ-N?reason=撤销", headers={"If-Match": tag})
    assert refused.status_code == 409  # a gap, not chosen
    retired = client.delete(
        "/units/police_unit/JWQ-N?reason=撤销警务区&gap=give", headers={"If-Match": tag}
    )
    assert retired.status_code == 200, retired.text
    assert retired.json()["retired"] == ["JWQ-N"]
    assert client.get("/units/police_unit/JWQ-N").status_code == 404
    owner = city.execute(
        text("SELECT policing_area_code FROM incident WHERE id = :i"), {"i": spot_incident}
    ).scalar_one()
    assert owner == "JWQ-S"
    versions = client.get("/units/police_unit/JWQ-N/versions").json()["versions"]
    assert versions[-1]["valid_to"] is not None  # closed, kept


def test_refusals_are_titled_by_the_layer_edited(city: Connection, client: TestClient) -> None:
    """A refused unit edit names the unit kind (警务单元…), never 网格, whichever rule refused
    it: a clash with a neighbour (409), the shape itself (422), or the request's GeoJSON."""
    _, tag = read(client, "JWQ-S")
    grown = {"type": "Feature", "geometry": mapping(box(W, S, EAST, 31.575)), "reason": "扩大"}
    clash = client.put("/units/police_unit/JWQ-S", json=grown, headers={"If-Match": tag})
    assert clash.status_code == 409
    assert clash.json()["title"] == (
        "警务单元编辑与相邻单元冲突 (Police unit edit conflicts with its neighbours)"
    )
    beyond = {"type": "Feature", "geometry": mapping(box(W, 31.55, EAST, 31.57)), "reason": "越界"}
    outside = client.put("/units/police_unit/JWQ-S", json=beyond, headers={"If-Match": tag})
    assert outside.status_code == 422
    assert outside.json()["title"] == "警务单元编辑无效 (Invalid police unit edit)"
    # the other layers: a new urban unit over an existing one, a line that is no line
    east = box(EAST, S, 120.36, N)
    first = client.post(
        "/units/urban_unit",
        json={
            "district_code": "320213",
            "geometry": mapping(east),
            "properties": {"name": "东城管", "department": "城管局"},
            "reason": "新设",
        },
    )
    assert first.status_code == 201, first.text
    over = client.post(
        "/units/urban_unit",
        json={
            "district_code": "320213",
            "geometry": mapping(box(120.34, S, 120.35, N)),
            "properties": {"name": "重叠", "department": "城管局"},
            "reason": "重叠",
        },
    )
    assert over.status_code == 409
    assert over.json()["title"] == (
        "城管单元编辑与相邻单元冲突 (Urban-management unit edit conflicts with its neighbours)"
    )
    code = first.json()["created"][0]
    _, tag = read(client, code, "urban_unit")
    malformed = client.post(
        f"/units/urban_unit/{code}/split",
        json={"line": {"type": "LineString", "coordinates": "x"}, "reason": "拆分"},
        headers={"If-Match": tag},
    )
    assert malformed.status_code == 422
    assert malformed.json()["title"] == "城管单元编辑无效 (Invalid urban-management unit edit)"
    made = client.post(
        "/units/emergency_unit",
        json={
            "district_code": "320213",
            "geometry": mapping(east),
            "properties": {"name": "东应急", "department": "应急局"},
            "reason": "新设",
        },
    )
    assert made.status_code == 201, made.text
    code = made.json()["created"][0]
    _, tag = read(client, code, "emergency_unit")
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[EAST, S], [120.36, N], [120.36, S], [EAST, N], [EAST, S]]],
    }
    invalid = client.put(
        f"/units/emergency_unit/{code}",
        json={"type": "Feature", "geometry": bowtie, "reason": "x"},
        headers={"If-Match": tag},
    )
    assert invalid.status_code == 422
    assert invalid.json()["title"] == "应急单元编辑无效 (Invalid emergency unit edit)"


def test_create_patch_and_other_layers(city: Connection, client: TestClient) -> None:
    east = box(EAST, S, 120.36, N)
    created = client.post(
        "/units/urban_unit",
        json={
            "district_code": "320213",
            "geometry": mapping(east),
            "properties": {"name": "东城管", "department": "城管局"},
            "reason": "新设城管责任区",
        },
    )
    assert created.status_code == 201, created.text
    code = created.json()["created"][0]
    assert code == "CG320213-01"
    body, tag = read(client, code, "urban_unit")
    assert body["properties"]["department"] == "城管局"
    overlapping = client.post(
        "/units/urban_unit",
        json={
            "district_code": "320213",
            "geometry": mapping(box(120.33, S, 120.35, N)),
            "properties": {"name": "重叠", "department": "城管局"},
            "reason": "重叠",
        },
    )
    assert overlapping.status_code == 409
    patched = client.patch(
        f"/units/urban_unit/{code}",
        json={"properties": {"name": "东部城管"}, "reason": "改名"},
        headers={"If-Match": tag},
    )
    assert patched.status_code == 200, patched.text
    assert read(client, code, "urban_unit")[0]["properties"]["name"] == "东部城管"
    nameless = client.post(
        "/units/emergency_unit",
        json={
            "district_code": "320213",
            "geometry": mapping(east),
            "properties": {"name": "东应急"},
            "reason": "缺责任部门",
        },
    )
    assert nameless.status_code == 422
    assert "department" in nameless.json()["detail"]
    wrong = client.post(
        "/units/urban_unit",
        json={
            "district_code": "320213",
            "level": "station",
            "geometry": mapping(east),
            "properties": {"name": "x"},
            "reason": "x",
        },
    )
    assert wrong.status_code == 422


def test_who_may_edit(city: Connection, client_as: ClientAs) -> None:
    request = {"type": "Feature", "geometry": mapping(SOUTH), "reason": "核对"}
    police = client_as("police", ["320213"])
    _body, tag = read(police, "JWQ-S")
    ok = police.put("/units/police_unit/JWQ-S", json=request, headers={"If-Match": tag})
    assert ok.status_code == 200, ok.text
    _, tag = read(police, "JWQ-S")
    mine = police.get("/units/edits").json()["items"]
    assert mine[0]["codes"] == ["JWQ-S"]
    elsewhere = client_as("police", ["320205"])
    assert elsewhere.get("/units/police_unit/JWQ-S").status_code == 404
    assert elsewhere.get("/units/edits").json()["items"] == []
    assert elsewhere.get("/units/edits?layer=urban_unit").status_code == 403
    denied = elsewhere.put("/units/police_unit/JWQ-S", json=request, headers={"If-Match": tag})
    assert denied.status_code == 404
    planner = client_as("planner", ["320213"])
    assert planner.get("/units/police_unit/JWQ-S").status_code == 200
    refused = planner.put("/units/police_unit/JWQ-S", json=request, headers={"If-Match": tag})
    assert refused.status_code == 403
    urban = {"type": "Feature", "geometry": mapping(box(W, S, EAST, N)), "reason": "x"}
    assert police.put("/units/urban_unit/CG1", json=urban).status_code == 403
    create = police.post(
        "/units/police_unit",
        json={
            "district_code": "320205",
            "level": "station",
            "geometry": mapping(box(120.41, 31.6, 120.42, 31.61)),
            "properties": {"name": "外区"},
            "reason": "越权",
        },
    )
    assert create.status_code == 403


def test_patrol_units_nest_in_their_policing_area(city: Connection, client: TestClient) -> None:
    """巡逻单元 (patrol units, the third police level): made inside a policing area, its
    children; their shared boundary moved with the neighbour following; one reaching beyond
    the area refused with the piece outside; the area cannot be retired while they exist."""
    west, east = box(W, S, 120.32, 31.57), box(120.32, S, EAST, 31.57)
    made = []
    for shape_, name in ((west, "西巡区"), (east, "东巡区")):
        created = client.post(
            "/units/police_unit",
            json={
                "district_code": "320213",
                "level": "patrol",
                "parent_code": "JWQ-S",
                "geometry": mapping(shape_),
                "properties": {"name": name},
                "reason": "划设巡逻单元",
            },
        )
        assert created.status_code == 201, created.text
        made += created.json()["created"]
    assert made == ["JWQ-S-01", "JWQ-S-02"]  # codes follow the parent's
    first, tag1 = read(client, made[0])
    assert (first["properties"]["level"], first["properties"]["parent_code"]) == (
        "patrol",
        "JWQ-S",
    )
    _, tag2 = read(client, made[1])
    moved = box(W, S, 120.325, 31.57)
    boundary = client.post(
        f"/units/police_unit/{made[0]}/boundary",
        json={"neighbour": made[1], "geometry": mapping(moved), "reason": "巡区按道路调整"},
        headers={"If-Match": f"{tag1},{tag2}"},
    )
    assert boundary.status_code == 200, boundary.text
    assert same(read(client, made[0])[0]["geometry"], moved)
    assert same(read(client, made[1])[0]["geometry"], box(120.325, S, EAST, 31.57))
    _, tag1 = read(client, made[0])
    beyond = {"type": "Feature", "geometry": mapping(box(W, S, 120.325, 31.58)), "reason": "越界"}
    outside = client.put(f"/units/police_unit/{made[0]}", json=beyond, headers={"If-Match": tag1})
    assert outside.status_code == 422, outside.text
    piece = outside.json()["problems"]["features"][0]
    assert piece["properties"]["kind"] == "outside-parent"
    assert same(piece["geometry"], box(W, 31.57, 120.325, 31.58))
    _, area_tag = read(client, "JWQ-S")
    retire = client.delete(
        "/units/police_unit/JWQ-S?reason=撤销&gap=give", headers={"If-Match": area_tag}
    )
    assert retire.status_code == 409
    assert retire.json()["reason"] == "has-children"
