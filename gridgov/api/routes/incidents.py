"""``/incidents``: report one incident and see where it was assigned; list, move, explain.

Thin: validation of the body here, every rule and statement in ``gridgov.layers.incidents``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from gridgov.api.auth import PrincipalDep
from gridgov.api.deps import ConnectionDep, SettingsDep
from gridgov.api.errors import problem_responses
from gridgov.api.query import bad, reject_unknown
from gridgov.api.strict_json import StrictJSONRoute
from gridgov.errors import PermissionDeniedError
from gridgov.gis.coords import to_cgcs2000
from gridgov.layers import audit, incidents
from gridgov.layers.assignment import METHODS
from gridgov.layers.catalog import INCIDENT_CATEGORIES, INCIDENT_SOURCES, INCIDENT_STATUSES
from gridgov.layers.io import values

router = APIRouter(
    prefix="/incidents",
    tags=["incidents 事件"],
    route_class=StrictJSONRoute,
    responses=problem_responses(409),  # a duplicate external id, a move the lifecycle forbids
)

LOCAL_TIME = ZoneInfo("Asia/Shanghai")
Category = Literal[tuple(c.value for c in INCIDENT_CATEGORIES)]  # type: ignore[valid-type]
Source = Literal[tuple(c.value for c in INCIDENT_SOURCES)]  # type: ignore[valid-type]
Status = Literal[tuple(c.value for c in INCIDENT_STATUSES)]  # type: ignore[valid-type]
Method = Literal[METHODS]  # type: ignore[valid-type]
# A JSON number: `true` is not 1.0, nor "120.3" a longitude (pydantic's lax mode took both).
Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]


class PointGeometry(BaseModel):
    """A GeoJSON Point (RFC 7946: no ``crs`` member; say the CRS in ``crs`` beside it)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["Point"]
    coordinates: Annotated[list[Finite], Field(min_length=2, max_length=2)]


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    geometry: PointGeometry | None = Field(default=None, description="GeoJSON Point")
    lon: Finite | None = Field(default=None, description="经度 longitude (or x)")
    lat: Finite | None = Field(default=None, description="纬度 latitude (or y)")
    crs: str = Field(
        default="wgs84",
        max_length=20,
        description="Coordinates' system: wgs84 (GPS), cgcs2000, gcj02 (高德/腾讯/微信), "
        "bd09 (百度) or EPSG:n",
    )
    category: Category = Field(description="事件类别")  # type: ignore[valid-type]
    source: Source = Field(description="来源")  # type: ignore[valid-type]
    reported_at: Moment = Field(
        description="上报时间; without a zone it is Beijing time; at most an hour ahead of now"
    )
    external_id: str | None = Field(
        default=None, min_length=1, max_length=incidents.MAX_CHARS["external_id"]
    )
    description: str | None = Field(default=None, max_length=incidents.MAX_CHARS["description"])

    @field_validator("external_id")
    @classmethod
    def _ticket_number(cls, value: str | None) -> str | None:
        if value is not None and value != value.strip():
            raise ValueError("外部编号首尾不能有空白 (the external id has spaces around it)")
        if value is not None and incidents.EXTERNAL_ID_FORBIDDEN.search(value):
            raise ValueError(f"{incidents.EXTERNAL_ID_ZH} ({incidents.EXTERNAL_ID_EN})")
        return value

    @field_validator("description")
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        """As the import reads a description cell: surrounding whitespace is no part of
        it, and a blank one is none, so that a report and its imported twin compare
        equal (:data:`incidents.FIELD_DIFFERS`)."""
        return (value.strip() or None) if value is not None else None

    @model_validator(mode="after")
    def _one_location(self) -> IncidentIn:
        has_xy = self.lon is not None or self.lat is not None
        if (self.geometry is None) == (not has_xy) or (has_xy and None in (self.lon, self.lat)):
            raise ValueError("give either geometry, or both lon and lat (exactly one of them)")
        return self


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Status = Field(description="目标状态 target status")  # type: ignore[valid-type]
    note: str | None = Field(default=None, max_length=2000)
    at: Moment | None = Field(default=None, description="When it happened (default: now)")


