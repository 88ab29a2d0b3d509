"""Vector tiles under OGC API – Tiles paths (WebMercatorQuad), TileJSON and the matrix set."""

from __future__ import annotations

import itertools
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from gridgov.api.auth import PrincipalDep, ReadPrincipalDep
from gridgov.api.deps import ConnectionDep, ReadConnectorDep, RegistryDep, SettingsDep
from gridgov.api.map_deps import BaseUrlDep, MetadataDep
from gridgov.api.query import bad, reject_unknown
from gridgov.errors import NotFoundError
from gridgov.gis.webmercator import MAX_ZOOM, TMS_ID, TMS_URI, check_tile, tile_matrix_set
from gridgov.layers import tiles
from gridgov.layers.features import layer_extent
from gridgov.layers.scope import AreaScope
from gridgov.layers.spec import AdminLevel, LayerSpec

router = APIRouter(tags=["矢量瓦片 (vector tiles)"])

TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {tiles.MEDIA_TYPE: {}}, "description": "Mapbox Vector Tile"},
    204: {"description": "空瓦片 (no feature in this tile, or outside the zoom range)"},
    400: {"description": "瓦片号无效 (invalid tile numbers)"},
    404: {"description": "未知图层 (unknown layer)"},
}
# Checks how full the cache is once per this many tiles stored.
_PRUNE_EVERY = 500
_stored = itertools.count(1)


def _tms(tms: str) -> None:
    if tms != TMS_ID:
        raise NotFoundError(
            f"只提供 {TMS_ID} 瓦片矩阵集", f"only the {TMS_ID} tile matrix set is offered"
        )


def _numbers(z: str, x: str, y: str) -> tuple[int, int, int]:
    for name, value in (("z", z), ("x", x), ("y", y)):
        if not (value.isascii() and value.isdigit()) or len(value) > 9:
            raise bad(name, "须为非负整数", "must be a non-negative integer")
    numbers = int(z), int(x), int(y)
    check_tile(*numbers)
    return numbers


AREA_LEVELS = (AdminLevel.DISTRICT, AdminLevel.TOWNSHIP, AdminLevel.COMMUNITY)
AreaQuery = Annotated[
    str | None,
    Query(
        description="只含此区域的要素与聚合点 (only features and clusters inside this district, "
        "township or community: its code of 6, 9 or 12 digits; never widens the caller's scope)",
        examples=["320213"],
    ),
]


def _area(value: str | None) -> AreaScope | None:
    """The area chosen on the map (the overview's selector), or None for every area."""
    if value is None:
        return None
    lengths = {level.code_length for level in AREA_LEVELS}
    if not (value.isascii() and value.isdigit()) or len(value) not in lengths:
        raise bad(
            "area",
            "须为区县（6 位）、街道（9 位）或社区（12 位）代码",
            "must be a district (6 digits), township (9) or community (12) code",
        )
    return AreaScope.of([value])


def _layer_tile(
    conn: Connection,
    spec: LayerSpec,
    z: int,
    x: int,
    y: int,
    max_tiles: int,
    scope: AreaScope,
    area: AreaScope | None = None,
) -> bytes:
    if not spec.min_zoom <= z <= spec.max_zoom:
        return b""
    use_cache = max_tiles > 0
    data = tiles.tile(conn, spec, z, x, y, use_cache, scope, area)
    if use_cache and next(_stored) % _PRUNE_EVERY == 0:
        tiles.prune(conn, max_tiles)
    return data


def _tile_response(data: bytes) -> Response:
    if not data:
        return Response(status_code=204)
    return Response(data, media_type=tiles.MEDIA_TYPE)


@router.get(
    "/collections/{layer}/tiles/{tms}/{z}/{x}/{y}",
    summary="单图层矢量瓦片 (vector tile of one layer)",
    response_class=Response,
    responses=TILE_RESPONSES,
)
async def layer_tile(
    layer: str,
    tms: str,
    z: str,
    x: str,
    y: str,
    request: Request,
    principal: ReadPrincipalDep,
    connector: ReadConnectorDep,
    registry: RegistryDep,
    settings: SettingsDep,
    area: AreaQuery = None,
) -> Response:
    """One MVT tile (layer name = collection id); 204 when empty or outside the zoom range."""
    spec = registry.get(layer)
    principal.require_read(spec.id)
    _tms(tms)
    reject_unknown(request.query_params, ["f", "area"])
    numbers = _numbers(z, x, y)
    chosen = _area(area)
    if not spec.min_zoom <= numbers[0] <= spec.max_zoom:
        return _tile_response(b"")

    def work() -> bytes:  # one worker-thread hop: checkout, render, check in
        with connector() as conn:
            limit = settings.tile_cache_max_tiles
            return _layer_tile(conn, spec, *numbers, limit, principal.scope, chosen)

    return _tile_response(await run_in_threadpool(work))


