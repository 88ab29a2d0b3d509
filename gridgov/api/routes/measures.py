"""Grid measures (网格测度): one grid, a community or township, or proposed geometries.

Thin: the statements and reports are in :mod:`gridgov.layers.measures`.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from gridgov.api.auth import PrincipalDep
from gridgov.api.deps import ConnectionDep, RegistryDep, SettingsDep
from gridgov.api.strict_json import StrictJSONRoute
from gridgov.errors import InvalidInputError, PermissionDeniedError
from gridgov.gis.grid_edit import geometry_from_geojson
from gridgov.gis.measures import WorkloadWeights
from gridgov.layers import measures, scope
from gridgov.layers.measures import Period
from gridgov.settings import Settings

router = APIRouter(tags=["measures 网格测度"], route_class=StrictJSONRoute)

LOCAL_TIME = ZoneInfo("Asia/Shanghai")
FromQ = Annotated[
    date | None, Query(alias="from", description="事件统计起始日（北京时间；默认一年前）")
]
ToQ = Annotated[date | None, Query(alias="to", description="事件统计截止日（含当日；默认今天）")]
MAX_PROPOSED = 500


class ProposedFeature(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["Feature"]
    id: str | int | None = None
    geometry: dict[str, Any]
    properties: dict[str, Any] | None = None


class ProposedIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["FeatureCollection"]
    features: list[ProposedFeature] = Field(min_length=1, max_length=MAX_PROPOSED)


def period(start: date | None, end: date | None) -> Period:
    last = end or datetime.now(LOCAL_TIME).date()
    first = start or last - timedelta(days=365)
    if first > last:
        raise InvalidInputError(
            "统计起始日晚于截止日", "from is after to", public={"reason": "bad_period"}
        )
    return Period(
        datetime.combine(first, time(), LOCAL_TIME),
        datetime.combine(last + timedelta(days=1), time(), LOCAL_TIME),
    )


def weights(settings: Settings) -> WorkloadWeights:
    return WorkloadWeights.from_mapping(settings.workload_weights)


@router.get("/grids/{code}/measures", summary="网格测度 (measures of one grid in force)")
def grid_measures(
    code: Annotated[str, Path(pattern=r"^[0-9]{15}$")],
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    start: FromQ = None,
    end: ToQ = None,
) -> dict[str, Any]:
    principal.require_visible("grid", code)
    return measures.grid_report(conn, registry, code, period(start, end), weights(settings))


@router.get(
    "/areas/{code}/measures",
    summary="村社区 / 镇街的网格测度、均衡度、覆盖与对接 (community or township measures)",
)
def area_measures(
    code: Annotated[str, Path(pattern=r"^([0-9]{9}|[0-9]{12})$", description="9 或 12 位代码")],
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    start: FromQ = None,
    end: ToQ = None,
) -> dict[str, Any]:
    principal.require_visible("grid", code)
    return measures.area_report(conn, registry, code, period(start, end), weights(settings))


@router.post("/measures", summary="拟调整网格的测度 (measures of proposed grid geometries)")
def proposed_measures(
    body: ProposedIn,
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    crs: Annotated[str, Query(max_length=20)] = "wgs84",
    start: FromQ = None,
    end: ToQ = None,
) -> dict[str, Any]:
    principal.require_read("grid")
    geoms = {}
    for index, item in enumerate(body.features):
        key = str(item.id) if item.id is not None else str(index)
        if key in geoms:
            raise InvalidInputError(f"要素编号重复：{key}", f"duplicate feature id {key}")
        geoms[key] = geometry_from_geojson(
            item.geometry, crs, ("Polygon", "MultiPolygon"), what=f"feature {key}"
        )
    outside = scope.communities_outside(conn, principal.scope, geoms)
    if outside:
        raise PermissionDeniedError(
            f"拟调整网格越出账户的区域（村社区 {'、'.join(outside)}）",
            f"the proposed grids reach communities outside the account's area: {outside}",
        )
    return measures.measure_geometries(conn, registry, geoms, period(start, end), weights(settings))
