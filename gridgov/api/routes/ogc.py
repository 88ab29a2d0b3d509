"""OGC API – Features (Parts 1, 2 and the queryables of Part 3) for every registered layer.

Nothing here is per layer: collections, filters and queryables all come from the specs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from gridgov.api.auth import PrincipalDep
from gridgov.api.deps import ConnectionDep, RegistryDep, SettingsDep
from gridgov.api.map_deps import BaseUrlDep, MetadataDep
from gridgov.api.query import bad, parse_bool, parse_datetime, parse_int, reject_unknown
from gridgov.errors import InvalidParameterError, NotFoundError, OutOfScopeError
from gridgov.gis.ogc_crs import (
    CRS84,
    OgcCrs,
    check_bbox_area,
    parse_bbox,
    parse_crs,
    storage_crs,
    supported,
)
from gridgov.layers import audit
from gridgov.layers.features import (
    FeatureQuery,
    Filter,
    feature_exists,
    filters_for,
    has_time,
    layer_extent,
    select_feature,
    select_features,
    temporal_column,
)
from gridgov.layers.spec import ColumnType, GeometryKind, LayerSpec

router = APIRouter(tags=["OGC API – Features 要素服务"])
public_router = APIRouter(tags=["OGC API – Features 要素服务"])

GEOJSON = "application/geo+json"
JSON = "application/json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
]
ITEMS_PARAMETERS = ("bbox", "bbox-crs", "crs", "datetime", "limit", "offset", "f")
DEFAULT_LIMIT = 100
FORMATS = ("json", "geojson")

CrsParam = Annotated[
    str | None,
    Query(
        description="输出坐标系 (output CRS): OGC URI of CRS84 (default, lon/lat), "
        "EPSG:4326 / EPSG:4490 (lat/lon axis order) or EPSG:4549 (northing/easting).",
        examples=["http://www.opengis.net/def/crs/EPSG/0/4490"],
    ),
]
FormatParam = Annotated[
    str | None, Query(alias="f", description="json / geojson (the only encodings offered)")
]


def _check_format(value: str | None) -> None:
    if value is not None and value.lower() not in FORMATS:
        raise bad("f", "只支持 json / geojson", "only json / geojson are offered")


def _crs_response(body: dict[str, Any], crs: OgcCrs, media_type: str = GEOJSON) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(content, media_type=media_type, headers={"Content-Crs": f"<{crs.uri}>"})


@public_router.get("/", summary="服务首页 (OGC API landing page)")
def landing(base: BaseUrlDep) -> JSONResponse:
    """Links to everything: API definition, docs, conformance, collections, tiles."""
    links = [
        (base + "/", "self", JSON, "本页 (this document)"),
        (
            base + "/openapi.json",
            "service-desc",
            "application/vnd.oai.openapi+json;version=3.0",
            "接口定义 (OpenAPI definition)",
        ),
        (base + "/docs", "service-doc", "text/html", "接口文档 (interactive API docs)"),
        (base + "/conformance", "conformance", JSON, "符合的标准 (conformance classes)"),
        (base + "/collections", "data", JSON, "图层 (collections)"),
        (
            base + "/tileMatrixSets",
            "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
            JSON,
            "瓦片矩阵集 (tile matrix sets)",
        ),
        (base + "/health", "status", JSON, "服务状态 (health)"),
    ]
    return JSONResponse(
        {
            "title": "gridgov 网格化服务管理",
            "description": "网格化服务管理 GIS 服务的标准接口：OGC API – Features、"
            "矢量瓦片与热力聚合。 (Standard APIs of the gridgov grid-management GIS service.)",
            "links": [
                {"href": href, "rel": rel, "type": kind, "title": title}
                for href, rel, kind, title in links
            ],
        }
    )


@public_router.get("/conformance", summary="符合的标准 (conformance classes)")
def conformance() -> JSONResponse:
    return JSONResponse({"conformsTo": CONFORMANCE})


def _collection(
    spec: LayerSpec, base: str, extent: tuple[float, float, float, float] | None
) -> dict[str, Any]:
    url = f"{base}/collections/{spec.id}"
    description = f"{spec.title_en}. {spec.description_zh}".strip()
    body: dict[str, Any] = {
        "id": spec.id,
        "title": spec.title_zh,
        "title_en": spec.title_en,
        "description": description,
        "itemType": "feature",
        "crs": [c.uri for c in supported()],
        "storageCrs": storage_crs().uri,
        "links": [
            {"href": url, "rel": "self", "type": JSON, "title": spec.title_zh},
            {"href": f"{url}/items", "rel": "items", "type": GEOJSON, "title": "要素 (items)"},
            {
                "href": f"{url}/queryables",
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                "type": "application/schema+json",
                "title": "可查询属性 (queryables)",
            },
            {
                "href": f"{url}/tiles/WebMercatorQuad",
                "rel": "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
                "type": JSON,
                "title": "矢量瓦片 TileJSON (vector tiles)",
            },
        ],
    }
    if extent is not None:
        body["extent"] = {"spatial": {"bbox": [list(extent)], "crs": CRS84}}
        if spec.versioned or temporal_column(spec):
            body["extent"]["temporal"] = {
                "interval": [[None, None]],
                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
            }
    return body


@router.get("/collections", summary="全部图层 (every collection)")
def collections(
    request: Request,
    principal: PrincipalDep,
    conn: ConnectionDep,
    registry: RegistryDep,
    metadata: MetadataDep,
    base: BaseUrlDep,
    f: FormatParam = None,
) -> JSONResponse:
    reject_unknown(request.query_params, ["f"])
    _check_format(f)
    return JSONResponse(
        {
            "links": [{"href": f"{base}/collections", "rel": "self", "type": JSON}],
            "crs": [c.uri for c in supported()],
            "collections": [
                _collection(spec, base, layer_extent(conn, spec, metadata, principal.scope))
                for spec in registry
                if principal.can_read(spec.id)
            ],
        }
    )


@router.get(
    "/collections/{layer}",
    summary="图层说明 (one collection)",
    responses={404: {"description": "未知图层 (unknown layer)"}},
)
def collection(
    layer: str,
    request: Request,
    principal: PrincipalDep,
    conn: ConnectionDep,
    registry: RegistryDep,
    metadata: MetadataDep,
    base: BaseUrlDep,
    f: FormatParam = None,
) -> JSONResponse:
    spec = registry.get(layer)
    principal.require_read(spec.id)
    reject_unknown(request.query_params, ["f"])
    _check_format(f)
    extent = layer_extent(conn, spec, metadata, principal.scope)
    return JSONResponse(_collection(spec, base, extent))


def _json_type(kind: ColumnType) -> dict[str, str]:
    return {
        ColumnType.TEXT: {"type": "string"},
        ColumnType.INTEGER: {"type": "integer"},
        ColumnType.BIGINT: {"type": "integer"},
        ColumnType.FLOAT: {"type": "number"},
        ColumnType.BOOLEAN: {"type": "boolean"},
        ColumnType.DATE: {"type": "string", "format": "date"},
        ColumnType.TIMESTAMP: {"type": "string", "format": "date-time"},
    }[kind]


@router.get(
    "/collections/{layer}/queryables",
    summary="可查询属性 (queryables, JSON Schema)",
    responses={404: {"description": "未知图层 (unknown layer)"}},
)
def queryables(
    layer: str, request: Request, principal: PrincipalDep, registry: RegistryDep, base: BaseUrlDep
) -> Response:
    """The attribute filters ``/items`` accepts, as a JSON Schema (OGC API – Features Part 3)."""
    spec = registry.get(layer)
    principal.require_read(spec.id)
    reject_unknown(request.query_params, ["f"])
    geometry = {
        GeometryKind.POINT: "geometry-point",
        GeometryKind.POLYGON: "geometry-polygon",
        GeometryKind.MULTIPOLYGON: "geometry-multipolygon",
        GeometryKind.POINT_OR_POLYGON: "geometry-any",
    }[spec.geometry]
    properties: dict[str, Any] = {
        "geometry": {
            "title": "几何 (geometry)",
            "format": geometry,
            "x-ogc-role": "primary-geometry",
        }
    }
    for item in filters_for(spec).values():
        schema: dict[str, Any] = {"title": item.title_zh, "description": item.title_en}
        if item.kind == "boolean":
            schema["type"] = "boolean"
        else:
            schema["type"] = "string"
        if item.choices:
            schema["enum"] = list(item.choices)
        if item.code_length:
            schema["pattern"] = f"^[0-9]{{1,{item.code_length}}}\\*?$"
        properties[item.name] = schema
    time_column = temporal_column(spec)
    if time_column:
        column = spec.column(time_column)
        properties[time_column] = {
            "title": column.title_zh,
            "description": f"{column.title_en} (filter with `datetime`)",
            **_json_type(column.type),
            "x-ogc-role": "primary-instant",
        }
    body = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/collections/{spec.id}/queryables",
        "type": "object",
        "title": spec.title_zh,
        "description": spec.title_en,
        "properties": properties,
        "additionalProperties": False,
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/schema+json")


def _filter_values(item: Filter, raw: str) -> tuple[str, list[str | bool] | str]:
    """``("equals", values)`` or ``("prefix", prefix)`` for one attribute filter."""
    value = raw.strip()
    if item.kind == "boolean":
        parsed = parse_bool(value, item.name)
        return "equals", [bool(parsed)]
    if item.kind == "choice":
        values = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [v for v in values if v not in item.choices]
        if not values or unknown:
            raise bad(
                item.name,
                "取值无效，可用：" + ", ".join(item.choices),
                "unknown value; use one of: " + ", ".join(item.choices),
            )
        return "equals", list(values)
    if item.kind == "code":
        prefix = value.endswith("*")
        stem = value[:-1] if prefix else value
        pattern_ok = stem.replace("-", "").replace("_", "").isalnum() and stem.isascii()
        if not stem or not pattern_ok or (item.code_length and not stem.isdigit()):
            raise bad(item.name, "代码格式无效", "is not a well-formed code")
        if item.code_length and len(stem) > item.code_length:
            raise bad(
                item.name,
                f"代码最长 {item.code_length} 位",
                f"codes have at most {item.code_length} digits",
            )
        if prefix or (item.code_length and len(stem) < item.code_length):
            return "prefix", stem
        return "equals", [stem]
    if not value:
        raise bad(item.name, "不能为空", "must not be empty")
    return "equals", [value]


def _page_link(base: str, layer: str, request: Request, offset: int, rel: str) -> dict[str, str]:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
    params.append(("offset", str(offset)))
    href = f"{base}/collections/{layer}/items?{urlencode(params)}"
    return {"href": href, "rel": rel, "type": GEOJSON}


@router.get(
    "/collections/{layer}/items",
    summary="查询要素 (features of a collection)",
    response_class=Response,
    responses={
        200: {"content": {GEOJSON: {}}, "description": "GeoJSON FeatureCollection"},
        400: {"description": "参数无效 (invalid parameter, e.g. limit over the maximum)"},
        404: {"description": "未知图层 (unknown layer)"},
    },
)
def items(
    layer: str,
    request: Request,
    principal: PrincipalDep,
    conn: ConnectionDep,
    registry: RegistryDep,
    metadata: MetadataDep,
    settings: SettingsDep,
    base: BaseUrlDep,
    bbox: Annotated[
        str | None,
        Query(
            description="范围 (bounding box) minx,miny,maxx,maxy in `bbox-crs` axis order",
            examples=["120.2,31.5,120.4,31.6"],
        ),
    ] = None,
    bbox_crs: Annotated[
        str | None,
        Query(alias="bbox-crs", description="bbox 的坐标系 (CRS of bbox; default CRS84)"),
    ] = None,
    crs: CrsParam = None,
    datetime_: Annotated[
        str | None,
        Query(
            alias="datetime",
            description="时间 (RFC 3339 instant or interval a/b, `..` open): reported_at of "
            "incidents; validity of grid versions (default: in force now).",
            examples=["2025-01-01T00:00:00Z/2025-02-01T00:00:00Z"],
        ),
    ] = None,
    limit: Annotated[
        str | None,
        Query(
            description="每页条数 (page size), default 100, at most `max_items_limit` "
            "(10,000): more is a 400"
        ),
    ] = None,
    offset: Annotated[str | None, Query(description="跳过条数 (features to skip)")] = None,
    f: FormatParam = None,
) -> Response:
    """Features with bbox, datetime, paging and attribute filters.

    Attribute filters (see `/collections/{layer}/queryables`): admin codes such as
    `district_code=320213` (a shorter code or a trailing `*` is a prefix), `code=3202*`, and
    the layer's coded columns (`category=dispute,public_order`, `status=…`, `level=…`,
    `risk_level=…`, `kind=…`). Unknown parameters are a 400.
    """
    spec = registry.get(layer)
    principal.require_read(spec.id)
    filters = filters_for(spec)
    reject_unknown(request.query_params, [*ITEMS_PARAMETERS, *filters])
    _check_format(f)
    out = parse_crs(crs, "crs")
    query_bbox_crs = parse_crs(bbox_crs, "bbox-crs")
    if bbox_crs is not None and bbox is None:
        raise bad("bbox-crs", "需同时给出 bbox", "needs bbox")
    time = parse_datetime(datetime_)
    if time is not None and not has_time(spec):
        raise InvalidParameterError(
            f"图层 {spec.id} 没有时间属性，不支持 datetime",
            f"collection {spec.id} has no temporal property to filter with datetime",
            public={"parameter": "datetime"},
        )
    equals: dict[str, list[str | bool]] = {}
    prefixes: dict[str, str] = {}
    for name, item in filters.items():
        raw = request.query_params.get(name)
        if raw is None:
            continue
        how, values = _filter_values(item, raw)
        if how == "prefix":
            assert isinstance(values, str)
            prefixes[item.column] = values
        else:
            assert isinstance(values, list)
            equals[item.column] = values
    query = FeatureQuery(
        out=out,
        limit=parse_int(limit, "limit", DEFAULT_LIMIT, 1, settings.max_items_limit),
        offset=parse_int(offset, "offset", 0, 0, 10**12),
        bbox=check_bbox_area(
            parse_bbox(bbox, query_bbox_crs), query_bbox_crs, settings.max_bbox_area_km2
        )
        if bbox is not None
        else None,
        bbox_crs=query_bbox_crs,
        time=time,
        equals=equals,
        prefixes=prefixes,
        scope=principal.scope,
        unmasked=principal.personal_data,
        data_key=settings.require_data_key() if principal.personal_data else None,
    )
    features, matched = select_features(conn, spec, metadata, query)
    _audit_unmasked(conn, principal, spec, [f["id"] for f in features])
    links = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON},
        {"href": f"{base}/collections/{spec.id}", "rel": "collection", "type": JSON},
    ]
    if query.offset + len(features) < matched:
        links.append(_page_link(base, spec.id, request, query.offset + query.limit, "next"))
    if query.offset > 0:
        links.append(_page_link(base, spec.id, request, max(query.offset - query.limit, 0), "prev"))
    body = {
        "type": "FeatureCollection",
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "numberMatched": matched,
        "numberReturned": len(features),
        "features": features,
        "links": links,
    }
    return _crs_response(body, out)


@router.get(
    "/collections/{layer}/items/{feature_id}",
    summary="单个要素 (one feature)",
    response_class=Response,
    responses={
        200: {"content": {GEOJSON: {}}, "description": "GeoJSON Feature"},
        404: {"description": "未知图层或要素 (unknown layer or feature)"},
    },
)
def item(
    layer: str,
    feature_id: str,
    request: Request,
    principal: PrincipalDep,
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    metadata: MetadataDep,
    base: BaseUrlDep,
    crs: CrsParam = None,
    f: FormatParam = None,
) -> Response:
    spec = registry.get(layer)
    principal.require_read(spec.id)
    reject_unknown(request.query_params, ["crs", "f"])
    _check_format(f)
    out = parse_crs(crs, "crs")
    feature = None
    if feature_id.isdigit() and len(feature_id) < 19:
        key = settings.require_data_key() if principal.personal_data else None
        feature = select_feature(conn, spec, metadata, int(feature_id), out, principal.scope, key)
    if feature is None:
        # Outside the caller's area it is answered exactly like a missing feature.
        missing = (NotFoundError, OutOfScopeError)[
            feature_id.isdigit()
            and len(feature_id) < 19
            and feature_exists(conn, spec, metadata, int(feature_id))
        ]
        raise missing(f"图层 {spec.id} 中没有这个要素", f"collection {spec.id} has no such feature")
    _audit_unmasked(conn, principal, spec, [feature["id"]])
    feature["links"] = [
        {
            "href": f"{base}/collections/{spec.id}/items/{feature_id}",
            "rel": "self",
            "type": GEOJSON,
        },
        {"href": f"{base}/collections/{spec.id}", "rel": "collection", "type": JSON},
    ]
    return _crs_response(feature, out)


def _audit_unmasked(
    conn: ConnectionDep, principal: PrincipalDep, spec: LayerSpec, ids: list[Any]
) -> None:
    """Every read of personal data in clear is audited, with the rows it showed."""
    if principal.personal_data and spec.personal_data and ids:
        audit.record(
            conn,
            principal.event(
                "read_personal", "ok", target=spec.id, detail={"ids": ids[:1000], "rows": len(ids)}
            ),
        )


__all__ = ["public_router", "router"]
