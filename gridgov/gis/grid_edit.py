"""Grid edits as pure geometry: what each operation changes, and whether the result holds.

An operation (:class:`Create`, :class:`Replace`, :class:`Update`, :class:`Retire`,
:class:`Split`, :class:`Merge`, :class:`MoveBoundary`) turns the grids of one community
(:class:`CommunityState`) into :class:`Changes`; :func:`validate` then checks the result
before anything is written: valid polygons under the vertex limit, inside the community,
no new overlap with a neighbour and no new gap. Instead of refusing, a request may choose
to *take* the overlapped area from the neighbour, or to *give* the area it leaves back to
the neighbour sharing most boundary with it; nothing else is ever repaired silently.

Refusals carry the offending pieces (lon/lat) so that a map can draw them. The database
side (locking, versions, the edit log, incidents) is :mod:`gridgov.layers.grid_edit`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import shapely
import shapely.geometry
import shapely.ops
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from gridgov.errors import ConflictError, GridgovError, InvalidInputError
from gridgov.gis.coverage import TOLERANCE_M2, adjacent, connected, is_sliver, overlaps
from gridgov.gis.measures import area_m2, polygon_parts
from gridgov.gis.validation import check_geometries, to_cgcs2000_all

OverlapChoice = Literal["refuse", "take"]
GapChoice = Literal["refuse", "give"]
# Attributes a planner sets; households and population follow from the buildings.
EDITABLE_ATTRIBUTES: Final = ("name", "kind", "dedicated_to", "worker_name")
GRID_KINDS: Final = ("base", "dedicated")
# Parts of a derived (neighbour) geometry below this are overlay dust, not territory.
DUST_M2: Final = 0.01
# How near (degrees, about 1 cm) a neighbour must be to a vacated piece to share its edge.
TOUCH_DEGREES: Final = 1e-7


@dataclass(frozen=True)
class EditProblem:
    """One reason an edit was refused, with the geometry to draw (lon/lat) if any."""

    kind: str
    reason_zh: str
    reason_en: str
    geometry: BaseGeometry | None = None
    codes: tuple[str, ...] = ()
    area_m2: float | None = None

    def feature(self) -> dict[str, Any]:
        geometry = None
        if self.geometry is not None and not self.geometry.is_empty:
            geometry = json.loads(shapely.to_geojson(self.geometry))
        return {
            "type": "Feature",
            "geometry": geometry,
            "properties": {
                "kind": self.kind,
                "reason": f"{self.reason_zh} ({self.reason_en})",
                "codes": list(self.codes),
                "area_m2": self.area_m2,
                "sliver": bool(self.geometry is not None and is_sliver(self.geometry))
                if self.area_m2 is not None
                else False,
            },
        }


class _EditRefusedError(GridgovError):
    """A refused edit: the first problem is the message, every one goes to the map."""

    problems: tuple[EditProblem, ...] = ()

    def __init__(self, problems: list[EditProblem], *, labels: Labels | None = None) -> None:
        first = problems[0]
        more_zh = f"（共 {len(problems)} 处）" if len(problems) > 1 else ""
        more_en = f" ({len(problems)} problems)" if len(problems) > 1 else ""
        super().__init__(
            first.reason_zh + more_zh, first.reason_en + more_en, public={"reason": first.kind}
        )
        self.problems = tuple(problems)
        # the title names what was edited (a police unit, not a grid); the class keeps grids'
        self.title_zh, self.title_en = self.titles(labels or GRID_LABELS)

    @staticmethod
    def titles(lb: Labels) -> tuple[str, str]:
        """The problem+json title (Chinese, English) of a refused edit of ``lb``'s members."""
        raise NotImplementedError

    def members(self) -> dict[str, object]:
        """Problem+json extension: the offending pieces as a FeatureCollection."""
        members: dict[str, object] = dict(getattr(self, "public", {}))
        members["problems"] = {
            "type": "FeatureCollection",
            "features": [p.feature() for p in self.problems],
        }
        return members


