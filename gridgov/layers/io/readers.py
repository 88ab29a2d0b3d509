"""Readers: any supported file → a :class:`SourceTable` of raw values and geometries.

Vector formats go through pyogrio (GDAL); CSV through pandas after this module has decoded
the bytes itself (so that the encoding is detected, not assumed); Excel through openpyxl.
Shapefile text is read as raw bytes (ISO-8859-1 maps every byte to one character) and
decoded here, so that a GBK file without ``.cpg`` is recognised rather than garbled.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import tempfile
import warnings
import zipfile
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from gridgov.errors import InvalidInputError
from gridgov.gis.coords import parse_crs
from gridgov.layers.io import encoding as enc
from gridgov.layers.io.csv_fields import refuse_short_records
from gridgov.layers.io.errors import ImportUsageError, UnreadableFileError
from gridgov.layers.io.formats import Format, format_of

RAW = "ISO-8859-1"  # one byte, one character: the bytes survive untouched
ObjectArray = np.ndarray[Any, np.dtype[np.object_]]


@dataclass
class SourceTable:
    """What a file holds, before any mapping or checking. Rows are 0-based here."""

    format: Format
    fields: list[str]
    columns: dict[str, list[object]]
    count: int
    geometry: ObjectArray | None = None  # shapely geometries (None where missing)
    crs: str | None = None  # the file's own CRS, normalised by ``parse_crs``
    encoding: str | None = None
    # (row, reason_zh, reason_en) of geometries GEOS could not even build from the file
    geometry_problems: list[tuple[int, str, str]] = field(default_factory=list)
    header_row: int = 1  # line (CSV) or sheet row (Excel) of the header; above it a title
    rows_empty: int = 0  # rows with every cell blank, left out
    part: str | None = None  # the Excel sheet or GeoPackage layer read
    other_parts: list[str] = field(default_factory=list)  # the file's parts not read
    # Each row's record number in the file (from the line after the header, empty rows
    # counted), so that problems name the row people see; None: 1, 2, 3, …
    record_numbers: list[int] | None = None

    def record_number(self, index: int) -> int:
        """The file's number for row ``index`` (0-based here)."""
        return index + 1 if self.record_numbers is None else self.record_numbers[index]


def unreadable(path: Path, cause: object) -> UnreadableFileError:
    return UnreadableFileError(
        f"无法读取文件 {path.name}：文件损坏，或内容与扩展名不符",
        f"cannot read {path.name}: the file is damaged or not what its extension says",
        cause=str(cause),
    )


def declared_crs(crs: Any) -> str | None:
    """The file's CRS as ``parse_crs`` names it; a CRS that cannot be identified is refused
    (guessing would silently move every feature)."""
    if crs is None:
        return None
    try:
        parsed = CRS.from_user_input(crs)
    except CRSError:
        raise ImportUsageError(
            f"无法识别文件自带的坐标系（{crs}）", f"the file's own CRS ({crs}) is not a CRS"
        ) from None
    if len(parsed.axis_info) > 2:
        # GDAL declares a file with Z values as 3-D (EPSG:4979): name its horizontal CRS,
        # so that the Z values themselves are what gets refused, feature by feature.
        parsed = parsed.to_2d()
    code = parsed.to_epsg(min_confidence=25)
    if code is None and parsed.to_authority(min_confidence=25) == ("OGC", "CRS84"):
        code = 4326  # WGS 84 in lon/lat order: how GeoJSON files name it
    try:
        if code is None:
            raise InvalidInputError("unidentified")
        return parse_crs(f"EPSG:{code}")
    except InvalidInputError:
        raise ImportUsageError(
            f"无法识别文件自带的坐标系（{parsed.name}）；请转换为 CGCS2000 或 WGS84 后再导入",
            f"the file's own CRS ({parsed.name}) is not one gridgov can convert",
        ) from None


def _values(series: pd.Series[Any]) -> list[object]:
    values: list[object] = series.astype(object).where(series.notna(), None).tolist()
    return values


