"""The offer's quote: billing's proration, every line, hand-worked (31-day months, leap years, an
interval switch mid-period, discounts), the same figures as billing's own estimate, Stripe's stored
preview in the same shape, and staleness."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.tenancy import tenant_context
from billing.models import License, StripeAccount, StripeProduct
from billing.models import StripePrice as StripePriceRow
from billing.services.plan_changes.estimate import _local_estimate
from billing.stripe_client import ItemTarget, Subscription, SubscriptionItem, plan_item_changes
from catalog.models import Price
from tests.upgrades.offers.pricing_helpers import at, licence, pricing_catalog
from upgrades.offers.errors import InvalidInput
from upgrades.offers.pricing import estimate_quote, quote_from_plan_change, quote_is_stale

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(world_a):
    with tenant_context(world_a.tenant):
        yield SimpleNamespace(tenant=world_a.tenant, account=world_a.account, catalog=pricing_catalog(world_a.tenant))


def option(shop, *keys: str, seats: int = 3, discount: dict | None = None, key: str = "opt") -> dict:
    prices = [shop.catalog.prices[k] for k in keys]
    return {"key": key, "price_ids": [p.pk for p in prices], "seats": seats, "discount": discount, "label": "X"}


def amounts(quote) -> list[tuple[str, int]]:
    return [(line["kind"], line["amount"]) for line in quote["lines"]]


def test_same_interval_upgrade_in_a_31_day_month_credits_unused_time_and_charges_the_rest(shop):
    lic = licence(shop.account, shop.catalog.prices["team-month"], start=at(2026, 3, 1), end=at(2026, 4, 1))
    quote = estimate_quote(license=lic, option=option(shop, "business-month"), now=at(2026, 3, 11))
    # 21 of 31 days left: credit 3 x 29.00 x 21/31 = 58.935... -> 58.94; charge 3 x 99.00 x 21/31 = 201.19.
    assert amounts(quote) == [("credit", -5894), ("charge", 20119)]
    assert quote["amount_due_now"] == 14225
    assert (quote["next_renewal_at"], quote["next_renewal_amount"]) == (at(2026, 4, 1).isoformat(), 29700)
    assert quote["lines"][0]["period_start"] == at(2026, 3, 11).isoformat()
    assert quote["lines"][0]["period_end"] == at(2026, 4, 1).isoformat()
    assert quote["lines"][0]["description"] == "Credit for unused time on Team, 3 seats, monthly"
    assert (quote["source"], quote["currency"], quote["option"], quote["kind"]) == ("estimate", "USD", "opt", "upgrade")
    assert quote["quoted_at"] == at(2026, 3, 11).isoformat()


def test_february_of_a_leap_year_is_29_days(shop):
    lic = licence(shop.account, shop.catalog.prices["team-month"], start=at(2028, 2, 1), end=at(2028, 3, 1))
    quote = estimate_quote(license=lic, option=option(shop, "business-month"), now=at(2028, 2, 15, 12))
    # 14.5 of 29 days left: exactly half of each price.
    assert amounts(quote) == [("credit", -4350), ("charge", 14850)]
    assert quote["amount_due_now"] == 10500


def test_february_of_a_common_year_is_28_days(shop):
    lic = licence(shop.account, shop.catalog.prices["team-month"], start=at(2027, 2, 1), end=at(2027, 3, 1))
    quote = estimate_quote(license=lic, option=option(shop, "business-month"), now=at(2027, 2, 15, 12))
    # 13.5 of 28 days: 8,700 x 13.5/28 = 4,194.64 -> 4,195; 29,700 x 13.5/28 = 14,319.64 -> 14,320.
    assert amounts(quote) == [("credit", -4195), ("charge", 14320)]
    assert quote["amount_due_now"] == 10125


def test_an_annual_licence_in_a_leap_year_prorates_over_366_days(shop):
    lic = licence(shop.account, shop.catalog.prices["team-year"], start=at(2028, 1, 1), end=at(2029, 1, 1))
    quote = estimate_quote(license=lic, option=option(shop, "business-year"), now=at(2028, 7, 1))
    # 184 of 366 days left: 87,000 x 184/366 = 43,737.70 -> 43,738; 297,000 x 184/366 = 149,311.48 -> 149,311.
    assert amounts(quote) == [("credit", -43738), ("charge", 149311)]
    assert quote["amount_due_now"] == 105573
    assert quote["next_renewal_at"] == at(2029, 1, 1).isoformat()


def test_switching_month_to_year_mid_period_credits_the_month_and_starts_a_new_year_today(shop):
    lic = licence(shop.account, shop.catalog.prices["team-month"], start=at(2026, 3, 1), end=at(2026, 4, 1))
    quote = estimate_quote(license=lic, option=option(shop, "business-year"), now=at(2026, 3, 11))
    assert amounts(quote) == [("credit", -5894), ("charge", 297000)]
    assert quote["lines"][1]["period_start"] == at(2026, 3, 11).isoformat()
    assert quote["lines"][1]["period_end"] == at(2027, 3, 11).isoformat()
    assert quote["amount_due_now"] == 291106
    assert quote["kind"] == "interval"
    assert (quote["next_renewal_at"], quote["next_renewal_amount"]) == (at(2027, 3, 11).isoformat(), 297000)


def test_switching_to_annual_with_an_add_on_replaces_the_add_ons_monthly_item(shop):
    prices = shop.catalog.prices
    lic = licence(
        shop.account,
        prices["team-month"],
        start=at(2026, 1, 31),
        end=at(2026, 2, 28),
        addon_prices=[prices["sso-month"]],
    )
    quote = estimate_quote(license=lic, option=option(shop, "team-year", "sso-year"), now=at(2026, 2, 14))
    # 14 of 28 days left: team credit 4,350, team year 87,000; the monthly SSO item (15.00) is credited 7.50
    # and the annual SSO item (150.00) is charged in full.
    assert sorted(amounts(quote)) == sorted([("credit", -4350), ("charge", 87000), ("charge", 15000), ("credit", -750)])
    assert quote["amount_due_now"] == 96900
    assert quote["next_renewal_amount"] == 102000


def test_the_options_policy_discount_is_its_own_line_taken_off_the_new_price_once(shop):
    lic = licence(shop.account, shop.catalog.prices["team-month"], start=at(2026, 3, 1), end=at(2026, 4, 1))
    discount = {"percent": "5.00", "amount": 1485, "explanation": "5 % for 3 seats (3–9 seat bracket)."}
    quote = estimate_quote(license=lic, option=option(shop, "business-month", discount=discount), now=at(2026, 3, 11))
    # 5 % of the 201.19 charge = 10.06 (10.0595 rounded half up).
    assert amounts(quote) == [("credit", -5894), ("charge", 20119), ("discount", -1006)]
    assert "5 %" in quote["lines"][2]["description"] and "3–9 seat bracket" in quote["lines"][2]["description"]
    assert quote["amount_due_now"] == 13219
    assert quote["next_renewal_amount"] == 28215  # 297.00 less 5 %


def test_the_licences_coupon_comes_off_every_line_as_billing_takes_it(shop):
    lic = licence(
        shop.account,
        shop.catalog.prices["team-month"],
        start=at(2026, 3, 1),
        end=at(2026, 4, 1),
        renewal_discount_percent=Decimal("10"),
    )
    quote = estimate_quote(license=lic, option=option(shop, "business-month"), now=at(2026, 3, 11))
    # 10 % off each line: -589 on the credit, 2,012 on the charge; net 14.23 less.
    assert amounts(quote) == [("credit", -5894), ("charge", 20119), ("discount", -1423)]
    assert quote["amount_due_now"] == 12802
    assert quote["next_renewal_amount"] == 26730


def test_a_credit_larger_than_the_charge_is_not_refunded_but_lowers_the_next_renewal(shop):
    """Fewer-revenue moves wait for the period end, unless the tenant's Stripe credits them at once."""
    StripeAccount.objects.create(tenant=shop.tenant, downgrade_prorated_credit=True)
    lic = licence(shop.account, shop.catalog.prices["business-month"], start=at(2026, 3, 1), end=at(2026, 4, 1))
    quote = estimate_quote(license=lic, option=option(shop, "team-month"), now=at(2026, 3, 11))
    # credit 29,700 x 21/31 = 20,119; charge 8,700 x 21/31 = 5,894: 142.25 left as balance, more than
    # the next month's 87.00, so nothing is due now and the next renewal costs nothing.
    assert amounts(quote) == [("credit", -20119), ("charge", 5894)]
    assert (quote["amount_due_now"], quote["next_renewal_amount"]) == (0, 0)


