"""``/incidents`` over HTTP: report with any CRS, read, list, move, explain; bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, MetaData, text

from gridgov.gis.coords import wgs84_to_bd09, wgs84_to_gcj02
from gridgov.layers.registry import Registry
from tests.small_city import build_small_city

BODY = {"category": "dispute", "source": "hotline", "reported_at": "2025-03-01T09:30:00"}


@pytest.fixture
def city(connection: Connection, metadata: MetaData, registry: Registry) -> Connection:
    return build_small_city(connection, metadata, registry)


def count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM incident")).scalar_one())


@pytest.mark.usefixtures("city")
@pytest.mark.parametrize("crs", ["wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:4326"])
def test_report_in_any_crs_lands_on_the_same_spot(client: TestClient, crs: str) -> None:
    lon, lat = 120.305, 31.575
    x, y = lon, lat
    if crs == "gcj02":
        x, y = (float(v) for v in wgs84_to_gcj02(lon, lat))
    elif crs == "bd09":
        x, y = (float(v) for v in wgs84_to_bd09(lon, lat))
    response = client.post(
        "/incidents", json={**BODY, "lon": float(x), "lat": float(y), "crs": crs}
    )
    assert response.status_code == 201, response.text
    feature = response.json()
    stored = feature["geometry"]["coordinates"]
    assert stored == pytest.approx([lon, lat], abs=5e-7)  # ~5 cm
    props = feature["properties"]
    assert props["grid_code"] == "320213001001001"
    assert props["assign_method"] == "inside"
    assert props["policing_area_code"] == "JWQ-N"
    assert props["status"] == "reported"
    assert feature["assignment"]["explanation_zh"].startswith("位于网格")
    assert response.headers["location"] == f"/incidents/{feature['id']}"
    # Beijing time when no zone is given.
    assert props["reported_at"].startswith("2025-03-01T01:30:00")


@pytest.mark.usefixtures("city")
def test_geojson_point_and_read_back(client: TestClient) -> None:
    created = client.post(
        "/incidents",
        json={
            **BODY,
            "geometry": {"type": "Point", "coordinates": [120.315, 31.565]},
            "external_id": "HOT-1",
        },
    ).json()
    got = client.get(f"/incidents/{created['id']}").json()
    assert got["properties"]["grid_code"] == "320213001001002"
    assert got["properties"]["external_id"] == "HOT-1"
    again = client.post(
        "/incidents",
        json={
            **BODY,
            "geometry": {"type": "Point", "coordinates": [120.315, 31.565]},
            "external_id": "HOT-1",
        },
    )
    # The same report again (a client retrying after a lost answer): the stored incident.
    assert again.status_code == 200, again.text
    assert again.json()["id"] == created["id"]
    assert again.headers["location"] == f"/incidents/{created['id']}"


def history_rows(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM incident_transition")).scalar_one())


def test_a_repeated_report_is_stored_once_whatever_its_crs(
    client: TestClient, city: Connection
) -> None:
    x, y = (float(v) for v in wgs84_to_gcj02(120.305, 31.575))
    report = {**BODY, "lon": x, "lat": y, "crs": "gcj02", "external_id": "12345-0001"}
    first = client.post("/incidents", json={**report, "description": "噪音扰民"})
    assert first.status_code == 201, first.text
    stored, transitions = count(city), history_rows(city)
    again = client.post("/incidents", json={**report, "description": "噪音扰民"})
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert (count(city), history_rows(city)) == (stored, transitions)
    audit = city.execute(
        text(
            "SELECT detail->>'repeat' FROM audit_log WHERE action = 'incident_create' "
            "AND target = :t ORDER BY id"
        ),
        {"t": f"incident/{first.json()['id']}"},
    ).scalars()
    assert list(audit) == ["false", "true"]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("  噪音扰民\n", "噪音扰民"), ("   ", None), ("", None), ("楼 下", "楼 下")],
)
def test_a_description_is_read_as_the_import_reads_its_cell(
    client: TestClient, city: Connection, sent: str, stored: str | None
) -> None:
    """Surrounding whitespace is no part of it and a blank one is none, as the import
    stores a sheet's cell: so a report and its imported twin compare equal, and a resend
    with the text trimmed is the same report (200, not a 409)."""
    body = {**BODY, "lon": 120.305, "lat": 31.575, "external_id": "DESC-1", "description": sent}
    first = client.post("/incidents", json=body)
    assert first.status_code == 201, first.text
    assert first.json()["properties"]["description"] == stored
    column = city.execute(text("SELECT description FROM incident")).scalar_one()
    assert column == stored
    again = client.post("/incidents", json={**body, "description": stored})
    assert again.status_code == 200, again.text


@pytest.mark.parametrize(
    ("change", "named_zh", "named_en"),
    [
        ({"category": "public_order"}, "类别", "category"),
        ({"lon": 120.306}, "位置", "location"),
        ({"reported_at": "2025-03-01T09:31:00"}, "上报时间", "reported_at"),
        ({"description": "另一件事"}, "描述", "description"),
        ({"source": "police", "category": "public_order"}, "类别、来源", "category, source"),
    ],
)
def test_a_report_repeated_with_other_values_is_refused(
    client: TestClient, city: Connection, change: dict[str, object], named_zh: str, named_en: str
) -> None:
    report = {**BODY, "lon": 120.305, "lat": 31.575, "external_id": "12345-0002"}
    first = client.post("/incidents", json=report)
    assert first.status_code == 201, first.text
    before = city.execute(text("SELECT * FROM incident")).all()
    clash = client.post("/incidents", json={**report, **change})
    assert clash.status_code == 409, clash.text
    problem = clash.json()
    assert problem["existing_id"] == first.json()["id"]
    assert problem["differs"] == named_en
    assert (
        f"外部编号 12345-0002 已是事件 #{first.json()['id']}，其{named_zh}与本次上报不同"
        in (problem["detail"])
    )
    verb = "differ" if "," in named_en else "differs"
    assert f"whose {named_en} {verb} from this report's" in problem["detail"]
    assert city.execute(text("SELECT * FROM incident")).all() == before


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"lon": 31.575, "lat": 120.305}, "swapped"),
        ({"lon": 2.35, "lat": 48.85}, "outside_china"),
        ({"lon": 121.5, "lat": 31.2}, "outside-city"),
        ({"lon": 120.3, "lat": 31.5, "crs": "EPSG:999999"}, "unknown_crs"),
        ({"lon": 120.3}, "exactly one"),
        (
            {"lon": 120.3, "lat": 31.5, "geometry": {"type": "Point", "coordinates": [1, 2]}},
            "exactly one",
        ),
        (
            {"geometry": {"type": "Point", "coordinates": [120.3, 31.5], "crs": {"type": "name"}}},
            "RFC 7946",  # refused by the body parser, before the model's extra=forbid
        ),
        (
            {"geometry": {"type": "LineString", "coordinates": [[120.3, 31.5], [120.4, 31.5]]}},
            "Point",
        ),
        ({"lon": 120.3, "lat": 31.5, "category": "alien"}, "category"),
    ],
)
def test_bad_reports_are_refused_and_nothing_is_written(
    client: TestClient, city: Connection, body: dict[str, object], fragment: str
) -> None:
    before = count(city)
    response = client.post("/incidents", json={**BODY, **body})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.text
    assert count(city) == before


def test_nan_and_infinity_are_refused(client: TestClient, city: Connection) -> None:
    for token in ("NaN", "Infinity", "-Infinity"):
        raw = (
            '{"category": "dispute", "source": "hotline", "reported_at": "2025-03-01T09:30:00",'
            f' "lon": {token}, "lat": 31.5}}'
        )
        response = client.post(
            "/incidents", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, (token, response.text)
    assert count(city) == 0


@pytest.mark.usefixtures("city")
def test_lifecycle_moves_with_timestamps_and_refuses_skips(client: TestClient) -> None:
    created = client.post("/incidents", json={**BODY, "lon": 120.305, "lat": 31.575}).json()
    url = f"/incidents/{created['id']}/transitions"
    skipped = client.post(url, json={"to": "closed"})
    assert skipped.status_code == 409
    assert "registered" in skipped.json()["allowed"]
    # Stages as users name them, the API's words beside them.
    assert (
        "不能从“信息收集 (reported)”转到“核查结案 (closed)”，可转至：立案 (registered)"
        in (skipped.json()["detail"])
    )
    for stage in ("registered", "dispatched", "handling", "handled"):
        response = client.post(url, json={"to": stage, "at": "2025-03-01T12:00:00+08:00"})
        assert response.status_code == 200, response.text
    props = response.json()["properties"]
    assert props["status"] == "handled"
    assert props["dispatched_at"].startswith("2025-03-01T04:00:00")
    # Disputes are due 72 hours after dispatch.
    assert props["deadline_at"].startswith("2025-03-04T04:00:00")
    back = client.post(url, json={"to": "handling", "note": "核查不通过"})
    assert back.status_code == 200
    # Back in handling: the handled time is undone, never left before handling_at.
    assert back.json()["properties"]["handled_at"] is None
    assert back.json()["properties"]["handling_at"] > props["handled_at"]
    history = client.get(f"/incidents/{created['id']}/history").json()["items"]
    assert [h["to_status"] for h in history] == [
        "reported",
        "registered",
        "dispatched",
        "handling",
        "handled",
        "handling",
    ]
    assert history[-1]["note"] == "核查不通过"


@pytest.mark.usefixtures("city")
def test_a_step_dated_before_the_last_or_in_the_future_is_refused(client: TestClient) -> None:
    # Out of order, time to dispatch and overdue counts would come out negative.
    created = client.post("/incidents", json={**BODY, "lon": 120.305, "lat": 31.575}).json()
    url = f"/incidents/{created['id']}/transitions"
    before_report = client.post(url, json={"to": "registered", "at": "2025-02-28T09:00:00+08:00"})
    assert before_report.status_code == 422, before_report.text
    assert before_report.json()["type"].endswith("time-out-of-order")
    assert "早于上一步或上报的时间" in before_report.json()["detail"]
    ahead = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    future = client.post(url, json={"to": "registered", "at": ahead})
    assert future.status_code == 422, future.text
    assert future.json()["type"].endswith("time-in-future")
    assert client.post(url, json={"to": "registered", "at": "2025-03-02T09:00:00+08:00"}).is_success
    earlier = client.post(url, json={"to": "dispatched", "at": "2025-03-01T23:00:00+08:00"})
    assert earlier.status_code == 422, earlier.text
    history = client.get(f"/incidents/{created['id']}/history").json()["items"]
    assert [h["to_status"] for h in history] == ["reported", "registered"]


@pytest.mark.usefixtures("city")
def test_list_filters_and_pages(client: TestClient) -> None:
    for lon in (120.305, 120.306, 120.315):
        client.post("/incidents", json={**BODY, "lon": lon, "lat": 31.575})
    west = client.get("/incidents", params={"grid": "320213001001001", "limit": 1}).json()
    assert west["numberMatched"] == 2
    assert west["numberReturned"] == 1
    nxt = next(link["href"] for link in west["links"] if link["rel"] == "next")
    assert nxt == "/incidents?grid=320213001001001&limit=1&offset=1"  # relative: no Host
    second = client.get(nxt, headers={"host": "evil.example"}).json()
    assert second["numberReturned"] == 1
    assert second["features"][0]["id"] != west["features"][0]["id"]
    # Unicode digits are no code: refused, not a silent empty answer.
    assert (
        client.get("/incidents", params={"grid": "３２０２１３００１００１００１"}).status_code
        == 422
    )
    assert client.get("/incidents", params={"township": "320213001"}).json()["numberMatched"] == 3
    assert client.get("/incidents", params={"from": "2026-01-01"}).json()["numberMatched"] == 0
    assert client.get("/incidents", params={"colour": "red"}).status_code in (400, 422)
    assert (
        client.get("/incidents", params={"grid": "x'; DROP TABLE incident;--"}).status_code == 422
    )


@pytest.mark.usefixtures("city")
def test_list_by_department_unit_source_method_and_external_id(client: TestClient) -> None:
    """Article 62 docking: each department sees the incidents assigned to its own unit; a
    supervisor finds those placed by a fallback rule, or one hotline ticket by its number."""
    reports: list[dict[str, object]] = [
        {"lon": 120.305, "lat": 31.575, "external_id": "12345-001"},
        {"lon": 120.315, "lat": 31.565, "source": "police"},
        {"lon": 120.3205, "lat": 31.575},  # ~47 m east of the grids: nearest
        {"lon": 120.33, "lat": 31.575},  # in the township, far from any grid: fallback
    ]
    for report in reports:
        assert client.post("/incidents", json={**BODY, **report}).status_code == 201

    def matched(**params: str) -> int:
        response = client.get("/incidents", params=params)
        assert response.status_code == 200, response.text
        return int(response.json()["numberMatched"])

    assert matched(urban_unit="CG1") == 4
    assert matched(urban_unit="CG2") == 0
    assert matched(emergency_unit="YJ1") == 4
    assert matched(emergency_unit="CG1") == 0
    assert matched(source="police") == 1
    assert matched(source="hotline") == 3
    assert matched(method="nearest") == 1
    assert matched(method="fallback") == 1
    assert matched(method="inside") == 2
    assert matched(method="inside", source="police") == 1
    found = client.get("/incidents", params={"external_id": "12345-001"}).json()
    assert [f["properties"]["external_id"] for f in found["features"]] == ["12345-001"]
    assert matched(external_id="12345-00") == 0  # whole ticket numbers only
    for params, named in (
        ({"method": "guess"}, "method"),
        ({"source": "radio"}, "source"),
        ({"from": "2025-03-02", "to": "2025-03-01"}, "from"),
        ({"from": "2025-03-01", "to": "2025-03-01"}, "from"),
        ({"grid": ["320213001001001", "320213001001002"]}, "grid"),
    ):
        refused = client.get("/incidents", params=params)
        assert refused.status_code in (400, 422), (params, refused.text)
        assert named in refused.text, refused.text


@pytest.mark.usefixtures("city")
def test_a_step_after_one_stamped_by_a_clock_ahead_is_not_blocked(client: TestClient) -> None:
    """A client clock up to an hour ahead may stamp a step; the next step, given no time,
    is stamped now or at that step's time if later, never refused as out of order."""
    created = client.post("/incidents", json={**BODY, "lon": 120.305, "lat": 31.575}).json()
    url = f"/incidents/{created['id']}/transitions"
    ahead = datetime.now(UTC) + timedelta(minutes=50)
    assert client.post(url, json={"to": "registered", "at": ahead.isoformat()}).is_success
    response = client.post(url, json={"to": "dispatched"})
    assert response.status_code == 200, response.text
    stamped = datetime.fromisoformat(response.json()["properties"]["dispatched_at"])
    assert stamped >= ahead


