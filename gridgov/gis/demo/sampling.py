"""Random points inside polygons, uniform or weighted by a density surface."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

FloatArray = NDArray[np.float64]
Density = Callable[[FloatArray, FloatArray], FloatArray]


def points_in(
    polygon: BaseGeometry,
    count: int,
    rng: np.random.Generator,
    density: Density | None = None,
) -> FloatArray:
    """``count`` points (n×2, metres) inside ``polygon``, by rejection sampling.

    With ``density`` the points follow it; the acceptance test uses the maximum seen so
    far, which is exact enough for demo data and never loops for ever on thin polygons.
    """
    if count <= 0:
        return np.empty((0, 2))
    shapely.prepare(polygon)
    xmin, ymin, xmax, ymax = polygon.bounds
    found: list[FloatArray] = []
    total = 0
    batch = max(256, count * 4)
    for _ in range(10_000):
        xs = rng.uniform(xmin, xmax, batch)
        ys = rng.uniform(ymin, ymax, batch)
        inside = shapely.contains_xy(polygon, xs, ys)
        xs, ys = xs[inside], ys[inside]
        if density is not None and len(xs):
            weights = density(xs, ys)
            keep = rng.uniform(0.0, weights.max(), len(xs)) <= weights
            xs, ys = xs[keep], ys[keep]
        if len(xs):
            found.append(np.column_stack([xs, ys]))
            total += len(xs)
        if total >= count:
            break
    else:  # pragma: no cover - a polygon of zero area
        raise ValueError("cannot sample points inside an empty polygon")
    return np.vstack(found)[:count]
