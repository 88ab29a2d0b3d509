"""Department unit history (部门单元版本) and edit log (部门单元调整记录).

The unit tables (``police_unit``, ``urban_unit``, ``emergency_unit``) keep one row per
unit in force, under a unique code, so that the incidents' foreign keys on unit codes stay
plain and sound. Every version an edit closes or opens is kept in ``unit_version``
(``valid_from`` / ``valid_to``), and every edit in ``unit_edit`` with who and why.
"""

from __future__ import annotations

from typing import Final

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
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

from gridgov.layers.edit_support import OPERATIONS
from gridgov.layers.spec import SRID

UNIT_LAYERS: Final = ("police_unit", "urban_unit", "emergency_unit")


def _choice(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


def build_unit_tables(metadata: MetaData) -> None:
    """Add ``unit_edit`` and ``unit_version`` to ``metadata``."""
    Table(
        "unit_edit",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor", Text, nullable=False, comment="操作人 (who made the edit)"),
        Column("reason", Text, nullable=False, comment="调整原因 (why)"),
        Column("operation", Text, nullable=False),
        Column("layer", Text, nullable=False),
        Column("district_code", Text, nullable=False),
        Column("codes", ARRAY(Text), nullable=False, comment="涉及的单元编码 (units touched)"),
        Column("retired_codes", ARRAY(Text), nullable=False, server_default=text("'{}'")),
        Column("old_versions", ARRAY(BigInteger), nullable=False, server_default=text("'{}'")),
        Column("new_versions", ARRAY(BigInteger), nullable=False, server_default=text("'{}'")),
        Column("incidents_moved", Integer, nullable=False, server_default=text("0")),
        Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        _choice("operation", OPERATIONS, "operation_choice"),
        _choice("layer", UNIT_LAYERS, "layer_choice"),
        CheckConstraint("length(btrim(reason)) > 0", name="reason_given"),
        CheckConstraint("length(btrim(actor)) > 0", name="actor_given"),
        Index(None, "layer", "district_code", "at"),
        comment="部门单元调整记录 (department unit edit log: who, why, which versions)",
    )
    Table(
        "unit_version",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("layer", Text, nullable=False),
        Column("code", Text, nullable=False, comment="单元编码 (unit code)"),
        Column("district_code", Text, nullable=False),
        Column("township_code", Text, nullable=True),
        Column("attrs", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("valid_from", DateTime(timezone=True), nullable=False),
        Column("valid_to", DateTime(timezone=True), nullable=True),
        Column(
            "edit_id",
            BigInteger,
            ForeignKey("unit_edit.id"),
            nullable=True,
            comment="the edit that opened it (NULL: the state before the first edit)",
        ),
        Column(
            "geom",
            Geometry(geometry_type="MULTIPOLYGON", srid=SRID, spatial_index=False),
            nullable=False,
        ),
        _choice("layer", UNIT_LAYERS, "layer_choice"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_period"),
        Index(None, "layer", "code", "valid_from"),
        Index(
            "uq_unit_version_open",
            "layer",
            "code",
            unique=True,
            postgresql_where=text("valid_to IS NULL"),
        ),
        comment="部门单元版本 (every version of a department unit an edit closed or opened)",
    )
