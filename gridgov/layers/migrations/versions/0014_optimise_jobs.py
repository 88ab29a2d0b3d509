"""Proposal jobs (网格优化任务) in PostgreSQL instead of one server process's memory.

With several uvicorn workers a job was visible only from the worker that started it (a
poll that reached the other one was a 404), and a restart forgot every job. Now any
process answers for any job; a job whose process stopped is reported as interrupted.

Revision ID: 0014_optimise_jobs
Revises: 0013_rls_index
Create Date: 2026-11-26 22:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_optimise_jobs"
down_revision: str | None = "0013_rls_index"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "optimise_job",
        sa.Column("id", sa.Text(), nullable=False, comment="任务编号 (32 hex digits)"),
        # No foreign key: the row is written on a connection of its own, committed at once,
        # and accounts are disabled, never deleted.
        sa.Column("user_id", sa.Integer(), nullable=False, comment="发起账户 (who started it)"),
        sa.Column("area_code", sa.Text(), nullable=False, comment="村社区或镇街代码"),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
            comment="最近一次进度 (the job's last sign of life)",
        ),
        sa.Column("status", sa.Text(), server_default="queued", nullable=False),
        sa.Column("progress", sa.Float(), server_default="0", nullable=False),
        sa.Column("community_code", sa.Text(), nullable=True, comment="正在处理的村社区"),
        sa.Column("result", postgresql.JSONB(), nullable=True),
        sa.Column(
            "grids",
            postgresql.JSONB(),
            nullable=True,
            comment="拟定网格：村社区代码 → WKB (hex) 列表 (proposed polygons per community)",
        ),
        sa.Column("error", postgresql.JSONB(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name="ck_optimise_job_status"
        ),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name="ck_optimise_job_progress"),
        sa.PrimaryKeyConstraint("id", name="pk_optimise_job"),
    )
    op.create_index("ix_optimise_job_created_at", "optimise_job", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_optimise_job_created_at", table_name="optimise_job")
    op.drop_table("optimise_job")
