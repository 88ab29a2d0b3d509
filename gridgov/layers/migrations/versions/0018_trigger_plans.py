"""The cluster trigger's join of ``old_rows`` to ``new_rows`` is never a nested loop.

PostgreSQL estimates a transition table at one row, whatever it holds, so the planner
joined the old and new rows of an ``UPDATE`` of ``incident`` (or any layer with cluster
cells) by a nested loop: every old row against every new one. Once PL/pgSQL had cached
that plan on a connection (after a few small updates, such as status changes), a
50,000-row update on the same connection (a reassignment after a redraw) ran for hours;
the test suite hung on it in the demo city. ``enable_nestloop = off`` for this function
makes the join a hash join (a 50,000-row update: 3.8 s in all, where it was cancelled
after 20 s). The function's other statements have no join to choose.

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


def upgrade() -> None:
    op.execute("ALTER FUNCTION gridgov_cluster_changed() SET enable_nestloop = off")


def downgrade() -> None:
    op.execute("ALTER FUNCTION gridgov_cluster_changed() RESET enable_nestloop")
