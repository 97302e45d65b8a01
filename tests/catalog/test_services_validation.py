"""Catalog validation: clear refusals for inconsistent prices, ladders, rules and cross-tenant picks."""

import pytest

from catalog import services
from catalog.errors import CatalogErrorCode, Conflict, InvalidInput
from catalog.models import DiscountPolicy, Meter, Price, Tier
from tests.catalog.factories import make_feature, make_product, make_tier

pytestmark = pytest.mark.django_db


def test_an_annual_price_above_twelve_monthly_payments_is_refused(ladder):
    tier = make_tier(ladder.tenant, ladder.pm, product=ladder.product, key="pro", rank=25, monthly=1_000)
    with pytest.raises(InvalidInput) as exc:
        services.set_price(ladder.tenant, owner=tier, interval="year", amount=12_001, actor=ladder.pm)
    assert exc.value.code == CatalogErrorCode.ANNUAL_ABOVE_MONTHLY
    assert "above 12 x the monthly price ($120.00)" in exc.value.message
    assert not Price.objects.filter(tier=tier, interval="year").exists()
    services.set_price(ladder.tenant, owner=tier, interval="year", amount=12_000, actor=ladder.pm)  # equal is fine


def test_raising_both_prices_together_is_checked_as_a_set(ladder):
    from catalog.validation import PriceDraft

    tier = make_tier(ladder.tenant, ladder.pm, product=ladder.product, key="pro", rank=25, monthly=1_000, annual=10_000)
    services.replace_prices(
        ladder.tenant,
        owner=tier,
        actor=ladder.pm,
        prices=[PriceDraft("month", 2_000, "USD"), PriceDraft("year", 20_000, "USD")],
    )
    assert sorted(tier.prices.values_list("amount", flat=True)) == [2_000, 20_000]


def test_a_price_in_another_currency_than_its_tier_is_refused(ladder):
    tier = make_tier(ladder.tenant, ladder.pm, product=ladder.product, key="pro", rank=25, currency="EUR")
    with pytest.raises(InvalidInput) as exc:
        services.set_price(ladder.tenant, owner=tier, interval="month", amount=1_000, currency="USD", actor=ladder.pm)
    assert exc.value.code == CatalogErrorCode.CURRENCY_MISMATCH
    assert "sells in EUR" in exc.value.message


def test_changing_a_tiers_currency_away_from_its_prices_is_refused(ladder):
    tier = make_tier(ladder.tenant, ladder.pm, product=ladder.product, key="pro", rank=25, monthly=1_000)
    with pytest.raises(InvalidInput) as exc:
        services.update_draft(ladder.tenant, obj=tier, actor=ladder.pm, currency="GBP")
    assert exc.value.code == CatalogErrorCode.CURRENCY_MISMATCH
    assert Tier.objects.get(pk=tier.pk).currency == "USD"


def test_a_higher_tier_granting_less_than_a_lower_one_is_flagged_and_cannot_be_submitted(ladder):
    tier = make_tier(
        ladder.tenant,
        ladder.pm,
        product=ladder.product,
        key="plus",
        rank=25,
        monthly=3_900,
        annual=39_000,
        name="Plus",
        grants={ladder.api_calls: 20_000, ladder.seats: 25},
    )
    with pytest.raises(InvalidInput) as exc:
        services.submit_for_approval(ladder.tenant, obj=tier, actor=ladder.pm)
    assert exc.value.code == CatalogErrorCode.LADDER
    assert (
        "Plus (rank 25) grants less Api Calls than Team (rank 20): 20,000 API calls vs 50,000 API calls"
        in exc.value.message
    )
    issues = exc.value.details["issues"]
    assert any(i.startswith("Plus (rank 25) grants less Api Calls than Team (rank 20)") for i in issues)
    # Business sits above Plus and grants more: it must not be flagged against the new tier.
    assert all("Business (rank 30) grants less" not in i for i in issues)
    assert Tier.objects.get(pk=tier.pk).state == "draft"


def test_a_tier_above_the_top_must_include_what_lower_tiers_include(ladder):
    tier = make_tier(
        ladder.tenant,
        ladder.pm,
        product=ladder.product,
        key="ultra",
        rank=99,
        monthly=1,
        annual=12,
        grants={ladder.api_calls: None, ladder.seats: None},
    )  # no SSO, which Business includes
    issues = [m for _, m in services.readiness_issues(ladder.tenant, tier)]
    assert any("grants less Single sign-on than Business" in m and "not included vs included" in m for m in issues)


def test_a_rank_already_taken_and_a_missing_price_are_reported(ladder):
    tier = make_tier(
        ladder.tenant,
        ladder.pm,
        product=ladder.product,
        key="twin",
        rank=20,
        grants={ladder.api_calls: 50_000, ladder.seats: 25},
    )
    codes = {code for code, _ in services.readiness_issues(ladder.tenant, tier)}
    assert {CatalogErrorCode.RANK_TAKEN, CatalogErrorCode.MISSING_PRICE} <= codes


def test_discount_rules_that_overlap_are_refused_with_the_reason(world_a):
    pm = world_a.staff["product_manager"]
    with pytest.raises(InvalidInput) as exc:
        services.create_draft(
            world_a.tenant,
            model=DiscountPolicy,
            actor=pm,
            key="std",
            name="Standard",
            volume_rules=[
                {"min_seats": 1, "max_seats": 60, "percent": "0"},
                {"min_seats": 50, "max_seats": None, "percent": "5"},
            ],
        )
    assert exc.value.code == CatalogErrorCode.BAD_RULES
    assert "overlap" in exc.value.message
    assert not DiscountPolicy.objects.exists()


def test_a_key_in_use_cannot_start_a_second_item(ladder):
    with pytest.raises(Conflict, match="Revise the existing item"):
        services.create_draft(
            ladder.tenant, model=Tier, actor=ladder.pm, product=ladder.product, key="team", name="Team again", rank=21
        )


def test_items_of_another_tenant_cannot_be_picked(ladder, ladder_b):
    with pytest.raises(InvalidInput) as exc:
        services.create_draft(
            ladder.tenant, model=Tier, actor=ladder.pm, product=ladder_b.product, key="x", name="X", rank=5
        )
    assert exc.value.details == {"product": ["Pick an item of this workspace."]}
    tier = make_tier(ladder.tenant, ladder.pm, product=ladder.product, key="pro", rank=25)
    with pytest.raises(InvalidInput):
        services.set_entitlement(ladder.tenant, owner=tier, feature=ladder_b.sso, actor=ladder.pm, enabled=True)


def test_a_meter_must_name_the_property_it_sums(world_a):
    from django.core.exceptions import ValidationError

    product = make_product(world_a.tenant)
    feature = make_feature(world_a.tenant, product, "storage", unit="GB")
    meter = Meter(
        tenant=world_a.tenant,
        feature=feature,
        key="storage",
        name="Storage",
        event_name="file.stored",
        aggregation="sum",
        window="rolling_days",
    )
    with pytest.raises(ValidationError) as exc:
        meter.full_clean()
    assert set(exc.value.message_dict) == {"property", "window_days"}
