"""``/plans`` on the small city (tests/small_city.py), on real PostGIS: edits into a plan
leave live grids alone, the same refusals as ``/grids``, what-if numbers checked against
an independent shapely / geopandas computation, the workflow and its rights, publishing
with a future date, stale plans, the GeoPackage and the area scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point, box, mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, MetaData, text

from gridgov.layers import incidents, plans
from gridgov.layers.incidents import NewIncident
from gridgov.layers.registry import Registry
from tests.conftest import ClientAs
from tests.factories import insert_row, valid_row
from tests.small_city import HOLE, MID, TOLERANCE, E, N, S, W, build_small_city

G1, G2, G3 = "320213001001001", "320213001001002", "320213001001003"
COMMUNITY, TOWNSHIP = "320213001001", "320213001"
NEW_EDGE = 120.312  # the plan moves the shared boundary east to here
SPLIT_LAT = 31.572  # then cuts …002 here: the south piece is larger and keeps the code
BUILDINGS = [  # lon, lat, households
    (120.305, 31.575, 100),
    (120.311, 31.575, 40),  # …002 today, …001 in the plan
    (120.318, 31.575, 60),  # …002 today, the new …003 in the plan
    (120.315, 31.565, 30),
    (120.309, 31.561, 20),
    (120.3115, 31.561, 7),  # …002 today, …001 in the plan
]
SITES = [(120.3115, 31.571), (120.305, 31.571)]
INCIDENT_SPOT = (120.3112, 31.566)  # …002 today, …001 in the plan


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    build_small_city(connection, metadata, registry)
    for lon, lat, households in BUILDINGS:
        insert_row(
            connection,
            metadata,
            "building",
            valid_row(
                registry.get("building"),
                grid_code=G1 if lon < MID else G2,
                households=households,
                residents=2 * households,
                geom=Point(lon, lat),
            ),
        )
    for lon, lat in SITES:
        insert_row(
            connection,
            metadata,
            "key_site",
            valid_row(registry.get("key_site"), grid_code=None, geom=Point(lon, lat)),
        )
    recent = datetime.now(UTC) - timedelta(days=30)
    incidents.create(
        connection, NewIncident(*INCIDENT_SPOT, "dispute", "hotline", recent), TOLERANCE, "t"
    )
    incidents.create(
        connection, NewIncident(120.305, 31.575, "dispute", "hotline", recent), TOLERANCE, "t"
    )
    return connection


def feature(geom: BaseGeometry, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": mapping(geom), "properties": properties}


def new_plan(client: TestClient, **area: str) -> int:
    body = {"name": "东移边界", "reason": "对齐道路", **(area or {"community_code": COMMUNITY})}
    made = client.post("/plans", json=body)
    assert made.status_code == 201, made.text
    assert made.headers["Location"] == f"/plans/{made.json()['id']}"
    return int(made.json()["id"])


def read(client: TestClient, base: str, code: str) -> tuple[dict[str, Any], str]:
    response = client.get(f"{base}/{code}")
    assert response.status_code == 200, response.text
    return response.json(), response.headers["ETag"]


def edit_plan(client: TestClient, plan_id: int, *, split: bool = True) -> None:
    """Move the boundary east, then (optionally) split …002 at SPLIT_LAT."""
    base = f"/plans/{plan_id}/grids"
    _, tag1 = read(client, base, G1)
    _, tag2 = read(client, base, G2)
    west = box(W, S, NEW_EDGE, N).difference(HOLE)
    moved = client.post(
        f"{base}/{G1}/boundary",
        json={"neighbour": G2, "reason": "对齐道路", "geometry": mapping(west)},
        headers={"If-Match": f"{tag1}, {tag2}"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.headers["Location"] == f"{base}/{G1}"
    if split:
        _, tag2 = read(client, base, G2)
        line = {
            "type": "LineString",
            "coordinates": [[NEW_EDGE - 0.001, SPLIT_LAT], [E + 0.001, SPLIT_LAT]],
        }
        done = client.post(
            f"{base}/{G2}/split", json={"line": line, "reason": "拆分"}, headers={"If-Match": tag2}
        )
        assert done.status_code == 200, done.text
        assert done.json()["created"] == [G3]


def shapes(collection: dict[str, Any], skip_retired: bool = True) -> dict[str, BaseGeometry]:
    return {
        f["properties"]["code"]: shape(f["geometry"])
        for f in collection["features"]
        if not (skip_retired and f["properties"].get("change") == "retired")
    }


def locate(point: Point, grids: dict[str, BaseGeometry]) -> str | None:
    """The rule, independently: the lowest code whose closed polygon holds the point."""
    for code in sorted(grids):
        if grids[code].intersects(point):
            return code
    return None


def live_shapes(client: TestClient) -> dict[str, BaseGeometry]:
    return {code: shape(read(client, "/grids", code)[0]["geometry"]) for code in (G1, G2)}


@pytest.mark.usefixtures("city")
def test_edits_go_into_the_plan_and_live_grids_stay(
    client: TestClient, connection: Connection
) -> None:
    before = {code: read(client, "/grids", code) for code in (G1, G2)}
    # The audit log is append-only and keeps other tests' committed rows (plan ids restart
    # when those tests empty the tables): count only the rows written from here on.
    last_audit = connection.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()
    plan_id = new_plan(client)
    listed = client.get(f"/plans/{plan_id}/grids").json()
    assert [f["properties"]["change"] for f in listed["features"]] == ["unchanged"] * 2
    edit_plan(client, plan_id)
    after = {code: read(client, "/grids", code) for code in (G1, G2)}
    assert after == before  # geometry and ETag: nothing live changed
    assert client.get(f"/grids/{G3}").status_code == 404
    assert connection.execute(text("SELECT count(*) FROM grid_edit")).scalar_one() == 0
    collection = client.get(f"/plans/{plan_id}/grids").json()
    changes = {f["properties"]["code"]: f["properties"]["change"] for f in collection["features"]}
    assert changes == {G1: "changed", G2: "changed", G3: "created"}
    grids = shapes(collection)
    assert grids[G3].symmetric_difference(box(NEW_EDGE, SPLIT_LAT, E, N)).area < 1e-12
    # households are recounted in the plan from the buildings, by the rule
    counted: dict[str, int] = dict.fromkeys(grids, 0)
    for lon, lat, households in BUILDINGS:
        found = locate(Point(lon, lat), grids)
        assert found is not None
        counted[found] += households
    assert {
        f["properties"]["code"]: f["properties"]["households"] for f in collection["features"]
    } == counted
    for f in collection["features"]:
        assert f["properties"]["etag"].startswith('"p')
    log = client.get(f"/plans/{plan_id}/edits").json()["items"]
    assert [e["operation"] for e in log] == ["split", "move_boundary"]
    audited = connection.execute(
        text("SELECT count(*) FROM audit_log WHERE action = 'plan_edit' AND id > :last"),
        {"last": last_audit},
    ).scalar_one()
    assert audited == 2
    body = client.get(f"/plans/{plan_id}").json()
    assert body["changes"] == {"unchanged": 0, "changed": 2, "created": 1, "retired": 0}


@pytest.mark.usefixtures("city")
def test_plan_refusals_are_those_of_grids(client: TestClient) -> None:
    plan_id = new_plan(client)
    base = f"/plans/{plan_id}/grids"
    _, live_tag = read(client, "/grids", G2)
    _, tag = read(client, base, G2)
    assert tag != live_tag
    body = {**feature(box(MID, S, E, N), name="东片"), "reason": "改名"}
    assert client.put(f"{base}/{G2}", json=body).status_code == 428
    stale = client.put(f"{base}/{G2}", json=body, headers={"If-Match": live_tag})
    assert stale.status_code == 412
    assert stale.json()["current_etags"] == tag
    grown = {**feature(box(120.309, S, E, N)), "reason": "扩大"}
    overlap = client.put(f"{base}/{G2}", json=grown, headers={"If-Match": tag})
    assert overlap.status_code == 409
    piece = overlap.json()["problems"]["features"][0]
    assert piece["properties"]["codes"] == [G1]
    assert shape(piece["geometry"]).symmetric_difference(box(120.309, S, MID, N)).area < 1e-12
    outside = {**feature(box(MID, S, 120.33, N)), "reason": "越界"}
    refused = client.put(f"{base}/{G2}?overlap=take", json=outside, headers={"If-Match": tag})
    assert refused.status_code == 422
    assert refused.json()["problems"]["features"][0]["properties"]["kind"] == "outside-community"
    done = client.put(f"{base}/{G2}", json=body, headers={"If-Match": tag})
    assert done.status_code == 200, done.text
    assert done.json()["grids"]["features"][0]["properties"]["name"] == "东片"
    assert read(client, "/grids", G2)[0]["properties"]["name"] != "东片"
    assert client.get(f"{base}/320213001001099").status_code == 404


@pytest.mark.usefixtures("city")
def test_measures_and_moves_match_an_independent_count(client: TestClient) -> None:
    plan_id = new_plan(client)
    edit_plan(client, plan_id)
    plan_grids = shapes(client.get(f"/plans/{plan_id}/grids").json())
    today = live_shapes(client)

    moves = client.get(f"/plans/{plan_id}/moves", params={"limit": 1}).json()
    expected: dict[tuple[str | None, str | None], list[int]] = {}
    for lon, lat, homes in BUILDINGS:
        pair = (locate(Point(lon, lat), today), locate(Point(lon, lat), plan_grids))
        if pair[0] != pair[1]:
            expected.setdefault(pair, []).append(homes)
    got = {(p["from"], p["to"]): p for p in moves["building"]["pairs"]}
    assert set(got) == set(expected) == {(G2, G1), (G2, G3)}
    for pair, moved_homes in expected.items():
        assert got[pair]["count"] == len(moved_homes)
        assert got[pair]["households"] == sum(moved_homes)
        assert len(got[pair]["ids"]) == 1  # limit
    assert moves["households_moved"] == 40 + 7 + 60
    sites = [(locate(Point(p), today), locate(Point(p), plan_grids)) for p in SITES]
    assert [(p["from"], p["to"], p["count"]) for p in moves["key_site"]["pairs"]] == [
        (a, b, 1) for a, b in sites if a != b
    ]
    assert [(p["from"], p["to"], p["count"]) for p in moves["incident"]["pairs"]] == [(G2, G1, 1)]

    report = client.get(f"/plans/{plan_id}/measures").json()
    measured = {g["code"]: g["households"] for g in report["plan"]["grids"]}
    independent = dict.fromkeys(plan_grids, 0)
    for lon, lat, n in BUILDINGS:
        code = locate(Point(lon, lat), plan_grids)
        assert code is not None
        independent[code] += n
    assert measured == independent
    values = np.array([independent[c] for c in sorted(independent)], dtype=float)
    assert report["plan"]["balance"]["households"]["cv"] == pytest.approx(
        values.std() / values.mean(), abs=1e-4
    )
    assert {g["code"]: g["change"] for g in report["plan"]["grids"]} == {
        G1: "changed",
        G2: "changed",
        G3: "created",
    }
    assert [c["code"] for c in report["communities"]] == [COMMUNITY]
    # Docking with the community policing areas (split at lat 31.57): independently, in
    # metres (EPSG:4549), each grid's largest share in one area, area-weighted.
    units = gpd.GeoSeries([box(W, S, 120.34, 31.57), box(W, 31.57, 120.34, N)], crs=4490)

    def score(grids: dict[str, BaseGeometry]) -> tuple[float, int]:
        frame = gpd.GeoSeries(list(grids.values()), crs=4490).to_crs(4549)
        metric_units = units.to_crs(4549)
        weighted = total = 0.0
        docked = 0
        for geom in frame:
            best = max(geom.intersection(u).area for u in metric_units) / geom.area
            weighted += best * geom.area
            total += geom.area
            docked += best >= 0.99
        return 100 * weighted / total, docked

    dock = {d["unit_level"]: d for d in report["docking"]}["policing_area"]
    before, docked_before = score(today)
    after, docked_after = score(plan_grids)
    assert dock["before"] == pytest.approx(before, abs=0.1)
    assert dock["after"] == pytest.approx(after, abs=0.1)
    assert (dock["docked_before"], dock["docked_after"]) == (docked_before, docked_after) == (0, 1)


@pytest.mark.usefixtures("city")
def test_diff_against_today_and_against_another_plan(client: TestClient) -> None:
    full = new_plan(client)
    edit_plan(client, full)
    boundary_only = new_plan(client)
    edit_plan(client, boundary_only, split=False)
    today = client.get(f"/plans/{full}/diff", params={"against": "live"}).json()
    assert today["against"] == "live"
    assert today["grids"] == {"changed": [G1, G2], "created": [G3], "retired": [], "unchanged": []}
    assert set(today["measures"]) == {"live", f"plan/{full}"}
    other = client.get(f"/plans/{full}/diff", params={"against": str(boundary_only)}).json()
    assert other["grids"] == {"changed": [G2], "created": [G3], "retired": [], "unchanged": [G1]}
    # between the two plans only the north of …002 moves (to …003): one building, 60 homes
    pairs = [
        (p["from"], p["to"], p["count"], p["households"])
        for p in other["moves"]["building"]["pairs"]
    ]
    assert pairs == [(G2, G3, 1, 60)]
    a = shapes(client.get(f"/plans/{full}/grids").json())
    b = shapes(client.get(f"/plans/{boundary_only}/grids").json())
    assert {g["code"] for g in other["measures"][f"plan/{boundary_only}"]["grids"]} == set(b)
    assert {g["code"] for g in other["measures"][f"plan/{full}"]["grids"]} == set(a)
    assert client.get(f"/plans/{full}/diff", params={"against": "99999"}).status_code == 404
    assert client.get(f"/plans/{full}/diff", params={"against": "x"}).status_code == 422


@pytest.mark.usefixtures("city")
def test_workflow_read_only_after_submit_and_approval_rights(client_as: ClientAs) -> None:
    author = client_as("planner", [TOWNSHIP])
    plan_id = new_plan(author)
    edit_plan(author, plan_id, split=False)
    submitted = author.post(f"/plans/{plan_id}/submit")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "submitted"
    base = f"/plans/{plan_id}/grids"
    _, tag = read(author, base, G2)
    locked = author.patch(
        f"{base}/{G2}",
        json={"properties": {"name": "改"}, "reason": "x"},
        headers={"If-Match": tag},
    )
    assert locked.status_code == 409
    assert "只读" in locked.json()["detail"]
    # a township planner is no district role; a district supervisor is; the author never
    assert author.post(f"/plans/{plan_id}/approve").status_code == 403
    district_author = client_as("planner", ["320213"])
    own = new_plan(district_author)
    reviewer = client_as("supervisor", ["320213"])
    assert reviewer.post(f"/plans/{own}/approve").status_code == 409  # still a draft
    assert district_author.post(f"/plans/{own}/submit").status_code == 200
    assert district_author.post(f"/plans/{own}/approve").status_code == 403
    assert reviewer.post(f"/plans/{own}/approve").status_code == 200
    rejected = reviewer.post(f"/plans/{plan_id}/reject", json={"note": "请补充说明"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "draft"
    assert "请补充说明" in rejected.json()["note"]
    assert (
        author.patch(
            f"{base}/{G2}",
            json={"properties": {"name": "改"}, "reason": "x"},
            headers={"If-Match": tag},
        ).status_code
        == 200
    )
    assert author.post(f"/plans/{plan_id}/submit").status_code == 200
    approved = reviewer.post(f"/plans/{plan_id}/approve")
    assert approved.status_code == 200
    assert approved.json()["approved_by"] != approved.json()["author"]
    assert author.get("/plans", params={"status": "approved"}).json()["items"][0]["id"] in (
        plan_id,
        own,
    )


@pytest.mark.usefixtures("city")
def test_publish_with_a_future_date(
    client: TestClient, client_as: ClientAs, city: Connection
) -> None:
    author = client_as("planner", [TOWNSHIP])
    plan_id = new_plan(author)
    edit_plan(author, plan_id)
    planned = shapes(author.get(f"/plans/{plan_id}/grids").json())
    assert author.post(f"/plans/{plan_id}/submit").status_code == 200
    early = client.post(f"/plans/{plan_id}/publish", json={"effective_date": "2099-01-01"})
    assert early.status_code == 409  # not approved yet
    assert client.post(f"/plans/{plan_id}/approve").status_code == 200
    past = client.post(f"/plans/{plan_id}/publish", json={"effective_date": "2020-01-01"})
    assert past.status_code == 422
    day = (datetime.now(plans.LOCAL_TIME) + timedelta(days=10)).date()
    published = client.post(f"/plans/{plan_id}/publish", json={"effective_date": day.isoformat()})
    assert published.status_code == 200, published.text
    effective = datetime.fromisoformat(published.json()["effective_from"])
    assert effective == datetime(day.year, day.month, day.day, tzinfo=plans.LOCAL_TIME)
    assert published.json()["status"] == "published"
    # today's versions stay in force until the date; the plan's take over from it
    assert shape(read(client, "/grids", G1)[0]["geometry"]).equals(
        box(W, S, MID, N).difference(HOLE)
    )
    assert client.get(f"/grids/{G3}").status_code == 404
    for code in (G1, G2, G3):
        history = client.get(f"/grids/{code}/versions").json()["features"]
        last = history[-1]["properties"]
        assert datetime.fromisoformat(last["valid_from"]) == effective
        assert last["valid_to"] is None
        assert shape(history[-1]["geometry"]).equals(planned[code])
        if code != G3:
            assert datetime.fromisoformat(history[-2]["properties"]["valid_to"]) == effective
    assert {
        f["properties"]["households"]
        for f in client.get(f"/grids/{G3}/versions").json()["features"]
    } == {60}
    # an incident after the date goes to the new grid, one before it to today's
    after = effective + timedelta(days=1)
    later = incidents.create(
        city, NewIncident(*INCIDENT_SPOT, "dispute", "hotline", after), TOLERANCE, "t", now=after
    )
    now = incidents.create(
        city, NewIncident(*INCIDENT_SPOT, "dispute", "hotline", datetime.now(UTC)), TOLERANCE, "t"
    )
    assert incidents.get(city, later)["grid_code"] == G1
    assert incidents.get(city, now)["grid_code"] == G2
    log = client.get("/grids/edits", params={"community_code": COMMUNITY}).json()["items"]
    assert [e["operation"] for e in log] == ["publish"]
    assert set(log[0]["codes"]) == {G1, G2, G3}
    # a published plan is read-only, and live edits of grids with a scheduled version wait
    _, tag = read(client, "/grids", G2)
    assert (
        client.patch(
            f"/grids/{G2}",
            json={"properties": {"name": "改"}, "reason": "x"},
            headers={"If-Match": tag},
        ).status_code
        == 409
    )


@pytest.mark.usefixtures("city")
def test_stale_plans_are_refused_and_fresh_ones_publish_today(
    client: TestClient, client_as: ClientAs, connection: Connection
) -> None:
    # the audit log is append-only: count only the rows written after this point
    first = connection.execute(text("SELECT coalesce(max(id), 0) FROM audit_log")).scalar_one()
    reviewer = client_as("admin")
    stale_plan = new_plan(client)
    edit_plan(client, stale_plan, split=False)
    _, tag = read(client, "/grids", G2)
    renamed = client.patch(
        f"/grids/{G2}",
        json={"properties": {"name": "新名"}, "reason": "改名"},
        headers={"If-Match": tag},
    )
    assert renamed.status_code == 200
    fresh_plan = new_plan(client, township_code=TOWNSHIP)  # based on the renamed grid
    edit_plan(client, fresh_plan)
    planned = shapes(client.get(f"/plans/{fresh_plan}/grids").json())
    for plan_id in (stale_plan, fresh_plan):
        assert client.post(f"/plans/{plan_id}/submit").status_code == 200
        assert client.post(f"/plans/{plan_id}/approve").status_code == 403  # its author
        assert reviewer.post(f"/plans/{plan_id}/approve").status_code == 200
    today = datetime.now(plans.LOCAL_TIME).date().isoformat()
    refused = reviewer.post(f"/plans/{stale_plan}/publish", json={"effective_date": today})
    assert refused.status_code == 409
    assert refused.json()["codes"] == G2
    assert G2 in refused.json()["detail"]
    assert client.get(f"/plans/{stale_plan}").json()["status"] == "approved"
    done = reviewer.post(f"/plans/{fresh_plan}/publish", json={"effective_date": today})
    assert done.status_code == 200, done.text
    for code in (G1, G2, G3):
        body, _ = read(client, "/grids", code)
        assert shape(body["geometry"]).equals(planned[code])
    assert read(client, "/grids", G3)[0]["properties"]["households"] == 60
    moved = connection.execute(
        text("SELECT grid_code FROM building WHERE ST_X(geom) = 120.318")
    ).scalar_one()
    assert moved == G3
    incident_grid = connection.execute(
        text("SELECT grid_code FROM incident WHERE ST_X(geom) = :x"), {"x": INCIDENT_SPOT[0]}
    ).scalar_one()
    assert incident_grid == G2  # reported a month ago: it keeps the grid of its time
    audited = connection.execute(
        text("SELECT count(*) FROM audit_log WHERE action = 'plan_publish' AND id > :first"),
        {"first": first},
    ).scalar_one()
    assert audited == 1
    again = reviewer.post(f"/plans/{stale_plan}/publish", json={"effective_date": today})
    assert again.status_code == 409


@pytest.mark.usefixtures("city")
def test_geopackage_export_opens_with_the_right_layers(
    client: TestClient, tmp_path: Path, connection: Connection
) -> None:
    plan_id = new_plan(client)
    edit_plan(client, plan_id)
    response = client.get(f"/plans/{plan_id}/export.gpkg")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geopackage+sqlite3"
    path = tmp_path / "plan.gpkg"
    path.write_bytes(response.content)
    layers = dict(pyogrio.list_layers(path).tolist())
    assert layers == {"plan_grids": "MultiPolygon", "today_grids": "MultiPolygon", "moves": "Point"}
    plan_grids = pyogrio.read_dataframe(path, layer="plan_grids")
    assert sorted(plan_grids["code"]) == [G1, G2, G3]
    assert dict(zip(plan_grids["code"], plan_grids["change"], strict=True))[G3] == "created"
    assert len(pyogrio.read_dataframe(path, layer="today_grids")) == 2
    moved = pyogrio.read_dataframe(path, layer="moves")
    moves = client.get(f"/plans/{plan_id}/moves").json()
    assert len(moved) == sum(moves[layer]["moved"] for layer in plans.MOVE_LAYERS)
    assert set(moved["layer"]) == {"building", "key_site", "incident"}
    assert plan_grids.crs.to_epsg() == 4490
    exported = connection.execute(
        text("SELECT count(*) FROM audit_log WHERE action = 'export' AND target = :t"),
        {"t": f"plan/{plan_id}"},
    ).scalar_one()
    assert exported == 1


@pytest.mark.usefixtures("city")
def test_scope_out_of_area_is_404_and_read_only_roles_are_403(client_as: ClientAs) -> None:
    mine = client_as("planner", [COMMUNITY])
    plan_id = new_plan(mine)
    # a community planner may not plan the whole township
    assert (
        mine.post(
            "/plans", json={"name": "x", "reason": "y", "township_code": TOWNSHIP}
        ).status_code
        == 403
    )
    elsewhere = client_as("planner", ["320213002"])
    for path in ("", "/grids", f"/grids/{G1}", "/measures", "/moves", "/diff", "/export.gpkg"):
        assert elsewhere.get(f"/plans/{plan_id}{path}").status_code == 404, path
    assert elsewhere.get("/plans").json()["items"] == []
    assert elsewhere.post(f"/plans/{plan_id}/submit").status_code == 404
    body = {**feature(box(MID, S, E, N)), "reason": "x"}
    assert (
        elsewhere.put(
            f"/plans/{plan_id}/grids/{G2}", json=body, headers={"If-Match": "x"}
        ).status_code
        == 404
    )
    assert (
        elsewhere.post(
            "/plans", json={"name": "x", "reason": "y", "community_code": COMMUNITY}
        ).status_code
        == 403
    )
    viewer = client_as("viewer", [TOWNSHIP])
    _, tag = read(viewer, f"/plans/{plan_id}/grids", G2)
    assert viewer.get("/plans").json()["items"][0]["id"] == plan_id
    assert (
        viewer.put(f"/plans/{plan_id}/grids/{G2}", json=body, headers={"If-Match": tag}).status_code
        == 403
    )
    assert viewer.post(f"/plans/{plan_id}/submit").status_code == 403
    assert (
        viewer.post(
            "/plans", json={"name": "x", "reason": "y", "community_code": COMMUNITY}
        ).status_code
        == 403
    )