class InvalidEditError(_EditRefusedError, InvalidInputError):
    """The edit itself is malformed (invalid polygon, outside its community, too many
    vertices, a line that does not cut): 422."""

    code = "invalid-edit"
    title_zh = "网格编辑无效"
    title_en = "Invalid grid edit"

    @staticmethod
    def titles(lb: Labels) -> tuple[str, str]:
        return f"{lb.member_zh}编辑无效", f"Invalid {lb.member_en} edit"


class EditConflictError(_EditRefusedError, ConflictError):
    """The edit clashes with the neighbours (overlap, gap): 409; choose take / give."""

    code = "edit-conflict"
    title_zh = "网格编辑与相邻网格冲突"
    title_en = "Grid edit conflicts with its neighbours"

    @staticmethod
    def titles(lb: Labels) -> tuple[str, str]:
        what = lb.member_en[:1].upper() + lb.member_en[1:]
        return (
            f"{lb.member_zh}编辑与相邻{lb.neighbour_zh}冲突",
            f"{what} edit conflicts with its neighbours",
        )


@dataclass(frozen=True)
class Labels:
    """What the members and their container are called in messages: the same rules edit
    grids in a community and department units in a district or parent unit."""

    member_zh: str = "网格"
    member_en: str = "grid"
    container_zh: str = "村社区"
    container_en: str = "community"
    outside_kind: str = "outside-community"

    @property
    def neighbour_zh(self) -> str:
        """A neighbour in short: 网格, or 单元 for every kind of department unit."""
        return "单元" if self.member_zh.endswith("单元") else self.member_zh


GRID_LABELS: Final = Labels()


@dataclass(frozen=True)
class CommunityState:
    """The grids of one community in force now (lon/lat) and their attributes; or, with
    other :class:`Labels`, the department units of one container (district or parent)."""

    community_code: str
    community: BaseGeometry
    grids: Mapping[str, BaseGeometry]
    attrs: Mapping[str, Mapping[str, Any]]
    labels: Labels = GRID_LABELS

    def require(self, code: str) -> BaseGeometry:
        if code not in self.grids:
            lb = self.labels
            raise InvalidEditError(
                [
                    EditProblem(
                        f"unknown-{lb.member_en.replace(' ', '-')}",
                        f"{lb.member_zh} {code} 不在{lb.container_zh} {self.community_code} "
                        f"的现行{lb.member_zh}中",
                        f"{lb.member_en} {code} is not in force in {lb.container_en} "
                        f"{self.community_code}",
                        codes=(code,),
                    )
                ],
                labels=lb,
            )
        return self.grids[code]


@dataclass
class Changes:
    """What an edit does: new geometry (or ``None``: retired) and attributes per existing
    code, and new grids whose codes are given at commit time."""

    geometries: dict[str, BaseGeometry | None] = field(default_factory=dict)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    new: list[tuple[BaseGeometry, dict[str, Any]]] = field(default_factory=list)
    followers: tuple[str, ...] = ()  # neighbours changed by take / give

    @property
    def touched(self) -> list[str]:
        return sorted(set(self.geometries) | set(self.attrs))


@dataclass(frozen=True)
class Options:
    overlap: OverlapChoice = "refuse"
    gap: GapChoice = "refuse"
    max_vertices: int = 5000
    tolerance_m2: float = TOLERANCE_M2


# --------------------------------------------------------------------------- operations


def as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    return MultiPolygon(polygon_parts(geom))


def _attrs(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: values[k] for k in EDITABLE_ATTRIBUTES if k in values}


@dataclass(frozen=True)
class Create:
    geometry: BaseGeometry
    attrs: Mapping[str, Any] = field(default_factory=dict)
    operation: str = "create"
    named: tuple[str, ...] = ()

    def build(self, state: CommunityState) -> Changes:
        values = {"kind": "base", **_attrs(self.attrs)}
        return Changes(new=[(self.geometry, values)])


