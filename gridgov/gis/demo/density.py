"""Where people live: a smooth residential density over Wuxi, dense in the urban core.

The centres are real places (approximate, CGCS2000 lon/lat); the surface itself is
synthetic. Used to size townships and communities and to place buildings and incidents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gridgov.gis.coords import to_projected

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Centre:
    name: str
    lon: float
    lat: float
    weight: float
    sigma_m: float


URBAN_CENTRES: tuple[Centre, ...] = (
    Centre("梁溪 城中", 120.300, 31.575, 1.00, 3_500),
    Centre("滨湖 蠡湖", 120.275, 31.530, 0.45, 4_000),
    Centre("新吴 旺庄", 120.360, 31.540, 0.45, 4_000),
    Centre("锡山 东亭", 120.365, 31.600, 0.30, 3_000),
    Centre("惠山 堰桥", 120.300, 31.665, 0.25, 3_000),
    Centre("惠山 洛社", 120.170, 31.640, 0.10, 2_500),
    Centre("江阴 澄江", 120.285, 31.905, 0.45, 4_000),
    Centre("宜兴 宜城", 119.820, 31.360, 0.35, 4_000),
    Centre("新吴 硕放", 120.430, 31.490, 0.15, 3_000),
)

# Industrial parks: hazards and group rentals cluster here.
INDUSTRIAL_CENTRES: tuple[Centre, ...] = (
    Centre("新吴 硕放-梅村工业园", 120.450, 31.505, 1.0, 3_000),
    Centre("江阴 临港开发区", 120.180, 31.950, 1.0, 3_500),
    Centre("江阴 华士-周庄", 120.450, 31.820, 0.7, 3_000),
    Centre("宜兴 环保科技园", 119.900, 31.380, 0.8, 3_000),
    Centre("惠山 前洲-玉祁", 120.200, 31.700, 0.7, 3_000),
    Centre("锡山 东港", 120.500, 31.650, 0.6, 3_000),
)

# Universities and colleges: rental housing clusters here too.
UNIVERSITY_CENTRES: tuple[Centre, ...] = (
    Centre("江南大学", 120.270, 31.485, 1.0, 1_500),
    Centre("无锡职业技术学院", 120.370, 31.490, 0.6, 1_200),
    Centre("江苏信息职业技术学院", 120.300, 31.655, 0.5, 1_200),
)

RURAL_BASE = 0.02


def _projected_centres(centres: tuple[Centre, ...]) -> tuple[FloatArray, FloatArray]:
    x, y = to_projected(np.array([c.lon for c in centres]), np.array([c.lat for c in centres]))
    return np.column_stack([x, y]), np.array([[c.weight, c.sigma_m] for c in centres])


def gaussian_surface(
    x: FloatArray, y: FloatArray, centres: tuple[Centre, ...], base: float = 0.0
) -> FloatArray:
    """Sum of Gaussian bumps at ``centres`` (projected metres in, relative density out)."""
    xy, params = _projected_centres(centres)
    dx = x[:, None] - xy[None, :, 0]
    dy = y[:, None] - xy[None, :, 1]
    bumps = params[None, :, 0] * np.exp(-(dx**2 + dy**2) / (2 * params[None, :, 1] ** 2))
    result: FloatArray = base + bumps.sum(axis=1)
    return result


def residential_density(x: FloatArray, y: FloatArray) -> FloatArray:
    return gaussian_surface(x, y, URBAN_CENTRES, RURAL_BASE)


def urban_share(x: FloatArray, y: FloatArray) -> FloatArray:
    """0..1: how urban a place is, for building sizes and community kinds."""
    share: FloatArray = np.clip(gaussian_surface(x, y, URBAN_CENTRES) / 0.25, 0.0, 1.0)
    return share
