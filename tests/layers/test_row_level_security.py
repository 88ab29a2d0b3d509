"""Row-level security: the database's own copy of the area rule, for the API's reads.

``make test`` / ``make serve`` create the role ``gridgov_api`` (a superuser's job); without it
these tests fail, never skip.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.exc import DBAPIError

from gridgov.layers import features, scope
from gridgov.layers.registry import Registry
from gridgov.layers.scope import AreaScope
from tests.api.ogc.city import build_mini_city
from tests.conftest import ClientAs
from tests.factories import insert_row, valid_row

A, B = "320213001", "320213002"


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> None:
    build_mini_city(connection, metadata, registry, incidents=30)


def _count(connection: Connection, table: str) -> int:
    return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_the_bound_role_exists(connection: Connection) -> None:
    assert scope.api_role_ready(connection), (
        "role gridgov_api is missing or was not granted the tables: run scripts/bootstrap.sh"
    )


def test_bound_role_sees_only_its_area(connection: Connection, city: None) -> None:
    everything = _count(connection, "incident")
    in_a = int(
        connection.execute(
            text("SELECT count(*) FROM incident WHERE township_code = :a"), {"a": A}
        ).scalar_one()
    )
    assert 0 < in_a < everything
    scope.enter(connection, AreaScope.of([A]), bound=True)
    assert _count(connection, "incident") == in_a
    assert connection.execute(
        text("SELECT DISTINCT township_code FROM incident")
    ).scalars().all() == [A]
    assert _count(connection, "rental_housing") == 3  # the mini city's rentals all lie in A
    scope.enter(connection, AreaScope.of(["320213002001001"]), bound=True)
    assert connection.execute(text("SELECT DISTINCT grid_code FROM incident")).scalars().all() == [
        "320213002001001"
    ]
    scope.enter(connection, AreaScope.of([]), bound=True)
    assert _count(connection, "incident") == 0
    connection.execute(text("SELECT set_config('gridgov.scope', '', true)"))
    assert _count(connection, "incident") == 0  # bound without a scope: nothing
    scope.enter(connection, AreaScope.everything(), bound=True)
    assert _count(connection, "incident") == everything
    scope.leave(connection)
    assert _count(connection, "incident") == everything


def test_bound_role_cannot_write_outside(
    connection: Connection, metadata: MetaData, registry: Registry, city: None
) -> None:
    scope.enter(connection, AreaScope.of([A]), bound=True)
    row = valid_row(
        registry.get("rental_housing"),
        township_code=B,
        community_code="320213002001",
        grid_code="320213002001001",
    )
    with pytest.raises(DBAPIError) as caught, connection.begin_nested():
        insert_row(connection, metadata, "rental_housing", row)
    assert "row-level security" in str(caught.value.orig)
    with pytest.raises(DBAPIError), connection.begin_nested():
        connection.execute(text("DELETE FROM audit_log"))
    scope.leave(connection)


def test_it_holds_when_the_app_predicate_fails(
    client_as: ClientAs, city: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: with the app's scope predicate broken, reads of the tables under
    row-level security still return only the account's area."""
    monkeypatch.setattr(features, "scope_clause", lambda *_: text("true"))
    client: TestClient = client_as("supervisor", [A])
    incidents = client.get("/collections/incident/items", params={"limit": 1000}).json()
    assert incidents["features"]
    assert {f["properties"]["township_code"] for f in incidents["features"]} == {A}
    # A layer without row-level security shows what the broken predicate would leak.
    grids = client.get("/collections/grid/items").json()["features"]
    assert {g["properties"]["township_code"] for g in grids} == {A, B}


def test_the_policy_can_use_the_code_indexes(connection: Connection, city: None) -> None:
    """A scoped bbox read must not scan the whole table: ``&&`` is not LEAKPROOF, so only
    the policy itself can narrow the rows, through the code indexes (5.2 s → 0.11 s for a
    township over 1.1 M incidents). With sequential scans priced out, the plan finds the
    area's rows by index; a policy no index can serve leaves the planner a full scan."""
    scope.enter(connection, AreaScope.of([A]), bound=True)
    connection.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        connection.execute(
            text(
                "EXPLAIN SELECT count(*) FROM incident "
                "WHERE geom && ST_MakeEnvelope(120.2, 31.5, 120.4, 31.7, 4490)"
            )
        ).scalars()
    )
    assert "Seq Scan" not in plan, plan
    assert "ix_incident_township_code" in plan, plan
    connection.execute(text("RESET enable_seqscan"))
    scope.leave(connection)
