"""Coordinate reference systems as OGC API – Features Part 2 names them, with axis order.

OGC URIs mean the axis order of the EPSG definition: EPSG:4326 and EPSG:4490 are
latitude, longitude and EPSG:4549 (Gauss-Kruger) is northing, easting, while OGC's CRS84
is longitude, latitude. PostGIS always stores x = east, so :attr:`OgcCrs.swap` says when
coordinates must be flipped on the way out (and bbox values on the way in).

Pure module: no web, no database.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache

from pyproj import CRS

from gridgov.errors import InvalidParameterError

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
STORAGE_SRID = 4490
SUPPORTED_EPSG = (4326, 4490, 4549)

_EPSG_FORMS = (
    re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/0/([0-9]{4,6})$"),
    re.compile(r"^\[?EPSG:([0-9]{4,6})\]?$", re.IGNORECASE),
)
_CRS84_FORMS = {CRS84, "https://www.opengis.net/def/crs/OGC/1.3/CRS84", "OGC:CRS84", "[OGC:CRS84]"}


@dataclass(frozen=True)
class OgcCrs:
    """A CRS gridgov can answer in: its URI, PostGIS SRID, and whether axes are (y, x)."""

    uri: str
    srid: int
    swap: bool  # True when the CRS's first axis is north (lat/lon, northing/easting)
    decimals: int  # coordinate precision of output: ~1 cm in degrees, 1 mm in metres

    @property
    def geographic(self) -> bool:
        return self.decimals > 3


@cache
def _epsg(code: int) -> OgcCrs:
    crs = CRS.from_epsg(code)
    first = crs.axis_info[0].direction.lower() if crs.axis_info else "east"
    return OgcCrs(
        uri=EPSG_URI.format(code),
        srid=code,
        swap=first == "north",
        decimals=7 if crs.is_geographic else 3,
    )


def crs84() -> OgcCrs:
    """The RFC 7946 default: WGS84 longitude, latitude (stored CGCS2000 is within cm)."""
    return OgcCrs(uri=CRS84, srid=4326, swap=False, decimals=7)


def supported() -> tuple[OgcCrs, ...]:
    """Every CRS offered for ``crs`` and ``bbox-crs``, the default first."""
    return (crs84(), *(_epsg(code) for code in SUPPORTED_EPSG))


def storage_crs() -> OgcCrs:
    return _epsg(STORAGE_SRID)


def parse_crs(value: str | None, parameter: str = "crs") -> OgcCrs:
    """The CRS named by an OGC URI (or ``EPSG:n`` CURIE); absent means CRS84."""
    if value is None or value.strip() in _CRS84_FORMS:
        return crs84()
    text = value.strip()
    for pattern in _EPSG_FORMS:
        match = pattern.match(text)
        if match and int(match.group(1)) in SUPPORTED_EPSG:
            return _epsg(int(match.group(1)))
    choices = ", ".join(c.uri for c in supported())
    raise InvalidParameterError(
        f"{parameter} 不是支持的坐标系，可用：{choices}",
        f"{parameter} is not a supported CRS; use one of: {choices}",
        public={"parameter": parameter},
    )


def parse_bbox(value: str, crs: OgcCrs) -> tuple[float, float, float, float]:
    """``minx,miny,maxx,maxy`` in ``crs``'s axis order, returned as (west, south, east, north).

    Four finite numbers, lower corner below the upper one; for geographic CRSs within
    ±180 / ±90. The submitted values are never echoed back.
    """
    parts = value.split(",")
    if len(parts) == 6:
        parts = [parts[0], parts[1], parts[3], parts[4]]  # 3-D bbox: heights are ignored
    if len(parts) != 4:
        raise _bad_bbox("需要 4 个数值", "needs 4 comma-separated numbers")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise _bad_bbox("含有非数值", "holds a value that is not a number") from None
    if not all(math.isfinite(n) for n in numbers):
        raise _bad_bbox("含有 NaN 或无穷大", "holds NaN or infinity")
    a1, b1, a2, b2 = numbers
    x1, y1, x2, y2 = (b1, a1, b2, a2) if crs.swap else (a1, b1, a2, b2)
    if x1 > x2 or y1 > y2:
        raise _bad_bbox("下角大于上角", "its lower corner lies above or right of its upper one")
    if crs.geographic and not (-180 <= x1 <= x2 <= 180 and -90 <= y1 <= y2 <= 90):
        raise _bad_bbox("超出经纬度范围", "is outside ±180° longitude / ±90° latitude")
    return x1, y1, x2, y2


EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)


def bbox_area_km2(bbox: tuple[float, float, float, float], crs: OgcCrs) -> float:
    """Area of a (west, south, east, north) box: on the sphere for degrees (exact for a
    lon/lat rectangle), plain width × height for metres."""
    west, south, east, north = bbox
    if not crs.geographic:
        return (east - west) * (north - south) / 1e6
    band = abs(math.sin(math.radians(north)) - math.sin(math.radians(south)))
    return EARTH_RADIUS_KM**2 * math.radians(east - west) * band


def check_bbox_area(
    bbox: tuple[float, float, float, float], crs: OgcCrs, max_km2: float
) -> tuple[float, float, float, float]:
    """``bbox`` unchanged, or a 400 when it covers more than ``max_km2``."""
    if bbox_area_km2(bbox, crs) > max_km2:
        raise _bad_bbox(
            f"范围超过 {max_km2:,.0f} 平方千米的上限，请缩小范围，或不带 bbox 分页读取",
            f"covers more than the limit of {max_km2:,.0f} km²; narrow it, or page "
            "through the layer without bbox",
        )
    return bbox


def _bad_bbox(zh: str, en: str) -> InvalidParameterError:
    return InvalidParameterError(f"bbox 无效：{zh}", f"bbox {en}", public={"parameter": "bbox"})


__all__ = [
    "CRS84",
    "STORAGE_SRID",
    "OgcCrs",
    "bbox_area_km2",
    "check_bbox_area",
    "crs84",
    "parse_bbox",
    "parse_crs",
    "storage_crs",
    "supported",
]
