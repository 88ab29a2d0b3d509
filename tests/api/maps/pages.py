"""Opening a gridgov page in Chromium with the internet cut off, and watching what breaks.

Every request to a host other than the test server is aborted and recorded; failed
requests, HTTP errors and console errors are recorded too, so that a test can assert that
a page is clean, offline, in one line.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, Route

from tests.live import LIVE_PASSWORD, LIVE_USER, add_session_cookie

# A 1×1 PNG (one violet pixel), served as every base-map tile in base-map tests, so that
# screenshots show where the base map is.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
VIEWPORT = {"width": 1400, "height": 900}
BASEMAP_PREFIX = "/test-basemap/"


@dataclass
class Watched:
    """A page and everything that went wrong while it was used."""

    page: Page
    origin: str
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """Nothing left the machine, nothing failed, nothing was logged as an error."""
        assert self.blocked == [], self.blocked
        assert self.failed == [], self.failed
        assert self.http_errors == [], self.http_errors
        assert self.console_errors == [], self.console_errors
        shown = self.page.evaluate("window.GridGov ? GridGov.errors : []")
        assert shown == [], shown

    def requested(self, path: str) -> list[dict[str, list[str]]]:
        """Query parameters of every request made so far to ``path``."""
        found = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.path == path:
                found.append(parse_qs(parts.query))
        return found

    def wait(self, expression: str, timeout: float = 20_000) -> None:
        self.page.wait_for_function(expression, timeout=timeout)

    def idle(self) -> None:
        """Wait until no gridgov request is pending and the network is quiet."""
        self.page.wait_for_load_state("networkidle")
        self.wait("window.GridGov && GridGov.idle()")

    def screenshot(self, artifacts: Path, name: str) -> None:
        """Save a screenshot once Leaflet's tile fade-in (200 ms) is over."""
        self.page.wait_for_timeout(400)
        self.page.screenshot(path=str(artifacts / name))


def open_page(browser: Browser, base_url: str, path: str, token: str | None = None) -> Watched:
    """Open ``path`` logged in: with ``token`` as the session cookie, else through the
    login page as ``LIVE_USER``."""
    context = browser.new_context(locale="zh-CN", viewport=VIEWPORT)  # type: ignore[arg-type]
    if token is not None:
        add_session_cookie(context, base_url, token)
    page = context.new_page()
    origin = urlsplit(base_url).netloc
    watched = Watched(page=page, origin=origin)

    def route(route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == origin:
            route.continue_()
        else:
            watched.blocked.append(url)
            route.abort()

    def on_response(response: Response) -> None:
        if response.status >= 400:
            watched.http_errors.append(f"{response.status} {response.url}")

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.console_errors.append(message.text)

    def on_failed(request: Request) -> None:
        # Leaflet cancels base-map images that leave the view while the map zooms: that
        # is by design, not a failure (only the test base map of this package is excused).
        cancelled = "ERR_ABORTED" in str(request.failure)
        if cancelled and urlsplit(request.url).path.startswith(BASEMAP_PREFIX):
            return
        watched.failed.append(f"{request.url} {request.failure}")

    context.route("**/*", route)
    page.on("request", lambda request: watched.requests.append(request.url))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.console_errors.append(str(error)))
    page.goto(base_url + path, wait_until="load")
    if urlsplit(page.url).path == "/login":  # the pages send a browser without a session here
        page.fill("#username", LIVE_USER)
        page.fill("#password", LIVE_PASSWORD)
        with page.expect_navigation(wait_until="load"):
            page.click("button[type=submit]")
        assert urlsplit(page.url).path == path.split("?")[0], page.url
    return watched
