"""Free tier -> paid tier: a licence with no price and no subscription (as the demo seeds it) buys its first period.

Against the stand-in; the first two tests with a real Celery worker and signed webhooks to the live server.
Hand-worked numbers (catalog in tests/billing/factories.py): Team is 29.00 per seat a month, SSO 5.00 per
seat a month; 3 seats of Team + SSO for the first month is 3 x 2,900 + 3 x 500 = 8,700 + 1,500 = 10,200.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.exceptions import Retry

from billing.models import LicenseChange, PlanChange, PlanChangeKind, PlanChangeState, StripeWebhookEvent
from billing.selectors import plan_change_items
from billing.services import plan_changes
from billing.services.stripe_accounts import stripe_for
from billing.stripe_client import ItemTarget, StripeUnavailable
from tests.billing.helpers import Billed, free_license
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MONTH_SECONDS = {28 * 86400, 29 * 86400, 30 * 86400, 31 * 86400}


def webhook_url(live_server, tenant) -> str:
    return f"{live_server.url}/billing/stripe/webhook/{tenant.slug}/"


def settled_or_failed(pc: PlanChange) -> PlanChange | None:
    pc.refresh_from_db()
    return pc if pc.state in (PlanChangeState.SETTLED, PlanChangeState.FAILED) else None


def subscriptions(free: Billed, standin) -> list[dict]:
    return standin.get("/v1/subscriptions", free.api_key, customer=free.license.stripe_customer_id)["data"]


def succeeded_charges(free: Billed, standin) -> list[int]:
    charges = standin.charges(free.api_key, free.license.stripe_customer_id)
    return [c["amount"] for c in charges if c["status"] == "succeeded"]


def quote_team_with_sso(free: Billed) -> PlanChange:
    return plan_changes.quote_plan_change(
        free.tenant,
        license=free.license,
        target_price=free.catalog.prices["team-month"],
        addon_prices=[free.catalog.prices["sso-month"]],
        requested_by="customer",
        reference="offer:free-1",
    )


def test_upgrading_from_free_quotes_the_whole_first_period_and_changes_the_licence_once_it_is_paid(
    world_a, standin, live_server, celery_worker_process
):
    free = free_license(world_a.tenant, world_a.account, standin, webhook_url=webhook_url(live_server, world_a.tenant))
    assert (free.license.tier.key, free.license.price_id, free.license.stripe_subscription_id) == ("free", None, "")

    quote = quote_team_with_sso(free)

    assert quote.kind == PlanChangeKind.NEW
    assert quote.quote_amount_due == quote.quote_total == 10_200  # the full first month, nothing prorated
    assert sorted((line["amount"], line["quantity"], line["proration"]) for line in quote.quote_lines) == [
        (1_500, 3, False),
        (8_700, 3, False),
    ]
    for line in quote.quote_lines:  # each line names its whole first period
        assert int((_at(line["period_end"]) - _at(line["period_start"])).total_seconds()) in MONTH_SECONDS
    assert quote.local_estimate["amount_due_now"] == 10_200  # our own arithmetic agrees with Stripe's preview
    assert quote.local_estimate["matches_stripe"] is True
    assert subscriptions(free, standin) == []  # a quote buys nothing

    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="customer")
    pc = wait_for(lambda: settled_or_failed(quote), timeout=30)

    assert pc.state == PlanChangeState.SETTLED, (pc.failure_code, pc.failure_message)
    assert pc.charge_mismatch == {} and pc.charged_amount == 10_200
    (subscription,) = subscriptions(free, standin)
    assert subscription["status"] == "active"
    assert subscription["metadata"]["tierwise_plan_change"] == str(pc.pk)
    license = free.refresh()
    assert (license.tier.key, license.price_id, license.seats, license.mrr) == (
        "team",
        free.catalog.prices["team-month"].pk,
        3,
        10_200,
    )
    assert list(license.addons.values_list("key", flat=True)) == ["sso"]
    assert license.stripe_subscription_id == subscription["id"] == pc.stripe_subscription_id
    assert license.current_period_end == _at_ts(subscription["current_period_end"])
    change = LicenseChange.objects.get(license=license, kind="upgrade")
    assert (change.mrr_before, change.mrr_after, change.reference) == (0, 10_200, "offer:free-1")
    assert change.from_state["tier"] == "free" and change.to_state["tier"] == "team"
    assert succeeded_charges(free, standin) == [10_200]
    # The webhooks (subscription created, invoice paid) reach the worker and settle nothing a second time.
    wait_for(
        lambda: (
            StripeWebhookEvent.objects.filter(tenant=world_a.tenant, event_type="invoice.paid")
            .exclude(processed_at=None)
            .exists()
        ),
        timeout=20,
    )
    assert LicenseChange.objects.filter(license=license).exclude(kind="new").count() == 1


def test_a_declined_first_payment_keeps_the_free_plan_and_the_retry_pays_the_same_invoice(
    world_a, standin, live_server, celery_worker_process
):
    free = free_license(world_a.tenant, world_a.account, standin, webhook_url=webhook_url(live_server, world_a.tenant))
    standin.set_card(free.license.stripe_customer_id, "4000000000000002")
    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=free.license, target_price=free.catalog.prices["team-month"], requested_by="customer"
    )
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="customer")

    pc = wait_for(lambda: settled_or_failed(quote), timeout=30)
    assert (pc.state, pc.failure_code) == (PlanChangeState.FAILED, "card_declined")
    license = free.refresh()
    assert (license.tier.key, license.price_id, license.mrr, license.stripe_subscription_id) == ("free", None, 0, "")
    (subscription,) = subscriptions(free, standin)
    assert subscription["status"] == "incomplete"  # Stripe keeps it, unpaid, for the retry
    (invoice,) = standin.invoices(free.api_key, free.license.stripe_customer_id)
    assert (invoice["id"], invoice["status"]) == (pc.stripe_invoice_id, "open")
    assert succeeded_charges(free, standin) == []

    standin.set_card(free.license.stripe_customer_id, "4242424242424242")  # the customer fixes the card
    plan_changes.retry_plan_change(world_a.tenant, plan_change=pc, actor="customer")
    wait_for(lambda: quote if (quote.refresh_from_db() or quote.state == PlanChangeState.SETTLED) else None, timeout=30)

    assert free.refresh().tier.key == "team"
    assert [s["id"] for s in subscriptions(free, standin)] == [subscription["id"]]  # never a second subscription
    invoices = standin.invoices(free.api_key, free.license.stripe_customer_id)
    assert [(i["id"], i["status"]) for i in invoices] == [(pc.stripe_invoice_id, "paid")]
    assert succeeded_charges(free, standin) == [8_700]

    from billing import tasks  # a duplicated retry (redelivery, double click) charges nothing

    tasks.retry_plan_change_payment.delay(world_a.tenant.pk, pc.pk).get(timeout=20)
    tasks.submit_plan_change.delay(world_a.tenant.pk, pc.pk).get(timeout=20)
    assert succeeded_charges(free, standin) == [8_700]
    assert len(subscriptions(free, standin)) == 1


def test_a_lost_answer_to_the_create_call_is_found_again_instead_of_subscribing_twice(world_a, standin, settings):
    free = free_license(world_a.tenant, world_a.account, standin)
    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=free.license, target_price=free.catalog.prices["team-month"], requested_by="customer"
    )
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: the confirm's task cannot reach Stripe
    with pytest.raises((StripeUnavailable, Retry)):
        plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="customer")
    plan_changes.give_up_plan_change(world_a.tenant, plan_change_id=quote.pk, message="unreachable")
    quote.refresh_from_db()
    assert quote.state == PlanChangeState.FAILED and free.refresh().tier.key == "free"

    # Suppose the call had reached Stripe and only the answer was lost (and Stripe's 24 h replay has passed):
    settings.STRIPE_API_BASE = standin.url
    stripe_for(world_a.tenant).create_subscription(
        customer_id=free.license.stripe_customer_id,
        items=[ItemTarget(c.price_id or "", c.quantity or 1) for c in plan_change_items(world_a.tenant, quote)],
        idempotency_key="a key Stripe has forgotten",
        metadata={"tierwise_plan_change": str(quote.pk)},
        payment_behavior="allow_incomplete",
    )
    plan_changes.retry_plan_change(world_a.tenant, plan_change=quote, actor="customer")

    quote.refresh_from_db()
    assert quote.state == PlanChangeState.SETTLED and quote.charge_mismatch == {}
    assert len(subscriptions(free, standin)) == 1
    assert succeeded_charges(free, standin) == [8_700]
    assert free.refresh().stripe_subscription_id == quote.stripe_subscription_id


def test_a_new_quote_withdraws_an_unpaid_first_purchase_so_it_can_never_be_paid_later(world_a, standin):
    free = free_license(world_a.tenant, world_a.account, standin)
    standin.set_card(free.license.stripe_customer_id, "4000000000000002")
    first = plan_changes.quote_plan_change(
        world_a.tenant, license=free.license, target_price=free.catalog.prices["business-month"], requested_by="c"
    )
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=first, actor="c")
    first.refresh_from_db()
    assert first.state == PlanChangeState.FAILED

    second = plan_changes.quote_plan_change(
        world_a.tenant, license=free.license, target_price=free.catalog.prices["team-year"], requested_by="c"
    )

    first.refresh_from_db()
    assert first.state == PlanChangeState.CANCELED
    gateway = stripe_for(world_a.tenant)
    assert gateway.retrieve_invoice(first.stripe_invoice_id).status == "void"
    assert gateway.retrieve_subscription(first.stripe_subscription_id).status == "canceled"
    assert (second.kind, second.quote_amount_due) == (PlanChangeKind.NEW, 3 * 29_000)  # a year, paid up front


def test_a_free_licence_without_a_stripe_customer_gets_one_when_quoted_and_an_expired_quote_is_refused(
    world_a, standin
):
    free = free_license(world_a.tenant, world_a.account, standin)
    type(free.license).objects.filter(pk=free.license.pk).update(stripe_customer_id="")
    free.refresh()
    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=free.license, target_price=free.catalog.prices["team-month"], requested_by="c"
    )
    customer_id = free.refresh().stripe_customer_id
    assert customer_id.startswith("cus_") and quote.quote_amount_due == 8_700
    PlanChange.objects.filter(pk=quote.pk).update(quote_expires_at=quote.quoted_at - timedelta(seconds=1))
    from billing.errors import Conflict

    with pytest.raises(Conflict):
        plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="c")
    assert subscriptions(free, standin) == [] and free.refresh().tier.key == "free"


def _at(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value)


def _at_ts(value: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(value, tz=UTC)


def test_a_new_quote_first_settles_an_earlier_purchase_that_went_through_unseen(world_a, standin, settings):
    free = free_license(world_a.tenant, world_a.account, standin)
    first = plan_changes.quote_plan_change(
        world_a.tenant, license=free.license, target_price=free.catalog.prices["team-month"], requested_by="c"
    )
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    with pytest.raises((StripeUnavailable, Retry)):
        plan_changes.confirm_plan_change(world_a.tenant, plan_change=first, actor="c")
    plan_changes.give_up_plan_change(world_a.tenant, plan_change_id=first.pk, message="unreachable")
    settings.STRIPE_API_BASE = standin.url
    first.refresh_from_db()
    stripe_for(world_a.tenant).create_subscription(  # the call had reached Stripe and was paid
        customer_id=free.license.stripe_customer_id,
        items=[ItemTarget(c.price_id or "", c.quantity or 1) for c in plan_change_items(world_a.tenant, first)],
        idempotency_key=first.idempotency_key,
        metadata={"tierwise_plan_change": str(first.pk)},
        payment_behavior="allow_incomplete",
    )
    from billing.errors import Conflict

    with pytest.raises(Conflict):
        plan_changes.quote_plan_change(
            world_a.tenant, license=free.refresh(), target_price=free.catalog.prices["business-month"]
        )
    first.refresh_from_db()
    assert first.state == PlanChangeState.SETTLED  # not canceled: the customer paid for it
    assert free.refresh().tier.key == "team" and succeeded_charges(free, standin) == [8_700]
