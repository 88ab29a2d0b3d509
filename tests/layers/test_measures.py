"""Measures gathered from real PostGIS on the small city (tests/small_city.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import Connection, MetaData

from gridgov.gis.measures import WorkloadWeights, area_m2
from gridgov.layers import docking, incidents, measures
from gridgov.layers.incidents import NewIncident
from gridgov.layers.measures import Period
from gridgov.layers.registry import Registry
from tests.factories import insert_row, valid_row
from tests.small_city import HOLE, MID, TOLERANCE, E, N, S, W, build_small_city

G1, G2 = "320213001001001", "320213001001002"
PERIOD = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    build_small_city(connection, metadata, registry)

    def add(layer: str, **kw: object) -> None:
        insert_row(connection, metadata, layer, valid_row(registry.get(layer), **kw))

    add("building", grid_code=G1, households=120, residents=300, geom=Point(120.305, 31.568))
    add("building", grid_code=G2, households=80, residents=200, geom=Point(120.315, 31.568))
    # On the shared edge: counted once, for the lowest code (…001).
    add("building", grid_code=G1, households=10, residents=20, geom=Point(MID, 31.575))
    add("rental_housing", grid_code=G2, is_group_rental=True, geom=Point(120.316, 31.571))
    add("rental_housing", grid_code=G2, is_group_rental=False, geom=Point(120.317, 31.571))
    add("key_site", grid_code=G2, category="school", geom=Point(120.318, 31.575))
    # A hazard area straddling both grids counts for both; one only touching …002 does not.
    add("hazard_zone", grid_code=G1, risk_level="major", geom=box(120.309, 31.565, 120.311, 31.566))
    add("hazard_zone", grid_code=G1, risk_level="low", geom=box(120.300, 31.565, MID, 31.566))
    for at in (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 9, 1, tzinfo=UTC)):
        incidents.create(
            connection, NewIncident(120.315, 31.575, "dispute", "hotline", at), TOLERANCE, "t"
        )
    incidents.create(  # outside the period
        connection,
        NewIncident(120.315, 31.575, "dispute", "hotline", datetime(2024, 6, 1, tzinfo=UTC)),
        TOLERANCE,
        "t",
    )
    return connection


def test_gather_counts_what_lies_in_each_geometry(city: Connection) -> None:
    west = box(W, S, MID, N).difference(HOLE)
    east = MultiPolygon([box(MID, S, E, N)])
    counts = measures.gather(city, {G1: west, G2: east}, PERIOD)
    assert (counts[G1].households, counts[G1].population, counts[G1].buildings) == (130, 320, 2)
    assert (counts[G2].households, counts[G2].buildings) == (80, 1)
    assert (counts[G2].rentals, counts[G2].group_rentals, counts[G2].key_sites) == (2, 1, 1)
    assert counts[G2].incidents == 2
    assert counts[G1].incidents == 0
    assert counts[G1].hazards == {"major": 1, "low": 1}
    assert counts[G2].hazards == {"major": 1}
    # A proposed geometry alone takes the edge building too.
    alone = measures.gather(city, {"p": east}, PERIOD)["p"]
    assert alone.households == 90


def test_grid_report_measures_and_docking(city: Connection, registry: Registry) -> None:
    geom = MultiPolygon([box(MID, S, E, N)])
    report = measures.grid_report(city, registry, G2, PERIOD, WorkloadWeights())
    assert report["households"] == 80
    assert report["area_km2"] == pytest.approx(area_m2(geom) / 1e6, rel=1e-6)
    assert report["contiguous"] is True
    days = PERIOD.days
    expected = 80 + 0.5 * 2 * 365.25 / days + 0.5 * 2 + 5 * 1 + 10 * 1 + 30 * 1
    assert report["workload"] == pytest.approx(expected, abs=0.01)
    by_kind = {(d["unit_layer"], d["unit_level"]): d for d in report["docking"]}
    station = by_kind[("police_unit", "station")]
    assert (station["unit"], station["docked"], station["wrong_side_m2"]) == ("PCS1", True, 0.0)
    area = by_kind[("police_unit", "policing_area")]
    assert area["docked"] is False
    assert area["share"] == pytest.approx(0.5, abs=1e-6)
    assert area["wrong_side_m2"] == pytest.approx(area_m2(geom) / 2, rel=1e-3)


def test_community_report_balance_coverage_and_docking(
    city: Connection, registry: Registry
) -> None:
    report = measures.area_report(city, registry, "320213001001", PERIOD, WorkloadWeights())
    assert [g["code"] for g in report["grids"]] == [G1, G2]
    households = report["balance"]["households"]
    assert (households["minimum"], households["maximum"]) == (80, 130)
    assert households["cv"] == pytest.approx(25 / 105, abs=1e-4)
    pieces = report["coverage"]["pieces"]["features"]
    assert [p["properties"]["kind"] for p in pieces] == ["gap"]
    assert pieces[0]["properties"]["area_m2"] == pytest.approx(area_m2(HOLE), rel=1e-6)
    assert report["coverage"]["totals_m2"] == {
        "gap": pytest.approx(area_m2(HOLE), abs=0.01),
        "overlap": 0.0,
        "outside": 0.0,
    }
    scores = {(d["unit_layer"], d["unit_level"]): d for d in report["docking"]}
    assert scores[("police_unit", "station")]["score"] == 100.0
    assert scores[("police_unit", "policing_area")]["docked"] == 0
    # Each grid lies half in JWQ-S, half in JWQ-N, except the hole in …001's southern half.
    assert 50.0 < scores[("police_unit", "policing_area")]["score"] < 51.0
    # The same score as the docking map's per-township table (precomputed grid_unit).
    kind = docking.unit_kind(registry, "police_unit", "policing_area")
    (township,) = docking.township_docking(city, kind)
    assert scores[("police_unit", "policing_area")]["score"] == township.score


def test_township_report_lists_community_level_gaps(city: Connection, registry: Registry) -> None:
    report = measures.area_report(city, registry, "320213001", PERIOD, WorkloadWeights())
    assert report["level"] == "township"
    pieces = report["coverage"]["pieces"]["features"]
    park = [p for p in pieces if p["properties"]["level"] == "community"]
    assert len(park) == 1  # the ungridded park east of the community: 属地兜底
    assert park[0]["properties"]["area_m2"] == pytest.approx(
        area_m2(box(E, S, 120.34, N)), rel=1e-6
    )
    holes = [p for p in pieces if p["properties"]["level"] == "grid"]
    assert [p["properties"]["parent_code"] for p in holes] == ["320213001001"]


def test_proposed_geometries_are_measured_as_a_set(city: Connection, registry: Registry) -> None:
    proposal = {
        "north": MultiPolygon([box(W, 31.57, E, N)]),
        "south": box(W, S, E, 31.57).difference(HOLE),
    }
    report = measures.measure_geometries(city, registry, proposal, PERIOD, WorkloadWeights())
    by_key = {g["key"]: g for g in report["grids"]}
    assert by_key["north"]["households"] == 10
    assert by_key["south"]["households"] == 200
    docked = {(d["unit_layer"], d["unit_level"]): d for d in report["docking"]}
    assert docked[("police_unit", "policing_area")]["docked"] == 2  # follows the units now
    assert docked[("police_unit", "policing_area")]["score"] == 100.0


def test_unknown_area_is_404_and_bad_code_422(city: Connection, registry: Registry) -> None:
    from gridgov.errors import InvalidInputError, NotFoundError

    with pytest.raises(NotFoundError):
        measures.area_report(city, registry, "320213009009", PERIOD, WorkloadWeights())
    with pytest.raises(InvalidInputError):
        measures.area_report(city, registry, "3202", PERIOD, WorkloadWeights())
