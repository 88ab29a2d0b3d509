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

from datetime import date
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from sqlalchemy import Connection, text

from gridgov.gis import cube as cube_mod
from gridgov.gis import h3bins
from gridgov.layers.catalog import INCIDENT_CATEGORIES, INCIDENT_STATUSES
from gridgov.layers.map_support import LOCAL_TIME_ZONE, OPEN_STATUSES_SQL

_LOCK = 0x67726964_61676700  # pg_advisory_xact_lock key: one refresher at a time
_CODES = ", ".join(f"{level}_code" for level in cube_mod.LEVELS)
_COARSE = tuple(r for r in h3bins.RESOLUTIONS if r != h3bins.FINE)
_DAY = f"(reported_at AT TIME ZONE '{LOCAL_TIME_ZONE}')::date"


def generation(conn: Connection) -> int | None:
    """The incident layer's change counter (bumped by every write statement)."""
    value = conn.execute(
        text("SELECT generation FROM layer_state WHERE layer = 'incident'")
    ).scalar_one_or_none()
    return int(value) if value is not None else None


def refresh(conn: Connection) -> int:
    """Recompute the pre-aggregate for every dirty day, in the caller's transaction.

    Returns the number of days recomputed (0 when nothing changed since the last refresh).
    """
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
    days: list[date] = list(
        conn.execute(text("DELETE FROM incident_agg_dirty_day RETURNING day")).scalars()
    )
    if not days:
        return 0
    conn.execute(text("DELETE FROM incident_agg WHERE day = ANY(:days)"), {"days": days})
    points = conn.execute(
        text(
            f"SELECT id, ST_X(geom) AS x, ST_Y(geom) AS y FROM incident WHERE {_DAY} = ANY(:days)"
        ),
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
    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise TypeError("the pre-aggregate needs the psycopg 3 driver")
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
    conn.execute(
        text(
            f"""
            INSERT INTO incident_agg (day, cell, cell9, cell8, cell7, category, status,
                                      {_CODES}, n)
            SELECT {_DAY}, c.cell, c.cell9, c.cell8, c.cell7, i.category, i.status,
                   {", ".join(f"i.{level}_code" for level in cube_mod.LEVELS)}, count(*)
            FROM incident i JOIN incident_cell_tmp c ON c.id = i.id
            GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
            """
        )
    )
    conn.execute(text("DROP TABLE incident_cell_tmp"))
    return len(days)


def _columns(result: Any, names: list[str]) -> dict[str, list[Any]]:
    rows = result.all()
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


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
    }
    return {
        level: {str(row[0]): str(row[1]) for row in conn.execute(text(statement)).all()}
        for level, statement in statements.items()
    }


def load_cube(conn: Connection) -> cube_mod.Cube:
    """The pre-aggregate and the open incidents, encoded for in-memory queries."""
    epoch_day = "(day - DATE '1970-01-01')"
    row_names = [
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
    rows = _columns(
        conn.execute(
            text(
                f"SELECT {epoch_day}, cell, cell9, cell8, cell7, category, status, {_CODES}, n "
                "FROM incident_agg"
            )
        ),
        row_names,
    )
    # Open incidents with a deadline: few, found through ix_incident_open_deadline.
    open_names = [
        "day",
        "x",
        "y",
        "category",
        "status",
        *(f"{level}_code" for level in cube_mod.LEVELS),
        "deadline",
    ]
    open_rows = _columns(
        conn.execute(
            text(
                f"SELECT ({_DAY} - DATE '1970-01-01'), ST_X(geom), ST_Y(geom), category, status, "
                f"{_CODES}, extract(epoch FROM deadline_at)::float8 FROM incident "
                f"WHERE {OPEN_STATUSES_SQL} AND deadline_at IS NOT NULL"
            )
        ),
        open_names,
    )
    for res in h3bins.RESOLUTIONS:
        open_rows[f"cell{res}"] = h3bins.cells(open_rows["x"], open_rows["y"], res).tolist()
    return cube_mod.build(
        rows,
        open_rows,
        [c.value for c in INCIDENT_CATEGORIES],
        [s.value for s in INCIDENT_STATUSES],
        h3bins.RESOLUTIONS,
        _names(conn),
    )


__all__ = ["generation", "load_cube", "refresh"]