@dataclass(frozen=True)
class Replace:
    """Every attribute and the geometry at once (PUT): omitted attributes become empty."""

    code: str
    geometry: BaseGeometry
    attrs: Mapping[str, Any] = field(default_factory=dict)
    operation: str = "replace"

    @property
    def named(self) -> tuple[str, ...]:
        return (self.code,)

    def build(self, state: CommunityState) -> Changes:
        state.require(self.code)
        values = dict.fromkeys(EDITABLE_ATTRIBUTES) | {"kind": "base"}
        values.update(_attrs(self.attrs))
        return Changes(geometries={self.code: self.geometry}, attrs={self.code: values})


@dataclass(frozen=True)
class Update:
    """Some attributes and / or the geometry (PATCH): the rest stays."""

    code: str
    geometry: BaseGeometry | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    operation: str = "update"

    @property
    def named(self) -> tuple[str, ...]:
        return (self.code,)

    def build(self, state: CommunityState) -> Changes:
        state.require(self.code)
        values = dict(state.attrs.get(self.code, {}))
        values.update(_attrs(self.attrs))
        geometries: dict[str, BaseGeometry | None] = {}
        if self.geometry is not None:
            geometries[self.code] = self.geometry
        return Changes(geometries=geometries, attrs={self.code: values})


@dataclass(frozen=True)
class Retire:
    code: str
    operation: str = "retire"

    @property
    def named(self) -> tuple[str, ...]:
        return (self.code,)

    def build(self, state: CommunityState) -> Changes:
        state.require(self.code)
        return Changes(geometries={self.code: None})


@dataclass(frozen=True)
class Split:
    """Cut a grid with a line: the largest piece keeps the code, the others get new ones."""

    code: str
    line: BaseGeometry
    operation: str = "split"

    @property
    def named(self) -> tuple[str, ...]:
        return (self.code,)

    def build(self, state: CommunityState) -> Changes:
        grid, lb = state.require(self.code), state.labels
        if not isinstance(self.line, LineString | MultiLineString) or self.line.is_empty:
            raise InvalidEditError(
                [EditProblem("split-line", "拆分需要一条线", "a split needs a LineString")],
                labels=lb,
            )
        parts = polygon_parts(grid)
        pieces: list[Polygon] = []
        for part in parts:
            pieces += polygon_parts(shapely.ops.split(part, self.line))
        if len(pieces) <= len(parts):
            raise InvalidEditError(
                [
                    EditProblem(
                        "split-line",
                        f"拆分线没有穿过{lb.member_zh}，必须从{lb.member_zh}一侧边界画到另一侧",
                        f"the line does not cut the {lb.member_en}: draw it across, edge to edge",
                        geometry=self.line,
                        codes=(self.code,),
                    )
                ],
                labels=lb,
            )
        pieces.sort(key=area_m2, reverse=True)
        keep, rest = pieces[0], pieces[1:]
        old = dict(state.attrs.get(self.code, {}))
        inherited = {"kind": old.get("kind", "base"), "dedicated_to": old.get("dedicated_to")}
        return Changes(
            geometries={self.code: MultiPolygon([keep])},
            attrs={self.code: old},
            new=[(MultiPolygon([piece]), dict(inherited)) for piece in rest],
        )


