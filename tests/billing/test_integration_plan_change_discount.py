"""A plan change with an offer's discount and a multi-year term, end to end: stand-in Stripe, a real Celery
worker, real signed webhooks. The discount is a coupon on the subscription, so Stripe's preview, the change's
invoice and the renewal carry it; what was quoted is what is charged, at the change and at the renewal.

Hand-worked numbers: Team is 29.00 per seat a month or 290.00 a year; 3 seats. Annual: 3 x 29,000 = 87,000.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.errors import InvalidInput
from billing.models import LicenseChange, PlanChange, PlanChangeState
from billing.proration import add_interval
from billing.services import licenses, plan_changes
from billing.services.stripe_accounts import stripe_for
from catalog.models import DiscountPolicy, GovernanceState
from tests.billing.helpers import Billed, billed_license
from tests.conftest import wait_for
from upgrades.offers.pricing import quote_from_plan_change

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def webhook_url(live_server, tenant) -> str:
    return f"{live_server.url}/billing/stripe/webhook/{tenant.slug}/"


def settled_or_failed(pc: PlanChange):
    pc.refresh_from_db()
    return pc if pc.state in (PlanChangeState.SETTLED, PlanChangeState.FAILED) else None


def latest_invoice(billed: Billed, standin) -> dict:
    return max(standin.invoices(billed.api_key, billed.license.stripe_customer_id), key=lambda i: i["number"])


def policy(tenant, **fields) -> DiscountPolicy:
    return DiscountPolicy.objects.create(
        tenant=tenant,
        key="standard",
        name="Standard",
        state=GovernanceState.PUBLISHED,
        published_at=timezone.now(),
        **fields,
    )


def test_a_discounted_annual_option_is_charged_as_quoted_and_renews_at_the_discounted_amount(
    world_a, standin, live_server, celery_worker_process
):
    billed = billed_license(
        world_a.tenant, world_a.account, standin, webhook_url=webhook_url(live_server, world_a.tenant)
    )
    annual = billed.catalog.prices["team-year"]

    quote = plan_changes.quote_plan_change(
        world_a.tenant,
        license=billed.license,
        target_price=annual,
        reference="offer:7",
        requested_by="test",
        discount_percent=Decimal("10"),
        discount_explanation="10 % for 3 seats",
        term_years=1,
    )

    # Stripe's preview: the unused month credited as it was paid (no discount then), the year charged less 10 %.
    assert (quote.discount_percent, quote.term_years, quote.discount_explanation) == (
        Decimal("10.00"),
        1,
        "10 % for 3 seats",
    )
    credit, charge = sorted(quote.quote_lines, key=lambda line: line["amount"])
    assert (charge["amount"], charge["discount"]) == (87_000, 8_700)
    assert credit["amount"] < 0 and credit["discount"] == 0
    assert quote.quote_amount_due == sum(line["amount"] - line["discount"] for line in quote.quote_lines)
    assert quote.local_estimate["matches_stripe"] is True  # billing's estimate takes the coupon off as Stripe does
    shown = quote_from_plan_change(quote)
    assert shown["amount_due_now"] == quote.quote_amount_due
    assert shown["next_renewal_amount"] == 87_000 - 8_700  # the year after, still with the discount: 78,300

    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="test")
    pc = wait_for(lambda: settled_or_failed(quote), timeout=30)

    assert pc.state == PlanChangeState.SETTLED, (pc.failure_code, pc.failure_message)
    assert pc.charge_mismatch == {}
    assert pc.charged_amount == pc.quote_amount_due
    paid = [c["amount"] for c in standin.charges(billed.api_key, billed.license.stripe_customer_id)]
    assert paid.count(pc.quote_amount_due) == 1
    license = billed.refresh()
    assert (license.interval, license.term_years, license.commitment_ends_at) == ("year", 1, None)
    assert license.renewal_discount_percent == Decimal("10.00")
    assert license.mrr == 78_300 // 12  # 6,525 a month
    change = LicenseChange.objects.get(license=license, kind="interval")
    assert change.to_state["renewal_discount_percent"] == "10.00"
    assert change.from_state["renewal_discount_percent"] == "0"
    assert change.to_state["term_years"] == 1

    # The renewal: Stripe draws up the next year with the coupon, the amount the offer showed.
    standin.advance(license.stripe_subscription_id)
    invoice = latest_invoice(billed, standin)
    assert (invoice["subtotal"], invoice["total"], invoice["amount_paid"]) == (87_000, 78_300, 78_300)


def test_a_two_year_term_commits_the_licence_and_its_renewal_takes_the_loyalty_discount(
    world_a, standin, live_server, celery_worker_process
):
    billed = billed_license(
        world_a.tenant, world_a.account, standin, webhook_url=webhook_url(live_server, world_a.tenant)
    )
    policy(world_a.tenant, term_rules=[{"years": 2, "percent": "15"}], loyalty_percent=Decimal("5"))

    quote = plan_changes.quote_plan_change(
        world_a.tenant,
        license=billed.license,
        target_price=billed.catalog.prices["team-year"],
        requested_by="test",
        discount_percent=Decimal("15"),
        discount_explanation="15 % for a 2-year commitment",
        term_years=2,
    )
    charge = max(quote.quote_lines, key=lambda line: line["amount"])
    assert (charge["amount"], charge["discount"]) == (87_000, 13_050)
    assert quote.local_estimate["matches_stripe"] is True
    assert quote_from_plan_change(quote)["next_renewal_amount"] == 73_950  # year two of the term

    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="test")
    pc = wait_for(lambda: settled_or_failed(quote), timeout=30)
    assert pc.state == PlanChangeState.SETTLED, (pc.failure_code, pc.failure_message)
    assert pc.charge_mismatch == {} and pc.charged_amount == pc.quote_amount_due

    license = billed.refresh()
    assert license.term_years == 2
    assert license.commitment_ends_at == add_interval(license.current_period_start, "year", 2)
    assert license.renewal_discount_percent == Decimal("15.00")
    change = LicenseChange.objects.get(license=license, kind="interval")
    assert change.to_state["term_years"] == 2
    assert change.to_state["commitment_ends_at"] == license.commitment_ends_at.isoformat()

    # Year two of the term: Stripe's next invoice is the discounted amount the offer showed.
    gateway = stripe_for(world_a.tenant)
    upcoming = gateway.preview_next_invoice(
        customer_id=license.stripe_customer_id, subscription_id=license.stripe_subscription_id
    )
    assert (upcoming.subtotal, upcoming.total) == (87_000, 73_950)

    # At the term's end the licence renews for two more years with the loyalty discount in place of the offer's
    # (the stand-in's clock does not move, so the sweep runs "a day ahead" of the term's end and Stripe bills next).
    end = license.commitment_ends_at
    assert licenses.renew_due_terms(now=end - timedelta(hours=2)) == 1
    license = billed.refresh()
    assert license.renewal_discount_percent == Decimal("5.00")
    assert license.commitment_ends_at == add_interval(end, "year", 2)
    standin.advance(license.stripe_subscription_id)
    assert latest_invoice(billed, standin)["amount_paid"] == 87_000 - 4_350


def test_a_declined_discounted_change_that_is_cancelled_gives_the_subscription_its_earlier_discount_back(
    world_a, standin, live_server, celery_worker_process
):
    billed = billed_license(
        world_a.tenant, world_a.account, standin, webhook_url=webhook_url(live_server, world_a.tenant)
    )
    gateway = stripe_for(world_a.tenant)
    standin.set_card(billed.license.stripe_customer_id, "4000000000000002")
    quote = plan_changes.quote_plan_change(
        world_a.tenant,
        license=billed.license,
        target_price=billed.catalog.prices["business-month"],
        requested_by="test",
        discount_percent=Decimal("20"),
    )
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="test")
    pc = wait_for(lambda: settled_or_failed(quote), timeout=30)
    assert (pc.state, pc.failure_code) == (PlanChangeState.FAILED, "card_declined")
    assert gateway.retrieve_subscription(billed.license.stripe_subscription_id).discount_count == 1

    plan_changes.cancel_plan_change(world_a.tenant, plan_change=pc, actor="test", reason="customer gave up")

    assert gateway.retrieve_subscription(billed.license.stripe_subscription_id).discount_count == 0
    license = billed.refresh()
    assert (license.tier.key, license.renewal_discount_percent) == ("team", Decimal("0.00"))
    standin.set_card(license.stripe_customer_id, "4242424242424242")
    standin.advance(license.stripe_subscription_id)
    assert latest_invoice(billed, standin)["amount_paid"] == 8_700  # Team at full price, as before


def test_a_discount_or_term_that_billing_cannot_honour_is_refused_with_the_field(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    policy(world_a.tenant, term_rules=[{"years": 2, "percent": "10"}])
    cases = [
        ({"target_price": billed.catalog.prices["team-year"], "term_years": 3}, "term_years"),  # not in the policy
        ({"target_price": billed.catalog.prices["business-month"], "term_years": 2}, "term_years"),  # monthly
        ({"target_price": billed.catalog.prices["team-year"], "term_years": 0}, "term_years"),
        ({"target_price": billed.catalog.prices["team-year"], "discount_percent": Decimal("100")}, "discount_percent"),
        ({"target_price": billed.catalog.prices["team-year"], "discount_percent": Decimal("-5")}, "discount_percent"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidInput) as caught:
            plan_changes.quote_plan_change(world_a.tenant, license=billed.license, requested_by="test", **kwargs)
        assert field in caught.value.details, kwargs
    assert not PlanChange.objects.filter(license=billed.license).exists()  # nothing half-written


def test_a_new_subscription_from_a_discounted_option_is_created_with_the_coupon(world_a, standin):
    from tests.billing.helpers import free_license

    billed = free_license(world_a.tenant, world_a.account, standin)
    quote = plan_changes.quote_plan_change(
        world_a.tenant,
        license=billed.license,
        target_price=billed.catalog.prices["team-year"],
        requested_by="test",
        discount_percent=Decimal("12.5"),
    )
    # 87,000 less 12.5 % (10,875): 76,125 for the first year.
    assert quote.quote_amount_due == 76_125 == quote.local_estimate["amount_due_now"]
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="test")
    quote.refresh_from_db()
    assert quote.state == PlanChangeState.SETTLED, (quote.failure_code, quote.failure_message)
    assert quote.charged_amount == 76_125 and quote.charge_mismatch == {}
    license = billed.refresh()
    assert license.renewal_discount_percent == Decimal("12.50")
    assert stripe_for(world_a.tenant).retrieve_subscription(license.stripe_subscription_id).discount_count == 1
