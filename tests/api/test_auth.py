"""Login, lock, idle expiry, tokens, cookies, anonymous access and the audit of all of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import Connection, Engine, text

from gridgov.security import tokens
from gridgov.security.roles import Role
from gridgov.settings import Settings
from tests.conftest import TEST_PASSWORD, ClientAs, MakeUser, TokenFor


def _login(client: TestClient, username: str, password: str = TEST_PASSWORD) -> Response:
    return client.post("/auth/login", json={"username": username, "password": password})


def _audit(connection: Connection, username: str) -> list[tuple[str, str, int | None]]:
    rows = connection.execute(
        text("SELECT action, outcome, status FROM audit_log WHERE username = :u ORDER BY id"),
        {"u": username},
    )
    return [(r.action, r.outcome, r.status) for r in rows]


def test_login_gives_a_token_and_an_httponly_cookie(
    anon_client: TestClient, make_user: MakeUser, connection: Connection
) -> None:
    make_user(Role.ADMIN, username="li_si")
    response = anon_client.post(
        "/auth/login", json={"username": "li_si", "password": TEST_PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["role"] == "admin"
    cookie = response.headers["set-cookie"]
    assert "gridgov_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    me = anon_client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "li_si"
    assert _audit(connection, "li_si") == [("login", "ok", 200)]


def test_wrong_password_and_unknown_user_look_the_same(
    anon_client: TestClient, make_user: MakeUser, connection: Connection
) -> None:
    make_user(Role.VIEWER, ["320213"], username="wang_wu")
    wrong = _login(anon_client, "wang_wu", "Wrong-Passw0rd")
    unknown = _login(anon_client, "nobody_here", "Wrong-Passw0rd")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert "Wrong-Passw0rd" not in wrong.text
    assert _audit(connection, "wang_wu") == [("login", "failed", 401)]
    assert _audit(connection, "nobody_here") == [("login", "failed", 401)]


def test_five_failures_lock_the_account(
    anon_client: TestClient, make_user: MakeUser, connection: Connection
) -> None:
    make_user(Role.VIEWER, ["320213"], username="zhao_liu")
    statuses = [_login(anon_client, "zhao_liu", "Bad-Passw0rd").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 423]
    locked = _login(anon_client, "zhao_liu")  # the right password no longer helps
    assert locked.status_code == 423
    assert "锁定" in locked.json()["detail"]
    # Once the lock has run out, the right password works again and resets the count.
    connection.execute(
        text(
            "UPDATE app_user SET locked_until = now() - interval '1 s' WHERE username = 'zhao_liu'"
        )
    )
    assert _login(anon_client, "zhao_liu").status_code == 200
    count = connection.execute(
        text("SELECT failed_logins FROM app_user WHERE username = 'zhao_liu'")
    ).scalar_one()
    assert count == 0
    outcomes = [o for _, o, _ in _audit(connection, "zhao_liu")]
    assert outcomes == ["failed"] * 5 + ["refused", "ok"]


def test_disabled_account_cannot_log_in(
    anon_client: TestClient, make_user: MakeUser, connection: Connection
) -> None:
    make_user(Role.VIEWER, ["320213"], username="sun_qi")
    connection.execute(text("UPDATE app_user SET disabled = true WHERE username = 'sun_qi'"))
    assert _login(anon_client, "sun_qi").status_code == 403


def test_idle_session_expires(
    anon_client: TestClient,
    make_user: MakeUser,
    token_for: TokenFor,
    connection: Connection,
    settings: Settings,
) -> None:
    user = make_user(Role.ADMIN)
    token = token_for(user)
    headers = {"Authorization": f"Bearer {token}"}
    assert anon_client.get("/collections", headers=headers).status_code == 200
    idle = settings.session_idle_minutes + 1
    connection.execute(
        text("UPDATE user_session SET last_seen_at = now() - make_interval(mins => :m)"),
        {"m": idle},
    )
    response = anon_client.get("/collections", headers=headers)
    assert response.status_code == 401
    assert "未操作" in response.json()["detail"]
    # Ended for good: it does not come back.
    assert anon_client.get("/collections", headers=headers).status_code == 401


def test_logout_ends_the_session(
    anon_client: TestClient, make_user: MakeUser, token_for: TokenFor
) -> None:
    headers = {"Authorization": f"Bearer {token_for(make_user(Role.ADMIN))}"}
    assert anon_client.post("/auth/logout", headers=headers).status_code == 200
    assert anon_client.get("/collections", headers=headers).status_code == 401


def test_disabling_ends_live_sessions(
    anon_client: TestClient, make_user: MakeUser, token_for: TokenFor, connection: Connection
) -> None:
    user = make_user(Role.ADMIN)
    headers = {"Authorization": f"Bearer {token_for(user)}"}
    connection.execute(text("UPDATE app_user SET disabled = true WHERE id = :id"), {"id": user.id})
    assert anon_client.get("/collections", headers=headers).status_code == 401


@pytest.mark.parametrize("case", ["alg_none", "tampered", "wrong_aud", "expired", "other_key"])
def test_forged_tokens_get_401(
    case: str,
    anon_client: TestClient,
    make_user: MakeUser,
    token_for: TokenFor,
    settings: Settings,
) -> None:
    user = make_user(Role.VIEWER, ["320213"])
    other = make_user(Role.ADMIN)
    good = token_for(user)
    claims = jwt.decode(good, options={"verify_signature": False})
    key = settings.require_secret_key()
    if case == "alg_none":
        claims["uid"] = other.id
        token = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    elif case == "tampered":
        header, _, signature = good.split(".")
        claims["uid"] = other.id  # try to become the admin
        body = jwt.encode(claims, key).split(".")[1]
        token = f"{header}.{body}.{signature}"
    elif case == "wrong_aud":
        token = jwt.encode({**claims, "aud": "not-gridgov"}, key)
    elif case == "expired":
        past = datetime.now(UTC) - timedelta(minutes=1)
        token = jwt.encode({**claims, "exp": int(past.timestamp())}, key)
    else:
        token = jwt.encode(claims, "another-key-" + "x" * 30)
    response = anon_client.get("/collections", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert tokens.ALGORITHMS == ["HS256"]


@pytest.mark.parametrize(
    "path",
    [
        "/collections",
        "/collections/grid/items",
        "/collections/grid/items/1",
        "/collections/grid/tiles/WebMercatorQuad/12/3428/1665",
        "/tiles/WebMercatorQuad/12/3428/1665",
        "/aggregates/incidents/by/grid",
        "/incidents",
        "/incidents/1",
        "/layers/grid/export",
        "/docking/grids?unit_layer=police_unit",
        "/map/areas?level=district",
        "/auth/me",
    ],
)
def test_anonymous_reads_are_401(anon_client: TestClient, path: str) -> None:
    response = anon_client.get(path)
    assert response.status_code == 401
    assert "登录" in response.json()["detail"]


def test_anonymous_writes_are_401(anon_client: TestClient) -> None:
    assert anon_client.post("/incidents", json={}).status_code == 401
    upload = anon_client.post("/layers/grid/import", files={"file": ("a.geojson", b"{}")})
    assert upload.status_code == 401
    assert (
        anon_client.post("/incidents/1/transitions", json={"to": "registered"}).status_code == 401
    )


@pytest.mark.parametrize(
    "path",
    [
        "/health",
        "/login",
        "/docs",
        "/openapi.json",
        "/",
        "/conformance",
        "/static/gridgov/maps.css",
    ],
)
def test_public_paths_need_no_login(anon_client: TestClient, path: str) -> None:
    assert anon_client.get(path).status_code == 200


def test_pages_send_anonymous_browsers_to_the_login_page(anon_client: TestClient) -> None:
    for page in ("/map", "/map/heatmap", "/map/docking"):
        response = anon_client.get(page, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next=%2F{page[1:].replace('/', '%2F')}"
    login = anon_client.get("/login?next=/map/heatmap")
    assert "网格化服务管理" in login.text
    assert 'value="/map/heatmap"' in login.text
    assert "http://" not in login.text
    assert "https://" not in login.text


def test_login_form_sets_the_cookie_and_goes_back(
    anon_client: TestClient, make_user: MakeUser
) -> None:
    make_user(Role.ADMIN, username="page_user")
    form = {"username": "page_user", "password": TEST_PASSWORD, "next": "/map/docking"}
    response = anon_client.post("/login", data=form, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/map/docking"
    assert anon_client.get("/map/docking").status_code == 200  # the cookie now logs it in
    evil = {**form, "next": "//evil.example/x"}
    assert (
        anon_client.post("/login", data=evil, follow_redirects=False).headers["location"] == "/map"
    )
    bad = anon_client.post("/login", data={**form, "password": "nope-nope-1A"})
    assert bad.status_code == 401
    assert "用户名或密码错误" in bad.text


def test_cookie_alone_cannot_write(
    anon_client: TestClient, make_user: MakeUser, token_for: TokenFor
) -> None:
    """CSRF: a cookie authenticates reads only; writes need the Authorization header."""
    anon_client.cookies.set("gridgov_session", token_for(make_user(Role.ADMIN)))
    assert anon_client.get("/collections").status_code == 200
    assert anon_client.post("/incidents", json={}).status_code == 401


def test_refusals_are_audited_in_their_own_transaction(
    client_as: ClientAs, engine: Engine, anon_client: TestClient
) -> None:
    viewer = client_as("viewer", ["320213"])
    assert viewer.get("/incidents").status_code == 403
    assert anon_client.get("/incidents?district=320213").status_code == 401
    with engine.connect() as conn:  # committed although the requests were refused
        rows = conn.execute(
            text(
                "SELECT username, role, outcome, status, action FROM audit_log "
                "WHERE outcome = 'refused' AND at > now() - interval '1 minute' ORDER BY id"
            )
        ).all()
    mine = [r for r in rows if r.role == "viewer" and r.action == "GET /incidents"]
    assert mine
    assert mine[-1].status == 403
    assert any(r.username is None and r.status == 401 for r in rows)


def test_many_failures_from_one_address_are_throttled_across_accounts(
    anon_client: TestClient, make_user: MakeUser, connection: Connection, settings: Settings
) -> None:
    """Password spraying: one client trying one password against many user names never
    trips a per-account lock, so failures are also counted per client address (429 with
    Retry-After, audited), even for a right password, while they are in the window."""
    make_user(Role.VIEWER, ["320213"], username="sun_qi")
    limit = settings.login_ip_max_failures
    for k in range(limit):
        assert _login(anon_client, f"sprayed_{k}", "Spray-Passw0rd").status_code == 401
    throttled = _login(anon_client, "sun_qi")
    assert throttled.status_code == 429, throttled.text
    assert "稍后再试" in throttled.json()["detail"]
    retry = int(throttled.headers["Retry-After"])
    assert 0 < retry <= settings.login_ip_window_minutes * 60 + 1
    assert _audit(connection, "sun_qi") == [("login", "refused", 429)]
    failed = connection.execute(
        text("SELECT failed_logins FROM app_user WHERE username = 'sun_qi'")
    ).scalar_one()
    assert failed == 0  # the account itself is not punished
    # The refusal itself is not a failure: it does not extend the window. (This test's own
    # rows: the log is append-only, and tests against a real server commit theirs.)
    refused = connection.execute(
        text(
            "SELECT count(*) FROM audit_log WHERE action = 'login' AND outcome = 'failed' "
            "AND username LIKE 'sprayed\\_%'"
        )
    ).scalar_one()
    assert refused == limit


def test_logins_prune_ended_sessions(
    anon_client: TestClient, make_user: MakeUser, connection: Connection
) -> None:
    user = make_user(Role.VIEWER, ["320213"], username="zhou_ba")
    for sid, ended in (
        ("e" * 40, "expires_at = now() - interval '2 hours'"),
        ("r" * 40, "revoked_at = now() - interval '2 hours'"),
        ("f" * 40, "revoked_at = now() - interval '10 minutes'"),  # kept a while
        ("l" * 40, "last_seen_at = now()"),  # live
    ):
        connection.execute(
            text(
                "INSERT INTO user_session (id, user_id, expires_at) "
                "VALUES (:id, :u, now() + interval '1 hour')"
            ),
            {"id": sid, "u": user.id},
        )
        connection.execute(text(f"UPDATE user_session SET {ended} WHERE id = :id"), {"id": sid})
    assert _login(anon_client, "zhou_ba").status_code == 200
    left = set(
        connection.execute(
            text("SELECT id FROM user_session WHERE user_id = :u"), {"u": user.id}
        ).scalars()
    )
    assert "e" * 40 not in left
    assert "r" * 40 not in left
    assert {"f" * 40, "l" * 40} <= left
    assert len(left) == 3  # and the new session
