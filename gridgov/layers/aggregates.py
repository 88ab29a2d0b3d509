"""The incident pre-aggregate: refreshed by day, loaded into an in-memory :class:`Cube`.

``incident_agg`` holds counts per local day × H3 cell (res 10, and the res 9/8/7 cells
holding the same point) × category × status × admin and police codes. Triggers mark the
days any write touches (``incident_agg_dirty_day``); :func:`refresh` recomputes exactly
those days, so the demo loader and importers may call it right after writing (or leave it
to the first heatmap request, which calls it too). H3 has no PostGIS function here, so
cells are computed in Python and joined back through a temporary table. Each resolution is
computed from the point itself, not with ``cell_to_parent``: H3 children do not tile their
parent exactly, so the parent of a point's res-10 cell is not always the res-7 hexagon that
contains the point.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from sqlalchemy import Connection, text

from gridgov.gis import cube as cube_mod
from gridgov.gis import h3bins
from gridgov.layers.catalog import INCIDENT_CATEGORIES, INCIDENT_STATUSES
from gridgov.layers.map_support import LOCAL_TIME_ZONE, OPEN_STATUSES_SQL

_CHUNK_ROWS = 50_000  # rows parsed per call (see _bulk_frame)
_LOCK = 0x67726964_61676700  # pg_advisory_xact_lock key: one refresher at a time
_CODES = ", ".join(f"{level}_code" for level in cube_mod.LEVELS)
_COARSE = tuple(r for r in h3bins.RESOLUTIONS if r != h3bins.FINE)
_DAY = f"(reported_at AT TIME ZONE '{LOCAL_TIME_ZONE}')::date"
# Incidents ``i`` of the local days ``:days`` through the index on reported_at (the day
# expression has none).
_ON_DAYS = (
    "unnest(CAST(:days AS date[])) AS d JOIN incident i "
    f"ON i.reported_at >= (d::timestamp AT TIME ZONE '{LOCAL_TIME_ZONE}') "
    f"AND i.reported_at < ((d + 1)::timestamp AT TIME ZONE '{LOCAL_TIME_ZONE}')"
)


def generation(conn: Connection) -> int | None:
    """The incident layer's change counter (bumped by every write statement)."""
    value = conn.execute(
        text("SELECT generation FROM layer_state WHERE layer = 'incident'")
    ).scalar_one_or_none()
    return int(value) if value is not None else None


def refresh(conn: Connection, wait: bool = True) -> int | None:
    """Recompute the pre-aggregate for every dirty day, in the caller's transaction.

    Returns the number of days recomputed (0 when nothing changed since the last refresh).
    With ``wait=False`` (the start-up warm-up) it does nothing while another transaction
    is refreshing, rather than wait for it, and returns None.
    """
    if wait:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
    elif not conn.execute(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK}
    ).scalar_one():
        return None
    days: list[date] = list(
        conn.execute(text("DELETE FROM incident_agg_dirty_day RETURNING day")).scalars()
    )
    if not days:
        return 0
    conn.execute(text("DELETE FROM incident_agg WHERE day = ANY(:days)"), {"days": days})
    # Serialised by the lock (held to commit): the numbers grow in commit order.
    conn.execute(
        text(
            "INSERT INTO incident_agg_change (day, seq) "
            "SELECT d, (SELECT coalesce(max(seq), 0) + 1 FROM incident_agg_change) "
            "FROM unnest(CAST(:days AS date[])) AS d "
            "ON CONFLICT (day) DO UPDATE SET seq = EXCLUDED.seq"
        ),
        {"days": days},
    )
    points = conn.execute(
        text(f"SELECT i.id, ST_X(i.geom) AS x, ST_Y(i.geom) AS y FROM {_ON_DAYS}"),
        {"days": days},
    ).all()
    if not points:
        return len(days)
    ids = np.array([p.id for p in points], dtype=np.int64)
    lon, lat = [p.x for p in points], [p.y for p in points]
    fine = h3bins.cells(lon, lat)
    coarse = {res: h3bins.cells(lon, lat, res) for res in _COARSE}
    conn.execute(
        text(
            "CREATE TEMP TABLE incident_cell_tmp (id bigint, cell bigint, cell9 bigint, "
            "cell8 bigint, cell7 bigint) ON COMMIT DROP"
        )
    )
    raw = _raw(conn)
    copy_sql = sql.SQL("COPY incident_cell_tmp (id, cell, cell9, cell8, cell7) FROM STDIN")
    with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for row in zip(
            ids.tolist(),
            fine.tolist(),
            coarse[9].tolist(),
            coarse[8].tolist(),
            coarse[7].tolist(),
            strict=True,
        ):
            copy.write_row(row)
    conn.execute(text("ANALYZE incident_cell_tmp"))  # few rows: join by id, not a scan
    conn.execute(
        text(
            f"""
            INSERT INTO incident_agg (day, cell, cell9, cell8, cell7, category, status,
                                      {_CODES}, n)
            SELECT {_DAY}, c.cell, c.cell9, c.cell8, c.cell7, i.category, i.status,
                   {", ".join(f"i.{level}_code" for level in cube_mod.LEVELS)}, count(*)
            FROM incident i JOIN incident_cell_tmp c ON c.id = i.id
            GROUP BY {", ".join(str(n) for n in range(1, 8 + len(cube_mod.LEVELS)))}
            """
        )
    )
    conn.execute(text("DROP TABLE incident_cell_tmp"))
    return len(days)


