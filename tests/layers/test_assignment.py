"""The assignment engine on a small city whose every edge case is known (tests/small_city)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, MetaData, text

from gridgov.layers import assignment, incidents, scope
from gridgov.layers.assignment import OUTPUT_COLUMNS, OutsideCityError
from gridgov.layers.incidents import NewIncident
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope
from tests.small_city import (
    GRID_START,
    HOLE,
    MID,
    T2024,
    T2025,
    TOLERANCE,
    E,
    N,
    S,
    W,
    build_small_city,
    redraw_west_half,
)


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    return build_small_city(connection, metadata, registry)


def report(conn: Connection, lon: float, lat: float, at: datetime = T2024) -> dict[str, Any]:
    new_id = incidents.create(
        conn, NewIncident(lon, lat, "dispute", "grid_worker", at), TOLERANCE, actor="test"
    )
    return incidents.get(conn, new_id)


def test_inside_a_grid(city: Connection) -> None:
    row = report(city, 120.305, 31.575)
    assert (row["grid_code"], row["assign_method"]) == ("320213001001001", "inside")
    assert row["community_code"] == "320213001001"
    assert row["township_code"] == "320213001"
    assert row["district_code"] == "320213"
    assert row["police_station_code"] == "PCS1"
    assert row["policing_area_code"] == "JWQ-N"
    assert row["urban_unit_code"] == "CG1"
    assert row["emergency_unit_code"] == "YJ1"
    assert row["assign_distance_m"] is None


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(MID, 31.565), (MID, N), (MID, S), (W, 31.57), (E, 31.575)],
    ids=[
        "shared-edge",
        "shared-vertex-north",
        "shared-vertex-south",
        "outer-west-edge",
        "outer-east-edge",
    ],
)
def test_boundary_goes_to_the_lowest_code_every_time(
    city: Connection, lon: float, lat: float
) -> None:
    codes = {report(city, lon, lat)["grid_code"] for _ in range(3)}
    row = report(city, lon, lat)
    assert row["assign_method"] == "boundary"
    expected = "320213001001002" if lon == E else "320213001001001"
    assert codes == {expected}


def test_policing_area_boundary_also_takes_the_lowest_code(city: Connection) -> None:
    row = report(city, 120.305, 31.57)
    assert row["policing_area_code"] == "JWQ-N"  # "JWQ-N" < "JWQ-S"


def test_just_outside_goes_to_the_nearest_grid_with_distance(city: Connection) -> None:
    lon = E + 30 / (111_320 * np.cos(np.radians(31.57)))  # ~30 m east of the grids
    row = report(city, lon, 31.575)
    assert (row["grid_code"], row["assign_method"]) == ("320213001001002", "nearest")
    assert row["assign_distance_m"] == pytest.approx(30.0, abs=0.5)
    explanation = incidents.explain(city, int(row["id"]))
    assert "30" in explanation["explanation_zh"]
    assert explanation["grid_version"]["code"] == "320213001001002"


def test_beyond_tolerance_falls_to_the_township(city: Connection) -> None:
    row = report(city, 120.33, 31.575)  # ~950 m east of the grids, still in the township
    assert row["assign_method"] == "fallback"
    assert row["grid_code"] is None
    assert row["grid_id"] is None
    assert row["township_code"] == "320213001"
    assert row["district_code"] == "320213"
    assert row["police_station_code"] == "PCS1"
    assert row["policing_area_code"] == "JWQ-N"


def test_in_a_hole_nearest_or_fallback_by_distance(city: Connection) -> None:
    centre = HOLE.centroid
    assert report(city, centre.x, centre.y)["assign_method"] == "fallback"  # ~95 m from edge
    near_edge = report(city, 120.3021, 31.563)  # ~10 m inside the hole
    assert (near_edge["assign_method"], near_edge["grid_code"]) == ("nearest", "320213001001001")
    assert near_edge["assign_distance_m"] == pytest.approx(9.5, abs=1.0)


def test_outside_the_city_is_refused(city: Connection) -> None:
    before = city.execute(text("SELECT count(*) FROM incident")).scalar_one()
    with pytest.raises(OutsideCityError, match="outside every township"):
        report(city, 120.50, 31.575)
    assert city.execute(text("SELECT count(*) FROM incident")).scalar_one() == before


def test_the_grid_version_in_force_at_the_time_wins(
    city: Connection, metadata: MetaData, registry: Registry
) -> None:
    redraw_west_half(city, metadata, registry)
    old = report(city, 120.308, 31.575, at=T2024)
    new = report(city, 120.308, 31.575, at=T2025)
    assert old["grid_code"] == "320213001001001"
    assert new["grid_code"] == "320213001001003"
    versions: dict[int, datetime] = dict(
        city.execute(text("SELECT id, valid_from FROM grid WHERE code = '320213001001001'")).all()
    )
    assert versions[old["grid_id"]] == GRID_START


def test_reassign_touches_only_what_the_redraw_changed(
    city: Connection, metadata: MetaData, registry: Registry
) -> None:
    moved = report(city, 120.308, 31.575, at=T2025)
    untouched_east = report(city, 120.315, 31.575, at=T2025)
    untouched_past = report(city, 120.308, 31.575, at=T2024)
    since = city.execute(text("SELECT clock_timestamp()")).scalar_one()
    redraw_west_half(city, metadata, registry)
    affected = incidents.affected_by_changes(city, since, TOLERANCE)
    assert moved["id"] in affected
    assert untouched_east["id"] not in affected
    result = incidents.reassign(city, TOLERANCE, affected)
    assert result.moved >= 1
    assert ("320213001001001", "320213001001003", 1) in result.moves
    assert incidents.get(city, int(moved["id"]))["grid_code"] == "320213001001003"
    assert incidents.get(city, int(untouched_past["id"]))["grid_code"] == "320213001001001"


def _stored_assignments(conn: Connection) -> list[tuple[Any, ...]]:
    columns = ", ".join(("id", *OUTPUT_COLUMNS))
    return [tuple(r) for r in conn.execute(text(f"SELECT {columns} FROM incident ORDER BY id"))]


def test_reassigning_many_goes_the_bulk_way_with_the_same_answers(
    city: Connection, metadata: MetaData, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    xs, ys = rng.uniform(W, E, 240), rng.uniform(S, N, 240)
    points = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
    points += [(120.305, 31.57), (MID, 31.57), (120.3021, 31.563), (HOLE.centroid.x, 31.563)]
    for k, (x, y) in enumerate(points):
        report(city, x, y, at=T2024 if k % 3 == 0 else T2025)
    redraw_west_half(city, metadata, registry)
    placed = []
    real_assign_table = assignment.assign_table

    def assign_table(conn: Connection, source: str, tolerance_m: float) -> assignment.BulkResult:
        placed.append(result := real_assign_table(conn, source, tolerance_m))
        return result

    monkeypatch.setattr(assignment, "assign_table", assign_table)
    answers = []
    for bulk_from in (10**9, 0):  # the exact engine for everything, then the bulk way
        savepoint = city.begin_nested()
        result = incidents.reassign(city, TOLERANCE, bulk_from=bulk_from)
        answers.append((result, _stored_assignments(city)))
        savepoint.rollback()
    (exact, exact_rows), (bulk, bulk_rows) = answers
    assert bulk_rows == exact_rows
    assert bulk == exact
    assert bulk.evaluated == len(points)
    assert len(placed) == 1  # only the bulk way, and most points by its fast path
    assert placed[0].fast > placed[0].exact > 0
    assert bulk.moved > 0
    assert {"inside", "boundary", "nearest", "fallback"} <= set(bulk.by_method)
    assert any(
        before == "320213001001001" and after == "320213001001003"
        for before, after, _ in bulk.moves
    )


def test_reassigning_many_as_the_api_role_goes_through_the_exact_engine(
    city: Connection, metadata: MetaData, registry: Registry
) -> None:
    """API requests run as the bound role, which may not create tables: a grid or unit
    edit that touches many incidents must not take the bulk way (scratch tables), and the
    exact engine must work on a connection whose temporary table the login role made."""
    moved = report(city, 120.308, 31.575, at=T2025)
    redraw_west_half(city, metadata, registry)
    # As on a pooled connection that served the login role first: its temporary table.
    assignment.prepare_input(city)
    scope.enter(city, AreaScope.everything(), bound=True)
    try:
        assert city.execute(text("SELECT current_user")).scalar_one() == scope.API_ROLE
        result = incidents.reassign(city, TOLERANCE, [int(moved["id"])], bulk_from=0)
    finally:
        scope.leave(city)
    assert result.moves == [("320213001001001", "320213001001003", 1)]


def reference(
    points: list[Point],
    grids: list[tuple[str, BaseGeometry]],
    townships: list[tuple[str, BaseGeometry]],
) -> list[tuple[str | None, str]]:
    """The rules written again with shapely, independently of the SQL."""
    from pyproj import Geod

    geod = Geod(ellps="GRS80")
    out: list[tuple[str | None, str]] = []
    for p in points:
        hits = sorted(code for code, g in grids if g.intersects(p))
        if len(hits) == 1 and next(g for c, g in grids if c == hits[0]).contains(p):
            out.append((hits[0], "inside"))
        elif hits:
            out.append((hits[0], "boundary"))
        else:
            best: tuple[float, str] | None = None
            for code, g in grids:
                near = shapely.ops.nearest_points(g, p)[0]
                distance = geod.inv(p.x, p.y, near.x, near.y)[2]
                if best is None or (round(distance, 3), code) < best:
                    best = (round(distance, 3), code)
            if best is not None and best[0] <= TOLERANCE:
                out.append((best[1], "nearest"))
            elif any(t.intersects(p) for _, t in townships):
                out.append((None, "fallback"))
            else:
                out.append((None, "outside"))
    return out


def test_matches_a_shapely_reference_on_random_points(city: Connection) -> None:
    import shapely.ops

    rng = np.random.default_rng(42)
    lons = rng.uniform(120.295, 120.345, 1500)
    lats = rng.uniform(31.555, 31.585, 1500)
    # A third of the points sit exactly on edges and vertices.
    lons[:250] = rng.choice([W, MID, E, 120.302, 120.304], 250)
    lats[250:500] = rng.choice([S, 31.57, N, 31.562, 31.564], 250)
    points = [Point(x, y) for x, y in zip(lons, lats, strict=True)]
    grids = [
        (str(c), shapely.from_wkb(bytes(g)))
        for c, g in city.execute(text("SELECT code, ST_AsBinary(geom) FROM grid"))
    ]
    townships = [
        (str(c), shapely.from_wkb(bytes(g)))
        for c, g in city.execute(text("SELECT code, ST_AsBinary(geom) FROM township"))
    ]
    expected = reference(points, grids, townships)
    from gridgov.layers import assignment

    assignment.prepare_input(city)
    city.execute(
        text(
            "INSERT INTO assign_input (id, geom, at) VALUES "
            "(:i, ST_SetSRID(ST_MakePoint(:x, :y), 4490), :t)"
        ),
        [{"i": i, "x": p.x, "y": p.y, "t": T2024} for i, p in enumerate(points)],
    )
    assignment.run(city, TOLERANCE)
    got = {
        int(r.id): (r.grid_code, r.assign_method)
        for r in city.execute(text("SELECT id, grid_code, assign_method FROM assign_output"))
    }
    outside = set(assignment.outside(city))
    assignment.finish(city)
    actual = [("outside" if i in outside else None) for i in range(len(points))]
    mismatches = [
        (i, points[i].wkt, expected[i], got.get(i))
        for i in range(len(points))
        if (expected[i][1] == "outside") != (actual[i] == "outside")
        or (i in got and got[i] != expected[i])
    ]
    assert mismatches == [], mismatches[:10]
    methods = {m for _, m in expected}
    assert methods == {"inside", "boundary", "nearest", "fallback", "outside"}


def _exact_answers(city: Connection, rows: list[dict[str, Any]]) -> dict[int, tuple[Any, ...]]:
    from gridgov.layers import assignment

    assignment.prepare_input(city)
    city.execute(
        text(
            "INSERT INTO assign_input (id, geom, at) "
            "VALUES (:i, ST_SetSRID(ST_MakePoint(:x, :y), 4490), :t)"
        ),
        rows,
    )
    assignment.run(city, TOLERANCE)
    columns = ", ".join(assignment.OUTPUT_COLUMNS)
    answers = {
        int(r[0]): tuple(r[1:])
        for r in city.execute(text(f"SELECT id, {columns} FROM assign_output"))
    }
    assignment.finish(city)
    return answers


@pytest.mark.parametrize("when", [T2024, T2025], ids=["before-redraw", "after-redraw"])
def test_fast_path_gives_the_exact_engines_answer_for_every_column(
    city: Connection, metadata: MetaData, registry: Registry, when: datetime
) -> None:
    """The bulk path (pieces + exact engine for the rest) against the exact engine alone,
    on random points, a third of them exactly on grid edges, the policing-area line and
    the hole's edges, before and after a redraw (two grid versions in force at times)."""
    from gridgov.layers import assignment

    redraw_west_half(city, metadata, registry)
    assert assignment.atoms_fresh(city)
    rng = np.random.default_rng(7)
    lons = rng.uniform(120.298, 120.322, 800)
    lats = rng.uniform(31.558, 31.582, 800)
    lons[:150] = rng.choice([W, MID, E, 120.302, 120.304, 120.305], 150)
    lats[150:300] = rng.choice([S, 31.57, N, 31.562, 31.564], 150)
    rows = [
        {"i": i, "x": float(x), "y": float(y), "t": when}
        for i, (x, y) in enumerate(zip(lons, lats, strict=True))
    ]
    expected = _exact_answers(city, rows)
    city.execute(
        text("CREATE TABLE fast_src (id bigint, geom geometry(Point, 4490), at timestamptz)")
    )
    city.execute(
        text("INSERT INTO fast_src VALUES (:i, ST_SetSRID(ST_MakePoint(:x, :y), 4490), :t)"),
        rows,
    )
    city.execute(text("CREATE INDEX ON fast_src USING gist (geom)"))
    result = assignment.assign_table(city, "fast_src", TOLERANCE)
    columns = ", ".join(assignment.OUTPUT_COLUMNS)
    got = {
        int(r[0]): tuple(r[1:])
        for r in city.execute(text(f"SELECT id, {columns} FROM {result.relation()} o"))
    }
    assert result.fast > 300  # the fast path really ran …
    assert result.exact > 200  # … and the edges really went to the exact engine
    assert set(result.outside) == set(range(800)) - set(expected)
    mismatches = [
        (i, rows[i], expected.get(i), got.get(i))
        for i in range(800)
        if expected.get(i) != got.get(i)
    ]
    assert mismatches == [], mismatches[:5]
    # The single-incident path gives the same answers, through the fast path or not.
    for i in range(0, 800, 20):
        if i in expected:
            new_id = incidents.create(
                city,
                NewIncident(float(lons[i]), float(lats[i]), "dispute", "hotline", when),
                TOLERANCE,
                actor="test",
            )
            stored = incidents.get(city, new_id)
            assert tuple(stored[c] for c in assignment.OUTPUT_COLUMNS) == expected[i], rows[i]
    result.drop(city)


