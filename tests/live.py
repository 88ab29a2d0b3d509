"""A real HTTP server on loopback and a headless Chromium, for page tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, BrowserContext, sync_playwright
from sqlalchemy import Engine, text

from gridgov.layers import accounts
from gridgov.security import tokens
from gridgov.security.passwords import hash_password
from gridgov.security.roles import Role
from gridgov.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
# Flags that keep Chromium from reaching out to the internet on its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


LIVE_USER = "live_admin"
LIVE_PASSWORD = "Live-Passw0rd!"


@contextmanager
def committed_login(
    engine: Engine,
    settings: Settings,
    role: Role = Role.ADMIN,
    codes: tuple[str, ...] = (),
    username: str = LIVE_USER,
) -> Iterator[str]:
    """A committed account (password ``LIVE_PASSWORD``) and a live session token for it,
    for servers that run on their own connections; the account is deleted afterwards."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_user WHERE username = :u"), {"u": username})
        user = accounts.insert_user(conn, username, hash_password(LIVE_PASSWORD), role, codes)
        session_id, _ = accounts.open_session(conn, user.id, "127.0.0.1", timedelta(hours=2))
    token, _ = tokens.issue(
        settings.require_secret_key(), user.id, username, session_id, timedelta(hours=2)
    )
    try:
        yield token
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM app_user WHERE username = :u"), {"u": username})


def add_session_cookie(context: BrowserContext, base_url: str, token: str) -> None:
    """Log a browser context in, as the login page would (the HttpOnly session cookie)."""
    context.add_cookies(
        [{"name": "gridgov_session", "value": token, "url": base_url, "httpOnly": True}]
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, driven by Playwright; no browser is ever downloaded."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            "page tests need /usr/bin/chromium: run `make test` (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