@dataclass(frozen=True)
class Merge:
    """Adjacent grids become one: the lowest code stays, the others are retired."""

    codes: tuple[str, ...]
    operation: str = "merge"

    @property
    def named(self) -> tuple[str, ...]:
        return self.codes

    def build(self, state: CommunityState) -> Changes:
        lb = state.labels
        if len(set(self.codes)) < 2:
            raise InvalidEditError(
                [
                    EditProblem(
                        "merge",
                        f"合并至少需要两个不同的{lb.member_zh}",
                        f"a merge needs two {lb.member_en}s",
                    )
                ],
                labels=lb,
            )
        geoms = {code: state.require(code) for code in self.codes}
        if not connected(geoms):
            raise InvalidEditError(
                [
                    EditProblem(
                        "not-adjacent",
                        f"{lb.member_zh} {code} 与其他待合并{lb.member_zh}不相邻",
                        f"{lb.member_en} {code} does not share a boundary with the others",
                        geometry=geoms[code],
                        codes=(code,),
                    )
                    for code in sorted(geoms)
                ],
                labels=lb,
            )
        keep = min(geoms)
        merged = shapely.union_all(list(geoms.values()))
        changes = Changes(
            geometries={keep: as_multipolygon(merged)},
            attrs={keep: dict(state.attrs.get(keep, {}))},
        )
        for code in geoms:
            if code != keep:
                changes.geometries[code] = None
        return changes


@dataclass(frozen=True)
class MoveBoundary:
    """Give ``code`` a new shape within itself and ``neighbour``; the neighbour follows."""

    code: str
    neighbour: str
    geometry: BaseGeometry
    operation: str = "move_boundary"

    @property
    def named(self) -> tuple[str, ...]:
        return (self.code, self.neighbour)

    def build(self, state: CommunityState) -> Changes:
        a, b = state.require(self.code), state.require(self.neighbour)
        lb = state.labels
        if self.code == self.neighbour or not adjacent(a, b):
            raise InvalidEditError(
                [
                    EditProblem(
                        "not-adjacent",
                        f"{lb.member_zh} {self.code} 与 {self.neighbour} 不相邻，无法移动共用边界",
                        f"{lb.member_en}s {self.code} and {self.neighbour} share no boundary",
                        geometry=b,
                        codes=(self.code, self.neighbour),
                    )
                ],
                labels=lb,
            )
        both = shapely.union_all([a, b])
        beyond = shapely.difference(self.geometry, both)
        problems = _pieces_as_problems(
            beyond,
            "outside-pair",
            f"新边界超出了这两个{lb.member_zh}的范围",
            f"the new shape reaches beyond the two {lb.member_en}s",
            (self.code, self.neighbour),
            TOLERANCE_M2,
        )
        if problems:
            raise InvalidEditError(problems, labels=lb)
        rest = shapely.difference(both, self.geometry)
        if area_m2(rest) < TOLERANCE_M2:
            raise InvalidEditError(
                [
                    EditProblem(
                        "neighbour-vanishes",
                        f"相邻{lb.member_zh} {self.neighbour} 将不剩面积；请改用合并",
                        f"nothing would be left of {self.neighbour}; merge the {lb.member_en}s "
                        "instead",
                        geometry=b,
                        codes=(self.neighbour,),
                    )
                ],
                labels=lb,
            )
        return Changes(
            geometries={self.code: self.geometry, self.neighbour: _clean(rest)},
            attrs={
                self.code: dict(state.attrs.get(self.code, {})),
                self.neighbour: dict(state.attrs.get(self.neighbour, {})),
            },
        )


Operation = Create | Replace | Update | Retire | Split | Merge | MoveBoundary


# --------------------------------------------------------------------------- validation


def _pieces_as_problems(
    geom: BaseGeometry,
    kind: str,
    reason_zh: str,
    reason_en: str,
    codes: tuple[str, ...],
    tolerance_m2: float,
) -> list[EditProblem]:
    out = []
    for part in polygon_parts(geom):
        area = area_m2(part)
        if area >= tolerance_m2:
            out.append(
                EditProblem(
                    kind,
                    f"{reason_zh}（{area:.1f} 平方米）",
                    f"{reason_en} ({area:.1f} m²)",
                    part,
                    codes,
                    round(area, 2),
                )
            )
    return out


_LOCATION = re.compile(r"\[\s*([-0-9.eE+]+)\s+([-0-9.eE+]+)\s*\]")


