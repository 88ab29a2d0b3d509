"""Plans (网格调整方案): plan, plan_grid, plan_edit; grid_edit learns the "publish" operation.

Revision ID: 0008_plans
Revises: 0007_grid_edit
Create Date: 2026-11-26 14:06:27.993478
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0008_plans"
down_revision: str | None = "0007_grid_edit"
branch_labels: str | None = None
depends_on: str | None = None


OLD_OPERATIONS = "'create', 'replace', 'update', 'retire', 'split', 'merge', 'move_boundary'"
NEW_OPERATIONS = OLD_OPERATIONS + ", 'publish'"


def _grid_edit_operations(listed: str) -> None:
    op.drop_constraint(op.f("ck_grid_edit_operation_choice"), "grid_edit", type_="check")
    op.create_check_constraint(
        op.f("ck_grid_edit_operation_choice"), "grid_edit", f"operation IN ({listed})"
    )


def upgrade() -> None:
    _grid_edit_operations(NEW_OPERATIONS)
    op.create_table(
        "plan",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.Text(), nullable=False, comment="方案名称 (plan name)"),
        sa.Column("status", sa.Text(), server_default=sa.text("'draft'"), nullable=False),
        sa.Column("origin", sa.Text(), server_default=sa.text("'editor'"), nullable=False),
        sa.Column("district_code", sa.Text(), nullable=False),
        sa.Column("township_code", sa.Text(), nullable=False),
        sa.Column("community_code", sa.Text(), nullable=True, comment="NULL: the whole township"),
        sa.Column("reason", sa.Text(), nullable=False, comment="调整原因 (why)"),
        sa.Column("author", sa.Text(), nullable=False, comment="创建人 (who made it)"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_by", sa.Text(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.Text(), nullable=True),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=True, comment="生效时间"),
        sa.Column("note", sa.Text(), nullable=True, comment="最近的退回意见 (last rejection note)"),
        sa.CheckConstraint(
            "community_code IS NULL OR (community_code ~ '^[0-9]{12}$' AND left(community_code, 9) = township_code)",
            name=op.f("ck_plan_community_in_township"),
        ),
        sa.CheckConstraint(
            "district_code ~ '^[0-9]{6}$'", name=op.f("ck_plan_district_code_format")
        ),
        sa.CheckConstraint("origin IN ('editor', 'proposal')", name=op.f("ck_plan_origin_choice")),
        sa.CheckConstraint(
            "status <> 'published' OR effective_from IS NOT NULL",
            name=op.f("ck_plan_published_has_date"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'approved', 'published')",
            name=op.f("ck_plan_status_choice"),
        ),
        sa.CheckConstraint(
            "township_code ~ '^[0-9]{9}$'", name=op.f("ck_plan_township_code_format")
        ),
        sa.CheckConstraint(
            "left(township_code, 6) = district_code", name=op.f("ck_plan_township_in_district")
        ),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_plan_name_given")),
        sa.CheckConstraint("length(btrim(reason)) > 0", name=op.f("ck_plan_reason_given")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan")),
        comment="网格调整方案 (grid plans: edits not yet in force)",
    )
    op.create_index(
        op.f("ix_plan_township_code_status"), "plan", ["township_code", "status"], unique=False
    )
    op.create_table(
        "plan_edit",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("community_code", sa.Text(), nullable=False),
        sa.Column("codes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column(
            "retired_codes",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "operation IN ('create', 'replace', 'update', 'retire', 'split', 'merge', 'move_boundary', 'proposal')",
            name=op.f("ck_plan_edit_operation_choice"),
        ),
        sa.CheckConstraint("length(btrim(actor)) > 0", name=op.f("ck_plan_edit_actor_given")),
        sa.CheckConstraint("length(btrim(reason)) > 0", name=op.f("ck_plan_edit_reason_given")),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plan.id"], name=op.f("fk_plan_edit_plan_id_plan"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_edit")),
        comment="方案编辑记录 (edits made into a plan: who, why, when)",
    )
    op.create_index(op.f("ix_plan_edit_plan_id_at"), "plan_edit", ["plan_id", "at"], unique=False)
    op.create_geospatial_table(
        "plan_grid",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("plan_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False, comment="网格编码 (grid code)"),
        sa.Column("community_code", sa.Text(), nullable=False),
        sa.Column(
            "base_id", sa.BigInteger(), nullable=True, comment="live version it started from"
        ),
        sa.Column("base_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), server_default=sa.text("'base'"), nullable=False),
        sa.Column("dedicated_to", sa.Text(), nullable=True),
        sa.Column("worker_name", sa.Text(), nullable=True),
        sa.Column("households", sa.Integer(), nullable=True),
        sa.Column("population", sa.Integer(), nullable=True),
        sa.Column("synthetic", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
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
        sa.CheckConstraint("code ~ '^[0-9]{15}$'", name=op.f("ck_plan_grid_code_format")),
        sa.CheckConstraint("kind IN ('base', 'dedicated')", name=op.f("ck_plan_grid_kind_choice")),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_plan_grid_geom_valid")),
        sa.CheckConstraint(
            "left(code, 12) = community_code", name=op.f("ck_plan_grid_code_in_community")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plan.id"], name=op.f("fk_plan_grid_plan_id_plan"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_grid")),
        sa.UniqueConstraint("plan_id", "code", name=op.f("uq_plan_grid_plan_id_code")),
        comment="方案中的网格 (the plan's own copy of the grids of its area)",
    )
    # create_geospatial_table drops the table comment: set it on its own.
    op.create_table_comment(
        "plan_grid", "方案中的网格 (the plan's own copy of the grids of its area)"
    )
    op.create_geospatial_index(
        "idx_plan_grid_geom",
        "plan_grid",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )


def downgrade() -> None:
    _grid_edit_operations(OLD_OPERATIONS)
    op.drop_geospatial_index(
        "idx_plan_grid_geom", table_name="plan_grid", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("plan_grid")
    op.drop_index(op.f("ix_plan_edit_plan_id_at"), table_name="plan_edit")
    op.drop_table("plan_edit")
    op.drop_index(op.f("ix_plan_township_code_status"), table_name="plan")
    op.drop_table("plan")