def _raw(conn: Connection) -> psycopg.Connection[Any]:
    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError("the pre-aggregate needs the psycopg 3 driver")
    return raw


def autocommit(conn: Connection) -> bool:
    """Whether the driver commits every statement alone (SQLAlchemy's
    ``get_isolation_level`` reports the server's level even then)."""
    return bool(_raw(conn).autocommit)


def _bulk_frame(
    conn: Connection, select: str, names: list[str], params: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Rows of ``select`` (whose columns are ``names``) as a DataFrame.

    PostgreSQL joins the rows into one tab-separated text (missing values empty) that
    pandas' C parser reads: a million rows load in about a second, where row objects (or
    ``COPY``, one message per row) would take many seconds in Python.
    """
    fields = ", ".join(f"COALESCE(q.{name}::text, '')" for name in names)
    blob = conn.execute(
        text(f"SELECT string_agg(concat_ws(E'\\t', {fields}), E'\\n') FROM ({select}) q"),
        params or {},
    ).scalar_one()
    text_columns = {name: str for name in names if name.endswith("_code")}
    text_columns.update(category=str, status=str)
    if not blob:
        return pd.DataFrame({name: pd.Series([], dtype=object) for name in names})
    # In chunks: one call over a million rows holds the GIL for seconds, and a uvicorn
    # worker whose health-check thread cannot answer for 5 s is killed by its supervisor
    # (it was, in a loop, while it loaded the cube at start-up under load).
    chunks = pd.read_csv(
        io.StringIO(blob),
        sep="\t",
        header=None,
        names=names,
        na_values=[""],
        keep_default_na=False,
        dtype=text_columns,
        engine="c",
        chunksize=_CHUNK_ROWS,
    )
    return pd.concat(list(chunks), ignore_index=True)


def _columns(frame: pd.DataFrame) -> dict[str, Any]:
    """Columns for :func:`gridgov.gis.cube.build`: code columns keep None for missing."""
    out: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        if name.endswith("_code"):
            out[name] = column.astype(object).where(column.notna(), None).to_numpy()
        else:
            out[name] = column.to_numpy()
    return out


def _names(conn: Connection) -> dict[str, dict[str, str]]:
    """Names of the units the aggregates group by (latest version of each grid code)."""
    statements = {
        "district": "SELECT code, name FROM district",
        "township": "SELECT code, name FROM township",
        "community": "SELECT code, name FROM community",
        "grid": "SELECT DISTINCT ON (code) code, COALESCE(name, code) FROM grid "
        "ORDER BY code, valid_from DESC",
        "police_station": "SELECT code, name FROM police_unit WHERE level = 'station'",
        "policing_area": "SELECT code, name FROM police_unit WHERE level = 'policing_area'",
        "urban_unit": "SELECT code, name FROM urban_unit",
        "emergency_unit": "SELECT code, name FROM emergency_unit",
    }
    return {
        level: {str(row[0]): str(row[1]) for row in conn.execute(text(statement)).all()}
        for level, statement in statements.items()
    }


_ROW_NAMES = [
    "day",
    "cell10",
    "cell9",
    "cell8",
    "cell7",
    "category",
    "status",
    *(f"{level}_code" for level in cube_mod.LEVELS),
    "n",
]
_OPEN_NAMES = [
    "day",
    "x",
    "y",
    "category",
    "status",
    *(f"{level}_code" for level in cube_mod.LEVELS),
    "deadline",
]


def _facts(conn: Connection, days: list[date] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Columns of the pre-aggregate rows and of the open incidents with a deadline, of
    ``days`` only (None: all)."""
    epoch_day = "(day - DATE '1970-01-01')"
    on_days = "" if days is None else "WHERE day = ANY(CAST(:days AS date[]))"
    params = {} if days is None else {"days": days}
    rows = _columns(
        _bulk_frame(
            conn,
            f"SELECT {epoch_day} AS day, cell AS cell10, cell9, cell8, cell7, category, status, "
            f"{_CODES}, n FROM incident_agg {on_days}",
            _ROW_NAMES,
            params,
        )
    )
    # Open incidents with a deadline: few, found through ix_incident_open_deadline.
    source = "incident i" if days is None else _ON_DAYS
    open_rows = _columns(
        _bulk_frame(
            conn,
            f"SELECT ({_DAY} - DATE '1970-01-01') AS day, ST_X(geom) AS x, ST_Y(geom) AS y, "
            f"category, status, {_CODES}, extract(epoch FROM deadline_at)::float8 AS deadline "
            f"FROM {source} "
            f"WHERE {OPEN_STATUSES_SQL} AND deadline_at IS NOT NULL",
            _OPEN_NAMES,
            params,
        )
    )
    for res in h3bins.RESOLUTIONS:
        open_rows[f"cell{res}"] = h3bins.cells(open_rows["x"], open_rows["y"], res)
    return rows, open_rows


