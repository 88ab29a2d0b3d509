"""Proposal jobs (网格优化任务) kept in PostgreSQL (migration ``0014_optimise_jobs``).

Why not in memory: with several server processes a poll may reach a process other than
the one running the job, and a restart would forget every job. The job's thread writes its
progress here in short transactions of its own; any process reads it. A job that has given
no sign of life for :data:`STALE` was interrupted (its process stopped) and reads as
failed. Finished jobs older than :data:`KEEP` are deleted when a new job starts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

STALE = timedelta(minutes=5)  # a running job reports progress far more often than this
KEEP = timedelta(days=7)
INTERRUPTED = {
    "detail_zh": "优化任务已中断（服务重启或进程退出），请重新发起",
    "detail": "the job was interrupted (the server restarted or its process stopped); "
    "start it again",
}


@dataclass(frozen=True)
class Job:
    id: str
    user_id: int
    area_code: str
    created_at: datetime
    status: str
    progress: float
    community_code: str | None
    result: dict[str, Any] | None
    error: dict[str, str] | None
    finished: bool  # its proposed grids are stored

    def view(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "job_id": self.id,
            "area_code": self.area_code,
            "status": self.status,
            "progress": round(self.progress, 4),
            "community_code": self.community_code,
            "created_at": self.created_at.isoformat(),
        }
        if self.result is not None:
            body["result"] = self.result
        if self.error is not None:
            body["error"] = self.error
        return body


def create(conn: Connection, job_id: str, user_id: int, area_code: str) -> Job:
    """A queued job (and the old finished ones deleted)."""
    conn.execute(
        text(
            "DELETE FROM optimise_job WHERE status IN ('done', 'failed') "
            "AND created_at < now() - CAST(:keep AS interval)"
        ),
        {"keep": KEEP},
    )
    conn.execute(
        text("INSERT INTO optimise_job (id, user_id, area_code) VALUES (:id, :u, :a)"),
        {"id": job_id, "u": user_id, "a": area_code},
    )
    job = get(conn, job_id)
    assert job is not None  # just inserted, in this transaction
    return job


def get(conn: Connection, job_id: str) -> Job | None:
    row = conn.execute(
        text(
            "SELECT id, user_id, area_code, created_at, status, progress, community_code, "
            "result, error, grids IS NOT NULL AS finished, "
            "status IN ('queued', 'running') AND updated_at < now() - CAST(:stale AS interval) "
            "AS interrupted FROM optimise_job WHERE id = :id"
        ),
        {"id": job_id, "stale": STALE},
    ).first()
    if row is None:
        return None
    return Job(
        id=row.id,
        user_id=row.user_id,
        area_code=row.area_code,
        created_at=row.created_at,
        status="failed" if row.interrupted else row.status,
        progress=float(row.progress),
        community_code=row.community_code,
        result=row.result,
        error=INTERRUPTED if row.interrupted else row.error,
        finished=bool(row.finished),
    )


def report(conn: Connection, job_id: str, community_code: str | None, progress: float) -> None:
    """Running, at ``progress`` (never going back), on ``community_code``."""
    conn.execute(
        text(
            "UPDATE optimise_job SET status = 'running', updated_at = now(), "
            "community_code = coalesce(:c, community_code), "
            "progress = greatest(progress, least(1.0, :p)) WHERE id = :id"
        ),
        {"id": job_id, "c": community_code, "p": max(0.0, progress)},
    )


def finish(
    conn: Connection,
    job_id: str,
    result: Mapping[str, Any],
    grids: Mapping[str, Sequence[BaseGeometry]],
) -> None:
    stored = {code: [shapely.to_wkb(g, hex=True) for g in shapes] for code, shapes in grids.items()}
    conn.execute(
        text(
            "UPDATE optimise_job SET status = 'done', progress = 1, updated_at = now(), "
            "result = CAST(:r AS jsonb), grids = CAST(:g AS jsonb) WHERE id = :id"
        ),
        {"id": job_id, "r": json.dumps(result), "g": json.dumps(stored)},
    )


def fail(conn: Connection, job_id: str, error: Mapping[str, str]) -> None:
    conn.execute(
        text(
            "UPDATE optimise_job SET status = 'failed', updated_at = now(), "
            "error = CAST(:e AS jsonb) WHERE id = :id"
        ),
        {"id": job_id, "e": json.dumps(dict(error), ensure_ascii=False)},
    )


def proposed_grids(conn: Connection, job_id: str) -> dict[str, list[BaseGeometry]] | None:
    """The finished job's proposed polygons per community (None before it finished)."""
    stored = conn.execute(
        text("SELECT grids FROM optimise_job WHERE id = :id"), {"id": job_id}
    ).scalar_one_or_none()
    if stored is None:
        return None
    return {code: [shapely.from_wkb(h) for h in hexes] for code, hexes in stored.items()}
