"""Quote == charge: the offer's estimate of each option is what Stripe (the stand-in) previews for the same
change at the same second, and Stripe's stored preview reads back as the same quote."""

from __future__ import annotations

import pytest
from django.utils import timezone

from billing.services import plan_changes
from catalog.models import Price
from tests.billing import conftest as billing_fixtures
from tests.billing.helpers import billed_license
from tests.upgrades.offers.conftest import make_live_settings
from tests.upgrades.offers.pricing_helpers import recommendation
from upgrades.offers.pricing import estimate_quote, price_offer, quote_from_plan_change

stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


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
        prices = {p.pk: p for p in Price.objects.filter(pk__in=option["price_ids"])}
        plan_change = plan_changes.quote_plan_change(
            world_a.tenant,
            license=billed.license,
            target_price=prices[option["price_ids"][0]],
            seats=option["seats"],
            addon_prices=[prices[i] for i in option["price_ids"][1:]],
            at=now,
        )
        stripe = quote_from_plan_change(plan_change)
        assert estimate["amount_due_now"] == plan_change.quote_amount_due == stripe["amount_due_now"], option["key"]
        assert sum(line["amount"] for line in estimate["lines"]) == plan_change.quote_total
        assert sum(line["amount"] for line in stripe["lines"]) == plan_change.quote_total
        assert estimate["next_renewal_amount"] == stripe["next_renewal_amount"]
        assert stripe["source"] == "stripe" and stripe["plan_change"] == plan_change.pk
        assert stripe["next_renewal_at"][:10] == estimate["next_renewal_at"][:10]
