"""The grid edit log (网格调整记录): who changed which grids, why, and what followed.

One row per committed edit; the grid versions it closed and opened are listed by id, so
that the history of any grid can be traced to the edits (and reasons) that shaped it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

OPERATIONS = (
    "create",
    "replace",
    "update",
    "retire",
    "split",
    "merge",
    "move_boundary",
    "publish",  # a plan taking force (gridgov.layers.plans)
)


def build_edit_tables(metadata: MetaData) -> None:
    """Add ``grid_edit`` to ``metadata``."""
    operations = ", ".join(f"'{op}'" for op in OPERATIONS)
    Table(
        "grid_edit",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor", Text, nullable=False, comment="操作人 (who made the edit)"),
        Column("reason", Text, nullable=False, comment="调整原因 (why)"),
        Column("operation", Text, nullable=False),
        Column("community_code", Text, nullable=False),
        Column("codes", ARRAY(Text), nullable=False, comment="涉及的网格编码 (grids touched)"),
        Column("retired_codes", ARRAY(Text), nullable=False, server_default=text("'{}'")),
        Column("old_versions", ARRAY(BigInteger), nullable=False, server_default=text("'{}'")),
        Column("new_versions", ARRAY(BigInteger), nullable=False, server_default=text("'{}'")),
        Column("incidents_moved", Integer, nullable=False, server_default=text("0")),
        Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        CheckConstraint(f"operation IN ({operations})", name="operation_choice"),
        CheckConstraint("length(btrim(reason)) > 0", name="reason_given"),
        CheckConstraint("length(btrim(actor)) > 0", name="actor_given"),
        Index(None, "community_code", "at"),
        comment="网格调整记录 (grid edit log: who, why, which versions)",
    )