def unpack_zip(path: Path, into: Path) -> Path:
    """The one readable file inside an uploaded .zip (a shapefile travels as one)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                target = (into / member.filename).resolve()
                if not target.is_relative_to(into.resolve()):
                    raise unreadable(path, "zip member outside the archive root")
            archive.extractall(into)
    except zipfile.BadZipFile as exc:
        raise unreadable(path, exc) from exc
    found = [
        p
        for p in sorted(into.rglob("*"))
        if p.is_file()
        and p.suffix.lower() in {".shp", ".gpkg", ".geojson", ".json", ".csv"}
        and not p.name.startswith(".")
        and "__MACOSX" not in p.parts
    ]
    if len(found) != 1:
        raise UnreadableFileError(
            "压缩包中须恰好有一个可读取的文件（.shp 及其 .dbf/.shx/.prj，或 .gpkg/.geojson/.csv）",
            "the zip must hold exactly one readable file (a .shp with its parts, or one "
            ".gpkg / .geojson / .csv)",
        )
    return found[0]


def read_source(
    path: Path,
    encoding: str | None,
    layer_hint: str | None = None,
    header_names: frozenset[str] = frozenset(),
    part: str | None = None,
) -> SourceTable:
    """Read ``path`` (any supported format); ``encoding`` overrides detection. In a CSV
    or Excel file the header is the first row naming at least three ``header_names``
    (lower case), within the first few (:func:`header_index`). ``part`` chooses the Excel
    sheet or GeoPackage layer (:func:`choose_part`; else the one named ``layer_hint``,
    else the first)."""
    if not path.is_file():
        raise UnreadableFileError(f"找不到文件 {path.name}", f"no such file: {path.name}")
    codec = enc.codec_name(encoding) if encoding else None
    if path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="gridgov-import-") as tmp:
            inner = unpack_zip(path, Path(tmp))
            return read_source(inner, encoding, layer_hint, header_names, part)
    fmt = format_of(path)
    if part is not None and not (fmt.excel or fmt is Format.GPKG):
        raise sheet_not_applicable()
    if fmt is Format.CSV:
        return _read_csv(path, codec, header_names)
    chosen: str | None = None
    if fmt.excel:
        sheet = open_sheet(path, header_names, part, layer_hint)
        parts, chosen = sheet.sheets, sheet.name
        table = _read_excel(fmt, sheet, header_names)
    else:
        parts = _gpkg_layers(path) if fmt is Format.GPKG else []
        chosen = choose_part(path, parts, part, layer_hint) if parts else None
        table = _read_vector(path, fmt, codec, chosen)
    table.part = chosen
    table.other_parts = [name for name in parts if name != chosen]
    return table


def sheet_not_applicable() -> ImportUsageError:
    return ImportUsageError(
        "--sheet 只用于 Excel 工作簿（工作表）和 GeoPackage（图层）",
        "--sheet applies to Excel workbooks (a sheet) and GeoPackages (a layer) only",
    )


def name_the_sheet(
    error: ImportUsageError, sheet: str | None, others: list[str]
) -> ImportUsageError:
    """``error`` (columns the sheet lacks) saying which sheet was read, when the workbook
    has others: the data may well be on one of them."""
    if not others:
        return error
    return type(error)(
        f"{error.detail_zh}（读取的是工作表“{sheet}”；另有：{'、'.join(others)}，"
        "可用 --sheet 选择）",
        f"{error.detail_en} (read sheet {sheet!r}; the workbook also has "
        f"{', '.join(others)}: choose one with --sheet)",
        public=error.public,
        **error.private,
    )


def choose_part(path: Path, parts: list[str], wanted: str | None, hint: str | None) -> str:
    """The sheet of a workbook (or layer of a GeoPackage) to read: ``wanted`` by its name or
    its number from 1; without it the one named ``hint`` (the target layer's id), else
    the first. A name or number the file lacks is refused with the ones it has."""
    if not parts:
        raise UnreadableFileError(f"{path.name} 中没有工作表或图层", f"{path.name} holds no sheet")
    if wanted is None:
        return hint if hint in parts else parts[0]
    if wanted in parts:
        return wanted
    number = wanted.strip()
    if number.isdigit() and 1 <= int(number) <= len(parts):
        return parts[int(number) - 1]
    listed = "、".join(f"{i}. {name}" for i, name in enumerate(parts, 1))
    raise ImportUsageError(
        f"{path.name} 中没有工作表或图层“{wanted}”，可用（名称或序号）：{listed}",
        f"{path.name} has no sheet or layer {wanted!r}; it has (by name or number): "
        + ", ".join(f"{i}. {name}" for i, name in enumerate(parts, 1)),
    )


def _gpkg_layers(path: Path) -> list[str]:
    try:
        return [str(row[0]) for row in pyogrio.list_layers(path)]
    except Exception as exc:  # GDAL's errors are many; all mean "cannot read"
        raise unreadable(path, exc) from exc


def _read_vector(path: Path, fmt: Format, codec: str | None, layer: str | None) -> SourceTable:
    source: Path | bytes = path
    options: dict[str, Any] = {}
    try:
        if fmt is Format.GPKG:
            options["layer"] = layer
        if fmt is Format.SHP:
            options["encoding"] = RAW
        elif fmt is Format.GEOJSON:
            text, _ = enc.decode_text(path.read_bytes(), codec)
            source = text.encode("utf-8")
            # Dates stay text: GDAL would cut timestamps to milliseconds.
            options["DATE_AS_STRING"] = "YES"
        frame, geometry, declared, broken = _read_frame(source, options)
    except (InvalidInputError, MemoryError):
        raise
    except Exception as exc:  # GDAL's errors are many; all mean "cannot read"
        raise unreadable(path, exc) from exc
    crs = declared_crs(declared)
    names = [str(c) for c in frame.columns if c != "geometry"]
    columns = {name: _values(frame[name]) for name in names}
    chosen = enc.UTF8
    if fmt is Format.SHP:
        names, columns, chosen = _decode_shapefile(path, names, columns, codec)
    return SourceTable(fmt, names, columns, len(frame), geometry, crs, chosen, broken)


def _opened(source: Path | bytes) -> Path | io.BytesIO:
    return io.BytesIO(source) if isinstance(source, bytes) else source


def _read_frame(
    source: Path | bytes, options: dict[str, Any]
) -> tuple[pd.DataFrame, ObjectArray, Any, list[tuple[int, str, str]]]:
    """Attributes, geometries, the declared CRS, and the features whose geometry GEOS could
    not build at all (a ring that is not closed, a ring of fewer than 4 points).

    Normally one read; only when a geometry is unbuildable are the attributes and the raw
    WKB read apart, so that the bad feature is named instead of the whole file refused.
    """
    try:
        frame = pyogrio.read_dataframe(_opened(source), **options)
    except shapely.errors.GEOSException:
        pass
    else:
        return frame, np.asarray(frame.geometry.array, dtype=object), frame.crs, []
    frame = pyogrio.read_dataframe(_opened(source), read_geometry=False, **options)
    meta, _, wkb, _ = pyogrio.raw.read(_opened(source), columns=[], **options)
    geometry: ObjectArray = np.asarray(shapely.from_wkb(wkb, on_invalid="ignore"), dtype=object)
    broken = [
        (int(i), *unbuildable_reason(wkb[i]))
        for i in np.flatnonzero(shapely.is_missing(geometry))
        if wkb[i] is not None
    ]
    return frame, geometry, meta.get("crs"), broken


_GEOS_REASONS = {
    "closed linestring": ("环未闭合（首尾点不同）", "Ring not closed"),
    "number of points in LinearRing": ("环的点数少于 4 个", "Too few points in ring"),
    "must be 0 or >= 2": ("线的点数少于 2 个", "Too few points in line"),
}


def unbuildable_reason(wkb: bytes) -> tuple[str, str]:
    """Why GEOS refused this WKB, and where (the first vertex, as ST_IsValidDetail would)."""
    try:
        shapely.from_wkb(wkb)
    except shapely.errors.GEOSException as exc:
        message = str(exc)
    else:  # pragma: no cover - only called for WKB that failed
        message = "unknown"
    zh, en = next(
        (pair for key, pair in _GEOS_REASONS.items() if key in message),
        ("几何图形无法解析", message.split(":", 1)[-1].strip()),
    )
    where = ""
    fixed = shapely.from_wkb(wkb, on_invalid="fix")
    if fixed is not None and not fixed.is_empty:
        x, y = shapely.get_coordinates(fixed)[0]
        where = f"[{x:.7g} {y:.7g}]"
    return (
        f"几何图形无效（{zh}{where}），请在源数据中修正（不会自动修复）",
        f"invalid geometry ({en}{where}); fix it at the source (never repaired here)",
    )


def _decode_shapefile(
    path: Path, names: list[str], columns: dict[str, list[object]], codec: str | None
) -> tuple[list[str], dict[str, list[object]], str]:
    """Re-decode the raw DBF text with the ``.cpg``'s, the user's or the detected codec."""
    cpg = path.with_suffix(".cpg")
    if codec is None and cpg.is_file():
        codec = enc.codec_name(cpg.read_text("ascii", errors="replace"))
    raw_names = [enc.complete_name(name.encode(RAW)) for name in names]
    cells = [enc.Cell(None, None, raw) for raw in raw_names]
    for name in names:
        cells += [
            enc.Cell(i + 1, name, v.encode(RAW))
            for i, v in enumerate(columns[name])
            if isinstance(v, str) and not v.isascii()
        ]
    chosen = enc.choose(cells, codec)
    decoded_names = [enc.decode_name(raw, chosen) for raw in raw_names]
    decoded = {
        new: [v.encode(RAW).decode(chosen) if isinstance(v, str) else v for v in columns[old]]
        for old, new in zip(names, decoded_names, strict=True)
    }
    return decoded_names, decoded, chosen


def _read_csv(path: Path, codec: str | None, header_names: frozenset[str]) -> SourceTable:
    text, chosen = enc.decode_text(path.read_bytes(), codec)
    sep = csv_separator(text[:8192])
    skip, header_row = csv_title_records(text[: 1 << 16], sep, header_names)
    frame = pd.concat(
        csv_chunks(
            io.StringIO(text),
            path.name,
            sep=sep,
            skiprows=skip,
            dtype=str,
            keep_default_na=False,
            na_values=[],
        )
    )
    # Rows with every cell blank (Excel writes a sheet's empty rows as ",,,,") are left
    # out, as the Excel reader leaves them out.
    filled = (frame.apply(lambda c: c.str.strip()) != "").any(axis=1).to_numpy()
    rows_empty = int((~filled).sum())
    frame = frame[filled]
    names = [str(c).strip() for c in frame.columns]
    columns = {
        name: [v if v != "" else None for v in frame[col].tolist()]
        for name, col in zip(names, frame.columns, strict=True)
    }
    return SourceTable(
        Format.CSV,
        names,
        columns,
        len(frame),
        encoding=chosen,
        header_row=header_row,
        rows_empty=rows_empty,
        record_numbers=_kept_numbers(filled) if rows_empty else None,
    )


def _kept_numbers(filled: npt.NDArray[np.bool_]) -> list[int]:
    """The record numbers (from 1) of the rows kept, where ``filled`` marks them."""
    return [int(i) + 1 for i in np.flatnonzero(filled)]


def csv_separator(sample: str) -> str:
    """The separator of a CSV file's first lines: comma, tab, semicolon or bar (Excel's
    "Unicode text" is tab-separated, European locales use semicolons); comma if unclear."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


