"""Pricing the engine's own recommendation (the real Candidate / Recommendation from recommend()) over a
real catalog and rollups: options, anchor, quote of the recommended option and the ROI from the evidence."""

from __future__ import annotations

import pytest

from tests.upgrades.offers.conftest import make_live_settings
from upgrades.offers.pricing import price_offer
from upgrades.offers.recommendation import recommend

from .engine_world import engine_world, sso_gate_fact

pytestmark = pytest.mark.django_db


@pytest.fixture
def ew(world_a):
    return engine_world(world_a)


def test_the_engines_add_on_recommendation_is_priced_with_its_anchor_quote_and_roi(ew):
    account = ew.account("sso-wanter")
    lic = ew.licence(account)
    lic.stripe_subscription_id = "sub_test"
    lic.save(update_fields=["stripe_subscription_id"])
    ew.growing(account, start=100, step=0)
    rec = recommend(ew.tenant, account=account, license=lic, signal=ew.signal(account, facts=[sso_gate_fact()]))
    settings_row = make_live_settings(
        ew.tenant,
        value_model=[{"kind": "hours_saved", "meter": "api_calls", "hours_per_unit": "0.001", "hourly_cost": 5000}],
    )
    pricing = price_offer(ew.tenant, license=lic, recommendation=rec, settings=settings_row)
    options = {o["key"]: o for o in pricing.options}
    month = options[pricing.recommended_option]
    assert month["interval"] == "month" and month["term_years"] == 1
    assert month["amount"] == rec.candidate.monthly_amount == 11_700  # 3 x (29 + 10)
    assert month["price_ids"] == [rec.candidate.tier_price.pk, *(p.pk for p in rec.candidate.addon_prices)]
    assert month["label"] == rec.candidate.label
    assert pricing.anchor is not None and pricing.anchor["anchor"] is True
    assert pricing.anchor["tier"] == rec.anchor.tier.key
    assert pricing.quote["option"] == month["key"] and pricing.quote["source"] == "estimate"
    assert pricing.quote["amount_due_now"] > 0
    assert [line["kind"] for line in pricing.quote["lines"]] == ["charge"]  # the add-on for the rest of the period
    used = next(m for m in rec.evidence["meters"] if m["meter"] == "api_calls")
    driver = pricing.roi["drivers"][0]
    assert driver["inputs"]["units_per_month"] == min(used["used"], used["projected"])
    assert pricing.roi["monthly_cost_increase"] == month["monthly_change"] == 11_700 - lic.mrr
