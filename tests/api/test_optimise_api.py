"""``POST /optimise`` jobs and ``gridgov optimise`` on a committed demo community.

The job thread and the CLI open their own connections, so the community is committed
(not rolled back) for this module, and every table is emptied afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyogrio
import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, text
from typer.testing import CliRunner

from gridgov.api.app import create_app
from gridgov.cli import app as cli
from gridgov.gis.measures import area_m2
from gridgov.layers import optimise_jobs
from gridgov.layers.demo import load_city
from gridgov.layers.registry import Registry
from gridgov.security.roles import Role
from gridgov.settings import Settings
from tests.conftest import ClientAs, MakeUser, TokenFor
from tests.optimise_city import SMALL, subset

EXACT_M2 = 0.01
POLLS = 1200  # a bound on polling, not a time limit: the job must finish, however slowly


def truncate_all(engine: Engine, metadata: MetaData) -> None:
    names = ", ".join(f'"{name}"' for name in metadata.tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="module")
def committed(
    engine: Engine, registry: Registry, metadata: MetaData, settings: Settings
) -> Iterator[shapely.Geometry]:
    truncate_all(engine, metadata)
    with engine.begin() as conn:
        load_city(conn, registry, metadata, subset((SMALL,)), settings.assign_tolerance_m)
        wkb = conn.execute(
            text("SELECT ST_AsBinary(geom) FROM community WHERE code = :c"), {"c": SMALL}
        ).scalar_one()
    try:
        yield shapely.from_wkb(bytes(wkb))
    finally:
        truncate_all(engine, metadata)


def wait(client: TestClient, job_id: str) -> dict[str, Any]:
    for _ in range(POLLS):
        body: dict[str, Any] = client.get(f"/optimise/{job_id}").json()
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {body['status']} after {POLLS} polls")


def test_planner_job_runs_to_a_proposal(committed: shapely.Geometry, client_as: ClientAs) -> None:
    planner = client_as(Role.PLANNER, [SMALL[:9]])
    started = planner.post(
        "/optimise", json={"community_code": SMALL, "seed": 2, "weights": {"docking": 2}}
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    body = wait(planner, job_id)
    assert body["status"] == "done", body
    assert body["progress"] == 1.0
    result = body["result"]
    features = result["proposal"]["features"]
    assert len(features) == result["after"]["grids"] > 0
    grids = [shapely.geometry.shape(f["geometry"]) for f in features]
    assert all(g.geom_type == "Polygon" for g in grids)
    union = shapely.union_all(grids)
    assert area_m2(shapely.symmetric_difference(union, committed)) < EXACT_M2
    assert result["after"]["contiguous_share"] == 1.0
    assert result["after"]["workload_cv"] < result["before"]["workload_cv"]
    assert result["options"]["objective"]["docking"] == 2.0


def test_out_of_scope_and_wrong_role(committed: shapely.Geometry, client_as: ClientAs) -> None:
    police = client_as(Role.POLICE, [SMALL[:9]])
    refused = police.post("/optimise", json={"community_code": SMALL})
    assert refused.status_code == 403
    assert "无权" in refused.json()["detail"]
    elsewhere = client_as(Role.PLANNER, ["320205102"])
    assert elsewhere.post("/optimise", json={"community_code": SMALL}).status_code == 404
    # Another planner's job is not theirs to see.
    owner = client_as(Role.PLANNER, [SMALL[:9]])
    job_id = owner.post("/optimise", json={"community_code": SMALL}).json()["job_id"]
    assert elsewhere.get(f"/optimise/{job_id}").status_code == 404
    assert wait(owner, job_id)["status"] == "done"
    assert owner.get(f"/optimise/{'0' * 32}").status_code == 404


def test_bad_requests_are_refused_naming_the_problem(
    committed: shapely.Geometry, client_as: ClientAs
) -> None:
    admin = client_as(Role.ADMIN)
    both = admin.post("/optimise", json={"community_code": SMALL, "township_code": SMALL[:9]})
    assert both.status_code in (400, 422)
    bad = admin.post("/optimise", json={"community_code": SMALL, "weights": {"beauty": 1}})
    assert bad.status_code == 422
    assert "beauty" in bad.json()["detail"]
    missing = admin.post("/optimise", json={"community_code": "320206001999"})
    assert missing.status_code == 404


def test_cli_writes_a_geopackage(committed: shapely.Geometry, tmp_path: Path) -> None:
    out = tmp_path / "proposal.gpkg"
    result = CliRunner().invoke(
        cli, ["optimise", "--community", SMALL, "--min-change", "--out", str(out), "--test"]
    )
    assert result.exit_code == 0, result.output
    assert "工作量变异系数" in result.output
    assert "变动户数" in result.output
    frame = pyogrio.read_dataframe(out, layer="proposal")
    assert len(frame) > 0
    assert set(frame["community_code"]) == {SMALL}
    assert frame.crs.to_epsg() == 4490
    union = shapely.union_all(frame.geometry.to_numpy())
    assert area_m2(shapely.symmetric_difference(union, committed)) < EXACT_M2
    refused = CliRunner().invoke(cli, ["optimise", "--test"])
    assert refused.exit_code == 2


def test_a_finished_proposal_saved_as_a_plan(
    committed: shapely.Geometry, client_as: ClientAs, app: FastAPI, settings: Settings
) -> None:
    """Started on one server process, polled and saved on another (jobs live in the
    database, not in the memory of the process that runs them)."""
    starter = client_as(Role.PLANNER, [SMALL[:9]])
    job_id = starter.post("/optimise", json={"community_code": SMALL, "seed": 3}).json()["job_id"]
    other = create_app(settings.model_copy(update={"warm_up": False}))
    other.dependency_overrides = dict(app.dependency_overrides)  # the test's transaction
    planner = TestClient(other, headers=dict(starter.headers))
    done = wait(planner, job_id)
    assert done["status"] == "done", done
    proposed = [
        shapely.geometry.shape(f["geometry"]) for f in done["result"]["proposal"]["features"]
    ]
    body = {"name": "优化方案", "reason": "户数均衡"}
    elsewhere = client_as(Role.PLANNER, ["320205102"])
    assert elsewhere.post(f"/optimise/{job_id}/plans", json=body).status_code == 404
    saved = planner.post(f"/optimise/{job_id}/plans", json=body)
    assert saved.status_code == 201, saved.text
    [made] = saved.json()["plans"]
    assert made["community_code"] == SMALL
    plan = planner.get(made["href"]).json()
    assert (plan["status"], plan["origin"]) == ("draft", "proposal")
    features = planner.get(f"{made['href']}/grids").json()["features"]
    kept = [
        shapely.geometry.shape(f["geometry"])
        for f in features
        if f["properties"]["change"] != "retired"
    ]
    assert len(kept) == len(proposed)
    # The plan holds exactly the proposed grids (codes by the rule), and live grids are as before.
    assert area_m2(shapely.symmetric_difference(shapely.union_all(kept), committed)) < EXACT_M2
    for geom in proposed:
        assert min(area_m2(shapely.symmetric_difference(geom, k)) for k in kept) < EXACT_M2


def test_a_job_whose_process_stopped_reads_as_interrupted(
    committed: shapely.Geometry,
    app: FastAPI,
    make_user: MakeUser,
    token_for: TokenFor,
    engine: Engine,
) -> None:
    """A running job that gave no sign of life for ``STALE`` (its process was restarted)
    is reported as failed, with the reason, rather than as running for ever."""
    user = make_user(Role.PLANNER, [SMALL[:9]])
    planner = TestClient(app, headers={"Authorization": f"Bearer {token_for(user)}"})
    me = user.id
    job_id = "f" * 32
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO optimise_job (id, user_id, area_code, status, progress, updated_at) "
                "VALUES (:id, :u, :a, 'running', 0.4, now() - CAST(:late AS interval))"
            ),
            {"id": job_id, "u": me, "a": SMALL, "late": optimise_jobs.STALE + timedelta(seconds=1)},
        )
    try:
        body = planner.get(f"/optimise/{job_id}").json()
        assert body["status"] == "failed", body
        assert "中断" in body["error"]["detail_zh"]
        refused = planner.post(f"/optimise/{job_id}/plans", json={"name": "x", "reason": "y"})
        assert refused.status_code == 409
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM optimise_job WHERE id = :id"), {"id": job_id})


def test_cli_saves_the_proposal_as_a_plan(committed: shapely.Geometry, engine: Engine) -> None:
    refused = CliRunner().invoke(cli, ["optimise", "--community", SMALL, "--plan", "x", "--test"])
    assert refused.exit_code == 2
    assert "--actor" in refused.output
    result = CliRunner().invoke(
        cli,
        ["optimise", "--community", SMALL, "--plan", "命令行方案", "--actor", "planner1", "--test"],
    )
    assert result.exit_code == 0, result.output
    assert "已保存为方案" in result.output
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT community_code, origin, author, status FROM plan WHERE name = '命令行方案'"
            )
        ).all()
    assert [tuple(r) for r in rows] == [(SMALL, "proposal", "planner1", "draft")]
