"""The upgrade hand-off end to end: stand-in Stripe, a real Celery worker, real signed webhooks to the live server."""

from __future__ import annotations

import pytest

from billing.models import LicenseChange, PlanChange, PlanChangeState, StripeWebhookEvent, WebhookEventState
from billing.services import plan_changes
from tests.billing.helpers import billed_license
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def webhook_url(live_server, tenant) -> str:
    return f"{live_server.url}/billing/stripe/webhook/{tenant.slug}/"


def settled_or_failed(pc: PlanChange):
    pc.refresh_from_db()
    return pc if pc.state in (PlanChangeState.SETTLED, PlanChangeState.FAILED) else None


def test_upgrade_is_quoted_by_stripe_confirmed_charged_once_and_settles_the_licence(
    world_a, standin, live_server, celery_worker_process
):
    billed = billed_license(
        world_a.tenant, world_a.account, standin, webhook_url=webhook_url(live_server, world_a.tenant)
    )
    business = billed.catalog.prices["business-month"]

    quote = plan_changes.quote_plan_change(
        world_a.tenant,
        license=billed.license,
        target_price=business,
        requested_by=world_a.staff["csm"],
        reference="offer:42",
    )

    # Stripe's preview, every line kept: credit for unused Team time, charge for remaining Business time.
    assert quote.state == PlanChangeState.QUOTED
    assert [line["amount"] < 0 for line in quote.quote_lines] == [True, False]
    assert quote.quote_amount_due == sum(line["amount"] for line in quote.quote_lines) > 0
    assert quote.proration_date is not None
    assert quote.local_estimate["matches_stripe"] is True  # our pure proration agrees with Stripe's
    invoices_before = len(standin.invoices(billed.api_key, billed.license.stripe_customer_id))

    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor=world_a.staff["csm"])
    pc = wait_for(lambda: settled_or_failed(quote), timeout=30)

    assert pc.state == PlanChangeState.SETTLED, (pc.failure_code, pc.failure_message)
    assert pc.charge_mismatch == {}
    assert pc.charged_amount == pc.quote_amount_due
    license = billed.refresh()
    assert (license.tier.key, license.price_id, license.seats) == ("business", business.pk, 3)
    change = LicenseChange.objects.get(license=license, kind="upgrade")
    assert (change.mrr_before, change.mrr_after) == (3 * 2900, 3 * 9900)
    assert change.stripe_invoice_id == pc.stripe_invoice_id
    assert change.reference == "offer:42"
    invoices = standin.invoices(billed.api_key, license.stripe_customer_id)
    assert len(invoices) == invoices_before + 1
    paid = [c for c in standin.charges(billed.api_key, license.stripe_customer_id) if c["status"] == "succeeded"]
    assert [c["amount"] for c in paid].count(pc.quote_amount_due) == 1
    # The webhooks came too, were stored once by id, and processed by the worker without a second settlement.
    wait_for(
        lambda: StripeWebhookEvent.objects.filter(
            tenant=world_a.tenant, event_type="invoice.paid", state=WebhookEventState.PROCESSED
        ).exists(),
        timeout=20,
    )
    assert LicenseChange.objects.filter(license=license, kind="upgrade").count() == 1


def test_declined_card_leaves_the_licence_alone_and_a_retry_pays_the_same_invoice(
    world_a, standin, live_server, celery_worker_process
):
    billed = billed_license(
        world_a.tenant, world_a.account, standin, webhook_url=webhook_url(live_server, world_a.tenant)
    )
    customer = billed.license.stripe_customer_id
    standin.set_card(customer, "4000000000000002")
    quote = plan_changes.quote_plan_change(
        world_a.tenant,
        license=billed.license,
        target_price=billed.catalog.prices["business-month"],
        requested_by="test",
    )
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="test")

    pc = wait_for(lambda: settled_or_failed(quote), timeout=30)
    assert (pc.state, pc.failure_code) == (PlanChangeState.FAILED, "card_declined")
    assert billed.refresh().tier.key == "team"
    assert not LicenseChange.objects.filter(kind="upgrade").exists()
    invoices_after_failure = standin.invoices(billed.api_key, customer)
    assert [i["status"] for i in invoices_after_failure].count("open") == 1

    standin.set_card(customer, "4242424242424242")  # the customer fixes their card
    plan_changes.retry_plan_change(world_a.tenant, plan_change=pc, actor="test")
    pc = wait_for(
        lambda: quote if (quote.refresh_from_db() or quote.state == PlanChangeState.SETTLED) else None, timeout=30
    )

    assert billed.refresh().tier.key == "business"
    invoices = standin.invoices(billed.api_key, customer)
    assert len(invoices) == len(invoices_after_failure)  # no second invoice
    assert [i["status"] for i in invoices] == ["paid", "paid"]
    charges = standin.charges(billed.api_key, customer)
    upgrade_charges = [c for c in charges if c["amount"] == pc.quote_amount_due]
    assert sorted(c["status"] for c in upgrade_charges) == ["failed", "succeeded"]

    # A duplicated retry task (redelivery, double click) changes nothing and charges nothing.
    from billing import tasks

    tasks.retry_plan_change_payment.delay(world_a.tenant.pk, pc.pk).get(timeout=20)
    assert len(standin.charges(billed.api_key, customer)) == len(charges)
    assert LicenseChange.objects.filter(kind="upgrade").count() == 1
