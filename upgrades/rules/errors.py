"""Error codes of trigger rules. Services raise these; the admin and API show their messages."""

from __future__ import annotations

from enum import StrEnum

from accounts.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TierwiseError

__all__ = ["Conflict", "InvalidInput", "NotFound", "PermissionDenied", "RulesErrorCode", "TierwiseError"]


class RulesErrorCode(StrEnum):
    INVALID_CONDITION = "invalid_condition"
    INVALID = "invalid"
    NOT_DRAFT = "not_draft"
    WRONG_STATE = "wrong_state"
    FOUR_EYES = "four_eyes"
    NO_CAPABILITY = "no_capability"
    DUPLICATE_KEY = "duplicate_key"
