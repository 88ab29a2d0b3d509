"""Grid proposals as background jobs (网格优化方案): ``POST /optimise``, ``GET /optimise/{id}``.

Thin: the work is :func:`gridgov.layers.optimise.propose`, run in a thread with its own
connection (read-only; rolled back at the end). Jobs are kept **in memory**, per server
process: a restart forgets them, and with several workers a job is only visible from the
worker that started it. A proposal is cheap to recompute (same seed, same result), so
nothing is lost that a planner cannot ask for again.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Engine

from gridgov.api.auth import PrincipalDep
from gridgov.api.deps import ConnectionDep, RegistryDep, SettingsDep
from gridgov.api.strict_json import StrictJSONRoute
from gridgov.errors import ConflictError, NotFoundError, PermissionDeniedError
from gridgov.gis.measures import WorkloadWeights
from gridgov.layers import audit, optimise
from gridgov.layers.db import connect
from gridgov.layers.registry import Registry
from gridgov.security.roles import Role

router = APIRouter(tags=["optimise 网格优化"], route_class=StrictJSONRoute)

ALLOWED_ROLES = frozenset({Role.ADMIN, Role.PLANNER})
MAX_JOBS = 50  # finished jobs beyond this many are forgotten, oldest first


class OptimiseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    community_code: str | None = Field(default=None, pattern=r"^[0-9]{12}$")
    township_code: str | None = Field(default=None, pattern=r"^[0-9]{9}$")
    target_households: int | None = Field(default=None, ge=10, le=5_000)
    weights: dict[str, float] = Field(default_factory=dict, max_length=20)
    min_change: bool = False
    seed: int = Field(default=0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _one_area(self) -> OptimiseIn:
        if (self.community_code is None) == (self.township_code is None):
            raise ValueError("give exactly one of community_code and township_code")
        return self

    @property
    def area_code(self) -> str:
        return self.community_code or self.township_code or ""


@dataclass
class Job:
    id: str
    user_id: int
    area_code: str
    created_at: datetime
    status: Literal["queued", "running", "done", "failed"] = "queued"
    progress: float = 0.0
    community: str | None = None
    result: dict[str, Any] | None = None
    grids: dict[str, list[Any]] | None = None  # proposed polygons per community, when done
    error: dict[str, str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def view(self) -> dict[str, Any]:
        with self.lock:
            body: dict[str, Any] = {
                "job_id": self.id,
                "area_code": self.area_code,
                "status": self.status,
                "progress": round(self.progress, 4),
                "community_code": self.community,
                "created_at": self.created_at.isoformat(),
            }
            if self.result is not None:
                body["result"] = self.result
            if self.error is not None:
                body["error"] = self.error
            return body


class JobStore:
    """The jobs of this process (see the module docstring: memory only)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self._lock:
            finished = [j for j in self._jobs.values() if j.status in ("done", "failed")]
            for old in sorted(finished, key=lambda j: j.created_at)[
                : max(0, len(self._jobs) + 1 - MAX_JOBS)
            ]:
                del self._jobs[old.id]
            self._jobs[job.id] = job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)


def jobs_of(request: Request) -> JobStore:
    state = request.app.state
    store: JobStore | None = getattr(state, "optimise_jobs", None)
    if store is None:
        store = JobStore()
        state.optimise_jobs = store
    return store


def run_job(
    job: Job,
    engine: Engine,
    registry: Registry,
    options: optimise.ProposalOptions,
) -> None:
    """The job's body, in its own thread and connection; every failure is recorded."""

    def report(code: str, done: float) -> None:
        with job.lock:
            job.community, job.progress = code, min(1.0, max(job.progress, done))

    with job.lock:
        job.status = "running"
    try:
        with connect(engine) as conn, conn.begin() as transaction:
            proposal = optimise.propose(conn, registry, job.area_code, options, report)
            transaction.rollback()
        result = proposal.as_dict()
        with job.lock:
            job.status, job.progress, job.result = "done", 1.0, result
            job.grids = dict(proposal.grids_by_community())
    except Exception as error:
        detail_zh = getattr(error, "detail_zh", "优化失败")
        with job.lock:
            job.status = "failed"
            job.error = {
                "detail_zh": str(detail_zh),
                "detail": str(error) if hasattr(error, "detail_zh") else type(error).__name__,
            }


