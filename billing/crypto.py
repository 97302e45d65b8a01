"""Tenant secrets at rest: MultiFernet over `settings.TIERWISE_ENCRYPTION_KEYS` (newest key first).

Rotation (README, "Stripe keys at rest"): put a new key first in the list, keep the old
ones after it, run `manage.py rotate_billing_secrets`, then drop the old keys. Decryption
tries every key; encryption always uses the first.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """No configured key decrypts this value (a key was dropped before rotation finished)."""


def _dev_key() -> str:
    # Development only (DEBUG and no keys set): a key derived from SECRET_KEY so `make run` needs no setup.
    digest = hashlib.sha256(f"tierwise-dev-encryption:{settings.SECRET_KEY}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("TIERWISE_ENCRYPTION_KEYS holds a value that is not a Fernet key") from exc


def _keys() -> tuple[str, ...]:
    keys = tuple(k.strip() for k in settings.TIERWISE_ENCRYPTION_KEYS if k.strip())
    if keys:
        return keys
    if settings.DEBUG:
        return (_dev_key(),)
    raise ImproperlyConfigured("Set TIERWISE_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first)")


def encrypt_secret(plaintext: str) -> str:
    return _fernet(_keys()).encrypt(plaintext.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet(_keys()).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("No configured encryption key can read this secret") from exc


def rotate_secret(token: str) -> str:
    """Re-encrypt under the newest key (a no-op in meaning; the ciphertext changes)."""
    try:
        return _fernet(_keys()).rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("No configured encryption key can read this secret") from exc


KNOWN_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_", "whsec_")


def hint(secret: str) -> str:
    """What the admin may show of a secret: its well-known prefix and last four characters."""
    kind = next((p for p in KNOWN_PREFIXES if secret.startswith(p)), "")
    return f"{kind}…{secret[-4:]}" if len(secret) >= 16 else "…"
