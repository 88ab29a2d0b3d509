"""Unit plans over HTTP: the unit-side docking proposal saved as a plan, its workflow and
publish (and a stale publish refused), on the small city with nested police units.

Grid …001 (the west half, with a hole in its south) lies mostly in policing area JWQ-N,
grid …002 (the east half) half in each; so JWQ-S made of whole grids changes shape.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyogrio
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import box, mapping, shape
from sqlalchemy import Connection, MetaData, text

from gridgov.layers import incidents
from gridgov.layers.incidents import NewIncident
from gridgov.layers.plans import LOCAL_TIME
from gridgov.layers.registry import Registry
from tests.conftest import ClientAs
from tests.small_city import TOLERANCE, S, W
from tests.unit_city import EAST, build_unit_city

KIND = {"unit_layer": "police_unit", "unit_level": "policing_area"}
PROPOSAL = "/docking/proposals/units/JWQ-S?unit_layer=police_unit&unit_level=policing_area"


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    build_unit_city(connection, metadata, registry)
    # An incident in the west grid's south part: JWQ-S today, JWQ-N once the grid is whole.
    incidents.create(
        connection,
        NewIncident(120.305, 31.5655, "dispute", "hotline", datetime.now(UTC)),
        TOLERANCE,
        "test",
    )
    return connection


def make_plan(client: TestClient, name: str = "警务区按网格对接") -> dict[str, Any]:
    response = client.post(
        "/plans/from-docking/unit",
        json={"name": name, "unit_code": "JWQ-S", **KIND, "reason": "条例第六十二条对接"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_unit_plan_matches_the_proposal_and_publishes(
    city: Connection, client_as: ClientAs, client: TestClient, tmp_path: Path
) -> None:
    police = client_as("police", ["320213"])
    proposal = police.get(PROPOSAL).json()
    plan = make_plan(police)
    assert plan["kind"] == "unit"
    assert plan["unit_layer"] == "police_unit"
    assert plan["unit_code"] == "JWQ-S"
    assert plan["status"] == "draft"
    units = police.get(f"/plans/{plan['id']}/units").json()
    by_code = {f["id"]: f for f in units["units"]["features"]}
    assert sorted(by_code) == ["JWQ-N", "JWQ-S"]
    assert shape(by_code["JWQ-S"]["geometry"]).equals(shape(proposal["geometry"]))
    assert units["proposal"]["docking"] == proposal["docking"]
    assert units["proposal"]["lost"]["incidents"] == proposal["lost"]["incidents"] == 1
    assert shape(by_code["JWQ-S"]["properties"]["today"]).equals(box(W, S, EAST, 31.57))
    assert not by_code["JWQ-S"]["properties"]["stale"]
    # For review in QGIS: proposed and today's units, and the pieces that change hands.
    exported = police.get(f"/plans/{plan['id']}/export.gpkg")
    assert exported.status_code == 200, exported.text
    path = tmp_path / "unit-plan.gpkg"
    path.write_bytes(exported.content)
    layers = {name for name, _ in pyogrio.list_layers(path)}
    assert layers == {"plan_units", "today_units", "gained", "lost"}
    planned = pyogrio.read_dataframe(path, layer="plan_units")
    assert sorted(planned["code"]) == ["JWQ-N", "JWQ-S"]
    south = planned.set_index("code").geometry["JWQ-S"]
    assert south.symmetric_difference(shape(proposal["geometry"])).area < 1e-12
    lost = pyogrio.read_dataframe(path, layer="lost").set_index("code")
    assert lost.loc["JWQ-S", "area_m2"] == pytest.approx(proposal["lost"]["area_m2"], abs=0.2)
    # Live units do not change before publishing.
    live = client.get("/units/police_unit/JWQ-S").json()
    assert shape(live["geometry"]).equals(box(W, S, EAST, 31.57))
    # Grid routes do not apply to a unit plan.
    assert police.get(f"/plans/{plan['id']}/grids/320213001001001").status_code == 409
    assert police.post(f"/plans/{plan['id']}/submit").status_code == 200
    assert police.post(f"/plans/{plan['id']}/approve").status_code == 403  # not a district role
    assert client.post(f"/plans/{plan['id']}/approve").status_code == 200
    today = datetime.now(LOCAL_TIME).date().isoformat()
    published = client.post(f"/plans/{plan['id']}/publish", json={"effective_date": today})
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published"
    edit_id = published.json()["unit_edit"]
    live = client.get("/units/police_unit/JWQ-S").json()
    assert shape(live["geometry"]).symmetric_difference(shape(proposal["geometry"])).area < 1e-12
    row = city.execute(
        text("SELECT operation, incidents_moved, codes FROM unit_edit WHERE id = :e"),
        {"e": edit_id},
    ).one()
    assert row.operation == "publish"
    assert row.incidents_moved == 1
    assert sorted(row.codes) == ["JWQ-N", "JWQ-S"]
    owner = city.execute(
        text("SELECT policing_area_code FROM incident ORDER BY id DESC LIMIT 1")
    ).scalar_one()
    assert owner == "JWQ-N"
    versions = client.get("/units/police_unit/JWQ-S/versions").json()["versions"]
    assert len(versions) == 2
    # Already made of whole grids: a second plan would change nothing.
    again = police.post(
        "/plans/from-docking/unit",
        json={"name": "再次", "unit_code": "JWQ-S", **KIND, "reason": "再次对接"},
    )
    assert again.status_code == 422


def test_stale_unit_plan_is_not_published(
    city: Connection, client_as: ClientAs, client: TestClient
) -> None:
    police = client_as("police", ["320213"])
    plan = make_plan(police)
    police.post(f"/plans/{plan['id']}/submit")
    assert client.post(f"/plans/{plan['id']}/approve").status_code == 200
    # Someone moves the boundary live after the plan was made.
    tags = ",".join(
        client.get(f"/units/police_unit/{c}").headers["ETag"] for c in ("JWQ-S", "JWQ-N")
    )
    moved = client.post(
        "/units/police_unit/JWQ-S/boundary",
        json={"neighbour": "JWQ-N", "geometry": mapping(box(W, S, EAST, 31.571)), "reason": "x"},
        headers={"If-Match": tags},
    )
    assert moved.status_code == 200, moved.text
    today = datetime.now(LOCAL_TIME).date().isoformat()
    stale = client.post(f"/plans/{plan['id']}/publish", json={"effective_date": today})
    assert stale.status_code == 409
    assert stale.json()["codes"] == "JWQ-N,JWQ-S"
    assert client.get(f"/plans/{plan['id']}").json()["status"] == "approved"
    units = police.get(f"/plans/{plan['id']}/units").json()["units"]["features"]
    assert all(f["properties"]["stale"] for f in units)


def test_who_may_make_a_unit_plan(city: Connection, client_as: ClientAs) -> None:
    body = {"name": "x", "unit_code": "JWQ-S", **KIND, "reason": "x"}
    assert (
        client_as("planner", ["320213"]).post("/plans/from-docking/unit", json=body).status_code
        == 403
    )
    elsewhere = client_as("police", ["320205"]).post("/plans/from-docking/unit", json=body)
    assert elsewhere.status_code == 404


def test_a_proposal_never_moves_area_across_parent_units(
    city: Connection, client: TestClient
) -> None:
    """Areas under different stations may not swap area (the children would leave their
    parents): the proposal stays inside the unit's parent and leaves a unit of another
    parent whole, so here, with the north area moved under PCS2, there is nothing to move."""
    city.execute(text("UPDATE police_unit SET parent_code = 'PCS2' WHERE code = 'JWQ-N'"))
    preview = client.get("/docking/proposals/units/JWQ-S", params=KIND)
    assert preview.status_code == 200, preview.text
    assert "JWQ-N" not in {n["unit_code"] for n in preview.json()["neighbours"]}
    assert preview.json()["lost"]["area_m2"] == 0
    assert preview.json()["gained"]["area_m2"] == 0
    body = {"name": "跨所", "unit_code": "JWQ-S", **KIND, "reason": "跨派出所对接"}
    refused = client.post("/plans/from-docking/unit", json=body)
    assert refused.status_code == 422
    assert "上级单元" in refused.json()["detail"]
