"""Nothing the map pages serve points outside gridgov: no CDN, no web font, no remote icon.

Every ``http(s)://`` URL in the pages' HTML and in the JS / CSS they load is listed; the
only ones allowed are identifiers that browsers never fetch (the SVG namespace) and
comments / licence headers in vendored files, each named below with its file. A new URL
anywhere fails the test, so a CDN link cannot slip in with an upgrade.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest

from gridgov.api.app import STATIC_DIR

URL = re.compile(r"https?://[^\s\"'<>()\\]+")
SVG_NS = "http://www.w3.org/2000/svg"
# file (relative to static/) → URLs it may contain, and why they are harmless.
ALLOWED: dict[str, set[str]] = {
    # The SVG namespace (an XML identifier) and the library's home page in its licence
    # header and default attribution prefix (gridgov replaces the prefix with plain text).
    "vendor/leaflet/leaflet.js": {SVG_NS, "https://leafletjs.com"},
    # Links to browser bug reports, in CSS comments.
    "vendor/leaflet/leaflet.css": {
        "https://bugs.chromium.org/p/chromium/issues/detail?id=600120",
        "https://bugzilla.mozilla.org/show_bug.cgi?id=888319",
    },
    # Project pages in the licence header comment.
    "vendor/leaflet.heat/leaflet-heat.js": {
        "https://github.com/mourner/simpleheat",
        "https://github.com/Leaflet/Leaflet.heat",
    },
    "gridgov/chart.js": {SVG_NS},
    # Geoman's bundled package.json (author, bug tracker, home page): metadata, never fetched.
    "vendor/leaflet-geoman/leaflet-geoman.min.js": {
        "http://geoman.io",
        "https://geoman.io",
        "https://github.com/geoman-io/leaflet-geoman/issues",
    },
    # Namespaces and the generator's comment inside the inline SVG icons (data: URIs).
    "vendor/leaflet-geoman/leaflet-geoman.css": {
        SVG_NS,
        "http://www.w3.org/1999/xlink",
        "http://www.bohemiancoding.com/sketch",
        "https://sketch.com",
    },
}
SERVED_SUFFIXES = {".js", ".css", ".html", ".svg"}
PAGES = ("/map", "/map/heatmap", "/map/docking", "/editor")


def map_static_files() -> list[Path]:
    """Every text asset of the map pages: vendored libraries and gridgov's own scripts."""
    roots = [STATIC_DIR / "vendor", STATIC_DIR / "gridgov"]
    return sorted(p for root in roots for p in root.rglob("*") if p.suffix in SERVED_SUFFIXES)


def test_static_files_reference_no_outside_url() -> None:
    files = map_static_files()
    assert any(p.name == "leaflet.js" for p in files)
    found: dict[str, set[str]] = {}
    for path in files:
        urls = set(URL.findall(path.read_text(encoding="utf-8")))
        if urls:
            found[path.relative_to(STATIC_DIR).as_posix()] = urls
    unexpected = {
        name: urls - ALLOWED.get(name, set())
        for name, urls in found.items()
        if urls - ALLOWED.get(name, set())
    }
    assert unexpected == {}


def test_vendored_packages_carry_source_and_licence() -> None:
    for package in (STATIC_DIR / "vendor").iterdir():
        assert (package / "SOURCE.md").is_file(), package.name
        assert (package / "LICENSE").is_file(), package.name
        assert "npm pack" in (package / "SOURCE.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_only_local_assets(live_url: str, live_auth: dict[str, str], path: str) -> None:
    response = httpx2.get(live_url + path, headers=live_auth)
    assert response.status_code == 200
    html = response.text
    assert URL.findall(html) == []
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for asset in assets:
        if asset == "data:,":  # the empty favicon: it stops a request for /favicon.ico
            continue
        parts = urlsplit(asset)
        assert not parts.scheme, asset
        assert not parts.netloc, asset
        assert asset.startswith(("/static/", "/map", "/editor")), asset
        if asset.startswith("/static/"):
            assert httpx2.get(live_url + asset).status_code == 200, asset
    # Everything a page loads is scanned above: it is all under static/vendor or gridgov.
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert all(s.startswith(("/static/vendor/", "/static/gridgov/")) for s in scripts), scripts
