"""Quote == charge: the offer's estimate of each option is what Stripe (the stand-in) previews for the same
change at the same second, and Stripe's stored preview reads back as the same quote."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from billing.services import plan_changes
from catalog.models import DiscountPolicy, GovernanceState, Price
from catalog.pricing import apply_percent
from tests.billing import conftest as billing_fixtures
from tests.billing.helpers import billed_license
from tests.upgrades.offers.conftest import make_live_settings
from tests.upgrades.offers.pricing_helpers import recommendation
from upgrades.offers.pricing import estimate_quote, price_offer, quote_from_plan_change

stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _stripe_preview(tenant, billed, option: dict, *, now, discount_percent: Decimal | None = None):
    """Billing's quote of the option's change: Stripe's (the stand-in's) preview, stored on a PlanChange."""
    prices = {p.pk: p for p in Price.objects.filter(pk__in=option["price_ids"])}
    return plan_changes.quote_plan_change(
        tenant,
        license=billed.license,
        target_price=prices[option["price_ids"][0]],
        seats=option["seats"],
        addon_prices=[prices[i] for i in option["price_ids"][1:]],
        at=now,
        discount_percent=discount_percent,
    )


@pytest.mark.parametrize(
    ("days_into_period", "addons"),
    [(10, ()), (0, ()), (23, ("sso",))],
)
def test_every_options_estimate_equals_stripes_preview_of_the_same_change(world_a, standin, days_into_period, addons):
    billed = billed_license(world_a.tenant, world_a.account, standin, days_into_period=days_into_period)
    settings_row = make_live_settings(world_a.tenant)
    now = timezone.now().replace(microsecond=0)
    rec = recommendation(billed.catalog, "business", anchor=None, addons=addons, kind="tier")
    pricing = price_offer(world_a.tenant, license=billed.license, recommendation=rec, settings=settings_row, now=now)
    assert [o["interval"] for o in pricing.options] == ["month", "year"]
    for option in pricing.options:
        estimate = estimate_quote(license=billed.license, option=option, now=now)
        plan_change = _stripe_preview(world_a.tenant, billed, option, now=now)
        stripe = quote_from_plan_change(plan_change)
        assert estimate["amount_due_now"] == plan_change.quote_amount_due == stripe["amount_due_now"], option["key"]
        assert sum(line["amount"] for line in estimate["lines"]) == plan_change.quote_total
        assert sum(line["amount"] for line in stripe["lines"]) == plan_change.quote_total
        assert estimate["next_renewal_amount"] == stripe["next_renewal_amount"]
        assert stripe["source"] == "stripe" and stripe["plan_change"] == plan_change.pk
        assert stripe["next_renewal_at"][:10] == estimate["next_renewal_at"][:10]


def test_a_discounted_option_of_several_lines_is_rounded_per_line_as_stripe_charges_it(world_a, standin):
    """12.5 % of Business (3 seats) and SSO: each line's half-unit rounds up on its own, so the discount on
    the lines is one unit more than 12.5 % of their sum. Shown, quoted and charged are all the per-line one."""
    billed = billed_license(world_a.tenant, world_a.account, standin, days_into_period=10)
    DiscountPolicy.objects.create(tenant=world_a.tenant, key="standard", name="Standard", cap_percent=Decimal("20"),
                                  state=GovernanceState.PUBLISHED, published_at=timezone.now())  # fmt: skip
    settings_row = make_live_settings(world_a.tenant, discount_variants=[{"key": "odd", "percent": "12.5"}])
    now = timezone.now().replace(microsecond=0)
    rec = recommendation(billed.catalog, "business", anchor=None, addons=("sso",), kind="tier")
    pricing = price_offer(world_a.tenant, license=billed.license, recommendation=rec, settings=settings_row,
                          variant="odd", now=now)  # fmt: skip
    monthly = next(o for o in pricing.options if o["interval"] == "month")
    lines = [line["amount"] for line in monthly["lines"]]
    assert len(lines) == 2 and monthly["discount"]["percent"] == "12.50"
    per_line = sum(apply_percent(a, Decimal("12.5")) for a in lines)
    assert per_line == apply_percent(sum(lines), Decimal("12.5")) + 1  # the case where the two roundings differ
    assert monthly["discount"]["amount"] == per_line and monthly["amount"] == sum(lines) - per_line

    estimate = estimate_quote(license=billed.license, option=monthly, now=now)
    plan_change = _stripe_preview(world_a.tenant, billed, monthly, now=now, discount_percent=Decimal("12.5"))
    stripe = quote_from_plan_change(plan_change)
    assert estimate["amount_due_now"] == plan_change.quote_amount_due == stripe["amount_due_now"]
    assert estimate["next_renewal_amount"] == stripe["next_renewal_amount"] == monthly["amount"]  # shown = charged
