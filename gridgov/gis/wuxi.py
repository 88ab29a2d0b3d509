"""Wuxi's real admin units as committed in ``data/wuxi/`` (see its SOURCE.md).

Pure loaders (no database): the demo city builds on them, and tests check them. Codes are
strings, never numbers, so leading digits and lengths survive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

import geopandas
import pandas as pd

DATA_DIR: Final = Path(__file__).resolve().parents[2] / "data" / "wuxi"
CRS: Final = "EPSG:4490"  # CGCS2000 lon/lat, as every gridgov layer stores geometry


def load_districts(data_dir: Path = DATA_DIR) -> geopandas.GeoDataFrame:
    """The 7 districts / county-level cities: ``code``, ``name``, MultiPolygon ``geometry``.

    They form a valid coverage (shared edges identical, no gaps or overlaps).
    """
    collection = json.loads((data_dir / "districts.geojson").read_text(encoding="utf-8"))
    frame = geopandas.GeoDataFrame.from_features(collection["features"], crs=CRS)
    return frame[["code", "name", "geometry"]].sort_values("code", ignore_index=True)


def load_townships(data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """The 88 townships / streets (镇街): ``code`` (9 digits), ``name``, ``district_code``."""
    return pd.read_csv(data_dir / "townships.csv", dtype=str, keep_default_na=False)


def load_communities(data_dir: Path = DATA_DIR) -> pd.DataFrame:
    """Villages / communities (村社区): ``code`` (12), ``name``, ``township_code``, ``kind``.

    ``kind`` is ``urban`` (社区 / 居委会) or ``rural`` (村 / 村委会).
    """
    return pd.read_csv(data_dir / "communities.csv", dtype=str, keep_default_na=False)