@router.get(
    "/tiles/{tms}/{z}/{x}/{y}",
    summary="多图层矢量瓦片 (one tile holding several layers)",
    response_class=Response,
    responses=TILE_RESPONSES,
)
async def multi_tile(
    tms: str,
    z: str,
    x: str,
    y: str,
    request: Request,
    principal: ReadPrincipalDep,
    connector: ReadConnectorDep,
    registry: RegistryDep,
    settings: SettingsDep,
    collections: Annotated[
        str | None,
        Query(
            description="图层列表 (comma-separated collection ids; default: every layer)",
            examples=["grid,incident"],
        ),
    ] = None,
    area: AreaQuery = None,
) -> Response:
    """Several layers in one tile: MVT layers are concatenated protobuf messages."""
    _tms(tms)
    reject_unknown(request.query_params, ["collections", "f", "area"])
    numbers = _numbers(z, x, y)
    chosen = _area(area)
    if collections is None:  # every layer the caller may read
        specs = [s for s in registry if principal.can_read(s.id)]
    else:
        ids = [c.strip() for c in collections.split(",") if c.strip()]
        unknown = [c for c in ids if c not in registry]
        if not ids or unknown:
            raise bad("collections", "含未知图层", "names an unknown collection")
        specs = [registry.get(c) for c in dict.fromkeys(ids)]
        for spec in specs:
            principal.require_read(spec.id)
    limit = settings.tile_cache_max_tiles

    def work() -> bytes:
        with connector() as conn:
            parts = [_layer_tile(conn, s, *numbers, limit, principal.scope, chosen) for s in specs]
        return b"".join(parts)

    return _tile_response(await run_in_threadpool(work))


@router.get(
    "/collections/{layer}/tiles/{tms}",
    summary="图层瓦片集 TileJSON (TileJSON 3.0.0 of a layer's vector tiles)",
    responses={404: {"description": "未知图层 (unknown layer)"}},
)
def tilejson(
    layer: str,
    tms: str,
    principal: PrincipalDep,
    conn: ConnectionDep,
    registry: RegistryDep,
    metadata: MetadataDep,
    base: BaseUrlDep,
) -> JSONResponse:
    spec = registry.get(layer)
    principal.require_read(spec.id)
    _tms(tms)
    extent = layer_extent(conn, spec, metadata, principal.scope) or (119.5, 31.1, 120.7, 32.0)
    fields = tiles.tile_fields(spec)
    west, south, east, north = extent
    body = {
        "tilejson": "3.0.0",
        "name": spec.id,
        "description": f"{spec.title_zh} ({spec.title_en})",
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [f"{base}/collections/{spec.id}/tiles/{TMS_ID}/{{z}}/{{x}}/{{y}}"],
        "minzoom": spec.min_zoom,
        "maxzoom": spec.max_zoom,
        "bounds": [west, south, east, north],
        "center": [(west + east) / 2, (south + north) / 2, max(spec.min_zoom, 12)],
        "attribution": "gridgov（区县以下为合成演示数据 synthetic below district level）",
        "vector_layers": [
            {
                "id": spec.id,
                "description": spec.title_zh,
                "minzoom": spec.min_zoom,
                "maxzoom": spec.max_zoom,
                "fields": {f.name: f.type for f in fields},
            }
        ],
        "tileMatrixSet": TMS_URI,
    }
    return JSONResponse(body)


@router.get("/tileMatrixSets", summary="瓦片矩阵集列表 (tile matrix sets)")
def tile_matrix_sets(base: BaseUrlDep) -> JSONResponse:
    return JSONResponse(
        {
            "tileMatrixSets": [
                {
                    "id": TMS_ID,
                    "title": "Web 墨卡托 (WebMercatorQuad)",
                    "uri": TMS_URI,
                    "links": [
                        {
                            "href": f"{base}/tileMatrixSets/{TMS_ID}",
                            "rel": "self",
                            "type": "application/json",
                        }
                    ],
                }
            ]
        }
    )


@router.get(
    "/tileMatrixSets/{tms}",
    summary="瓦片矩阵集定义 (tile matrix set definition)",
    responses={404: {"description": "未知矩阵集 (unknown tile matrix set)"}},
)
def tile_matrix_set_document(tms: str) -> JSONResponse:
    _tms(tms)
    return JSONResponse(tile_matrix_set())


__all__ = ["MAX_ZOOM", "router"]
