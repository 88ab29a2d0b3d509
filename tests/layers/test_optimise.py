"""Proposals from real PostGIS: a demo community loaded in the test's transaction."""

from __future__ import annotations

import pytest
import shapely
from shapely.geometry import Polygon
from sqlalchemy import Connection, MetaData, text

from gridgov.errors import InvalidInputError, NotFoundError
from gridgov.gis.measures import WorkloadWeights, area_m2
from gridgov.layers import optimise
from gridgov.layers.demo import load_city
from gridgov.layers.registry import Registry
from tests.optimise_city import LARGE, subset

EXACT_M2 = 0.01


@pytest.fixture
def city(connection: Connection, registry: Registry, metadata: MetaData) -> Connection:
    load_city(connection, registry, metadata, subset((LARGE,)), tolerance_m=50.0)
    return connection


def outline(conn: Connection, code: str) -> shapely.Geometry:
    wkb = conn.execute(
        text("SELECT ST_AsBinary(geom) FROM community WHERE code = :c"), {"c": code}
    ).scalar_one()
    return shapely.from_wkb(bytes(wkb))


def test_proposal_tiles_the_community_and_balances_better(
    city: Connection, registry: Registry
) -> None:
    proposal = optimise.propose(city, registry, LARGE, optimise.ProposalOptions(seed=3))
    (community,) = proposal.communities
    grids = proposal.grids_by_community()[LARGE]
    assert grids
    assert all(isinstance(g, Polygon) for g in grids)
    union = shapely.union_all(grids)
    assert area_m2(shapely.symmetric_difference(union, outline(city, LARGE))) < EXACT_M2
    before, after = proposal.before, proposal.after
    assert after["contiguous_share"] == 1.0
    # Every household of the community is in exactly one proposed grid.
    households = city.execute(
        text("SELECT sum(households) FROM building WHERE community_code = :c"), {"c": LARGE}
    ).scalar_one()
    assert after["households"] == before["households"] == households == community.households
    assert after["workload_cv"] < before["workload_cv"]
    assert after["docking_score"] >= before["docking_score"] - 0.5
    assert after["households_moved"] == community.households_moved > 0
    # The GeoJSON carries the same grids, keyed by community and number.
    features = proposal.as_dict()["proposal"]["features"]
    assert [f["id"] for f in features] == [f"{LARGE}-{i:03d}" for i in range(1, len(grids) + 1)]


def test_min_change_moves_fewer_households(city: Connection, registry: Registry) -> None:
    free = optimise.propose(city, registry, LARGE, optimise.ProposalOptions())
    kept = optimise.propose(city, registry, LARGE, optimise.ProposalOptions(min_change=True))
    assert kept.after["households_moved"] < free.after["households_moved"]
    assert kept.after["contiguous_share"] == 1.0


def test_township_runs_each_community_with_progress(city: Connection, registry: Registry) -> None:
    seen: list[tuple[str, float]] = []
    proposal = optimise.propose(
        city,
        registry,
        LARGE[:9],
        optimise.ProposalOptions(),
        lambda code, done: seen.append((code, done)),
    )
    assert [c.code for c in proposal.communities] == [LARGE]
    assert seen[-1][1] == 1.0
    assert [d for _, d in seen] == sorted(d for _, d in seen)


def test_same_seed_same_grids(city: Connection, registry: Registry) -> None:
    options = optimise.ProposalOptions(seed=11)
    first = optimise.propose(city, registry, LARGE, options).grids_by_community()[LARGE]
    again = optimise.propose(city, registry, LARGE, options).grids_by_community()[LARGE]
    assert [g.wkb for g in first] == [g.wkb for g in again]


def test_refusals_name_the_problem(city: Connection, registry: Registry) -> None:
    with pytest.raises(NotFoundError, match="320213021999"):
        optimise.propose(city, registry, "320213021999", optimise.ProposalOptions())
    with pytest.raises(InvalidInputError, match="12 位"):
        optimise.propose(city, registry, "32021302", optimise.ProposalOptions())
    with pytest.raises(InvalidInputError, match="beauty"):
        optimise.split_weights({"beauty": 1.0}, WorkloadWeights())
    objective, workload = optimise.split_weights(
        {"docking": 2.0, "households": 2.0}, WorkloadWeights()
    )
    assert (objective.docking, workload.households) == (2.0, 2.0)
