"""The grid edit log (grid_edit): who changed which grids, why, and which versions.

Revision ID: 0007_grid_edit
Revises: 0006_map_speed
Create Date: 2026-11-26 11:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_grid_edit"
down_revision: str | None = "0006_map_speed"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "grid_edit",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.Text(), nullable=False, comment="操作人 (who made the edit)"),
        sa.Column("reason", sa.Text(), nullable=False, comment="调整原因 (why)"),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("community_code", sa.Text(), nullable=False),
        sa.Column(
            "codes",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            comment="涉及的网格编码 (grids touched)",
        ),
        sa.Column(
            "retired_codes",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
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
        sa.CheckConstraint(
            "operation IN ('create', 'replace', 'update', 'retire', 'split', 'merge', 'move_boundary')",
            name=op.f("ck_grid_edit_operation_choice"),
        ),
        sa.CheckConstraint("length(btrim(reason)) > 0", name=op.f("ck_grid_edit_reason_given")),
        sa.CheckConstraint("length(btrim(actor)) > 0", name=op.f("ck_grid_edit_actor_given")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_edit")),
        comment="网格调整记录 (grid edit log: who, why, which versions)",
    )
    op.create_index(
        op.f("ix_grid_edit_community_code_at"),
        "grid_edit",
        ["community_code", "at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_grid_edit_community_code_at"), table_name="grid_edit")
    op.drop_table("grid_edit")