# pandas' words for a row with more fields than the header
_EXTRA_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def csv_chunks(
    source: Path | io.StringIO, name: str, chunk_rows: int = 1 << 20, **options: Any
) -> Iterator[pd.DataFrame]:
    """``pandas.read_csv`` a chunk at a time (at least one chunk, maybe empty), strictly:
    a file that cannot be split into rows is refused by ``name``, naming the line.

    A row with fewer fields than the header is refused (:mod:`csv_fields`), and so is
    one with more, never shifted or cut. pandas
    raises for such rows but one: when it is the first, pandas would take the first
    column for an index (every value shifted one column), or with ``index_col=False``
    drop the extra fields with a warning, which is made an error here.
    """
    sep, codec = options.get("sep", ","), options.get("encoding") or enc.UTF8
    refuse_short_records(source, name, sep, codec, options.get("skiprows", 0))
    try:
        reader = pd.read_csv(source, chunksize=chunk_rows, index_col=False, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            first = next(reader)
        yield first
        yield from reader
    except pd.errors.ParserWarning:
        raise UnreadableFileError(
            f"{name} 第 2 行（含表头）的字段比表头多；含逗号的值请加英文双引号",
            f"{name} line 2 (counting the header) has more fields than the header; "
            "quote values that contain commas",
        ) from None
    except pd.errors.EmptyDataError:
        raise UnreadableFileError(
            f"{name} 是空文件（没有表头行）", f"{name} is empty (no header row)"
        ) from None
    except pd.errors.ParserError as exc:
        extra = _EXTRA_FIELDS.search(str(exc))
        if extra is None:
            raise UnreadableFileError(
                f"{name} 不是有效的 CSV（例如引号没有闭合）",
                f"{name} is not valid CSV (an unclosed quote, for example)",
                cause=str(exc),
            ) from None
        expected, line, saw = extra.groups()
        raise UnreadableFileError(
            f"{name} 第 {line} 行（含表头）有 {saw} 个字段，表头只有 {expected} 个；"
            "含逗号的值请加英文双引号",
            f"{name} line {line} (counting the header) has {saw} fields, the header "
            f"{expected}; quote values that contain commas",
        ) from None


def _read_excel(fmt: Format, sheet: SheetRows, header_names: frozenset[str]) -> SourceTable:
    rows = [list(r) for r in itertools.chain(sheet.top, sheet.rest)]
    filled = [i for i, r in enumerate(rows) if not _empty_row(r)]
    if not filled:
        return SourceTable(fmt, [], {}, 0, encoding=enc.UTF8)
    top = filled[:HEADER_SEARCH_ROWS]
    at = top[header_index([rows[i] for i in top], header_names)]
    header = [str(v).strip() if v is not None else "" for v in rows[at]]
    kept = np.array([not _empty_row(r) for r in rows[at + 1 :]], dtype=bool)
    body = [r for r, keep in zip(rows[at + 1 :], kept, strict=True) if keep]
    names = [h for h in header if h]
    columns: dict[str, list[object]] = {
        name: [(r[j] if j < len(r) else None) for r in body]
        for j, name in enumerate(header)
        if name
    }
    return SourceTable(
        fmt,
        names,
        columns,
        len(body),
        encoding=enc.UTF8,
        header_row=at + 1,
        rows_empty=len(rows) - at - 1 - len(body),
        record_numbers=_kept_numbers(kept) if len(body) < len(kept) else None,
    )


def _empty_row(row: list[object]) -> bool:
    return all(v is None or str(v).strip() == "" for v in row)


# A header is looked for among the first non-blank rows: above it, a title (2025年5月出租
# 房屋台账), a unit or a date line, as Chinese 台账 sheets have.
HEADER_SEARCH_ROWS = 10


def header_index(rows: Sequence[Sequence[object]], names: frozenset[str]) -> int:
    """The first of ``rows`` (at most :data:`HEADER_SEARCH_ROWS`) with at least three
    cells among ``names`` (compared trimmed and in lower case); 0 when none has."""
    found = find_header(rows, names)
    return 0 if found is None else found


def find_header(rows: Sequence[Sequence[object]], names: frozenset[str]) -> int | None:
    """:func:`header_index`, or None when no row names three of ``names``."""
    for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        cells = {str(v).strip().lower() for v in row if v is not None}
        if len(cells & names) >= 3:
            return i
    return None


def csv_title_records(head: str, sep: str, names: frozenset[str]) -> tuple[int, int]:
    """For a CSV file's first lines ``head``: how many records stand above the header
    (blank lines included, as pandas' ``skiprows`` counts them) and the header's line."""
    reader = csv.reader(io.StringIO(head), delimiter=sep)
    records: list[tuple[int, int, list[object]]] = []  # (records before, line, record)
    before = 0
    while len(records) < HEADER_SEARCH_ROWS:
        line = reader.line_num + 1
        try:
            record = next(reader)
        except (StopIteration, csv.Error):
            break
        if record and "".join(record).strip(" \t"):
            records.append((before, line, list(record)))
        before += 1
    if not records:
        return 0, 1
    skip, line, _ = records[header_index([r for *_, r in records], names)]
    return skip, line


# A workbook whose sheets and shared strings unpack to at most this is read whole by
# calamine (Rust: a million rows in 4 s, about 1.5 bytes of memory per byte of sheet XML);
# a bigger one is streamed by openpyxl (bounded memory, but 17,000 rows a second).
EXCEL_WHOLE_BYTES = 512 << 20


@dataclass
class SheetRows:
    """The sheet chosen to read (:func:`open_sheet`): its first rows, already read, then
    the rest, still to read (so that the choice costs no second read of the sheet)."""

    name: str
    sheets: list[str]  # every sheet of the workbook, in order
    top: list[tuple[object, ...]]
    rest: Iterator[tuple[object, ...]]


def open_sheet(
    path: Path, names: frozenset[str], wanted: str | None, hint: str | None = None
) -> SheetRows:
    """The sheet to read: ``wanted`` (:func:`choose_part`), or the one named ``hint``; else
    the first sheet whose first rows hold a header naming three of ``names``, so that a
    workbook opening with a 填表说明 sheet is read from its 台账 sheet; else the first.
    Callers say which sheet they read and which they did not."""
    sheets = excel_sheet_names(path)
    chosen = choose_part(path, sheets, wanted, hint)
    candidates = [chosen] if wanted is not None or hint in sheets else sheets
    for name in candidates:
        rows = excel_rows(path, name)
        top = list(itertools.islice(rows, HEADER_SEARCH_ROWS))
        if len(candidates) == 1 or find_header(top, names) is not None:
            return SheetRows(name, sheets, top, rows)
        rows.close()
    rows = excel_rows(path, chosen)
    return SheetRows(chosen, sheets, list(itertools.islice(rows, HEADER_SEARCH_ROWS)), rows)


def excel_sheet_names(path: Path) -> list[str]:
    """The workbook's sheets in their order (read from its index, not the sheets)."""
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # zip, XML and calamine errors alike
        raise unreadable(path, exc) from exc
    try:
        return [str(name) for name in book.sheet_names]
    finally:
        book.close()


def excel_rows(path: Path, sheet: str | None = None) -> Generator[tuple[object, ...]]:
    """Rows of the sheet named ``sheet`` (None: the first; see :func:`choose_part`),
    header included: whole numbers as ``int``, empty cells as ``None``, dates as
    ``datetime`` — the same values from either reader."""
    try:
        # An .xls sheet holds at most 65,536 rows: always small enough to read whole.
        if path.suffix.lower() == ".xls" or _unpacked_size(path) <= EXCEL_WHOLE_BYTES:
            yield from _calamine_rows(path, sheet)
        else:
            yield from _openpyxl_rows(path, sheet)
    except (InvalidInputError, MemoryError):
        raise
    except Exception as exc:  # zip, XML, calamine and openpyxl errors alike
        raise unreadable(path, exc) from exc


def _unpacked_size(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(
            item.file_size
            for item in archive.infolist()
            if item.filename.startswith("xl/worksheets/") or item.filename == "xl/sharedStrings.xml"
        )


def _cell(value: object) -> object:
    if value == "":
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time())  # calamine: a date; openpyxl: its midnight
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)  # calamine reads every number as a float; openpyxl whole ones as int
    return value


