"""China's coordinate systems: CGCS2000, WGS84, GCJ-02, BD-09 and Gauss-Kruger metres.

Every input path converts with :func:`to_cgcs2000` (or :func:`geometry_to_cgcs2000`) so that
one place validates coordinates and names the first bad point. pyproj cannot convert GCJ-02
or BD-09 (they are deliberate obfuscations, not datums), so their maths is written here from
the published algorithm; their inverses are solved iteratively to sub-millimetre accuracy
because the common one-step inverse is off by up to a couple of metres.

**CGCS2000 is treated as identical to WGS84.** Both are ITRF-aligned geocentric datums whose
ellipsoids differ only in the flattening's 11th digit; at the same epoch they agree within a
few centimetres, far below the accuracy of GPS handsets or web-map coordinates (PROJ itself
uses a "ballpark" null transformation between them).

Pure module: numpy / pyproj / shapely only. All functions are vectorised: they accept
scalars or array-likes (broadcast together) and return float64 arrays of the broadcast shape.
pyproj transformers always use ``always_xy=True`` so that lon/lat (x/y) order can never swap.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry.base import BaseGeometry

from gridgov.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]
Converter = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]

# China's extent (73–136°E, 18–54°N), the same box the database CHECKs use.
CHINA_BOUNDS: Final = (73.0, 18.0, 136.0, 54.0)
# The rectangle inside which GCJ-02 applies its offset; outside it GCJ-02 == WGS84.
GCJ_BOUNDS: Final = (72.004, 0.8293, 137.8347, 55.8271)
CGCS2000_EPSG: Final = 4490
DEFAULT_PROJECTED_EPSG: Final = 4549  # CGCS2000 / 3-degree Gauss-Kruger CM 120E (Wuxi)

PROBLEM_OK: Final = 0
PROBLEM_NAN: Final = 1
PROBLEM_OUTSIDE: Final = 2
PROBLEM_SWAPPED: Final = 3
PROBLEM_MESSAGES: Final[dict[int, tuple[str, str]]] = {
    PROBLEM_OK: ("坐标正常", "coordinates are fine"),
    PROBLEM_NAN: ("坐标为空值或无穷大", "coordinate is NaN or infinite"),
    PROBLEM_OUTSIDE: (
        "坐标超出中国范围（东经73–136°，北纬18–54°）",
        "outside China's extent (73–136°E, 18–54°N)",
    ),
    PROBLEM_SWAPPED: (
        "经纬度可能颠倒（交换后位于中国境内）",
        "longitude and latitude look swapped (the swapped pair is inside China)",
    ),
}
_REASONS: Final[dict[int, str]] = {
    PROBLEM_NAN: "nan",
    PROBLEM_OUTSIDE: "outside_china",
    PROBLEM_SWAPPED: "swapped",
}

# Krasovsky ellipsoid, as the GCJ-02 algorithm uses it.
_GCJ_A: Final = 6378245.0
_GCJ_EE: Final = 0.00669342162296594323
# BD-09 scales its polar perturbation by this many radians per degree.
_BD_K: Final = np.pi * 3000.0 / 180.0
_BD_DLON: Final = 0.0065
_BD_DLAT: Final = 0.006
# Fixed-point iteration of the inverses: 1e-11° is about a micrometre.
_INVERSE_TOL_DEG: Final = 1e-11
_INVERSE_MAX_ITER: Final = 50

_EPSG = re.compile(r"^epsg:([0-9]{1,6})$")
_ALIASES: Final[dict[str, str]] = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "wgs 84": "wgs84",
    "epsg:4326": "wgs84",
    "cgcs2000": "cgcs2000",
    "cgcs-2000": "cgcs2000",
    "epsg:4490": "cgcs2000",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
}


class CoordinateError(InvalidInputError):
    """Coordinates that cannot be stored: NaN, outside China, swapped, or an unknown CRS.

    ``public`` holds ``reason`` (``nan`` / ``outside_china`` / ``swapped`` / ``unknown_crs``)
    and, for point problems, ``index``: the position of the first bad point in the flattened
    input (for geometries: in ``shapely.get_coordinates`` order). ``index`` is absent for
    ``unknown_crs`` rather than a sentinel that could be mistaken for a position.
    """

    code = "coordinates"
    title_zh = "坐标错误"
    title_en = "Coordinate error"


# --------------------------------------------------------------------------- helpers


def _arrays(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Float64 copies of x and y broadcast to one shape (copies: callers may mutate them)."""
    bx, by = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return np.array(bx, dtype=np.float64), np.array(by, dtype=np.float64)


