"""Tables that are not map layers but belong to them: history and precomputed relations."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
)

from gridgov.layers.catalog import INCIDENT_STATUSES
from gridgov.layers.spec import SRID


def _quoted(values: list[str]) -> str:
    return ", ".join("'" + v + "'" for v in values)


def build_support_tables(metadata: MetaData) -> None:
    """Add the support tables to ``metadata`` (after the layer tables they refer to)."""
    statuses = _quoted([c.value for c in INCIDENT_STATUSES])
    Table(
        "incident_transition",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column(
            "incident_id", BigInteger, ForeignKey("incident.id", ondelete="CASCADE"), nullable=False
        ),
        Column("from_status", Text, nullable=True),
        Column("to_status", Text, nullable=False),
        Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("actor", Text, nullable=True, comment="操作人 (who made the change)"),
        Column("note", Text, nullable=True),
        CheckConstraint(f"to_status IN ({statuses})", name="to_status_choice"),
        Index(None, "incident_id", "at"),
        comment="事件流转记录 (incident lifecycle history)",
    )
    # Which department units each grid version lies in, and how much of it: a grid wholly
    # inside one unit gives that unit to its incidents without a point test.
    Table(
        "grid_unit",
        metadata,
        Column("grid_id", BigInteger, ForeignKey("grid.id", ondelete="CASCADE"), nullable=False),
        Column("unit_layer", Text, nullable=False),
        Column("unit_level", Text, nullable=False),
        Column("unit_code", Text, nullable=False),
        Column("share", Double, nullable=False),
        PrimaryKeyConstraint("grid_id", "unit_layer", "unit_level", "unit_code"),
        CheckConstraint("share > 0 AND share <= 1.000001", name="share_range"),
        comment="网格与部门责任区的对接关系 (grid-to-unit docking, precomputed)",
    )
    # Each grid version cut by every department layer it straddles (a grid wholly inside a
    # unit stays whole): a point strictly inside a "clean" piece gets its grid and all its
    # units from one point-in-polygon test (gridgov.layers.assignment, the fast path).
    Table(
        "grid_atom",
        metadata,
        Column("id", BigInteger, Identity(always=False), primary_key=True),
        Column("grid_id", BigInteger, ForeignKey("grid.id", ondelete="CASCADE"), nullable=False),
        Column("police_station_code", Text, nullable=True),
        Column("policing_area_code", Text, nullable=True),
        Column("urban_unit_code", Text, nullable=True),
        Column("emergency_unit_code", Text, nullable=True),
        Column(
            "clean",
            Boolean,
            nullable=False,
            comment="可用于快速分派 (usable by the fast assignment path)",
        ),
        Column(
            "geom",
            Geometry(geometry_type="MULTIPOLYGON", srid=SRID, spatial_index=True),
            nullable=False,
        ),
        Index(None, "grid_id"),
        comment="网格按责任区切分的单元 (grid pieces by department unit, precomputed)",
    )
    # The layer generations (layer_state) the pieces were computed from: any later write to
    # grids or units makes them stale, and stale pieces are never used.
    Table(
        "grid_atom_state",
        metadata,
        Column("layer", Text, primary_key=True),
        Column("generation", BigInteger, nullable=False),
        comment="网格单元对应的图层版本 (layer generations grid_atom was computed from)",
    )
