"""Writers: rows of a layer (already converted to the target CRS) → a file on disk.

Column names stay the registry's, except in shapefiles, whose DBF names are cut to 10
characters (the importer maps them back). Timestamps are written as ISO 8601 text with
their offset in every format so that a re-import is lossless.
"""

from __future__ import annotations

import csv
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gridgov.gis.coords import from_cgcs2000
from gridgov.layers.io.errors import ImportUsageError
from gridgov.layers.io.formats import Format
from gridgov.layers.io.mapping import dbf_name
from gridgov.layers.io.readers import ObjectArray
from gridgov.layers.spec import ColumnType

GEOGRAPHIC = frozenset({"wgs84", "cgcs2000", "gcj02", "bd09"})
COORDINATE_PRECISION = 9  # decimal places of degrees in GeoJSON (about 0.1 mm)


@dataclass(frozen=True)
class ExportColumn:
    name: str
    type: ColumnType


def convert_geometries(geoms: ObjectArray, crs: str) -> ObjectArray:
    """Stored CGCS2000 geometries → ``crs``, in one vectorised conversion."""
    if len(geoms) == 0 or crs == "cgcs2000":
        return geoms
    coords = shapely.get_coordinates(geoms)
    x, y = from_cgcs2000(coords[:, 0], coords[:, 1], crs)
    result: ObjectArray = shapely.set_coordinates(geoms.copy(), np.column_stack([x, y]))
    return result


def crs_label(crs: str) -> str:
    """The CRS written into a file's metadata: GCJ-02 / BD-09 have no EPSG code and are
    conventionally labelled WGS84 (the importer accepts them back with --crs)."""
    if crs == "cgcs2000":
        return "EPSG:4490"
    if crs in GEOGRAPHIC:
        return "EPSG:4326"
    return crs


def _series(column: ExportColumn, values: Sequence[object]) -> Any:
    """A typed column; timestamps as ISO 8601 text, because GDAL's date-time fields keep
    only milliseconds and PostgreSQL keeps microseconds (a re-import must be lossless)."""
    items: list[Any] = list(values)
    if column.type in (ColumnType.INTEGER, ColumnType.BIGINT):
        return pd.array(items, dtype="Int64")
    if column.type is ColumnType.FLOAT:
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    if column.type is ColumnType.BOOLEAN:
        return pd.array(items, dtype="boolean")
    if column.type is ColumnType.TIMESTAMP:
        return np.array([_iso(v) for v in values], dtype=object)
    return np.array(values, dtype=object)


def _iso(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return _iso(value) or ""


def write_vector(
    path: Path,
    fmt: Format,
    layer: str,
    columns: Sequence[ExportColumn],
    data: dict[str, list[object]],
    geoms: ObjectArray,
    crs: str,
    encoding: str,
) -> None:
    """GeoJSON, GeoPackage or Shapefile at ``path`` (for shp: the .shp path)."""
    shp = fmt is Format.SHP
    names = {c.name: (dbf_name(c.name) if shp else c.name) for c in columns}
    if shp and len(set(names.values())) != len(names):
        raise ImportUsageError(
            "该图层的列名截为 10 个字符后重复，无法导出为 Shapefile；请用 GeoPackage",
            "column names clash when cut to 10 characters: export as GeoPackage instead",
        )
    if shp:
        kinds = {g.geom_type.replace("Multi", "") for g in geoms if g is not None}
        if len(kinds) > 1:
            raise ImportUsageError(
                "该图层同时含点和面，Shapefile 只能保存一种几何类型；请用 GeoPackage 或 GeoJSON",
                "the layer mixes points and polygons, which a shapefile cannot hold: "
                "use GeoPackage or GeoJSON",
            )
    frame = gpd.GeoDataFrame(
        {names[c.name]: _series(c, data[c.name]) for c in columns},
        geometry=gpd.GeoSeries(list(geoms), crs=crs_label(crs)),
    )
    options: dict[str, str] = {}
    if fmt is Format.GEOJSON:
        options["COORDINATE_PRECISION"] = str(COORDINATE_PRECISION)
        if crs in GEOGRAPHIC:
            options["RFC7946"] = "YES"
    try:
        pyogrio.write_dataframe(
            frame,
            path,
            driver=fmt.driver,
            layer=layer,
            encoding=encoding if shp else None,
            layer_options=options or None,
        )
    except UnicodeEncodeError:
        raise ImportUsageError(
            f"有文字无法用 {encoding} 编码保存；请改用 --encoding utf-8",
            f"some text cannot be encoded as {encoding}: use --encoding utf-8",
        ) from None


def write_csv(
    path: Path,
    columns: Sequence[ExportColumn],
    data: dict[str, list[object]],
    geoms: ObjectArray,
    crs: str,
    encoding: str,
    points: bool,
) -> None:
    """CSV: lon/lat (x/y for projected CRSs) for point layers, else a WKT column."""
    geographic = crs in GEOGRAPHIC or crs.upper() == "EPSG:4490"
    geometry_header = (["lon", "lat"] if geographic else ["x", "y"]) if points else ["wkt"]
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    try:
        with path.open("w", encoding=codec, newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([c.name for c in columns] + geometry_header)
            for i, geom in enumerate(geoms):
                cells = [_text(data[c.name][i]) for c in columns]
                if points:
                    cells += [repr(geom.x), repr(geom.y)]
                else:
                    cells.append(shapely.to_wkt(geom, rounding_precision=-1))
                writer.writerow(cells)
    except UnicodeEncodeError:
        raise ImportUsageError(
            f"有文字无法用 {encoding} 编码保存；请改用 --encoding utf-8",
            f"some text cannot be encoded as {encoding}: use --encoding utf-8",
        ) from None


def zip_shapefile(shp: Path, target: Path) -> None:
    """Every part of the shapefile at ``shp`` into the zip ``target``."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(shp.parent.glob(f"{shp.stem}.*")):
            if part.suffix.lower() != ".zip":
                archive.write(part, part.name)


def move(source: Path, target: Path) -> None:
    shutil.move(str(source), str(target))
