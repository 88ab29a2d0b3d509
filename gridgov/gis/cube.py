"""An in-memory column store of the incident pre-aggregate, for interactive heatmaps.

Two fact sets share one encoding: ``rows`` (counts per day × H3 cell × category × status ×
unit, as stored in ``incident_agg``) and ``open`` (one fact per open incident with a
deadline, so that overdue is decided against the clock at query time, never stale).
A query is a few boolean masks and a ``bincount``: milliseconds over the whole city.

Pure module: numpy / pandas only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

LEVELS = ("district", "township", "community", "grid", "police_station", "policing_area")
Bool = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Facts:
    """Encoded facts: every array has one entry per fact."""

    day: Ints  # days since 1970-01-01 (local calendar day reported)
    category: Ints
    status: Ints
    codes: Mapping[str, Ints]  # level → index into Cube.code_values[level]; 0 = none
    cells: Mapping[int, Ints]  # H3 resolution → index into Cube.cell_values[res]
    weight: Ints
    deadline: Floats  # epoch seconds; NaN when none (and for aggregated rows)

    def __len__(self) -> int:
        return len(self.day)


@dataclass(frozen=True)
class Cube:
    rows: Facts
    open: Facts
    categories: tuple[str, ...]
    statuses: tuple[str, ...]
    code_values: Mapping[str, Sequence[str | None]]
    cell_values: Mapping[int, Ints]
    names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class CubeFilter:
    """Filters every aggregate accepts; empty tuples mean "all"."""

    first_day: int | None = None
    last_day: int | None = None
    categories: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    overdue: bool = False
    codes: Mapping[str, str] = field(default_factory=dict)
    # The caller's area scope: level → allowed codes, a fact counts if any level matches;
    # None: every area. (Built by ``gridgov.layers.scope``; an empty mapping matches nothing.)
    scope: Mapping[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Totals:
    """Counts per key (``keys[i]``): all matching incidents and the overdue among them."""

    keys: list[Any]
    count: Ints
    overdue: Ints


def _encode(values: Sequence[Any]) -> tuple[Ints, list[Any]]:
    codes, uniques = pd.factorize(pd.Series(list(values), dtype=object), use_na_sentinel=True)
    return codes.astype(np.int64) + 1, [None, *uniques.tolist()]


def build(
    rows: Mapping[str, Any],
    open_facts: Mapping[str, Any],
    categories: Sequence[str],
    statuses: Sequence[str],
    resolutions: Sequence[int],
    names: Mapping[str, Mapping[str, str]] | None = None,
) -> Cube:
    """Encode two column dicts (``day``, ``category``, ``status``, ``<level>_code``,
    ``cell<res>``, ``n`` / ``deadline``) into one :class:`Cube`."""
    n_rows = len(rows["day"])
    both = {key: list(rows[key]) + list(open_facts[key]) for key in rows if key in open_facts}
    code_values: dict[str, list[str | None]] = {}
    codes_rows: dict[str, Ints] = {}
    codes_open: dict[str, Ints] = {}
    for level in LEVELS:
        encoded, values = _encode(both[f"{level}_code"])
        code_values[level] = values
        codes_rows[level], codes_open[level] = encoded[:n_rows], encoded[n_rows:]
    cell_values: dict[int, Ints] = {}
    cells_rows: dict[int, Ints] = {}
    cells_open: dict[int, Ints] = {}
    for res in resolutions:
        joined = np.asarray(both[f"cell{res}"], dtype=np.int64)
        unique, inverse = np.unique(joined, return_inverse=True)
        cell_values[res] = unique
        cells_rows[res], cells_open[res] = inverse[:n_rows], inverse[n_rows:]

    def lookup(values: Sequence[str], table: Sequence[str]) -> Ints:
        index = {v: i for i, v in enumerate(table)}
        return np.array([index[v] for v in values], dtype=np.int64)

    def facts(
        columns: Mapping[str, Any],
        codes: dict[str, Ints],
        cells: dict[int, Ints],
        weight: Ints,
        deadline: Floats,
    ) -> Facts:
        return Facts(
            day=np.asarray(columns["day"], dtype=np.int64),
            category=lookup(columns["category"], categories),
            status=lookup(columns["status"], statuses),
            codes=codes,
            cells=cells,
            weight=weight,
            deadline=deadline,
        )

    n_open = len(open_facts["day"])
    return Cube(
        rows=facts(
            rows,
            codes_rows,
            cells_rows,
            np.asarray(rows["n"], dtype=np.int64),
            np.full(n_rows, np.nan),
        ),
        open=facts(
            open_facts,
            codes_open,
            cells_open,
            np.ones(n_open, dtype=np.int64),
            np.asarray(open_facts["deadline"], dtype=np.float64),
        ),
        categories=tuple(categories),
        statuses=tuple(statuses),
        code_values=code_values,
        cell_values=cell_values,
        names=names or {},
    )


def _mask(cube: Cube, facts: Facts, flt: CubeFilter) -> Bool:
    mask: Bool = np.ones(len(facts), dtype=bool)
    if flt.first_day is not None:
        mask &= facts.day >= flt.first_day
    if flt.last_day is not None:
        mask &= facts.day <= flt.last_day
    if flt.categories:
        allowed = np.isin(
            np.arange(len(cube.categories)), [cube.categories.index(c) for c in flt.categories]
        )
        mask &= allowed[facts.category]
    if flt.statuses:
        allowed = np.isin(
            np.arange(len(cube.statuses)), [cube.statuses.index(s) for s in flt.statuses]
        )
        mask &= allowed[facts.status]
    if flt.scope is not None:
        inside: Bool = np.zeros(len(facts), dtype=bool)
        for level, allowed_codes in flt.scope.items():
            values = cube.code_values[level]
            wanted = [values.index(c) for c in allowed_codes if c in values]
            inside |= np.isin(facts.codes[level], wanted)
        mask &= inside
    for level, code in flt.codes.items():
        values = cube.code_values[level]
        index = values.index(code) if code in values else -1
        mask &= facts.codes[level] == index
    return mask


def totals(cube: Cube, by: str | int, flt: CubeFilter, now: float) -> Totals:
    """Counts grouped by an admin / police level, an H3 resolution, or ``"day"``.

    ``now`` (epoch seconds) decides overdue: a deadline before it, on an open incident.
    Groups with no matching incident are left out.
    """

    def keys_of(facts: Facts) -> Ints:
        if by == "day":
            return facts.day - day0
        if isinstance(by, int):
            return facts.cells[by]
        return facts.codes[by]

    day0 = int(min(cube.rows.day.min(initial=0), cube.open.day.min(initial=0)))
    if by == "day":
        top = max(cube.rows.day.max(initial=0), cube.open.day.max(initial=0))
        size = int(top) - day0 + 1
        labels: list[Any] = list(range(day0, day0 + size))
    elif isinstance(by, int):
        labels = cube.cell_values[by].tolist()
        size = len(labels)
    else:
        labels = list(cube.code_values[by])
        size = len(labels)
    open_mask = _mask(cube, cube.open, flt) & (cube.open.deadline < now)
    overdue = np.bincount(keys_of(cube.open)[open_mask], minlength=size).astype(np.int64)
    if flt.overdue:
        count = overdue.copy()
    else:
        row_mask = _mask(cube, cube.rows, flt)
        count = np.bincount(
            keys_of(cube.rows)[row_mask], weights=cube.rows.weight[row_mask], minlength=size
        ).astype(np.int64)
    present = np.flatnonzero(count > 0)
    return Totals([labels[i] for i in present], count[present], overdue[present])


__all__ = ["LEVELS", "Cube", "CubeFilter", "Facts", "Totals", "build", "totals"]
