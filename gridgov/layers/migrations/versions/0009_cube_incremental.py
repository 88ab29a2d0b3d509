"""Incremental incident cube: the record of which pre-aggregate days were recomputed when.

``incident_agg_change`` holds, per local day, the number of the last refresh that
recomputed it (numbers grow in commit order: refreshes are serialised by an advisory
lock). An API process holding the in-memory cube as of number N reloads only the days
numbered above N after a write, instead of the whole pre-aggregate.

Revision ID: 0009_cube_incremental
Revises: 0008_plans
Create Date: 2026-11-26 14:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009_cube_incremental"
down_revision: str | None = "0008_plans"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "incident_agg_change",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "seq",
            sa.BigInteger(),
            nullable=False,
            comment="重算批次编号 (number of the refresh that last recomputed the day)",
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_incident_agg_change")),
        comment="预聚合重算记录 (which pre-aggregate days each refresh recomputed)",
    )
    op.create_index(
        op.f("ix_incident_agg_change_seq"), "incident_agg_change", ["seq"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_incident_agg_change_seq"), table_name="incident_agg_change")
    op.drop_table("incident_agg_change")
