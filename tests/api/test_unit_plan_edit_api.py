"""Unit plans edited by hand over HTTP (``/plans/{id}/units…``): the live unit rules on the
plan's copy of a group, plan-side ETags, what the plan would move, its diff, and publishing
now or on a later day, on the small city's policing areas JWQ-S (south of lat 31.57) and
JWQ-N (north of it), both under station PCS1.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping, shape
from sqlalchemy import Connection, MetaData, text

from gridgov.layers import incidents, unit_edit, unit_plans
from gridgov.layers.incidents import NewIncident
from gridgov.layers.plans import LOCAL_TIME
from gridgov.layers.registry import Registry
from tests.conftest import ClientAs
from tests.small_city import TOLERANCE, N, S, W
from tests.unit_city import EAST, build_unit_city

SPLIT = 31.57
SOUTH = box(W, S, EAST, SPLIT)
NORTH = box(W, SPLIT, EAST, N)


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    build_unit_city(connection, metadata, registry)
    # Just south of the shared boundary: JWQ-S today, JWQ-N once the boundary moves south.
    incidents.create(
        connection,
        NewIncident(120.31, 31.5695, "dispute", "hotline", datetime.now(UTC)),
        TOLERANCE,
        "test",
    )
    return connection


def new_plan(client: TestClient, code: str = "JWQ-S", name: str = "警务区边界调整") -> int:
    response = client.post(
        "/plans/units",
        json={"name": name, "unit_layer": "police_unit", "unit_code": code, "reason": "巡逻调整"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["kind"] == "unit"
    assert body["status"] == "draft"
    assert body["origin"] == "editor"
    return int(body["id"])


def tags(client: TestClient, plan: int, *codes: str) -> str:
    return ",".join(client.get(f"/plans/{plan}/units/{c}").headers["ETag"] for c in codes)


def move_south_boundary(client: TestClient, plan: int, lat: float) -> Any:
    return client.post(
        f"/plans/{plan}/units/JWQ-S/boundary",
        json={"neighbour": "JWQ-N", "geometry": mapping(box(W, S, EAST, lat)), "reason": "南移"},
        headers={"If-Match": tags(client, plan, "JWQ-S", "JWQ-N")},
    )


def plan_rows(conn: Connection, plan: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        text("SELECT code, change FROM plan_unit WHERE plan_id = :p ORDER BY code"), {"p": plan}
    )
    return [(r.code, r.change) for r in rows]


def test_edits_go_into_the_plan_only(
    city: Connection, client_as: ClientAs, client: TestClient
) -> None:
    police = client_as("police", ["320213"])
    plan = new_plan(police)
    group = police.get(f"/plans/{plan}/units").json()["group"]["features"]
    assert sorted(f["id"] for f in group) == ["JWQ-N", "JWQ-S"]  # not the stations
    assert {f["properties"]["change"] for f in group} == {"unchanged"}
    live_tag = client.get("/units/police_unit/JWQ-S").headers["ETag"]
    # An untouched unit keeps its live ETag in the plan.
    assert police.get(f"/plans/{plan}/units/JWQ-S").headers["ETag"] == live_tag
    # Without If-Match: 428, and nothing written.
    bare = police.post(
        f"/plans/{plan}/units/JWQ-S/boundary",
        json={"neighbour": "JWQ-N", "geometry": mapping(box(W, S, EAST, 31.568)), "reason": "x"},
    )
    assert bare.status_code == 428
    assert plan_rows(city, plan) == []
    moved = move_south_boundary(police, plan, 31.568)
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["edit"]["operation"] == "move_boundary"
    plan_tag = moved.headers["ETag"]
    assert plan_tag.startswith('"pu')
    assert plan_tag != live_tag
    assert plan_rows(city, plan) == [("JWQ-N", "changed"), ("JWQ-S", "changed")]
    counts = police.get(f"/plans/{plan}").json()["changes"]
    assert counts == {"changed": 2, "created": 0, "retired": 0}
    in_plan = {f["id"]: shape(f["geometry"]) for f in body["units"]["features"]}
    assert in_plan["JWQ-S"].symmetric_difference(box(W, S, EAST, 31.568)).area < 1e-12
    assert in_plan["JWQ-N"].symmetric_difference(box(W, 31.568, EAST, N)).area < 1e-12
    # Nothing in force changed.
    live = client.get("/units/police_unit/JWQ-S")
    assert live.headers["ETag"] == live_tag
    assert shape(live.json()["geometry"]).equals(SOUTH)
    # The old (live) ETag is stale for the plan's copy now.
    stale = police.post(
        f"/plans/{plan}/units/JWQ-S/boundary",
        json={"neighbour": "JWQ-N", "geometry": mapping(box(W, S, EAST, 31.566)), "reason": "x"},
        headers={"If-Match": live_tag},
    )
    assert stale.status_code == 412
    # Back to today's line: the units are unchanged again and the plan holds nothing.
    back = move_south_boundary(police, plan, SPLIT)
    assert back.status_code == 200, back.text
    assert plan_rows(city, plan) == []
    log = police.get(f"/plans/{plan}/edits").json()["items"]
    assert [e["operation"] for e in log] == ["move_boundary", "move_boundary"]


def test_a_refused_plan_edit_shows_the_overlap_and_writes_nothing(
    city: Connection, client_as: ClientAs
) -> None:
    police = client_as("police", ["320213"])
    plan = new_plan(police)
    overlapping = police.put(
        f"/plans/{plan}/units/JWQ-S",
        json={"geometry": mapping(box(W, S, EAST, 31.572)), "reason": "越界"},
        headers={"If-Match": tags(police, plan, "JWQ-S")},
    )
    assert overlapping.status_code == 409, overlapping.text
    problem = overlapping.json()
    assert "警务单元" in problem["detail"]
    assert problem["title"] == (
        "警务单元编辑与相邻单元冲突 (Police unit edit conflicts with its neighbours)"
    )
    pieces = problem["problems"]["features"]
    assert pieces
    assert pieces[0]["properties"]["kind"] == "overlap"
    assert shape(pieces[0]["geometry"]).area > 0
    bowtie = {"type": "Polygon", "coordinates": [[[W, S], [EAST, N], [EAST, S], [W, N], [W, S]]]}
    invalid = police.put(
        f"/plans/{plan}/units/JWQ-S",
        json={"geometry": bowtie, "reason": "自相交"},
        headers={"If-Match": tags(police, plan, "JWQ-S")},
    )
    assert invalid.status_code == 422, invalid.text
    assert invalid.json()["title"] == "警务单元编辑无效 (Invalid police unit edit)"
    malformed = police.post(
        f"/plans/{plan}/units/JWQ-S/split",
        json={"line": {"type": "LineString", "coordinates": "x"}, "reason": "拆分"},
        headers={"If-Match": tags(police, plan, "JWQ-S")},
    )
    assert malformed.status_code == 422, malformed.text
    assert malformed.json()["title"] == "警务单元编辑无效 (Invalid police unit edit)"
    assert plan_rows(city, plan) == []
    assert police.get(f"/plans/{plan}/edits").json()["items"] == []


def test_split_merge_and_publish_now(
    city: Connection, client_as: ClientAs, client: TestClient
) -> None:
    police = client_as("police", ["320213"])
    plan = new_plan(police)
    split = police.post(
        f"/plans/{plan}/units/JWQ-N/split",
        json={
            "line": {"type": "LineString", "coordinates": [[120.32, 31.569], [120.32, 31.581]]},
            "reason": "北区一分为二",
        },
        headers={"If-Match": tags(police, plan, "JWQ-N")},
    )
    assert split.status_code == 200, split.text
    created = split.json()["created"]
    assert created == ["PCS1-01"]  # numbered under the parent station, reserved now
    assert ("PCS1-01", "created") in plan_rows(city, plan)
    # The reserved code is not given to a live edit meanwhile.
    live_split = client.post(
        "/units/police_unit/JWQ-S/split",
        json={
            "line": {"type": "LineString", "coordinates": [[120.33, 31.559], [120.33, 31.571]]},
            "reason": "现行拆分",
        },
        headers={"If-Match": client.get("/units/police_unit/JWQ-S").headers["ETag"]},
    )
    assert live_split.status_code == 200, live_split.text
    assert live_split.json()["created"] == ["PCS1-02"]
    # What the plan would move: nothing has a building here, but the group's measures
    # and the diff against today name the new unit.
    diff = police.get(f"/plans/{plan}/diff").json()
    assert diff["against"] == "live"
    assert diff["units"]["created"] == ["PCS1-01"]
    assert "JWQ-N" in diff["units"]["changed"]
    assert "JWQ-S" not in diff["units"]["changed"]
    measures = police.get(f"/plans/{plan}/measures").json()
    assert sorted(u["code"] for u in measures["plan"]["units"]) == [
        "JWQ-N",
        "JWQ-S",
        "PCS1-01",
        "PCS1-02",
    ]
    assert {u["code"]: u["change"] for u in measures["plan"]["units"]}["PCS1-01"] == "created"
    assert measures["docking"]["grids"] > 0
    # Publish: the live JWQ-S was split after the plan was made, but the plan never
    # touched it, so the plan still applies.
    assert police.post(f"/plans/{plan}/submit").status_code == 200
    assert client.post(f"/plans/{plan}/approve").status_code == 200
    today = datetime.now(LOCAL_TIME).date().isoformat()
    published = client.post(f"/plans/{plan}/publish", json={"effective_date": today})
    assert published.status_code == 200, published.text
    assert published.json()["unit_edit"] is not None
    new = client.get("/units/police_unit/PCS1-01")
    assert new.status_code == 200
    assert new.json()["properties"]["parent_code"] == "PCS1"
    north = shape(client.get("/units/police_unit/JWQ-N").json()["geometry"])
    assert north.union(shape(new.json()["geometry"])).symmetric_difference(NORTH).area < 1e-10
    applied = city.execute(
        text("SELECT unit_applied_at FROM plan WHERE id = :p"), {"p": plan}
    ).scalar_one()
    assert applied is not None


def test_moves_name_the_incident_that_changes_unit(city: Connection, client_as: ClientAs) -> None:
    police = client_as("police", ["320213"])
    plan = new_plan(police)
    assert move_south_boundary(police, plan, 31.569).status_code == 200
    moves = police.get(f"/plans/{plan}/moves").json()
    pairs = moves["incident"]["pairs"]
    assert [(p["from"], p["to"], p["count"]) for p in pairs] == [("JWQ-S", "JWQ-N", 1)]


def test_a_plan_for_a_later_day_waits_then_applies(
    city: Connection, client_as: ClientAs, client: TestClient, registry: Registry
) -> None:
    police = client_as("police", ["320213"])
    plan = new_plan(police)
    assert move_south_boundary(police, plan, 31.569).status_code == 200
    police.post(f"/plans/{plan}/submit")
    assert client.post(f"/plans/{plan}/approve").status_code == 200
    later = datetime.now(LOCAL_TIME).date() + timedelta(days=30)
    published = client.post(f"/plans/{plan}/publish", json={"effective_date": later.isoformat()})
    assert published.status_code == 200, published.text
    assert published.json()["unit_edit"] is None
    assert published.json()["status"] == "published"
    # Nothing in force yet, and the plan's units are frozen until their day.
    assert shape(client.get("/units/police_unit/JWQ-S").json()["geometry"]).equals(SOUTH)
    frozen = client.patch(
        "/units/police_unit/JWQ-N",
        json={"properties": {"name": "北区"}, "reason": "改名"},
        headers={"If-Match": client.get("/units/police_unit/JWQ-N").headers["ETag"]},
    )
    assert frozen.status_code == 409
    assert frozen.json()["plan_id"] == plan
    # Not due today.
    now = datetime.now(UTC)
    assert plan not in unit_plans.due(city, now)
    # On its day it is written, with versions from its effective moment.
    day = now + timedelta(days=31)
    assert unit_plans.due(city, day) == [plan]
    applied = unit_plans.apply_one(city, registry, plan, day, tolerance_m=TOLERANCE)
    assert applied is not None
    assert applied.edit_id is not None
    south = client.get("/units/police_unit/JWQ-S").json()
    assert shape(south["geometry"]).symmetric_difference(box(W, S, EAST, 31.569)).area < 1e-12
    versions = client.get("/units/police_unit/JWQ-S/versions").json()["versions"]
    starts = [datetime.fromisoformat(v["valid_from"]) for v in versions]
    assert starts[-1] == datetime.fromisoformat(published.json()["effective_from"])
    owner = city.execute(
        text("SELECT policing_area_code FROM incident ORDER BY id DESC LIMIT 1")
    ).scalar_one()
    assert owner == "JWQ-N"
    assert unit_plans.due(city, day) == []
    # Unfrozen now (a live edit here would date before the applied version, since this
    # test applies the plan ahead of the real clock; the freeze check is what matters).
    unit_edit.refuse_pending(city, "police_unit", ["JWQ-N", "JWQ-S"])


def test_a_due_plan_that_no_longer_applies_goes_back_to_approved(
    city: Connection, client_as: ClientAs, client: TestClient, registry: Registry
) -> None:
    police = client_as("police", ["320213"])
    plan = new_plan(police)
    assert move_south_boundary(police, plan, 31.569).status_code == 200
    police.post(f"/plans/{plan}/submit")
    client.post(f"/plans/{plan}/approve")
    later = datetime.now(LOCAL_TIME).date() + timedelta(days=3)
    assert (
        client.post(
            f"/plans/{plan}/publish", json={"effective_date": later.isoformat()}
        ).status_code
        == 200
    )
    # Changed outside the edit path meanwhile (e.g. a layer re-import by an admin).
    city.execute(text("UPDATE police_unit SET updated_at = clock_timestamp() WHERE code = 'JWQ-N'"))
    day = datetime.now(UTC) + timedelta(days=4)
    applied = unit_plans.apply_one(city, registry, plan, day, tolerance_m=TOLERANCE)
    assert applied is not None
    assert applied.edit_id is None
    assert applied.problem is not None
    assert "JWQ-N" in applied.problem
    back = client.get(f"/plans/{plan}").json()
    assert back["status"] == "approved"
    assert "无法施行" in back["note"]
    assert shape(client.get("/units/police_unit/JWQ-S").json()["geometry"]).equals(SOUTH)


def test_plans_compare_only_within_their_group(city: Connection, client_as: ClientAs) -> None:
    police = client_as("police", ["320213"])
    a = new_plan(police, name="甲")
    b = new_plan(police, code="JWQ-N", name="乙")
    assert move_south_boundary(police, a, 31.569).status_code == 200
    assert move_south_boundary(police, b, 31.568).status_code == 200
    diff = police.get(f"/plans/{a}/diff", params={"against": str(b)}).json()
    assert diff["against"] == f"plan/{b}"
    assert diff["units"]["changed"] == ["JWQ-N", "JWQ-S"]
    station = new_plan(police, code="PCS1", name="派出所")
    refused = police.get(f"/plans/{a}/diff", params={"against": str(station)})
    assert refused.status_code == 422
    assert "不是同一组部门单元的方案" in refused.json()["detail"]
    # the plan list says which plans can be compared: the same group key
    listed = {p["id"]: p for p in police.get("/plans").json()["items"]}
    assert (
        listed[a]["unit_group"]
        == listed[b]["unit_group"]
        == "police_unit/320213/policing_area/PCS1"
    )
    assert listed[station]["unit_group"] == "police_unit/320213/station/"


def test_who_may_edit_a_unit_plan(city: Connection, client_as: ClientAs) -> None:
    police = client_as("police", ["320213"])
    plan = new_plan(police)
    planner = client_as("planner", ["320213"])
    body = {"name": "x", "unit_layer": "police_unit", "unit_code": "JWQ-S", "reason": "x"}
    assert planner.post("/plans/units", json=body).status_code == 403
    assert client_as("police", ["320205"]).post("/plans/units", json=body).status_code == 404
    edit = planner.post(
        f"/plans/{plan}/units/JWQ-S/boundary",
        json={"neighbour": "JWQ-N", "geometry": mapping(box(W, S, EAST, 31.569)), "reason": "x"},
        headers={"If-Match": tags(police, plan, "JWQ-S", "JWQ-N")},
    )
    assert edit.status_code == 403
    # A submitted plan is read-only.
    assert police.post(f"/plans/{plan}/submit").status_code == 200
    assert move_south_boundary(police, plan, 31.569).status_code == 409


def test_a_unit_retired_live_cannot_be_edited_in_the_plan(
    city: Connection, client_as: ClientAs, client: TestClient
) -> None:
    police = client_as("police", ["320213"])
    plan = new_plan(police, code="JWQ-N")
    assert move_south_boundary(police, plan, 31.569).status_code == 200
    live_tags = ",".join(
        client.get(f"/units/police_unit/{c}").headers["ETag"] for c in ("JWQ-N", "JWQ-S")
    )
    merged = client.post(
        "/units/police_unit/merge",
        json={"codes": ["JWQ-N", "JWQ-S"], "reason": "撤并"},
        headers={"If-Match": live_tags},
    )
    assert merged.status_code == 200, merged.text
    stale = police.patch(
        f"/plans/{plan}/units/JWQ-S",
        json={"properties": {"name": "南区"}, "reason": "改名"},
        headers={"If-Match": tags(police, plan, "JWQ-S")},
    )
    assert stale.status_code == 409, stale.text
    assert stale.json()["codes"] == "JWQ-S"
    flagged = police.get(f"/plans/{plan}/units").json()["units"]["features"]
    assert all(f["properties"]["stale"] for f in flagged)
