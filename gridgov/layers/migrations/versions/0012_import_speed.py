"""Import speed: the point-cluster trigger reprojects each point once, not twelve times.

Migration 0006's ``gridgov_cluster_changed`` computed the cell of a point with ``ST_X(p)``
and ``ST_Y(p)`` on ``p = ST_Transform(geom, 3857)`` in a subquery the planner flattens,
so every point was reprojected for each of cx, cy, sx and sy and for each zoom (12 times
for zooms 12–14): about 116 µs a row on an incremental import. Here the points are
reprojected once, into plain x / y numbers (a ``MATERIALIZED`` CTE keeps the planner from
inlining the transform again), each zoom's cell size is computed once (not a numeric
division per point and zoom), and the points binned per zoom. Same cells, same counts
and sums; the triggers themselves are unchanged (``CREATE OR REPLACE`` keeps them
attached).

Revision ID: 0012_import_speed
Revises: 0011_unit_edit
Create Date: 2026-11-26 21:30:00
"""

from __future__ import annotations

from collections.abc import Callable

from alembic import op

revision: str = "0012_import_speed"
down_revision: str | None = "0011_unit_edit"
branch_labels: str | None = None
depends_on: str | None = None

CELLS_PER_TILE_BITS = 6  # 64 × 64 cells per tile (as 0006)
ORIGIN = 20037508.3427892  # half the equator in EPSG:3857 metres (as 0006)
_SIZE = f"({2 * ORIGIN} / (1::bigint << (z + {CELLS_PER_TILE_BITS})))"


def _apply(source: str, prune: bool = True) -> str:
    """Add the signed points of ``source`` (columns p: 3857 point, w: +1 / -1) to the
    cells; each point is reprojected and split into x / y once, and each zoom's cell
    size (the numeric of 0006, as the double 0006 divided by) computed once."""
    emptied = "DELETE FROM tile_cluster WHERE layer = TG_TABLE_NAME AND n = 0;" if prune else ""
    return f"""
        WITH pts AS MATERIALIZED (
            SELECT ST_X(p) AS x, ST_Y(p) AS y, w FROM ({source}) s
        ),
        zooms AS (
            SELECT z, {_SIZE}::float8 AS size FROM generate_series(lo, hi) AS z
        )
        INSERT INTO tile_cluster AS c (layer, z, cx, cy, n, sx, sy)
        SELECT TG_TABLE_NAME, z, cx, cy, sum(w), sum(w * x), sum(w * y)
        FROM (SELECT z, x, y, w,
                     floor((x + {ORIGIN}) / size)::int AS cx,
                     floor(({ORIGIN} - y) / size)::int AS cy
              FROM pts CROSS JOIN zooms) cells
        GROUP BY z, cx, cy
        HAVING sum(w) <> 0 OR sum(w * x) <> 0 OR sum(w * y) <> 0
        ORDER BY z, cx, cy
        ON CONFLICT (layer, z, cx, cy) DO UPDATE
           SET n = c.n + EXCLUDED.n, sx = c.sx + EXCLUDED.sx, sy = c.sy + EXCLUDED.sy;
        {emptied}
    """


def _function(apply: Callable[..., str]) -> str:
    inserted = apply("SELECT ST_Transform(geom, 3857) AS p, 1 AS w FROM new_rows", prune=False)
    deleted = apply("SELECT ST_Transform(geom, 3857) AS p, -1 AS w FROM old_rows")
    moved = apply(
        "SELECT ST_Transform(o.geom, 3857) AS p, -1 AS w FROM old_rows o "
        "JOIN new_rows n ON n.id = o.id WHERE NOT ST_Equals(o.geom, n.geom) "
        "UNION ALL SELECT ST_Transform(n.geom, 3857), 1 FROM old_rows o "
        "JOIN new_rows n ON n.id = o.id WHERE NOT ST_Equals(o.geom, n.geom)"
    )
    return f"""
CREATE OR REPLACE FUNCTION gridgov_cluster_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    lo int := TG_ARGV[0]::int;
    hi int := TG_ARGV[1]::int;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM tile_cluster WHERE layer = TG_TABLE_NAME;
    ELSIF TG_OP = 'INSERT' THEN
        {inserted}
    ELSIF TG_OP = 'DELETE' THEN
        {deleted}
    ELSE
        {moved}
    END IF;
    RETURN NULL;
END
$fn$
"""


def _apply_0006(source: str, prune: bool = True) -> str:
    """0006's body, restored on downgrade."""
    cell = (
        f"floor((ST_X(p) + {ORIGIN}) / {_SIZE})::int AS cx, "
        f"floor(({ORIGIN} - ST_Y(p)) / {_SIZE})::int AS cy"
    )
    emptied = "DELETE FROM tile_cluster WHERE layer = TG_TABLE_NAME AND n = 0;" if prune else ""
    return f"""
        INSERT INTO tile_cluster AS c (layer, z, cx, cy, n, sx, sy)
        SELECT TG_TABLE_NAME, z, cx, cy, sum(w), sum(w * ST_X(p)), sum(w * ST_Y(p))
        FROM (SELECT z, p, w, {cell}
              FROM ({source}) s CROSS JOIN generate_series(lo, hi) AS z) cells
        GROUP BY z, cx, cy
        HAVING sum(w) <> 0 OR sum(w * ST_X(p)) <> 0 OR sum(w * ST_Y(p)) <> 0
        ON CONFLICT (layer, z, cx, cy) DO UPDATE
           SET n = c.n + EXCLUDED.n, sx = c.sx + EXCLUDED.sx, sy = c.sy + EXCLUDED.sy;
        {emptied}
    """


def upgrade() -> None:
    op.execute(_function(_apply))


def downgrade() -> None:
    op.execute(_function(_apply_0006))