def check_shape(
    key: str, geom: BaseGeometry, max_vertices: int, labels: Labels | None = None
) -> list[EditProblem]:
    """A usable grid shape: polygonal, non-empty, valid (never repaired), few enough vertices."""
    codes = (key,)
    lb = labels or GRID_LABELS
    if geom.is_empty or not polygon_parts(geom):
        return [
            EditProblem(
                "geometry-empty",
                f"{lb.member_zh}几何为空",
                f"empty {lb.member_en} shape",
                None,
                codes,
            )
        ]
    if not isinstance(geom, Polygon | MultiPolygon):
        return [
            EditProblem(
                "geometry-type",
                f"{lb.member_zh}必须是面，收到 {geom.geom_type}",
                f"a {lb.member_en} must be a Polygon or MultiPolygon, not {geom.geom_type}",
                geom,
                codes,
            )
        ]
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        where: BaseGeometry = geom
        found = _LOCATION.search(reason)
        if found:
            where = Point(float(found.group(1)), float(found.group(2)))
        return [
            EditProblem(
                "geometry-invalid",
                f"{lb.member_zh}几何无效（{reason}），请修正后再提交（不会自动修复）",
                f"invalid {lb.member_en} shape ({reason}); fix it and resubmit (never repaired)",
                where,
                codes,
            )
        ]
    vertices = int(shapely.get_num_coordinates(geom))
    if vertices > max_vertices:
        return [
            EditProblem(
                "too-many-vertices",
                f"{lb.member_zh}有 {vertices} 个顶点，超过上限 {max_vertices}",
                f"the {lb.member_en} has {vertices} vertices, over the limit of {max_vertices}",
                geom,
                codes,
            )
        ]
    return []


def _clean(geom: BaseGeometry) -> MultiPolygon:
    """Polygons only, without overlay dust (parts under :data:`DUST_M2`)."""
    return MultiPolygon([p for p in polygon_parts(geom) if area_m2(p) >= DUST_M2])


