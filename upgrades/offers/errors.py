"""Error codes of offers and trials. Services raise these; the admin, console, portal and API show their messages."""

from __future__ import annotations

from enum import StrEnum

from accounts.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TierwiseError

__all__ = ["Conflict", "InvalidInput", "NotFound", "OffersErrorCode", "PermissionDenied", "TierwiseError"]


class OffersErrorCode(StrEnum):
    INVALID = "invalid"
    NO_LIVE_SETTINGS = "no_live_settings"
    NOTHING_TO_OFFER = "nothing_to_offer"
    ILLEGAL_TRANSITION = "illegal_transition"
    OFFER_EXPIRED = "offer_expired"
    APPROVAL_NEEDED = "approval_needed"
    NO_CAPABILITY = "no_capability"
    FOUR_EYES = "four_eyes"
    NOT_DRAFT = "not_draft"
    WRONG_STATE = "wrong_state"
    TRIAL_NOT_ALLOWED = "trial_not_allowed"
    TRIAL_ALREADY_USED = "trial_already_used"
