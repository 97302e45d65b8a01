"""Error codes. Services raise these; the API's exception handler renders them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class TierwiseError(Exception):
    """Base of every domain error: a stable code, a human message, optional details."""

    status_code = 400
    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = str(code or self.default_code)
        self.details = details


class NotFound(TierwiseError):
    """Missing and foreign (other tenant) ids alike: never tell them apart."""

    status_code = 404
    default_code = "not_found"


class InvalidInput(TierwiseError):
    default_code = "invalid"


class Conflict(TierwiseError):
    status_code = 409
    default_code = "conflict"


class PermissionDenied(TierwiseError):
    status_code = 403
    default_code = "permission_denied"


class AccountsErrorCode(StrEnum):
    DUPLICATE_EXTERNAL_ID = "duplicate_external_id"
    DUPLICATE_CONTACT = "duplicate_contact"
    UNKNOWN_CSM = "unknown_csm"
    UNKNOWN_SCOPE = "unknown_scope"
    DUPLICATE_SLUG = "duplicate_slug"