def validate(state: CommunityState, changes: Changes, options: Options) -> Changes:
    """The changes as they would be stored (neighbours that take / give included), or a
    refusal naming every offending piece: 422 for a bad shape, 409 for a clash."""
    tol = options.tolerance_m2
    proposed: dict[str, BaseGeometry] = {
        code: geom for code, geom in changes.geometries.items() if geom is not None
    }
    for i, (geom, _) in enumerate(changes.new, start=1):
        proposed[f"new-{i}"] = geom
    shape_problems = [
        p
        for key, geom in proposed.items()
        for p in check_shape(key, geom, options.max_vertices, state.labels)
    ]
    if shape_problems:
        raise InvalidEditError(shape_problems, labels=state.labels)
    lb = state.labels
    # Only area newly outside counts: a shape that already spilled over its container's
    # edge (demo units do, by a few m²) can still be edited, like pre-existing overlaps.
    spilled = shapely.difference(
        shapely.union_all([state.grids[c] for c in changes.geometries if c in state.grids]),
        state.community,
    )
    outside = [
        p
        for key, geom in proposed.items()
        for p in _pieces_as_problems(
            shapely.difference(shapely.difference(geom, state.community), spilled),
            lb.outside_kind,
            f"{lb.member_zh}超出{lb.container_zh} {state.community_code} 的范围",
            f"the {lb.member_en} reaches outside {lb.container_en} {state.community_code}",
            (key,),
            tol,
        )
    ]
    if outside:
        raise InvalidEditError(outside, labels=lb)
    clashes = [
        EditProblem(
            "overlap",
            f"编辑后的{lb.member_zh} {piece.codes[0]} 与 {piece.codes[1]} 重叠"
            f"（{piece.area_m2:.1f} 平方米）",
            f"edited {lb.member_en}s {piece.codes[0]} and {piece.codes[1]} overlap "
            f"({piece.area_m2:.1f} m²)",
            piece.geometry,
            piece.codes,
            piece.area_m2,
        )
        for piece in overlaps(proposed, tol)
    ]
    others = {c: g for c, g in state.grids.items() if c not in changes.geometries}
    new_union = shapely.union_all(list(proposed.values())) if proposed else Polygon()
    edited = shapely.union_all([state.grids[c] for c in changes.geometries if c in state.grids])
    followers: dict[str, BaseGeometry] = {}
    for code in sorted(others):
        other = others[code]
        if not other.intersects(new_union):
            continue
        # An overlap the edited shapes already had with this neighbour is not new.
        found = _pieces_as_problems(
            shapely.difference(
                shapely.intersection(other, new_union), shapely.intersection(other, edited)
            ),
            "overlap",
            f"与相邻{lb.member_zh} {code} 重叠；可选择“从相邻{lb.member_zh}划入”(overlap=take)",
            f"overlaps neighbour {code}; choose overlap=take to take it from the neighbour",
            (code,),
            tol,
        )
        if found and options.overlap == "take":
            followers[code] = shapely.difference(other, new_union)
        else:
            clashes += found
    if clashes:
        raise EditConflictError(clashes, labels=lb)
    before = [state.grids[c] for c in changes.geometries if c in state.grids]
    if before:
        final = [*proposed.values()] + [followers.get(c, g) for c, g in others.items()]
        vacated = shapely.difference(shapely.union_all(before), shapely.union_all(final))
        gaps = _pieces_as_problems(
            vacated,
            "gap",
            f"编辑后留下无{lb.member_zh}覆盖的空隙；可选择“退还相邻{lb.member_zh}”(gap=give)",
            f"the edit leaves a gap no {lb.member_en} covers; choose gap=give to give it to a "
            "neighbour",
            (),
            tol,
        )
        if gaps and options.gap == "give":
            gaps = _give_back(gaps, others, followers, lb)
        if gaps:
            raise EditConflictError(gaps, labels=lb)
    cleaned = {code: _clean(geom) for code, geom in followers.items()}
    gone = [
        EditProblem(
            "neighbour-vanishes",
            f"相邻{lb.member_zh} {code} 将被全部划走；请改用合并或撤销",
            f"all of neighbour {code} would be taken; merge or retire it instead",
            others[code],
            (code,),
        )
        for code, geom in cleaned.items()
        if geom.is_empty
    ]
    if gone:
        raise EditConflictError(gone, labels=lb)
    derived = [
        p
        for code, geom in cleaned.items()
        for p in check_shape(code, geom, options.max_vertices, lb)
    ]
    if derived:
        raise InvalidEditError(derived, labels=lb)
    result = Changes(
        geometries={
            code: (None if geom is None else as_multipolygon(geom))
            for code, geom in changes.geometries.items()
        },
        attrs={code: dict(values) for code, values in changes.attrs.items()},
        new=[(as_multipolygon(geom), dict(values)) for geom, values in changes.new],
        followers=tuple(sorted(cleaned)),
    )
    for code, geom in cleaned.items():
        result.geometries[code] = geom
        result.attrs.setdefault(code, dict(state.attrs.get(code, {})))
    _verify(state, result, tol)
    return result


def _verify(state: CommunityState, result: Changes, tol: float) -> None:
    """The final shapes, neighbours included, once more: no overlap, no new gap. A take or
    give that fails this (it should not) is refused rather than stored."""
    final: dict[str, BaseGeometry] = {
        code: geom for code, geom in state.grids.items() if code not in result.geometries
    }
    final.update({c: g for c, g in result.geometries.items() if g is not None})
    final.update({f"new-{i}": g for i, (g, _) in enumerate(result.new, start=1)})
    changed = [c for c in final if c in result.geometries or c.startswith("new-")]
    lb = state.labels
    edited = shapely.union_all([state.grids[c] for c in result.geometries if c in state.grids])
    problems = []
    for p in overlaps(final, tol):
        if p.codes[0] not in changed and p.codes[1] not in changed:
            continue
        # What two shapes overlapped before, and still do, is a pre-existing defect.
        new = shapely.difference(p.geometry, _prior_overlap(state, p.codes, changed, edited))
        problems += [
            EditProblem(
                "overlap",
                f"调整后{lb.member_zh} {p.codes[0]} 与 {p.codes[1]} 仍有重叠"
                f"（{q.area_m2:.1f} 平方米）",
                f"after the edit, {p.codes[0]} and {p.codes[1]} still overlap ({q.area_m2:.1f} m²)",
                q.geometry,
                p.codes,
                q.area_m2,
            )
            for q in _pieces_as_problems(new, "overlap", "", "", p.codes, tol)
        ]
    before = [state.grids[c] for c in result.geometries if c in state.grids]
    if before:
        left = shapely.difference(
            shapely.union_all(before), shapely.union_all(list(final.values()))
        )
        problems += _pieces_as_problems(
            left, "gap", "调整后仍留有空隙", "the edit still leaves a gap", (), tol
        )
    if problems:
        raise EditConflictError(problems, labels=lb)


