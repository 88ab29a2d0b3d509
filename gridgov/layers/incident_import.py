"""Batch import of incidents: any size, streamed in chunks, assigned set-based in PostGIS.

Each chunk is read, checked row by row (coordinates, category, source, time), copied
into a temporary stage, assigned by :mod:`gridgov.layers.assignment` and inserted with
its assignment in one statement. All chunks share one transaction: nothing is written
unless every row is valid (or, with ``skip_invalid``, the valid ones). Rows whose external
id is already stored are left as they are, so re-importing a file changes nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from sqlalchemy import Connection, text

from gridgov.gis.coords import PROBLEM_MESSAGES, convert_with_problems, parse_crs
from gridgov.layers import aggregates, assignment
from gridgov.layers.io.encoding import codec_name, sniff
from gridgov.layers.io.errors import ImportRefusedError, ImportUsageError, UnreadableFileError
from gridgov.layers.io.mapping import LAT_NAMES, LON_NAMES, parse_map
from gridgov.layers.io.report import ImportReport, Problem
from gridgov.layers.io.values import convert_column, targets
from gridgov.layers.registry import Registry

CHUNK_ROWS = 100_000
FIELDS = ("category", "source", "reported_at", "external_id", "description")
ALIASES = {
    "category": ("category", "类别", "事件类别", "type"),
    "source": ("source", "来源", "事件来源"),
    "reported_at": ("reported_at", "上报时间", "时间", "time", "datetime"),
    "external_id": ("external_id", "编号", "外部编号", "id", "事件编号"),
    "description": ("description", "描述", "事件描述", "内容"),
}
Progress = Callable[[int], None]


@dataclass
class IncidentImportReport(ImportReport):
    """An :class:`ImportReport` that also counts rows left unchanged and assignment rules."""

    layer: str = "incident"
    mode: str = "append"
    rows_unchanged: int = 0  # external id already stored: left as it is
    by_method: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "rows_unchanged": self.rows_unchanged,
            "by_method": self.by_method,
        }


@dataclass(frozen=True)
class Columns:
    """Which source column feeds each field."""

    x: str
    y: str
    fields: dict[str, str]


def _plan(header: list[str], mapping: list[tuple[str, str]]) -> Columns:
    explicit = {dest: src for src, dest in mapping}
    unknown = sorted(set(explicit) - set(FIELDS) - {"lon", "lat", "x", "y"})
    if unknown:
        raise ImportUsageError(
            f"--map 的目标列未知：{unknown}", f"--map names unknown columns {unknown}"
        )
    lowered = {h.strip().lower(): h for h in header}

    def find(dest: str, names: tuple[str, ...]) -> str | None:
        if dest in explicit:
            if explicit[dest] not in header:
                raise ImportUsageError(
                    f"文件中没有列 {explicit[dest]}", f"no column {explicit[dest]}"
                )
            return explicit[dest]
        return next((lowered[n] for n in names if n in lowered), None)

    x = find("lon", LON_NAMES) or find("x", ())
    y = find("lat", LAT_NAMES) or find("y", ())
    if x is None or y is None:
        raise ImportUsageError("找不到经纬度列（lon/lat、经度/纬度）", "no lon/lat columns found")
    fields = {f: c for f in FIELDS if (c := find(f, ALIASES[f])) is not None}
    missing = [f for f in ("category", "source", "reported_at") if f not in fields]
    if missing:
        raise ImportUsageError(f"缺少必填列：{missing}", f"required columns missing: {missing}")
    return Columns(x, y, fields)


def _chunks(path: Path, encoding: str | None) -> tuple[str | None, Iterator[pd.DataFrame]]:
    """The file's rows as text, a chunk at a time (bounded memory for any size)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open("rb") as handle:
            sample = handle.read(1 << 20)
        codec = (
            codec_name(encoding) if encoding else sniff(sample[: sample.rfind(b"\n") + 1] or sample)
        )
        if codec is None:
            raise UnreadableFileError(
                "无法识别文件的文字编码，请用 --encoding 指定",
                "cannot tell the file's text encoding: give --encoding",
            )
        reader = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            encoding=codec,
            chunksize=CHUNK_ROWS,
            encoding_errors="strict",
        )
        return codec, iter(reader)
    if suffix in {".xlsx", ".xlsm"}:
        return None, _excel_chunks(path)
    if suffix in {".geojson", ".json"}:
        return "utf-8", _geojson_chunks(path)
    raise ImportUsageError(
        f"不支持的文件类型 {suffix}（支持 CSV、Excel、GeoJSON）",
        f"unsupported file type {suffix} (CSV, Excel, GeoJSON)",
    )


