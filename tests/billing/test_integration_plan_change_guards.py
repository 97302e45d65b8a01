"""A plan change goes ahead only on the licence its quote was made from, and never while the licence is held
or after it ended (against the stand-in, eager tasks).

Hand-worked numbers: Team is 29.00 per seat a month, Business 99.00; 3 seats: Team 8,700 a month.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from accounts.models import AuditEntry
from billing import tasks
from billing.errors import BillingErrorCode, Conflict
from billing.models import LicenseChange, LicenseStatus, PlanChange, PlanChangeState
from billing.services import licenses, plan_changes
from billing.services.stripe_accounts import stripe_for
from tests.billing.helpers import Billed, billed_license

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def invoice_count(billed: Billed, standin) -> int:
    return len(standin.invoices(billed.api_key, billed.license.stripe_customer_id))


def quote(billed: Billed, price_key: str, **kwargs) -> PlanChange:
    return plan_changes.quote_plan_change(
        billed.tenant, license=billed.refresh(), target_price=billed.catalog.prices[price_key], **kwargs
    )


# --- Defect 4: a stale quote ------------------------------------------------------------------------------


def test_a_quote_made_before_another_change_settled_cannot_be_confirmed(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    upgrade = quote(billed, "business-month")
    more_seats = quote(billed, "team-month", seats=5)  # quoted from Team x3, like the upgrade
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=upgrade, actor="t")
    assert billed.refresh().tier.key == "business"
    invoices = invoice_count(billed, standin)

    with pytest.raises(Conflict) as excinfo:
        plan_changes.confirm_plan_change(world_a.tenant, plan_change=more_seats, actor="t")

    assert excinfo.value.code == BillingErrorCode.QUOTE_STALE == "quote_stale"
    assert "new quote" in excinfo.value.message
    more_seats.refresh_from_db()
    assert more_seats.state == PlanChangeState.QUOTED
    license = billed.refresh()
    assert (license.tier.key, license.seats, license.mrr) == ("business", 3, 29_700)
    assert invoice_count(billed, standin) == invoices  # nothing sent to Stripe


def test_a_quote_is_stale_once_the_add_ons_it_was_made_from_changed(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    sso = billed.catalog.prices["sso-month"]
    seats = quote(billed, "team-month", seats=4)
    plan_changes.confirm_plan_change(
        world_a.tenant, plan_change=quote(billed, "team-month", addon_prices=[sso]), actor="t"
    )
    assert list(billed.refresh().addons.values_list("key", flat=True)) == ["sso"]
    with pytest.raises(Conflict) as excinfo:
        plan_changes.confirm_plan_change(world_a.tenant, plan_change=seats, actor="t")
    assert excinfo.value.code == BillingErrorCode.QUOTE_STALE


# --- Defect 3: held or ended licences -------------------------------------------------------------------------


def test_a_suspended_licence_cannot_confirm_a_quote_and_keeps_an_mrr_of_zero(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    upgrade = quote(billed, "business-month")
    licenses.suspend_license(world_a.tenant, license=billed.license, actor="csm", reason="Dispute")

    with pytest.raises(Conflict) as excinfo:
        plan_changes.confirm_plan_change(world_a.tenant, plan_change=upgrade, actor="t")

    assert excinfo.value.code == BillingErrorCode.LICENSE_NOT_ACTIVE
    license = billed.refresh()
    assert (license.status, license.tier.key, license.mrr) == (LicenseStatus.SUSPENDED, "team", 0)


def test_a_change_in_flight_when_the_licence_is_revoked_is_abandoned_not_charged(world_a, standin, monkeypatch):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    upgrade = quote(billed, "business-month")
    with monkeypatch.context() as queued:  # confirmed; its task still waits in the queue
        queued.setattr(tasks.submit_plan_change, "delay", lambda *args: None)
        plan_changes.confirm_plan_change(world_a.tenant, plan_change=upgrade, actor="t")
    licenses.revoke_license(world_a.tenant, license=billed.license, actor="csm", reason="Abuse")
    invoices = invoice_count(billed, standin)

    plan_changes.submit_plan_change(world_a.tenant, plan_change_id=upgrade.pk)  # the task runs now

    upgrade.refresh_from_db()
    assert (upgrade.state, upgrade.failure_code) == (PlanChangeState.CANCELED, "license_held")
    assert invoice_count(billed, standin) == invoices  # Stripe was never asked
    items = stripe_for(world_a.tenant).retrieve_subscription(billed.license.stripe_subscription_id).quantities()
    assert list(items.values()) == [3] and len(items) == 1
    license = billed.refresh()
    assert (license.status, license.tier.key, license.mrr) == (LicenseStatus.CANCELED, "team", 0)
    assert AuditEntry.objects.get(action="plan_change.abandoned", object_id=str(upgrade.pk)).after["code"] == (
        "license_held"
    )
    assert not LicenseChange.objects.filter(kind="upgrade").exists()


def test_a_failed_payment_cannot_be_retried_once_the_licence_is_suspended(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    standin.set_card(billed.license.stripe_customer_id, "4000000000000002")  # declined
    upgrade = quote(billed, "business-month")
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=upgrade, actor="t")
    upgrade.refresh_from_db()
    assert upgrade.state == PlanChangeState.FAILED
    standin.set_card(billed.license.stripe_customer_id, "4242424242424242")
    licenses.suspend_license(world_a.tenant, license=billed.license, actor="csm", reason="Dispute")

    with pytest.raises(Conflict) as excinfo:
        plan_changes.retry_plan_change(world_a.tenant, plan_change=upgrade, actor="customer")

    assert excinfo.value.code == BillingErrorCode.LICENSE_NOT_ACTIVE
    upgrade.refresh_from_db()
    assert upgrade.state == PlanChangeState.FAILED
    assert billed.refresh().mrr == 0 and billed.license.tier.key == "team"


def test_a_scheduled_downgrade_does_not_settle_onto_a_licence_that_ended(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin, price_key="business-month", days_into_period=20)
    downgrade = quote(billed, "team-month")
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=downgrade, actor="t")
    period_end = billed.license.current_period_end
    plan_changes.apply_due_plan_changes(now=period_end - timedelta(minutes=30))  # sent to Stripe before the end
    downgrade.refresh_from_db()
    assert downgrade.state == PlanChangeState.SUBMITTED
    # The subscription ends before the period does (deleted in Stripe; the webhook ends the licence).
    requests.delete(
        f"{standin.url}/v1/subscriptions/{billed.license.stripe_subscription_id}",
        headers={"Authorization": f"Bearer {billed.api_key}"},
        timeout=10,
    ).raise_for_status()
    licenses.end_license(world_a.tenant, license=billed.license, actor="stripe", reason="Subscription ended")

    plan_changes.apply_due_plan_changes(now=period_end + timedelta(seconds=1))

    downgrade.refresh_from_db()
    assert (downgrade.state, downgrade.failure_code) == (PlanChangeState.CANCELED, "license_ended")
    license = billed.refresh()
    assert (license.status, license.tier.key, license.mrr) == (LicenseStatus.CANCELED, "business", 0)
    # No fake 0 -> 8,700 "downgrade" in the history NRR is computed from.
    assert list(LicenseChange.objects.filter(license=license).values_list("kind", "mrr_after")) == [
        ("cancel", 0),
    ]
