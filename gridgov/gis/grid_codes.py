"""Grid codes (网格编码): community code (12 digits) + a 3-digit sequence.

Sequences run west→east within rows that run north→south (PRODUCT.md), and the code of a
retired grid is never given to another grid, so new grids continue after the highest
sequence ever used in the community.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

COMMUNITY_CODE = re.compile(r"^[0-9]{12}$")
GRID_CODE = re.compile(r"^[0-9]{15}$")
MAX_SEQUENCE = 999


def reading_order(
    x: NDArray[np.float64], y: NDArray[np.float64], row_height: float
) -> NDArray[np.intp]:
    """Indices of the points in reading order: rows north→south, west→east within a row.

    ``x``/``y`` are projected metres (north is +y); a row is a band ``row_height`` tall
    measured down from the northernmost point, so the order is stable under small moves.
    """
    if len(x) == 0:
        return np.empty(0, dtype=np.intp)
    row = np.floor((y.max() - y) / max(row_height, 1e-9)).astype(np.int64)
    order: NDArray[np.intp] = np.lexsort((x, row))
    return order


def grid_code(community_code: str, sequence: int) -> str:
    if not COMMUNITY_CODE.match(community_code):
        raise ValueError(f"not a 12-digit community code: {community_code!r}")
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise ValueError(f"grid sequence {sequence} is outside 1..{MAX_SEQUENCE}")
    return f"{community_code}{sequence:03d}"


def community_of(grid_code_: str) -> str:
    """The community a grid belongs to: the first 12 digits of its code."""
    if not GRID_CODE.match(grid_code_):
        raise ValueError(f"not a 15-digit grid code: {grid_code_!r}")
    return grid_code_[:12]


def next_sequence(codes_ever_used: Iterable[str]) -> int:
    """The first sequence after every code ever used (retired ones included)."""
    used = [int(code[12:]) for code in codes_ever_used if GRID_CODE.match(code)]
    return max(used, default=0) + 1


def codes_for_new(
    community_code: str,
    codes_ever_used: Iterable[str],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    row_height: float = 200.0,
) -> list[str]:
    """Codes for new grids whose representative points are ``x``/``y`` (projected metres):
    after every sequence ever used in the community, given in reading order."""
    first = next_sequence(codes_ever_used)
    codes = [""] * len(x)
    for rank, index in enumerate(reading_order(x, y, row_height)):
        codes[int(index)] = grid_code(community_code, first + rank)
    return codes
