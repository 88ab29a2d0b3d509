"""Map speed: point clusters for low-zoom tiles, kept in step by triggers.

``tile_cluster`` holds, for each clustered point layer and each zoom up to the layer's
``cluster_max_zoom``, the count and the coordinate sums (EPSG:3857) of its points per cell
of 1/64 of a tile. Statement triggers (``gridgov_cluster_changed``, zoom range as trigger
arguments) add the new rows and subtract the old ones, so a low-zoom tile reads at most
64 × 64 small rows instead of every point, whoever writes the layer.

The tile cache stores tiles uncompressed (``STORAGE EXTERNAL``): they are protobuf already.

Revision ID: 0006_map_speed
Revises: 0005_accounts
Create Date: 2026-11-26 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006_map_speed"
down_revision: str | None = "0005_accounts"
branch_labels: str | None = None
depends_on: str | None = None

# Point layers clustered at low zoom at this revision: table → (min zoom, max zoom).
CLUSTERED = {"incident": (12, 14)}
CELLS_PER_TILE_BITS = 6  # 64 × 64 cells per tile
ORIGIN = 20037508.3427892  # half the equator in EPSG:3857 metres

# Cell column / row of a 3857 point ``p`` at zoom ``z`` (a tile of zoom z + 6).
_CELL = (
    f"floor((ST_X(p) + {ORIGIN}) / ({2 * ORIGIN} / (1::bigint << (z + {CELLS_PER_TILE_BITS}))))"
    "::int AS cx, "
    f"floor(({ORIGIN} - ST_Y(p)) / ({2 * ORIGIN} / (1::bigint << (z + {CELLS_PER_TILE_BITS}))))"
    "::int AS cy"
)


def _apply(source: str, prune: bool = True) -> str:
    """Add the signed points of ``source`` (columns p: 3857 point, w: +1 / -1) to the cells;
    ``prune`` drops the cells this emptied (never needed after an insert)."""
    emptied = "DELETE FROM tile_cluster WHERE layer = TG_TABLE_NAME AND n = 0;" if prune else ""
    return f"""
        INSERT INTO tile_cluster AS c (layer, z, cx, cy, n, sx, sy)
        SELECT TG_TABLE_NAME, z, cx, cy, sum(w), sum(w * ST_X(p)), sum(w * ST_Y(p))
        FROM (SELECT z, p, w, {_CELL}
              FROM ({source}) s CROSS JOIN generate_series(lo, hi) AS z) cells
        GROUP BY z, cx, cy
        HAVING sum(w) <> 0 OR sum(w * ST_X(p)) <> 0 OR sum(w * ST_Y(p)) <> 0
        ON CONFLICT (layer, z, cx, cy) DO UPDATE
           SET n = c.n + EXCLUDED.n, sx = c.sx + EXCLUDED.sx, sy = c.sy + EXCLUDED.sy;
        {emptied}
    """


_INSERTED = _apply("SELECT ST_Transform(geom, 3857) AS p, 1 AS w FROM new_rows", prune=False)
_DELETED = _apply("SELECT ST_Transform(geom, 3857) AS p, -1 AS w FROM old_rows")
# Only rows whose point moved: a status change costs nothing here.
_MOVED = _apply(
    "SELECT ST_Transform(o.geom, 3857) AS p, -1 AS w FROM old_rows o "
    "JOIN new_rows n ON n.id = o.id WHERE NOT ST_Equals(o.geom, n.geom) "
    "UNION ALL SELECT ST_Transform(n.geom, 3857), 1 FROM old_rows o "
    "JOIN new_rows n ON n.id = o.id WHERE NOT ST_Equals(o.geom, n.geom)"
)

CLUSTER_CHANGED = f"""
CREATE FUNCTION gridgov_cluster_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    lo int := TG_ARGV[0]::int;
    hi int := TG_ARGV[1]::int;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM tile_cluster WHERE layer = TG_TABLE_NAME;
    ELSIF TG_OP = 'INSERT' THEN
        {_INSERTED}
    ELSIF TG_OP = 'DELETE' THEN
        {_DELETED}
    ELSE
        {_MOVED}
    END IF;
    RETURN NULL;
END
$fn$
"""

TRIGGERS = (
    ("ins", "AFTER INSERT", "REFERENCING NEW TABLE AS new_rows"),
    ("upd", "AFTER UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("del", "AFTER DELETE", "REFERENCING OLD TABLE AS old_rows"),
    ("trunc", "AFTER TRUNCATE", ""),
)


def upgrade() -> None:
    # Tiles are already compact protobuf: storing them uncompressed saves PostgreSQL a
    # compression on every store and a decompression on every cache hit.
    op.execute("ALTER TABLE tile_cache ALTER COLUMN mvt SET STORAGE EXTERNAL")
    op.create_table(
        "tile_cluster",
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("z", sa.SmallInteger(), nullable=False),
        sa.Column("cx", sa.Integer(), nullable=False, comment="格列 (cell column, 1/64 tile)"),
        sa.Column("cy", sa.Integer(), nullable=False, comment="格行 (cell row, 1/64 tile)"),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("sx", sa.Float(precision=53), nullable=False),
        sa.Column("sy", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("layer", "z", "cx", "cy", name=op.f("pk_tile_cluster")),
        comment="低缩放级别点聚合 (point clusters per 1/64-tile cell; kept by triggers)",
    )
    op.create_index(
        "ix_tile_cluster_tile",
        "tile_cluster",
        ["layer", "z", sa.text("(cx / 64)"), sa.text("(cy / 64)")],
        unique=False,
    )
    # Emptied cells are deleted by every statement: find them without a scan.
    op.create_index(
        "ix_tile_cluster_empty",
        "tile_cluster",
        ["layer"],
        unique=False,
        postgresql_where=sa.text("n = 0"),
    )
    op.execute(CLUSTER_CHANGED)
    for table, (lo, hi) in CLUSTERED.items():
        op.execute(
            f"""
            INSERT INTO tile_cluster (layer, z, cx, cy, n, sx, sy)
            SELECT '{table}', z, cx, cy, count(*), sum(ST_X(p)), sum(ST_Y(p))
            FROM (SELECT z, p, {_CELL}
                  FROM (SELECT ST_Transform(geom, 3857) AS p FROM {table}) s
                  CROSS JOIN generate_series({lo}, {hi}) AS z) cells
            GROUP BY z, cx, cy
            """
        )
        for suffix, event, referencing in TRIGGERS:
            op.execute(
                f"CREATE TRIGGER gridgov_{table}_cluster_{suffix} {event} ON {table} "
                f"{referencing} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION gridgov_cluster_changed('{lo}', '{hi}')"
            )


def downgrade() -> None:
    for table in CLUSTERED:
        for suffix, _event, _referencing in TRIGGERS:
            op.execute(f"DROP TRIGGER gridgov_{table}_cluster_{suffix} ON {table}")
    op.execute("DROP FUNCTION gridgov_cluster_changed()")
    op.execute("ALTER TABLE tile_cache ALTER COLUMN mvt SET STORAGE EXTENDED")
    op.drop_index("ix_tile_cluster_empty", table_name="tile_cluster")
    op.drop_index("ix_tile_cluster_tile", table_name="tile_cluster")
    op.drop_table("tile_cluster")