def _excel_chunks(path: Path) -> Iterator[pd.DataFrame]:
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    rows = book.worksheets[0].iter_rows(values_only=True)
    header = [str(h) for h in next(rows)]
    batch: list[list[object]] = []
    for row in rows:
        batch.append(["" if v is None else v for v in row])
        if len(batch) == CHUNK_ROWS:
            yield pd.DataFrame(batch, columns=header).astype(str)
            batch = []
    if batch:
        yield pd.DataFrame(batch, columns=header).astype(str)
    book.close()


def _geojson_chunks(path: Path) -> Iterator[pd.DataFrame]:
    import pyogrio

    total = pyogrio.read_info(path)["features"]
    for start in range(0, max(total, 0), CHUNK_ROWS):
        frame = pyogrio.read_dataframe(path, skip_features=start, max_features=CHUNK_ROWS)
        points = frame.geometry
        table = pd.DataFrame(frame.drop(columns=frame.geometry.name)).astype(str)
        table["x"] = points.x.astype(str)
        table["y"] = points.y.astype(str)
        yield table


def import_incidents(
    conn: Connection,
    registry: Registry,
    path: Path,
    crs: str,
    tolerance_m: float,
    *,
    encoding: str | None = None,
    mapping: tuple[str, ...] = (),
    skip_invalid: bool = False,
    rejects_path: Path | None = None,
    progress: Progress = lambda _rows: None,
) -> IncidentImportReport:
    """Import ``path`` inside the caller's transaction (see the module docstring)."""
    if not path.is_file():
        raise UnreadableFileError(f"文件不存在：{path.name}", f"no such file: {path.name}")
    crs = parse_crs(crs)
    pairs = parse_map(mapping)
    spec = registry.get("incident")
    field_targets = {t.name: t for t in targets(spec) if t.name in FIELDS}
    report = IncidentImportReport()
    codec, chunks = _chunks(path, encoding)
    report.encoding = codec
    _create_stage(conn)
    rejected: list[tuple[int, dict[str, str], Problem]] = []
    offset = 0
    columns: Columns | None = None
    try:
        for chunk in chunks:
            if columns is None:
                columns = _plan(list(chunk.columns), pairs)
            problems = _stage_chunk(conn, chunk, columns, crs, field_targets, offset)
            writing = skip_invalid or (not report.problems and not problems)
            placed_problems, methods, written, unchanged = _assign_chunk(
                conn, offset, len(chunk), tolerance_m, write=writing
            )
            problems += placed_problems
            for problem in problems:
                assert problem.row is not None
                rejected.append((problem.row, dict(chunk.iloc[problem.row - offset - 1]), problem))
            report.problems += problems
            for method, n in methods.items():
                report.by_method[method] = report.by_method.get(method, 0) + n
            report.rows_written += written
            report.rows_unchanged += unchanged
            report.rows_read += len(chunk)
            offset += len(chunk)
            progress(len(chunk))
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(
            f"第 {offset + 1} 行之后的文字不是 {codec} 编码，请用 --encoding 指定",
            f"text after row {offset + 1} is not {codec}: give --encoding",
        ) from exc
    finally:
        conn.execute(text("DROP TABLE IF EXISTS incident_stage"))
    report.problems.sort(key=lambda p: p.row or 0)
    if report.problems and not skip_invalid:
        report.rows_written = 0
        raise ImportRefusedError(report)
    aggregates.refresh(conn)  # heatmaps see the new incidents at once
    if rejected and rejects_path is not None:
        _write_rejects(rejects_path, rejected)
        report.rejects_file = str(rejects_path)
    return report


def _create_stage(conn: Connection) -> None:
    conn.execute(text("DROP TABLE IF EXISTS incident_stage"))
    conn.execute(
        text(
            """
            CREATE TEMP TABLE incident_stage (
                row_no bigint PRIMARY KEY, category text, source text, reported_at timestamptz,
                external_id text, description text, lon float8, lat float8
            ) ON COMMIT DROP
            """
        )
    )


