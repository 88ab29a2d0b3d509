"""Incident assignment, lifecycle timestamps and history; grid-to-unit docking.

Revision ID: 0002_assignment
Revises: 0001_layers
Create Date: 2026-11-26 08:49:33.251705
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002_assignment"
down_revision: str | None = "0001_layers"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "grid_unit",
        sa.Column("grid_id", sa.BigInteger(), nullable=False),
        sa.Column("unit_layer", sa.Text(), nullable=False),
        sa.Column("unit_level", sa.Text(), nullable=False),
        sa.Column("unit_code", sa.Text(), nullable=False),
        sa.Column("share", sa.Double(), nullable=False),
        sa.CheckConstraint(
            "share > 0 AND share <= 1.000001", name=op.f("ck_grid_unit_share_range")
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grid.id"], name=op.f("fk_grid_unit_grid_id_grid"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "grid_id", "unit_layer", "unit_level", "unit_code", name=op.f("pk_grid_unit")
        ),
        comment="网格与部门责任区的对接关系 (grid-to-unit docking, precomputed)",
    )
    op.create_table(
        "incident_transition",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=True),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.Text(), nullable=True, comment="操作人 (who made the change)"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "to_status IN ('reported', 'registered', 'dispatched', 'handling', 'handled', 'closed', 'evaluated')",
            name=op.f("ck_incident_transition_to_status_choice"),
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incident.id"],
            name=op.f("fk_incident_transition_incident_id_incident"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_transition")),
        comment="事件流转记录 (incident lifecycle history)",
    )
    op.create_index(
        op.f("ix_incident_transition_incident_id_at"),
        "incident_transition",
        ["incident_id", "at"],
        unique=False,
    )
    op.add_column(
        "incident",
        sa.Column(
            "registered_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="立案时间 (registered at)",
        ),
    )
    op.add_column(
        "incident",
        sa.Column(
            "dispatched_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="派遣时间 (dispatched at)",
        ),
    )
    op.add_column(
        "incident",
        sa.Column(
            "handling_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="处置开始时间 (handling since)",
        ),
    )
    op.add_column(
        "incident",
        sa.Column(
            "handled_at", sa.DateTime(timezone=True), nullable=True, comment="反馈时间 (handled at)"
        ),
    )
    op.add_column(
        "incident",
        sa.Column(
            "evaluated_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="评价时间 (evaluated at)",
        ),
    )
    op.add_column(
        "incident",
        sa.Column("grid_id", sa.BigInteger(), nullable=True, comment="网格版本 (grid version)"),
    )
    op.add_column(
        "incident",
        sa.Column("assign_method", sa.Text(), nullable=True, comment="分派方式 (assignment rule)"),
    )
    op.add_column(
        "incident",
        sa.Column(
            "assign_distance_m",
            sa.Double(),
            nullable=True,
            comment="距网格距离（米） (distance to grid (m))",
        ),
    )
    op.add_column(
        "incident",
        sa.Column(
            "assigned_at",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="分派时间 (assigned at)",
        ),
    )
    op.add_column(
        "incident",
        sa.Column(
            "police_station_code", sa.Text(), nullable=True, comment="派出所 (police station)"
        ),
    )
    op.add_column(
        "incident",
        sa.Column(
            "policing_area_code",
            sa.Text(),
            nullable=True,
            comment="社区警务区 (community policing area)",
        ),
    )
    op.add_column(
        "incident",
        sa.Column(
            "urban_unit_code",
            sa.Text(),
            nullable=True,
            comment="城管责任区 (urban-management unit)",
        ),
    )
    op.add_column(
        "incident",
        sa.Column(
            "emergency_unit_code", sa.Text(), nullable=True, comment="应急网格 (emergency unit)"
        ),
    )
    op.create_index(op.f("ix_incident_assign_method"), "incident", ["assign_method"], unique=False)
    op.create_index(
        op.f("ix_incident_emergency_unit_code"), "incident", ["emergency_unit_code"], unique=False
    )
    op.create_index(
        op.f("ix_incident_police_station_code"), "incident", ["police_station_code"], unique=False
    )
    op.create_index(
        op.f("ix_incident_policing_area_code"), "incident", ["policing_area_code"], unique=False
    )
    op.create_index(
        op.f("ix_incident_urban_unit_code"), "incident", ["urban_unit_code"], unique=False
    )
    op.create_foreign_key(
        op.f("fk_incident_urban_unit_code_urban_unit"),
        "incident",
        "urban_unit",
        ["urban_unit_code"],
        ["code"],
    )
    op.create_foreign_key(
        op.f("fk_incident_police_station_code_police_unit"),
        "incident",
        "police_unit",
        ["police_station_code"],
        ["code"],
    )
    op.create_foreign_key(
        op.f("fk_incident_emergency_unit_code_emergency_unit"),
        "incident",
        "emergency_unit",
        ["emergency_unit_code"],
        ["code"],
    )
    op.create_foreign_key(op.f("fk_incident_grid_id_grid"), "incident", "grid", ["grid_id"], ["id"])
    op.create_foreign_key(
        op.f("fk_incident_policing_area_code_police_unit"),
        "incident",
        "police_unit",
        ["policing_area_code"],
        ["code"],
    )

    # Autogenerate does not emit CHECKs on existing tables: these mirror the registry, and
    # tests/layers/test_schema.py fails if any declared CHECK is missing from the database.
    op.create_check_constraint(
        op.f("ck_incident_assign_method_choice"),
        "incident",
        "assign_method IN ('inside', 'boundary', 'nearest', 'fallback')",
    )
    op.create_check_constraint(
        op.f("ck_incident_assign_distance_m_min"), "incident", "assign_distance_m >= 0"
    )
    op.create_check_constraint(
        op.f("ck_incident_assign_distance_m_not_nan"),
        "incident",
        "assign_distance_m <> 'NaN'::float8",
    )


def downgrade() -> None:
    for name in ("assign_method_choice", "assign_distance_m_min", "assign_distance_m_not_nan"):
        op.drop_constraint(op.f(f"ck_incident_{name}"), "incident", type_="check")
    op.drop_constraint(
        op.f("fk_incident_policing_area_code_police_unit"), "incident", type_="foreignkey"
    )
    op.drop_constraint(op.f("fk_incident_grid_id_grid"), "incident", type_="foreignkey")
    op.drop_constraint(
        op.f("fk_incident_emergency_unit_code_emergency_unit"), "incident", type_="foreignkey"
    )
    op.drop_constraint(
        op.f("fk_incident_police_station_code_police_unit"), "incident", type_="foreignkey"
    )
    op.drop_constraint(
        op.f("fk_incident_urban_unit_code_urban_unit"), "incident", type_="foreignkey"
    )
    op.drop_index(op.f("ix_incident_urban_unit_code"), table_name="incident")
    op.drop_index(op.f("ix_incident_policing_area_code"), table_name="incident")
    op.drop_index(op.f("ix_incident_police_station_code"), table_name="incident")
    op.drop_index(op.f("ix_incident_emergency_unit_code"), table_name="incident")
    op.drop_index(op.f("ix_incident_assign_method"), table_name="incident")
    op.drop_column("incident", "emergency_unit_code")
    op.drop_column("incident", "urban_unit_code")
    op.drop_column("incident", "policing_area_code")
    op.drop_column("incident", "police_station_code")
    op.drop_column("incident", "assigned_at")
    op.drop_column("incident", "assign_distance_m")
    op.drop_column("incident", "assign_method")
    op.drop_column("incident", "grid_id")
    op.drop_column("incident", "evaluated_at")
    op.drop_column("incident", "handled_at")
    op.drop_column("incident", "handling_at")
    op.drop_column("incident", "dispatched_at")
    op.drop_column("incident", "registered_at")
    op.drop_index(op.f("ix_incident_transition_incident_id_at"), table_name="incident_transition")
    op.drop_table("incident_transition")
    op.drop_table("grid_unit")
