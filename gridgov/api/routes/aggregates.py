"""Incident aggregates for heatmaps: H3 hexagons, counts per unit, and a trend.

Answers come from an in-process :class:`~gridgov.gis.cube.Cube` of the pre-aggregate,
reloaded whenever the incident layer's generation changes (one tiny query per request).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import replace
from datetime import date, timedelta
from typing import Annotated, Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection, Engine, text

from gridgov.api.auth import Principal, ReadPrincipalDep
from gridgov.api.deps import ReadConnectionDep, RegistryDep
from gridgov.api.query import bad, parse_bool, reject_unknown
from gridgov.errors import NotFoundError
from gridgov.gis import h3bins
from gridgov.gis.cube import Cube, CubeFilter, Totals, totals
from gridgov.layers import aggregates
from gridgov.layers.catalog import INCIDENT_CATEGORIES, INCIDENT_STATUSES, UNIT_CODE
from gridgov.layers.registry import Registry
from gridgov.layers.scope import as_owner, scope_terms

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/aggregates/incidents", tags=["热力聚合 (incident aggregates)"])

EPOCH = date(1970, 1, 1)
STALE_WAIT_S = 0.5  # how long a request waits for another's cube update before it answers
OVERDUE = "overdue"
FILTERS = (
    "from",
    "to",
    "category",
    "status",
    "overdue",
    "district_code",
    "township_code",
    "community_code",
    "grid_code",
    "police_station_code",
    "policing_area_code",
    "urban_unit_code",
    "emergency_unit_code",
)
CODE_PATTERNS = {
    "district": r"^[0-9]{6}$",
    "township": r"^[0-9]{9}$",
    "community": r"^[0-9]{12}$",
    "grid": r"^[0-9]{15}$",
    "police_station": UNIT_CODE,
    "policing_area": UNIT_CODE,
    "urban_unit": UNIT_CODE,
    "emergency_unit": UNIT_CODE,
}
Level = Literal[
    "grid",
    "community",
    "township",
    "district",
    "police_station",
    "policing_area",
    "urban_unit",
    "emergency_unit",
]


class CubeCache:
    """The cube of one app, brought up to date when the incident generation moves.

    A fresh cube costs one tiny query per request (the generation). An update refreshes
    the pre-aggregate (the dirty days) and reloads, in one transaction, only the days
    recomputed since this cube was loaded (``incident_agg_change``, also those another
    worker process recomputed), splicing them into the cube: after a write, milliseconds
    of work rather than a reload of the whole city. The first build loads everything. On
    the request's connection when it is in a transaction (tests share theirs), else on a
    connection of ``engine``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._cube: Cube | None = None
        self._mark = 0  # the pre-aggregate's change mark the cube holds

    @property
    def cube(self) -> Cube | None:
        """The cube held now (None before the first build)."""
        return self._cube

    def _fresh(self, current: int | None) -> Cube | None:
        """Loaded at (or after) the generation this request saw: it holds every write
        committed before the request began, so requests queued behind one reload share it
        rather than each reloading again while writes go on."""
        if current is not None and self._generation is not None and self._generation >= current:
            return self._cube
        return None

    def get(self, conn: Connection, engine: Engine) -> Cube:
        cube = self._fresh(aggregates.generation(conn))
        if cube is not None:
            return cube
        # Another request of this process is bringing the cube up to date: wait a moment
        # for it, then answer from the cube as it is (one update behind) rather than queue
        # every map request behind the update while writes keep arriving.
        if not self._lock.acquire(timeout=STALE_WAIT_S):
            if self._cube is not None:
                return self._cube
            self._lock.acquire()
        try:
            return self._update(conn, engine)
        finally:
            self._lock.release()

    def _update(self, conn: Connection, engine: Engine) -> Cube:
        """Under the lock: the cube brought up to the generation the database has now."""
        cube = self._fresh(aggregates.generation(conn))
        if cube is not None:
            return cube
        # Never on an autocommit connection (the read engine's): every statement would
        # commit alone, the advisory lock and the temporary table would not outlive
        # it, and a failure halfway would leave days deleted and no longer dirty.
        if conn.in_transaction() and not aggregates.autocommit(conn):
            return self._load(conn, self._refresh(conn, wait=True))  # tests share theirs
        # Two short transactions: the refresh commits at once (writers of the day it
        # recomputed wait on its locks), then the cube is updated from what it wrote.
        with engine.begin() as tx:
            generation = self._refresh(tx, wait=True)
        with engine.begin() as tx:
            return self._load(tx, generation)

    @staticmethod
    def _refresh(conn: Connection, wait: bool) -> int | None:
        """Recompute the dirty days; the generation the cube will then hold (None: the
        refresh was skipped, the next request tries again)."""
        with as_owner(conn):
            # Read before the refresh: every write it counts marked its day dirty before
            # it committed, so the refresh below recomputes that day.
            generation = aggregates.generation(conn)
            if aggregates.refresh(conn, wait=wait) is None:
                return None
        return generation

    def _load(self, conn: Connection, generation: int | None) -> Cube:
        # Shared by every caller: built from every row, never under one caller's scope.
        with as_owner(conn):
            if self._cube is None:
                cube, mark = aggregates.load_cube(conn)
            else:  # only the days recomputed since this cube was loaded
                cube, mark = aggregates.update_cube(conn, self._cube, self._mark)
        self._cube, self._generation, self._mark = cube, generation, mark
        return cube

    def warm_up(self, engine: Engine) -> None:
        """Build the cube before the first request (at start-up), never waiting on a lock:
        a failure here only means the first request builds it."""
        with self._lock, engine.begin() as tx:
            tx.execute(text("SET LOCAL lock_timeout = '2s'"))
            self._load(tx, self._refresh(tx, wait=False))


