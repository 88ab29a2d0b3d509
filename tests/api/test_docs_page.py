"""The API docs page renders in real Chromium with nothing loaded from outside the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser

from gridgov.api.app import create_app
from gridgov.settings import Settings
from tests.live import chromium, serve


@pytest.fixture(scope="module")
def base_url(settings: Settings, engine: object) -> Iterator[str]:
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_docs_render_offline_in_chromium(base_url: str, browser: Browser, artifacts: Path) -> None:
    page = browser.new_page(locale="zh-CN")
    requested: list[str] = []
    failed: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(f"{base_url}/docs", wait_until="networkidle")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    page.screenshot(path=str(artifacts / "docs.png"), full_page=True)

    assert page.title() == "gridgov 接口文档 (API docs)"
    assert "gridgov 网格化服务管理" in page.inner_text(".swagger-ui .info .title")
    assert page.locator(".opblock-summary-path", has_text="/health").count() == 1
    hosts = {urlsplit(url).netloc for url in requested if not url.startswith("data:")}
    assert hosts == {urlsplit(base_url).netloc}, hosts
    assert failed == []


def test_openapi_document_lists_health(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "gridgov 网格化服务管理"
    assert "503" in spec["paths"]["/health"]["get"]["responses"]


def test_landing_page_links_to_the_docs(client: TestClient) -> None:
    landing = client.get("/").json()
    hrefs = {link["href"].rsplit("/", 1)[-1] for link in landing["links"]}
    assert {"docs", "openapi.json", "conformance", "collections"} <= hrefs
