"""Support tables of the map APIs: the vector-tile cache and the incident pre-aggregate.

Triggers on every layer table (raw SQL in migration ``0003_map``) keep them honest: a
statement that writes a layer bumps that layer's generation in ``layer_state``, deletes the
cached tiles its old and new rows touch, and, for incidents, marks the local days it
changed in ``incident_agg_dirty_day`` so that :func:`gridgov.layers.aggregates.refresh`
recomputes only those days.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)

from gridgov.layers.assignment import scratch_name
from gridgov.layers.spec import SRID

# The time zone whose calendar days the incident pre-aggregate counts in.
LOCAL_TIME_ZONE = "Asia/Shanghai"
OPEN_STATUSES_SQL = "status NOT IN ('closed', 'evaluated')"


def build_map_support_tables(metadata: MetaData) -> None:
    """Add the tile cache, layer generations and incident pre-aggregate to ``metadata``."""
    Table(
        "layer_state",
        metadata,
        Column("layer", Text, primary_key=True),
        Column("generation", BigInteger, nullable=False, server_default=text("0")),
        Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        comment="图层变更计数 (per-layer change counter, bumped by triggers)",
    )
    # UNLOGGED: a cache needs no WAL; after a crash PostgreSQL empties it, which is correct.
    Table(
        "tile_cache",
        metadata,
        Column("layer", Text, nullable=False),
        Column("z", SmallInteger, nullable=False),
        Column("x", Integer, nullable=False),
        Column("y", Integer, nullable=False),
        Column("mvt", LargeBinary, nullable=False),
        Column(
            "bounds",
            Geometry(geometry_type="POLYGON", srid=SRID, spatial_index=True),
            nullable=False,
            comment="瓦片范围含缓冲 (tile envelope with its buffer, CGCS2000)",
        ),
        Column("expires_at", DateTime(timezone=True), nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("layer", "z", "x", "y"),
        Index(None, "created_at"),
        prefixes=["UNLOGGED"],
        comment="矢量瓦片缓存 (vector tile cache; invalidated by layer triggers)",
    )
    # Point clusters of low-zoom tiles (migration 0006_map_speed keeps them by triggers).
    # No CHECK (n >= 0): INSERT ... ON CONFLICT checks the proposed row (a decrement) first.
    Table(
        "tile_cluster",
        metadata,
        Column("layer", Text, nullable=False),
        Column("z", SmallInteger, nullable=False),
        Column("cx", Integer, nullable=False, comment="格列 (cell column, 1/64 tile)"),
        Column("cy", Integer, nullable=False, comment="格行 (cell row, 1/64 tile)"),
        Column("n", Integer, nullable=False),
        Column("sx", Float(precision=53), nullable=False),
        Column("sy", Float(precision=53), nullable=False),
        PrimaryKeyConstraint("layer", "z", "cx", "cy"),
        Index("ix_tile_cluster_tile", "layer", "z", text("(cx / 64)"), text("(cy / 64)")),
        Index("ix_tile_cluster_empty", "layer", postgresql_where=text("n = 0")),
        comment="低缩放级别点聚合 (point clusters per 1/64-tile cell; kept by triggers)",
    )
    Table(
        "incident_agg",
        metadata,
        Column("day", Date, nullable=False, comment="上报日期（北京时间）(local day reported)"),
        Column("cell", BigInteger, nullable=False, comment="H3 res 10"),
        Column("cell9", BigInteger, nullable=False),
        Column("cell8", BigInteger, nullable=False),
        Column("cell7", BigInteger, nullable=False),
        Column("category", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("district_code", Text),
        Column("township_code", Text),
        Column("community_code", Text),
        Column("grid_code", Text),
        Column("police_station_code", Text),
        Column("policing_area_code", Text),
        Column("urban_unit_code", Text),
        Column("emergency_unit_code", Text),
        Column("n", Integer, nullable=False),
        CheckConstraint("n > 0", name="n_positive"),
        Index(None, "day"),
        comment="事件预聚合 (incident counts per day, H3 cell, category, status and unit)",
    )
    Table(
        "incident_agg_dirty_day",
        metadata,
        Column("day", Date, primary_key=True),
        comment="待重算的预聚合日期 (days the incident pre-aggregate must recompute)",
    )
    Table(
        "incident_agg_change",
        metadata,
        Column("day", Date, primary_key=True),
        Column(
            "seq",
            BigInteger,
            nullable=False,
            comment="重算批次编号 (number of the refresh that last recomputed the day)",
        ),
        Index(None, "seq"),
        comment="预聚合重算记录 (which pre-aggregate days each refresh recomputed)",
    )
    # Overdue depends on now(): it is counted from the few open incidents, via this index.
    incident = metadata.tables["incident"]
    Index(
        "ix_incident_open_deadline",
        incident.c.deadline_at,
        postgresql_where=text(OPEN_STATUSES_SQL),
    )


# Web Mercator cells of the point clusters: as migration 0006 / 0012 and tiles.py bin them.
_ORIGIN = 20037508.3427892  # half the equator in EPSG:3857 metres
_CELL_BITS = 6  # 64 × 64 cells per tile


def cell_size_sql(zoom: str) -> str:
    """SQL for the cell size (metres, float8) at ``zoom`` (SQL), as migration 0012's
    trigger computes it: a numeric quotient, then a double."""
    return f"({2 * _ORIGIN} / (1::bigint << ({zoom} + {_CELL_BITS})))::float8"


def _add_cluster_cells(conn: Connection, layer: str, mercator: str, zooms: tuple[int, int]) -> None:
    """What the cluster trigger does for an insert (migration 0012), set-based, on
    ``mercator`` (SQL yielding ``x``, ``y``: each new point's ``ST_Transform(geom, 3857)``,
    as the trigger computes it) for the layer's zooms.

    The cells are counted first in a table of their own: a ``CREATE TABLE AS`` may use
    the planner's parallel workers where an ``INSERT … SELECT`` may not. They are then
    added in key order (sorted inserts into the cell table's indexes); plainly when the
    layer has no cell yet (its writers wait for the caller's lock, see
    :func:`bulk_insert`), which spares a probe of the primary key per cell.
    """
    cells = scratch_name("cells")
    lo, hi = zooms
    # Each point is binned at the finest zoom only; a coarser zoom's cells are the finest
    # ones' shifted right (cx >> k). That is exact: each zoom's cell size is 2^k times
    # the finest one's, bit for bit (a test checks it for every zoom), and dividing
    # by a power of two commutes with rounding, so the floors agree with binning each
    # point at each zoom, as the trigger does.
    conn.execute(
        text(
            f"""
            CREATE UNLOGGED TABLE {cells} AS
            SELECT CAST(:hi AS int) AS z, cx, cy, count(*) AS n, sum(x) AS sx, sum(y) AS sy
            FROM (SELECT x, y,
                         floor((x + {_ORIGIN}) / size)::int AS cx,
                         floor(({_ORIGIN} - y) / size)::int AS cy
                  FROM ({mercator}) p,
                       (SELECT {cell_size_sql("CAST(:hi AS int)")} AS size) finest
            ) c
            GROUP BY cx, cy
            """
        ),
        {"hi": hi},
    )
    coarser = scratch_name("coarser_cells")
    conn.execute(
        text(
            f"""
            CREATE UNLOGGED TABLE {coarser} AS
            SELECT coarser.z, f.cx >> (:hi - coarser.z) AS cx, f.cy >> (:hi - coarser.z) AS cy,
                   sum(f.n) AS n, sum(f.sx) AS sx, sum(f.sy) AS sy
            FROM {cells} f CROSS JOIN generate_series(CAST(:lo AS int), :hi - 1) AS coarser(z)
            GROUP BY 1, 2, 3
            """
        ),
        {"lo": lo, "hi": hi},
    )
    first = not conn.execute(
        text("SELECT EXISTS (SELECT 1 FROM tile_cluster WHERE layer = :layer)"), {"layer": layer}
    ).scalar_one()
    merge = (
        ""
        if first
        else """ON CONFLICT (layer, z, cx, cy) DO UPDATE
           SET n = c.n + EXCLUDED.n, sx = c.sx + EXCLUDED.sx, sy = c.sy + EXCLUDED.sy"""
    )
    conn.execute(
        text(
            f"""
            INSERT INTO tile_cluster AS c (layer, z, cx, cy, n, sx, sy)
            SELECT :layer, z, cx, cy, n, sx, sy
            FROM (SELECT * FROM {cells} UNION ALL SELECT * FROM {coarser}) all_cells
            ORDER BY z, cx, cy
            {merge}
            """
        ),
        {"layer": layer},
    )
    conn.execute(text(f"DROP TABLE {cells}, {coarser}"))


def _cluster_zooms(conn: Connection, trigger: str, layer: str) -> tuple[int, int] | None:
    """The zoom range of the layer's enabled cluster insert trigger, if it has one."""
    row = conn.execute(
        text(
            "SELECT encode(tgargs, 'escape') FROM pg_trigger "
            "WHERE tgrelid = CAST(:layer AS regclass) AND tgname = :name AND tgenabled <> 'D'"
        ),
        {"layer": layer, "name": trigger},
    ).first()
    if row is None:
        return None
    lo, hi = str(row[0]).split("\\000")[:2]
    return int(lo), int(hi)


@contextmanager
def bulk_insert(
    conn: Connection, layer: str, new_rows: str, mercator: str | None = None
) -> Iterator[None]:
    """Insert many rows into ``layer`` without its per-statement triggers' transition
    table, then do the triggers' work once, set-based.

    The ``AFTER INSERT … REFERENCING NEW TABLE`` triggers copy every inserted row into a
    tuple store before they run: for a million incidents that copy costs more than the
    insert itself. Inside the caller's transaction the triggers are disabled around the
    block (``ALTER TABLE … DISABLE TRIGGER`` holds a SHARE ROW EXCLUSIVE lock until
    commit, so other writers of the layer wait; readers do not), and afterwards this does
    exactly what they do for an insert of over 1,000 rows: bump the layer's generation,
    drop its cached tiles and, for incidents, mark the local days of ``new_rows`` (SQL
    yielding a ``reported_at`` column) for the pre-aggregate. With ``mercator`` (SQL
    yielding ``x``, ``y`` of the same new rows in EPSG:3857), a clustered layer's cluster
    trigger is skipped too and its cells are added set-based (:func:`_add_cluster_cells`).
    Others never see a trigger disabled: the change is rolled back or re-enabled before
    commit.
    """
    trigger = f"gridgov_{layer}_changed_ins"
    cluster_trigger = f"gridgov_{layer}_cluster_ins"
    zooms = _cluster_zooms(conn, cluster_trigger, layer) if mercator is not None else None
    disabled = [trigger] + ([cluster_trigger] if zooms is not None else [])
    for name in disabled:
        conn.execute(text(f"ALTER TABLE {layer} DISABLE TRIGGER {name}"))
    yield
    for name in disabled:
        conn.execute(text(f"ALTER TABLE {layer} ENABLE TRIGGER {name}"))
    if zooms is not None and mercator is not None:
        _add_cluster_cells(conn, layer, mercator, zooms)
    conn.execute(
        text(
            "INSERT INTO layer_state AS s (layer, generation, changed_at) "
            "VALUES (:layer, 1, now()) ON CONFLICT (layer) DO UPDATE "
            "SET generation = s.generation + 1, changed_at = now()"
        ),
        {"layer": layer},
    )
    conn.execute(text("DELETE FROM tile_cache WHERE layer = :layer"), {"layer": layer})
    if layer == "incident":
        conn.execute(
            text(
                "INSERT INTO incident_agg_dirty_day (day) "
                f"SELECT DISTINCT (reported_at AT TIME ZONE '{LOCAL_TIME_ZONE}')::date "
                f"FROM ({new_rows}) n ON CONFLICT DO NOTHING"
            )
        )


__all__ = ["LOCAL_TIME_ZONE", "OPEN_STATUSES_SQL", "build_map_support_tables", "bulk_insert"]