def _stage_chunk(
    conn: Connection,
    chunk: pd.DataFrame,
    columns: Columns,
    crs: str,
    field_targets: dict[str, Any],
    offset: int,
) -> list[Problem]:
    """Check one chunk's rows; copy the good ones into the stage. Returns the problems."""
    n = len(chunk)
    problems: list[Problem] = []
    bad = np.zeros(n, dtype=bool)
    x = pd.to_numeric(chunk[columns.x].str.strip(), errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(chunk[columns.y].str.strip(), errors="coerce").to_numpy(dtype=float)
    lon, lat, codes = convert_with_problems(x, y, crs)
    for i in np.flatnonzero(codes).tolist():
        zh, en = PROBLEM_MESSAGES[int(codes[i])]
        kind = {1: "nan", 2: "outside-china", 3: "swapped"}.get(int(codes[i]), "coordinates")
        problems.append(Problem(offset + int(i) + 1, "lon/lat", kind, zh, en))
        bad[i] = True
    values: dict[str, list[object]] = {}
    for name in FIELDS:
        target = field_targets[name]
        source = columns.fields.get(name)
        raw = chunk[source].tolist() if source else None
        converted, value_problems = convert_column(target, raw, n)
        for p in value_problems:
            problems.append(
                Problem(offset + p.index + 1, p.column, p.kind, p.reason_zh, p.reason_en)
            )
            bad[p.index] = True
        if target.required:
            for i in [k for k, v in enumerate(converted) if v is None]:
                if not bad[i]:
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
        values[name] = converted
    seen: dict[str, int] = {}
    for i, ext in enumerate(values["external_id"]):
        if ext is None:
            continue
        if ext in seen:
            problems.append(
                Problem(
                    offset + i + 1,
                    "external_id",
                    "duplicate",
                    f"外部编号与第 {seen[ext]} 行重复",
                    f"external id repeats row {seen[ext]}",
                )
            )
            bad[i] = True
        else:
            seen[str(ext)] = offset + i + 1
    good = np.flatnonzero(~bad).tolist()
    raw_conn = conn.connection.driver_connection
    if not isinstance(raw_conn, psycopg.Connection):
        raise TypeError("the incident import needs the psycopg 3 driver")
    statement = sql.SQL(
        "COPY incident_stage (row_no, category, source, reported_at, external_id, description,"
        " lon, lat) FROM STDIN"
    )
    with raw_conn.cursor() as cursor, cursor.copy(statement) as copy:
        for i in good:
            copy.write_row(
                (
                    offset + int(i) + 1,
                    values["category"][i],
                    values["source"][i],
                    values["reported_at"][i],
                    values["external_id"][i],
                    values["description"][i],
                    float(lon[i]),
                    float(lat[i]),
                )
            )
    return problems


def _assign_chunk(
    conn: Connection, offset: int, count: int, tolerance_m: float, *, write: bool
) -> tuple[list[Problem], dict[str, int], int, int]:
    """Assign the staged rows of one chunk and, if ``write``, insert the new ones."""
    bounds = {"low": offset + 1, "high": offset + count}
    unchanged = int(
        conn.execute(
            text(
                "SELECT count(*) FROM incident_stage s "
                "JOIN incident i ON i.external_id = s.external_id "
                "WHERE s.row_no BETWEEN :low AND :high"
            ),
            bounds,
        ).scalar_one()
    )
    assignment.prepare_input(conn)
    conn.execute(
        text(
            """
        INSERT INTO assign_input (id, geom, at)
        SELECT s.row_no, ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4490), s.reported_at
        FROM incident_stage s
        WHERE s.row_no BETWEEN :low AND :high
          AND NOT EXISTS (SELECT 1 FROM incident i WHERE i.external_id = s.external_id)
        """
        ),
        bounds,
    )
    assignment.run(conn, tolerance_m)
    problems = [
        Problem(
            int(row),
            "lon/lat",
            "outside-city",
            "位置不在本市任何镇街范围内",
            "the point lies outside every township of the city",
        )
        for row in assignment.outside(conn)
    ]
    methods = {
        str(m): int(n)
        for m, n in conn.execute(
            text("SELECT assign_method, count(*) FROM assign_output GROUP BY 1")
        )
    }
    written = 0
    if write:
        outputs = ", ".join(assignment.OUTPUT_COLUMNS)
        written = conn.execute(
            text(
                f"""
            INSERT INTO incident (category, source, reported_at, external_id, description,
                                  status, geom, assigned_at, {outputs})
            SELECT s.category, s.source, s.reported_at, s.external_id, s.description,
                   'reported', ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4490), now(),
                   {", ".join("o." + c for c in assignment.OUTPUT_COLUMNS)}
            FROM incident_stage s JOIN assign_output o ON o.id = s.row_no
            ON CONFLICT (external_id) DO NOTHING
            """
            )
        ).rowcount
        conn.execute(
            text(
                """
            INSERT INTO incident_transition (incident_id, from_status, to_status, at, note)
            SELECT i.id, NULL, 'reported', i.reported_at, '批量导入 (batch import)'
            FROM incident i JOIN incident_stage s ON s.external_id = i.external_id
            JOIN assign_output o ON o.id = s.row_no
            """
            )
        ) if written else None
    assignment.finish(conn)
    return problems, methods, written, unchanged


def _write_rejects(path: Path, rejected: list[tuple[int, dict[str, str], Problem]]) -> None:
    """The refused rows with their reasons, UTF-8 with BOM so that Excel reads Chinese."""
    fields = sorted({k for _, row, _ in rejected for k in row})
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "reason_zh", "reason_en", *fields])
        for row_no, row, problem in sorted(rejected, key=lambda r: r[0]):
            writer.writerow(
                [row_no, problem.reason_zh, problem.reason_en, *[row.get(f, "") for f in fields]]
            )
