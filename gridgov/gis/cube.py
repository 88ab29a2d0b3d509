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

LEVELS = (
    "district",
    "township",
    "community",
    "grid",
    "police_station",
    "policing_area",
    "urban_unit",
    "emergency_unit",
)
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
    # Per level: counts per unit summed over days, a (days + 1) × units prefix sum, so that
    # "every incident of each unit between two dates" reads two rows of it (thousands of
    # numbers) instead of scanning the facts. Day i of it is ``rows.day[0] + i``.
    cumulative: Mapping[str, npt.NDArray[np.int32]] = field(default_factory=dict)
    # Per resolution: cell → index into cell_values, made by the first :func:`splice` and
    # kept up by the next ones (a million cells hash once, not after every write).
    cell_lookup: dict[int, dict[int, int]] = field(default_factory=dict, compare=False)


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
    index: Ints  # position of each key among the level's codes / cells / days


def _column(columns: Mapping[str, Any], key: str, dtype: Any = None) -> npt.NDArray[Any]:
    return np.asarray(columns[key], dtype=dtype)


def build(
    rows: Mapping[str, Any],
    open_facts: Mapping[str, Any],
    categories: Sequence[str],
    statuses: Sequence[str],
    resolutions: Sequence[int],
    names: Mapping[str, Mapping[str, str]] | None = None,
) -> Cube:
    """Encode two column dicts (``day``, ``category``, ``status``, ``<level>_code``,
    ``cell<res>``, ``n`` / ``deadline``; lists or arrays) into one :class:`Cube`.

    Everything is vectorised (a million facts encode in well under a second), and both
    fact sets are sorted by day so that a date range is a slice, not a mask.
    """
    n_rows = len(rows["day"])
    code_values: dict[str, list[str | None]] = {}
    codes_rows: dict[str, Ints] = {}
    codes_open: dict[str, Ints] = {}
    for level in LEVELS:
        key = f"{level}_code"
        joined = np.concatenate([_column(rows, key, object), _column(open_facts, key, object)])
        encoded, uniques = pd.factorize(joined, use_na_sentinel=True)
        encoded = encoded.astype(np.int64) + 1  # 0 = no code
        code_values[level] = [None, *uniques.tolist()]
        codes_rows[level], codes_open[level] = encoded[:n_rows], encoded[n_rows:]
    cell_values: dict[int, Ints] = {}
    cells_rows: dict[int, Ints] = {}
    cells_open: dict[int, Ints] = {}
    for res in resolutions:
        key = f"cell{res}"
        joined = np.concatenate([_column(rows, key, np.int64), _column(open_facts, key, np.int64)])
        inverse, unique = pd.factorize(joined)
        cell_values[res] = np.asarray(unique, dtype=np.int64)
        inverse = inverse.astype(np.int64)
        cells_rows[res], cells_open[res] = inverse[:n_rows], inverse[n_rows:]

    def facts(
        columns: Mapping[str, Any],
        codes: dict[str, Ints],
        cells: dict[int, Ints],
        weight: Ints,
        deadline: Floats,
    ) -> Facts:
        day = _column(columns, "day", np.int64)
        order = np.argsort(day, kind="stable")
        return Facts(
            day=day[order],
            category=_lookup(columns["category"], categories)[order],
            status=_lookup(columns["status"], statuses)[order],
            codes={level: values[order] for level, values in codes.items()},
            cells={res: values[order] for res, values in cells.items()},
            weight=weight[order],
            deadline=deadline[order],
        )

    n_open = len(open_facts["day"])
    row_facts = facts(
        rows,
        codes_rows,
        cells_rows,
        _column(rows, "n", np.int64),
        np.full(n_rows, np.nan),
    )
    return Cube(
        rows=row_facts,
        open=facts(
            open_facts,
            codes_open,
            cells_open,
            np.ones(n_open, dtype=np.int64),
            _column(open_facts, "deadline", np.float64),
        ),
        categories=tuple(categories),
        statuses=tuple(statuses),
        code_values=code_values,
        cell_values=cell_values,
        names=names or {},
        cumulative={
            level: _prefix_sums(row_facts, values, len(code_values[level]))
            for level, values in row_facts.codes.items()
        },
    )


