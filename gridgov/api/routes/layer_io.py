"""``/layers/{layer}/import`` and ``/layers/{layer}/export``: the CLI's code paths over HTTP.

Uploads are parsed while streaming and refused with 413 as soon as they pass
``max_upload_bytes`` (``gridgov.api.limits`` counts the bytes); the file is spooled to a
temporary directory, never held whole in memory. An import that refuses rows answers 422
with every problem in ``errors``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import Connection
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from gridgov.api.auth import PrincipalDep
from gridgov.api.deps import ConnectionDep, RegistryDep, SettingsDep
from gridgov.api.errors import problem
from gridgov.errors import InvalidInputError, PermissionDeniedError
from gridgov.layers import audit
from gridgov.layers.incident_import import import_incidents
from gridgov.layers.io.errors import ImportRefusedError
from gridgov.layers.io.exporter import ExportOptions, export_layer
from gridgov.layers.io.formats import IMPORT_SUFFIXES, Format, export_format
from gridgov.layers.io.importer import ImportOptions, import_file
from gridgov.layers.registry import Registry
from gridgov.layers.scope import as_owner
from gridgov.settings import Settings

router = APIRouter(tags=["layers 图层导入导出"])

# What `gridgov layer import` reads, but a shapefile travels as one .zip of its parts.
UPLOAD_SUFFIXES = (*(s for s in IMPORT_SUFFIXES if s != ".shp"), ".zip")
_TRUE = {"1", "true", "yes", "on"}


def _flag(value: str | None) -> bool:
    return (value or "").lower() in _TRUE


_IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "GeoJSON, GeoPackage, CSV (.csv, .txt), Excel "
                            "(.xlsx, .xls), or a shapefile as .zip",
                        },
                        "crs": {
                            "type": "string",
                            "description": "wgs84 / cgcs2000 / gcj02 / bd09 / EPSG:n",
                        },
                        "encoding": {"type": "string", "description": "utf-8 / gbk / gb18030"},
                        "map": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "SRC=DEST, repeatable",
                        },
                        "sheet": {
                            "type": "string",
                            "description": "Excel sheet or GeoPackage layer, by name or "
                            "number from 1 (default: the one named after the layer, else "
                            "the first); the report names the sheet read and the others",
                        },
                        "mode": {"type": "string", "enum": ["append", "replace"]},
                        "skip_invalid": {"type": "boolean"},
                        "dry_run": {
                            "type": "boolean",
                            "description": "试导入: the whole import, then rolled back; the "
                            "report says what it would write (dry_run: true)",
                        },
                    },
                }
            }
        },
    }
}


# The path whose bodies may reach ``max_upload_bytes`` rather than ``max_body_bytes``.
IMPORT_PATH = r"/layers/[^/]+/import"


def _import_event(
    principal: PrincipalDep, layer: str, outcome: audit.Outcome, status: int, report: dict[str, Any]
) -> audit.AuditEvent:
    detail = {k: report.get(k) for k in ("rows_read", "rows_written", "rows_rejected")}
    if report.get("dry_run"):
        detail["dry_run"] = True
    return principal.event("import", outcome, target=layer, status=status, detail=detail)


def _import_incidents(
    conn: Connection,
    registry: Registry,
    path: Path,
    options: ImportOptions,
    settings: Settings,
    dry_run: bool,
) -> dict[str, Any]:
    """Incidents go through the incident import (``gridgov incidents import``): it
    assigns each row to its grid and units, reads a ledger's Chinese headers and leaves
    re-imported rows unchanged, where the layer import would store them unassigned.
    Never a first load's index rebuild: its exclusive locks would stop every map reader
    of a live server. The import alters the table, so it runs as the owner and checks
    the account's area itself."""
    scope = None if options.scope.unrestricted else options.scope
    with as_owner(conn), conn.begin_nested() as savepoint:
        report = import_incidents(
            conn,
            registry,
            path,
            options.crs,
            settings.assign_tolerance_m,
            encoding=options.encoding,
            mapping=options.mapping,
            skip_invalid=options.skip_invalid,
            sheet=options.sheet,
            dry_run=dry_run,
            may_rebuild=False,
            scope=scope,
        )
        if dry_run:
            savepoint.rollback()
    return report.as_dict()