def _prior_overlap(
    state: CommunityState, codes: tuple[str, ...], changed: list[str], edited: BaseGeometry
) -> BaseGeometry:
    """The overlap two shapes of a final state already had before the edit: between an
    unchanged neighbour and the edited shapes, or between two edited shapes' old selves."""
    x, y = codes[0], codes[1]
    if x in changed and y in changed:
        bx, by = state.grids.get(x), state.grids.get(y)
        return Polygon() if bx is None or by is None else shapely.intersection(bx, by)
    unchanged = y if x in changed else x
    return shapely.intersection(state.grids[unchanged], edited)


def _give_back(
    gaps: list[EditProblem],
    others: Mapping[str, BaseGeometry],
    followers: dict[str, BaseGeometry],
    lb: Labels,
) -> list[EditProblem]:
    """Each vacated piece to the unchanged neighbour sharing most boundary with it; the
    pieces no neighbour touches are returned (still refused)."""
    left = []
    for gap in gaps:
        piece = gap.geometry
        assert piece is not None
        best, best_length = None, 0.0
        for code in sorted(others):
            current = followers.get(code, others[code])
            if not current.buffer(TOUCH_DEGREES).intersects(piece):
                continue
            length = shapely.intersection(piece.boundary, current.buffer(TOUCH_DEGREES)).length
            if length > best_length:
                best, best_length = code, length
        if best is None:
            left.append(
                EditProblem(
                    "gap",
                    f"空隙不与任何未编辑的相邻{lb.member_zh}相接，无法退还",
                    "no unchanged neighbour touches this gap, so it cannot be given back",
                    piece,
                    (),
                    gap.area_m2,
                )
            )
        else:
            followers[best] = shapely.union_all([followers.get(best, others[best]), piece])
    return left


def geometry_from_geojson(
    obj: Mapping[str, Any],
    crs: str,
    allowed: tuple[str, ...],
    what: str = "geometry",
    labels: Labels | None = None,
) -> BaseGeometry:
    """A GeoJSON geometry from a request, in CGCS2000 lon/lat; refused (never repaired) when
    malformed, of the wrong type, Z/M, NaN or outside China. Validity of the polygon is
    checked later with the edit, so that the refusal can point at the self-intersection."""
    try:
        geom = shapely.geometry.shape(dict(obj))
    except Exception as exc:
        raise InvalidEditError(
            [
                EditProblem(
                    "geometry-malformed", f"{what} 不是 GeoJSON 几何", f"{what}: not GeoJSON"
                )
            ],
            labels=labels,
        ) from exc
    array = np.array([geom], dtype=object)
    array, problems = check_geometries(array, allowed)
    problems = [p for p in problems if p.kind != "geometry-invalid"]
    if not problems:
        array, problems = to_cgcs2000_all(array, np.ones(1, dtype=bool), crs)
    if problems:
        raise InvalidEditError(
            [
                EditProblem(p.kind, f"{what}：{p.reason_zh}", f"{what}: {p.reason_en}")
                for p in problems
            ],
            labels=labels,
        )
    result: BaseGeometry = array[0]
    return result
