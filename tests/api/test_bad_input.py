"""Bad input over HTTP: body sizes, NaN anywhere, geometry faults, bbox caps, injection.

Every case is a 4xx problem+json naming the problem, and nothing is written.
"""

from __future__ import annotations

import json
import re
import select
import socket
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, MetaData, event, text

from gridgov.api.app import create_app
from gridgov.api.deps import get_connection, get_read_connection, get_read_connector
from gridgov.layers.registry import Registry
from gridgov.settings import Settings
from tests.factories import WUXI_LAT, WUXI_LON, insert_pyramid
from tests.io.conftest import CODES_COMMUNITY, count
from tests.live import serve
from tests.small_city import build_small_city

PROBLEM = "application/problem+json"
BODY_LIMIT = 2_000
UPLOAD_LIMIT = 20_000
INCIDENT = {"category": "dispute", "source": "hotline", "reported_at": "2025-03-01T09:30:00"}


def incidents(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM incident")).scalar_one())


@pytest.fixture
def small(
    settings: Settings, connection: Connection, auth_headers: dict[str, str]
) -> Iterator[TestClient]:
    """The app with tiny body limits, its requests inside the test's transaction (as an
    administrator)."""
    limited = settings.model_copy(
        update={
            "max_body_bytes": BODY_LIMIT,
            "max_upload_bytes": UPLOAD_LIMIT,
            "max_geometry_vertices": 200,
            "warm_up": False,
        }
    )
    app = create_app(limited)

    def shared() -> Iterator[Connection]:
        with connection.begin_nested():
            yield connection

    def shared_read() -> Iterator[Connection]:
        yield connection

    app.dependency_overrides[get_connection] = shared
    app.dependency_overrides[get_read_connection] = shared_read
    app.dependency_overrides[get_read_connector] = lambda: lambda: nullcontext(connection)
    with TestClient(app, headers=auth_headers) as client:
        yield client


def write_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path with ids filled in) of every operation that may take a body."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            if method in ("post", "put", "patch", "delete"):
                found.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return found


def test_every_write_route_is_listed(app: FastAPI) -> None:
    routes = write_routes(app)
    assert ("POST", "/incidents") in routes
    assert ("POST", "/incidents/1/transitions") in routes
    assert ("POST", "/layers/1/import") in routes


# ---------------------------------------------------------------- body size → 413