@router.post(
    "/layers/{layer}/import",
    summary="导入图层数据 (import a file into a layer)",
    openapi_extra=_IMPORT_BODY,
    responses={
        404: {"description": "未知图层 (unknown layer)"},
        413: {"description": "上传文件过大 (upload too large)"},
        422: {"description": "数据有问题，未写入 (rows refused; nothing written)"},
    },
)
async def import_layer(
    layer: str,
    request: Request,
    principal: PrincipalDep,
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
) -> JSONResponse:
    """Every row is checked before anything is written. 事件 (``incident``) files go through
    the incident import: each row is assigned to its grid and units, Chinese ledger
    headers are read, rows already stored are left unchanged; ``mode=replace`` is refused."""
    spec = registry.get(layer)  # 404 before a byte of the body is read
    principal.require_edit(spec.id)  # 403 before a byte of the body is read
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInputError(
            "请以 multipart/form-data 上传文件（字段 file）",
            "upload the file as multipart/form-data (field `file`)",
        )
    try:
        form = await MultiPartParser(request.headers, request.stream()).parse()
    except MultiPartException as exc:
        raise InvalidInputError("上传内容格式错误", "malformed multipart body") from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInputError("缺少上传文件（字段 file）", "no file uploaded (field `file`)")
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise InvalidInputError(
            "不支持的文件类型：可上传 .geojson、.gpkg、.csv、.txt、.xlsx、.xls，"
            "Shapefile 请压缩为 .zip",
            "unsupported file type: upload .geojson, .gpkg, .csv, .txt, .xlsx, .xls or a "
            "zipped shapefile",
        )

    def text(name: str) -> str | None:
        value = form.get(name)
        return value.strip() or None if isinstance(value, str) else None

    mode = text("mode") or "append"
    options = ImportOptions(
        crs=text("crs"),
        encoding=text("encoding"),
        mapping=tuple(v for v in form.getlist("map") if isinstance(v, str) and v.strip()),
        mode="replace" if mode == "replace" else "append",
        skip_invalid=_flag(text("skip_invalid")),
        max_vertices=settings.max_geometry_vertices,
        scope=principal.scope,
        data_key=settings.require_data_key() if spec.personal_data else None,
        sheet=text("sheet"),
    )
    if mode not in ("append", "replace"):
        raise InvalidInputError("mode 须为 append 或 replace", "mode must be append or replace")
    if spec.id == "incident" and mode == "replace":
        raise InvalidInputError(
            "事件只能追加导入，不能整体替换", "incidents are appended; the layer is never replaced"
        )
    dry_run = _flag(text("dry_run"))
    with tempfile.TemporaryDirectory(prefix="gridgov-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with path.open("wb") as handle:
            await run_in_threadpool(shutil.copyfileobj, upload.file, handle)
        await form.close()

        def run() -> dict[str, Any]:
            if spec.id == "incident":
                result = _import_incidents(conn, registry, path, options, settings, dry_run)
            else:
                # A savepoint: a refused import leaves the request's transaction untouched.
                with conn.begin_nested() as savepoint:
                    result = import_file(conn, registry, spec.id, path, options).as_dict()
                    if dry_run:  # 试导入: the import's own report, nothing kept
                        savepoint.rollback()
            result["dry_run"] = dry_run
            audit.record(conn, _import_event(principal, spec.id, "ok", 200, result))
            return result

        try:
            body = await run_in_threadpool(run)
        except ImportRefusedError as exc:
            report = exc.report.as_dict()
            await run_in_threadpool(
                audit.record, conn, _import_event(principal, spec.id, "failed", 422, report)
            )
            return problem(
                422,
                f"{exc.title_zh} ({exc.title_en})",
                exc.detail,
                code=exc.code,
                instance=request.url.path,
                rows_read=report["rows_read"],
                rows_written=0,
                rows_rejected=report["rows_rejected"],
                problems_by_kind=report["problems_by_kind"],
                errors=report["problems"],
            )
    return JSONResponse(body)


@router.get(
    "/layers/{layer}/export",
    summary="导出图层 (export a layer as a file)",
    response_class=FileResponse,
    responses={
        200: {
            "description": "导出的文件 (the exported file, as an attachment)",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in (*(f.media_type for f in Format), "text/csv")
            },
        },
        404: {"description": "未知图层 (unknown layer)"},
    },
)
def export_layer_file(
    layer: str,
    principal: PrincipalDep,
    conn: ConnectionDep,
    registry: RegistryDep,
    settings: SettingsDep,
    format: Annotated[str, Query(description="geojson, gpkg, shp (zip) or csv")] = "geojson",
    crs: Annotated[str, Query(description="cgcs2000, wgs84, gcj02, bd09, EPSG:n")] = "cgcs2000",
    encoding: Annotated[str, Query(description="utf-8 or gbk (shp, csv)")] = "utf-8",
    where_code: Annotated[str | None, Query(description="admin code prefix")] = None,
    include_personal: Annotated[bool, Query(description="personal data unmasked")] = False,
    all_versions: Annotated[bool, Query(description="every version of versioned layers")] = False,
) -> FileResponse:
    spec = registry.get(layer)
    principal.require_read(spec.id)
    if include_personal and spec.personal_data and not principal.personal_data:
        raise PermissionDeniedError(
            "无个人信息查看授权，不能导出未脱敏数据",
            "exporting personal data unmasked needs the personal_data grant",
        )
    unmasked = include_personal and spec.personal_data
    fmt = export_format(format, None)
    options = ExportOptions(
        format=fmt,
        crs=crs,
        encoding=encoding,
        code_prefix=where_code,
        include_personal=unmasked,
        all_versions=all_versions,
        scope=principal.scope,
        data_key=settings.require_data_key() if unmasked else None,
    )
    tmp = tempfile.mkdtemp(prefix="gridgov-export-")
    filename = f"{spec.id}{fmt.download_suffix}"
    path = Path(tmp) / filename
    try:
        written = export_layer(conn, registry, spec.id, path, options)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    action = "export_personal" if unmasked else "export"
    detail = {"format": fmt.value, "rows": written, "where_code": where_code}
    audit.record(conn, principal.event(action, "ok", target=spec.id, status=200, detail=detail))
    return FileResponse(
        path,
        media_type=fmt.media_type
        if fmt is not Format.CSV
        else "text/csv; charset=" + ("utf-8" if encoding.lower() in ("utf-8", "utf8") else "gbk"),
        filename=filename,
        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True),
    )
