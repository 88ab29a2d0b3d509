"""The pure edit rules: what take / give do, and what is refused (no database)."""

from __future__ import annotations

import math

import pytest
from shapely.geometry import MultiPolygon, box, mapping

from gridgov.gis.coords import wgs84_to_gcj02
from gridgov.gis.grid_edit import (
    CommunityState,
    EditConflictError,
    InvalidEditError,
    Labels,
    Options,
    Replace,
    Retire,
    geometry_from_geojson,
    validate,
)

# Community 0.03° wide: A | B | C, with B's edge to A twice as long as its edge to C.
COMMUNITY = box(120.30, 31.56, 120.33, 31.58)
A = box(120.30, 31.56, 120.31, 31.58)
B = box(120.31, 31.56, 120.32, 31.58)
C = box(120.32, 31.56, 120.33, 31.57)
D = box(120.32, 31.57, 120.33, 31.58)


def state() -> CommunityState:
    grids = {"a": A, "b": B, "c": C, "d": D}
    return CommunityState("320213001001", COMMUNITY, grids, {k: {} for k in grids})


def test_retired_area_goes_to_the_neighbour_sharing_most_boundary() -> None:
    changes = validate(state(), Retire("b").build(state()), Options(gap="give"))
    assert changes.geometries["b"] is None
    assert changes.followers == ("a",)
    a = changes.geometries["a"]
    assert a is not None
    assert a.symmetric_difference(box(120.30, 31.56, 120.32, 31.58)).area < 1e-12


def test_taking_all_of_a_neighbour_is_refused() -> None:
    with pytest.raises(EditConflictError) as refused:
        validate(
            state(),
            Replace("a", box(120.30, 31.56, 120.32, 31.58)).build(state()),
            Options(overlap="take", gap="give"),
        )
    assert refused.value.problems[0].kind == "neighbour-vanishes"
    assert refused.value.problems[0].codes == ("b",)


def test_take_and_give_together_keep_a_partition() -> None:
    shifted = box(120.30, 31.56, 120.311, 31.575).union(box(120.30, 31.575, 120.309, 31.58))
    result = validate(state(), Replace("a", shifted).build(state()), Options("take", "give"))
    b = result.geometries["b"]
    assert b is not None
    union = shifted.union(b).union(C).union(D)
    assert union.symmetric_difference(COMMUNITY).area < 1e-12
    assert shifted.intersection(b).area < 1e-14


@pytest.mark.parametrize(
    ("geometry", "kind"),
    [
        (
            {
                "type": "Polygon",
                "coordinates": [
                    [[120.3, 31.5, 1], [120.4, 31.5, 1], [120.4, 31.6, 1], [120.3, 31.5, 1]]
                ],
            },
            "geometry-zm",
        ),
        ({"type": "Point", "coordinates": [120.3, 31.5]}, "geometry-type"),
        ({"type": "Polygon", "coordinates": [[[1, 2], [3, 4]]]}, "geometry-malformed"),
        (
            {
                "type": "Polygon",
                "coordinates": [[[31.5, 120.3], [31.5, 120.4], [31.6, 120.4], [31.5, 120.3]]],
            },
            "coordinates-swapped",
        ),
        (
            {
                "type": "Polygon",
                "coordinates": [[[120.3, 31.5], [120.4, math.nan], [120.4, 31.6], [120.3, 31.5]]],
            },
            "coordinates-nan",
        ),
    ],
)
def test_bad_geojson_is_refused_never_repaired(geometry: dict[str, object], kind: str) -> None:
    with pytest.raises(InvalidEditError) as refused:
        geometry_from_geojson(geometry, "wgs84", ("Polygon", "MultiPolygon"))
    assert refused.value.problems[0].kind == kind


def test_gcj02_input_is_converted_to_cgcs2000() -> None:
    lon, lat = wgs84_to_gcj02([120.30, 120.31, 120.31, 120.30], [31.56, 31.56, 31.57, 31.57])
    ring = [[float(x), float(y)] for x, y in zip(lon, lat, strict=True)]
    polygon = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    geom = geometry_from_geojson(polygon, "gcj02", ("Polygon", "MultiPolygon"))
    assert geom.symmetric_difference(MultiPolygon([box(120.30, 31.56, 120.31, 31.57)])).area < 1e-14
    assert mapping(geom)["type"] == "Polygon"  # made a MultiPolygon when stored


def test_the_same_rules_name_department_units_and_their_container() -> None:
    """Units reuse the rules; refusals name the unit and its container, not grids."""
    units = {"a": A, "b": B}
    labels = Labels("警务单元", "police unit", "区县", "district", "outside-district")
    unit_state = CommunityState("320213", COMMUNITY, units, {k: {} for k in units}, labels)
    beyond = box(120.29, 31.56, 120.31, 31.58)
    with pytest.raises(InvalidEditError) as outside:
        validate(unit_state, Replace("a", beyond).build(unit_state), Options())
    assert outside.value.problems[0].kind == "outside-district"
    assert "警务单元超出区县 320213" in outside.value.problems[0].reason_zh
    grown = Replace("a", box(120.30, 31.56, 120.315, 31.58)).build(unit_state)
    with pytest.raises(EditConflictError) as overlap:
        validate(unit_state, grown, Options())
    assert "相邻警务单元 b" in overlap.value.problems[0].reason_zh
    with pytest.raises(InvalidEditError) as unknown:
        Replace("zz", A).build(unit_state)
    assert unknown.value.problems[0].kind == "unknown-police-unit"


def test_only_new_area_outside_the_container_is_refused() -> None:
    """A shape already spilling over its container's edge stays editable (a pre-existing
    defect); reaching further out is still refused, with just the new piece."""
    spill = box(120.295, 31.56, 120.31, 31.58)  # "a" reaching 0.005° west of the community
    grids = {"a": spill, "b": B}
    spilled = CommunityState("320213001001", COMMUNITY, grids, {k: {} for k in grids})
    narrower = box(120.295, 31.56, 120.309, 31.58)
    changes = validate(spilled, Replace("a", narrower).build(spilled), Options(gap="give"))
    assert changes.geometries["a"] is not None
    further = box(120.29, 31.56, 120.31, 31.58)
    with pytest.raises(InvalidEditError) as outside:
        validate(spilled, Replace("a", further).build(spilled), Options())
    (piece,) = outside.value.problems
    assert piece.kind == "outside-community"
    assert piece.geometry is not None
    assert piece.geometry.symmetric_difference(box(120.29, 31.56, 120.295, 31.58)).area < 1e-12


def test_a_pre_existing_overlap_does_not_block_an_edit() -> None:
    """Grid "a" already overlaps "b" by a strip: reshaping "a" elsewhere is fine; growing the
    overlap is refused with only the new piece."""
    a = box(120.30, 31.56, 120.3105, 31.58)  # 0.0005° over b
    grids = {"a": a, "b": B}
    overlapping = CommunityState("320213001001", COMMUNITY, grids, {k: {} for k in grids})
    lower = box(120.30, 31.56, 120.3105, 31.579)
    changes = validate(overlapping, Replace("a", lower).build(overlapping), Options(gap="give"))
    assert changes.geometries["a"] is not None
    wider = box(120.30, 31.56, 120.311, 31.58)
    with pytest.raises(EditConflictError) as clash:
        validate(overlapping, Replace("a", wider).build(overlapping), Options())
    (piece,) = clash.value.problems
    assert piece.geometry is not None
    assert piece.geometry.symmetric_difference(box(120.3105, 31.56, 120.311, 31.58)).area < 1e-12
