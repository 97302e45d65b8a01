"""A ramped multi-year term in billing, without Stripe: which year a period falls in, the schedule's phases,
the licence following each year (renewal discount, MRR, a `term_year` change), and the ramp's validation.

Hand-worked: Business annual 990.00 a seat, 3 seats = 2,970.00 a year; a 3-year ramp of 10 %, 12.5 %, 15 %:
2,673.00, 2,598.75, 2,524.50 a year. MRR is the monthly list (247.50) less the percent, rounded once: 222.75,
216.56 (less 30.9375 -> 30.94) and 210.37 (less 37.125 -> 37.13).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.models import LicenseChange
from billing.proration import add_interval
from billing.services.licenses.term_ramp import follow_term_year, is_ramp, ramp_phases, term_year_at
from billing.services.plan_changes.discounts import clean_year_percents
from tests.billing.factories import make_catalog, make_license

pytestmark = pytest.mark.django_db

START = datetime(2027, 1, 31, 9, 0, tzinfo=UTC)  # a month-end start: years step from the 31st, no drift
RAMP = ["10.00", "12.50", "15.00"]


@pytest.fixture
def ramped(world_a):
    catalog = make_catalog(world_a.tenant)
    license = make_license(world_a.account, catalog.prices["business-year"], seats=3)
    license.current_period_start, license.current_period_end = START, add_interval(START, "year")
    license.term_years, license.commitment_ends_at = 3, add_interval(START, "year", 3)
    license.term_percents, license.renewal_discount_percent = RAMP, Decimal("10.00")
    license.mrr = 222_75
    license.save()
    return license


def test_each_period_falls_in_its_year_of_the_term(ramped):
    assert [term_year_at(ramped, add_interval(START, "year", k)) for k in range(4)] == [1, 2, 3, 3]
    assert term_year_at(ramped, add_interval(START, "month", 11)) == 1
    assert term_year_at(ramped, add_interval(START, "month", -3)) == 1  # a mid-period change's stub: year one


def test_phases_run_from_the_current_phase_to_the_term_end_one_per_discount(ramped):
    phases = ramp_phases(ramped, from_start=START)
    assert [(p.start, p.end, p.percent) for p in phases] == [
        (START, add_interval(START, "year", 1), Decimal("10.00")),
        (add_interval(START, "year", 1), add_interval(START, "year", 2), Decimal("12.50")),
        (add_interval(START, "year", 2), add_interval(START, "year", 3), Decimal("15.00")),
    ]
    stub = add_interval(START, "month", -4)  # a change in the period before the term: the stub joins year one
    assert ramp_phases(ramped, from_start=stub)[0].start == stub
    later = ramp_phases(ramped, from_start=add_interval(START, "year", 1))  # redrawn in year two
    assert [p.percent for p in later] == [Decimal("12.50"), Decimal("15.00")]


def test_equal_years_share_one_phase(ramped):
    ramped.term_percents = ["10.00", "10.00", "15.00"]
    phases = ramp_phases(ramped, from_start=START)
    assert [(p.end, p.percent) for p in phases] == [
        (add_interval(START, "year", 2), Decimal("10.00")),
        (add_interval(START, "year", 3), Decimal("15.00")),
    ]
    assert is_ramp(ramped.term_percents) and not is_ramp(["10.00", "10"]) and not is_ramp([])


def test_a_period_in_a_new_year_takes_that_years_discount_and_mrr(ramped):
    assert follow_term_year(ramped) is False  # year one already holds 10 %
    ramped.current_period_start = add_interval(START, "year", 1)
    ramped.current_period_end = add_interval(START, "year", 2)
    assert follow_term_year(ramped) is True
    ramped.refresh_from_db()
    assert (ramped.renewal_discount_percent, ramped.mrr) == (Decimal("12.50"), 21_656)
    change = LicenseChange.objects.get(license=ramped, kind="term_year")
    assert (change.mrr_before, change.mrr_after, change.to_state["term_year"]) == (222_75, 21_656, 2)
    assert change.reason == "Year 2 of the 3-year term: 12.5 % off"
    assert follow_term_year(ramped) is False  # once per year
    ramped.current_period_start = add_interval(START, "year", 2)
    follow_term_year(ramped)
    ramped.refresh_from_db()
    assert (ramped.renewal_discount_percent, ramped.mrr) == (Decimal("15.00"), 210_37)


def test_a_held_licence_keeps_zero_mrr_but_learns_its_years_discount(ramped):
    ramped.held_from_status, ramped.mrr = "active", 0
    ramped.current_period_start = add_interval(START, "year", 1)
    follow_term_year(ramped)
    ramped.refresh_from_db()
    assert (ramped.renewal_discount_percent, ramped.mrr) == (Decimal("12.50"), 0)


@pytest.mark.parametrize(
    ("percents", "percent", "years", "message"),
    [
        (["10", "12"], Decimal("10"), 3, "each year"),
        (["10", "12", "100"], Decimal("10"), 3, "each year"),
        (["10", "x", "12"], Decimal("10"), 3, "each year"),
        (["10", "12"], Decimal("10"), 1, "each year"),
        (["12", "10"], Decimal("10"), 2, "first year"),
    ],
)
def test_a_ramp_that_does_not_fit_the_term_is_refused_by_field(percents, percent, years, message):
    ramp, errors = clean_year_percents(percents, percent=percent, term_years=years)
    assert ramp == [] and message in errors["year_percents"][0]


def test_a_ramp_is_stored_with_two_decimals_and_a_flat_one_is_none():
    assert clean_year_percents(["10", "12.5"], percent=Decimal("10"), term_years=2) == (["10.00", "12.50"], {})
    assert clean_year_percents(["10", "10.00"], percent=Decimal("10"), term_years=2) == ([], {})
    assert clean_year_percents(None, percent=None, term_years=None) == ([], {})


def test_the_schedule_task_finds_nothing_with_another_tenants_licence(ramped, world_b):
    from billing.tasks import sync_term_schedule

    ramped.stripe_subscription_id = "sub_of_tenant_a"
    ramped.save(update_fields=["stripe_subscription_id"])
    assert sync_term_schedule.apply(args=(world_b.tenant.pk, ramped.pk)).get() == "none"  # Stripe never asked
    ramped.refresh_from_db()
    assert ramped.stripe_schedule_id == ""


def test_the_licence_admin_shows_the_discount_of_each_year_and_walls_other_tenants(ramped, world_a, world_b):
    from accounts.models import Role

    page = world_a.staff_client(Role.ANALYST).get(f"/admin/billing/license/{ramped.pk}/change/")
    assert page.status_code == 200
    assert "year 1: 10 %, year 2: 12.5 %, year 3: 15 %" in page.content.decode()
    other = world_b.staff_client(Role.OWNER).get(f"/admin/billing/license/{ramped.pk}/change/")
    assert (other.status_code, other["Location"]) == (302, "/admin/")  # Django admin: "doesn't exist", nothing shown


def test_a_settled_ramp_that_starts_without_a_discount_drops_the_licences_old_one(ramped):
    from billing.services.licenses import apply_plan_change

    ramped.renewal_discount_percent = Decimal("5.00")  # e.g. a loyalty discount from the term before
    ramped.save()
    apply_plan_change(
        ramped.tenant,
        license=ramped,
        target=ramped.price,
        seats=3,
        addon_prices=[],
        subscription=None,
        tier_stripe_price_id=None,
        activate=False,
        kind="renewal",
        actor="test",
        reason="ramp from 0 %",
        reference="test",
        term_years=3,
        discount_percent=None,  # 0 % in year one: the change carries no coupon
        year_percents=["0.00", "5.00", "10.00"],
    )
    ramped.refresh_from_db()
    assert (ramped.term_percents, ramped.renewal_discount_percent, ramped.mrr) == (
        ["0.00", "5.00", "10.00"],
        Decimal("0.00"),
        24_750,  # 2,970.00 a year / 12, no discount
    )
    assert ramped.commitment_ends_at == add_interval(ramped.current_period_start, "year", 3)
