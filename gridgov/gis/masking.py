"""Masking of personal data (个人信息) for display and export: one pure function.

The shape of the value decides the mask, so callers need no knowledge of the column:
identity numbers keep their first 4 and last 4 characters, phone numbers their first 3
and last 4 digits, anything else (names, addresses) its first character.
"""

from __future__ import annotations

import re

_ID_NUMBER = re.compile(r"^[0-9]{15}$|^[0-9]{17}[0-9Xx]$")
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,19}$")


def mask_personal(value: str | None) -> str | None:
    """``张三`` → ``张*``; ``32020219800101123X`` → ``3202**********123X``;
    ``13800001234`` → ``138****1234``. None and empty strings pass through."""
    if not value:
        return value
    text = value.strip()
    if _ID_NUMBER.match(text):
        return text[:4] + "*" * (len(text) - 8) + text[-4:]
    if _PHONE.match(text):
        digits = re.sub(r"[^0-9]", "", text)
        if len(digits) >= 7:
            return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
        return "*" * len(digits)
    return text[0] + "*" * (len(text) - 1)