def test_annual_to_monthly_is_a_downgrade_at_the_period_end_with_nothing_due_now(shop):
    lic = licence(shop.account, shop.catalog.prices["team-year"], start=at(2026, 1, 1), end=at(2027, 1, 1))
    quote = estimate_quote(license=lic, option=option(shop, "business-month"), now=at(2026, 6, 1))
    assert quote["amount_due_now"] == 0 and quote["kind"] == "at_period_end"
    assert amounts(quote) == [("next_period", 29700)]
    assert quote["next_renewal_at"] == at(2027, 1, 1).isoformat()


def test_a_licence_without_a_subscription_pays_its_first_full_period_from_today(shop):
    lic = licence(
        shop.account, shop.catalog.prices["free-month"], start=at(2026, 3, 1), end=at(2026, 4, 1), subscription=""
    )
    quote = estimate_quote(license=lic, option=option(shop, "team-year"), now=at(2026, 3, 11))
    assert amounts(quote) == [("charge", 87000)]
    assert quote["amount_due_now"] == 87000 and quote["kind"] == "new"
    assert quote["next_renewal_at"] == at(2027, 3, 11).isoformat()


def test_a_licence_whose_period_has_passed_is_refused_with_field_and_reason(shop):
    lic = licence(shop.account, shop.catalog.prices["team-month"], start=at(2026, 3, 1), end=at(2026, 4, 1))
    with pytest.raises(InvalidInput) as err:
        estimate_quote(license=lic, option=option(shop, "business-month"), now=at(2026, 4, 2))
    assert "license" in err.value.details


