"""The WebMercatorQuad tile matrix set (OGC 2D TMS): tile numbers, bounds and its document.

Pure module: no web, no database.
"""

from __future__ import annotations

import math
from typing import Any

from gridgov.errors import InvalidParameterError

TMS_ID = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
ORIGIN = 20037508.3427892  # half the equator in EPSG:3857 metres
TILE_SIZE = 256
MAX_ZOOM = 24
PIXEL_MM = 0.28  # the OGC standardised rendering pixel


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse tile numbers outside the matrix of zoom ``z``."""
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidParameterError(
            f"缩放级别须在 0–{MAX_ZOOM} 之间",
            f"zoom must lie in 0..{MAX_ZOOM}",
            public={"parameter": "z"},
        )
    size = 1 << z
    if not (0 <= x < size and 0 <= y < size):
        raise InvalidParameterError(
            "瓦片行列号超出该级别范围",
            f"tile column and row must lie in 0..{size - 1} at zoom {z}",
            public={"parameter": "x/y"},
        )


def tile_for(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The (x, y) of the tile holding a WGS84 / CGCS2000 point at zoom ``z``."""
    size = 1 << z
    x = int((lon + 180.0) / 360.0 * size)
    rad = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(rad)) / math.pi) / 2.0 * size)
    return min(max(x, 0), size - 1), min(max(y, 0), size - 1)


def tiles_covering(bounds: tuple[float, float, float, float], z: int) -> list[tuple[int, int]]:
    """Every tile (x, y) at zoom ``z`` meeting a lon/lat box (west, south, east, north)."""
    west, south, east, north = bounds
    x1, y1 = tile_for(west, north, z)
    x2, y2 = tile_for(east, south, z)
    return [(x, y) for x in range(x1, x2 + 1) for y in range(y1, y2 + 1)]


def tile_matrix_set() -> dict[str, Any]:
    """The OGC 2D Tile Matrix Set document of WebMercatorQuad, zoom 0..24."""
    matrices = []
    for z in range(MAX_ZOOM + 1):
        cell = 2 * ORIGIN / TILE_SIZE / (1 << z)
        matrices.append(
            {
                "id": str(z),
                "scaleDenominator": cell / (PIXEL_MM / 1000),
                "cellSize": cell,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-ORIGIN, ORIGIN],
                "tileWidth": TILE_SIZE,
                "tileHeight": TILE_SIZE,
                "matrixWidth": 1 << z,
                "matrixHeight": 1 << z,
            }
        )
    return {
        "id": TMS_ID,
        "title": "Google Maps Compatible for the World (Web 墨卡托)",
        "uri": TMS_URI,
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "orderedAxes": ["X", "Y"],
        "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
        "tileMatrices": matrices,
    }


__all__ = [
    "MAX_ZOOM",
    "TMS_ID",
    "TMS_URI",
    "check_tile",
    "tile_for",
    "tile_matrix_set",
    "tiles_covering",
]