@pytest.mark.parametrize(
    "ids",
    [
        [0, 1, 62, 63, 64, 127, 128],  # both ends of a 64-id word, the sign bit included
        [2**40 + 63, 2**40 + 64, 7, 9_000_000_001, 3],  # sparse, out of order
        [-1, -64, -65, 5, 2**62 + 1, 2**63 - 1, -(2**63)],  # negative ids and the extremes
    ],
    ids=["word-ends", "sparse", "extremes"],
)
def test_rows_the_fast_path_leaves_are_found_by_id_whatever_the_ids(
    city: Connection, ids: list[int]
) -> None:
    """The rows left for the exact engine are found by XORing one bit per id (a word of
    64 ids per group): every id, wherever its bit sits in its word, must land on exactly
    one side, the fast path or the exact engine, never both or neither."""
    from gridgov.layers import assignment

    assert assignment.atoms_fresh(city)
    inside = (120.3013, 31.5633)  # deep in a grid and in one unit of each layer
    places = [
        (MID, 31.5633),  # on a shared grid edge: exact engine
        (121.9, 32.9),  # outside the city: exact engine, then refused
        inside,
    ]
    city.execute(
        text("CREATE TABLE rest_src (id bigint, geom geometry(Point, 4490), at timestamptz)")
    )
    where = {i: places[n % len(places)] for n, i in enumerate(ids)}
    city.execute(
        text("INSERT INTO rest_src VALUES (:i, ST_SetSRID(ST_MakePoint(:x, :y), 4490), :t)"),
        [{"i": i, "x": x, "y": y, "t": T2024} for i, (x, y) in where.items()],
    )
    city.execute(text("CREATE INDEX ON rest_src USING gist (geom)"))
    result = assignment.assign_table(city, "rest_src", TOLERANCE)
    fast, rest, _exact = result.tables
    fast_ids = set(city.execute(text(f"SELECT id FROM {fast}")).scalars())
    rest_ids = set(city.execute(text(f"SELECT id FROM {rest}")).scalars())
    assert fast_ids == {i for i, p in where.items() if p == inside}
    assert rest_ids == set(ids) - fast_ids
    assert (result.fast, result.exact) == (len(fast_ids), len(rest_ids))
    assert set(result.outside) == {i for i, p in where.items() if p == (121.9, 32.9)}
    placed = list(city.execute(text(f"SELECT id FROM {result.relation()} o")).scalars())
    assert sorted(placed) == sorted(set(ids) - set(result.outside))
    result.drop(city)