def _calamine_rows(path: Path, sheet: str | None) -> Iterator[tuple[object, ...]]:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    try:
        chosen = book.get_sheet_by_index(0) if sheet is None else book.get_sheet_by_name(sheet)
        for row in chosen.iter_rows():
            yield tuple(_cell(v) for v in row)
    finally:
        book.close()


def _openpyxl_rows(path: Path, sheet: str | None) -> Iterator[tuple[object, ...]]:
    from openpyxl import load_workbook
    from openpyxl.cell.cell import ERROR_CODES

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        chosen = book.worksheets[0] if sheet is None else book[sheet]
        for row in chosen.iter_rows(values_only=True):
            # A formula's error (#N/A, #DIV/0!) holds no value: blank, as calamine reads it.
            yield tuple(None if v in ERROR_CODES else _cell(v) for v in row)
    finally:
        book.close()


def points_from_xy(
    xs: list[object], ys: list[object]
) -> tuple[ObjectArray, list[tuple[int, str, str]]]:
    """Points from lon/lat (or x/y) cells; a cell that is not a number is a problem."""
    count = len(xs)
    x = np.full(count, np.nan)
    y = np.full(count, np.nan)
    problems: list[tuple[int, str, str]] = []
    for i in range(count):
        try:
            x[i] = float(str(xs[i]).strip())
            y[i] = float(str(ys[i]).strip())
        except (TypeError, ValueError):
            if xs[i] is None or ys[i] is None:
                problems.append((i, "缺少经纬度坐标", "missing lon/lat"))
            else:
                problems.append((i, "经纬度不是数字", "lon/lat is not a number"))
    geoms: ObjectArray = np.asarray(shapely.points(x, y), dtype=object)
    for i, _, _ in problems:
        geoms[i] = None
    return geoms, problems


def geometries_from_wkt(values: list[object]) -> tuple[ObjectArray, list[tuple[int, str, str]]]:
    """Geometries from a WKT column; unparsable text is a problem for its row."""
    geoms: ObjectArray = np.empty(len(values), dtype=object)
    problems: list[tuple[int, str, str]] = []
    for i, value in enumerate(values):
        if value is None:
            continue
        try:
            geoms[i] = shapely.from_wkt(str(value))
        except shapely.errors.GEOSException:
            problems.append((i, "WKT 几何文本无法解析", "WKT geometry cannot be parsed"))
    return geoms, problems
