"""Accepting an offer's discounted, multi-year option end to end (pricing's real options, billing's coupon,
the stand-in, a real Celery worker, signed webhooks): the price shown is the price charged, the licence
holds the term bought, and Stripe's renewal is the renewal amount the offer showed.

Hand-worked numbers: Business is 990.00 per seat a year; 3 seats: 297,000 a year; the policy gives 10 % for
a 2-year term (29,700 off): 267,300 a year for the term.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import LicenseChange, PlanChange, PlanChangeState
from billing.proration import add_interval
from billing.services.stripe_accounts import stripe_for
from catalog.models import DiscountPolicy, GovernanceState
from tests.billing import conftest as billing_fixtures
from tests.billing.helpers import billed_license
from tests.conftest import wait_for
from tests.upgrades.offers.conftest import make_live_settings
from tests.upgrades.offers.factories_life import Holding, make_offer
from tests.upgrades.offers.pricing_helpers import recommendation
from upgrades.offers.models import Offer, OfferState
from upgrades.offers.pricing import estimate_quote, price_offer
from upgrades.offers.services.acceptance import accept_offer, open_offer

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
S = OfferState
stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin


@pytest.fixture
def billed(world_a, standin, live_server):
    billed = billed_license(
        world_a.tenant,
        world_a.account,
        standin,
        webhook_url=f"{live_server.url}/billing/stripe/webhook/{world_a.tenant.slug}/",
    )
    DiscountPolicy.objects.create(
        tenant=world_a.tenant,
        key="standard",
        name="Standard",
        term_rules=[{"years": 2, "percent": "10"}],
        loyalty_percent=Decimal("5"),
        state=GovernanceState.PUBLISHED,
        published_at=timezone.now(),
    )
    return billed


def priced_offer(billed, world_a, *, option_suffix: str) -> tuple[Offer, dict]:
    """An offer of Business built by pricing itself, showing the estimate of the option `business-<suffix>`."""
    settings_row = make_live_settings(world_a.tenant)
    rec = recommendation(billed.catalog, "business", anchor=None, addons=(), kind="tier")
    pricing = price_offer(world_a.tenant, license=billed.license, recommendation=rec, settings=settings_row)
    option = next(o for o in pricing.options if o["key"] == f"business-{option_suffix}")
    held = Holding(billed.tenant, billed.account, billed.catalog, billed.license)
    offer = make_offer(
        held,
        settings=settings_row,
        options=pricing.options,
        recommended_option=option["key"],
        discount=pricing.discount,
        quote=estimate_quote(license=billed.license, option=option),
    )
    return offer, option


def fulfilled(offer: Offer):
    current = Offer.objects.select_related("plan_change").get(pk=offer.pk)
    return current if current.state == S.FULFILLED else None


def test_an_opened_two_year_discounted_option_is_charged_as_shown_and_the_licence_holds_the_term(
    billed, world_a, standin, celery_worker_process
):
    offer, option = priced_offer(billed, world_a, option_suffix="year-2y")
    assert (option["term_years"], Decimal(str(option["discount"]["percent"]))) == (2, Decimal("10"))
    assert option["amount"] == 267_300

    opened = open_offer(world_a.tenant, offer=offer, actor="customer")
    quote = opened.quote
    assert (quote["source"], quote["option"]) == ("stripe", "business-year-2y")
    pc = opened.plan_change
    assert (pc.discount_percent, pc.term_years) == (Decimal("10.00"), 2)
    assert any(line["kind"] == "discount" for line in quote["lines"])
    assert quote["amount_due_now"] == sum(line["amount"] for line in quote["lines"])
    assert quote["next_renewal_amount"] == 267_300  # the second year of the term, discounted

    accepted = accept_offer(world_a.tenant, offer=offer, option_key="business-year-2y", actor="customer")
    assert (accepted.state, accepted.plan_change_id) == (S.ACCEPTED, pc.pk)  # no quote_stale: the shown quote
    done = wait_for(lambda: fulfilled(offer), timeout=40)

    settled = PlanChange.objects.get(pk=pc.pk)
    assert settled.state == PlanChangeState.SETTLED and settled.charge_mismatch == {}
    assert done.amount_charged == settled.charged_amount == quote["amount_due_now"]
    license = billed.refresh()
    assert (license.tier.key, license.interval, license.term_years) == ("business", "year", 2)
    assert license.commitment_ends_at == add_interval(license.current_period_start, "year", 2)
    assert license.renewal_discount_percent == Decimal("10.00")
    change = LicenseChange.objects.get(license=license, kind="interval")
    assert (change.reference, change.to_state["term_years"]) == (f"offer:{offer.pk}", 2)
    upcoming = stripe_for(world_a.tenant).preview_next_invoice(
        customer_id=license.stripe_customer_id, subscription_id=license.stripe_subscription_id
    )
    assert upcoming.total == quote["next_renewal_amount"]


@pytest.mark.parametrize("suffix", ["year", "year-2y"])
def test_accepting_a_discounted_option_straight_from_its_estimate_charges_exactly_the_estimate(
    billed, world_a, standin, celery_worker_process, suffix
):
    """No quote_stale: pricing's estimate (the unused month credited as paid, the new price less the discount)
    is Stripe's figure, so the option is bought at the first acceptance."""
    offer, option = priced_offer(billed, world_a, option_suffix=suffix)
    if suffix == "year":  # the one-year option carries a discount variant, as an approved offer may
        option = {**option, "discount": {"percent": "5", "explanation": "Spring variant"}}
        offer.options = [option if o["key"] == option["key"] else o for o in offer.options]
        offer.quote = estimate_quote(license=billed.license, option=option)
        offer.save(update_fields=["options", "quote"])
    shown = offer.quote["amount_due_now"]
    assert any(line["kind"] == "discount" for line in offer.quote["lines"])

    accepted = accept_offer(world_a.tenant, offer=offer, option_key=option["key"], actor="customer")

    assert accepted.state == S.ACCEPTED
    pc = accepted.plan_change
    assert pc.quote_amount_due == shown and pc.local_estimate["matches_stripe"] is True
    assert pc.discount_percent == Decimal(str(option["discount"]["percent"]))
    assert pc.term_years == (2 if suffix == "year-2y" else None)
    done = wait_for(lambda: fulfilled(offer), timeout=40)
    assert done.amount_charged == shown
    assert done.plan_change.charge_mismatch == {}
    license = billed.refresh()
    assert license.term_years == (2 if suffix == "year-2y" else 1)
    assert license.commitment_ends_at is None if suffix == "year" else license.commitment_ends_at is not None
    upcoming = stripe_for(world_a.tenant).preview_next_invoice(
        customer_id=license.stripe_customer_id, subscription_id=license.stripe_subscription_id
    )
    # The renewal the offer showed: the term's second year less 10 %, or the next year keeping the 5 %.
    expected = 297_000 - 29_700 if suffix == "year-2y" else 297_000 - 14_850
    assert upcoming.total == offer.quote["next_renewal_amount"] == expected