def test_declared_length_over_the_limit_is_413_on_every_write_route(
    small: TestClient, city: Connection
) -> None:
    before = incidents(city)
    for method, path in write_routes(small.app):  # type: ignore[arg-type]
        limit = UPLOAD_LIMIT if path.endswith("/import") else BODY_LIMIT
        response = small.request(
            method,
            path,
            content=b"{" + b" " * limit + b"}",
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413, (method, path, response.text)
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["limit_bytes"] == limit
        assert "字节" in body["detail"]
    assert incidents(city) == before


def _read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response: its headers and Content-Length bytes of body."""
    data = b""
    while True:
        head, found, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
        if found and length and len(body) >= int(length.group(1)):
            return data
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_chunked_body_is_cut_off_while_streaming(settings: Settings) -> None:
    """No Content-Length: a real server counts the bytes and answers 413 at the limit,
    while the client is still sending (checked after every chunk)."""
    app = create_app(settings.model_copy(update={"max_body_bytes": BODY_LIMIT}))
    with serve(app) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /incidents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            sent, answer = 0, b""
            for _ in range(200):  # up to 100 kB, 50 times the limit
                chunk = b"x" * 500
                try:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except OSError:
                    break  # the server closed the connection after answering
                sent += len(chunk)
                # Past the limit, give the server time to answer (a guard, not a timing
                # assertion): a server that reads on instead never answers before the end.
                wait = 10.0 if sent > BODY_LIMIT else 0.0
                readable, _, _ = select.select([sock], [], [], wait)
                if readable:
                    break
            sock.settimeout(10)
            answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"application/problem+json" in answer
    assert b'"limit_bytes":%d' % BODY_LIMIT in answer
    assert sent < 10 * BODY_LIMIT, sent


def test_imports_take_larger_bodies_than_other_routes(small: TestClient, pyramid: None) -> None:
    """A 5 kB GeoJSON is over the general limit but within the import limit: it is read."""
    features = [
        {
            "type": "Feature",
            "properties": {"code": f"{CODES_COMMUNITY}{k:03d}", "name": "网格"},
            "geometry": _square(WUXI_LON + 0.001, WUXI_LAT + 0.001),
        }
        for k in range(1, 30)
    ]
    body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    assert BODY_LIMIT < len(body) < UPLOAD_LIMIT
    response = small.post("/layers/grid/import", files={"file": ("g.geojson", body)})
    assert response.status_code == 200, response.text
    assert response.json()["rows_written"] == 29
    big = small.post("/layers/grid/import", files={"file": ("g.geojson", body * 5)})
    assert big.status_code == 413


# ---------------------------------------------------------------- NaN anywhere → 422


def json_routes(app: FastAPI) -> list[tuple[str, str]]:
    spec = app.openapi()
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                found.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return found


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_anywhere_in_any_json_body_is_422(
    client: TestClient, city: Connection, token: str
) -> None:
    routes = json_routes(client.app)  # type: ignore[arg-type]
    assert ("POST", "/incidents") in routes
    bodies = [
        f'{{"category": "dispute", "source": "hotline", "reported_at": "2025-03-01", '
        f'"geometry": {{"type": "Point", "coordinates": [120.305, {token}]}}}}',
        f'{{"to": "registered", "note": "x", "extra": [1, 2, {{"deep": {token}}}]}}',
        f'{{"description": {token}}}',
    ]
    for method, path in routes:
        for raw in bodies:
            response = client.request(
                method, path, content=raw, headers={"content-type": "application/json"}
            )
            assert response.status_code == 422, (path, raw, response.text)
            assert response.headers["content-type"] == PROBLEM
            assert token.lstrip("-") in response.json()["detail"], response.text
    assert incidents(city) == 0


def test_crs_member_in_a_body_is_422(client: TestClient, city: Connection) -> None:
    named = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4490"}}
    for body in (
        {**INCIDENT, "lon": 120.305, "lat": 31.575, "crs": named},
        {**INCIDENT, "geometry": {"type": "Point", "coordinates": [120.305, 31.575], "crs": named}},
    ):
        response = client.post("/incidents", json=body)
        assert response.status_code == 422, response.text
        assert "crs" in response.json()["detail"]
    assert incidents(city) == 0


def test_crs_member_is_refused_in_every_geojson_body(client: TestClient, city: Connection) -> None:
    """Grid edits and measures too: a ``crs`` member on a GeoJSON object (or any object
    valued ``crs``) is a 422 naming RFC 7946, Chinese first; the CRS is a query parameter."""
    named = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4549"}}
    polygon = {**_square(X, Y), "crs": named}
    line = {"type": "LineString", "coordinates": [[X, Y], [X + 0.001, Y]], "crs": "EPSG:4549"}
    reason = "调整 (crs test)"
    cases = [
        (
            "POST",
            "/grids",
            {"community_code": CODES_COMMUNITY, "geometry": polygon, "reason": reason},
        ),
        (
            "POST",
            "/grids",
            {
                "type": "Feature",
                "crs": named,
                "community_code": CODES_COMMUNITY,
                "geometry": _square(X, Y),
                "reason": reason,
            },
        ),
        ("POST", f"/grids/{CODES_COMMUNITY}001/split", {"line": line, "reason": reason}),
        ("PATCH", f"/grids/{CODES_COMMUNITY}001", {"geometry": polygon, "reason": reason}),
        ("POST", "/measures", {"type": "FeatureCollection", "crs": named, "features": []}),
    ]
    for method, path, body in cases:
        response = client.request(method, path, json=body)
        assert response.status_code == 422, (path, response.text)
        detail = response.json()["detail"]
        assert "crs" in detail
        assert "RFC 7946" in detail
        assert detail.index("坐标系") < detail.index("not accepted")  # Chinese first
    # The API's own string field named crs, beside the geometry, stays accepted.
    plain = {**INCIDENT, "lon": WUXI_LON, "lat": WUXI_LAT, "crs": "cgcs2000"}
    assert client.post("/incidents", json=plain).status_code == 201


# ---------------------------------------------------------------- geometry → 422


def _square(x: float, y: float, d: float = 0.001) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]],
    }


X, Y = WUXI_LON + 0.002, WUXI_LAT + 0.002
RING = [[X, Y], [X + 0.001, Y], [X + 0.001, Y + 0.001], [X, Y + 0.001], [X, Y]]
GEOMETRY_CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "self-intersection": (
        {
            "type": "Polygon",
            "coordinates": [
                [[X, Y], [X + 0.001, Y + 0.001], [X + 0.001, Y], [X, Y + 0.001], [X, Y]]
            ],
        },
        "Self-intersection",
        "[",
    ),
    "unclosed ring": ({"type": "Polygon", "coordinates": [RING[:-1]]}, "Ring not closed", "["),
    "too-short ring": (
        {"type": "Polygon", "coordinates": [[RING[0], RING[1], RING[0]]]},
        "Too few points",
        "[",
    ),
    "hole outside shell": (
        {
            "type": "Polygon",
            "coordinates": [RING, [[x + 0.003, y] for x, y in RING]],
        },
        "Hole lies outside shell",
        "[",
    ),
    "empty": ({"type": "Polygon", "coordinates": []}, "empty geometry", ""),
    "geometry collection": (
        {"type": "GeometryCollection", "geometries": [_square(X, Y)]},
        "GeometryCollection",
        "",
    ),
    "z": (
        {"type": "Polygon", "coordinates": [[[*p, 5.0] for p in RING]]},
        "Z coordinates",
        "",
    ),
    "wrong type": ({"type": "LineString", "coordinates": RING}, "geometry is LineString", ""),
    "too many vertices": (
        {
            "type": "Polygon",
            "coordinates": [
                [[X + 0.001 * (i / 300), Y + 0.0000001 * (i % 2)] for i in range(300)]
                + [[X + 0.001, Y + 0.001], [X, Y]]
            ],
        },
        "over the limit of 200",
        "",
    ),
}


@pytest.mark.parametrize("case", list(GEOMETRY_CASES))
def test_bad_geometry_is_422_with_reason_and_location(
    small: TestClient,
    connection: Connection,
    metadata: MetaData,
    pyramid: None,
    case: str,
) -> None:
    geometry, reason, location = GEOMETRY_CASES[case]
    features = [
        {
            "type": "Feature",
            "properties": {"code": f"{CODES_COMMUNITY}001", "name": "好网格"},
            "geometry": _square(WUXI_LON + 0.0005, WUXI_LAT + 0.0005),
        },
        {
            "type": "Feature",
            "properties": {"code": f"{CODES_COMMUNITY}002", "name": "坏网格"},
            "geometry": geometry,
        },
    ]
    body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    response = small.post("/layers/grid/import", files={"file": ("g.geojson", body)})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problems = response.json()["errors"]
    assert [p["row"] for p in problems] == [2], problems  # the bad feature, by number
    assert reason in json.dumps(problems, ensure_ascii=False)
    if location:
        text_of = json.dumps(problems[0], ensure_ascii=False)
        assert re.search(r"\[1\d\d\.\d+ 3\d\.\d+\]", text_of), text_of  # where: lon lat
    assert count(connection, metadata, "grid") == 0


def test_m_coordinates_are_refused(
    small: TestClient, connection: Connection, metadata: MetaData, pyramid: None
) -> None:
    """GeoJSON cannot carry M; WKT can: a POLYGON M is refused, never stripped."""
    wkt = "POLYGON M ((" + ", ".join(f"{x} {y} 7" for x, y in RING) + "))"
    body = f'code,name,wkt\n{CODES_COMMUNITY}001,M网格,"{wkt}"\n'.encode()
    response = small.post(
        "/layers/grid/import", files={"file": ("g.csv", body)}, data={"crs": "cgcs2000"}
    )
    assert response.status_code == 422, response.text
    problems = response.json()["errors"]
    assert [(p["row"], p["kind"]) for p in problems] == [(1, "geometry-zm")], problems
    assert "M coordinates" in response.text
    assert count(connection, metadata, "grid") == 0


@pytest.fixture
def pyramid(connection: Connection, metadata: MetaData, registry: Registry) -> None:
    insert_pyramid(connection, metadata, registry)


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    return build_small_city(connection, metadata, registry)


# ---------------------------------------------------------------- queries → 400 / 422


@pytest.mark.parametrize(
    ("url", "status", "parameter"),
    [
        ("/collections/incident/items?bbox=100,20,125,45", 400, "bbox"),  # over the cap
        ("/collections/incident/items?bbox=31.5,120.3,31.6,120.4", 400, "bbox"),  # swapped
        ("/collections/incident/items?bbox=120.3,31.5,120.4,Infinity", 400, "bbox"),
        ("/collections/incident/items?bbox=120.3,31.5,,31.6", 400, "bbox"),
        (
            "/collections/incident/items?bbox=3000000,100000,4000000,900000"
            "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4549",
            400,
            "bbox",
        ),
        ("/collections/incident/items?sortby=reported_at", 400, "sortby"),
        ("/collections/incident/items?landlord_name=张三", 400, "landlord_name"),
        ("/collections/incident/items?limit=100000", 400, "limit"),
    ],
)
def test_bad_queries(client: TestClient, url: str, status: int, parameter: str) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["parameter"] == parameter


def test_a_city_sized_bbox_is_within_the_cap(client: TestClient, city: Connection) -> None:
    response = client.get("/collections/incident/items", params={"bbox": "119.5,31.0,120.7,32.1"})
    assert response.status_code == 200, response.text


INJECTIONS = [
    "'; DROP TABLE incident; --",
    "320213' OR '1'='1",
    "1); DELETE FROM grid; --",
    "$$; DROP TABLE grid; $$",
]


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[tuple[str, str]]]:
    """Every statement sent to PostgreSQL during the test, with its bound parameters."""
    seen: list[tuple[str, str]] = []

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: Any) -> None:
        seen.append((statement, repr(parameters)))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_strings_are_refused_and_never_reach_sql(
    client: TestClient, city: Connection, statements: list[tuple[str, str]], evil: str
) -> None:
    urls = [
        ("/collections/incident/items", {"district_code": evil}),
        ("/collections/incident/items", {"category": evil}),
        ("/collections/incident/items", {"bbox": evil}),
        ("/collections/incident/items", {"datetime": evil}),
        ("/collections/incident/items", {"crs": evil}),
        ("/collections/incident/items", {"limit": evil}),
        ("/collections/incident/items", {"sortby": evil}),
        ("/collections/incident/items", {evil: "1"}),
        (f"/collections/{evil}/items", {}),
        ("/incidents", {"grid": evil}),
        ("/incidents", {"category": evil}),
        ("/aggregates/incidents/by/grid", {"category": evil}),
        ("/aggregates/incidents/by/grid", {"district_code": evil}),
        ("/aggregates/incidents/trend", {"interval": evil}),
        ("/docking/grids", {"unit_layer": evil}),
        ("/tiles/WebMercatorQuad/12/3428/1673", {"collections": evil}),
    ]
    for url, params in urls:
        response = client.get(url, params=params)
        assert 400 <= response.status_code < 500, (url, params, response.status_code)
        assert response.headers["content-type"] == PROBLEM
        echoed = {k: v for k, v in response.json().items() if k != "instance"}
        assert evil not in json.dumps(echoed, ensure_ascii=False)  # never echoed back
    for statement, parameters in statements:
        assert evil not in statement
        assert evil not in parameters
    # Every table is still there, with its rows.
    assert incidents(city) == 0
    assert city.execute(text("SELECT count(*) FROM grid")).scalar_one() > 0


def test_hostile_text_in_an_accepted_field_is_bound_not_spliced(
    client: TestClient, city: Connection, statements: list[tuple[str, str]]
) -> None:
    evil = INJECTIONS[0]
    response = client.post(
        "/incidents", json={**INCIDENT, "lon": 120.305, "lat": 31.575, "description": evil}
    )
    assert response.status_code == 201, response.text
    assert response.json()["properties"]["description"] == evil
    assert any(evil in parameters for _, parameters in statements)  # sent as a value
    assert not any(evil in statement for statement, _ in statements)  # never as SQL
    assert incidents(city) == 1


def test_nul_in_a_query_is_400_before_any_sql(client: TestClient) -> None:
    """PostgreSQL text cannot hold NUL: refused at the gate, named, never a 500."""
    for path in ("/incidents?police_station=a%00b", "/collections/grid/items?name=%00"):
        response = client.get(path)
        assert response.status_code == 400, (path, response.text)
        assert "NUL" in response.json()["detail"]


def test_nul_in_a_body_is_422_and_writes_nothing(
    city: Connection, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A NUL inside a JSON string reaches the database layer, which cannot store it: 422
    naming the character, the request's transaction rolled back (found by fuzzing login);
    the client's mistake leaves no traceback at ERROR level in the log."""
    login = client.post("/auth/login", json={"username": "a\u0000b", "password": "x"})
    assert login.status_code == 422, login.text
    assert "NUL" in login.json()["detail"]
    report = client.post(
        "/incidents", json={**INCIDENT, "lon": 120.305, "lat": 31.575, "description": "a\u0000b"}
    )
    assert report.status_code == 422, report.text
    assert "NUL" in report.json()["detail"]
    assert incidents(city) == 0
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_a_report_time_in_the_future_is_422_and_writes_nothing(
    city: Connection, client: TestClient
) -> None:
    """A mistyped year, or a Beijing time labelled UTC, would be filed under a grid
    version not yet in force: more than an hour ahead of the clock is refused."""
    ahead = datetime.now(UTC) + timedelta(hours=2)
    point = {"lon": 120.305, "lat": 31.575}
    late = client.post("/incidents", json={**INCIDENT, **point, "reported_at": ahead.isoformat()})
    assert late.status_code == 422, late.text
    assert late.json()["type"].endswith("reported-in-future")
    assert "上报时间晚于当前时间" in late.json()["detail"]
    assert incidents(city) == 0
    soon = datetime.now(UTC) + timedelta(minutes=30)  # a device clock a little fast
    fine = client.post("/incidents", json={**INCIDENT, **point, "reported_at": soon.isoformat()})
    assert fine.status_code == 201, fine.text


@pytest.mark.parametrize(
    ("request_args", "chinese"),
    [
        ({"method": "GET", "url": "/incidents?limit=0"}, "须大于或等于 1"),
        ({"method": "GET", "url": "/incidents?category=x"}, "取值无效，可用："),
        ({"method": "GET", "url": "/incidents?from=yesterday"}, "不是有效的时间"),
        ({"method": "POST", "url": "/incidents", "json": {"lon": 120.3}}, "缺少必填字段"),
        (
            {"method": "POST", "url": "/incidents", "json": {**INCIDENT, "lon": "东", "lat": 1}},
            "须为数字",
        ),
        (
            {"method": "POST", "url": "/incidents", "json": {**INCIDENT, "colour": "red"}},
            "不允许的字段",
        ),
        (
            {
                "method": "POST",
                "url": "/incidents",
                "content": b"\xff\xfe{",
                "headers": {"content-type": "application/json"},
            },
            "请求体无法解析",
        ),
    ],
)
def test_validation_errors_are_told_in_chinese_first(
    client: TestClient, request_args: dict[str, Any], chinese: str
) -> None:
    """Users read Chinese: pydantic's English reasons follow the Chinese, in brackets."""
    response = client.request(**request_args)
    assert 400 <= response.status_code < 500, response.text
    assert chinese in response.json()["detail"], response.text


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (
            '{"lon": 500, "lat": 31.575, "lon": 120.305, "category": "dispute", '
            '"source": "hotline", "reported_at": "2025-03-01T09:30:00"}',
            "成员名 lon 在同一对象中重复",
        ),
        (
            '{"lon": true, "lat": 31.575, "category": "dispute", "source": "hotline", '
            '"reported_at": "2025-03-01T09:30:00"}',
            "须为数字",
        ),
        (
            '{"lon": "120.305", "lat": 31.575, "category": "dispute", "source": "hotline", '
            '"reported_at": "2025-03-01T09:30:00"}',
            "须为数字",
        ),
    ],
)
def test_ambiguous_or_mistyped_json_is_refused_not_guessed(
    client: TestClient, city: Connection, raw: str, named: str
) -> None:
    """Python's json kept the last of two "lon" members; pydantic's lax mode read `true`
    as 1.0 and "120.305" as a number: each was stored without a word."""
    response = client.post("/incidents", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert named in response.text
    assert incidents(city) == 0
