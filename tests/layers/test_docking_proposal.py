"""Docking proposals on the small city in real PostGIS, and over HTTP.

The community's policing areas are redrawn in the test so that they split it at
lon 120.312, just east of the grids' shared edge (120.31): grid …002 then has a
200 m strip in the western area, which the proposals move to grid …001 (grid side) or
to the eastern area (unit side).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import MultiPolygon, Point, box, shape
from sqlalchemy import Connection, MetaData, text

from gridgov.errors import InvalidInputError, NotFoundError
from gridgov.gis.measures import area_m2
from gridgov.layers import docking, docking_proposal, incidents, plans
from gridgov.layers.incidents import NewIncident
from gridgov.layers.measures import Period
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope
from tests.conftest import ClientAs
from tests.factories import insert_row, valid_row
from tests.small_city import HOLE, MID, TOLERANCE, E, N, S, W, build_small_city

G1, G2 = "320213001001001", "320213001001002"
TOWNSHIP = "320213001"
CUT = 120.312
STRIP = box(MID, S, CUT, N)
PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
PARAMS = {"unit_layer": "police_unit", "unit_level": "policing_area"}


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    build_small_city(connection, metadata, registry)
    for code, geom in (("JWQ-S", box(W, S, CUT, N)), ("JWQ-N", box(CUT, S, 120.34, N))):
        connection.execute(
            text("UPDATE police_unit SET geom = ST_GeomFromWKB(:g, 4490) WHERE code = :c"),
            {"g": shapely.to_wkb(MultiPolygon([geom])), "c": code},
        )
    # In the strip: a building of 50 households and one incident of the period.
    building = valid_row(
        registry.get("building"),
        grid_code=G2,
        households=50,
        residents=120,
        geom=Point(120.311, 31.575),
    )
    insert_row(connection, metadata, "building", building)
    incidents.create(
        connection,
        NewIncident(120.311, 31.571, "dispute", "hotline", datetime(2025, 5, 1, tzinfo=UTC)),
        TOLERANCE,
        "t",
    )
    return connection


def kind(registry: Registry) -> docking.UnitKind:
    return docking.unit_kind(registry, "police_unit", "policing_area")


def test_grids_follow_the_units(city: Connection, registry: Registry) -> None:
    result = docking_proposal.grids_follow_units_proposal(
        city, registry, TOWNSHIP, kind(registry), PERIOD
    )
    [move] = result["moves"]
    assert (move["from_code"], move["to_code"], move["unit_code"]) == (G2, G1, "JWQ-S")
    assert move["area_m2"] == pytest.approx(area_m2(STRIP), rel=1e-3)
    assert (move["households"], move["buildings"], move["incidents"]) == (50, 1, 1)
    assert result["left"] == []
    before, after = result["docking"]["before"], result["docking"]["after"]
    assert (before["docked"], before["straddling"]) == (1, 1)
    assert after["docked"] == 2
    assert after["score"] == pytest.approx(100.0, abs=0.1)
    grids = {f["id"]: f for f in result["grids"]["features"]}
    assert set(grids) == {G1, G2}
    moved = grids[G1]["properties"]
    assert moved["after"]["households"] == moved["before"]["households"] + 50
    assert area_m2(shape(grids[G2]["geometry"]).symmetric_difference(box(CUT, S, E, N))) < 1.0
    # A proposal writes nothing.
    stored = city.execute(
        text("SELECT ST_AsBinary(geom) FROM grid WHERE code = :c AND valid_to IS NULL"), {"c": G2}
    ).scalar_one()
    assert shapely.from_wkb(bytes(stored)).equals(MultiPolygon([box(MID, S, E, N)]))


def test_unit_made_of_whole_grids(city: Connection, registry: Registry) -> None:
    result = docking_proposal.units_from_grids_proposal(
        city, registry, kind(registry), "JWQ-N", PERIOD, AreaScope.everything()
    )
    # Only the grids the unit reaches take part; …001 lies wholly in the other area.
    assert {g["code"]: g["unit_code"] for g in result["grids"]} == {G2: "JWQ-N"}
    assert result["gained"]["area_m2"] == pytest.approx(area_m2(STRIP), rel=1e-3)
    assert result["gained"]["households"] == 50
    assert result["lost"]["area_m2"] == 0
    assert result["docking"]["before"]["docked"] == 0
    assert result["docking"]["after"]["docked"] == 1
    proposed = shape(result["geometry"])
    assert area_m2(proposed.symmetric_difference(box(MID, S, 120.34, N))) < 1.0
    [neighbour] = result["neighbours"]
    assert (neighbour["unit_code"], neighbour["emptied"]) == ("JWQ-S", False)
    assert area_m2(shape(neighbour["geometry"]).symmetric_difference(box(W, S, MID, N))) < 1.0


def test_a_unit_outside_the_scope_is_not_found(city: Connection, registry: Registry) -> None:
    with pytest.raises(NotFoundError):
        docking_proposal.units_from_grids_proposal(
            city, registry, kind(registry), "JWQ-N", PERIOD, AreaScope.of(["320214"])
        )


@pytest.mark.usefixtures("city")
def test_proposals_over_http(client: TestClient, client_as: ClientAs) -> None:
    grid_side = client.get(f"/docking/proposals/townships/{TOWNSHIP}", params=PARAMS)
    assert grid_side.status_code == 200, grid_side.text
    assert [m["to_code"] for m in grid_side.json()["moves"]] == [G1]
    unit_side = client.get("/docking/proposals/units/JWQ-N", params=PARAMS)
    assert unit_side.status_code == 200, unit_side.text
    assert unit_side.json()["gained"]["households"] == 50
    elsewhere = client_as("planner", ["320213002"])
    hidden = elsewhere.get(f"/docking/proposals/townships/{TOWNSHIP}", params=PARAMS)
    assert hidden.status_code == 404
    bad = client.get(f"/docking/proposals/townships/{TOWNSHIP}", params={"unit_layer": "grid"})
    assert bad.status_code == 422
    assert "责任区" in bad.json()["detail"]


def test_the_grid_side_proposal_as_a_plan(city: Connection, registry: Registry) -> None:
    plan_id = docking_proposal.plan_grids_follow_units(
        city,
        registry,
        TOWNSHIP,
        kind(registry),
        actor="planner",
        reason="随警务区调整",
        name="对接方案",
        tolerance_m=TOLERANCE,
        max_vertices=5000,
    )
    plan = plans.get(city, plan_id)
    assert (plan.status, plan.origin, plan.township_code) == ("draft", "proposal", TOWNSHIP)
    in_plan = {g.version.code: g for g in plans.grids(city, plan)}
    assert in_plan[G1].change == in_plan[G2].change == "changed"
    grown = in_plan[G1].version.geometry
    assert area_m2(grown.symmetric_difference(box(W, S, CUT, N).difference(HOLE))) < 1.0
    assert area_m2(in_plan[G2].version.geometry.symmetric_difference(box(CUT, S, E, N))) < 1.0
    # The live grids are untouched until the plan is published.
    live = city.execute(
        text("SELECT ST_AsBinary(geom) FROM grid WHERE code = :c AND valid_to IS NULL"), {"c": G2}
    ).scalar_one()
    assert shapely.from_wkb(bytes(live)).equals(MultiPolygon([box(MID, S, E, N)]))


def test_nothing_to_move_makes_no_plan(city: Connection, registry: Registry) -> None:
    urban = docking.unit_kind(registry, "urban_unit", None)  # one unit holds the township
    with pytest.raises(InvalidInputError):
        docking_proposal.plan_grids_follow_units(
            city,
            registry,
            TOWNSHIP,
            urban,
            actor="planner",
            reason="随城管责任区调整",
            name="对接方案",
            tolerance_m=TOLERANCE,
            max_vertices=5000,
        )
    assert city.execute(text("SELECT count(*) FROM plan")).scalar_one() == 0


@pytest.mark.usefixtures("city")
def test_plan_from_docking_over_http(client: TestClient, client_as: ClientAs) -> None:
    body = {"name": "对接方案", "township_code": TOWNSHIP, "reason": "随警务区调整", **PARAMS}
    made = client.post("/plans/from-docking", json=body)
    assert made.status_code == 201, made.text
    plan = made.json()
    assert made.headers["Location"] == f"/plans/{plan['id']}"
    assert plan["changes"]["changed"] == 2
    features = client.get(f"/plans/{plan['id']}/grids").json()["features"]
    assert {f["properties"]["code"]: f["properties"]["change"] for f in features} == {
        G1: "changed",
        G2: "changed",
    }
    viewer = client_as("viewer", [TOWNSHIP])
    assert viewer.post("/plans/from-docking", json=body).status_code == 403
    elsewhere = client_as("planner", ["320213002"])
    assert elsewhere.post("/plans/from-docking", json=body).status_code == 403
