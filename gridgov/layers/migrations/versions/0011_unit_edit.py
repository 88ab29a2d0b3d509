"""Department unit editing: the unit edit log (unit_edit), unit versions (unit_version),
and unit plans (plan.unit_layer / plan.unit_code, plan_unit).

Design: the unit tables keep exactly one row per unit in force, under its unique code, so
that the incidents' foreign keys on ``police_unit.code`` / ``urban_unit.code`` /
``emergency_unit.code`` stay plain foreign keys (a versioned unit table would repeat codes
and lose them, as ``grid`` did). The history lives beside them in ``unit_version``: every
version an edit closes or opens, with ``valid_from`` / ``valid_to`` and the edit that
opened it; at most one open version per code (partial unique index). A retired unit's row
leaves the live table once its incidents are reassigned, and its versions stay, so its
code is never used again. ``unit_edit`` is the log: who, why, which versions.

Revision ID: 0011_unit_edit
Revises: 0010_tile_speed
Create Date: 2026-11-26 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0011_unit_edit"
down_revision: str | None = "0010_tile_speed"
branch_labels: str | None = None
depends_on: str | None = None

_OPERATIONS = (
    "operation IN ('create', 'replace', 'update', 'retire', 'split', 'merge', "
    "'move_boundary', 'publish')"
)
_LAYERS = "layer IN ('police_unit', 'urban_unit', 'emergency_unit')"


def _codes(name: str, comment: str | None = None) -> sa.Column[object]:
    return sa.Column(
        name,
        postgresql.ARRAY(sa.Text()),
        server_default=sa.text("'{}'"),
        nullable=False,
        comment=comment,
    )


def upgrade() -> None:
    op.create_table(
        "unit_edit",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.Text(), nullable=False, comment="操作人 (who made the edit)"),
        sa.Column("reason", sa.Text(), nullable=False, comment="调整原因 (why)"),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("district_code", sa.Text(), nullable=False),
        sa.Column(
            "codes",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            comment="涉及的单元编码 (units touched)",
        ),
        _codes("retired_codes"),
        sa.Column(
            "old_versions",
            postgresql.ARRAY(sa.BigInteger()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "new_versions",
            postgresql.ARRAY(sa.BigInteger()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("incidents_moved", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(_OPERATIONS, name=op.f("ck_unit_edit_operation_choice")),
        sa.CheckConstraint(_LAYERS, name=op.f("ck_unit_edit_layer_choice")),
        sa.CheckConstraint("length(btrim(reason)) > 0", name=op.f("ck_unit_edit_reason_given")),
        sa.CheckConstraint("length(btrim(actor)) > 0", name=op.f("ck_unit_edit_actor_given")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_edit")),
        comment="部门单元调整记录 (department unit edit log: who, why, which versions)",
    )
    op.create_index(
        op.f("ix_unit_edit_layer_district_code_at"),
        "unit_edit",
        ["layer", "district_code", "at"],
        unique=False,
    )
    op.create_table(
        "unit_version",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False, comment="单元编码 (unit code)"),
        sa.Column("district_code", sa.Text(), nullable=False),
        sa.Column("township_code", sa.Text(), nullable=True),
        sa.Column(
            "attrs",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "edit_id",
            sa.BigInteger(),
            nullable=True,
            comment="the edit that opened it (NULL: the state before the first edit)",
        ),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint(_LAYERS, name=op.f("ck_unit_version_layer_choice")),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to >= valid_from",
            name=op.f("ck_unit_version_valid_period"),
        ),
        sa.ForeignKeyConstraint(
            ["edit_id"], ["unit_edit.id"], name=op.f("fk_unit_version_edit_id_unit_edit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_version")),
        comment="部门单元版本 (every version of a department unit an edit closed or opened)",
    )
    op.create_index(
        op.f("ix_unit_version_layer_code_valid_from"),
        "unit_version",
        ["layer", "code", "valid_from"],
        unique=False,
    )
    op.create_index(
        "uq_unit_version_open",
        "unit_version",
        ["layer", "code"],
        unique=True,
        postgresql_where=sa.text("valid_to IS NULL"),
    )

    op.add_column(
        "plan",
        sa.Column("unit_layer", sa.Text(), nullable=True, comment="unit plans: the unit layer"),
    )
    op.add_column(
        "plan",
        sa.Column(
            "unit_code", sa.Text(), nullable=True, comment="unit plans: the unit proposed for"
        ),
    )
    op.create_check_constraint(
        op.f("ck_plan_unit_layer_choice"),
        "plan",
        "unit_layer IS NULL OR unit_layer IN ('police_unit', 'urban_unit', 'emergency_unit')",
    )
    op.create_check_constraint(
        op.f("ck_plan_unit_given"), "plan", "(unit_layer IS NULL) = (unit_code IS NULL)"
    )
    op.create_table(
        "plan_unit",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False, comment="单元编码 (unit code)"),
        sa.Column("base_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4490,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_plan_unit_geom_valid")),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plan.id"],
            name=op.f("fk_plan_unit_plan_id_plan"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_unit")),
        sa.UniqueConstraint("plan_id", "code", name=op.f("uq_plan_unit_plan_id_code")),
        comment="方案中的部门单元 (a unit plan's proposed unit shapes)",
    )


def downgrade() -> None:
    op.drop_table("plan_unit")
    op.drop_constraint(op.f("ck_plan_unit_given"), "plan", type_="check")
    op.drop_constraint(op.f("ck_plan_unit_layer_choice"), "plan", type_="check")
    op.drop_column("plan", "unit_code")
    op.drop_column("plan", "unit_layer")
    op.drop_index("uq_unit_version_open", table_name="unit_version")
    op.drop_index(op.f("ix_unit_version_layer_code_valid_from"), table_name="unit_version")
    op.drop_table("unit_version")
    op.drop_index(op.f("ix_unit_edit_layer_district_code_at"), table_name="unit_edit")
    op.drop_table("unit_edit")
