"""Secrets at rest: processor credentials are encrypted with a key derived from the server's
secret key; bearer and invite tokens are stored only as keyed hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class DecryptionError(RuntimeError):
    """Stored credentials cannot be read with this secret key."""


def _derive(secret_key: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"carebill", info=purpose).derive(
        secret_key.encode()
    )


class Vault:
    """Encrypts small JSON documents (authenticated encryption: AES-128-CBC + HMAC, Fernet)."""

    def __init__(self, secret_key: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret_key, b"credentials")))
        self._token_key = _derive(secret_key, b"tokens")
        self._link_key = _derive(secret_key, b"links")

    def encrypt(self, document: dict[str, str]) -> bytes:
        return self._fernet.encrypt(json.dumps(document, sort_keys=True).encode())

    def decrypt(self, blob: bytes) -> dict[str, str]:
        try:
            data = json.loads(self._fernet.decrypt(blob))
        except InvalidToken as exc:
            raise DecryptionError("credentials were encrypted with another secret key") from exc
        assert isinstance(data, dict)
        return {str(k): str(v) for k, v in data.items()}

    def token_hash(self, token: str) -> str:
        """Keyed hash of a bearer or invite token: what the database stores."""
        return hmac.new(self._token_key, token.encode(), hashlib.sha256).hexdigest()

    def link_signature(self, message: str) -> str:
        """Keyed signature of what a link carries (e.g. an unsubscribe link, which must work
        without signing in): 160 bits, URL-safe."""
        digest = hmac.new(self._link_key, message.encode(), hashlib.sha256).digest()[:20]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def link_signature_matches(self, message: str, signature: str) -> bool:
        return hmac.compare_digest(self.link_signature(message), signature)


def new_token() -> str:
    return secrets.token_urlsafe(32)
