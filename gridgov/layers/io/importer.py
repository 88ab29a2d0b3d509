"""Import one file into one layer: read, check everything, then write all or nothing.

Checks that need no database run in Python over whole columns; the rest run as SQL over
a staging table (:mod:`gridgov.layers.io.staging`). Nothing is written while any row has
a problem, unless ``skip_invalid`` asks to write the good rows and list the bad ones
beside the input. The caller owns the transaction: a failure half way leaves the table
exactly as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from gridgov.errors import ConflictError, PermissionDeniedError
from gridgov.gis.coords import DEFAULT_PROJECTED_EPSG, gauss_kruger_epsg
from gridgov.gis.validation import check_geometries, to_cgcs2000_all
from gridgov.layers import vault
from gridgov.layers.io import staging, values
from gridgov.layers.io.crs import resolve_crs
from gridgov.layers.io.errors import ImportRefusedError, ImportUsageError
from gridgov.layers.io.mapping import FieldPlan, header_names, parse_map, plan_fields
from gridgov.layers.io.readers import (
    ObjectArray,
    SourceTable,
    geometries_from_wkt,
    name_the_sheet,
    points_from_xy,
    read_source,
)
from gridgov.layers.io.report import (
    REJECTS_HEADER,
    ImportReport,
    Problem,
    rejects_line,
    write_rejects_file,
)
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope
from gridgov.layers.spec import SRID, GeometryKind, LayerSpec
from gridgov.layers.tables import build_metadata
from gridgov.settings import Settings

Mode = Literal["append", "replace"]
Progress = Callable[[str, int, int], None]  # (phase, done, total)
NESTING_TOLERANCE_M = 1.0
COPY_CHUNK = 5000

ALLOWED_TYPES = {
    GeometryKind.POINT: ("Point",),
    GeometryKind.POLYGON: ("Polygon",),
    GeometryKind.MULTIPOLYGON: ("MultiPolygon",),
    GeometryKind.POINT_OR_POLYGON: ("Point", "Polygon", "MultiPolygon"),
}


@dataclass(frozen=True)
class ImportOptions:
    crs: str | None = None
    encoding: str | None = None
    mapping: tuple[str, ...] = ()
    mode: Mode = "append"
    skip_invalid: bool = False
    max_vertices: int | None = None  # per geometry; None: no limit
    rejects_path: Path | None = None  # where --skip-invalid lists the refused rows
    scope: AreaScope = field(default_factory=AreaScope.everything)  # rows must lie inside
    data_key: bytes | None = None  # seals personal data; default: the configured key
    sheet: str | None = None  # Excel sheet / GeoPackage layer, by name or number from 1


def rejects_path_for(path: Path) -> Path:
    """``grids.shp`` → ``grids.rejects.csv`` beside it."""
    return path.with_name(f"{path.stem}.rejects.csv")


def _noop(_phase: str, _done: int, _total: int) -> None:
    return None


class _Collector:
    """Problems by row; rows are 1-based as people count them."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.bad: set[int] = set()  # 0-based indices of rows with a problem

    def add(self, index: int | None, field: str | None, kind: str, zh: str, en: str) -> None:
        row = None if index is None else index + 1
        self.items.append(Problem(row, field, kind, zh, en))
        if index is not None:
            self.bad.add(index)


