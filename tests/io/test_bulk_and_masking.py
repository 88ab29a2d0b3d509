"""A 100k-row CSV imports in seconds; masking of personal data is one pure function."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Connection, MetaData

from gridgov.gis.masking import mask_personal
from gridgov.layers.registry import Registry
from tests.factories import WUXI_LAT, WUXI_LON
from tests.io.conftest import CODES_COMMUNITY, count, run_import

ROWS = 100_000


def test_100k_row_csv_imports_in_seconds(
    connection: Connection, metadata: MetaData, registry: Registry, pyramid: None, tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    lon = WUXI_LON + rng.uniform(0, 0.01, ROWS)
    lat = WUXI_LAT + rng.uniform(0, 0.01, ROWS)
    path = tmp_path / "buildings.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("地址,户数,居住人口,层数,经度,纬度,村社区代码\n")
        for i in range(ROWS):
            x, y = float(lon[i]), float(lat[i])
            handle.write(
                f"南长街{i}号,{i % 40},{i % 90},{i % 30 + 1},{x!r},{y!r},{CODES_COMMUNITY}\n"
            )
    started = time.perf_counter()
    report = run_import(connection, registry, "building", path, crs="cgcs2000")
    elapsed = time.perf_counter() - started
    assert report.problems == []
    assert report.rows_written == ROWS
    assert count(connection, metadata, "building") == ROWS
    assert elapsed < 30, f"{elapsed:.1f} s"


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("张三", "张*"),
        ("欧阳修远", "欧***"),
        ("320202198001011234", "3202**********1234"),
        ("32020219800101123X", "3202**********123X"),
        ("13812345678", "138****5678"),
        ("+86 138-1234-5678", "861******5678"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_personal(value: str | None, masked: str | None) -> None:
    assert mask_personal(value) == masked
