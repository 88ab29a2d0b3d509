"""The cluster trigger finds moved points without joining ``old_rows`` to ``new_rows``.

PostgreSQL estimates a transition table at one row, whatever it holds, so the join of an
``UPDATE``'s old and new rows by id (migration 0012) was planned as a nested loop: every
old row against every new one. Once PL/pgSQL had kept that plan on a connection (after a
few one-row updates, such as status changes), a 50,000-row update on the same connection
(a reassignment after a redraw) ran for hours; the test suite hung on it in the demo
city. The moved points are now found by grouping both sides by (id, geom) and keeping
the groups whose signs do not cancel: an unchanged row's old and new point cancel
exactly (integer signs, before any coordinate is summed), a moved row leaves -1 at its
old point and +1 at its new one. A grouping has no join to plan badly. (Turning nested
loops off for the function instead made every one-row insert cost 170–390 ms.)

Revision ID: 0018_trigger_plans
Revises: 0017_agg_units
Create Date: 2026-11-27 20:30:00
"""

from __future__ import annotations

from alembic import op

revision: str = "0018_trigger_plans"
down_revision: str | None = "0017_agg_units"
branch_labels: str | None = None
depends_on: str | None = None

CELLS_PER_TILE_BITS = 6  # 64 × 64 cells per tile (as 0006 and 0012)
ORIGIN = 20037508.3427892  # half the equator in EPSG:3857 metres (as 0006 and 0012)
_SIZE = f"({2 * ORIGIN} / (1::bigint << (z + {CELLS_PER_TILE_BITS})))"

MOVED_BY_GROUPING = """
    SELECT ST_Transform(geom, 3857) AS p, w FROM (
        SELECT id, geom, sum(w) AS w FROM (
            SELECT id, geom, -1 AS w FROM old_rows
            UNION ALL
            SELECT id, geom, 1 FROM new_rows
        ) sides
        GROUP BY id, geom
        HAVING sum(w) <> 0
    ) moved
"""
MOVED_BY_JOIN_0012 = (
    "SELECT ST_Transform(o.geom, 3857) AS p, -1 AS w FROM old_rows o "
    "JOIN new_rows n ON n.id = o.id WHERE NOT ST_Equals(o.geom, n.geom) "
    "UNION ALL SELECT ST_Transform(n.geom, 3857), 1 FROM old_rows o "
    "JOIN new_rows n ON n.id = o.id WHERE NOT ST_Equals(o.geom, n.geom)"
)


def _apply(source: str, prune: bool = True) -> str:
    """Add the signed points of ``source`` (p: 3857 point, w: +1 / -1) to the cells,
    exactly as migration 0012 does."""
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


def _function(moved: str) -> str:
    inserted = _apply("SELECT ST_Transform(geom, 3857) AS p, 1 AS w FROM new_rows", prune=False)
    deleted = _apply("SELECT ST_Transform(geom, 3857) AS p, -1 AS w FROM old_rows")
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
        {_apply(moved)}
    END IF;
    RETURN NULL;
END
$fn$
"""


def upgrade() -> None:
    op.execute(_function(MOVED_BY_GROUPING))


def downgrade() -> None:
    op.execute(_function(MOVED_BY_JOIN_0012))