def import_file(
    conn: Connection,
    registry: Registry,
    layer_id: str,
    path: Path,
    options: ImportOptions,
    progress: Progress = _noop,
) -> ImportReport:
    """Import ``path`` into ``layer_id`` inside the caller's transaction.

    Raises :class:`ImportRefusedError` (nothing written) when rows have problems and
    ``skip_invalid`` is off, usage / unreadable-file errors before reading any row, and
    :class:`ConflictError` when ``replace`` would orphan rows of other layers.
    """
    spec = registry.get(layer_id)
    if options.mode not in ("append", "replace"):
        raise ImportUsageError("--mode 须为 append 或 replace", "--mode must be append or replace")
    pairs = parse_map(options.mapping)
    targets = values.targets(spec)
    progress("read", 0, 1)
    source = read_source(
        path, options.encoding, spec.id, header_names(spec, targets, pairs), options.sheet
    )
    progress("read", 1, 1)
    crs = resolve_crs(source.crs, options.crs)
    report = ImportReport(
        spec.id,
        options.mode,
        rows_read=source.count,
        encoding=source.encoding,
        crs=crs,
        header_row=source.header_row,
        rows_empty=source.rows_empty,
        sheet=source.part,
        other_sheets=source.other_parts,
    )
    try:
        plan = plan_fields(
            spec,
            targets,
            source.fields,
            pairs,
            tabular=source.format.tabular,
            dbf=source.format.value == "shp",
        )
    except ImportUsageError as exc:
        raise name_the_sheet(exc, source.part, source.other_parts) from exc
    report.ignored_fields = plan.ignored
    problems = _Collector()
    geoms, geometry_field = _geometries(source, plan, problems)
    progress("validate", 0, source.count)
    geoms = _check_and_convert(spec, geoms, geometry_field, crs, problems, options.max_vertices)
    data = _check_values(spec, targets, source, plan, problems)
    progress("validate", source.count, source.count)

    layer = build_metadata(registry).tables[spec.table_name]
    stage = staging.create_stage(conn, layer)
    staging.copy_rows(conn, stage, _stage_rows(stage, data, geoms, source.count, progress))
    progress("check", 0, 1)
    _database_checks(conn, registry, spec, options.mode, geoms, problems)
    progress("check", 1, 1)

    report.problems = sorted(
        (_numbered(p, source) for p in problems.items),
        key=lambda p: (p.row if p.row is not None else 0, p.field or ""),
    )
    file_level = any(p.row is None for p in problems.items)
    if problems.items and (not options.skip_invalid or file_level):
        raise ImportRefusedError(report)
    _check_scope(conn, spec, options, [i + 1 for i in sorted(problems.bad)])
    if options.mode == "replace":
        _replace(conn, registry, spec, layer)
    progress("write", 0, 1)
    try:
        report.rows_written = staging.insert_from_stage(
            conn, spec, stage, [i + 1 for i in sorted(problems.bad)]
        )
    except DBAPIError as exc:
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            raise  # the database failed, not the rows: a 503 for the caller, not a refusal
        # A constraint this module does not mirror: name it, never the SQL or the values.
        name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or "?"
        report.problems.append(
            Problem(
                None,
                None,
                "database",
                f"数据库拒绝写入（约束 {name}）",
                f"the database refused the rows (constraint {name})",
            )
        )
        report.rows_written = 0
        raise ImportRefusedError(report) from exc
    staging.drop_stage(conn)
    if spec.personal_data:
        vault.seal(conn, spec, options.data_key or Settings().require_data_key())
    progress("write", 1, 1)
    if problems.bad and options.rejects_path is not None:
        write_rejects(options.rejects_path, source, problems.items)
        report.rejects_file = str(options.rejects_path)
    return report


def _check_scope(
    conn: Connection, spec: LayerSpec, options: ImportOptions, skip: list[int]
) -> None:
    """An account limited to some areas may add rows only inside them, and never replace."""
    if options.scope.unrestricted:
        return
    if options.mode == "replace":
        raise PermissionDeniedError(
            "仅全域账户可整体替换图层", "only accounts scoped to every area may replace a layer"
        )
    outside = staging.count_outside(conn, spec, options.scope, skip)
    if outside:
        raise PermissionDeniedError(
            f"有 {outside} 行不在您的管辖区域内，未导入任何数据",
            f"{outside} rows lie outside your area; nothing was imported",
        )


def _geometries(
    source: SourceTable, plan: FieldPlan, problems: _Collector
) -> tuple[ObjectArray, str]:
    if source.geometry is not None:
        for index, zh, en in source.geometry_problems:
            problems.add(index, "geometry", "geometry-invalid", zh, en)
        return source.geometry, "geometry"
    if plan.wkt is not None:
        geoms, found = geometries_from_wkt(source.columns[plan.wkt])
        field = plan.wkt
    elif plan.x is not None and plan.y is not None:
        geoms, found = points_from_xy(source.columns[plan.x], source.columns[plan.y])
        field = f"{plan.x}/{plan.y}"
    else:
        raise ImportUsageError(
            "表格中找不到经纬度列（lon/lng/longitude/x/经度 与 lat/latitude/y/纬度）或 WKT 列；"
            "可用 --map 源字段=lon --map 源字段=lat 指定",
            "no lon/lat (or WKT) columns found: name them with --map SRC=lon --map SRC=lat",
        )
    for index, zh, en in found:
        problems.add(index, field, "geometry-parse", zh, en)
    return geoms, field