def _point_error(index: int, problem: int) -> CoordinateError:
    zh, en = PROBLEM_MESSAGES[problem]
    return CoordinateError(
        f"第 {index} 个坐标点：{zh}",
        f"point {index}: {en}",
        public={"index": index, "reason": _REASONS[problem]},
    )


def _unknown_crs() -> CoordinateError:
    # The submitted value is deliberately not echoed back.
    return CoordinateError(
        "不支持的坐标系；可用 wgs84、cgcs2000、gcj02、bd09 或 EPSG:编号",
        "unsupported coordinate system; use wgs84, cgcs2000, gcj02, bd09 or EPSG:<code>",
        public={"reason": "unknown_crs"},
    )


def _inside(
    lon: FloatArray, lat: FloatArray, bounds: tuple[float, float, float, float]
) -> npt.NDArray[np.bool_]:
    west, south, east, north = bounds
    with np.errstate(invalid="ignore"):
        result: npt.NDArray[np.bool_] = (
            (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
        )
    return result


# --------------------------------------------------------------------------- validation


def outside_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """The GCJ-02 rule: True where GCJ-02 applies no offset (so GCJ-02 == WGS84 there).

    This is GCJ-02's own coarse rectangle, not China's border: it is what Amap and Tencent
    do, so inverting it faithfully needs the same rectangle. NaN counts as outside.
    """
    lons, lats = _arrays(lon, lat)
    return ~_inside(lons, lats, GCJ_BOUNDS)


def locate_problems(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Per point: PROBLEM_OK, _NAN (NaN/inf), _OUTSIDE (China's extent) or _SWAPPED.

    A point outside China whose swapped pair would be inside is reported as swapped,
    because that is by far the commonest cause (lat, lon order from a spreadsheet).
    """
    lons, lats = _arrays(lon, lat)
    finite = np.isfinite(lons) & np.isfinite(lats)
    inside = _inside(lons, lats, CHINA_BOUNDS)
    swapped = finite & ~inside & _inside(lats, lons, CHINA_BOUNDS)
    problems = np.full(lons.shape, PROBLEM_OK, dtype=np.int8)
    problems[~finite] = PROBLEM_NAN
    problems[finite & ~inside] = PROBLEM_OUTSIDE
    problems[swapped] = PROBLEM_SWAPPED
    return problems


def _raise_first_problem(problems: npt.NDArray[np.int8]) -> None:
    flat = problems.ravel()
    bad = np.flatnonzero(flat)
    if bad.size:
        index = int(bad[0])
        raise _point_error(index, int(flat[index]))


def _require_finite(x: FloatArray, y: FloatArray) -> None:
    bad = np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)).ravel())
    if bad.size:
        raise _point_error(int(bad[0]), PROBLEM_NAN)


# --------------------------------------------------------------------------- GCJ-02


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02's offset (degrees) at a WGS84 point, from the published polynomial-and-sines.

    The two functions give an offset in (roughly) metres on the Krasovsky ellipsoid around
    (105°E, 35°N); it is then turned into degrees with the meridian and parallel radii.
    """
    x = lon - 105.0
    y = lat - 35.0
    pi = np.pi
    # Shared "noise" term in x, then each axis' own slow waves.
    wobble = (20.0 * np.sin(6.0 * pi * x) + 20.0 * np.sin(2.0 * pi * x)) * 2.0 / 3.0
    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    d_lat += wobble
    d_lat += (20.0 * np.sin(pi * y) + 40.0 * np.sin(pi * y / 3.0)) * 2.0 / 3.0
    d_lat += (160.0 * np.sin(pi * y / 12.0) + 320.0 * np.sin(pi * y / 30.0)) * 2.0 / 3.0
    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    d_lon += wobble
    d_lon += (20.0 * np.sin(pi * x) + 40.0 * np.sin(pi * x / 3.0)) * 2.0 / 3.0
    d_lon += (150.0 * np.sin(pi * x / 12.0) + 300.0 * np.sin(pi * x / 30.0)) * 2.0 / 3.0

    phi = np.radians(lat)
    w2 = 1.0 - _GCJ_EE * np.sin(phi) ** 2
    meridian_radius = _GCJ_A * (1.0 - _GCJ_EE) / (w2 * np.sqrt(w2))
    parallel_radius = _GCJ_A / np.sqrt(w2) * np.cos(phi)
    return np.degrees(d_lon / parallel_radius), np.degrees(d_lat / meridian_radius)


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS84 → GCJ-02 (Amap, Tencent, WeChat); unchanged outside GCJ-02's rectangle."""
    lons, lats = _arrays(lon, lat)
    with np.errstate(invalid="ignore"):
        d_lon, d_lat = _gcj_offset(lons, lats)
    shift = _inside(lons, lats, GCJ_BOUNDS)
    return np.where(shift, lons + d_lon, lons), np.where(shift, lats + d_lat, lats)


def _invert(
    forward: Converter, target_x: FloatArray, target_y: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Solve forward(x, y) == target by fixed-point iteration.

    The offsets' derivatives are tiny (|J - I| < 0.01), so x ← x - (forward(x) - target)
    contracts about a hundredfold per step: 3–5 steps reach micrometres.
    """
    x, y = target_x.copy(), target_y.copy()
    for _ in range(_INVERSE_MAX_ITER):
        fx, fy = forward(x, y)
        dx, dy = fx - target_x, fy - target_y
        x -= dx
        y -= dy
        with np.errstate(invalid="ignore"):
            err = np.where(np.isfinite(dx) & np.isfinite(dy), np.maximum(abs(dx), abs(dy)), 0.0)
        if err.max(initial=0.0) < _INVERSE_TOL_DEG:
            break
    return x, y


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 → WGS84, exact (iterative) inverse; unchanged outside GCJ-02's rectangle."""
    lons, lats = _arrays(lon, lat)
    x, y = _invert(wgs84_to_gcj02, lons, lats)
    keep = outside_china(lons, lats)
    return np.where(keep, lons, x), np.where(keep, lats, y)


# --------------------------------------------------------------------------- BD-09


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 → BD-09 (Baidu): a small polar-coordinate perturbation plus a fixed shift."""
    lons, lats = _arrays(lon, lat)
    radius = np.hypot(lons, lats) + 0.00002 * np.sin(lats * _BD_K)
    theta = np.arctan2(lats, lons) + 0.000003 * np.cos(lons * _BD_K)
    bd_lon = np.asarray(radius * np.cos(theta) + _BD_DLON, dtype=np.float64)
    bd_lat = np.asarray(radius * np.sin(theta) + _BD_DLAT, dtype=np.float64)
    return bd_lon, bd_lat


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """BD-09 → GCJ-02, exact (iterative) inverse of :func:`gcj02_to_bd09`."""
    lons, lats = _arrays(lon, lat)
    return _invert(gcj02_to_bd09, lons, lats)


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """WGS84 → BD-09 (via GCJ-02, as Baidu defines it)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """BD-09 → WGS84, exact: both inverse steps are iterative."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


# --------------------------------------------------------------------------- CRS names


def parse_crs(value: str) -> str:
    """Normalise a CRS name: ``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09`` or ``EPSG:n``.

    EPSG:4326 and EPSG:4490 become ``wgs84`` / ``cgcs2000`` so that they take the identity
    path. Other EPSG codes must be 2-D geographic or projected CRSs that pyproj knows;
    anything else raises :class:`CoordinateError` (reason ``unknown_crs``).
    """
    if not isinstance(value, str):
        raise _unknown_crs()
    return _parse_crs_key(value.strip().lower())


@lru_cache(maxsize=256)
def _parse_crs_key(key: str) -> str:
    """Cached: looking an EPSG code up in PROJ's database costs about a millisecond."""
    if key in _ALIASES:
        return _ALIASES[key]
    match = _EPSG.match(key)
    if match is None:
        raise _unknown_crs()
    code = int(match.group(1))
    try:
        crs = CRS.from_epsg(code)
    except CRSError:
        raise _unknown_crs() from None
    if not (crs.is_geographic or crs.is_projected) or len(crs.axis_info) != 2:
        raise _unknown_crs()
    return f"EPSG:{code}"


@lru_cache(maxsize=64)
def _transformer(source: str, target: str) -> Transformer:
    """Cached: building a Transformer costs milliseconds (pyproj ≥ 3.1 makes them thread-safe)."""
    return Transformer.from_crs(source, target, always_xy=True)


def _pyproj(
    source: str, target: str, x: FloatArray, y: FloatArray
) -> tuple[FloatArray, FloatArray]:
    ox, oy = _transformer(source, target).transform(x, y, errcheck=False)
    return (
        np.asarray(ox, dtype=np.float64).reshape(x.shape),
        np.asarray(oy, dtype=np.float64).reshape(y.shape),
    )


def _identity(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    return x.copy(), y.copy()


_TO_CGCS2000: Final[dict[str, Converter]] = {
    "wgs84": _identity,
    "cgcs2000": _identity,
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
}
_FROM_CGCS2000: Final[dict[str, Converter]] = {
    "wgs84": _identity,
    "cgcs2000": _identity,
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}


def _converter_to(crs: str) -> Converter:
    name = parse_crs(crs)
    if name in _TO_CGCS2000:
        return _TO_CGCS2000[name]
    return lambda x, y: _pyproj(name, f"EPSG:{CGCS2000_EPSG}", x, y)


def _converter_from(crs: str) -> Converter:
    name = parse_crs(crs)
    if name in _FROM_CGCS2000:
        return _FROM_CGCS2000[name]
    return lambda lon, lat: _pyproj(f"EPSG:{CGCS2000_EPSG}", name, lon, lat)


# --------------------------------------------------------------------------- entry points


def _checked_to_cgcs2000(
    convert: Converter, x: FloatArray, y: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Convert, then name the first point that is NaN, outside China or swapped.

    NaN/inf is checked before converting (conversions could hide it). After converting,
    a point outside China is called "swapped" when converting its swapped input lands
    inside China; that works for projected inputs too, where x/y order is easting/northing.
    """
    _require_finite(x, y)
    with np.errstate(invalid="ignore", over="ignore"):
        lon, lat = convert(x, y)
    problems = locate_problems(lon, lat)
    bad = np.flatnonzero(problems.ravel())
    if bad.size:
        index = int(bad[0])
        sx = np.array([y.ravel()[index]])
        sy = np.array([x.ravel()[index]])
        with np.errstate(invalid="ignore", over="ignore"):
            s_lon, s_lat = convert(sx, sy)
        swapped = int(locate_problems(s_lon, s_lat)[0]) == PROBLEM_OK
        raise _point_error(index, PROBLEM_SWAPPED if swapped else PROBLEM_OUTSIDE)
    return lon, lat


def to_cgcs2000(x: npt.ArrayLike, y: npt.ArrayLike, crs: str) -> tuple[FloatArray, FloatArray]:
    """Any supported CRS → CGCS2000 lon/lat, validated: THE conversion every input uses.

    Raises :class:`CoordinateError` naming the first bad point (NaN/inf, outside China,
    likely swapped) or an unknown CRS.
    """
    convert = _converter_to(crs)
    xs, ys = _arrays(x, y)
    return _checked_to_cgcs2000(convert, xs, ys)


def _checked_from_cgcs2000(
    convert: Converter, lon: FloatArray, lat: FloatArray
) -> tuple[FloatArray, FloatArray]:
    _raise_first_problem(locate_problems(lon, lat))
    with np.errstate(invalid="ignore", over="ignore"):
        x, y = convert(lon, lat)
    _require_finite(x, y)
    return x, y


def from_cgcs2000(
    lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str
) -> tuple[FloatArray, FloatArray]:
    """CGCS2000 lon/lat → any supported CRS (exports: gcj02 for Amap, bd09, EPSG:4549 …).

    The input must be valid stored data (finite, inside China); anything else is a bug
    upstream, reported as :class:`CoordinateError` rather than exported silently.
    """
    convert = _converter_from(crs)
    lons, lats = _arrays(lon, lat)
    return _checked_from_cgcs2000(convert, lons, lats)


def _transform_geometry(geom: BaseGeometry, fn: Converter) -> BaseGeometry:
    def on_coords(coords: FloatArray) -> FloatArray:
        x, y = fn(coords[:, 0].copy(), coords[:, 1].copy())
        return np.column_stack([x, y])

    result: BaseGeometry = shapely.transform(geom, on_coords, include_z=False)
    return result


def geometry_to_cgcs2000(geom: BaseGeometry, crs: str) -> BaseGeometry:
    """Every vertex of ``geom`` → CGCS2000, validated as :func:`to_cgcs2000` (Z is dropped).

    The error's ``index`` counts vertices in ``shapely.get_coordinates`` order.
    """
    convert = _converter_to(crs)
    return _transform_geometry(geom, lambda x, y: _checked_to_cgcs2000(convert, x, y))


def geometry_from_cgcs2000(geom: BaseGeometry, crs: str) -> BaseGeometry:
    """Every vertex of a stored geometry → ``crs``, for exports (Z is dropped)."""
    convert = _converter_from(crs)
    return _transform_geometry(geom, lambda lon, lat: _checked_from_cgcs2000(convert, lon, lat))


# --------------------------------------------------------------------------- Gauss-Kruger


def gauss_kruger_epsg(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Kruger zone (with CM, no zone prefix).

    Zones are 3° wide centred on multiples of 3° (CM 75E = EPSG:4534 … CM 135E = 4554);
    a longitude on a zone edge goes east. Pass a representative longitude of the data
    (e.g. its centroid): 120.3 (Wuxi) → 4549.
    """
    value = float(lon)
    if not np.isfinite(value) or not CHINA_BOUNDS[0] <= value <= CHINA_BOUNDS[2]:
        raise _point_error(0, PROBLEM_NAN if not np.isfinite(value) else PROBLEM_OUTSIDE)
    central = 3 * int(np.floor((value + 1.5) / 3.0))
    central = min(max(central, 75), 135)
    return 4534 + (central - 75) // 3


def to_projected(
    lon: npt.ArrayLike, lat: npt.ArrayLike, epsg: int | None = None
) -> tuple[FloatArray, FloatArray]:
    """CGCS2000 lon/lat → projected metres (default EPSG:4549), for areas and distances."""
    code = DEFAULT_PROJECTED_EPSG if epsg is None else epsg
    return from_cgcs2000(lon, lat, f"EPSG:{code}")


def from_projected(
    x: npt.ArrayLike, y: npt.ArrayLike, epsg: int = DEFAULT_PROJECTED_EPSG
) -> tuple[FloatArray, FloatArray]:
    """Projected metres (default EPSG:4549) → CGCS2000 lon/lat, validated."""
    return to_cgcs2000(x, y, f"EPSG:{epsg}")


def convert_with_problems(
    x: npt.ArrayLike, y: npt.ArrayLike, crs: str
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int8]]:
    """Like :func:`to_cgcs2000`, but per point: a problem code for every bad point.

    For batch imports, which must name every bad row rather than stop at the first one.
    Bad points get NaN coordinates; the codes are the ``PROBLEM_*`` constants.
    """
    convert = _converter_to(crs)
    xs, ys = _arrays(x, y)
    xs, ys = xs.ravel(), ys.ravel()
    problems = np.zeros(xs.shape, dtype=np.int8)
    lon = np.full(xs.shape, np.nan)
    lat = np.full(xs.shape, np.nan)
    finite = np.isfinite(xs) & np.isfinite(ys)
    problems[~finite] = PROBLEM_NAN
    if finite.any():
        with np.errstate(invalid="ignore", over="ignore"):
            lon[finite], lat[finite] = convert(xs[finite], ys[finite])
        found = np.zeros(xs.shape, dtype=np.int8)
        found[finite] = locate_problems(lon[finite], lat[finite])
        bad = np.flatnonzero(found)
        if bad.size:
            with np.errstate(invalid="ignore", over="ignore"):
                s_lon, s_lat = convert(ys[bad], xs[bad])
            swapped = locate_problems(s_lon, s_lat) == PROBLEM_OK
            problems[bad] = np.where(swapped, PROBLEM_SWAPPED, PROBLEM_OUTSIDE)
            lon[bad] = np.nan
            lat[bad] = np.nan
    return lon, lat, problems
