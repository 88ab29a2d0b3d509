"""Map APIs: vector-tile cache, per-layer change counter and the incident pre-aggregate.

Statement-level triggers on every layer table (one function, ``gridgov_layer_changed``)
bump the layer's generation, drop the cached tiles the changed rows touch and, for
incidents, mark the local days whose pre-aggregate must be recomputed.

Revision ID: 0003_map
Revises: 0002_assignment
Create Date: 2026-11-26 08:57:08.185444
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0003_map"
down_revision: str | None = "0002_assignment"
branch_labels: str | None = None
depends_on: str | None = None

# Every layer table of the registry at this revision; a later layer adds its own triggers.
LAYER_TABLES = (
    "district",
    "township",
    "community",
    "grid",
    "building",
    "police_unit",
    "urban_unit",
    "emergency_unit",
    "hazard_zone",
    "rental_housing",
    "key_site",
    "shelter",
    "incident",
)

# Above this many changed rows a statement drops all of the layer's tiles at once.
LAYER_CHANGED = """
CREATE FUNCTION gridgov_layer_changed() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    changed bigint;
BEGIN
    INSERT INTO layer_state AS s (layer, generation, changed_at)
    VALUES (TG_TABLE_NAME, 1, now())
    ON CONFLICT (layer) DO UPDATE SET generation = s.generation + 1, changed_at = now();

    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM tile_cache WHERE layer = TG_TABLE_NAME;
        IF TG_TABLE_NAME = 'incident' THEN
            INSERT INTO incident_agg_dirty_day (day)
            SELECT DISTINCT day FROM incident_agg ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
    END IF;

    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT count(*) INTO changed FROM old_rows;
        IF changed > 1000 THEN
            DELETE FROM tile_cache WHERE layer = TG_TABLE_NAME;
        ELSIF changed > 0 THEN
            DELETE FROM tile_cache c USING old_rows o
            WHERE c.layer = TG_TABLE_NAME AND c.bounds && o.geom;
        END IF;
        IF TG_TABLE_NAME = 'incident' THEN
            INSERT INTO incident_agg_dirty_day (day)
            SELECT DISTINCT (reported_at AT TIME ZONE 'Asia/Shanghai')::date FROM old_rows
            ON CONFLICT DO NOTHING;
        END IF;
    END IF;

    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT count(*) INTO changed FROM new_rows;
        IF changed > 1000 THEN
            DELETE FROM tile_cache WHERE layer = TG_TABLE_NAME;
        ELSIF changed > 0 THEN
            DELETE FROM tile_cache c USING new_rows n
            WHERE c.layer = TG_TABLE_NAME AND c.bounds && n.geom;
        END IF;
        IF TG_TABLE_NAME = 'incident' THEN
            INSERT INTO incident_agg_dirty_day (day)
            SELECT DISTINCT (reported_at AT TIME ZONE 'Asia/Shanghai')::date FROM new_rows
            ON CONFLICT DO NOTHING;
        END IF;
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
    op.create_table(
        "incident_agg",
        sa.Column(
            "day", sa.Date(), nullable=False, comment="上报日期（北京时间）(local day reported)"
        ),
        sa.Column("cell", sa.BigInteger(), nullable=False, comment="H3 res 10"),
        sa.Column("cell9", sa.BigInteger(), nullable=False),
        sa.Column("cell8", sa.BigInteger(), nullable=False),
        sa.Column("cell7", sa.BigInteger(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("district_code", sa.Text(), nullable=True),
        sa.Column("township_code", sa.Text(), nullable=True),
        sa.Column("community_code", sa.Text(), nullable=True),
        sa.Column("grid_code", sa.Text(), nullable=True),
        sa.Column("police_station_code", sa.Text(), nullable=True),
        sa.Column("policing_area_code", sa.Text(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint("n > 0", name=op.f("ck_incident_agg_n_positive")),
        comment="事件预聚合 (incident counts per day, H3 cell, category, status and unit)",
    )
    op.create_index(op.f("ix_incident_agg_day"), "incident_agg", ["day"], unique=False)
    op.create_table(
        "incident_agg_dirty_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_incident_agg_dirty_day")),
        comment="待重算的预聚合日期 (days the incident pre-aggregate must recompute)",
    )
    op.create_table(
        "layer_state",
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("generation", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("layer", name=op.f("pk_layer_state")),
        comment="图层变更计数 (per-layer change counter, bumped by triggers)",
    )
    op.create_geospatial_table(
        "tile_cache",
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("z", sa.SmallInteger(), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("y", sa.Integer(), nullable=False),
        sa.Column("mvt", sa.LargeBinary(), nullable=False),
        sa.Column(
            "bounds",
            Geometry(
                geometry_type="POLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
            comment="瓦片范围含缓冲 (tile envelope with its buffer, CGCS2000)",
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("layer", "z", "x", "y", name=op.f("pk_tile_cache")),
        comment="矢量瓦片缓存 (vector tile cache; invalidated by layer triggers)",
    )
    # A cache needs no WAL: after a crash PostgreSQL empties it, which is correct.
    op.execute("ALTER TABLE tile_cache SET UNLOGGED")
    # create_geospatial_table drops table options: set the comment here.
    op.create_table_comment(
        "tile_cache", "矢量瓦片缓存 (vector tile cache; invalidated by layer triggers)"
    )
    op.create_geospatial_index(
        "idx_tile_cache_bounds",
        "tile_cache",
        ["bounds"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_tile_cache_created_at"), "tile_cache", ["created_at"], unique=False)
    op.create_index(
        "ix_incident_open_deadline",
        "incident",
        ["deadline_at"],
        unique=False,
        postgresql_where=sa.text("status NOT IN ('closed', 'evaluated')"),
    )
    op.execute(LAYER_CHANGED)
    layers = ", ".join(f"('{table}')" for table in LAYER_TABLES)
    op.execute(f"INSERT INTO layer_state (layer) VALUES {layers}")
    # Incidents already stored are counted by the first refresh.
    op.execute(
        "INSERT INTO incident_agg_dirty_day (day) "
        "SELECT DISTINCT (reported_at AT TIME ZONE 'Asia/Shanghai')::date FROM incident"
    )
    for table in LAYER_TABLES:
        for suffix, event, referencing in TRIGGERS:
            op.execute(
                f"CREATE TRIGGER gridgov_{table}_changed_{suffix} {event} ON {table} "
                f"{referencing} FOR EACH STATEMENT EXECUTE FUNCTION gridgov_layer_changed()"
            )


def downgrade() -> None:
    for table in LAYER_TABLES:
        for suffix, _event, _referencing in TRIGGERS:
            op.execute(f"DROP TRIGGER gridgov_{table}_changed_{suffix} ON {table}")
    op.execute("DROP FUNCTION gridgov_layer_changed()")
    op.drop_index(
        "ix_incident_open_deadline",
        table_name="incident",
        postgresql_where=sa.text("status NOT IN ('closed', 'evaluated')"),
    )
    op.drop_index(op.f("ix_tile_cache_created_at"), table_name="tile_cache")
    op.drop_geospatial_index(
        "idx_tile_cache_bounds",
        table_name="tile_cache",
        postgresql_using="gist",
        column_name="bounds",
    )
    op.drop_geospatial_table("tile_cache")
    op.drop_table("layer_state")
    op.drop_table("incident_agg_dirty_day")
    op.drop_index(op.f("ix_incident_agg_day"), table_name="incident_agg")
    op.drop_table("incident_agg")
