"""Batch import of incidents: any size, streamed in chunks, assigned set-based in PostGIS.

Each chunk is read and checked column by column with numpy / pandas (coordinates,
category, source, time, duplicates), sorted along a Z-order curve and streamed by ``COPY``
into a per-import UNLOGGED staging table (a regular table, so that parallel workers may
read it; unique name, dropped at the end; the point is a generated column). Once the
whole file is staged: duplicates across chunks and rows already stored (by external id)
are taken out, the staged points get a GiST index, :func:`gridgov.layers.assignment.
assign_table` assigns them all at once, and one ``INSERT … SELECT`` writes every new
incident with its assignment. Everything runs in the caller's transaction: nothing is
written unless every row is valid (or, with ``skip_invalid``, the valid ones). Rows whose
external id is already stored are left as they are, so re-importing a file changes
nothing.
"""

from __future__ import annotations

import itertools
import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from sqlalchemy import Connection, text

from gridgov.errors import PermissionDeniedError
from gridgov.gis.coords import PROBLEM_MESSAGES, convert_with_problems, parse_crs
from gridgov.layers import assignment
from gridgov.layers.db import transaction_failed
from gridgov.layers.incidents import (
    EARLIEST_REPORT,
    EARLY_REPORT_EN,
    EARLY_REPORT_ZH,
    EXTERNAL_ID_EN,
    EXTERNAL_ID_FORBIDDEN,
    EXTERNAL_ID_ZH,
    FIELD_DIFFERS,
    FUTURE_REPORT_EN,
    FUTURE_REPORT_ZH,
    MAX_CHARS,
    field_names,
    latest_report_time,
)
from gridgov.layers.io.crs import SAME_DATUM, resolve_crs
from gridgov.layers.io.encoding import codec_name, file_codec
from gridgov.layers.io.errors import ImportRefusedError, ImportUsageError, UnreadableFileError
from gridgov.layers.io.formats import Format, named_format
from gridgov.layers.io.geojson_stream import FeatureStream
from gridgov.layers.io.mapping import LAT_NAMES, LON_NAMES, parse_map
from gridgov.layers.io.readers import (
    csv_chunks,
    csv_separator,
    csv_title_records,
    declared_crs,
    header_index,
    name_the_sheet,
    open_sheet,
    sheet_not_applicable,
)
from gridgov.layers.io.report import (
    REJECTS_HEADER,
    ImportReport,
    Problem,
    rejects_line,
    write_rejects_file,
)
from gridgov.layers.io.values import (
    EPOCH_TIME,
    LOOSE_TIME,
    UNSTORABLE_EN,
    UNSTORABLE_ZH,
    Target,
    convert_column,
    half_day,
    is_blank,
    loose_part,
    targets,
    unstorable_rows,
)
from gridgov.layers.map_support import bulk_insert
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope, scope_sql
from gridgov.layers.spec import LayerSpec

CHUNK_ROWS = 200_000
FIELDS = ("category", "source", "reported_at", "external_id", "description")
ALIASES = {
    "category": ("category", "类别", "事件类别", "type"),
    "source": ("source", "来源", "事件来源"),
    "reported_at": ("reported_at", "上报时间", "时间", "time", "datetime"),
    "external_id": ("external_id", "编号", "外部编号", "id", "事件编号"),
    "description": ("description", "描述", "事件描述", "内容"),
}
Progress = Callable[[int], None]
Pairs = list[tuple[str, str]]  # --map's (source column, field)


@dataclass
class IncidentImportReport(ImportReport):
    """An :class:`ImportReport` that also counts rows left unchanged and assignment rules."""

    layer: str = "incident"
    mode: str = "append"
    rows_unchanged: int = 0  # external id already stored, with the same values: left as is
    by_method: dict[str, int] = field(default_factory=dict)
    assigned_fast: int = 0  # placed by the fast path (one point-in-piece test)
    assigned_exact: int = 0  # placed by the exact engine (boundaries, slivers, outside)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each phase

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "rows_unchanged": self.rows_unchanged,
            "by_method": self.by_method,
            "assigned_fast": self.assigned_fast,
            "assigned_exact": self.assigned_exact,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class Columns:
    """Which source column feeds each field."""

    x: str
    y: str
    fields: dict[str, str]
    header: list[str]


def _plan(header: list[str], mapping: list[tuple[str, str]], first: bool = True) -> Columns:
    """Which column feeds each field. A required field without a column is an error in
    the first chunk; in a later one (GeoJSON features of other properties) its rows are
    bad rows, each missing the value."""
    explicit = {dest: src for src, dest in mapping}
    unknown = sorted(set(explicit) - set(FIELDS) - {"lon", "lat", "x", "y"})
    if unknown:
        raise ImportUsageError(
            f"--map 的目标列未知：{unknown}", f"--map names unknown columns {unknown}"
        )

    def find(dest: str, names: tuple[str, ...]) -> str | None:
        if dest in explicit:
            if explicit[dest] not in header:
                if not first:
                    return None
                raise ImportUsageError(
                    f"文件中没有列 {explicit[dest]}", f"no column {explicit[dest]}"
                )
            return explicit[dest]
        return _only_candidate(header, dest, names)

    fields = {f: c for f in FIELDS if (c := find(f, ALIASES[f])) is not None}
    if "external_id" not in fields and FEATURE_ID in header:
        fields["external_id"] = FEATURE_ID
    missing = [f for f in ("category", "source", "reported_at") if f not in fields]
    if missing and first:
        raise ImportUsageError(f"缺少必填列：{missing}", f"required columns missing: {missing}")
    if GEOMETRY_X in header and not {"lon", "lat", "x", "y"} & set(explicit):
        return Columns(GEOMETRY_X, GEOMETRY_Y, fields, header)
    x = find("lon", LON_NAMES) or find("x", ())
    y = find("lat", LAT_NAMES) or find("y", ())
    if x is None or y is None:
        raise ImportUsageError("找不到经纬度列（lon/lat、经度/纬度）", "no lon/lat columns found")
    return Columns(x, y, fields, header)


def _only_candidate(header: list[str], dest: str, names: tuple[str, ...]) -> str | None:
    """The one column whose name (trimmed, any case) is among ``names``. Two such columns
    (时间 and 上报时间, 经度 and X) are refused, never chosen between: the wrong one
    would be stored without a word. So is a name repeated in the header (pandas calls
    the second 经度.1; an Excel sheet keeps both), which ``--map`` cannot tell apart."""
    found = [h for h in header if _header_name(h, header).strip().lower() in names]
    if len(found) < 2:
        return found[0] if found else None
    spelt = [_header_name(h, header) for h in found]
    repeated = sorted({name for name in spelt if spelt.count(name) > 1})
    if repeated:
        raise ImportUsageError(
            f"表头中列名 {'、'.join(repeated)} 重复出现，请先改名",
            f"the header repeats the column name {', '.join(repeated)}: rename one",
        )
    raise ImportUsageError(
        f"列 {'、'.join(found)} 都可作为 {dest}，请用 --map 指明用哪一列，"
        f"例如 --map {found[0]}={dest}",
        f"columns {', '.join(found)} could each be {dest}: choose one with --map, "
        f"e.g. --map {found[0]}={dest}",
    )


