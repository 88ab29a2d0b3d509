"""Signed session tokens (JWT, PyJWT): one fixed algorithm, audience, issuer and expiry checked.

The token names a server-side session (``sid``); idle expiry, logout and disabling an
account act on that session, so a stolen token dies with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
ALGORITHMS = [ALGORITHM]  # fixed: "none" and every other algorithm are refused
AUDIENCE = "gridgov"
ISSUER = "gridgov"
MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    username: str
    session_id: str
    expires_at: datetime


class TokenError(Exception):
    """The token is missing, malformed, forged, expired or for someone else."""


def issue(
    key: str,
    user_id: int,
    username: str,
    session_id: str,
    lifetime: timedelta,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """A signed token for a session, and when it expires."""
    issued = now or datetime.now(UTC)
    expires = issued + lifetime
    claims = {
        "sub": username,
        "uid": user_id,
        "sid": session_id,
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM), expires


def verify(key: str, token: str) -> TokenClaims:
    """The claims of a valid token; :class:`TokenError` for anything else."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "aud", "iss", "sub", "sid", "uid"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenError(type(exc).__name__) from exc
    user_id, session_id, username = claims.get("uid"), claims.get("sid"), claims.get("sub")
    if not isinstance(user_id, int) or not isinstance(session_id, str) or not session_id:
        raise TokenError("malformed claims")
    if not isinstance(username, str):
        raise TokenError("malformed claims")
    return TokenClaims(
        user_id=user_id,
        username=username,
        session_id=session_id,
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
    )


__all__ = ["ALGORITHMS", "AUDIENCE", "TokenClaims", "TokenError", "issue", "verify"]
