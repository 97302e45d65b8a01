"""Billing error codes. Services raise these; the API's exception handler renders them."""

from __future__ import annotations

from enum import StrEnum

from accounts.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TierwiseError

__all__ = [
    "BillingErrorCode",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "TierwiseError",
    "BillingUnavailable",
]


class BillingErrorCode(StrEnum):
    STRIPE_NOT_CONFIGURED = "stripe_not_configured"
    STRIPE_UNAVAILABLE = "stripe_unavailable"
    STRIPE_REJECTED = "stripe_rejected"
    PRICE_NOT_PUBLISHED = "price_not_published"
    PRICE_CURRENCY_MISMATCH = "price_currency_mismatch"
    NOTHING_TO_CHANGE = "nothing_to_change"
    CHANGE_IN_FLIGHT = "change_in_flight"
    QUOTE_EXPIRED = "quote_expired"
    INVALID_STATE = "invalid_state"
    LICENSE_NOT_ACTIVE = "license_not_active"
    NO_SUBSCRIPTION = "no_subscription"
    INVALID_GRANT = "invalid_grant"
    SECRET_UNREADABLE = "secret_unreadable"


class BillingUnavailable(TierwiseError):
    """Stripe could not be reached; nothing was changed and the call may be retried."""

    status_code = 503
    default_code = BillingErrorCode.STRIPE_UNAVAILABLE