def test_another_tenants_price_ids_are_refused(shop, world_b):
    lic = licence(shop.account, shop.catalog.prices["team-month"], start=at(2026, 3, 1), end=at(2026, 4, 1))
    with tenant_context(world_b.tenant):
        foreign = pricing_catalog(world_b.tenant).prices["business-month"]
    with pytest.raises(InvalidInput) as err:
        estimate_quote(license=lic, option={"key": "x", "price_ids": [foreign.pk], "seats": 3}, now=at(2026, 3, 11))
    assert "option" in err.value.details


# --- the same figures as billing's own estimate of the same change ---------------------------------


def _billing_estimate(shop, lic, target_keys: list[str], *, at_):
    """billing/services/plan_changes/estimate.py on a subscription shaped like the licence."""
    product, _ = StripeProduct.objects.get_or_create(
        tenant=shop.tenant, owner_kind="tier", catalog_key="x", defaults={"stripe_product_id": "prod_x", "name": "X"}
    )
    ids = {}
    for price in Price.objects.for_tenant(shop.tenant):
        ids[price.pk] = f"price_{price.pk}"
        StripePriceRow.objects.get_or_create(
            tenant=shop.tenant, price=price, defaults={"product": product, "stripe_price_id": f"price_{price.pk}"}
        )
    items = [
        SubscriptionItem("si_tier", ids[lic.price_id], lic.seats, lic.current_period_start, lic.current_period_end)
    ]
    for addon in lic.addons.all():
        p = shop.catalog.prices[f"{addon.key}-{lic.interval}"]
        items.append(
            SubscriptionItem(f"si_{p.pk}", ids[p.pk], lic.seats, lic.current_period_start, lic.current_period_end)
        )
    sub = Subscription("sub_test", "cus", "active", tuple(items), None, False, None, False, None, None)
    targets = []
    for n, key in enumerate(target_keys):
        p = shop.catalog.prices[key]
        existing = next((i.id for i in items[1:] if i.price_id == ids[p.pk]), None)
        targets.append(ItemTarget(ids[p.pk], lic.seats if p.per_seat else 1, "si_tier" if n == 0 else existing))
    return _local_estimate(shop.tenant, lic, sub, changes=plan_item_changes(sub, targets), at=at_)


@pytest.mark.parametrize(
    ("held", "addons", "target", "now", "coupon"),
    [
        ("team-month", [], ["business-month"], at(2026, 3, 11, 7, 13, 5), "0"),
        ("team-month", [], ["business-year"], at(2026, 3, 31, 23, 59, 59), "0"),
        ("team-month", ["sso"], ["business-month", "sso-month"], at(2026, 3, 2), "12.5"),
        ("team-month", ["sso"], ["business-month"], at(2026, 3, 20), "0"),
        ("team-month", [], ["team-month", "sso-month"], at(2026, 3, 17), "0"),
        ("team-month", ["sso"], ["scale-year", "sso-year"], at(2026, 3, 5), "7"),
        ("team-year", [], ["business-year"], at(2026, 11, 30), "3"),
    ],
)
def test_the_estimate_is_what_billing_computes_for_the_same_change(shop, held, addons, target, now, coupon):
    prices = shop.catalog.prices
    interval = prices[held].interval
    end = at(2026, 4, 1) if interval == "month" else at(2027, 3, 1)
    lic = licence(
        shop.account,
        prices[held],
        start=at(2026, 3, 1),
        end=end,
        addon_prices=[prices[f"{a}-{interval}"] for a in addons],
        renewal_discount_percent=Decimal(coupon),
    )
    ours = estimate_quote(license=lic, option=option(shop, *target), now=now)
    theirs = _billing_estimate(shop, lic, target, at_=now)
    assert theirs, "billing could not estimate the change"
    assert ours["amount_due_now"] == theirs["amount_due_now"]
    assert sum(line["amount"] for line in ours["lines"]) == sum(theirs["lines"])


