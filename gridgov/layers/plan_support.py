"""Plans (网格调整方案): named sets of grid edits not yet in force.

A *unit plan* (``unit_layer`` / ``unit_code`` set) holds proposed department unit shapes
in ``plan_unit`` instead (:mod:`gridgov.layers.unit_plans`); it has no plan grids.

``plan`` holds the workflow (draft → submitted → approved → published); ``plan_grid``
holds the plan's own copy of every grid of its area, taken from the live versions when
the plan was made (``base_id``, ``base_updated_at``: what publishing checks is still in
force); ``plan_edit`` logs every edit made into the plan (who, why, when).
"""

from __future__ import annotations

from typing import Final

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
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
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from gridgov.layers.spec import SRID, digits_check

STATUSES: Final = ("draft", "submitted", "approved", "published")
ORIGINS: Final = ("editor", "proposal")
UNIT_CHANGES: Final = ("changed", "created", "retired")
PLAN_OPERATIONS: Final = (
    "create",
    "replace",
    "update",
    "retire",
    "split",
    "merge",
    "move_boundary",
    "proposal",
)


def _choice(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


def build_plan_tables(metadata: MetaData) -> None:
    """Add ``plan``, ``plan_grid`` and ``plan_edit`` to ``metadata``."""
    Table(
        "plan",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("name", Text, nullable=False, comment="方案名称 (plan name)"),
        Column("status", Text, nullable=False, server_default=text("'draft'")),
        Column("origin", Text, nullable=False, server_default=text("'editor'")),
        Column("district_code", Text, nullable=False),
        Column("township_code", Text, nullable=False),
        Column("community_code", Text, nullable=True, comment="NULL: the whole township"),
        Column("reason", Text, nullable=False, comment="调整原因 (why)"),
        Column("author", Text, nullable=False, comment="创建人 (who made it)"),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("submitted_at", DateTime(timezone=True), nullable=True),
        Column("submitted_by", Text, nullable=True),
        Column("approved_at", DateTime(timezone=True), nullable=True),
        Column("approved_by", Text, nullable=True),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("published_by", Text, nullable=True),
        Column("effective_from", DateTime(timezone=True), nullable=True, comment="生效时间"),
        Column("note", Text, nullable=True, comment="最近的退回意见 (last rejection note)"),
        Column("unit_layer", Text, nullable=True, comment="unit plans: the unit layer"),
        Column("unit_code", Text, nullable=True, comment="unit plans: the unit proposed for"),
        Column(
            "unit_applied_at",
            DateTime(timezone=True),
            nullable=True,
            comment="unit plans: when written to the unit tables (NULL: not yet)",
        ),
        _choice("status", STATUSES, "status_choice"),
        _choice("origin", ORIGINS, "origin_choice"),
        CheckConstraint("length(btrim(name)) > 0", name="name_given"),
        CheckConstraint("length(btrim(reason)) > 0", name="reason_given"),
        CheckConstraint(digits_check("district_code", 6), name="district_code_format"),
        CheckConstraint("left(township_code, 6) = district_code", name="township_in_district"),
        CheckConstraint(digits_check("township_code", 9), name="township_code_format"),
        CheckConstraint(
            f"community_code IS NULL OR ({digits_check('community_code', 12)} "
            "AND left(community_code, 9) = township_code)",
            name="community_in_township",
        ),
        CheckConstraint(
            "status <> 'published' OR effective_from IS NOT NULL", name="published_has_date"
        ),
        CheckConstraint(
            "unit_layer IS NULL OR unit_layer IN ('police_unit', 'urban_unit', 'emergency_unit')",
            name="unit_layer_choice",
        ),
        CheckConstraint("(unit_layer IS NULL) = (unit_code IS NULL)", name="unit_given"),
        CheckConstraint(
            "unit_applied_at IS NULL OR (unit_layer IS NOT NULL AND status = 'published')",
            name="unit_applied_is_unit_plan",
        ),
        Index(None, "township_code", "status"),
        comment="网格调整方案 (grid plans: edits not yet in force)",
    )
    Table(
        "plan_unit",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column(
            "plan_id",
            BigInteger,
            ForeignKey("plan.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("layer", Text, nullable=False),
        Column("code", Text, nullable=False, comment="单元编码 (unit code)"),
        Column("base_updated_at", DateTime(timezone=True), nullable=True, comment="NULL: created"),
        Column(
            "geom",
            Geometry(geometry_type="MULTIPOLYGON", srid=SRID, spatial_index=False),
            nullable=True,
            comment="NULL: retired in the plan",
        ),
        Column(
            "change",
            Text,
            nullable=False,
            server_default=text("'changed'"),
            comment="changed / created / retired",
        ),
        Column(
            "attrs",
            JSONB,
            nullable=True,
            comment="属性 (name, department, level, parent); NULL: today's",
        ),
        Column(
            "updated_at",
            DateTime(timezone=True),
            nullable=False,
            server_default=text("clock_timestamp()"),
        ),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
        _choice("change", UNIT_CHANGES, "change_choice"),
        CheckConstraint("(change = 'retired') = (geom IS NULL)", name="retired_has_no_geom"),
        CheckConstraint(
            "(change = 'created') = (base_updated_at IS NULL)", name="created_has_no_base"
        ),
        UniqueConstraint("plan_id", "code"),
        comment="方案中的部门单元 (a unit plan's proposed unit shapes)",
    )
    Table(
        "plan_grid",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column(
            "plan_id",
            BigInteger,
            ForeignKey("plan.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("code", Text, nullable=False, comment="网格编码 (grid code)"),
        Column("community_code", Text, nullable=False),
        Column("base_id", BigInteger, nullable=True, comment="live version it started from"),
        Column("base_updated_at", DateTime(timezone=True), nullable=True),
        Column("retired", Boolean, nullable=False, server_default=text("false")),
        Column("name", Text, nullable=True),
        Column("kind", Text, nullable=False, server_default=text("'base'")),
        Column("dedicated_to", Text, nullable=True),
        Column("worker_name", Text, nullable=True),
        Column("households", Integer, nullable=True),
        Column("population", Integer, nullable=True),
        Column("synthetic", Boolean, nullable=False, server_default=text("false")),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column(
            "geom",
            Geometry(geometry_type="MULTIPOLYGON", srid=SRID, spatial_index=True),
            nullable=False,
        ),
        CheckConstraint(digits_check("code", 15), name="code_format"),
        CheckConstraint("left(code, 12) = community_code", name="code_in_community"),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
        CheckConstraint("kind IN ('base', 'dedicated')", name="kind_choice"),
        UniqueConstraint("plan_id", "code"),
        comment="方案中的网格 (the plan's own copy of the grids of its area)",
    )
    Table(
        "plan_edit",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column(
            "plan_id",
            BigInteger,
            ForeignKey("plan.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor", Text, nullable=False),
        Column("reason", Text, nullable=False),
        Column("operation", Text, nullable=False),
        Column("community_code", Text, nullable=False),
        Column("codes", ARRAY(Text), nullable=False),
        Column("retired_codes", ARRAY(Text), nullable=False, server_default=text("'{}'")),
        Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        _choice("operation", PLAN_OPERATIONS, "operation_choice"),
        CheckConstraint("length(btrim(reason)) > 0", name="reason_given"),
        CheckConstraint("length(btrim(actor)) > 0", name="actor_given"),
        Index(None, "plan_id", "at"),
        comment="方案编辑记录 (edits made into a plan: who, why, when)",
    )
