"""The file formats gridgov reads and writes, recognised by extension."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from gridgov.layers.io.errors import ImportUsageError, UnreadableFileError


class Format(StrEnum):
    GEOJSON = "geojson"
    GPKG = "gpkg"
    SHP = "shp"
    CSV = "csv"
    XLSX = "xlsx"
    XLS = "xls"  # Excel 97-2003: read only

    @property
    def tabular(self) -> bool:
        """Tables whose geometry comes from lon/lat or WKT columns."""
        return self in (Format.CSV, Format.XLSX, Format.XLS)

    @property
    def excel(self) -> bool:
        """A workbook of sheets (read by :func:`gridgov.layers.io.readers.excel_rows`)."""
        return self in (Format.XLSX, Format.XLS)

    @property
    def driver(self) -> str:
        return {
            Format.GEOJSON: "GeoJSON",
            Format.GPKG: "GPKG",
            Format.SHP: "ESRI Shapefile",
            Format.CSV: "CSV",
            Format.XLSX: "XLSX",
            Format.XLS: "XLS",
        }[self]

    @property
    def media_type(self) -> str:
        """Content-Type of an export (a shapefile is sent as a .zip of its parts)."""
        return {
            Format.GEOJSON: "application/geo+json",
            Format.GPKG: "application/geopackage+sqlite3",
            Format.SHP: "application/zip",
            Format.CSV: "text/csv; charset=utf-8",
            Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format.XLS: "application/vnd.ms-excel",
        }[self]

    @property
    def download_suffix(self) -> str:
        return ".zip" if self is Format.SHP else f".{self.value}"


_SUFFIXES = {
    ".geojson": Format.GEOJSON,
    ".json": Format.GEOJSON,
    ".gpkg": Format.GPKG,
    ".shp": Format.SHP,
    ".csv": Format.CSV,
    ".txt": Format.CSV,
    ".xlsx": Format.XLSX,
    ".xlsm": Format.XLSX,  # a workbook with macros, which are never run
    ".xls": Format.XLS,
}

EXPORT_FORMATS = (Format.GEOJSON, Format.GPKG, Format.SHP, Format.CSV)
IMPORT_SUFFIXES = tuple(_SUFFIXES)  # and .zip (a shapefile's parts)


def named_format(path: Path) -> Format | None:
    """The format ``path``'s extension names (``.txt`` is CSV: Excel's "Unicode 文本"
    export), if any."""
    return _SUFFIXES.get(path.suffix.lower())


def format_of(path: Path) -> Format:
    """The format named by ``path``'s extension, or :class:`UnreadableFileError`."""
    fmt = named_format(path)
    if fmt is None:
        raise UnreadableFileError(
            f"不支持的文件类型 {path.suffix or '（无扩展名）'}：可用 GeoJSON、GeoPackage、"
            "Shapefile（.shp 或 .zip）、CSV 或 Excel（.xlsx、.xls）",
            f"unsupported file type {path.suffix or '(none)'}: use GeoJSON, GeoPackage, "
            "Shapefile (.shp or .zip), CSV or Excel (.xlsx, .xls)",
        )
    return fmt


def export_format(value: str | None, path: Path | None) -> Format:
    """The export format from ``--format``, else from the output path's extension."""
    if value:
        try:
            fmt = Format(value.lower())
        except ValueError:
            fmt = None
        if fmt is None or fmt not in EXPORT_FORMATS:
            raise ImportUsageError(
                "导出格式须为 geojson、gpkg、shp 或 csv",
                "export format must be geojson, gpkg, shp or csv",
            )
        return fmt
    if path is not None and path.suffix.lower() == ".zip":
        return Format.SHP
    if path is not None:
        fmt = named_format(path)
        if fmt in EXPORT_FORMATS:
            return fmt
    raise ImportUsageError(
        "无法从文件名判断导出格式，请用 --format 指定（geojson、gpkg、shp、csv）",
        "cannot tell the export format from the file name: pass --format",
    )