def _require_planner(principal: Any) -> None:
    if principal.role not in ALLOWED_ROLES:
        raise PermissionDeniedError(
            f"角色 {principal.role.title_zh} 无权生成网格优化方案",
            f"role {principal.role.value} may not run grid proposals (admin or planner only)",
        )


@router.post(
    "/optimise",
    status_code=202,
    summary="生成网格优化方案（后台任务） (start a grid proposal job)",
)
def start(
    body: OptimiseIn,
    request: Request,
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    _require_planner(principal)
    principal.require_visible("grid", body.area_code)
    optimise.community_codes(conn, body.area_code)  # 404 now, not in the job
    objective, workload = optimise.split_weights(
        body.weights, WorkloadWeights.from_mapping(settings.workload_weights)
    )
    options = optimise.ProposalOptions(
        target_households=body.target_households or settings.grid_target_households,
        seed=body.seed,
        min_change=body.min_change,
        objective=objective,
        workload=workload,
    )
    job = Job(uuid.uuid4().hex, principal.user.id, body.area_code, datetime.now(UTC))
    jobs_of(request).add(job)
    engine: Engine = request.app.state.engine
    thread = threading.Thread(
        target=run_job, args=(job, engine, registry, options), name=f"optimise-{job.id}"
    )
    thread.daemon = True
    thread.start()
    return {"job_id": job.id, "status": job.status, "href": f"/optimise/{job.id}"}


@router.get(
    "/optimise/{job_id}",
    summary="网格优化任务的进度与结果 (a proposal job: progress, and the proposal when done)",
)
def status(
    job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    request: Request,
    principal: PrincipalDep,
) -> dict[str, Any]:
    return _own_job(request, principal, job_id).view()


def _own_job(request: Request, principal: Any, job_id: str) -> Job:
    _require_planner(principal)
    job = jobs_of(request).get(job_id)
    # Another account's job is answered like a missing one (its area may be out of scope).
    if job is None or (job.user_id != principal.user.id and principal.role is not Role.ADMIN):
        raise NotFoundError(f"没有优化任务 {job_id}", f"no proposal job {job_id}")
    return job


class SaveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="方案名称")
    reason: str = Field(min_length=1, max_length=2000, description="调整原因 (why)")


@router.post(
    "/optimise/{job_id}/plans",
    status_code=201,
    summary="将优化方案保存为待审方案 (save a finished proposal as draft plans)",
)
def save_plans(
    job_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    body: SaveIn,
    request: Request,
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    """One draft plan per community of the proposal, validated like any edit."""
    job = _own_job(request, principal, job_id)
    with job.lock:
        grids = job.grids
    if grids is None:
        raise ConflictError(
            "优化任务尚未完成，不能保存为方案", "the job has not finished: nothing to save"
        )
    for code in grids:
        principal.require_visible("grid", code)
    saved = optimise.save_as_plans(
        conn,
        registry,
        grids,
        name=body.name,
        actor=principal.user.username,
        reason=body.reason,
        max_vertices=settings.grid_max_vertices,
    )
    for code, plan_id in saved.items():
        audit.record(
            conn,
            principal.event(
                "plan_create",
                "ok",
                target=f"plan/{plan_id}",
                detail={"name": body.name, "area_code": code, "origin": f"optimise:{job_id}"},
            ),
        )
    return {
        "plans": [
            {"community_code": code, "plan_id": plan_id, "href": f"/plans/{plan_id}"}
            for code, plan_id in saved.items()
        ]
    }
