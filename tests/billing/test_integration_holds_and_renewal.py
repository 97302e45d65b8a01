"""Against the stand-in (eager tasks): a hold stops collection in Stripe and restore resumes it; the renewal
loyalty discount is a coupon on the subscription, so what Stripe charges is what we quoted.

Hand-worked numbers: Team is 29.00 per seat a month, Business 99.00; 3 seats.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from billing.errors import BillingUnavailable
from billing.models import LicenseChange, LicenseStatus, PlanChangeState
from billing.services import licenses, plan_changes
from billing.services.stripe_accounts import stripe_for
from catalog.models import DiscountPolicy, GovernanceState
from tests.billing.helpers import Billed, billed_license

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def paid_amounts(billed: Billed, standin) -> list[int]:
    charges = standin.charges(billed.api_key, billed.license.stripe_customer_id)
    return sorted(c["amount"] for c in charges if c["status"] == "succeeded")


def latest_invoice(billed: Billed, standin) -> dict:
    return max(standin.invoices(billed.api_key, billed.license.stripe_customer_id), key=lambda i: i["number"])


# --- Revoke / suspend / restore --------------------------------------------------------------------------


def test_a_suspension_pauses_collection_in_stripe_and_restore_resumes_it_with_the_mrr_it_had(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    gateway = stripe_for(world_a.tenant)
    sub_id = billed.license.stripe_subscription_id
    assert billed.license.mrr == 8_700 and paid_amounts(billed, standin) == [8_700]

    licenses.suspend_license(world_a.tenant, license=billed.license, actor=world_a.staff["csm"], reason="Dispute")

    license = billed.refresh()
    assert (license.status, license.held_from_status, license.mrr) == (LicenseStatus.SUSPENDED, "active", 0)
    assert gateway.retrieve_subscription(sub_id).collection_paused
    change = LicenseChange.objects.get(license=license, kind="suspend")
    assert (change.mrr_before, change.mrr_after, change.reason) == (8_700, 0, "Dispute")
    audit = AuditEntry.objects.get(tenant=world_a.tenant, action="license.suspended")
    assert audit.after["stripe_collection"] == "paused" and audit.after["mrr"] == 0

    standin.advance(sub_id)  # the period turns while suspended: Stripe draws up the invoice and voids it
    invoice = latest_invoice(billed, standin)
    assert (invoice["billing_reason"], invoice["status"], invoice["amount_paid"]) == ("subscription_cycle", "void", 0)
    assert paid_amounts(billed, standin) == [8_700]  # nothing collected

    licenses.restore_license(world_a.tenant, license=license, actor=world_a.staff["csm"], reason="Dispute won")

    license = billed.refresh()
    assert (license.status, license.held_from_status, license.mrr) == (LicenseStatus.ACTIVE, "", 8_700)
    assert not gateway.retrieve_subscription(sub_id).collection_paused
    restore = LicenseChange.objects.get(license=license, kind="restore")
    assert (restore.mrr_before, restore.mrr_after) == (0, 8_700)
    assert AuditEntry.objects.get(action="license.restored").after["stripe_collection"] == "resumed"
    standin.advance(sub_id)
    assert latest_invoice(billed, standin)["status"] == "paid"
    assert paid_amounts(billed, standin) == [8_700, 8_700]

    # A second cycle (revoke this time) pauses and resumes again: its Stripe calls carry keys of their own.
    licenses.revoke_license(world_a.tenant, license=license, actor="t", reason="Abuse")
    assert gateway.retrieve_subscription(sub_id).collection_paused and billed.refresh().mrr == 0
    licenses.restore_license(world_a.tenant, license=license, actor="t", reason="Cleared")
    assert not gateway.retrieve_subscription(sub_id).collection_paused and billed.refresh().mrr == 8_700


def test_a_hold_that_cannot_reach_stripe_changes_nothing(world_a, standin, settings):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    with pytest.raises(BillingUnavailable):
        licenses.revoke_license(world_a.tenant, license=billed.license, actor="t", reason="Abuse")
    license = billed.refresh()
    assert (license.status, license.held_from_status, license.mrr) == (LicenseStatus.ACTIVE, "", 8_700)
    assert not LicenseChange.objects.filter(license=license, kind="revoke").exists()
    settings.STRIPE_API_BASE = standin.url
    assert not stripe_for(world_a.tenant).retrieve_subscription(license.stripe_subscription_id).collection_paused


def test_a_plan_change_is_refused_while_held(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    licenses.suspend_license(world_a.tenant, license=billed.license, actor="t", reason="Dispute")
    from billing.errors import Conflict

    with pytest.raises(Conflict):
        plan_changes.quote_plan_change(
            world_a.tenant, license=billed.refresh(), target_price=billed.catalog.prices["business-month"]
        )


# --- Renewal with the loyalty discount --------------------------------------------------------------------


def test_the_renewal_loyalty_discount_is_charged_by_stripe_exactly_as_quoted(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin, days_into_period=20)
    license = billed.license
    term_end = license.current_period_end
    license.term_years, license.commitment_ends_at = 3, term_end
    license.save()
    DiscountPolicy.objects.create(
        tenant=world_a.tenant,
        key="standard",
        name="Standard",
        loyalty_percent=Decimal("5.00"),
        state=GovernanceState.PUBLISHED,
        published_at=timezone.now(),
    )

    assert licenses.renew_due_terms(now=term_end - timedelta(days=2)) == 0  # not yet
    assert licenses.renew_due_terms(now=term_end - timedelta(hours=2)) == 1  # a day ahead, before Stripe bills
    assert licenses.renew_due_terms(now=term_end - timedelta(hours=1)) == 0  # once

    license = billed.refresh()
    # 3 x 2,900 = 8,700; 5 % of it is 435: the customer pays 8,265 a month from the new term.
    assert (license.renewal_discount_percent, license.mrr) == (Decimal("5.00"), 8_265)
    assert license.commitment_ends_at.year == term_end.year + 3
    subscription = stripe_for(world_a.tenant).retrieve_subscription(license.stripe_subscription_id)
    assert subscription.discount_count == 1
    renewed = AuditEntry.objects.get(tenant=world_a.tenant, action="license.renewed")
    assert renewed.after["next_invoice_stripe"] == renewed.after["next_invoice_expected"] == 8_265
    assert renewed.after["stripe_coupon"] == "tw-loyalty-500"
    assert not AuditEntry.objects.filter(action="license.renewal_charge_mismatch").exists()

    # The first period of the new term is paid with the discount (the stand-in's clock stays; its period turns).
    standin.advance(license.stripe_subscription_id)
    assert latest_invoice(billed, standin)["amount_paid"] == 8_265
    period = stripe_for(world_a.tenant).retrieve_subscription(license.stripe_subscription_id)
    assert period.current_period_start is not None and period.current_period_end is not None

    # Mid-period upgrade under the discount, at exactly half that period: Stripe discounts the proration lines too
    # (the credit gives back what the period was paid with: 5 % off).
    # Credit: -8,700 / 2 = -4,350, less 5 % (-217.5 -> -218) = -4,132. Charge: 29,700 / 2 = 14,850 less 743
    # (742.5 rounds up) = 14,107. Due now: 14,107 - 4,132 = 9,975.
    half = period.current_period_start + (period.current_period_end - period.current_period_start) / 2
    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=license, target_price=billed.catalog.prices["business-month"], at=half
    )
    assert [(line["amount"], line["discount"]) for line in quote.quote_lines] == [(-4_350, -218), (14_850, 743)]
    assert quote.quote_amount_due == 9_975 == quote.local_estimate["amount_due_now"]
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="t")
    quote.refresh_from_db()
    assert quote.state == PlanChangeState.SETTLED and quote.charge_mismatch == {}
    assert quote.charged_amount == 9_975
    license = billed.refresh()
    assert license.mrr == 29_700 - 1_485  # the discount stays with the licence: 28,215

    # The term's next invoice: Business for 3 seats less 5 %, what our MRR says.
    standin.advance(license.stripe_subscription_id)
    invoice = latest_invoice(billed, standin)
    assert (invoice["subtotal"], invoice["total"], invoice["amount_paid"]) == (29_700, 28_215, 28_215)
    assert invoice["total_discount_amounts"][0]["amount"] == 1_485


def test_a_renewal_without_loyalty_takes_an_old_discount_off_the_subscription(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    license = billed.license
    license.term_years, license.commitment_ends_at = 2, timezone.now()
    license.save()
    licenses.renew_license_term(world_a.tenant, license=license, actor="t", loyalty_percent=Decimal("10"))
    gateway = stripe_for(world_a.tenant)
    assert gateway.retrieve_subscription(license.stripe_subscription_id).discount_count == 1
    assert billed.refresh().mrr == 8_700 - 870

    license = billed.refresh()
    license.commitment_ends_at = timezone.now()
    license.save()
    licenses.renew_license_term(world_a.tenant, license=license, actor="t", loyalty_percent=Decimal(0))
    assert gateway.retrieve_subscription(license.stripe_subscription_id).discount_count == 0
    assert billed.refresh().mrr == 8_700
    standin.advance(license.stripe_subscription_id)
    assert latest_invoice(billed, standin)["amount_paid"] == 8_700
