"""Which source field fills which layer column: ``--map SRC=DEST`` first, then names.

A field matches a column by its exact name, its name ignoring case, its Chinese title
(``名称`` → ``name``), an admin code title (``网格编码`` → ``code`` on the grid layer,
``村社区代码`` → ``community_code``) or, for shapefiles, the 10-character truncation GDAL
applies to DBF names. Fields that match nothing are reported as ignored, not refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gridgov.layers.io.errors import ImportUsageError
from gridgov.layers.io.values import Target
from gridgov.layers.spec import LayerSpec

LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度", "东经")
LAT_NAMES = ("lat", "latitude", "y", "纬度", "北纬")
WKT_NAMES = ("wkt", "geometry", "geom", "the_geom", "几何", "shape")
DBF_NAME_LENGTH = 10  # DBF field names are at most 10 characters
# Geometry destinations --map may name for tabular files.
GEOMETRY_DESTS = {"lon": "x", "x": "x", "lat": "y", "y": "y", "wkt": "wkt", "geometry": "wkt"}


@dataclass
class FieldPlan:
    """Source field of each destination column, and of the geometry for tables."""

    columns: dict[str, str] = field(default_factory=dict)
    x: str | None = None
    y: str | None = None
    wkt: str | None = None
    ignored: list[str] = field(default_factory=list)


def dbf_name(column: str) -> str:
    """The name a column has in a DBF (shapefile) file: its first 10 characters."""
    return column[:DBF_NAME_LENGTH]


def parse_map(items: Sequence[str]) -> list[tuple[str, str]]:
    """``["网格编码=code", …]`` → pairs; a malformed item is a usage error."""
    pairs: list[tuple[str, str]] = []
    for item in items:
        src, sep, dest = item.partition("=")
        if not sep or not src.strip() or not dest.strip():
            raise ImportUsageError(
                "--map 的写法是 源字段=目标列，例如 --map 网格编码=code",
                "--map takes SRC=DEST, e.g. --map 网格编码=code",
            )
        pairs.append((src.strip(), dest.strip()))
    return pairs


def _aliases(spec: LayerSpec, target: Target) -> set[str]:
    names = {target.name.lower(), target.title_zh}
    if target.level is not None:
        title = target.level.title_zh
        names |= {f"{title}代码", f"{title}编码", f"{title}编号"}
        if target.level is spec.level:
            names |= {"代码", "编码", "编号"}
    return names


def header_names(
    spec: LayerSpec, targets: Sequence[Target], pairs: Sequence[tuple[str, str]]
) -> frozenset[str]:
    """What a header row is recognised by (``readers.header_index``), in lower case: every
    name a column is matched by, the coordinate and WKT names, and ``--map``'s sources."""
    names = {alias.lower() for target in targets for alias in _aliases(spec, target)}
    names |= {*LON_NAMES, *LAT_NAMES, *WKT_NAMES} | {src.lower() for src, _ in pairs}
    return frozenset(names)


def plan_fields(
    spec: LayerSpec,
    targets: Sequence[Target],
    fields: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    *,
    tabular: bool,
    dbf: bool,
) -> FieldPlan:
    """Match ``fields`` to ``targets``; explicit ``pairs`` (from --map) win."""
    plan = FieldPlan()
    known = {t.name for t in targets}
    taken: dict[str, str] = {}

    def assign(dest: str, src: str) -> None:
        if dest in taken and taken[dest] != src:
            raise ImportUsageError(
                f"字段 {taken[dest]} 和 {src} 都对应列 {dest}；请用 --map 指明用哪一个",
                f"fields {taken[dest]} and {src} both map to {dest}; choose one with --map",
            )
        taken[dest] = src

    for src, dest in pairs:
        if src not in fields:
            raise ImportUsageError(
                f"--map 中的源字段 {src} 不在文件中；文件字段：{'、'.join(fields)}",
                f"--map source field {src} is not in the file",
            )
        geometry_dest = GEOMETRY_DESTS.get(dest.lower()) if tabular else None
        if dest not in known and geometry_dest is None:
            allowed = ", ".join([*known, *(GEOMETRY_DESTS if tabular else ())])
            raise ImportUsageError(
                f"--map 的目标列 {dest} 不是图层 {spec.id} 的列；可用：{allowed}",
                f"--map destination {dest} is not a column of layer {spec.id}; use: {allowed}",
            )
        assign(geometry_dest or dest, src)
    mapped_sources = {src for src, _ in pairs}
    for src in fields:
        if src in mapped_sources:
            continue
        match = _match(spec, targets, src, tabular=tabular, dbf=dbf)
        if match is None or match in taken:
            plan.ignored.append(src)
            continue
        assign(match, src)
    plan.x, plan.y, plan.wkt = taken.pop("x", None), taken.pop("y", None), taken.pop("wkt", None)
    plan.columns = taken
    return plan


def _match(
    spec: LayerSpec, targets: Sequence[Target], src: str, *, tabular: bool, dbf: bool
) -> str | None:
    name = src.strip()
    lowered = name.lower()
    for target in targets:
        if name == target.name:
            return target.name
    for target in targets:
        if lowered in _aliases(spec, target):
            return target.name
    if dbf and len(name) == DBF_NAME_LENGTH:
        hits = [t.name for t in targets if dbf_name(t.name) == lowered]
        if len(hits) == 1:
            return hits[0]
    if dbf and len(name.encode()) >= DBF_NAME_LENGTH - 2 and not name.isascii():
        # A Chinese title cut by the DBF limit: 网格编 for 网格编码, if unambiguous.
        cut = [t.name for t in targets if any(a.startswith(name) for a in _aliases(spec, t))]
        if len(cut) == 1:
            return cut[0]
    if tabular:
        if lowered in LON_NAMES:
            return "x"
        if lowered in LAT_NAMES:
            return "y"
        if lowered in WKT_NAMES:
            return "wkt"
    return None
