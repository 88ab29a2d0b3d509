"""Passwords (argon2id, rules) and session tokens (PyJWT): pure, no database."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from gridgov.errors import InvalidInputError
from gridgov.security import tokens
from gridgov.security.crypto import DecryptionError, decrypt, encrypt
from gridgov.security.passwords import (
    check_password,
    hash_password,
    password_problems,
    verify_password,
)

KEY = "k" * 40


def test_hash_is_argon2id_and_verifies() -> None:
    stored = hash_password("Correct-Horse-9")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "Correct-Horse-9")
    assert not verify_password(stored, "correct-horse-9")
    assert not verify_password(None, "Correct-Horse-9")
    assert not verify_password("not a hash", "Correct-Horse-9")


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Sh0rt!", "at least 10"),
        ("alllowercaseletters", "three of"),
        ("ALLUPPER1234567", "three of"),
        ("Zhangsan-2026x", "user name"),
    ],
)
def test_password_rules_name_what_is_wrong(password: str, reason: str) -> None:
    problems = password_problems(password, "zhangsan")
    assert any(reason in en for _, en in problems), problems
    with pytest.raises(InvalidInputError) as caught:
        check_password(password, "zhangsan")
    assert "密码" in caught.value.detail_zh


def test_good_password_passes() -> None:
    assert password_problems("Grid-Worker-2026", "zhangsan") == []


def _token(**claims: object) -> str:
    now = datetime.now(UTC)
    body = {
        "sub": "u",
        "uid": 1,
        "sid": "s" * 40,
        "aud": tokens.AUDIENCE,
        "iss": tokens.ISSUER,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, KEY, algorithm="HS256")


def test_issued_token_verifies() -> None:
    token, expires = tokens.issue(KEY, 7, "wang", "x" * 40, timedelta(hours=1))
    claims = tokens.verify(KEY, token)
    assert (claims.user_id, claims.username, claims.session_id) == (7, "wang", "x" * 40)
    assert claims.expires_at == expires.replace(microsecond=0)


def _unsigned(header: dict[str, str], body: dict[str, object]) -> str:
    def part(value: dict[str, object] | dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(body)}."


@pytest.mark.parametrize(
    "case",
    ["alg_none", "wrong_key", "tampered", "wrong_aud", "wrong_iss", "expired", "no_exp", "hs512"],
)
def test_bad_tokens_are_refused(case: str) -> None:
    good = _token()
    if case == "alg_none":
        body = jwt.decode(good, KEY, algorithms=["HS256"], audience=tokens.AUDIENCE)
        token = _unsigned({"alg": "none", "typ": "JWT"}, body)
    elif case == "wrong_key":
        token = jwt.encode(jwt.decode(good, options={"verify_signature": False}), "x" * 40)
    elif case == "tampered":
        header, payload, signature = good.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["uid"] = 2  # another user, same signature
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        token = f"{header}.{forged}.{signature}"
    elif case == "wrong_aud":
        token = _token(aud="another-service")
    elif case == "wrong_iss":
        token = _token(iss="someone-else")
    elif case == "expired":
        token = _token(exp=int((datetime.now(UTC) - timedelta(seconds=5)).timestamp()))
    elif case == "no_exp":
        token = _token(exp=None)
    else:
        token = jwt.encode(jwt.decode(good, options={"verify_signature": False}), KEY, "HS512")
    with pytest.raises(tokens.TokenError):
        tokens.verify(KEY, token)


def test_personal_data_cipher_is_bound_to_its_row_and_column() -> None:
    key = b"\x01" * 32
    blob = encrypt(key, "32020219800101123X", "rental_housing", 5, "landlord_id_number")
    assert b"32020219800101123X" not in blob
    assert decrypt(key, blob, "rental_housing", 5, "landlord_id_number") == "32020219800101123X"
    for layer, row, column, k in (
        ("rental_housing", 6, "landlord_id_number", key),  # moved to another row
        ("rental_housing", 5, "landlord_phone", key),  # moved to another column
        ("rental_housing", 5, "landlord_id_number", b"\x02" * 32),  # another key
    ):
        with pytest.raises(DecryptionError):
            decrypt(k, blob, layer, row, column)
