"""Billing error codes. Services raise these; the API's exception handler renders them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

from accounts.errors import Conflict, InvalidInput, NotFound, PermissionDenied, TierwiseError
from billing.stripe_client import StripeError, StripeRejected, StripeUnavailable

__all__ = [
    "BillingErrorCode",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "TierwiseError",
    "BillingUnavailable",
    "stripe_errors_translated",
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
    QUOTE_STALE = "quote_stale"


class BillingUnavailable(TierwiseError):
    """Stripe could not be reached; nothing was changed and the call may be retried."""

    status_code = 503
    default_code = BillingErrorCode.STRIPE_UNAVAILABLE


def _unavailable(exc: StripeError) -> BillingUnavailable:
    return BillingUnavailable(
        "Stripe could not be reached; nothing was changed. Try again shortly.", details={"stripe": exc.message}
    )


def _rejected(exc: StripeError) -> InvalidInput:
    return InvalidInput(
        "Stripe refused the request.",
        code=BillingErrorCode.STRIPE_REJECTED,
        details={"stripe": exc.message, "stripe_code": exc.code},
    )


@contextmanager
def stripe_errors_translated() -> Iterator[None]:
    """The one translation of a Stripe failure for a caller who asked in person (a request, an admin action).

    Unreachable Stripe becomes `BillingUnavailable` (503, retry later), a refused request `InvalidInput`
    (`stripe_rejected`); a declined card is the caller's to handle and passes through. Task bodies do not use
    this: they let `StripeUnavailable` reach the task's retry and write every other outcome down.
    """
    try:
        yield
    except StripeUnavailable as exc:
        raise _unavailable(exc) from exc
    except StripeRejected as exc:
        raise _rejected(exc) from exc