def _header_name(column: str, header: list[str]) -> str:
    """The name as the file spells it: pandas renames a repeated 经度 to 经度.1."""
    base, dot, number = column.rpartition(".")
    return base if dot and number.isdigit() and base in header else column


def incident_format(path: Path) -> Format:
    """The format of an incident file, named by its extension as for ``gridgov layer
    import`` (:func:`formats.named_format`): CSV (``.csv``, ``.txt``), Excel or GeoJSON."""
    fmt = named_format(path)
    if fmt is None or not (fmt.tabular or fmt is Format.GEOJSON):
        suffix = path.suffix.lower() or "（无扩展名）"
        raise ImportUsageError(
            f"不支持的文件类型 {suffix}（支持 CSV/TXT、Excel、GeoJSON）",
            f"unsupported file type {suffix} (CSV/TXT, Excel, GeoJSON)",
        )
    return fmt


_SAMPLE_BYTES = 1 << 20  # read ahead for the encoding, separator and header


def _chunks(
    path: Path,
    encoding: str | None,
    crs: str | None,
    report: IncidentImportReport,
    pairs: Pairs,
    sheet: str | None,
) -> tuple[str | None, Iterator[pd.DataFrame]]:
    """The file's rows as text, a chunk at a time (bounded memory for any size); the
    header's line or sheet row goes to ``report.header_row``, the sheet read (and the
    workbook's others) to ``report.sheet`` (``report.other_sheets``)."""
    fmt = incident_format(path)
    if fmt.excel:
        return None, _excel_chunks(path, report, pairs, sheet)
    if sheet is not None:
        raise sheet_not_applicable()
    with path.open("rb") as handle:
        sample = handle.read(_SAMPLE_BYTES)
    # Whole lines to tell the encoding by: no UTF-8 or GB18030 character holds a newline
    # byte (a UTF-16 file is told by its BOM).
    head = sample[: sample.rfind(b"\n") + 1] or sample
    codec = file_codec(head, codec_name(encoding) if encoding else None)
    if codec is None:
        raise UnreadableFileError(
            "无法识别文件的文字编码，请用 --encoding 指定",
            "cannot tell the file's text encoding: give --encoding",
        )
    if fmt is Format.GEOJSON:
        return codec, _geojson_chunks(path, codec, crs)
    # The lines as text, cut where the sample cut the file: in UTF-16 a newline byte may
    # be half of a character (上 is 0A 4E), and a line cut there misled the separator.
    lines = sample.decode(codec, errors="ignore")
    if len(sample) == _SAMPLE_BYTES:
        lines = lines[: lines.rfind("\n") + 1] or lines
    sep = csv_separator(lines[:8192])
    skip, report.header_row = csv_title_records(lines, sep, _header_names(pairs))
    chunks = csv_chunks(
        path,
        path.name,
        chunk_rows=CHUNK_ROWS,
        sep=sep,
        skiprows=skip,
        dtype=str,
        keep_default_na=False,
        encoding=codec,
        encoding_errors="strict",
    )
    return codec, chunks


_FIELD_NAMES = frozenset(n for names in (*ALIASES.values(), LON_NAMES, LAT_NAMES) for n in names)


def _header_names(pairs: Pairs) -> frozenset[str]:
    """What a header row is recognised by (:func:`readers.header_index`): the names the
    columns are matched by, and ``--map``'s sources."""
    return _FIELD_NAMES | {src.lower() for src, _ in pairs}


def _excel_chunks(
    path: Path, report: IncidentImportReport, pairs: Pairs, wanted: str | None
) -> Iterator[pd.DataFrame]:
    sheet = open_sheet(path, _header_names(pairs), wanted)
    report.sheet = sheet.name
    report.other_sheets = [name for name in sheet.sheets if name != sheet.name]
    top, rows = sheet.top, sheet.rest
    if not top:
        raise UnreadableFileError(
            f"{path.name} 的工作表“{report.sheet}”是空的（没有表头行）",
            f"the sheet {report.sheet!r} of {path.name} is empty (no header row)",
        )
    at = header_index([list(r) for r in top], _header_names(pairs))
    report.header_row = at + 1
    rows = itertools.chain(top[at + 1 :], rows)
    header = ["" if h is None else str(h) for h in top[at]]
    empty = True
    while batch := list(itertools.islice(rows, CHUNK_ROWS)):
        cells = [["" if v is None else v for v in row] for row in batch]
        empty = False
        yield pd.DataFrame(cells, columns=header).astype(str)
    if empty:  # a header alone: its columns are checked all the same, as a CSV's are
        yield pd.DataFrame(columns=header, dtype=str)


# Where a GeoJSON feature's point goes (never confused with a "lon" property: see
# ``_plan``), and why a feature has none; also the columns of the rejects file.
GEOMETRY_X = "geometry_lon"
GEOMETRY_Y = "geometry_lat"
GEOMETRY_PROBLEM = "geometry_problem"
FEATURE_ID = "feature_id"  # a feature's external id when its properties give none
_GEOMETRY_PROBLEMS = {
    "not-a-feature": ("不是 GeoJSON 要素 (Feature)", "not a GeoJSON Feature"),
    "no-geometry": ("要素没有几何（geometry 为空）", "the feature has no geometry"),
    "not-a-point": ("几何类型是 {}，应为点 (Point)", "the geometry is a {}, not a Point"),
    "z-value": (
        "点坐标应为 [经度, 纬度] 两个数，不带高程",
        "point coordinates must be [lon, lat], without a Z value",
    ),
    "coordinates": ("点坐标不是两个数", "point coordinates are not two numbers"),
}


def _geojson_chunks(path: Path, codec: str, requested: str | None) -> Iterator[pd.DataFrame]:
    """Features, streamed (:class:`FeatureStream`), as rows: properties as text, the
    point in :data:`GEOMETRY_X` / :data:`GEOMETRY_Y`, a feature's ``id`` in
    :data:`FEATURE_ID` (its external id when its properties give none).

    Each chunk's CRS is in ``attrs["crs"]``: ``requested``, else the file's own ``crs``
    member, else WGS84 (RFC 7946). A member that contradicts ``requested`` is refused
    (``resolve_crs``), and so is one that comes only after features already read as WGS84.
    """
    found: str | None = None  # the CRS resolved from the file's crs member, once seen
    used: str | None = None  # the CRS the chunks so far were read in

    def current() -> str:
        nonlocal found
        if found is None and "crs" in stream.members:
            found = resolve_crs(declared_crs(_crs_name(stream.members["crs"])), requested)
            if used not in (None, found) and not {used, found} <= SAME_DATUM:
                raise ImportUsageError(
                    f"文件的坐标系声明（{found}）在要素之后，之前的要素已按 {used} 读取；"
                    "请指定坐标系（--crs 或表单中的坐标系）",
                    f"the file's CRS ({found}) is declared after features already read as "
                    f"{used}: give the CRS",
                )
        return found or requested or "wgs84"

    def frame(rows: list[dict[str, object]]) -> pd.DataFrame:
        nonlocal used
        out = _feature_frame(rows)
        used = out.attrs["crs"] = current()
        return out

    with path.open(encoding="utf-8-sig" if codec == "utf-8" else codec, newline="") as handle:
        stream = FeatureStream(handle)
        rows: list[dict[str, object]] = []
        for feature in stream.features():
            if found is None and "crs" in stream.members:
                current()  # a contradiction is refused before reading on
            rows.append(_feature_row(feature))
            if len(rows) == CHUNK_ROWS:
                yield frame(rows)
                rows = []
        current()  # members after the last feature are known only now
        if rows:
            yield frame(rows)


