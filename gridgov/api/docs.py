"""Interactive API docs served from vendored Swagger UI: no CDN, so they work offline."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

STATIC_PREFIX = "/static/swagger-ui"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    response = get_swagger_ui_html(
        openapi_url=str(request.app.openapi_url),
        title="gridgov 接口文档 (API docs)",
        swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_PREFIX}/favicon-32x32.png",
    )
    # The stock page says lang="en"; our users read Chinese.
    body = bytes(response.body).replace(b"<html>", b'<html lang="zh-CN">', 1)
    return HTMLResponse(body.decode("utf-8"))
