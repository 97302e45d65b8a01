"""Options of an offer: monthly / annual / multi-year with savings, policy discounts with their
explanation, a discount variant only within the cap, the anchor beside. Hand-worked figures."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.tenancy import tenant_context
from catalog.pricing import BASIS, apply_percent, discount_for, percent_to_basis
from tests.upgrades.offers.conftest import make_live_settings
from tests.upgrades.offers.pricing_helpers import at, licence, policy, pricing_catalog, recommendation
from upgrades.offers.models import OfferSettings, SettingsState
from upgrades.offers.pricing import price_offer
from upgrades.offers.pricing.options import find_variant, multi_year_terms, offer_discount

pytestmark = pytest.mark.django_db

NOW = at(2026, 3, 10, 12)


@pytest.fixture
def shop(world_a):
    with tenant_context(world_a.tenant):
        catalog = pricing_catalog(world_a.tenant)
        lic = licence(world_a.account, catalog.prices["team-month"], seats=3, start=at(2026, 3, 1), end=at(2026, 4, 1))
        yield SimpleNamespace(world=world_a, tenant=world_a.tenant, catalog=catalog, license=lic)


def _price(shop, *, variant="", approved=False, **settings_fields):
    settings_row = OfferSettings.objects.for_tenant(shop.tenant).filter(state=SettingsState.LIVE).first()
    if settings_row is None:
        settings_row = make_live_settings(shop.tenant, **settings_fields)
    return price_offer(
        shop.tenant,
        license=shop.license,
        recommendation=recommendation(shop.catalog),
        settings=settings_row,
        variant=variant,
        now=NOW,
        discount_approved=approved,
    )


def by_key(pricing):
    return {o["key"]: o for o in pricing.options}


def test_without_a_policy_monthly_and_annual_show_the_annual_saving_in_money_and_percent(shop):
    pricing = _price(shop)
    options = by_key(pricing)
    assert list(options) == ["business-month", "business-year"]
    month, year = options["business-month"], options["business-year"]
    # 3 seats x 99.00 = 297.00 a month; 3 x 990.00 = 2,970.00 a year.
    assert (month["list_amount"], month["amount"], month["saving"], month["discount"]) == (29700, 29700, None, None)
    assert year["amount"] == 297000
    # 12 x 297.00 = 3,564.00; the year saves 594.00 = 16.67 %; 2,970.00 / 12 = 247.50 a month.
    assert year["saving"] == {"amount": 59400, "percent": "16.67", "versus": "monthly"}
    assert year["monthly_equivalent"] == 24750
    assert month["monthly_change"] == 29700 - 8700  # against the licence's 3 x 29.00
    assert month["seats"] == 3 and month["tier"] == "business" and month["tier_name"] == "Business"
    assert month["price_ids"] == [shop.catalog.prices["business-month"].pk]
    assert year["price_ids"] == [shop.catalog.prices["business-year"].pk]
    # Recommended: the interval the customer already pays on; no discount, nothing to approve.
    assert pricing.recommended_option == "business-month"
    assert pricing.discount is None and pricing.discount_approval_needed is False
    assert pricing.currency == "USD"
    assert pricing.quote["option"] == "business-month"
    assert pricing.roi is None  # no value model


def test_multi_year_terms_only_where_the_policy_has_a_term_rule(shop):
    policy(shop.tenant, term_rules=[{"years": 2, "percent": "10"}], volume_rules=[])
    assert [o["key"] for o in _price(shop).options] == ["business-month", "business-year", "business-year-2y"]


def test_no_multi_year_terms_without_term_rules():
    assert multi_year_terms(None) == []
    assert multi_year_terms(SimpleNamespace(term_rules=[{"years": 1, "percent": "3"}])) == []
    rules = [{"years": 3, "percent": "15"}, {"years": 2, "percent": "0"}]
    assert multi_year_terms(SimpleNamespace(term_rules=rules)) == [2, 3]


def test_policy_discounts_term_and_volume_each_with_its_explanation(shop):
    policy(shop.tenant)  # 2y 10 %, 3y 15 %, 3-9 seats 5 %, added, capped at 20 %
    options = by_key(_price(shop))
    assert list(options) == ["business-month", "business-year", "business-year-2y", "business-year-3y"]
    month = options["business-month"]
    # 5 % volume off 297.00 = 14.85 -> 282.15 a month.
    assert month["discount"]["percent"] == "5.00" and month["discount"]["amount"] == 1485
    assert month["amount"] == 28215
    assert "5 % for 3 seats (3–9 seat bracket)" in month["discount"]["explanation"]
    assert month["discount"]["within_policy"] is True
    year = options["business-year"]
    # 2,970.00 less 5 % = 2,821.50; against 12 x 282.15 = 3,385.80 it saves 564.30 = 16.67 %.
    assert year["amount"] == 282150
    assert year["saving"] == {"amount": 56430, "percent": "16.67", "versus": "monthly"}
    assert year["monthly_equivalent"] == 23513  # 23,512.5 rounded half up, once
    two = options["business-year-2y"]
    # 10 % + 5 % = 15 % off 2,970.00 = 445.50 -> 2,524.50 a year; saves 861.30 = 25.44 %.
    assert (two["interval"], two["term_years"], two["amount"]) == ("year", 2, 252450)
    assert two["saving"] == {"amount": 86130, "percent": "25.44", "versus": "monthly"}
    assert "10 % for a 2-year commitment" in two["discount"]["explanation"]
    three = options["business-year-3y"]
    # 15 % + 5 % = 20 %, exactly the cap: 2,376.00 a year, 198.00 a month.
    assert (three["amount"], three["monthly_equivalent"], three["discount"]["percent"]) == (237600, 19800, "20.00")
    assert three["discount"]["within_policy"] is True


def test_a_variant_within_the_cap_is_applied_and_explained(shop):
    policy(shop.tenant, cap_percent=30)  # the 3-year option asks 15 + 5 + 10 = 30 %: still within
    pricing = _price(
        shop,
        variant="launch10",
        discount_variants=[{"key": "launch10", "percent": "10", "explanation": "Launch offer"}],
    )
    month = by_key(pricing)["business-month"]
    # 5 % volume + 10 % variant = 15 % of 297.00 = 44.55 -> 252.45.
    assert month["discount"]["percent"] == "15.00" and month["amount"] == 25245
    assert month["discount"]["variant"] == "launch10"
    assert "Launch offer: 10 %" in month["discount"]["explanation"]
    assert pricing.discount["percent"] == "15.00" and pricing.discount["within_policy"] is True
    assert by_key(pricing)["business-year-3y"]["discount"]["percent"] == "30.00"
    assert pricing.discount_approval_needed is False


def test_a_variant_over_the_cap_is_capped_and_waits_for_approval(shop):
    policy(shop.tenant)
    variants = [{"key": "big", "percent": "10", "explanation": "Big"}]
    pricing = _price(shop, variant="big", discount_variants=variants)
    three = by_key(pricing)["business-year-3y"]
    # 20 % from policy + 10 % asked = 30 % > the 20 % cap: only 20 % applies, the offer waits.
    assert three["discount"]["requested_percent"] == "30.00"
    assert three["discount"]["percent"] == "20.00" and three["amount"] == 237600
    assert three["discount"]["within_policy"] is False
    assert "above the policy maximum of 20 %" in three["discount"]["explanation"]
    assert pricing.discount_approval_needed is True
    # With a recorded approval the asked 30 % is priced: 2,970.00 x 70 % = 2,079.00.
    approved = by_key(_price(shop, variant="big", discount_variants=variants, approved=True))["business-year-3y"]
    assert approved["amount"] == 207900 and approved["discount"]["approved"] is True


def test_without_a_policy_any_variant_needs_approval_and_nothing_is_taken_off(shop):
    pricing = _price(shop, variant="x", discount_variants=[{"key": "x", "percent": "5", "explanation": ""}])
    month = by_key(pricing)["business-month"]
    assert month["amount"] == month["list_amount"] == 29700
    assert month["discount"]["within_policy"] is False and pricing.discount_approval_needed is True


def test_an_unknown_variant_key_or_a_zero_variant_gives_no_discount(shop):
    pricing = _price(
        shop, variant="arm-b", discount_variants=[{"key": "x", "percent": "5"}, {"key": "none", "percent": "0"}]
    )
    assert pricing.discount is None and not pricing.discount_approval_needed
    pricing = _price(shop, variant="none")
    assert pricing.discount is None and not pricing.discount_approval_needed


def test_the_anchor_is_beside_on_the_same_interval_marked_with_policy_discounts_and_no_variant(shop):
    policy(shop.tenant)
    pricing = _price(shop, variant="launch10", discount_variants=[{"key": "launch10", "percent": "10"}])
    anchor = pricing.anchor
    assert anchor["anchor"] is True and anchor["key"] == "scale-month" and anchor["tier"] == "scale"
    # 3 x 199.00 = 597.00 less the 5 % volume discount = 567.15; the variant is the recommendation's only.
    assert anchor["amount"] == 56715 and anchor["discount"]["variant"] == ""
    assert all(not o["anchor"] for o in pricing.options)


def test_add_ons_are_priced_at_each_interval_for_the_licences_seats(shop):
    settings_row = make_live_settings(shop.tenant)
    rec = recommendation(shop.catalog, "team", anchor=None, addons=("sso",), kind="addon")
    pricing = price_offer(shop.tenant, license=shop.license, recommendation=rec, settings=settings_row, now=NOW)
    options = by_key(pricing)
    month, year = options["sso-month"], options["sso-year"]
    prices = shop.catalog.prices
    assert month["price_ids"] == [prices["team-month"].pk, prices["sso-month"].pk]
    assert year["price_ids"] == [prices["team-year"].pk, prices["sso-year"].pk]
    # (29.00 + 5.00) x 3 = 102.00 a month; (290.00 + 50.00) x 3 = 1,020.00 a year, saving 204.00 = 16.67 %.
    assert (month["amount"], year["amount"]) == (10200, 102000)
    assert year["saving"] == {"amount": 20400, "percent": "16.67", "versus": "monthly"}
    assert [line["amount"] for line in year["lines"]] == [87000, 15000]
    assert pricing.anchor is None


# --- the applied discount never exceeds the cap (property) ---------------------------------------

percents = st.decimals(min_value=0, max_value=100, places=2)


@settings(max_examples=300, deadline=None)
@given(
    term=percents,
    volume=percents,
    cap=percents,
    variant=st.none() | percents,
    combination=st.sampled_from(["add", "compound", "best"]),
    seats=st.integers(min_value=1, max_value=500),
    years=st.integers(min_value=1, max_value=5),
    lines=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=4),
)
def test_the_applied_discount_never_exceeds_the_cap(term, volume, cap, variant, combination, seats, years, lines):
    rules = SimpleNamespace(
        term_rules=[{"years": 2, "percent": str(term)}],
        volume_rules=[{"min_seats": 1, "max_seats": None, "percent": str(volume)}],
        combination=combination,
        cap_percent=cap,
        loyalty_percent=0,
    )
    found = find_variant([{"key": "v", "percent": str(variant)}], "v") if variant is not None else None
    discount = offer_discount(rules, term_years=years, seats=seats, line_amounts=lines, variant=found)
    if discount is None:  # only when nothing is taken off and nothing is asked
        policy_part = discount_for(rules, term_years=years, seats=seats).percent
        assert policy_part == 0 and not variant
        return
    applied = percent_to_basis(discount["percent"])
    assert applied <= percent_to_basis(cap)
    # taken off line by line, as Stripe discounts the invoice, and never more than the lines
    assert discount["amount"] == sum(apply_percent(a, Decimal(discount["percent"])) for a in lines) <= sum(lines)
    requested = percent_to_basis(discount["requested_percent"])
    assert discount["within_policy"] is (requested <= percent_to_basis(cap))
    if not discount["within_policy"]:
        assert applied == percent_to_basis(cap) < requested <= BASIS
    else:
        assert applied == requested


def test_the_offers_discount_is_the_one_waiting_for_approval_while_one_waits(shop):
    policy(shop.tenant)
    pricing = _price(shop, variant="big", discount_variants=[{"key": "big", "percent": "10"}])
    # The monthly option (5 % + 10 % = 15 %) is within the cap; the 2- and 3-year options are not.
    assert by_key(pricing)["business-month"]["discount"]["within_policy"] is True
    assert pricing.discount["option"] == "business-year-2y" and pricing.discount["within_policy"] is False
    assert pricing.discount["requested_percent"] == "25.00" and pricing.discount["percent"] == "20.00"


def test_pricing_takes_the_same_number_of_queries_whatever_the_catalog_size(shop):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog.models import AddOn, GovernanceState, Price, Tier

    policy(shop.tenant)
    _price(shop)  # the settings exist from here on
    with CaptureQueriesContext(connection) as small:
        _price(shop)
    for n in range(15):
        tier = Tier.objects.create(
            tenant=shop.tenant, product=shop.catalog.product, key=f"t{n}", name=f"T{n}", rank=20 + n,
            state=GovernanceState.PUBLISHED,
        )  # fmt: skip
        addon = AddOn.objects.create(
            tenant=shop.tenant, product=shop.catalog.product, key=f"a{n}", name=f"A{n}", state=GovernanceState.PUBLISHED
        )
        for interval in ("month", "year"):
            Price.objects.create(tenant=shop.tenant, tier=tier, key=f"t{n}-{interval}", interval=interval, amount=100,
                                 state=GovernanceState.PUBLISHED)  # fmt: skip
            Price.objects.create(tenant=shop.tenant, addon=addon, key=f"a{n}-{interval}", interval=interval, amount=10,
                                 state=GovernanceState.PUBLISHED)  # fmt: skip
    with CaptureQueriesContext(connection) as large:
        _price(shop)
    assert len(large) == len(small)