def _crs_name(member: Any) -> Any:
    """The name in a GeoJSON 2008 ``crs`` member (``{"type": "name", ...}``), else as is."""
    if isinstance(member, dict) and isinstance(member.get("properties"), dict):
        return member["properties"].get("name", member)
    return member


def _text(value: object) -> str:
    """A property value as the text a CSV cell would hold."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _feature_row(feature: Any) -> dict[str, object]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return {GEOMETRY_PROBLEM: "not-a-feature"}
    properties = feature.get("properties")
    row: dict[str, object] = (
        {str(k): _text(v) for k, v in properties.items()} if isinstance(properties, dict) else {}
    )
    if "id" in feature:
        row[FEATURE_ID] = _text(feature["id"])
    # The geometry's columns win over properties of the same name.
    row[GEOMETRY_X], row[GEOMETRY_Y], row[GEOMETRY_PROBLEM] = np.nan, np.nan, ""
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict):
        row[GEOMETRY_PROBLEM] = "no-geometry"
    elif geometry.get("type") != "Point":
        row[GEOMETRY_PROBLEM] = f"not-a-point:{str(geometry.get('type'))[:40]}"
    else:
        point = geometry.get("coordinates")
        values: list[object] = point if isinstance(point, list) else []
        numbers = [
            float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if len(numbers) != len(values) or len(numbers) < 2:
            row[GEOMETRY_PROBLEM] = "coordinates"
        elif len(numbers) > 2:
            row[GEOMETRY_PROBLEM] = "z-value"
        else:
            row[GEOMETRY_X], row[GEOMETRY_Y] = numbers
    return row


def _feature_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows)
    for name in (GEOMETRY_X, GEOMETRY_Y):
        if name not in frame:
            frame[name] = np.nan
    if GEOMETRY_PROBLEM not in frame:
        frame[GEOMETRY_PROBLEM] = ""
    text_columns = [c for c in frame.columns if c not in (GEOMETRY_X, GEOMETRY_Y)]
    frame[text_columns] = frame[text_columns].fillna("").astype(str)
    return frame


def import_incidents(
    conn: Connection,
    registry: Registry,
    path: Path,
    crs: str | None,
    tolerance_m: float,
    *,
    encoding: str | None = None,
    mapping: tuple[str, ...] = (),
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress = lambda _rows: None,
    sheet: str | None = None,
    dry_run: bool = False,
    may_rebuild: bool = True,
    scope: AreaScope | None = None,
) -> IncidentImportReport:
    """Import ``path`` inside the caller's transaction (see the module docstring).

    ``crs``: the coordinates'; None reads a GeoJSON file's own ``crs`` member, and WGS84
    where there is none (a table never declares one), as the layer import does.

    ``dry_run``: the caller rolls the transaction back (a trial run). The table's indexes
    and keys are then kept through the insert: a first load would otherwise lock the map's
    tables against every reader for a run that leaves nothing behind. ``may_rebuild``
    False keeps them too (a live server's upload, whose map readers must not wait).

    ``scope``: the importing account's area. A row placed outside it, or whose external id
    is an incident outside it, refuses the whole file (:class:`PermissionDeniedError`),
    as the layer import does; row-level security is the caller's to step out of, since
    the import alters the table."""
    if not path.is_file():
        raise UnreadableFileError(f"文件不存在：{path.name}", f"no such file: {path.name}")
    requested = parse_crs(crs) if crs else None
    pairs = parse_map(mapping)
    spec = registry.get("incident")
    field_targets = {t.name: t for t in targets(spec) if t.name in FIELDS}
    report = IncidentImportReport()
    codec, chunks = _chunks(path, encoding, requested, report, pairs, sheet)
    report.encoding = codec
    # A million rows take longer than the API's per-statement limit; this is a batch job.
    conn.execute(text("SET LOCAL statement_timeout = 0"))
    stage = assignment.scratch_name("incident_stage")
    _create_stage(conn, stage)
    rejected: list[tuple[int, dict[str, str], Problem]] = []
    offset = 0
    columns: Columns | None = None
    result: assignment.BulkResult | None = None
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        report.seconds[phase] = round(now - clock, 2)
        clock = now

    try:
        writer = _StageWriter(conn, stage)
        try:
            for chunk in chunks:
                if columns is None or columns.header != list(chunk.columns):
                    # GeoJSON chunks may differ: each feature has its own properties.
                    columns = _plan(list(chunk.columns), pairs, first=columns is None)
                report.crs = chunk.attrs.get("crs") or requested or "wgs84"
                problems, empty = _stage_chunk(
                    writer, chunk, columns, report.crs, field_targets, offset
                )
                report.rows_empty += empty
                for problem in problems:
                    assert problem.row is not None
                    raw = dict(chunk.iloc[problem.row - offset - 1])
                    rejected.append((problem.row, raw, problem))
                report.problems += problems
                report.rows_read += len(chunk)
                offset += len(chunk)
                progress(len(chunk))
        except ImportUsageError as exc:  # columns the sheet lacks: say which sheet it was
            writer.close(raise_error=False)
            raise name_the_sheet(exc, report.sheet, report.other_sheets) from exc
        except UnicodeDecodeError as exc:
            writer.close(raise_error=False)
            raise UnreadableFileError(
                f"第 {offset + 1} 行之后的文字不是 {codec} 编码，请用 --encoding 指定",
                f"text after row {offset + 1} is not {codec}: give --encoding",
            ) from exc
        except BaseException:
            writer.close(raise_error=False)
            raise
        writer.close()
        lap("read, check and stage")
        for problem, raw in _repeats_across_chunks(conn, stage):
            report.problems.append(problem)
            assert problem.row is not None
            rejected.append((problem.row, raw, problem))
        # From here to commit no other transaction writes incidents (readers go on), so
        # the rows found new below are still new when they are inserted.
        conn.execute(text("LOCK TABLE incident IN SHARE ROW EXCLUSIVE MODE"))
        if scope is not None:
            _refuse_stored_outside(conn, stage, spec, scope)
        report.rows_unchanged = conn.execute(
            text(
                f"DELETE FROM {stage} s USING incident i WHERE i.external_id = s.external_id "
                f"AND NOT ({_DIFFERS})"
            )
        ).rowcount
        for problem, raw in _stored_otherwise(conn, stage):
            report.problems.append(problem)
            assert problem.row is not None
            rejected.append((problem.row, raw, problem))
        lap("repeats and stored ids")
        conn.execute(text(f"CREATE INDEX ON {stage} USING gist (geom)"))
        lap("index the staged points")
        if offset >= assignment.PARALLEL_MIN_ROWS and not assignment.atoms_fresh(conn):
            # Grids or units changed since the pieces were cut: cutting them again takes
            # seconds, sending every row through the exact engine would take minutes.
            assignment.refresh_grid_units(conn)
        result = assignment.assign_table(conn, stage, tolerance_m)
        lap("assign")
        report.assigned_fast, report.assigned_exact = result.fast, result.exact
        placed = _outside_problems(conn, stage, result.outside)
        for problem, raw in placed:
            report.problems.append(problem)
            assert problem.row is not None
            rejected.append((problem.row, raw, problem))
        report.problems.sort(key=lambda p: p.row or 0)
        if report.problems and not skip_invalid:
            raise ImportRefusedError(report)
        if scope is not None:
            _refuse_placed_outside(conn, result, spec, scope)
        report.by_method = _methods(conn, result)
        report.rows_written = _insert(
            conn, stage, result, lap, may_rebuild=may_rebuild and not dry_run
        )
    finally:
        if conn.in_transaction() and not transaction_failed(conn):  # else they vanish
            if result is not None:
                result.drop(conn)
            conn.execute(text(f"DROP TABLE IF EXISTS {stage}"))
    if rejected and rejects_path is not None:
        _write_rejects(rejects_path, rejected)
        report.rejects_file = str(rejects_path)
    return report


def _create_stage(conn: Connection, stage: str) -> None:
    # UNLOGGED and regular (not TEMP): parallel workers can read it, and created inside
    # the caller's transaction it never outlives a rollback.
    conn.execute(
        text(
            f"""
            CREATE UNLOGGED TABLE {stage} (
                id bigint NOT NULL, zkey bigint NOT NULL, category text, source text,
                at timestamptz, external_id text, description text, lon float8, lat float8,
                geom geometry(Point, 4490)
                    GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4490)) STORED
            )
            """
        )
    )


# ISO 8601 times that pandas and datetime.fromisoformat read alike; anything else goes
# through the row-by-row converter (the one every other importer uses).
_ISO_TIME = (
    r"^(?P<time>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?)"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?$"
)
_ISO_TIME_MAX_CHARS = len("2025-01-01T00:00:00.000000+08:00")  # the longest match
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_NOT_YET = np.iinfo(np.int64).min


def _times(raw: pd.Series) -> tuple[np.ndarray, list[tuple[int, object]]]:
    """Epoch microseconds (``_NOT_YET`` where blank or left to the converter), and the
    rows (index, value) that the row-by-row converter must see."""
    stripped = raw.astype(str).str.strip()
    values = stripped.str.replace("/", "-", regex=False)
    iso, zone = _iso_shapes(values)
    out = np.full(len(raw), _NOT_YET, dtype=np.int64)
    naive = iso & ~zone
    if naive.any():
        local = pd.to_datetime(values[naive], format="ISO8601", errors="coerce")
        # Naive times are Beijing time (UTC+8), as the converter reads them.
        out[naive] = _micros(local.dt.tz_localize("UTC") - pd.Timedelta(hours=8))
    aware = iso & zone
    if aware.any():
        out[aware] = _micros(
            pd.to_datetime(values[aware], format="ISO8601", utc=True, errors="coerce")
        )
    epoch = (out == _NOT_YET) & stripped.str.fullmatch(EPOCH_TIME.pattern).to_numpy(dtype=bool)
    if epoch.any():  # ArcGIS's milliseconds (13 digits) or seconds (10): values.EPOCH_TIME
        numbers = stripped[epoch].astype(np.int64).to_numpy()
        lengths = stripped[epoch].str.len().to_numpy()
        out[epoch] = np.where(lengths == 13, numbers * 1_000, numbers * 1_000_000)
    left = (out == _NOT_YET) & (values != "").to_numpy(dtype=bool)
    # Longer values cannot match (and would make the character matrix huge).
    left &= (stripped.str.len() <= _LOOSE_TIME_MAX_CHARS).to_numpy(dtype=bool)
    if left.any():
        out[left] = _loose_micros(stripped[left])
    cells = raw.to_numpy(dtype=object)
    slow = [
        (i, cells[i]) for i in np.flatnonzero(out == _NOT_YET).tolist() if not is_blank(cells[i])
    ]
    return out, slow


_PICK_FROM = "0-T:."  # characters appended to each row of the matrix, to pick from
_LOOSE_TIME_MAX_CHARS = len("2025年12月31日 下午11时59分59秒") + 8  # spaces to spare


def _loose_micros(values: pd.Series) -> np.ndarray:
    """Epoch microseconds of the times in :data:`LOOSE_TIME`'s forms (2025/5/1 10:00,
    2025年5月1日), naive Beijing time; ``_NOT_YET`` elsewhere and for impossible days or
    hours, which the converter then names.

    As in :func:`_iso_shapes`, a form is a shape (digits masked): each matching shape
    says where its year, month, … stand, so its rows are rewritten to ISO 8601 by
    picking characters from the character matrix, then parsed as ISO times are. A
    million rows come in a few shapes: array work, no Python loop over the rows.
    """
    out = np.full(len(values), _NOT_YET, dtype=np.int64)
    cells = np.asarray(values.to_numpy(dtype=object), dtype=str)
    width = cells.dtype.itemsize // 4
    if width == 0:
        return out
    codes = cells.view(np.uint32).reshape(len(cells), width)
    masked = codes.copy()
    masked[(masked >= 0x30) & (masked <= 0x39)] = 0x30
    shapes, which = np.unique(masked.view(cells.dtype).ravel(), return_inverse=True)
    which = which.ravel()
    extra = np.array([ord(c) for c in _PICK_FROM], dtype=np.uint32)
    for k, shape in enumerate(shapes):
        found = LOOSE_TIME.fullmatch(str(shape))
        if found is None:
            continue
        rows = np.flatnonzero(which == k)
        matrix = np.hstack([codes[rows], np.broadcast_to(extra, (len(rows), len(extra)))])
        picks = _iso_picks(found, width)
        iso = np.ascontiguousarray(matrix[:, picks]).view(f"<U{len(picks)}").ravel()
        local = pd.to_datetime(pd.Series(iso), format="ISO8601", errors="coerce")
        micros = _micros(local.dt.tz_localize("UTC") - pd.Timedelta(hours=8))
        half = half_day(found)
        if half is not None:  # 上午/下午: as values.hour_of_day, by array
            hour = local.dt.hour.to_numpy(dtype=float)
            shown = (hour >= 1) & (hour <= 12)  # else no 12-hour clock shows it: a bad row
            later = np.where(hour == 12, -12, 0) + (12 if half == "pm" else 0)
            micros = np.where(shown, micros + later * _MICROS_PER_HOUR, _NOT_YET)
        out[rows] = micros
    return out


_MICROS_PER_HOUR = 3_600_000_000


def _iso_picks(found: re.Match[str], width: int) -> list[int]:
    """The matrix columns that spell ``found`` as YYYY-MM-DD[THH:MM:SS[.F]]: the match's
    digits, zero-padded on the left, and the characters of :data:`_PICK_FROM` (placed
    after the ``width`` columns of the text)."""
    zero, dash, tee, colon, dot = (width + _PICK_FROM.index(c) for c in _PICK_FROM)

    def digits(part: str, size: int) -> list[int]:
        group = "y" if part == "year" else loose_part(found, part)
        if group is None:
            return [zero] * size
        start, end = found.span(group)
        return [zero] * (size - (end - start)) + list(range(start, end))

    picks = [*digits("year", 4), dash, *digits("month", 2), dash, *digits("day", 2)]
    if loose_part(found, "hour") is None:
        return picks
    picks += [tee, *digits("hour", 2), colon, *digits("minute", 2)]
    picks += [colon, *digits("second", 2)]
    if found["F"] is not None:
        start, end = found.span("F")
        picks += [dot, *range(start, end)]
    return picks


def _iso_shapes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Which values match :data:`_ISO_TIME`, and which of those carry a zone.

    The pattern has no literal digit, so whether a value matches (and with a zone)
    depends only on its shape: the value with every ASCII digit written as ``0``. A
    million times have a handful of shapes; the regex runs once per shape, the rest is
    array work (no Python loop over the rows).
    """
    n = len(values)
    iso = np.zeros(n, dtype=bool)
    zone = np.zeros(n, dtype=bool)
    # Longer values cannot match (and would make the character matrix below huge).
    short = (values.str.len() <= _ISO_TIME_MAX_CHARS).to_numpy(dtype=bool)
    if not short.any():
        return iso, zone
    text_values = np.asarray(values.to_numpy(dtype=object)[short], dtype=str)
    width = text_values.dtype.itemsize // 4
    if width == 0:  # every value empty
        return iso, zone
    chars = text_values.view(np.uint32).reshape(len(text_values), width)
    codes = chars.copy()
    codes[(codes >= 0x30) & (codes <= 0x39)] = 0x30
    shapes, which = np.unique(codes.view(text_values.dtype).ravel(), return_inverse=True)
    which = which.ravel()
    pattern = re.compile(_ISO_TIME)
    matches = [pattern.match(str(shape)) for shape in shapes]
    shape_iso = np.array([m is not None for m in matches], dtype=bool)
    shape_zone = np.array([m is not None and m["zone"] is not None for m in matches], dtype=bool)
    short_iso = shape_iso[which]
    for k, found in enumerate(matches):
        if found is None or found["zone"] in (None, "Z"):
            continue
        # An offset no zone has (+20:00) is left to the converter, which refuses it by row:
        # the hour and minute digits read off the character matrix, at the zone's place.
        rows = np.flatnonzero(which == k)
        at = found.start("zone")
        digits = chars[rows][:, [at + 1, at + 2, at + 4, at + 5]].astype(np.int64) - 0x30
        minutes = (digits[:, 0] * 10 + digits[:, 1]) * 60 + digits[:, 2] * 10 + digits[:, 3]
        signed = -minutes if found["zone"][0] == "-" else minutes
        short_iso[rows] &= (signed >= _OFFSET_MINUTES[0]) & (signed <= _OFFSET_MINUTES[1])
    iso[short] = short_iso
    zone[short] = shape_zone[which]
    return iso, zone


