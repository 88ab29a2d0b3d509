"""Grid edits on the small city (tests/small_city.py), on real PostGIS.

Grid …001 is the west half of community 320213001001 (with a hole nobody grids), …002 the
east half; they share the edge lon = 120.31.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import shapely
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, Polygon, box
from sqlalchemy import Connection, MetaData, text

from gridgov.errors import ConflictError, PreconditionFailedError, PreconditionRequiredError
from gridgov.gis.coverage import coverage_pieces, totals
from gridgov.gis.grid_edit import (
    Create,
    EditConflictError,
    InvalidEditError,
    Merge,
    MoveBoundary,
    Operation,
    Options,
    Replace,
    Retire,
    Split,
    Update,
)
from gridgov.gis.measures import area_m2
from gridgov.layers import grid_edit, incidents
from gridgov.layers.grid_edit import EditResult
from gridgov.layers.incidents import NewIncident
from gridgov.layers.registry import Registry
from tests.factories import insert_row, valid_row
from tests.small_city import HOLE, MID, TOLERANCE, E, N, S, W, build_small_city, multi

G1, G2 = "320213001001001", "320213001001002"
COMMUNITY = "320213001001"


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    return build_small_city(connection, metadata, registry)


def etag(conn: Connection, code: str) -> str:
    return grid_edit.current(conn, code).etag


def edit(
    conn: Connection,
    registry: Registry,
    operation: Operation,
    *,
    tags: list[str] | None = None,
    options: Options | None = None,
    community_code: str | None = None,
) -> EditResult:
    if tags is None:
        tags = [etag(conn, code) for code in operation.named]
    return grid_edit.apply_edit(
        conn,
        registry,
        operation,
        actor="planner-1",
        reason="测试调整",
        if_match=tags,
        options=options or Options(),
        tolerance_m=TOLERANCE,
        community_code=community_code,
    )


def in_force(conn: Connection) -> dict[str, Any]:
    return {v.code: v for v in grid_edit.in_force(conn, COMMUNITY)}


def coverage_m2(conn: Connection, registry: Registry) -> tuple[float, float, float]:
    """Gap, overlap and spill-over of the stored grids in force, overlaid in lon/lat."""
    community = conn.execute(
        text("SELECT ST_AsBinary(geom) FROM community WHERE code = :c"), {"c": COMMUNITY}
    ).scalar_one()
    grids = {code: v.geometry for code, v in in_force(conn).items()}
    found = totals(coverage_pieces(shapely.from_wkb(bytes(community)), grids, tolerance_m2=0.0))
    return found["gap"], found["overlap"], found["outside"]


def test_replace_that_leaves_a_gap_is_refused_with_the_gap(
    city: Connection, registry: Registry
) -> None:
    smaller = box(120.312, S, E, N)
    with pytest.raises(EditConflictError) as refused:
        edit(city, registry, Replace(G2, smaller, {"name": "东片"}))
    problem = refused.value.problems[0]
    assert problem.kind == "gap"
    assert problem.geometry is not None
    assert problem.geometry.symmetric_difference(box(MID, S, 120.312, N)).area < 1e-12
    drawn: Any = refused.value.members()["problems"]
    assert drawn["features"][0]["geometry"]["type"] == "Polygon"
    assert set(in_force(city)) == {G1, G2}
    assert in_force(city)[G2].geometry.equals(multi(box(MID, S, E, N)))


def test_gap_given_back_goes_to_the_neighbour(city: Connection, registry: Registry) -> None:
    gap_before = coverage_m2(city, registry)[0]
    old = in_force(city)
    result = edit(city, registry, Replace(G2, box(120.312, S, E, N)), options=Options(gap="give"))
    assert result.followers == [G1]
    now = in_force(city)
    assert now[G2].geometry.equals(multi(box(120.312, S, E, N)))
    assert area_m2(now[G1].geometry) == pytest.approx(
        area_m2(old[G1].geometry) + area_m2(box(MID, S, 120.312, N)), rel=1e-6
    )
    gap, overlap, outside = coverage_m2(city, registry)
    # only the hole nobody grids
    assert gap == pytest.approx(gap_before, abs=1.0)
    assert overlap < 1.0
    assert outside < 1.0
    # Versions: the old ones closed at the instant the new ones start.
    for code in (G1, G2):
        versions = grid_edit.history(city, code)
        assert len(versions) == 2
        assert versions[0].valid_to == versions[1].valid_from == result.at
        assert versions[1].valid_to is None
    log = grid_edit.edit_log(city, COMMUNITY, None, 10)[0]
    assert (log["actor"], log["reason"], log["operation"]) == ("planner-1", "测试调整", "replace")
    assert sorted(log["old_versions"]) == sorted(old[c].id for c in (G1, G2))
    assert sorted(log["new_versions"]) == sorted(now[c].id for c in (G1, G2))
    assert log["details"]["options"] == {"overlap": "refuse", "gap": "give"}


def test_overlap_is_refused_or_taken_from_the_neighbour(
    city: Connection, registry: Registry
) -> None:
    bigger = box(W, S, 120.313, N).difference(HOLE)
    with pytest.raises(EditConflictError) as refused:
        edit(city, registry, Replace(G1, bigger))
    problem = refused.value.problems[0]
    assert (problem.kind, problem.codes) == ("overlap", (G2,))
    assert problem.area_m2 == pytest.approx(area_m2(box(MID, S, 120.313, N)), rel=1e-6)
    edit(city, registry, Replace(G1, bigger), options=Options(overlap="take"))
    now = in_force(city)
    assert now[G2].geometry.symmetric_difference(box(120.313, S, E, N)).area < 1e-12
    assert coverage_m2(city, registry)[1] < 1.0


def test_outside_the_community_invalid_and_too_many_vertices_are_422(
    city: Connection, registry: Registry
) -> None:
    with pytest.raises(InvalidEditError) as outside:
        edit(city, registry, Replace(G2, box(MID, S, 120.33, N)), options=Options(overlap="take"))
    assert outside.value.problems[0].kind == "outside-community"
    piece = outside.value.problems[0].geometry
    assert piece is not None
    assert piece.symmetric_difference(box(E, S, 120.33, N)).area < 1e-12
    bowtie = Polygon([(MID, S), (E, N), (E, S), (MID, N)])
    with pytest.raises(InvalidEditError) as invalid:
        edit(city, registry, Replace(G2, bowtie))
    assert invalid.value.problems[0].kind == "geometry-invalid"
    where = invalid.value.problems[0].geometry
    assert isinstance(where, Point)
    assert where.distance(Point((MID + E) / 2, (S + N) / 2)) < 1e-9
    dense = shapely.segmentize(box(MID, S, E, N), 0.0001)
    with pytest.raises(InvalidEditError) as vertices:
        edit(city, registry, Replace(G2, dense), options=Options(max_vertices=50))
    assert vertices.value.problems[0].kind == "too-many-vertices"
    assert len(grid_edit.edit_log(city, COMMUNITY, None, 10)) == 0


def test_every_write_needs_a_current_etag(city: Connection, registry: Registry) -> None:
    operation = Update(G2, attrs={"name": "东片"})
    with pytest.raises(PreconditionRequiredError):
        edit(city, registry, operation, tags=[])
    stale = etag(city, G2)
    edit(city, registry, operation, tags=[stale])
    assert etag(city, G2) != stale
    with pytest.raises(PreconditionFailedError) as failed:
        edit(city, registry, Update(G2, attrs={"name": "再改"}), tags=[stale])
    assert failed.value.public["codes"] == G2
    assert in_force(city)[G2].attrs["name"] == "东片"


def test_update_attributes_only_makes_a_new_version_with_the_same_shape(
    city: Connection, registry: Registry
) -> None:
    before = in_force(city)[G2]
    edit(city, registry, Update(G2, attrs={"worker_name": "王*", "kind": "dedicated"}))
    after = in_force(city)[G2]
    assert after.id != before.id
    assert after.geometry.equals(before.geometry)
    assert (after.attrs["worker_name"], after.attrs["kind"]) == ("王*", "dedicated")
    assert after.attrs["name"] == before.attrs["name"]


def test_split_by_a_line_keeps_the_code_on_the_larger_piece(
    city: Connection, registry: Registry
) -> None:
    line = LineString([(MID - 0.001, 31.575), (E + 0.001, 31.575)])
    result = edit(city, registry, Split(G2, line))
    assert result.created == ["320213001001003"]
    now = in_force(city)
    assert now[G2].geometry.symmetric_difference(box(MID, S, E, 31.575)).area < 1e-12
    assert now["320213001001003"].geometry.symmetric_difference(box(MID, 31.575, E, N)).area < 1e-12
    assert coverage_m2(city, registry)[1] < 1.0
    with pytest.raises(InvalidEditError) as refused:
        edit(city, registry, Split(G2, LineString([(MID + 0.001, 31.57), (MID + 0.002, 31.571)])))
    assert refused.value.problems[0].kind == "split-line"


def test_merge_adjacent_grids_and_refuse_others(city: Connection, registry: Registry) -> None:
    line = LineString([(MID - 0.001, 31.575), (E + 0.001, 31.575)])
    edit(city, registry, Split(G2, line))  # …002 south, …003 north of 31.575
    line = LineString([(MID - 0.001, 31.57), (E + 0.001, 31.57)])
    edit(city, registry, Split(G2, line))  # …002 keeps the larger part; …004 the other
    now = in_force(city)
    assert set(now) == {G1, G2, "320213001001003", "320213001001004"}
    south = min(("320213001001003", "320213001001004", G2), key=lambda c: now[c].geometry.bounds[1])
    north = "320213001001003"
    with pytest.raises(InvalidEditError) as refused:
        edit(city, registry, Merge((south, north)))
    assert refused.value.problems[0].kind == "not-adjacent"
    result = edit(city, registry, Merge((G1, G2)))
    assert result.retired == [G2]
    merged = in_force(city)[G1]
    assert G2 not in in_force(city)
    assert area_m2(merged.geometry) == pytest.approx(
        area_m2(now[G1].geometry) + area_m2(now[G2].geometry), rel=1e-6
    )


def test_move_boundary_the_neighbour_follows(city: Connection, registry: Registry) -> None:
    new_west = box(W, S, 120.312, N).difference(HOLE)
    result = edit(city, registry, MoveBoundary(G1, G2, new_west))
    assert sorted(v.code for v in result.versions) == [G1, G2]
    now = in_force(city)
    assert now[G2].geometry.symmetric_difference(box(120.312, S, E, N)).area < 1e-12
    with pytest.raises(InvalidEditError) as refused:
        edit(city, registry, MoveBoundary(G1, G2, box(W, S, E, N).union(box(E, S, 120.33, N))))
    assert refused.value.problems[0].kind == "outside-pair"


def test_retire_needs_its_area_given_and_codes_are_never_reused(
    city: Connection, registry: Registry
) -> None:
    with pytest.raises(EditConflictError) as refused:
        edit(city, registry, Retire(G2))
    assert refused.value.problems[0].kind == "gap"
    edit(city, registry, Retire(G2), options=Options(gap="give"))
    assert set(in_force(city)) == {G1}
    line = LineString([(E - 0.002, S - 0.001), (E - 0.002, N + 0.001)])
    result = edit(city, registry, Split(G1, line))
    assert result.created == ["320213001001003"]  # never the retired …002
    created = edit(
        city,
        registry,
        Create(box(E - 0.001, S, E, N)),
        options=Options(overlap="take"),
        community_code=COMMUNITY,
    )
    assert created.created == ["320213001001004"]
    assert created.followers == ["320213001001003"]


def test_new_codes_follow_reading_order(city: Connection, registry: Registry) -> None:
    """One cut into three: the middle (largest) keeps …002; the new codes run north→south."""
    lines = MultiLineString(
        [[(MID - 0.001, 31.565), (E + 0.001, 31.565)], [(MID - 0.001, 31.575), (E + 0.001, 31.575)]]
    )
    result = edit(city, registry, Split(G2, lines))
    assert result.created == ["320213001001003", "320213001001004"]
    now = in_force(city)
    assert now[G2].geometry.symmetric_difference(box(MID, 31.565, E, 31.575)).area < 1e-12
    assert now["320213001001003"].geometry.bounds[1] == pytest.approx(31.575)  # north
    assert now["320213001001004"].geometry.bounds[3] == pytest.approx(31.565)  # south


def test_incidents_after_the_change_are_reassigned_and_history_stays(
    city: Connection, registry: Registry
) -> None:
    spot = (120.311, 31.575)  # in …002 today, in …001 after the boundary moves east
    past = datetime(2025, 3, 1, tzinfo=UTC)
    future = datetime.now(UTC) + timedelta(days=2)
    old_id = incidents.create(city, NewIncident(*spot, "dispute", "hotline", past), TOLERANCE, "t")
    new_id = incidents.create(
        city, NewIncident(*spot, "dispute", "hotline", future), TOLERANCE, "t", now=future
    )
    assert incidents.get(city, new_id)["grid_code"] == G2
    result = edit(city, registry, MoveBoundary(G1, G2, box(W, S, 120.312, N).difference(HOLE)))
    assert result.incidents_moved == 1
    assert result.incident_moves == [(G2, G1, 1)]
    moved = incidents.get(city, new_id)
    assert moved["grid_code"] == G1
    assert moved["grid_id"] == in_force(city)[G1].id
    kept = incidents.get(city, old_id)
    assert kept["grid_code"] == G2  # it happened before the redraw
    assert kept["grid_id"] == grid_edit.history(city, G2)[0].id
    assert grid_edit.edit_log(city, COMMUNITY, G1, 1)[0]["incidents_moved"] == 1


def test_buildings_follow_and_households_are_recounted(
    city: Connection, metadata: MetaData, registry: Registry
) -> None:
    spec = registry.get("building")
    for lon, households in ((120.305, 100), (120.311, 40), (120.318, 60)):
        code = G1 if lon < MID else G2
        insert_row(
            city,
            metadata,
            "building",
            valid_row(
                spec,
                grid_code=code,
                households=households,
                residents=2 * households,
                geom=Point(lon, 31.575),
            ),
        )
    edit(city, registry, MoveBoundary(G1, G2, box(W, S, 120.312, N).difference(HOLE)))
    now = in_force(city)
    assert (now[G1].attrs["households"], now[G2].attrs["households"]) == (140, 60)
    assert (now[G1].attrs["population"], now[G2].attrs["population"]) == (280, 120)
    moved = city.execute(
        text("SELECT grid_code FROM building WHERE ST_X(geom) = 120.311")
    ).scalar_one()
    assert moved == G1


def test_derived_neighbour_shapes_are_valid_multipolygons(
    city: Connection, registry: Registry
) -> None:
    wobbly = Polygon([(W, S), (120.3105, S), (120.3095, 31.57), (120.3112, N), (W, N)])
    edit(city, registry, Replace(G1, wobbly.difference(HOLE)), options=Options("take", "give"))
    stored = city.execute(
        text(
            "SELECT bool_and(ST_IsValid(geom)) AND bool_and(GeometryType(geom) = 'MULTIPOLYGON') "
            "FROM grid WHERE valid_to IS NULL"
        )
    ).scalar_one()
    assert stored is True
    gap, overlap, _ = coverage_m2(city, registry)
    assert overlap < 1.0
    assert gap == pytest.approx(area_m2(MultiPolygon([HOLE])), abs=1.0)


def test_a_grid_with_a_scheduled_version_is_not_edited_live(
    city: Connection, metadata: MetaData, registry: Registry
) -> None:
    later = datetime(2099, 1, 1, tzinfo=UTC)
    city.execute(text("UPDATE grid SET valid_to = :t WHERE code = :c"), {"t": later, "c": G2})
    insert_row(
        city,
        metadata,
        "grid",
        valid_row(registry.get("grid"), code=G2, geom=multi(box(MID, S, E, N)), valid_from=later),
    )
    with pytest.raises(ConflictError, match="scheduled"):
        edit(city, registry, Update(G2, attrs={"name": "改"}))