def splice(
    cube: Cube,
    days: Sequence[int],
    rows: Mapping[str, Any],
    open_facts: Mapping[str, Any],
    names: Mapping[str, Mapping[str, str]] | None = None,
) -> Cube:
    """``cube`` with every fact of ``days`` replaced by ``rows`` / ``open_facts`` (the
    columns :func:`build` takes, holding only facts of those days).

    The incremental path after a write: only the days a write touched are reloaded, the
    rest stays as encoded. New codes and cells are appended to the value tables (old
    indices stay valid) and the prefix sums are recomputed (a bincount). Every query
    answers as over :func:`build` of the whole set.
    """
    day_set = np.asarray(sorted(set(days)), dtype=np.int64)
    code_values = {level: list(values) for level, values in cube.code_values.items()}
    cell_values = dict(cube.cell_values)
    # The lookups move to the new cube (an old one spliced again rebuilds its own).
    lookup = dict(cube.cell_lookup)
    cube.cell_lookup.clear()

    def codes_of(columns: Mapping[str, Any]) -> dict[str, Ints]:
        out: dict[str, Ints] = {}
        for level in LEVELS:
            values = code_values[level]
            index = {v: i for i, v in enumerate(values)}
            encoded = []
            for raw in np.asarray(columns[f"{level}_code"], dtype=object).tolist():
                code = None if raw is None or raw != raw else raw  # NaN: no code
                if code not in index:
                    index[code] = len(values)
                    values.append(code)
                encoded.append(index[code])
            out[level] = np.asarray(encoded, dtype=np.int64)
        return out

    def cells_of(columns: Mapping[str, Any]) -> dict[int, Ints]:
        out: dict[int, Ints] = {}
        for res, known in list(cell_values.items()):
            table = lookup.get(res)
            if table is None or len(table) != len(known):  # built once, then kept up
                table = {cell: i for i, cell in enumerate(known.tolist())}
                lookup[res] = table
            extra: list[int] = []
            encoded = []
            for cell in _column(columns, f"cell{res}", np.int64).tolist():
                index = table.get(cell)
                if index is None:
                    index = table[cell] = len(known) + len(extra)
                    extra.append(cell)
                encoded.append(index)
            if extra:
                known = np.concatenate([known, np.asarray(extra, dtype=np.int64)])
            cell_values[res] = known
            out[res] = np.asarray(encoded, dtype=np.int64)
        return out

    def merged(old: Facts, columns: Mapping[str, Any], weight: Ints, deadline: Floats) -> Facts:
        # The old facts are sorted by day: each replaced day is one slice of them, cut out;
        # the new facts (sorted) go in where their days were. Linear, no sort of the whole.
        keep = np.ones(len(old), dtype=bool)
        for lo, hi in zip(
            np.searchsorted(old.day, day_set, "left"),
            np.searchsorted(old.day, day_set, "right"),
            strict=True,
        ):
            keep[lo:hi] = False
        new_day = _column(columns, "day", np.int64)
        order = np.argsort(new_day, kind="stable")
        kept_day = old.day[keep]
        at = np.searchsorted(kept_day, new_day[order], "left")
        codes, cells = codes_of(columns), cells_of(columns)

        def join(kept: npt.NDArray[Any], new: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return np.insert(kept[keep], at, new[order])

        return Facts(
            day=np.insert(kept_day, at, new_day[order]),
            category=join(old.category, _lookup(columns["category"], cube.categories)),
            status=join(old.status, _lookup(columns["status"], cube.statuses)),
            codes={level: join(old.codes[level], codes[level]) for level in LEVELS},
            cells={res: join(old.cells[res], cells[res]) for res in cube.cell_values},
            weight=join(old.weight, weight),
            deadline=join(old.deadline, deadline),
        )

    n_rows, n_open = len(rows["day"]), len(open_facts["day"])
    row_facts = merged(cube.rows, rows, _column(rows, "n", np.int64), np.full(n_rows, np.nan))
    return Cube(
        rows=row_facts,
        open=merged(
            cube.open,
            open_facts,
            np.ones(n_open, dtype=np.int64),
            _column(open_facts, "deadline", np.float64),
        ),
        categories=cube.categories,
        statuses=cube.statuses,
        code_values=code_values,
        cell_values=cell_values,
        names=cube.names if names is None else names,
        cell_lookup=lookup,
        cumulative={
            level: _prefix_sums_from(
                cube.rows.day[0] if len(cube.rows) else None,
                cube.cumulative.get(level),
                int(day_set[0]) if len(day_set) else None,
                row_facts,
                values,
                len(code_values[level]),
            )
            for level, values in row_facts.codes.items()
        },
    )


def _prefix_sums_from(
    old_first: int | None,
    old: npt.NDArray[np.int32] | None,
    first_touched: int | None,
    facts: Facts,
    codes: Ints,
    units: int,
) -> npt.NDArray[np.int32]:
    """The prefix sums after a splice: rows before the first touched day are kept (new
    units get zero columns there), only the rows from it on are recomputed — after a write
    of today's incident, a few rows, not the whole table. Anything else (the first day
    moved, nothing kept): recomputed in full."""
    if (
        old is None
        or old_first is None
        or first_touched is None
        or not len(facts)
        or int(facts.day[0]) != old_first
        or first_touched < old_first
    ):
        return _prefix_sums(facts, codes, units)
    days = int(facts.day[-1] - facts.day[0]) + 1
    keep = min(first_touched - old_first, len(old) - 1, days)  # rows 0..keep stay
    out = np.zeros((days + 1, units), dtype=np.int32)
    out[: keep + 1, : old.shape[1]] = old[: keep + 1]
    start = int(np.searchsorted(facts.day, old_first + keep, "left"))
    span = days - keep
    flat = (facts.day[start:] - (old_first + keep)) * units + codes[start:]
    per_day = np.bincount(flat, weights=facts.weight[start:], minlength=span * units)
    np.cumsum(per_day.reshape(span, units), axis=0, out=out[keep + 1 :])
    out[keep + 1 :] += out[keep]
    return out


def _lookup(values: Any, table: Sequence[str]) -> Ints:
    codes = pd.Categorical(np.asarray(values, dtype=object), categories=list(table)).codes
    if (codes < 0).any():
        raise ValueError("a fact has a category or status outside the registry's choices")
    return np.asarray(codes, dtype=np.int64)


def _prefix_sums(facts: Facts, codes: Ints, units: int) -> npt.NDArray[np.int32]:
    if not len(facts):
        return np.zeros((1, units), dtype=np.int32)
    days = int(facts.day[-1] - facts.day[0]) + 1
    flat = (facts.day - facts.day[0]) * units + codes
    per_day = np.bincount(flat, weights=facts.weight, minlength=days * units)
    out = np.zeros((days + 1, units), dtype=np.int32)
    np.cumsum(per_day.reshape(days, units), axis=0, out=out[1:])
    return out


def _from_prefix_sums(cube: Cube, level: str, flt: CubeFilter) -> Ints:
    """Counts per unit of ``level`` over the date range, from the prefix sums."""
    table = cube.cumulative[level]
    first = int(cube.rows.day[0]) if len(cube.rows) else 0
    last = len(table) - 1

    def row(day: int | None, default: int) -> int:
        return default if day is None else min(max(day - first, 0), last)

    lo = row(flt.first_day, 0)
    hi = row(None if flt.last_day is None else flt.last_day + 1, last)
    counts: Ints = (table[max(lo, hi)] - table[lo]).astype(np.int64)
    return counts


def _span(facts: Facts, flt: CubeFilter) -> slice:
    """The facts of the date range: they are sorted by day."""
    lo = 0 if flt.first_day is None else int(np.searchsorted(facts.day, flt.first_day, "left"))
    hi = (
        len(facts)
        if flt.last_day is None
        else int(np.searchsorted(facts.day, flt.last_day, "right"))
    )
    return slice(lo, max(lo, hi))


def _mask(cube: Cube, facts: Facts, flt: CubeFilter, span: slice) -> Bool | None:
    """The facts of ``span`` that pass the other filters; None when every one does."""
    mask: Bool | None = None

    def both(more: Bool) -> Bool:
        return more if mask is None else mask & more

    if flt.categories:
        allowed = np.isin(
            np.arange(len(cube.categories)), [cube.categories.index(c) for c in flt.categories]
        )
        mask = both(allowed[facts.category[span]])
    if flt.statuses:
        allowed = np.isin(
            np.arange(len(cube.statuses)), [cube.statuses.index(s) for s in flt.statuses]
        )
        mask = both(allowed[facts.status[span]])
    if flt.scope is not None:
        inside: Bool = np.zeros(span.stop - span.start, dtype=bool)
        for level, allowed_codes in flt.scope.items():
            values = cube.code_values[level]
            wanted = [values.index(c) for c in allowed_codes if c in values]
            inside |= np.isin(facts.codes[level][span], wanted)
        mask = both(inside)
    for level, code in flt.codes.items():
        values = cube.code_values[level]
        index = values.index(code) if code in values else -1
        mask = both(facts.codes[level][span] == index)
    return mask


def _filtered(flt: CubeFilter) -> bool:
    """Whether anything beyond the date range filters the facts (the area scope too: the
    prefix sums count the whole city)."""
    return bool(flt.categories or flt.statuses or flt.codes) or flt.scope is not None


def _count(keys: Ints, weights: Ints | None, mask: Bool | None, size: int) -> Ints:
    if mask is not None:
        keys = keys[mask]
        weights = None if weights is None else weights[mask]
    if weights is None:
        return np.bincount(keys, minlength=size).astype(np.int64)
    return np.bincount(keys, weights=weights, minlength=size).astype(np.int64)


def totals(cube: Cube, by: str | int, flt: CubeFilter, now: float) -> Totals:
    """Counts grouped by an admin / police level, an H3 resolution, or ``"day"``.

    ``now`` (epoch seconds) decides overdue: a deadline before it, on an open incident.
    Groups with no matching incident are left out.
    """

    def keys_of(facts: Facts, span: slice) -> Ints:
        if by == "day":
            return facts.day[span] - day0
        if isinstance(by, int):
            return facts.cells[by][span]
        return facts.codes[by][span]

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
    span = _span(cube.open, flt)
    late = cube.open.deadline[span] < now
    found = _mask(cube, cube.open, flt, span)
    overdue = _count(keys_of(cube.open, span), None, late if found is None else found & late, size)
    if flt.overdue:
        count = overdue.copy()
    elif isinstance(by, str) and by in cube.cumulative and not _filtered(flt):
        count = _from_prefix_sums(cube, by, flt)
    else:
        span = _span(cube.rows, flt)
        count = _count(
            keys_of(cube.rows, span),
            cube.rows.weight[span],
            _mask(cube, cube.rows, flt, span),
            size,
        )
    present = np.flatnonzero(count > 0)
    return Totals([labels[i] for i in present], count[present], overdue[present], present)


__all__ = ["LEVELS", "Cube", "CubeFilter", "Facts", "Totals", "build", "splice", "totals"]
