"""Grid proposals as background jobs (网格优化方案): ``POST /optimise``, ``GET /optimise/{id}``.

Thin: the work is :func:`gridgov.layers.optimise.propose`, run in a thread with its own
connection (read-only; rolled back at the end). The job's state lives in PostgreSQL
(:mod:`gridgov.layers.optimise_jobs`): any server process answers for any job, and one whose
process stopped reads as failed ("interrupted") instead of vanishing.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine

from gridgov.api.auth import PrincipalDep
from gridgov.api.deps import ConnectionDep, RegistryDep, SettingsDep
from gridgov.api.strict_json import StrictJSONRoute
from gridgov.errors import ConflictError, NotFoundError, PermissionDeniedError
from gridgov.gis.measures import WorkloadWeights
from gridgov.layers import audit, optimise, optimise_jobs
from gridgov.layers.db import connect
from gridgov.layers.registry import Registry
from gridgov.security.roles import Role

router = APIRouter(tags=["optimise 网格优化"], route_class=StrictJSONRoute)

ALLOWED_ROLES = frozenset({Role.ADMIN, Role.PLANNER})


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


PROGRESS_EVERY_S = 1.0  # a job writes its progress at most this often (and on each community)


def run_job(
    job_id: str,
    area_code: str,
    engine: Engine,
    registry: Registry,
    options: optimise.ProposalOptions,
) -> None:
    """The job's body, in its own thread and connections; every failure is recorded."""
    last: list[Any] = [None, 0.0]  # community and time of the last progress written

    def write(step: Callable[[Connection], None]) -> None:
        with connect(engine) as conn, conn.begin():
            step(conn)

    def report(code: str, done: float) -> None:
        now = time.monotonic()
        if code != last[0] or now - last[1] >= PROGRESS_EVERY_S:
            last[0], last[1] = code, now
            write(lambda conn: optimise_jobs.report(conn, job_id, code, done))

    try:
        write(lambda conn: optimise_jobs.report(conn, job_id, None, 0.0))
        with connect(engine) as conn, conn.begin() as transaction:
            proposal = optimise.propose(conn, registry, area_code, options, report)
            transaction.rollback()
        result, grids = proposal.as_dict(), dict(proposal.grids_by_community())
        write(lambda conn: optimise_jobs.finish(conn, job_id, result, grids))
    except Exception as error:
        detail_zh = getattr(error, "detail_zh", "优化失败")
        failure = {
            "detail_zh": str(detail_zh),
            "detail": str(error) if hasattr(error, "detail_zh") else type(error).__name__,
        }
        write(lambda conn: optimise_jobs.fail(conn, job_id, failure))


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
    engine: Engine = request.app.state.engine
    # Committed at once, on a connection of its own: the job's thread and every other
    # server process must see it before this request ends.
    with connect(engine) as own, own.begin():
        job = optimise_jobs.create(own, uuid.uuid4().hex, principal.user.id, body.area_code)
    thread = threading.Thread(
        target=run_job,
        args=(job.id, job.area_code, engine, registry, options),
        name=f"optimise-{job.id}",
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
    conn: ConnectionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    return _own_job(conn, principal, job_id).view()


def _own_job(conn: Connection, principal: Any, job_id: str) -> optimise_jobs.Job:
    _require_planner(principal)
    job = optimise_jobs.get(conn, job_id)
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
    _own_job(conn, principal, job_id)
    grids = optimise_jobs.proposed_grids(conn, job_id)
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