def change_mark(conn: Connection) -> int:
    """The number of the newest recomputation of the pre-aggregate (0: none yet)."""
    return int(
        conn.execute(text("SELECT coalesce(max(seq), 0) FROM incident_agg_change")).scalar_one()
    )


def load_cube(conn: Connection) -> tuple[cube_mod.Cube, int]:
    """The pre-aggregate and the open incidents, encoded for in-memory queries, with the
    :func:`change_mark` it holds (read first: a later recomputation is seen again)."""
    mark = change_mark(conn)
    rows, open_rows = _facts(conn, None)
    cube = cube_mod.build(
        rows,
        open_rows,
        [c.value for c in INCIDENT_CATEGORIES],
        [s.value for s in INCIDENT_STATUSES],
        h3bins.RESOLUTIONS,
        _names(conn),
    )
    return cube, mark


def update_cube(conn: Connection, cube: cube_mod.Cube, since: int) -> tuple[cube_mod.Cube, int]:
    """``cube`` (holding the pre-aggregate as of mark ``since``) brought up to date by
    reloading only the days recomputed after ``since``; a full load when the record went
    backwards (a rolled-back refresh it had seen)."""
    mark = change_mark(conn)
    if mark < since:
        return load_cube(conn)
    if mark == since:
        return cube, mark
    days: list[date] = list(
        conn.execute(
            text("SELECT day FROM incident_agg_change WHERE seq > :since"), {"since": since}
        ).scalars()
    )
    rows, open_rows = _facts(conn, days)
    epoch = date(1970, 1, 1)
    spliced = cube_mod.splice(cube, [(d - epoch).days for d in days], rows, open_rows, _names(conn))
    return spliced, mark


__all__ = ["autocommit", "change_mark", "generation", "load_cube", "refresh", "update_cube"]
