"""Which CRS an input file is in: the file's own declaration or ``--crs``, never a guess."""

from __future__ import annotations

from gridgov.errors import InvalidInputError
from gridgov.gis.coords import parse_crs
from gridgov.layers.io.errors import ImportUsageError

# Treated as one datum by gridgov.gis.coords (they agree within centimetres).
SAME_DATUM = frozenset({"wgs84", "cgcs2000"})
# GCJ-02 and BD-09 have no EPSG code: files holding them are labelled WGS84.
WGS84_LABELLED = frozenset({"gcj02", "bd09"})


def parse_user_crs(value: str) -> str:
    """``--crs`` normalised; an unknown name is a usage error."""
    try:
        return parse_crs(value)
    except InvalidInputError as exc:
        raise ImportUsageError(exc.detail_zh, exc.detail_en) from None


def resolve_crs(declared: str | None, requested: str | None) -> str:
    """The CRS to read coordinates in; a contradiction is refused, not resolved."""
    wanted = parse_user_crs(requested) if requested else None
    if declared is None:
        if wanted is None:
            raise ImportUsageError(
                "文件没有声明坐标系，请用 --crs 指定（wgs84、cgcs2000、gcj02、bd09 或 EPSG:编号）",
                "the file declares no CRS: pass --crs (wgs84, cgcs2000, gcj02, bd09 or EPSG:n)",
            )
        return wanted
    if wanted is None or wanted == declared:
        return declared
    if {wanted, declared} <= SAME_DATUM:
        return wanted
    if declared == "wgs84" and wanted in WGS84_LABELLED:
        return wanted
    raise ImportUsageError(
        f"文件声明的坐标系是 {declared}，与 --crs {wanted} 不一致；坐标系错误不会被静默改用，"
        "请确认数据的真实坐标系",
        f"the file declares {declared} but --crs says {wanted}; a wrong CRS is never "
        "silently re-interpreted",
    )