def _check_and_convert(
    spec: LayerSpec,
    geoms: ObjectArray,
    field: str,
    crs: str,
    problems: _Collector,
    max_vertices: int | None,
) -> ObjectArray:
    checked, found = check_geometries(geoms, ALLOWED_TYPES[spec.geometry], max_vertices)
    for p in found:
        if p.index not in problems.bad:
            problems.add(p.index, field, p.kind, p.reason_zh, p.reason_en)
    usable = np.array([i not in problems.bad for i in range(len(checked))], dtype=bool)
    converted, found = to_cgcs2000_all(checked, usable, crs)
    for p in found:
        problems.add(p.index, field, p.kind, p.reason_zh, p.reason_en)
    usable &= np.array([i not in problems.bad for i in range(len(converted))], dtype=bool)
    # A conversion moves vertices by metres: re-check validity rather than trust it.
    positions = np.flatnonzero(usable)
    for i in positions[~shapely.is_valid(converted[positions])]:
        reason = shapely.is_valid_reason(converted[i])
        problems.add(
            int(i),
            field,
            "geometry-invalid",
            f"坐标转换后几何图形无效（{reason}）",
            f"geometry is invalid after the CRS conversion ({reason})",
        )
    result: ObjectArray = converted.copy()
    result[sorted(problems.bad)] = None
    return result


def _check_values(
    spec: LayerSpec,
    targets: Sequence[values.Target],
    source: SourceTable,
    plan: FieldPlan,
    problems: _Collector,
) -> dict[str, list[object]]:
    data: dict[str, list[object]] = {}
    refused: set[tuple[int, str]] = set()
    for target in targets:
        src = plan.columns.get(target.name)
        raw = source.columns[src] if src is not None else None
        data[target.name], found = values.convert_column(target, raw, source.count)
        for p in found:
            problems.add(p.index, p.column, p.kind, p.reason_zh, p.reason_en)
            refused.add((p.index, p.column))
    values.derive_codes(spec, data, source.count)
    for p in values.check_nesting(spec, data, source.count):
        problems.add(p.index, p.column, p.kind, p.reason_zh, p.reason_en)
    if spec.versioned:
        for p in values.check_period(data, source.count):
            problems.add(p.index, p.column, p.kind, p.reason_zh, p.reason_en)
    for target in targets:
        bad = {i for i, column in refused if column == target.name}
        missing = values.require(target, data[target.name], bad)
        if missing and len(missing) == source.count and target.name not in plan.columns:
            problems.add(
                None,
                target.name,
                "required-column",
                f"文件缺少必填列{target.title_zh}（{target.name}）；"
                f"可用 --map 源字段={target.name}",
                f"the file has no column for required {target.name}; use --map SRC={target.name}",
            )
            continue
        for p in missing:
            problems.add(p.index, p.column, p.kind, p.reason_zh, p.reason_en)
    return data


def _stage_rows(
    stage: staging.Stage,
    data: dict[str, list[object]],
    geoms: ObjectArray,
    count: int,
    progress: Progress,
) -> Iterator[tuple[Any, ...]]:
    present = np.array([g is not None for g in geoms], dtype=bool)
    wkb = np.full(count, None, dtype=object)
    if present.any():
        with_srid = shapely.set_srid(geoms[present], SRID)
        wkb[present] = shapely.to_wkb(with_srid, hex=True, include_srid=True)
    columns = [data[name] for name in stage.columns[:-1]]
    for i in range(count):
        yield (i + 1, *(column[i] for column in columns), wkb[i])
        if (i + 1) % COPY_CHUNK == 0:
            progress("stage", i + 1, count)
    progress("stage", count, count)


