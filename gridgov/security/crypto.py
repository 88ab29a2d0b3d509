"""Encryption of personal data at rest: AES-256-GCM, each value bound to its row and column.

The associated data (``layer/row id/column``) means a ciphertext copied onto another row or
column no longer decrypts, so values cannot be swapped between people unnoticed.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class DecryptionError(Exception):
    """Wrong key, or a ciphertext that was altered or moved."""


def _aad(layer: str, row_id: int, column: str) -> bytes:
    return f"{layer}/{row_id}/{column}".encode()


def encrypt(key: bytes, value: str, layer: str, row_id: int, column: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, value.encode(), _aad(layer, row_id, column))


def decrypt(key: bytes, blob: bytes, layer: str, row_id: int, column: str) -> str:
    try:
        plain = AESGCM(key).decrypt(
            blob[:NONCE_BYTES], blob[NONCE_BYTES:], _aad(layer, row_id, column)
        )
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError(f"cannot decrypt {layer}/{row_id}/{column}") from exc
    return plain.decode()


__all__ = ["DecryptionError", "decrypt", "encrypt"]
