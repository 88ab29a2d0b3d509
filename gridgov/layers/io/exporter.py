"""Export one layer to a file, in CGCS2000 or any CRS gridgov converts to.

Personal-data columns are masked unless ``include_personal`` is set (who may set it is
for the accounts issue to decide).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import Connection

from gridgov.layers import vault
from gridgov.layers.io import staging
from gridgov.layers.io.crs import parse_user_crs
from gridgov.layers.io.errors import ImportUsageError
from gridgov.layers.io.formats import Format
from gridgov.layers.io.readers import ObjectArray
from gridgov.layers.io.values import targets
from gridgov.layers.io.writers import (
    ExportColumn,
    convert_geometries,
    move,
    write_csv,
    write_vector,
    zip_shapefile,
)
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope
from gridgov.layers.spec import GeometryKind
from gridgov.layers.tables import build_metadata
from gridgov.settings import Settings

ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gbk"}
CODE_PREFIX = re.compile(r"^[0-9]{1,15}$")


@dataclass(frozen=True)
class ExportOptions:
    format: Format
    crs: str = "cgcs2000"
    encoding: str = "utf-8"
    code_prefix: str | None = None
    include_personal: bool = False  # the caller checks the grant and audits the export
    all_versions: bool = False
    scope: AreaScope = field(default_factory=AreaScope.everything)
    data_key: bytes | None = None  # default with include_personal: the configured key


def export_layer(
    conn: Connection, registry: Registry, layer_id: str, path: Path, options: ExportOptions
) -> int:
    """Write ``layer_id`` to ``path``; returns the number of features written.

    For shapefiles, ``path`` ending in ``.zip`` gets a zip of the parts; otherwise the
    ``.shp`` and its siblings are written beside each other.
    """
    spec = registry.get(layer_id)
    crs = parse_user_crs(options.crs)
    encoding = ENCODINGS.get(options.encoding.lower())
    if encoding is None:
        raise ImportUsageError("--encoding 须为 utf-8 或 gbk", "--encoding must be utf-8 or gbk")
    if options.code_prefix is not None and not CODE_PREFIX.match(options.code_prefix):
        raise ImportUsageError(
            "--where-code 须为 1–15 位数字的行政区划代码（前缀）",
            "--where-code must be an admin code (prefix) of 1-15 digits",
        )
    layer = build_metadata(registry).tables[spec.table_name]
    rows = staging.export_rows(
        conn,
        spec,
        layer,
        options.code_prefix,
        options.all_versions,
        options.scope,
        options.include_personal,
    )
    columns = [ExportColumn(t.name, t.type) for t in targets(spec)]
    personal = set(vault.personal_columns(spec))
    key = None
    if options.include_personal and personal:
        key = options.data_key or Settings().require_data_key()
    data: dict[str, list[object]] = {c.name: [] for c in columns}
    for row in rows:
        mapping = row._mapping
        for c in columns:
            value = mapping[c.name]
            if c.name in personal:
                value = vault.personal_value(spec, mapping, c.name, key, mapping["__row_id"])
            data[c.name].append(value)
    stored: ObjectArray = np.asarray(
        shapely.from_wkb([bytes(row._mapping["wkb"]) for row in rows]), dtype=object
    )
    geoms = convert_geometries(stored, crs)
    fmt = options.format
    _remove_previous(path, fmt)
    if fmt is Format.CSV:
        write_csv(path, columns, data, geoms, crs, encoding, spec.geometry is GeometryKind.POINT)
    elif fmt is Format.SHP and path.suffix.lower() != ".shp":
        with tempfile.TemporaryDirectory(prefix="gridgov-export-") as tmp:
            shp = Path(tmp) / f"{spec.id}.shp"
            write_vector(shp, fmt, spec.id, columns, data, geoms, crs, encoding)
            archive = Path(tmp) / f"{spec.id}.zip"
            zip_shapefile(shp, archive)
            move(archive, path)
    else:
        write_vector(path, fmt, spec.id, columns, data, geoms, crs, encoding)
    return len(rows)


def _remove_previous(path: Path, fmt: Format) -> None:
    """An export replaces the file (GDAL would otherwise add a layer or refuse)."""
    if fmt is Format.SHP and path.suffix.lower() == ".shp":
        for part in path.parent.glob(f"{path.stem}.*"):
            if part.suffix.lower() in {".shp", ".shx", ".dbf", ".prj", ".cpg"}:
                part.unlink()
    elif path.is_file():
        path.unlink()