# The UTC offsets real zones have (values.real_utc_offset), in minutes.
_OFFSET_MINUTES = (-12 * 60, 14 * 60)


def _micros(values: pd.Series) -> np.ndarray:
    micros = ((values - _EPOCH) // pd.Timedelta(1, "us")).to_numpy(dtype=float)
    return np.where(np.isnan(micros), _NOT_YET, micros).astype(np.int64)


def _by_unique(
    target: Target, raw: pd.Series, offset: int
) -> tuple[np.ndarray, list[Problem], np.ndarray]:
    """Convert each distinct value once (categories and sources repeat a million times)."""
    codes, uniques = pd.factorize(raw, use_na_sentinel=False)
    converted, problems = convert_column(target, list(uniques), len(uniques))
    values = np.array(converted, dtype=object)[codes]
    bad_unique = {p.index: p for p in problems}
    out: list[Problem] = []
    bad = np.zeros(len(raw), dtype=bool)
    if bad_unique:
        for i in np.flatnonzero(np.isin(codes, list(bad_unique))).tolist():
            p = bad_unique[int(codes[i])]
            out.append(Problem(offset + i + 1, p.column, p.kind, p.reason_zh, p.reason_en))
            bad[i] = True
    return values, out, bad


def _number(column: pd.Series) -> tuple[np.ndarray, dict[int, str]]:
    """Coordinates as floats (NaN where there is none), and the texts that are no number
    at all by row (``１２０.３`` in full-width digits, ``120°18′``): these are named as
    such, not as the NaN they parse to."""
    if pd.api.types.is_float_dtype(column):
        return column.to_numpy(dtype=float), {}
    text = column.str.strip()
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float)
    missing = np.flatnonzero(np.isnan(numbers))
    words = text.iloc[missing]
    return numbers, {
        int(i): str(word)
        for i, word in zip(missing.tolist(), words.tolist(), strict=True)
        if isinstance(word, str) and word and word.lower() != "nan"
    }