def _aware(moment: datetime) -> datetime:
    """``moment`` with a zone (none given: Beijing time), if it names a real instant: a
    UTC offset of a real zone (-12:00 to +14:00) and a time PostgreSQL can store."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=LOCAL_TIME)
    offset = aware.utcoffset()
    if offset is not None and not timedelta(hours=-12) <= offset <= timedelta(hours=14):
        raise ValueError(
            "时区偏移须在 -12:00 到 +14:00 之间 (a UTC offset lies between -12:00 and +14:00)"
        )
    try:
        aware.astimezone(UTC)
    except OverflowError:
        raise ValueError("时间超出可表示的范围 (the time is out of range)") from None
    return aware


_DIGITS = re.compile(r"[0-9]+")


def _importers_time(value: object) -> object:
    """A number or a string of digits read by the importers' rule (10 digits: epoch
    seconds, 13: milliseconds, 8: a date YYYYMMDD, 12 or 14: YYYYMMDDhhmm[ss] in Beijing
    time), never by pydantic's, which takes any
    number as seconds or milliseconds by its size: ``from=20250501`` was 1970-08-23 and
    a reported_at missing a digit (``173566080``) was 1975. A year-first time as Chinese
    systems and spreadsheets write it (``2025/5/1 9:05``, ``2025年5月1日``, ``下午3:05``:
    :data:`values.LOOSE_TIME`) is read as the importers read it too; ISO 8601 is left
    to pydantic."""
    if isinstance(value, str) and values.LOOSE_TIME.fullmatch(value.strip()):
        try:
            return values.timestamp(value)
        except ValueError:
            raise ValueError(
                f"时间“{value}”不是真实的日期或时刻 (no such day or hour: {value!r})"
            ) from None
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric and not (isinstance(value, str) and _DIGITS.fullmatch(value)):
        return value
    try:
        return values.timestamp(value)
    except ValueError:
        raise ValueError(
            f"数字时间“{value}”须为 10 位（秒）或 13 位（毫秒）的 Unix 时间、8 位日期 "
            "YYYYMMDD，或 12、14 位的年月日时分（秒） (a time given as digits is 10 digits "
            "of epoch seconds, 13 of milliseconds, a date YYYYMMDD, or YYYYMMDDhhmm[ss])"
        ) from None


Moment = Annotated[datetime, BeforeValidator(_importers_time), AfterValidator(_aware)]


def feature(row: dict[str, Any]) -> dict[str, Any]:
    """An incident as a GeoJSON Feature (lon/lat, RFC 7946)."""
    properties = {k: v for k, v in row.items() if k not in {"lon", "lat"}}
    return {
        "type": "Feature",
        "id": row["id"],
        "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
        "properties": properties,
        "links": [
            {"rel": "self", "href": f"/incidents/{row['id']}"},
            {"rel": "assignment", "href": f"/incidents/{row['id']}/assignment"},
        ],
    }


@router.post(
    "",
    status_code=201,
    summary="上报事件并分派 (report an incident; it is assigned)",
    responses={200: {"description": "同一外部编号、同样内容的重复上报：返回已存事件 (a repeat)"}},
)
def create_incident(
    body: IncidentIn,
    principal: PrincipalDep,
    conn: ConnectionDep,
    settings: SettingsDep,
    response: Response,
) -> dict[str, Any]:
    """Grid workers report in their own grids: a point assigned elsewhere is a 403 (and
    nothing is stored, the request's transaction rolls back).

    A report repeated with the same external id and the same values (a client retrying
    after a lost answer) is answered 200 with the stored incident, and stores nothing;
    with other values it is a 409 naming them."""
    principal.require_edit("incident")
    if body.geometry is not None:
        x, y = body.geometry.coordinates
    else:
        x, y = float(body.lon or 0.0), float(body.lat or 0.0)
    lon, lat = to_cgcs2000([x], [y], body.crs)
    try:
        new_id = incidents.create(
            conn,
            incidents.NewIncident(
                lon=float(lon[0]),
                lat=float(lat[0]),
                category=body.category,
                source=body.source,
                reported_at=body.reported_at,
                external_id=body.external_id,
                description=body.description,
            ),
            settings.assign_tolerance_m,
            actor=principal.user.username,
            scope=principal.scope,
        )
        repeat = False
    except incidents.AlreadyReportedError as stored_already:
        new_id, repeat = stored_already.existing_id, True
    stored = incidents.get(conn, new_id)
    if not incidents.in_scope(stored, principal.scope):
        raise PermissionDeniedError(
            "该位置不在您的管辖区域内，不能上报", "the point lies outside your area"
        )
    audit.record(
        conn,
        principal.event(
            "incident_create", "ok", target=f"incident/{new_id}", detail={"repeat": repeat}
        ),
    )
    if repeat:
        response.status_code = 200
    response.headers["Location"] = f"/incidents/{new_id}"
    result = feature(stored)
    result["assignment"] = incidents.explain(conn, new_id)
    return result


@router.get("", summary="查询事件 (list incidents)")
def list_incidents(
    request: Request,
    principal: PrincipalDep,
    conn: ConnectionDep,
    grid: Annotated[str | None, Query(pattern=r"^[0-9]{15}$", description="网格编码")] = None,
    community: Annotated[
        str | None, Query(pattern=r"^[0-9]{12}$", description="村社区代码")
    ] = None,
    township: Annotated[str | None, Query(pattern=r"^[0-9]{9}$", description="镇街代码")] = None,
    district: Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="区县代码")] = None,
    category: Annotated[Category | None, Query(description="事件类别")] = None,  # type: ignore[valid-type]
    status: Annotated[Status | None, Query(description="状态")] = None,  # type: ignore[valid-type]
    police_station: Annotated[str | None, Query(max_length=40, description="派出所")] = None,
    policing_area: Annotated[str | None, Query(max_length=40, description="社区警务区")] = None,
    urban_unit: Annotated[str | None, Query(max_length=40, description="城管单元")] = None,
    emergency_unit: Annotated[str | None, Query(max_length=40, description="应急单元")] = None,
    source: Annotated[Source | None, Query(description="来源")] = None,  # type: ignore[valid-type]
    method: Annotated[
        Method | None, Query(description="分派方式 inside/boundary/nearest/fallback")
    ] = None,
    external_id: Annotated[
        str | None,
        Query(max_length=incidents.MAX_CHARS["external_id"], description="外部编号（工单号）"),
    ] = None,
    reported_from: Annotated[Moment | None, Query(alias="from", description="上报时间起")] = None,
    reported_to: Annotated[
        Moment | None, Query(alias="to", description="上报时间止（不含）")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    principal.require_read("incident")
    reject_unknown(request.query_params, [*incidents.LIST_FILTERS, "from", "to", "limit", "offset"])
    start, end = reported_from, reported_to
    if start is not None and end is not None and start >= end:
        raise bad("from", "须早于 to（to 不含）", "must be before to (to is exclusive)")
    page = incidents.search(
        conn,
        {
            "grid": grid,
            "community": community,
            "township": township,
            "district": district,
            "category": category,
            "status": status,
            "police_station": police_station,
            "policing_area": policing_area,
            "urban_unit": urban_unit,
            "emergency_unit": emergency_unit,
            "source": source,
            "method": method,
            "external_id": external_id,
        },
        start,
        end,
        limit,
        offset,
        principal.scope,
    )
    links = []
    if page.offset + page.limit < page.total:
        query = request.query_params.multi_items()
        kept = [(k, v) for k, v in query if k != "offset"] + [("offset", str(offset + limit))]
        # Relative, as the other links are: never built from the request's Host header.
        href = f"{request.url.path}?{urlencode(kept, quote_via=quote)}"
        links.append({"rel": "next", "href": href})
    return {
        "type": "FeatureCollection",
        "numberMatched": page.total,
        "numberReturned": len(page.items),
        "features": [feature(row) for row in page.items],
        "links": links,
    }


@router.get("/{incident_id}", summary="事件详情 (one incident)")
def get_incident(incident_id: int, principal: PrincipalDep, conn: ConnectionDep) -> dict[str, Any]:
    principal.require_read("incident")
    return feature(incidents.get(conn, incident_id, principal.scope))


@router.get("/{incident_id}/assignment", summary="分派说明 (why it went where it went)")
def explain_assignment(
    incident_id: int, principal: PrincipalDep, conn: ConnectionDep
) -> dict[str, Any]:
    principal.require_read("incident")
    return incidents.explain(conn, incident_id, principal.scope)


@router.get("/{incident_id}/history", summary="流转记录 (lifecycle history)")
def incident_history(
    incident_id: int, principal: PrincipalDep, conn: ConnectionDep
) -> dict[str, Any]:
    principal.require_read("incident")
    return {"id": incident_id, "items": incidents.history(conn, incident_id, principal.scope)}


@router.post("/{incident_id}/transitions", summary="事件流转 (move to the next stage)")
def move_incident(
    incident_id: int, body: TransitionIn, principal: PrincipalDep, conn: ConnectionDep
) -> dict[str, Any]:
    """An incident outside the caller's area is a 404 (it does not exist for them); a role
    that may read but not handle incidents gets a 403."""
    principal.require_read("incident")
    incidents.get(conn, incident_id, principal.scope)  # 404 before 403: no existence leak
    principal.require_edit("incident")
    row = incidents.transition(
        conn,
        incident_id,
        body.to,
        actor=principal.user.username,
        note=body.note,
        at=body.at,
        scope=principal.scope,
    )
    audit.record(
        conn,
        principal.event(
            "incident_transition", "ok", target=f"incident/{incident_id}", detail={"to": body.to}
        ),
    )
    return feature(row)
