"""Tile speed: non-point layers keep their geometry in Web Mercator too (``geom_3857``).

A stored generated column (``ST_Transform(geom, 3857)``): PostgreSQL computes it on every
insert and update of ``geom``, whoever writes, so tiles read polygons already projected
instead of reprojecting them on every request. Point layers are left out: a point is cheap
to project, and their bulk imports would pay for the extra column.

Revision ID: 0010_tile_speed
Revises: 0009_cube_incremental
Create Date: 2026-11-26 14:20:00
"""

from __future__ import annotations

from alembic import op

revision: str = "0010_tile_speed"
down_revision: str | None = "0009_cube_incremental"
branch_labels: str | None = None
depends_on: str | None = None

# Non-point layers at this revision: table → geometry type of ``geom``.
LAYERS = {
    "district": "MultiPolygon",
    "township": "MultiPolygon",
    "community": "MultiPolygon",
    "grid": "MultiPolygon",
    "police_unit": "MultiPolygon",
    "urban_unit": "MultiPolygon",
    "emergency_unit": "MultiPolygon",
    "hazard_zone": "Geometry",
    "key_site": "Geometry",
    "shelter": "Geometry",
}
COMMENT = "瓦片用 Web 墨卡托几何 (geom in EPSG:3857 for tiles; computed)"


def upgrade() -> None:
    for table, kind in LAYERS.items():
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN geom_3857 geometry({kind}, 3857) "
            "GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED"
        )
        op.execute(f"COMMENT ON COLUMN {table}.geom_3857 IS '{COMMENT}'")


def downgrade() -> None:
    for table in LAYERS:
        op.execute(f"ALTER TABLE {table} DROP COLUMN geom_3857")