def test_stale_pieces_are_never_used(city: Connection) -> None:
    """A unit redrawn after the pieces were cut: every point takes the exact engine."""
    from gridgov.layers import assignment

    city.execute(
        text(
            "UPDATE police_unit SET geom = ST_Multi(ST_MakeEnvelope(120.2, 31.5, 120.4, 31.575,"
            " 4490)) WHERE code = 'JWQ-S'"
        )
    )
    assert not assignment.atoms_fresh(city)
    row = report(city, 120.305, 31.572)  # north of the old line, inside the new JWQ-S
    assert row["policing_area_code"] == "JWQ-N"  # lowest code of the two overlapping areas
    row = report(city, 120.305, 31.565)
    assert row["policing_area_code"] == "JWQ-S"


def test_a_failure_inside_local_settings_is_not_hidden(connection: Connection) -> None:
    """Restoring the settings after an error that aborted the transaction failed again
    (InFailedSqlTransaction), and that second error hid the first: a statement timeout
    during the demo load was reported as 'current transaction is aborted'."""
    import psycopg
    from sqlalchemy.exc import DBAPIError

    with (
        pytest.raises(DBAPIError) as caught,
        assignment.local_settings(connection, {"work_mem": "64MB"}),
    ):
        connection.execute(text("SELECT 1 / 0"))
    assert isinstance(caught.value.orig, psycopg.errors.DivisionByZero)
