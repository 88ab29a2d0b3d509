"""Incident aggregates by urban-management and emergency unit (Article 62 docking).

``incident_agg`` gains ``urban_unit_code`` and ``emergency_unit_code`` beside the admin
and police codes, so that ``/aggregates/incidents/by/urban_unit`` and ``…/emergency_unit``
(and the ``urban_unit_code`` / ``emergency_unit_code`` filters) answer from the cube like
the other levels. The stored rows have no value for them yet: every stored day is marked
dirty, so the next refresh (the API's warm-up or first aggregate request) recomputes it.

Revision ID: 0017_agg_units
Revises: 0016_code_checks
Create Date: 2026-11-27 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0017_agg_units"
down_revision: str | None = "0016_code_checks"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = ("urban_unit_code", "emergency_unit_code")


def _mark_every_day_dirty() -> None:
    op.execute(
        "INSERT INTO incident_agg_dirty_day (day) SELECT DISTINCT day FROM incident_agg "
        "ON CONFLICT (day) DO NOTHING"
    )


def upgrade() -> None:
    for column in _COLUMNS:
        op.add_column("incident_agg", sa.Column(column, sa.Text(), nullable=True))
    _mark_every_day_dirty()


def downgrade() -> None:
    for column in _COLUMNS:
        op.drop_column("incident_agg", column)
    _mark_every_day_dirty()