@pytest.mark.usefixtures("city")
@pytest.mark.parametrize(
    ("reported_at", "fragment"),
    [
        ("0001-01-01T00:00:00", "超出可表示的范围"),  # was a 500 from PostgreSQL
        ("0001-01-01T00:00:00+14:00", "超出可表示的范围"),
        ("0002-01-01T00:00:00", "reported-too-early"),
        ("1900-01-01T00:00:00+08:00", "reported-too-early"),
        ("0025-05-01T09:00:00", "reported-too-early"),  # 2025 mistyped
        ("2025-03-01T09:00:00+20:00", "-12:00 到 +14:00"),
        ("2025-03-01T09:00:00-23:59", "-12:00 到 +14:00"),
    ],
)
def test_report_times_no_clock_could_give_are_refused(
    client: TestClient, city: Connection, reported_at: str, fragment: str
) -> None:
    response = client.post(
        "/incidents", json={**BODY, "lon": 120.305, "lat": 31.575, "reported_at": reported_at}
    )
    assert response.status_code == 422, response.text
    assert fragment in response.text
    assert count(city) == 0


@pytest.mark.usefixtures("city")
def test_list_and_step_times_no_clock_could_give_are_refused(client: TestClient) -> None:
    for value in ("0001-01-01T00:00:00+14:00", "2025-03-01T00:00:00+20:00"):
        response = client.get("/incidents", params={"from": value})
        assert response.status_code == 422, response.text
    created = client.post("/incidents", json={**BODY, "lon": 120.305, "lat": 31.575}).json()
    url = f"/incidents/{created['id']}/transitions"
    step = client.post(url, json={"to": "registered", "at": "2025-03-02T09:00:00+15:00"})
    assert step.status_code == 422, step.text


