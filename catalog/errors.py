"""Error codes of the catalog. Services raise these; the admin shows their messages."""

from __future__ import annotations

from enum import StrEnum

from accounts.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TierwiseError

__all__ = ["CatalogErrorCode", "Conflict", "InvalidInput", "NotFound", "PermissionDenied", "TierwiseError"]


class CatalogErrorCode(StrEnum):
    NOT_DRAFT = "not_draft"  # an edit of something that is no longer a draft
    WRONG_STATE = "wrong_state"  # a transition that doesn't start from the item's state
    NOT_APPROVED = "not_approved"
    FOUR_EYES = "four_eyes"  # the approver wrote or submitted it
    NO_CAPABILITY = "no_capability"
    OPEN_DRAFT_EXISTS = "open_draft_exists"
    CURRENCY_MISMATCH = "currency_mismatch"
    ANNUAL_ABOVE_MONTHLY = "annual_above_monthly"
    DUPLICATE_PRICE = "duplicate_price"
    MISSING_PRICE = "missing_price"
    LADDER = "ladder"  # a higher tier grants less than a lower one
    RANK_TAKEN = "rank_taken"
    BAD_RULES = "bad_rules"
    INCOMPATIBLE = "incompatible"
    NOT_PUBLISHED = "not_published"
    INVALID = "invalid"
