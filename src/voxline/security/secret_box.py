"""Encryption at rest for workspace secrets: AES-256-GCM under a key derived from the server secret.

A sealed value is `b"v1" | key id (8) | nonce (12) | ciphertext and tag`. The key is
HKDF-SHA256(server secret, info "voxline workspace secrets v1"); the key id (a digest of that
key) tells "encrypted under another server secret" apart from "altered". The header, the
workspace ID and the secret's name are authenticated as associated data, so a value copied to
another row, workspace or name fails to open instead of decrypting there.
"""

from __future__ import annotations

import hashlib
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"v1"
_KEY_INFO = b"voxline workspace secrets v1"
_KEY_ID_LABEL = b"voxline workspace secrets key id v1"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER_BYTES = len(_VERSION) + _KEY_ID_BYTES


class SecretBoxError(Exception):
    """A sealed value could not be opened; the message says why, never what it holds."""


class WrongServerSecret(SecretBoxError):
    """Sealed under a different server secret than this process has."""


class CorruptSecret(SecretBoxError):
    """Malformed, altered, or moved from the workspace and name it was sealed for."""


class SecretBox:
    """Seals and opens secret values bound to (workspace, name); one per server secret."""

    __slots__ = ("_aead", "_key_id")

    def __init__(self, server_secret: bytes) -> None:
        if not server_secret:
            raise ValueError("the server secret is empty")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO).derive(
            server_secret
        )
        self._aead = AESGCM(key)
        self._key_id = hashlib.sha256(_KEY_ID_LABEL + key).digest()[:_KEY_ID_BYTES]

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self._key_id.hex()})"

    def seal(self, value: str, *, workspace_id: str, name: str) -> bytes:
        """`value` encrypted for `name` in `workspace_id` (a fresh random nonce every time)."""
        header = _VERSION + self._key_id
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode(), _associated(header, workspace_id, name))
        return header + nonce + sealed

    def open(self, sealed: bytes, *, workspace_id: str, name: str) -> str:
        """The value sealed for `name` in `workspace_id`; `SecretBoxError` if it cannot be."""
        if len(sealed) < _HEADER_BYTES + _NONCE_BYTES + _TAG_BYTES:
            raise CorruptSecret(f"secret {name!r} is not a sealed value (too short)")
        header, body = sealed[:_HEADER_BYTES], sealed[_HEADER_BYTES:]
        if header[: len(_VERSION)] != _VERSION:
            raise CorruptSecret(f"secret {name!r} is sealed in an unknown format")
        if header[len(_VERSION) :] != self._key_id:
            raise WrongServerSecret(
                f"secret {name!r} was encrypted under a different server secret: restore the "
                "original VOXLINE_SECRET_KEY (or data-dir server-secret file), or store the "
                "secret again"
            )
        nonce, ciphertext = body[:_NONCE_BYTES], body[_NONCE_BYTES:]
        try:
            plain = self._aead.decrypt(nonce, ciphertext, _associated(header, workspace_id, name))
        except InvalidTag:
            raise CorruptSecret(
                f"secret {name!r} fails authentication: it was altered or moved from another "
                "workspace or name; store it again"
            ) from None
        return plain.decode()


def _associated(header: bytes, workspace_id: str, name: str) -> bytes:
    # Length-prefixed, so no (workspace, name) pair can be spelled as another one.
    parts = [part.encode() for part in (workspace_id, name)]
    return header + b"".join(struct.pack(">H", len(part)) + part for part in parts)