@pytest.mark.usefixtures("city")
@pytest.mark.parametrize(
    "number",
    [173566080, 17356608000, 1735660800.5, 0, -1735660800, "173566080", "17356608000"],
    ids=["digit-dropped", "digit-added", "fraction", "zero", "negative", "9-digits", "11-digits"],
)
def test_a_time_as_a_number_follows_the_importers_rule(
    client: TestClient, city: Connection, number: object
) -> None:
    """pydantic read any number as seconds or milliseconds by its size: 173566080 (a
    digit dropped) was stored as 1975. Now, as in the importers, only 10 digits
    (seconds) or 13 (milliseconds), a date of 8 digits, or a date and time of 12 or 14."""
    response = client.post(
        "/incidents", json={**BODY, "lon": 120.305, "lat": 31.575, "reported_at": number}
    )
    assert response.status_code == 422, response.text
    assert "须为 10 位（秒）或 13 位（毫秒）" in response.text
    assert count(city) == 0


@pytest.mark.usefixtures("city")
def test_epoch_seconds_milliseconds_and_digit_dates_mean_what_the_importers_read(
    client: TestClient,
) -> None:
    seconds = int(datetime(2025, 3, 1, 1, 30, tzinfo=UTC).timestamp())  # 09:30 Beijing
    stored = set()
    compact = (20250301093000, "20250301093000", "202503010930")  # GA/T 年月日时分秒
    # As hotline systems and spreadsheets write them (values.LOOSE_TIME), as imported.
    loose = ("2025/03/01 09:30:00", "2025/3/1 9:30", "2025年3月1日 9时30分", "2025/3/1 上午9:30")
    posted = (seconds, seconds * 1000, str(seconds), "2025-03-01T09:30:00", *compact, *loose)
    for value in posted:
        response = client.post(
            "/incidents", json={**BODY, "lon": 120.305, "lat": 31.575, "reported_at": value}
        )
        assert response.status_code == 201, response.text
        stored.add(datetime.fromisoformat(response.json()["properties"]["reported_at"]))
    assert stored == {datetime(2025, 3, 1, 1, 30, tzinfo=UTC)}
    # A date of 8 digits in a filter is that day in Beijing, not 20,250,301 seconds.
    that_day = client.get("/incidents", params={"from": "20250301", "to": "20250302"})
    assert that_day.status_code == 200, that_day.text
    assert that_day.json()["numberMatched"] == len(posted)
    after = client.get("/incidents", params={"from": "20250302"})
    assert after.json()["numberMatched"] == 0
    slashed = client.get("/incidents", params={"from": "2025/3/1", "to": "2025年3月2日"})
    assert slashed.json()["numberMatched"] == len(posted)
    for impossible in ("2025/2/30 9:30", "2025/3/1 下午13:30", "20250230093000"):
        response = client.post(
            "/incidents", json={**BODY, "lon": 120.305, "lat": 31.575, "reported_at": impossible}
        )
        assert response.status_code == 422, response.text
        assert "不是真实的日期或时刻" in response.text


