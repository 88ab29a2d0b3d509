"""Fast bulk writes of whole GeoDataFrames into layer tables with PostgreSQL COPY.

Geometry travels as EWKB (with SRID 4490), never as text built by hand; every value is
sent through psycopg's own adapters, so the database's constraints still check each row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from psycopg import sql
from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect

from gridgov.layers.spec import SRID

CHUNK = 5_000


def _python_column(series: pd.Series) -> list[Any]:
    """Plain Python values (None for NaN / NaT) that psycopg adapts exactly."""
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(series):
        return [None if pd.isna(v) else v.to_pydatetime() for v in series]
    values = series.astype(object).where(series.notna(), None).tolist()
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _geometry_column(frame: gpd.GeoDataFrame) -> list[bytes]:
    if frame.crs is None or frame.crs.to_epsg() != SRID:
        raise ValueError(f"geometries must be in EPSG:{SRID}, not {frame.crs}")
    geoms = shapely.set_srid(frame.geometry.to_numpy(), SRID)
    return list(shapely.to_wkb(geoms, include_srid=True))


def copy_frame(
    conn: Connection,
    table: Table,
    frame: gpd.GeoDataFrame,
    progress: Callable[[int], None] = lambda _: None,
) -> int:
    """COPY ``frame`` into ``table`` inside the caller's transaction; returns rows written.

    Columns are the frame's, matched to the table's by name; a frame column the table
    does not have is an error, not silently dropped.
    """
    columns = [c for c in frame.columns if c != frame.geometry.name]
    unknown = sorted(set(columns) - set(table.c.keys()))
    if unknown:
        raise ValueError(f"{table.name} has no columns {unknown}")
    values = [_python_column(frame[c]) for c in columns] + [_geometry_column(frame)]
    names = [*columns, "geom"]
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(n) for n in names)
    )
    types = [_pg_type(table, n, conn.dialect) for n in names]
    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError("bulk copy needs the psycopg 3 driver")
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        copy.set_types(types)
        written = 0
        for row in _rows(values):
            copy.write_row(row)
            written += 1
            if written % CHUNK == 0:
                progress(CHUNK)
        progress(written % CHUNK)
    return written


def _rows(columns: list[list[Any]]) -> Iterator[tuple[Any, ...]]:
    return iter(zip(*columns, strict=True))


def _pg_type(table: Table, column: str, dialect: Dialect) -> str:
    """The PostgreSQL type name COPY BINARY needs for ``column``."""
    if column == "geom":
        return "bytea"
    compiled = str(table.c[column].type.compile(dialect=dialect)).lower()
    return {
        "text": "text",
        "integer": "int4",
        "bigint": "int8",
        "double precision": "float8",
        "boolean": "bool",
        "date": "date",
        "timestamp with time zone": "timestamptz",
    }[compiled]
