"""Multi-year terms: renewal with the policy's loyalty discount (a coupon in Stripe), quote == charge checked."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import Actor, record_audit, snapshot
from accounts.tenancy import each_tenant
from billing.errors import BillingErrorCode, Conflict, InvalidInput, TierwiseError, stripe_errors_translated
from billing.models import License, LicenseStatus
from billing.proration import add_interval
from billing.selectors import current_discount_policy, license_addon_prices
from billing.services.licenses.money import compute_mrr, interval_total
from billing.services.licenses.records import (
    LICENSE_AUDIT_FIELDS,
    _audit,
    _lock,
    announce,
    license_state,
    record_change,
)
from billing.services.licenses.term_ramp import release_term_schedule
from catalog.pricing import discount_on_lines

# --- Multi-year terms -------------------------------------------------------------------------------


log = logging.getLogger(__name__)
RENEWAL_LEAD = timedelta(days=1)  # renew (and discount in Stripe) before the term's last invoice is drawn up


def expected_renewal_total(license: License, *, discount_percent: Decimal) -> int:
    """The next regular invoice as our quote: each item's interval total less the discount, line by line
    (Stripe discounts each invoice line and rounds each once)."""
    totals = [interval_total(license.price, license.seats)] if license.price is not None else []
    totals += [interval_total(p, license.seats) for p in license_addon_prices(license.tenant, license)]
    return sum(totals) - discount_on_lines(totals, discount_percent)


def _apply_renewal_discount(
    tenant: Tenant, license: License, *, discount_percent: Decimal, new_commitment_end: datetime
) -> tuple[str, Any]:
    """Put the loyalty discount on the Stripe subscription (a `forever` percent coupon, replaced at each renewal;
    none when the renewal carries no discount), then preview the next invoice Stripe will draw up.

    Returns (coupon id or "", the previewed Invoice or None without a subscription). Raises
    BillingUnavailable / InvalidInput with nothing of ours changed.
    """
    from billing.services.stripe_accounts import stripe_for

    if not license.stripe_subscription_id:
        return "", None
    gateway = stripe_for(tenant)
    # The same renewal retried sends the same body under the same key; another renewal or discount, another key.
    key = f"tw-lic-{license.pk}-renewal-{int(new_commitment_end.timestamp())}-{discount_percent.normalize()}"
    with stripe_errors_translated():
        release_term_schedule(tenant, gateway, license)  # the renewed term is flat: its ramp's schedule ends
        subscription = gateway.retrieve_subscription(license.stripe_subscription_id)
        coupon_id = (
            gateway.ensure_percent_coupon(discount_percent, currency=license.currency) if discount_percent else ""
        )
        if coupon_id or subscription.discount_count:
            gateway.set_subscription_coupon(
                license.stripe_subscription_id, coupon_id=coupon_id or None, idempotency_key=key
            )
        preview = gateway.preview_next_invoice(
            customer_id=subscription.customer_id, subscription_id=license.stripe_subscription_id
        )
    return coupon_id, preview


def renew_license_term(
    tenant: Tenant, *, license: License, actor: Actor, loyalty_percent: Decimal = Decimal(0), at: datetime | None = None
) -> License:
    """Renew a committed term for another `term_years`, with the policy's loyalty discount for multi-year terms.

    Quote == charge: the discount is put on the Stripe subscription first (so the term's invoices
    are drawn up with it), Stripe's preview of the next invoice is compared with our own figure,
    and a difference is audited, never swallowed. Stripe is called outside the transaction.
    """
    at = at or timezone.now()
    if license.tenant_id != tenant.pk:
        raise InvalidInput("Not a licence of this tenant.")
    current = License.objects.for_tenant(tenant).select_related("price").get(pk=license.pk)

    def check(lic: License) -> None:
        if lic.commitment_ends_at is None or lic.commitment_ends_at > at + RENEWAL_LEAD:
            raise Conflict("The licence has no committed term ending now.", code=BillingErrorCode.INVALID_STATE)
        if lic.status not in (LicenseStatus.ACTIVE, LicenseStatus.PAST_DUE) or lic.cancel_at_period_end:
            raise Conflict("Only an active licence that is not cancelling renews.", code=BillingErrorCode.INVALID_STATE)

    check(current)
    assert current.commitment_ends_at is not None
    discount = Decimal(loyalty_percent) if current.term_years > 1 else Decimal(0)
    new_end = add_interval(current.commitment_ends_at, "year", current.term_years)
    coupon_id, preview = _apply_renewal_discount(tenant, current, discount_percent=discount, new_commitment_end=new_end)
    expected = expected_renewal_total(current, discount_percent=discount)
    with transaction.atomic():
        license = _lock(tenant, license)
        if license.commitment_ends_at != current.commitment_ends_at:
            raise Conflict("The term was renewed meanwhile.", code=BillingErrorCode.INVALID_STATE)
        check(license)
        before, mrr_before, state_before = snapshot(license, LICENSE_AUDIT_FIELDS), license.mrr, license_state(license)
        license.commitment_ends_at = new_end
        license.renewal_discount_percent = discount
        license.term_percents = []
        license.mrr = compute_mrr(
            price=license.price,
            seats=license.seats,
            addon_prices=license_addon_prices(license.tenant, license),
            discount_percent=license.renewal_discount_percent,
        )
        license.save()
        record_change(
            license,
            kind="renewal",
            before=state_before,
            actor=actor,
            reason=f"Term renewed for {license.term_years} year(s)"
            + (
                f" with {license.renewal_discount_percent}% loyalty discount"
                if license.renewal_discount_percent
                else ""
            ),
            mrr_before=mrr_before,
            effective_at=at,
        )
        quote = {"next_invoice_expected": expected}
        if preview is not None:
            quote.update(stripe_coupon=coupon_id, next_invoice_stripe=preview.total)
        _audit(license, actor=actor, action="license.renewed", before=before, extra=quote)
        if preview is not None and preview.total != expected:
            record_audit(
                tenant,
                actor="system",
                action="license.renewal_charge_mismatch",
                obj=license,
                after={**quote, "difference": preview.total - expected},
            )
        announce(license)
    return license


def renew_due_terms(*, now: datetime | None = None) -> int:
    """Beat: renew every committed term that has ended (not cancelling), with the tenant's loyalty discount."""
    now = now or timezone.now()
    count = 0
    for tenant in each_tenant():  # tenant by tenant: row-level security sees one tenant's rows at a time
        count += _renew_tenant_terms(tenant, now=now)
    return count


def _renew_tenant_terms(tenant: Tenant, *, now: datetime) -> int:
    due = License.objects.for_tenant(tenant).filter(
        commitment_ends_at__lte=now + RENEWAL_LEAD,
        cancel_at_period_end=False,
        status__in=[LicenseStatus.ACTIVE, LicenseStatus.PAST_DUE],
        held_from_status="",
    )
    count = 0
    policy = current_discount_policy(tenant)
    loyalty = Decimal(policy.loyalty_percent) if policy is not None else Decimal(0)
    for license in due[:500]:
        try:
            renew_license_term(tenant, license=license, actor="system", loyalty_percent=loyalty, at=now)
            count += 1
        except Conflict:
            continue  # renewed meanwhile by another run
        except TierwiseError as exc:  # Stripe unreachable or refusing: nothing changed; the next run tries again
            log.warning("Renewal of licence %s not done yet: %s", license.pk, exc.message)
    return count
