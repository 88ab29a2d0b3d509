"""Password hashing (argon2id) and the password rules (等保三级: length and complexity).

argon2-cffi's defaults follow RFC 9106's second recommended setting; ``needs_rehash`` lets a
login upgrade old hashes when those parameters change.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gridgov.errors import InvalidInputError

MIN_LENGTH = 10
MAX_LENGTH = 128
_HASHER = PasswordHasher()
# Verified against when the user does not exist, so that a login takes as long either way.
_DUMMY_HASH = _HASHER.hash("gridgov-no-such-user")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing or broken hash never matches."""
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)


def password_problems(password: str, username: str = "") -> list[tuple[str, str]]:
    """Why ``password`` is refused, as (Chinese, English) pairs; empty when it is fine.

    Rules: 10 to 128 characters, at least three of upper case, lower case, digits and other
    characters, and not containing the user name.
    """
    problems: list[tuple[str, str]] = []
    if len(password) < MIN_LENGTH:
        problems.append((f"密码至少 {MIN_LENGTH} 位", f"at least {MIN_LENGTH} characters"))
    if len(password) > MAX_LENGTH:
        problems.append((f"密码最多 {MAX_LENGTH} 位", f"at most {MAX_LENGTH} characters"))
    classes = sum(
        (
            any(c.isupper() for c in password),
            any(c.islower() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if classes < 3:
        problems.append(
            (
                "密码须包含大写字母、小写字母、数字、符号中的至少三类",
                "use at least three of: upper case, lower case, digits, symbols",
            )
        )
    if username and username.lower() in password.lower():
        problems.append(("密码不能包含用户名", "must not contain the user name"))
    return problems


def check_password(password: str, username: str = "") -> None:
    """Raise :class:`InvalidInputError` naming every rule ``password`` breaks."""
    problems = password_problems(password, username)
    if problems:
        raise InvalidInputError(
            "密码不符合要求：" + "；".join(zh for zh, _ in problems),
            "password refused: " + "; ".join(en for _, en in problems),
        )


__all__ = [
    "MIN_LENGTH",
    "check_password",
    "hash_password",
    "needs_rehash",
    "password_problems",
    "verify_password",
]