def _stage_chunk(
    writer: _StageWriter,
    chunk: pd.DataFrame,
    columns: Columns,
    crs: str,
    field_targets: dict[str, Target],
    offset: int,
) -> tuple[list[Problem], int]:
    """Check one chunk's rows; hand the good ones to the stage's COPY. Returns the
    problems and how many rows were empty (skipped: no problem, nothing written)."""
    n = len(chunk)
    problems: list[Problem] = []
    (x, x_words), (y, y_words) = _number(chunk[columns.x]), _number(chunk[columns.y])
    empty = _empty_rows(chunk, np.isnan(x))
    bad = empty.copy()
    lon, lat, codes = convert_with_problems(x, y, crs)
    for i in sorted(x_words.keys() | y_words.keys()):
        shown = "、".join(f"“{w[:40]}”" for w in (x_words.get(i), y_words.get(i)) if w)
        problems.append(
            Problem(
                offset + i + 1,
                "lon/lat",
                "not-a-number",
                f"经纬度不是数字：{shown}（全角数字、度分秒须先换成小数度）",
                f"lon/lat is not a number: {shown} (full-width digits and degrees-minutes-"
                "seconds must first become decimal degrees)",
            )
        )
        bad[i] = True
        codes[i] = 0
    if GEOMETRY_PROBLEM in chunk:  # GeoJSON features without a usable point
        for i in np.flatnonzero(chunk[GEOMETRY_PROBLEM].to_numpy() != "").tolist():
            kind, _, detail = str(chunk[GEOMETRY_PROBLEM].iat[i]).partition(":")
            zh, en = (m.format(detail) for m in _GEOMETRY_PROBLEMS[kind])
            problems.append(Problem(offset + i + 1, "geometry", kind, zh, en))
            bad[i] = True
            codes[i] = 0
    for i in np.flatnonzero(codes).tolist():
        zh, en = PROBLEM_MESSAGES[int(codes[i])]
        kind = {1: "nan", 2: "outside-china", 3: "swapped"}.get(int(codes[i]), "coordinates")
        problems.append(Problem(offset + int(i) + 1, "lon/lat", kind, zh, en))
        bad[i] = True
    values: dict[str, np.ndarray] = {}
    blank: dict[str, np.ndarray] = {}
    for name in FIELDS:
        target = field_targets[name]
        source = columns.fields.get(name)
        if source is None:
            values[name] = np.full(n, None, dtype=object)
            blank[name] = np.ones(n, dtype=bool)
            continue
        raw = chunk[source]
        if name == "external_id" and source != FEATURE_ID and FEATURE_ID in chunk:
            # A feature whose properties give no id has its GeoJSON id as external id.
            raw = raw.mask(raw.str.strip() == "", chunk[FEATURE_ID])
        stripped = raw.astype(str).str.strip()
        blank[name] = (stripped == "").to_numpy(dtype=bool) | raw.isna().to_numpy(dtype=bool)
        if name == "reported_at":
            micros, slow = _times(raw)
            converted, slow_problems = convert_column(target, [v for _, v in slow], len(slow))
            for (i, _), value in zip(slow, converted, strict=True):
                if isinstance(value, datetime):
                    micros[i] = round(value.timestamp() * 1e6)
            for p in slow_problems:
                i = slow[p.index][0]
                problems.append(Problem(offset + i + 1, p.column, p.kind, p.reason_zh, p.reason_en))
                bad[i] = True
            blank[name] |= micros == _NOT_YET
            latest = round(latest_report_time().timestamp() * 1e6)
            earliest = round(EARLIEST_REPORT.timestamp() * 1e6)
            too_early = (micros < earliest) & (micros != _NOT_YET)
            for kind, zh, en, wrong in (
                ("reported-in-future", FUTURE_REPORT_ZH, FUTURE_REPORT_EN, micros > latest),
                ("reported-too-early", EARLY_REPORT_ZH, EARLY_REPORT_EN, too_early),
            ):
                for i in np.flatnonzero(wrong & ~bad).tolist():
                    problems.append(Problem(offset + i + 1, name, kind, zh, en))
                    bad[i] = True
            values[name] = np.datetime_as_string(
                np.where(micros == _NOT_YET, 0, micros).astype("datetime64[us]"),
                unit="us",
                timezone="UTC",
            ).astype(object)
        elif target.choices:
            converted_values, value_problems, value_bad = _by_unique(target, stripped, offset)
            problems += value_problems
            bad |= value_bad
            values[name] = converted_values
            blank[name] |= value_bad
        else:  # free text: stripped, blank is missing
            longest = MAX_CHARS[name]
            for i in np.flatnonzero((stripped.str.len() > longest).to_numpy(dtype=bool)).tolist():
                problems.append(
                    Problem(
                        offset + i + 1,
                        name,
                        "too-long",
                        f"{target.title_zh}（{name}）超过 {longest} 个字符",
                        f"{name}: longer than {longest} characters",
                    )
                )
                bad[i] = True
            if name == "external_id":
                odd = stripped.str.contains(EXTERNAL_ID_FORBIDDEN.pattern).to_numpy(dtype=bool)
                for i in np.flatnonzero(odd & ~bad).tolist():
                    problems.append(
                        Problem(
                            offset + i + 1, name, "odd-external-id", EXTERNAL_ID_ZH, EXTERNAL_ID_EN
                        )
                    )
                    bad[i] = True
            for i in unstorable_rows(stripped.tolist()):
                problems.append(
                    Problem(
                        offset + i + 1,
                        name,
                        "unstorable-text",
                        f"{target.title_zh}（{name}）{UNSTORABLE_ZH}",
                        f"{name}: {UNSTORABLE_EN}",
                    )
                )
                bad[i] = True
            text_values = stripped.to_numpy(dtype=object)
            text_values[blank[name]] = None
            values[name] = text_values
        if target.required:
            for i in np.flatnonzero(blank[name] & ~bad).tolist():
                problems.append(
                    Problem(
                        offset + i + 1,
                        name,
                        "required",
                        f"缺少必填值 {target.title_zh}",
                        f"{name}: required",
                    )
                )
                bad[i] = True
    external = pd.Series(values["external_id"])
    repeats = external.notna().to_numpy() & external.duplicated(keep="first").to_numpy()
    if repeats.any():
        first = {v: i for i, v in reversed(list(enumerate(values["external_id"]))) if v}
        for i in np.flatnonzero(repeats & ~bad).tolist():
            seen = offset + first[values["external_id"][i]] + 1
            problems.append(
                Problem(
                    offset + i + 1,
                    "external_id",
                    "duplicate",
                    f"外部编号与第 {seen} 行重复",
                    f"external id repeats row {seen}",
                )
            )
            bad[i] = True
    problems = [p for p in problems if p.row is None or not empty[p.row - offset - 1]]
    good = np.flatnonzero(~bad)
    # Z-order (Morton) along lon/lat, so that each grid piece's points sit on few pages.
    keys = _morton(lon[good], lat[good])
    order = np.argsort(keys, kind="stable")
    good, keys = good[order], keys[order]
    lines = _copy_lines(
        [
            list(map(str, (good + offset + 1).tolist())),
            list(map(str, keys.tolist())),
            _copy_text(values["category"][good]),
            _copy_text(values["source"][good]),
            _copy_text(values["reported_at"][good]),
            _copy_text(values["external_id"][good]),
            _copy_text(values["description"][good]),
            list(map(repr, lon[good].tolist())),
            list(map(repr, lat[good].tolist())),
        ]
    )
    writer.write(lines)
    return problems, int(empty.sum())


