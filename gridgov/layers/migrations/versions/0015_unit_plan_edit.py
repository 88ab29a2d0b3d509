"""Unit plans edited by hand, and unit plans that take force on a later day.

``plan_unit`` held only proposed shapes of units in force (the docking proposal). A plan
edited by hand also retires units (``change = 'retired'``, no geometry), creates them
(``'created'``: a reserved code, no base) and sets their attributes (``attrs``); its
``updated_at`` makes the plan-side ETag. ``plan.unit_applied_at`` says when a published
unit plan was written to the unit tables: those hold the units in force only, so a plan
published for a later day waits (NULL) until that day comes.

Revision ID: 0015_unit_plan_edit
Revises: 0014_optimise_jobs
Create Date: 2026-11-27 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015_unit_plan_edit"
down_revision: str | None = "0014_optimise_jobs"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.alter_column("plan_unit", "geom", nullable=True, comment="NULL: retired in the plan")
    op.alter_column("plan_unit", "base_updated_at", nullable=True, comment="NULL: created")
    op.add_column(
        "plan_unit",
        sa.Column(
            "change",
            sa.Text(),
            server_default=sa.text("'changed'"),
            nullable=False,
            comment="changed / created / retired",
        ),
    )
    op.add_column(
        "plan_unit",
        sa.Column(
            "attrs",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=True,
            comment="属性 (name, department, level, parent); NULL: today's",
        ),
    )
    op.add_column(
        "plan_unit",
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
    )
    op.create_check_constraint(
        op.f("ck_plan_unit_change_choice"),
        "plan_unit",
        "change IN ('changed', 'created', 'retired')",
    )
    op.create_check_constraint(
        op.f("ck_plan_unit_retired_has_no_geom"),
        "plan_unit",
        "(change = 'retired') = (geom IS NULL)",
    )
    op.create_check_constraint(
        op.f("ck_plan_unit_created_has_no_base"),
        "plan_unit",
        "(change = 'created') = (base_updated_at IS NULL)",
    )
    op.add_column(
        "plan",
        sa.Column(
            "unit_applied_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="unit plans: when written to the unit tables (NULL: not yet)",
        ),
    )
    op.execute(
        "UPDATE plan SET unit_applied_at = published_at "
        "WHERE unit_layer IS NOT NULL AND status = 'published'"
    )
    op.create_check_constraint(
        op.f("ck_plan_unit_applied_is_unit_plan"),
        "plan",
        "unit_applied_at IS NULL OR (unit_layer IS NOT NULL AND status = 'published')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_plan_unit_applied_is_unit_plan"), "plan", type_="check")
    op.drop_column("plan", "unit_applied_at")
    op.execute("DELETE FROM plan_unit WHERE change <> 'changed'")
    op.drop_constraint(op.f("ck_plan_unit_created_has_no_base"), "plan_unit", type_="check")
    op.drop_constraint(op.f("ck_plan_unit_retired_has_no_geom"), "plan_unit", type_="check")
    op.drop_constraint(op.f("ck_plan_unit_change_choice"), "plan_unit", type_="check")
    op.drop_column("plan_unit", "updated_at")
    op.drop_column("plan_unit", "attrs")
    op.drop_column("plan_unit", "change")
    op.alter_column("plan_unit", "base_updated_at", nullable=False, comment=None)
    op.alter_column("plan_unit", "geom", nullable=False, comment=None)
