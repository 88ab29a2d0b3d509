"""Admission control on a real server: requests beyond the limit wait in line, and one
that waits too long is a 503 with Retry-After; /health never waits."""

from __future__ import annotations

import socket

import httpx2 as httpx

from gridgov.api.app import create_app
from gridgov.settings import Settings
from tests.live import serve


def test_a_request_waits_in_line_then_is_a_busy_503_and_the_line_moves_on(
    settings: Settings,
) -> None:
    app = create_app(
        settings.model_copy(
            update={"max_active_requests": 1, "request_queue_timeout_s": 0.3, "warm_up": False}
        )
    )
    with serve(app) as base:
        host, port = base.removeprefix("http://").split(":")
        # The one slot is taken by a request whose body has not arrived yet.
        with socket.create_connection((host, int(port))) as slow:
            slow.sendall(
                b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 40\r\n\r\n{"
            )
            busy = httpx.get(f"{base}/conformance", timeout=30)
            assert busy.status_code == 503, busy.text
            assert busy.headers["content-type"] == "application/problem+json"
            assert int(busy.headers["retry-after"]) == settings.retry_after_s
            assert "繁忙" in busy.json()["detail"]
            assert httpx.get(f"{base}/health", timeout=30).status_code == 200  # no line
            slow.sendall(b'"username": "nobody", "password": "x"} ')  # 1 + 39 bytes
            slow.settimeout(30)
            answer = slow.recv(65536)
            assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert httpx.get(f"{base}/conformance", timeout=30).status_code == 200