# --- Stripe's stored preview ---------------------------------------------------------------------


def test_a_stored_stripe_preview_reads_as_the_same_quote_shape(shop):
    prices = shop.catalog.prices
    lic = licence(shop.account, prices["team-month"], start=at(2026, 3, 1), end=at(2026, 4, 1))
    plan_change = SimpleNamespace(
        pk=7,
        kind="upgrade",
        license=lic,
        target_price=prices["business-month"],
        target_addon_prices=SimpleNamespace(all=lambda: [prices["sso-month"]]),
        target_seats=3,
        quote_lines=[
            {"description": "Unused time", "amount": -5894, "discount": 0, "period_start": "2026-03-11T00:00:00+00:00",
             "period_end": "2026-04-01T00:00:00+00:00", "proration": True},
            {"description": "Remaining time", "amount": 20119, "discount": 1006,
             "period_start": "2026-03-11T00:00:00+00:00", "period_end": "2026-04-01T00:00:00+00:00", "proration": True},
        ],
        quote_total=13219,
        quote_amount_due=13219,
        currency="USD",
        quoted_at=at(2026, 3, 11),
        quote_expires_at=at(2026, 3, 11, 0, 30),
        effective_at=None,
    )  # fmt: skip
    quote = quote_from_plan_change(plan_change)
    assert amounts(quote) == [("credit", -5894), ("charge", 20119), ("discount", -1006)]
    assert sum(line["amount"] for line in quote["lines"]) == quote["amount_due_now"] == 13219
    assert quote["source"] == "stripe" and quote["plan_change"] == 7
    assert quote["next_renewal_amount"] == 3 * 9900 + 3 * 500
    assert quote["next_renewal_at"] == "2026-04-01T00:00:00+00:00"
    assert set(quote) >= {"lines", "amount_due_now", "next_renewal_amount", "next_renewal_at", "currency", "quoted_at"}


def test_a_quote_is_stale_once_it_is_max_age_old_or_past_its_expiry():
    quote = {"quoted_at": at(2026, 3, 11).isoformat()}
    assert not quote_is_stale(quote, now=at(2026, 3, 11, 0, 29), max_age=timedelta(minutes=30))
    assert quote_is_stale(quote, now=at(2026, 3, 11, 0, 30), max_age=timedelta(minutes=30))
    expiring = {**quote, "expires_at": at(2026, 3, 11, 0, 10).isoformat()}
    assert quote_is_stale(expiring, now=at(2026, 3, 11, 0, 10), max_age=timedelta(hours=1))
    assert quote_is_stale(None, now=at(2026, 3, 11), max_age=timedelta(hours=1))
    assert quote_is_stale({"quoted_at": "yesterday"}, now=at(2026, 3, 11), max_age=timedelta(hours=1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offset=st.integers(min_value=0, max_value=28 * 86400 - 1),
    target=st.sampled_from(
        [["business-month"], ["business-month", "sso-month"], ["team-month", "sso-month"], ["business-year"],
         ["scale-year", "sso-year"], ["scale-month"]]
    ),
)  # fmt: skip
def test_any_second_of_a_leap_february_the_estimate_is_billings(shop, offset, target):
    prices = shop.catalog.prices
    lic = License.objects.filter(account=shop.account).first() or licence(
        shop.account,
        prices["team-month"],
        start=at(2028, 2, 1),
        end=at(2028, 3, 1),
        addon_prices=[prices["sso-month"]],
        renewal_discount_percent=Decimal("7.5"),
    )
    now = at(2028, 2, 1) + timedelta(seconds=offset)
    ours = estimate_quote(license=lic, option=option(shop, *target), now=now)
    theirs = _billing_estimate(shop, lic, target, at_=now)
    assert ours["amount_due_now"] == theirs["amount_due_now"]
