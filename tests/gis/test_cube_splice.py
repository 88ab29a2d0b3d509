"""Splicing reloaded days into the incident cube answers exactly as building it anew."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gridgov.gis import cube as cube_mod
from gridgov.gis.cube import CubeFilter

CATEGORIES = ["dispute", "safety_hazard", "public_order"]
STATUSES = ["reported", "registered", "closed"]
RESOLUTIONS = (7, 8, 9, 10)
NOW = 20_000 * 86_400.0


def facts(rng: np.random.Generator, n: int, days: list[int], codes: list[str], open_: bool) -> Any:
    """Random column dicts in the shape :func:`cube_mod.build` takes."""
    out: dict[str, Any] = {
        "day": rng.choice(days, n),
        "category": rng.choice(CATEGORIES, n).astype(object),
        "status": rng.choice(STATUSES, n).astype(object),
    }
    for level in cube_mod.LEVELS:
        picked = rng.choice(np.array([*codes, None], dtype=object), n)
        out[f"{level}_code"] = picked
    for res in RESOLUTIONS:
        out[f"cell{res}"] = rng.integers(1, 40 + res, n) * 1000 + res
    if open_:
        out["deadline"] = NOW + rng.uniform(-5, 5, n) * 86_400
    else:
        out["n"] = rng.integers(1, 4, n)
    return out


def take(columns: dict[str, Any], mask: Any) -> dict[str, Any]:
    return {key: np.asarray(value)[mask] for key, value in columns.items()}


def join(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {key: np.concatenate([np.asarray(a[key]), np.asarray(b[key])]) for key in a}


def answers(cube: cube_mod.Cube) -> list[Any]:
    """Totals by every key kind under a few filters, with keys decoded to values."""
    out = []
    for flt in (
        CubeFilter(),
        CubeFilter(first_day=19_002, last_day=19_005),
        CubeFilter(categories=("dispute",), statuses=("reported", "registered")),
        CubeFilter(overdue=True),
        CubeFilter(codes={"township": "B"}),
        CubeFilter(scope={"district": ("A", "Z")}),
    ):
        for by in (*cube_mod.LEVELS, *RESOLUTIONS, "day"):
            t = cube_mod.totals(cube, by, flt, NOW)
            out.append(
                (
                    by,
                    sorted(zip(t.keys, t.count.tolist(), t.overdue.tolist(), strict=True), key=str),
                )
            )
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_splice_equals_build(seed: int) -> None:
    rng = np.random.default_rng(seed)
    days = list(range(19_000, 19_010))
    args = (CATEGORIES, STATUSES, RESOLUTIONS)
    old_rows = facts(rng, 400, days, ["A", "B", "C"], open_=False)
    old_open = facts(rng, 60, days, ["A", "B", "C"], open_=True)
    touched = [19_003, 19_009, 19_011]  # 19_011: a day the old cube did not have
    # The touched days' new facts bring codes and cells the old cube never saw.
    new_rows = facts(rng, 50, touched, ["B", "D", "E"], open_=False)
    new_rows["cell10"] = new_rows["cell10"] + 7_000_000
    new_open = facts(rng, 10, touched, ["C", "E"], open_=True)
    before = cube_mod.build(old_rows, old_open, *args)
    keep_rows = ~np.isin(old_rows["day"], touched)
    keep_open = ~np.isin(old_open["day"], touched)
    expected = cube_mod.build(
        join(take(old_rows, keep_rows), new_rows), join(take(old_open, keep_open), new_open), *args
    )
    spliced = cube_mod.splice(before, touched, new_rows, new_open)
    assert answers(spliced) == answers(expected)
    assert answers(spliced) != answers(before)  # the splice changed something


def test_splice_of_emptied_days() -> None:
    rng = np.random.default_rng(7)
    days = list(range(19_000, 19_004))
    args = (CATEGORIES, STATUSES, RESOLUTIONS)
    rows, open_ = facts(rng, 100, days, ["A"], False), facts(rng, 10, days, ["A"], True)
    empty_rows, empty_open = take(rows, np.zeros(100, bool)), take(open_, np.zeros(10, bool))
    spliced = cube_mod.splice(cube_mod.build(rows, open_, *args), days, empty_rows, empty_open)
    assert answers(spliced) == answers(cube_mod.build(empty_rows, empty_open, *args))


def test_a_chain_of_splices_equals_build() -> None:
    """One write after another, each spliced into the last cube (the cell lookups are
    carried along), ends where building everything would."""
    rng = np.random.default_rng(11)
    args = (CATEGORIES, STATUSES, RESOLUTIONS)
    rows = facts(rng, 300, list(range(19_000, 19_008)), ["A", "B"], False)
    open_ = facts(rng, 40, list(range(19_000, 19_008)), ["A", "B"], True)
    cube = cube_mod.build(rows, open_, *args)
    for step in range(5):
        day = [19_004 + step]
        new_rows = facts(rng, 20, day, ["B", f"N{step}"], False)
        new_open = facts(rng, 3, day, ["A"], True)
        rows = join(take(rows, ~np.isin(rows["day"], day)), new_rows)
        open_ = join(take(open_, ~np.isin(open_["day"], day)), new_open)
        cube = cube_mod.splice(cube, day, new_rows, new_open)
        assert answers(cube) == answers(cube_mod.build(rows, open_, *args)), step
