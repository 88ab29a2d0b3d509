"""Grid pieces by department unit (grid_atom) for the fast assignment path.

Revision ID: 0004_incident_bulk
Revises: 0003_map
Create Date: 2026-11-26 11:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0004_incident_bulk"
down_revision: str | None = "0003_map"
branch_labels: str | None = None
depends_on: str | None = None


# Whether two polygons' interiors meet; TRUE where GEOS throws (nearly coincident edges).
# Used only to cut overlaps out of grid pieces, so a throw can only make assignment slower.
MEETS = """
CREATE FUNCTION gridgov_interiors_meet(a geometry, b geometry) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
BEGIN
    RETURN ST_Relate(a, b, 'T********');
EXCEPTION WHEN OTHERS THEN
    RETURN TRUE;
END
$fn$
"""


def upgrade() -> None:
    op.execute(MEETS)
    op.create_geospatial_table(
        "grid_atom",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("police_station_code", sa.Text(), nullable=True),
        sa.Column("policing_area_code", sa.Text(), nullable=True),
        sa.Column("urban_unit_code", sa.Text(), nullable=True),
        sa.Column("emergency_unit_code", sa.Text(), nullable=True),
        sa.Column(
            "clean",
            sa.Boolean(),
            nullable=False,
            comment="可用于快速分派 (usable by the fast assignment path)",
        ),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grid.id"], name=op.f("fk_grid_atom_grid_id_grid"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_atom")),
    )
    # create_geospatial_table drops table options: set the comment here.
    op.create_table_comment(
        "grid_atom", "网格按责任区切分的单元 (grid pieces by department unit, precomputed)"
    )
    op.create_geospatial_index(
        "idx_grid_atom_geom",
        "grid_atom",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_grid_atom_grid_id"), "grid_atom", ["grid_id"], unique=False)
    op.create_table(
        "grid_atom_state",
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("layer", name=op.f("pk_grid_atom_state")),
        comment="网格单元对应的图层版本 (layer generations grid_atom was computed from)",
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION gridgov_interiors_meet(geometry, geometry)")
    op.drop_table("grid_atom_state")
    op.drop_index(op.f("ix_grid_atom_grid_id"), table_name="grid_atom")
    op.drop_geospatial_index(
        "idx_grid_atom_geom",
        table_name="grid_atom",
        postgresql_using="gist",
        column_name="geom",
    )
    op.drop_geospatial_table("grid_atom")
