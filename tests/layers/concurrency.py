"""The choreography every serialisation test shares: a first writer holds its lock in an
open transaction, a second writer on its own connection must wait on that advisory lock,
and only after the first commits may it finish (or fail) with what it then sees. Their
rows are committed (:func:`committed`), since each writer has its own connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Connection, Engine, text

WAIT_S = 30.0  # generous bound on waiting for the other thread (never a speed check)


def committed(
    engine: Engine, cleanup: Callable[[Connection], None], fill: Callable[[Connection], None]
) -> Iterator[Engine]:
    """For a fixture (``yield from``): ``fill`` committed, then removed by ``cleanup``
    after the test. ``cleanup`` runs first too, for what an interrupted run left behind."""
    with engine.begin() as conn:
        cleanup(conn)
        fill(conn)
    try:
        yield engine
    finally:
        with engine.begin() as conn:
            cleanup(conn)


def _waiting(engine: Engine, locktype: str) -> bool:
    """Whether a session waits for a lock of ``locktype`` (pg_locks)."""
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) > 0 FROM pg_locks WHERE locktype = :t AND NOT granted"),
            {"t": locktype},
        )
        return bool(found.scalar_one())


def waiting_on_advisory_lock(engine: Engine) -> bool:
    return _waiting(engine, "advisory")


def waiting_on_a_transaction(engine: Engine) -> bool:
    """Whether a session waits for another transaction to end (a row or key it wrote)."""
    return _waiting(engine, "transactionid")


def second_waits_for_first(
    engine: Engine,
    first_edit: Callable[[Connection], object],
    second_edit: Callable[[Connection], object],
    waiting: Callable[[Engine], bool] = waiting_on_advisory_lock,
) -> dict[str, Any]:
    """Run ``first_edit`` and keep its transaction open; run ``second_edit`` in a thread,
    check that it waits (``waiting``: on the advisory lock by default), then commit the
    first. Returns the second's ``result`` or ``error``."""
    outcome: dict[str, Any] = {}
    with engine.connect() as first:
        transaction = first.begin()
        first_edit(first)  # holds the lock until the commit below

        def second_writer() -> None:
            with engine.connect() as second, second.begin():
                try:
                    outcome["result"] = second_edit(second)
                except Exception as exc:
                    outcome["error"] = exc

        thread = threading.Thread(target=second_writer)
        thread.start()
        deadline = time.monotonic() + WAIT_S
        while not waiting(engine) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert waiting(engine), "the second edit did not wait for the first"
        assert thread.is_alive()
        transaction.commit()
    thread.join(WAIT_S)
    assert not thread.is_alive()
    return outcome
