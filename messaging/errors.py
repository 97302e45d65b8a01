"""Error codes of messaging. Services raise these; the API's exception handler renders them."""

from __future__ import annotations

from enum import StrEnum

from accounts.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TierwiseError

__all__ = ["Conflict", "InvalidInput", "MessagingErrorCode", "NotFound", "PermissionDenied", "TierwiseError"]


class MessagingErrorCode(StrEnum):
    INVALID_TEMPLATE = "invalid_template"
    NO_CAPABILITY = "no_capability"
    FOUR_EYES = "four_eyes"
    WRONG_STATE = "wrong_state"
    NOT_DRAFT = "not_draft"
    INVALID_EVENT = "invalid_event"
    WRONG_CHANNEL = "wrong_channel"
    CONTACT_NOT_IN_ACCOUNT = "contact_not_in_account"
    BAD_TOKEN = "bad_token"