def cube_cache(app: FastAPI) -> CubeCache:
    cache: CubeCache | None = getattr(app.state, "incident_cube", None)
    if cache is None:
        cache = CubeCache()
        app.state.incident_cube = cache
    return cache


def warm_up(app: FastAPI) -> None:
    """Start-up hook: load the incident cube; logs (never raises) when it cannot."""
    try:
        cube_cache(app).warm_up(app.state.engine)
    except Exception:
        logger.warning("incident aggregate warm-up failed; the first request will build it")


def _cube(request: Request, conn: Connection) -> Cube:
    return cube_cache(request.app).get(conn, request.app.state.engine)


def _day(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return (date.fromisoformat(value.strip()) - EPOCH).days
    except ValueError:
        raise bad(name, "须为日期 YYYY-MM-DD", "must be a date YYYY-MM-DD") from None


def _listed(value: str | None, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return ()
    items = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    if not items or any(v not in allowed for v in items):
        raise bad(
            name,
            "取值无效，可用：" + ", ".join(allowed),
            "unknown value; use one of: " + ", ".join(allowed),
        )
    return items


def parse_filter(request: Request, extra: tuple[str, ...] = ()) -> CubeFilter:
    """The shared filters; ``status`` may include ``overdue`` (same as ``overdue=true``)."""
    params = request.query_params
    reject_unknown(params, [*FILTERS, *extra])
    first, last = _day(params.get("from"), "from"), _day(params.get("to"), "to")
    if first is not None and last is not None and first > last:
        raise bad("from", "晚于 to", "is after to")
    statuses = _listed(
        params.get("status"), "status", (*(s.value for s in INCIDENT_STATUSES), OVERDUE)
    )
    overdue = bool(parse_bool(params.get("overdue"), "overdue")) or OVERDUE in statuses
    codes: dict[str, str] = {}
    for level, pattern in CODE_PATTERNS.items():
        value = params.get(f"{level}_code")
        if value is None:
            continue
        if not re.match(pattern, value.strip()):
            raise bad(f"{level}_code", "代码格式无效", "is not a well-formed code")
        codes[level] = value.strip()
    return CubeFilter(
        first_day=first,
        last_day=last,
        categories=_listed(
            params.get("category"), "category", tuple(c.value for c in INCIDENT_CATEGORIES)
        ),
        statuses=tuple(s for s in statuses if s != OVERDUE),
        overdue=overdue,
        codes=codes,
    )


def scoped_filter(
    request: Request, principal: Principal, registry: Registry, extra: tuple[str, ...] = ()
) -> CubeFilter:
    """:func:`parse_filter` limited to what the caller may see (incidents, in their area)."""
    principal.require_read("incident")
    flt = parse_filter(request, extra)
    terms = scope_terms(registry.get("incident"), principal.scope)
    if terms is None:
        return flt
    return replace(
        flt, scope={column.removesuffix("_code"): codes for column, codes in terms.items()}
    )


FILTER_DOC = (
    "Filters (all optional): `from`, `to` (local dates YYYY-MM-DD, inclusive, on reported_at), "
    "`category` and `status` (comma-separated; `status=overdue` or `overdue=true` keeps "
    "overdue incidents only), `district_code`, `township_code`, `community_code`, `grid_code`, "
    "`police_station_code`, `policing_area_code`, `urban_unit_code` (城管单元), "
    "`emergency_unit_code` (应急单元). `overdue` = deadline passed, not closed or "
    "evaluated, decided against the clock at request time."
)


@router.get(
    "/h3",
    summary="H3 六边形热力 (incident counts per H3 cell, GeoJSON)",
    description=FILTER_DOC,
    response_class=Response,
    responses={
        200: {
            "description": "GeoJSON FeatureCollection of hexagons with `count` and `overdue`",
            "content": {"application/geo+json": {"schema": {"type": "object"}}},
        }
    },
)
def h3_cells(
    request: Request,
    principal: ReadPrincipalDep,
    registry: RegistryDep,
    conn: ReadConnectionDep,
    resolution: Annotated[
        str | None, Query(description="H3 分辨率 (resolution) 7–10; default 8")
    ] = None,
) -> Response:
    flt = scoped_filter(request, principal, registry, ("resolution",))
    res = 8 if resolution is None else _resolution(resolution)
    result = totals(_cube(request, conn), res, flt, time.time())
    # Hexagon geometry is cached as JSON text per cell; only the counts are new each time.
    features = ",".join(
        f'{{"type":"Feature","id":"{h3bins.cell_id(cell)}","geometry":{h3bins.hexagon_json(cell)},'
        f'"properties":{{"cell":"{h3bins.cell_id(cell)}","count":{int(n)},"overdue":{int(o)}}}}}'
        for cell, n, o in zip(result.keys, result.count, result.overdue, strict=True)
    )
    body = f'{{"type":"FeatureCollection","resolution":{res},"features":[{features}]}}'
    return Response(body, media_type="application/geo+json")


def _resolution(value: str) -> int:
    if not value.strip().isdigit() or int(value) not in h3bins.RESOLUTIONS:
        raise bad("resolution", "须为 7–10", "must be 7, 8, 9 or 10")
    return int(value)


@router.get(
    "/by/{level}",
    summary="按单元统计 (counts per grid / admin / police / urban-management / emergency unit)",
    description=FILTER_DOC,
)
def by_level(
    level: str,
    request: Request,
    principal: ReadPrincipalDep,
    registry: RegistryDep,
    conn: ReadConnectionDep,
) -> Response:
    if level not in get_args(Level):
        raise NotFoundError(
            "没有这个统计层级，可用：" + ", ".join(get_args(Level)),
            "no such level; use one of: " + ", ".join(get_args(Level)),
        )
    flt = scoped_filter(request, principal, registry)
    cube = _cube(request, conn)
    result = totals(cube, level, flt, time.time())
    prefixes, rank = _unit_json(cube, level)
    order = np.lexsort((rank[result.index], -result.count))  # most incidents first, then code
    index, count, overdue = result.index[order], result.count[order], result.overdue[order]
    items = b",".join(
        b'%s%d,"overdue":%d}' % (prefixes[i], n, o)
        for i, n, o in zip(index.tolist(), count.tolist(), overdue.tolist(), strict=True)
    )
    body = b'{"level":%s,"items":[%s]}' % (orjson.dumps(level), items)
    return Response(body, media_type="application/json")


class _UnitJson:
    """Per unit of a level: the start of its JSON item (code and name, up to ``"count":``)
    and its rank by code; made once per cube (held, so never confused with a later one),
    so that a request only writes numbers."""

    def __init__(self) -> None:
        self._cube: Cube | None = None
        self._levels: dict[str, tuple[list[bytes], npt.NDArray[np.int64]]] = {}
        self._lock = threading.Lock()

    def get(self, cube: Cube, level: str) -> tuple[list[bytes], npt.NDArray[np.int64]]:
        with self._lock:
            if self._cube is not cube:
                self._cube, self._levels = cube, {}
            cached = self._levels.get(level)
            if cached is None:
                cached = self._levels[level] = self._make(cube, level)
            return cached

    @staticmethod
    def _make(cube: Cube, level: str) -> tuple[list[bytes], npt.NDArray[np.int64]]:
        names = cube.names.get(level, {})
        codes = cube.code_values[level]
        prefixes = [
            orjson.dumps(
                {"code": code, "name": names.get(code, code) if code else "未分派 (unassigned)"}
            )[:-1]
            + b',"count":'
            for code in codes
        ]
        rank = np.argsort(np.argsort(np.array([c or "" for c in codes], dtype=object)))
        return prefixes, rank.astype(np.int64)


_unit_json = _UnitJson().get


def _periods(result: Totals, interval: str) -> list[dict[str, Any]]:
    days = np.asarray(result.keys, dtype=np.int64)
    if interval == "day":
        starts = days
    elif interval == "week":  # ISO weeks start on Monday; 1970-01-01 was a Thursday
        starts = days - (days + 3) % 7
    else:
        months = days.astype("datetime64[D]").astype("datetime64[M]")
        starts = months.astype("datetime64[D]").astype(np.int64)
    if len(starts) == 0:
        return []
    unique, inverse = np.unique(starts, return_inverse=True)
    count = np.bincount(inverse, weights=result.count).astype(np.int64)
    overdue = np.bincount(inverse, weights=result.overdue).astype(np.int64)
    by_start = {int(s): (int(c), int(o)) for s, c, o in zip(unique, count, overdue, strict=True)}
    items = []
    period = int(unique[0])
    last = int(unique[-1])
    while period <= last:  # every period in the span, empty ones as zero (for charts)
        c, o = by_start.get(period, (0, 0))
        start = EPOCH + timedelta(days=period)
        items.append({"period": start.isoformat(), "count": c, "overdue": o})
        if interval == "day":
            period += 1
        elif interval == "week":
            period += 7
        else:
            following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
            period = (following - EPOCH).days
    return items


@router.get(
    "/trend", summary="趋势 (incident counts per day, week or month)", description=FILTER_DOC
)
def trend(
    request: Request,
    principal: ReadPrincipalDep,
    registry: RegistryDep,
    conn: ReadConnectionDep,
    interval: Annotated[
        str, Query(description="时间粒度 (period length): day, week (ISO, Monday) or month")
    ] = "month",
) -> JSONResponse:
    flt = scoped_filter(request, principal, registry, ("interval",))
    if interval not in ("day", "week", "month"):
        raise bad("interval", "须为 day、week 或 month", "must be day, week or month")
    result = totals(_cube(request, conn), "day", flt, time.time())
    return JSONResponse({"interval": interval, "items": _periods(result, interval)})


__all__ = ["CubeCache", "parse_filter", "router"]
