"""Against the stand-in without a worker (eager tasks): downgrades, catalog sync, cancel and reactivate."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.exceptions import Retry

from billing.errors import Conflict, InvalidInput
from billing.models import LicenseChange, PlanChangeState, StripePrice
from billing.selectors import plan_change_items
from billing.services import licenses, plan_changes
from billing.services.catalog_sync import ensure_stripe_price, sync_stripe_catalog
from billing.services.stripe_accounts import stripe_for
from billing.stripe_client import StripeUnavailable
from catalog.models import GovernanceState, Price
from tests.billing.factories import configure_stripe, make_catalog
from tests.billing.helpers import billed_license

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_downgrade_waits_for_the_period_end_then_changes_stripe_without_a_charge(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin, price_key="business-month")
    period_end = billed.license.current_period_end
    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=billed.license, target_price=billed.catalog.prices["team-month"], requested_by="t"
    )
    assert (quote.kind, quote.quote_amount_due, quote.effective_at) == ("downgrade", 0, period_end)
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="t")
    quote.refresh_from_db()
    assert quote.state == PlanChangeState.SCHEDULED
    invoices = len(standin.invoices(billed.api_key, billed.license.stripe_customer_id))

    assert plan_changes.apply_due_plan_changes(now=period_end - timedelta(days=3)) == 0
    plan_changes.apply_due_plan_changes(now=period_end - timedelta(minutes=30))  # Stripe first, no proration
    quote.refresh_from_db()
    assert quote.state == PlanChangeState.SUBMITTED
    subscription = stripe_for(world_a.tenant).retrieve_subscription(billed.license.stripe_subscription_id)
    team_price = StripePrice.objects.get(price=billed.catalog.prices["team-month"]).stripe_price_id
    assert subscription.quantities() == {team_price: 3}
    assert billed.refresh().tier.key == "business"  # the customer keeps what they paid for until the end

    plan_changes.apply_due_plan_changes(now=period_end + timedelta(seconds=1))
    quote.refresh_from_db()
    assert quote.state == PlanChangeState.SETTLED
    assert billed.refresh().tier.key == "team"
    change = LicenseChange.objects.get(kind="downgrade")
    assert (change.mrr_before, change.mrr_after) == (3 * 9900, 3 * 2900)
    assert len(standin.invoices(billed.api_key, billed.license.stripe_customer_id)) == invoices  # no refund, no charge


def test_a_second_change_is_refused_while_one_is_in_flight_and_unpublished_prices_are_refused(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin, price_key="business-month")
    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=billed.license, target_price=billed.catalog.prices["team-month"], requested_by="t"
    )
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="t")
    with pytest.raises(Conflict):
        plan_changes.quote_plan_change(
            world_a.tenant, license=billed.license, target_price=billed.catalog.prices["team-year"], requested_by="t"
        )
    draft = Price.objects.create(
        tenant=world_a.tenant,
        tier=billed.catalog.tiers["business"],
        key="draft",
        interval="month",
        amount=1,
        state=GovernanceState.DRAFT,
    )
    with pytest.raises(InvalidInput) as excinfo:
        plan_changes.quote_plan_change(world_a.tenant, license=billed.license, target_price=draft, requested_by="t")
    assert "target_price" in excinfo.value.details


def test_monthly_to_annual_resets_the_cycle_and_quote_equals_charge(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    annual = billed.catalog.prices["team-year"]
    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=billed.license, target_price=annual, requested_by="t"
    )
    assert quote.kind == "interval"
    assert [line["amount"] for line in quote.quote_lines][-1] == 3 * 29000
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="t")
    quote.refresh_from_db()
    assert quote.state == PlanChangeState.SETTLED and quote.charge_mismatch == {}
    license = billed.refresh()
    assert license.interval == "year"
    assert license.current_period_start == quote.proration_date
    assert (license.current_period_end - license.current_period_start).days in (365, 366)


def test_catalog_prices_reach_stripe_once_and_retired_ones_are_deactivated(world_a, standin):
    catalog = make_catalog(world_a.tenant)
    configure_stripe(world_a.tenant, secret_key="sk_test_sync")
    gateway = stripe_for(world_a.tenant)
    report = sync_stripe_catalog(world_a.tenant, gateway=gateway)
    assert report.created == 8  # 3 tiers and 1 add-on, monthly and annual
    assert sync_stripe_catalog(world_a.tenant, gateway=gateway).created == 0
    assert len(standin.get("/v1/prices", "sk_test_sync", limit=100)["data"]) == 8

    # Lost mapping row (crash between Stripe's answer and our write): found again by lookup key, not duplicated.
    price = catalog.prices["team-month"]
    stripe_id = StripePrice.objects.get(price=price).stripe_price_id
    StripePrice.objects.filter(price=price).delete()
    assert ensure_stripe_price(world_a.tenant, price=price, gateway=gateway).stripe_price_id == stripe_id
    assert len(standin.get("/v1/prices", "sk_test_sync", limit=100)["data"]) == 8

    Price.objects.filter(pk=price.pk).update(state=GovernanceState.RETIRED)
    assert sync_stripe_catalog(world_a.tenant, gateway=gateway).deactivated == 1
    assert gateway.price_is_active(stripe_id) is False


def test_cancel_at_period_end_and_reactivation_reach_stripe_and_the_end_zeroes_mrr(
    world_a, standin, live_server, celery_worker_process
):
    billed = billed_license(
        world_a.tenant,
        world_a.account,
        standin,
        webhook_url=f"{live_server.url}/billing/stripe/webhook/{world_a.tenant.slug}/",
    )
    licenses.set_cancel_at_period_end(
        world_a.tenant, license=billed.license, cancel=True, actor="t", reason="Budget cuts"
    )
    gateway = stripe_for(world_a.tenant)
    assert gateway.retrieve_subscription(billed.license.stripe_subscription_id).cancel_at_period_end
    licenses.set_cancel_at_period_end(world_a.tenant, license=billed.license, cancel=False, actor="t")
    assert not gateway.retrieve_subscription(billed.license.stripe_subscription_id).cancel_at_period_end
    licenses.set_cancel_at_period_end(world_a.tenant, license=billed.license, cancel=True, actor="t")

    standin.advance(billed.license.stripe_subscription_id)  # the period ends in Stripe; the webhook tells us
    from tests.conftest import wait_for

    wait_for(lambda: billed.refresh().status == "canceled", timeout=30)
    assert billed.license.mrr == 0
    assert LicenseChange.objects.filter(license=billed.license, kind="cancel").count() == 1


def test_a_lost_answer_and_an_unreachable_stripe_never_lead_to_a_second_charge(world_a, standin, settings):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=billed.license, target_price=billed.catalog.prices["business-month"], requested_by="t"
    )
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: the confirm's task cannot reach Stripe
    with pytest.raises((StripeUnavailable, Retry)):  # the (eager) task asks Celery to try again later
        plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="t")
    quote.refresh_from_db()
    assert (quote.state, quote.failure_code) == (PlanChangeState.PENDING, "stripe_unavailable")
    plan_changes.give_up_plan_change(world_a.tenant, plan_change_id=quote.pk, message="unreachable")
    assert billed.refresh().tier.key == "team"

    # Suppose the first call had in fact reached Stripe and only its answer was lost:
    settings.STRIPE_API_BASE = standin.url
    quote.refresh_from_db()
    stripe_for(world_a.tenant).change_subscription(
        subscription_id=billed.license.stripe_subscription_id,
        changes=plan_change_items(world_a.tenant, quote),
        proration_date=quote.proration_date,
        proration_behavior="always_invoice",
        idempotency_key=quote.idempotency_key,
    )
    invoices = len(standin.invoices(billed.api_key, billed.license.stripe_customer_id))
    plan_changes.retry_plan_change(world_a.tenant, plan_change=quote, actor="t")  # same key: Stripe replays
    quote.refresh_from_db()
    assert quote.state == PlanChangeState.SETTLED and quote.charge_mismatch == {}
    assert len(standin.invoices(billed.api_key, billed.license.stripe_customer_id)) == invoices
    paid = [c for c in standin.charges(billed.api_key, billed.license.stripe_customer_id) if c["status"] == "succeeded"]
    assert [c["amount"] for c in paid].count(quote.quote_amount_due) == 1


def test_a_card_that_needs_authentication_fails_visibly_and_leaves_the_licence(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    standin.set_card(billed.license.stripe_customer_id, "4000002500003155")
    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=billed.license, target_price=billed.catalog.prices["business-month"], requested_by="t"
    )
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="t")
    quote.refresh_from_db()
    assert (quote.state, quote.failure_code) == (PlanChangeState.FAILED, "authentication_required")
    assert billed.refresh().tier.key == "team"
    plan_changes.cancel_plan_change(world_a.tenant, plan_change=quote, actor="t", reason="Customer gave up")
    invoice = stripe_for(world_a.tenant).retrieve_invoice(quote.stripe_invoice_id)
    assert invoice.status == "void"  # Stripe drops the pending update with it
    subscription = stripe_for(world_a.tenant).retrieve_subscription(billed.license.stripe_subscription_id)
    assert not subscription.has_pending_update