def _database_checks(
    conn: Connection,
    registry: Registry,
    spec: LayerSpec,
    mode: Mode,
    geoms: ObjectArray,
    problems: _Collector,
) -> None:
    for row, column, code in staging.unknown_parents(conn, spec, registry):
        level = next(lv for lv in spec.carries if spec.admin_column(lv) == column)
        parent = registry.for_level(level)
        title = parent.title_zh if parent else level.title_zh
        problems.add(
            row - 1,
            column,
            "unknown-parent",
            f"{level.title_zh}代码 {code} 不存在（{title}图层中没有这个代码）",
            f"{column} {code} is not in layer {parent.id if parent else level.value}",
        )
    for row, column, value in staging.unknown_references(conn, spec):
        target = spec.column(column).references or ""
        problems.add(
            row - 1,
            column,
            "unknown-reference",
            f"{spec.column(column).title_zh}（{column}）{value} 不存在（{target} 中没有）",
            f"{column} {value} is not in {target}",
        )
    srid = _projected_srid(geoms)
    for row, code, metres in staging.outside_parent(
        conn, spec, registry, NESTING_TOLERANCE_M, srid
    ):
        assert spec.level is not None
        assert spec.level.parent is not None
        parent_zh = spec.level.parent.title_zh
        problems.add(
            row - 1,
            "geometry",
            "outside-parent",
            f"超出所属{parent_zh} {code} 的范围，最远约 {metres:.1f} 米"
            f"（容差 {NESTING_TOLERANCE_M:g} 米，按 EPSG:{srid} 计算）",
            f"extends up to {metres:.1f} m outside its {spec.level.parent.value} {code} "
            f"(tolerance {NESTING_TOLERANCE_M:g} m, EPSG:{srid})",
        )
    for row, column, first in staging.duplicates_in_stage(conn, spec):
        problems.add(
            row - 1,
            column,
            "duplicate-in-file",
            f"{column} 与第 {first} 行重复",
            f"{column} repeats row {first}",
        )
    if mode == "append":
        for row, column, value in staging.clashes_with_table(conn, spec):
            if spec.versioned and column == "code":
                zh = f"{spec.title_zh} {value} 已有同一时段在用的版本"
                en = f"{spec.id} {value} already has a version in force for this period"
            else:
                zh = f"{column} {value} 已存在于图层 {spec.title_zh} 中"
                en = f"{column} {value} already exists in layer {spec.id}"
            problems.add(row - 1, column, "exists", zh, en)


def _projected_srid(geoms: ObjectArray) -> int:
    """The Gauss-Kruger zone of the data's centre (EPSG:4549 for Wuxi)."""
    present = [g for g in geoms if g is not None]
    if not present:
        return DEFAULT_PROJECTED_EPSG
    xmin, _, xmax, _ = shapely.total_bounds(np.asarray(present, dtype=object))
    return gauss_kruger_epsg((xmin + xmax) / 2)


def _replace(conn: Connection, registry: Registry, spec: LayerSpec, layer: Any) -> None:
    referencing = staging.referencing_rows(conn, spec, build_metadata(registry))
    if referencing:
        listed_zh = "、".join(f"{t}（{n} 行）" for t, n in referencing)
        listed_en = ", ".join(f"{t} ({n} rows)" for t, n in referencing)
        raise ConflictError(
            f"不能替换图层 {spec.id}：{listed_zh} 引用了它的数据；请先处理这些数据",
            f"cannot replace layer {spec.id}: rows of {listed_en} refer to it",
            public={"layer": spec.id},
        )
    staging.delete_all(conn, layer)


def _numbered(problem: Problem, source: SourceTable) -> Problem:
    """``problem`` naming its row by the file's record number (empty rows counted)."""
    if problem.row is None:
        return problem
    return dataclasses.replace(problem, row=source.record_number(problem.row - 1))


def write_rejects(path: Path, source: SourceTable, problems: list[Problem]) -> None:
    """Refused rows (``problems`` by row as read, 1-based) with their reasons, each under
    its record number in the file (:func:`write_rejects_file`)."""
    by_row: dict[int, list[Problem]] = {}
    for problem in problems:
        if problem.row is not None:
            by_row.setdefault(problem.row, []).append(problem)
    geometry = source.geometry
    header = [*REJECTS_HEADER, *source.fields]
    if geometry is not None:
        header.append("wkt")

    def cells(row: int, items: list[Problem]) -> list[object]:
        i = row - 1
        values = (source.columns[f][i] for f in source.fields)
        out = rejects_line(source.record_number(i), items, values)
        if geometry is not None:
            geom = geometry[i]
            out.append(shapely.to_wkt(geom) if geom is not None else "")
        return out

    write_rejects_file(path, header, (cells(r, items) for r, items in sorted(by_row.items())))
