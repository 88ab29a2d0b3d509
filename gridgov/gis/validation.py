"""Checks of incoming geometries, vectorised over a whole file: report, never repair.

Each check returns :class:`GeometryProblem` items naming the feature (0-based index here;
callers add one for people) and the reason, Chinese first. Promoting a Polygon to a
one-part MultiPolygon is allowed (it changes no coordinate); fixing an invalid ring is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely

from gridgov.errors import InvalidInputError
from gridgov.gis.coords import PROBLEM_MESSAGES, PROBLEM_NAN, to_cgcs2000

GeometryArray = npt.NDArray[np.object_]


@dataclass(frozen=True)
class GeometryProblem:
    index: int
    kind: str
    reason_zh: str
    reason_en: str


_TYPE_ZH = {
    "Point": "点",
    "MultiPoint": "多点",
    "LineString": "线",
    "MultiLineString": "多线",
    "Polygon": "面",
    "MultiPolygon": "多面",
    "GeometryCollection": "几何集合",
}


def check_geometries(
    geoms: GeometryArray, allowed: tuple[str, ...], max_vertices: int | None = None
) -> tuple[GeometryArray, list[GeometryProblem]]:
    """Structure checks; returns the geometries (Polygons promoted where only
    MultiPolygon is allowed) and the problems. ``allowed`` holds shapely type names;
    a geometry of more than ``max_vertices`` vertices is refused before the (costly)
    validity check."""
    problems: list[GeometryProblem] = []
    out = geoms.copy()
    missing = shapely.is_missing(out)
    for i in np.flatnonzero(missing):
        problems.append(GeometryProblem(int(i), "geometry-missing", "缺少几何图形", "no geometry"))
    present = ~missing
    empty = present & shapely.is_empty(out)
    for i in np.flatnonzero(empty):
        problems.append(GeometryProblem(int(i), "geometry-empty", "几何图形为空", "empty geometry"))
    usable = present & ~empty
    if "MultiPolygon" in allowed and "Polygon" not in allowed:
        promote = usable & (shapely.get_type_id(out) == shapely.GeometryType.POLYGON)
        out[promote] = [shapely.MultiPolygon([g]) for g in out[promote]]
    types = np.array([g.geom_type if g is not None else "" for g in out], dtype=object)
    wrong = usable & ~np.isin(types, allowed)
    expected = "、".join(_TYPE_ZH.get(t, t) for t in allowed)
    for i in np.flatnonzero(wrong):
        found = str(types[i])
        problems.append(
            GeometryProblem(
                int(i),
                "geometry-type",
                f"几何类型为{_TYPE_ZH.get(found, found)}，本图层只接受{expected}",
                f"geometry is {found}; this layer takes {', '.join(allowed)}",
            )
        )
    usable &= ~wrong
    has_z = usable & shapely.has_z(out)
    has_m = usable & _has_m(out)
    for i in np.flatnonzero(has_z | has_m):
        dims = "Z" if has_z[i] else "M"
        problems.append(
            GeometryProblem(
                int(i),
                "geometry-zm",
                f"几何图形带 {dims} 坐标，只接受二维坐标",
                f"geometry has {dims} coordinates; only 2-D is accepted",
            )
        )
    usable &= ~(has_z | has_m)
    if max_vertices is not None:
        vertices = np.where(usable, shapely.get_num_coordinates(out), 0)
        for i in np.flatnonzero(vertices > max_vertices):
            problems.append(
                GeometryProblem(
                    int(i),
                    "geometry-too-many-vertices",
                    f"几何图形有 {int(vertices[i])} 个顶点，超过 {max_vertices} 个的上限",
                    f"geometry has {int(vertices[i])} vertices, over the limit of {max_vertices}",
                )
            )
        usable &= vertices <= max_vertices
    finite = _finite(out, usable)
    for i in np.flatnonzero(usable & ~finite):
        zh, en = PROBLEM_MESSAGES[PROBLEM_NAN]
        problems.append(GeometryProblem(int(i), "coordinates-nan", zh, en))
    usable &= finite
    invalid = usable & ~shapely.is_valid(out)
    for i in np.flatnonzero(invalid):
        reason = shapely.is_valid_reason(out[i])
        problems.append(
            GeometryProblem(
                int(i),
                "geometry-invalid",
                f"几何图形无效（{reason}），请在源数据中修正（不会自动修复）",
                f"invalid geometry ({reason}); fix it at the source (never repaired here)",
            )
        )
    return out, problems


def _has_m(geoms: GeometryArray) -> npt.NDArray[np.bool_]:
    has_m = getattr(shapely, "has_m", None)
    if has_m is None:
        return np.zeros(len(geoms), dtype=bool)
    result: npt.NDArray[np.bool_] = np.asarray(has_m(geoms), dtype=bool)
    return result


def _finite(geoms: GeometryArray, usable: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Per geometry: every coordinate finite (features not ``usable`` count as finite)."""
    ok = np.ones(len(geoms), dtype=bool)
    coords, index = shapely.get_coordinates(geoms[usable], return_index=True)
    bad = ~np.isfinite(coords).all(axis=1)
    positions = np.flatnonzero(usable)
    ok[positions[np.unique(index[bad])]] = False
    return ok


def to_cgcs2000_all(
    geoms: GeometryArray, usable: npt.NDArray[np.bool_], crs: str
) -> tuple[GeometryArray, list[GeometryProblem]]:
    """Every usable geometry converted to CGCS2000, and a problem for each feature with a
    vertex that is NaN, outside China or likely swapped (all of them, not just the first).

    One vectorised conversion normally; only when it fails is each feature converted
    alone, so that every bad feature is named.
    """
    out = geoms.copy()
    positions = np.flatnonzero(usable)
    if positions.size == 0:
        return out, []
    try:
        out[positions] = _convert(geoms[positions], crs)
    except InvalidInputError:
        pass
    else:
        return out, []
    problems: list[GeometryProblem] = []
    for i in positions:
        try:
            out[i] = _convert(geoms[i : i + 1], crs)[0]
        except InvalidInputError as exc:
            out[i] = None
            reason = str(exc.public.get("reason", "coordinates"))
            kind = {"outside_china": "coordinates-outside", "swapped": "coordinates-swapped"}
            problems.append(
                GeometryProblem(
                    int(i),
                    kind.get(reason, "coordinates"),
                    _strip_index(exc.detail_zh),
                    _strip_index(exc.detail_en),
                )
            )
    return out, problems


def _strip_index(message: str) -> str:
    """'第 3 个坐标点：…' → '…': the row is named by the caller, the vertex index confuses."""
    for sep in ("：", ": "):
        if sep in message:
            return message.split(sep, 1)[1]
    return message


def _convert(geoms: GeometryArray, crs: str) -> GeometryArray:
    coords = shapely.get_coordinates(geoms)
    lon, lat = to_cgcs2000(coords[:, 0], coords[:, 1], crs)
    result: GeometryArray = shapely.set_coordinates(geoms.copy(), np.column_stack([lon, lat]))
    return result