def _empty_rows(chunk: pd.DataFrame, candidates: np.ndarray) -> np.ndarray:
    """Rows with every cell blank, as a sheet's formatted but empty rows are (Excel writes
    them into a CSV as ``,,,,``; pandas already skips truly blank lines). Only rows
    without a longitude (``candidates``) are looked at."""
    empty = np.zeros(len(chunk), dtype=bool)
    rows = np.flatnonzero(candidates)
    if len(rows):
        cells = chunk.iloc[rows].to_numpy(dtype=object)
        empty[rows] = [all(is_blank(v) for v in row) for row in cells]
    return empty


class _StageWriter:
    """One ``COPY`` into the stage for the whole file, fed from a background thread.

    While PostgreSQL parses and stores one chunk, the next chunk is read and checked
    (the thread spends its time waiting on the socket, outside the GIL): on two cores
    the two halves of "read, check and stage" overlap. :meth:`close` ends the COPY and
    raises whatever it failed with; nothing else uses the connection meanwhile.
    """

    def __init__(self, conn: Connection, stage: str) -> None:
        raw_conn = conn.connection.driver_connection
        if not isinstance(raw_conn, psycopg.Connection):
            raise TypeError("the incident import needs the psycopg 3 driver")
        self._raw = raw_conn
        self._statement = sql.SQL(
            "COPY {} (id, zkey, category, source, at, external_id, description, lon, lat) "
            "FROM STDIN (FORMAT text)"
        ).format(sql.Identifier(stage))
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="incident-stage-copy")
        self._thread.start()

    def _run(self) -> None:
        ended = False  # close() has sent its end mark
        try:
            with self._raw.cursor() as cursor, cursor.copy(self._statement) as copy:
                while (lines := self._queue.get()) is not None:
                    copy.write(lines)
                ended = True
        except BaseException as exc:  # re-raised by close() in the importing thread
            self._error = exc
            while not ended:  # let write() and close() go on
                ended = self._queue.get() is None

    def write(self, lines: str) -> None:
        if self._error is None and lines:
            self._queue.put(lines)

    def close(self, raise_error: bool = True) -> None:
        """End the COPY (after what was written so far) and wait for it; ``raise_error``
        False when the import is failing anyway (its own error is the one to report)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None and raise_error:
            raise self._error


# COPY's text format: these characters are written as escapes, None as \\N.
_COPY_ESCAPES = (("\\", "\\\\"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))


def _copy_text(values: np.ndarray) -> list[str]:
    """Text values (str, or None / NaN for none) as COPY text-format fields.

    Plain list work: pandas' string methods call a Python function per value, and this
    runs for five columns of every row (1.1 s of a million-row import's staging).
    """
    cells = [None if _missing(v) else str(v) for v in values.tolist()]
    joined = "".join(v for v in cells if v is not None)  # one C-level search, not one a row
    if any(char in joined for char, _ in _COPY_ESCAPES):
        cells = [None if v is None else _escaped(v) for v in cells]
    return ["\\N" if v is None else v for v in cells]


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _escaped(text_value: str) -> str:
    for char, escaped in _COPY_ESCAPES:
        text_value = text_value.replace(char, escaped)
    return text_value


def _copy_lines(columns: list[list[str]]) -> str:
    """The rows of ``columns`` (fields already in COPY text format) as one COPY text.

    Built with C-level joins rather than a CSV writer: numbers arrive as Python's
    ``repr`` (the shortest text that reads back as the same double).
    """
    if not columns[0]:
        return ""
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"


# The box every accepted point lies in (the table's ``geom_in_china`` check): one Z-order
# for every import, so that rows of different chunks and files sort alike.
_CHINA_LON = (73.0, 136.0)
_CHINA_LAT = (18.0, 54.0)
_KEY_BITS = 31  # a coordinate: 63° / 2³¹ ≈ 3 cm; the key (62 bits) fits a bigint


def _morton(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Z-order (Morton) key of each point: points near each other get near keys."""

    def spread(v: np.ndarray, low: float, high: float) -> np.ndarray:
        scaled = np.clip((v - low) / (high - low), 0.0, 1.0) * ((1 << _KEY_BITS) - 1)
        q: np.ndarray = scaled.astype(np.uint64)
        for shift, mask in (
            (16, 0x0000FFFF0000FFFF),
            (8, 0x00FF00FF00FF00FF),
            (4, 0x0F0F0F0F0F0F0F0F),
            (2, 0x3333333333333333),
            (1, 0x5555555555555555),
        ):
            q = (q | (q << np.uint64(shift))) & np.uint64(mask)
        return q

    key: np.ndarray = spread(lon, *_CHINA_LON) | (spread(lat, *_CHINA_LAT) << np.uint64(1))
    keys: np.ndarray = key.astype(np.int64)
    return keys


def _repeats_across_chunks(conn: Connection, stage: str) -> list[tuple[Problem, dict[str, str]]]:
    """External ids that repeat a row of an earlier chunk: refused, and taken out."""
    rows = conn.execute(
        text(
            f"""
            DELETE FROM {stage} s USING (
                SELECT external_id, min(id) AS first FROM {stage}
                WHERE external_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1
            ) d
            WHERE s.external_id = d.external_id AND s.id <> d.first
            RETURNING s.id, d.first, s.external_id, s.category, s.source, s.description
            """
        )
    ).all()
    return [
        (
            Problem(
                int(r.id),
                "external_id",
                "duplicate",
                f"外部编号与第 {r.first} 行重复",
                f"external id repeats row {r.first}",
            ),
            {"external_id": r.external_id, "category": r.category, "source": r.source},
        )
        for r in rows
    ]


# Staged row ``s`` against the stored incident ``i`` of its external id: what differs.
_DIFFERS = " OR ".join(f"({condition})" for condition in FIELD_DIFFERS.values())


def _stored_otherwise(conn: Connection, stage: str) -> list[tuple[Problem, dict[str, str]]]:
    """Rows whose external id is a stored incident with other values: refused, and taken
    out. Re-importing a row unchanged changes nothing; a corrected row must not be
    counted "unchanged" while the stored incident keeps its old values, nor overwrite an
    incident whose handling has begun: it is named, with what differs."""
    names = list(FIELD_DIFFERS)
    flags = ", ".join(f"({sql}) AS f{k}" for k, sql in enumerate(FIELD_DIFFERS.values()))
    rows = conn.execute(
        text(
            f"""
            WITH taken AS (
                DELETE FROM {stage} s USING incident i WHERE i.external_id = s.external_id
                RETURNING s.id, s.external_id, s.category, s.source, i.id AS stored, {flags}
            )
            SELECT * FROM taken ORDER BY id
            """
        )
    ).all()
    out = []
    for r in rows:
        zh, en = field_names([name for k, name in enumerate(names) if getattr(r, f"f{k}")])
        out.append(
            (
                Problem(
                    int(r.id),
                    "external_id",
                    "stored-otherwise",
                    f"外部编号 {r.external_id} 已是事件 #{r.stored}，其{zh}与本行不同；"
                    "导入不会覆盖已存事件",
                    f"external id {r.external_id} is incident #{r.stored} already, whose "
                    f"{en} from this row's; an import never overwrites a stored incident",
                ),
                {"external_id": r.external_id, "category": r.category, "source": r.source},
            )
        )
    return out


def _refuse_stored_outside(conn: Connection, stage: str, spec: LayerSpec, scope: AreaScope) -> None:
    """An external id is unique city-wide: one held by an incident outside ``scope`` is
    refused without showing or describing that incident, as ``POST /incidents`` does."""
    condition, params = scope_sql(spec, scope, "i")
    taken = conn.execute(
        text(
            f"SELECT s.id, s.external_id FROM {stage} s JOIN incident i "
            f"ON i.external_id = s.external_id WHERE NOT {condition} ORDER BY s.id LIMIT 1"
        ),
        params,
    ).first()
    if taken is not None:
        raise PermissionDeniedError(
            f"第 {taken.id} 行的外部编号 {taken.external_id} 属于您管辖区域之外的事件，"
            "未导入任何数据",
            f"row {taken.id}: external id {taken.external_id} belongs to an incident outside "
            "your area; nothing was imported",
        )


def _refuse_placed_outside(
    conn: Connection, result: assignment.BulkResult, spec: LayerSpec, scope: AreaScope
) -> None:
    """Rows the assignment placed outside ``scope``: the account may not report there."""
    condition, params = scope_sql(spec, scope, "o")
    outside = conn.execute(
        text(f"SELECT count(*) FROM {result.relation()} o WHERE NOT {condition}"), params
    ).scalar_one()
    if outside:
        raise PermissionDeniedError(
            f"有 {outside} 行不在您的管辖区域内，未导入任何数据",
            f"{outside} rows lie outside your area; nothing was imported",
        )


def _outside_problems(
    conn: Connection, stage: str, ids: list[int]
) -> list[tuple[Problem, dict[str, str]]]:
    if not ids:
        return []
    rows = conn.execute(
        text(f"SELECT id, external_id, lon, lat FROM {stage} WHERE id = ANY(:ids)"), {"ids": ids}
    ).all()
    conn.execute(text(f"DELETE FROM {stage} WHERE id = ANY(:ids)"), {"ids": ids})
    return [
        (
            Problem(
                int(r.id),
                "lon/lat",
                "outside-city",
                "位置不在本市任何镇街范围内",
                "the point lies outside every township of the city",
            ),
            {"external_id": r.external_id or "", "lon": str(r.lon), "lat": str(r.lat)},
        )
        for r in rows
    ]


def _methods(conn: Connection, result: assignment.BulkResult) -> dict[str, int]:
    methods = {"inside": result.fast} if result.fast else {}
    exact = result.tables[2]
    for method, n in conn.execute(text(f"SELECT assign_method, count(*) FROM {exact} GROUP BY 1")):
        methods[str(method)] = methods.get(str(method), 0) + int(n)
    return methods


def _insert(
    conn: Connection,
    stage: str,
    result: assignment.BulkResult,
    lap: Callable[[str], None],
    may_rebuild: bool = True,
) -> int:
    """Every staged row with its assignment, in one ``INSERT`` (the creation is implied
    by the row itself: ``history`` shows it without a stored transition).

    Rows are written in Z-order of their points, not in file order: the incidents of
    one map tile then share a few heap pages instead of one page each, which halved
    the PostgreSQL work of a dense incident tile (``scripts/bench_tiles.py``). Ids
    follow that order; the file's row numbers stay in every report.

    The layer's statement triggers are skipped for the insert and their work done once
    from the assigned rows (:func:`gridgov.layers.map_support.bulk_insert`): no
    transition table of every inserted row, and each point reprojected once, in
    parallel, for its cluster cells.

    When the import is larger than the table (a first load), the table's secondary
    indexes, its unique constraint (external id) and its foreign keys are dropped and
    created again afterwards, in this transaction, as PostgreSQL's "Populating a
    Database" advises: building an index from sorted rows is several times cheaper than
    inserting into it row by row, and adding a foreign key checks every row in one join
    where the constraint's trigger would run one query per row and key (8 of them: three
    quarters of the insert's time). Integrity is the same: re-adding the unique
    constraint and each key validates every row, and one bad row fails the import. It
    takes ACCESS EXCLUSIVE locks on ``incident`` and the tables its keys refer to (grids,
    admin areas, units) until commit, so readers of those wait too: that is why it is
    kept to loads that at least double the table, and never done when ``may_rebuild`` is False.
    """
    outputs = ", ".join(assignment.OUTPUT_COLUMNS)
    count = result.fast + result.exact - len(result.outside)
    big = count >= assignment.PARALLEL_MIN_ROWS
    stored = conn.execute(
        text("SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'incident'::regclass")
    ).scalar_one()
    first_load = may_rebuild and big and count > stored
    rebuild = _secondary_indexes(conn) if first_load else []
    keys = _foreign_keys(conn) if first_load else []
    uniques = _unique_constraints(conn) if first_load else []
    if keys:
        # Parents first, then incidents: the order every writer of both takes.
        parents = sorted({parent for _name, _definition, parent in keys})
        conn.execute(text(f"LOCK TABLE {', '.join(parents)} IN ACCESS EXCLUSIVE MODE"))
        conn.execute(text("LOCK TABLE incident IN ACCESS EXCLUSIVE MODE"))
        conn.execute(
            text(
                "ALTER TABLE incident "
                + ", ".join(f"DROP CONSTRAINT {name}" for name, _d, _p in keys)
            )
        )
    if uniques:
        conn.execute(
            text(
                "ALTER TABLE incident "
                + ", ".join(f"DROP CONSTRAINT {name}" for name, _d in uniques)
            )
        )
    for name, _definition in rebuild:
        conn.execute(text(f"DROP INDEX {name}"))
    # The rows to write, joined with their assignment, in Z-order, and each point's Web
    # Mercator position for the cluster cells: built by one CREATE TABLE AS, which may
    # use parallel workers (an INSERT … SELECT may not: the join, the sort and the
    # projection would all run on one core).
    assigned = assignment.scratch_name("incident_assigned")
    with assignment.parallel_plan(conn, enabled=big):
        conn.execute(
            text(
                f"""
                CREATE UNLOGGED TABLE {assigned} AS
                SELECT s.category, s.source, s.at, s.external_id, s.description, s.geom,
                       {", ".join("o." + c for c in assignment.OUTPUT_COLUMNS)},
                       ST_X(m.p) AS x, ST_Y(m.p) AS y
                FROM {stage} s JOIN {result.relation()} o ON o.id = s.id
                CROSS JOIN LATERAL (SELECT ST_Transform(s.geom, 3857) AS p OFFSET 0) m
                ORDER BY s.zkey, s.id
                """
            )
        )
        # Read back in the order it was written (no scan starting mid-table); for the rest
        # of this transaction only.
        conn.execute(text("SET LOCAL synchronize_seqscans = off"))
        with bulk_insert(
            conn,
            "incident",
            f"SELECT at AS reported_at FROM {assigned}",
            f"SELECT x, y FROM {assigned}",
        ):
            written = conn.execute(
                text(
                    f"""
                    INSERT INTO incident (category, source, reported_at, external_id,
                                          description, status, geom, assigned_at, {outputs})
                    SELECT category, source, at, external_id, description, 'reported', geom,
                           now(), {outputs}
                    FROM {assigned}
                    """
                )
            ).rowcount
    conn.execute(text(f"DROP TABLE {assigned}"))
    lap("insert")
    if rebuild or uniques:
        # Index builds sort in memory, and btree builds may use a parallel worker.
        conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        conn.execute(text("SET LOCAL max_parallel_maintenance_workers = 2"))
    for name, definition in uniques:
        conn.execute(text(f"ALTER TABLE incident ADD CONSTRAINT {name} {definition}"))
    for _name, definition in rebuild:
        conn.execute(text(definition))
    for name, definition, _parent in keys:
        conn.execute(text(f"ALTER TABLE incident ADD CONSTRAINT {name} {definition}"))
    if rebuild or keys or uniques:
        lap("rebuild indexes and keys")
    return int(written)


def _foreign_keys(conn: Connection) -> list[tuple[str, str, str]]:
    """Name, definition and referenced table of each foreign key of ``incident``."""
    rows = conn.execute(
        text(
            """
            SELECT conname, pg_get_constraintdef(oid), confrelid::regclass::text
            FROM pg_constraint WHERE conrelid = 'incident'::regclass AND contype = 'f'
            ORDER BY conname
            """
        )
    ).all()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def _unique_constraints(conn: Connection) -> list[tuple[str, str]]:
    """Name and definition of each unique constraint of ``incident`` (external id)."""
    rows = conn.execute(
        text(
            """
            SELECT conname, pg_get_constraintdef(oid)
            FROM pg_constraint WHERE conrelid = 'incident'::regclass AND contype = 'u'
            ORDER BY conname
            """
        )
    ).all()
    return [(str(r[0]), str(r[1])) for r in rows]


def _secondary_indexes(conn: Connection) -> list[tuple[str, str]]:
    """Name and definition of each index of ``incident`` that backs no constraint."""
    rows = conn.execute(
        text(
            """
            SELECT c.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x
            JOIN pg_class c ON c.oid = x.indexrelid
            WHERE x.indrelid = 'incident'::regclass
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
            ORDER BY c.relname
            """
        )
    ).all()
    return [(str(r[0]), str(r[1])) for r in rows]


def _write_rejects(path: Path, rejected: list[tuple[int, dict[str, str], Problem]]) -> None:
    """The refused rows, one line per row with all its reasons, as ``gridgov layer import``
    writes them (:func:`rejects_line`)."""
    fields = sorted({k for _, row, _ in rejected for k in row})
    by_row: dict[int, tuple[dict[str, str], list[Problem]]] = {}
    for row_no, row, problem in rejected:
        by_row.setdefault(row_no, (row, []))[1].append(problem)
    write_rejects_file(
        path,
        [*REJECTS_HEADER, *fields],
        (
            rejects_line(row_no, problems, [row.get(f, "") for f in fields])
            for row_no, (row, problems) in sorted(by_row.items())
        ),
    )
