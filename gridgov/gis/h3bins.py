"""H3 hexagon bins for incident heatmaps (h3 v4, integer cells).

Every resolution is computed from the point (``cell_to_parent`` of a fine cell is not always
the coarse hexagon containing the point: H3 children do not tile their parent).
CGCS2000 lon/lat is used as WGS84 (they agree within centimetres).
Pure module: no web, no database.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import h3.api.basic_int as h3i
import numpy as np
import numpy.typing as npt

FINE = 10
RESOLUTIONS = (7, 8, 9, 10)
IntArray = npt.NDArray[np.int64]


def cells(lon: npt.ArrayLike, lat: npt.ArrayLike, resolution: int = FINE) -> IntArray:
    """The H3 cell (as int64) of every lon/lat point."""
    lons = np.asarray(lon, dtype=np.float64)
    lats = np.asarray(lat, dtype=np.float64)
    out = np.empty(lons.shape, dtype=np.int64)
    for i, (x, y) in enumerate(zip(lons.tolist(), lats.tolist(), strict=True)):
        out[i] = h3i.latlng_to_cell(y, x, resolution)
    return out


def cell_id(cell: int) -> str:
    """The usual hexadecimal H3 string of a cell (what h3-js and kepler.gl expect)."""
    text: str = h3i.int_to_str(int(cell))
    return text


@lru_cache(maxsize=300_000)
def hexagon_json(cell: int) -> str:
    """:func:`hexagon` already serialised: heatmaps redraw the same cells again and again."""
    return json.dumps(hexagon(cell), separators=(",", ":"))


def hexagon(cell: int) -> dict[str, Any]:
    """The cell as a GeoJSON Polygon: lon/lat, closed, counter-clockwise (RFC 7946)."""
    boundary = [(lng, lat) for lat, lng in h3i.cell_to_boundary(int(cell))]
    area = sum(
        x1 * y2 - x2 * y1
        for (x1, y1), (x2, y2) in zip(boundary, boundary[1:] + boundary[:1], strict=True)
    )
    if area < 0:
        boundary.reverse()
    ring = [[round(x, 6), round(y, 6)] for x, y in boundary]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


__all__ = ["FINE", "RESOLUTIONS", "cell_id", "cells", "hexagon", "hexagon_json"]