@pytest.mark.usefixtures("city")
@pytest.mark.parametrize(
    "ticket",
    ["DEMO-1 ", " DEMO-1", "DEMO-1\n", "DEMO-1\u200b", "ＤＥＭＯ－1", "   ", "DEMO\u00001"],
)
def test_a_ticket_number_that_only_looks_like_another_is_refused(
    client: TestClient, city: Connection, ticket: str
) -> None:
    """Each of these was stored as a new incident beside DEMO-1: one hotline ticket twice."""
    body = {**BODY, "lon": 120.305, "lat": 31.575}
    assert client.post("/incidents", json={**body, "external_id": "DEMO-1"}).status_code == 201
    response = client.post("/incidents", json={**body, "external_id": ticket})
    assert response.status_code == 422, response.text
    assert "外部编号" in response.text or "NUL" in response.text
    assert count(city) == 1


@pytest.mark.usefixtures("city")
def test_chinese_ticket_numbers_are_welcome(client: TestClient) -> None:
    body = {**BODY, "lon": 120.305, "lat": 31.575, "external_id": "锡12345（补）苏B·2025"}
    assert client.post("/incidents", json=body).status_code == 201


def test_history_shows_the_stage_times_an_incident_came_with(
    client: TestClient, city: Connection
) -> None:
    """A 台账 of handled cases (or the demo city) stores stage times without moves: the
    history showed only the report, then the next move as if from nowhere."""
    created = client.post("/incidents", json={**BODY, "lon": 120.305, "lat": 31.575}).json()
    city.execute(
        text(
            "UPDATE incident SET status = 'handled', "
            "registered_at = reported_at + interval '1 hour', "
            "dispatched_at = reported_at + interval '2 hours', "
            "handling_at = reported_at + interval '3 hours', "
            "handled_at = reported_at + interval '5 hours' WHERE id = :id"
        ),
        {"id": created["id"]},
    )
    url = f"/incidents/{created['id']}"
    assert client.post(f"{url}/transitions", json={"to": "closed"}).is_success
    history = client.get(f"{url}/history").json()["items"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "reported"),
        ("reported", "registered"),
        ("registered", "dispatched"),
        ("dispatched", "handling"),
        ("handling", "handled"),
        ("handled", "closed"),
    ]
    assert [h["note"] for h in history[1:5]] == [
        "随事件导入的阶段时间 (stage time imported with the incident)"
    ] * 4
    assert history[-1]["note"] is None


def test_unknown_incident_is_404(client: TestClient) -> None:
    assert client.get("/incidents/999999").status_code == 404
    assert client.get("/incidents/999999/assignment").status_code == 404
    assert (
        client.post("/incidents/999999/transitions", json={"to": "registered"}).status_code == 404
    )
