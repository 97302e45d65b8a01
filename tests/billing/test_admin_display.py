"""How the billing admin shows money, dates and history: minor units as money in the licence's currency,
instants as dates in the tenant's time zone, history rows with a meaningful heading."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone
from django.utils.html import strip_tags

from billing.admin import render_lines
from billing.models import LicenseChange, PlanChange
from tests.billing.factories import make_catalog, make_license
from tests.isolation import admin_url

pytestmark = pytest.mark.django_db

# 23:30 UTC on 4 Dec is already 5 Dec in Berlin: the date shown must be the tenant's.
LATE_EVENING_UTC = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)


@pytest.fixture
def berlin(world_a):
    world_a.tenant.time_zone = "Europe/Berlin"
    world_a.tenant.save(update_fields=["time_zone"])
    return world_a


def change_for(license, **fields) -> LicenseChange:
    defaults = {
        "tenant": license.tenant,
        "account": license.account,
        "license": license,
        "kind": "upgrade",
        "actor_label": "csm@example.test",
        "mrr_before": 777500,
        "mrr_after": 1234567,
        "currency": license.currency,
        "effective_at": LATE_EVENING_UTC,
    }
    return LicenseChange.objects.create(**{**defaults, **fields})


def test_a_licence_change_reads_as_what_happened_when_and_its_mrr(world_a):
    catalog = make_catalog(world_a.tenant)
    change = change_for(make_license(world_a.account, catalog.prices["team-month"]))
    assert str(change) == "Upgrade on 4 Dec 2026: MRR $7,775.00 → $12,345.67"
    with timezone.override("Europe/Berlin"):
        assert str(change) == "Upgrade on 5 Dec 2026: MRR $7,775.00 → $12,345.67"
    assert change_for(change.license, kind="past_due", currency="EUR", mrr_after=0).kind_label == "Past due"


def test_a_licence_change_in_another_currency_or_without_minor_units_is_shown_in_that_currency(world_a):
    catalog = make_catalog(world_a.tenant)
    license = make_license(world_a.account, catalog.prices["team-month"])
    assert "€7,775.00 → €12,345.67" in str(change_for(license, currency="EUR"))
    assert "¥777,500 → ¥1,234,567" in str(change_for(license, currency="JPY"))  # zero-decimal: no / 100


def test_the_licence_page_shows_change_history_money_in_the_licence_currency_with_a_heading(berlin):
    catalog = make_catalog(berlin.tenant)
    license = make_license(berlin.account, catalog.prices["team-month"])
    change_for(license)
    html = berlin.staff_client("owner").get(admin_url(license)).content.decode()
    assert "LicenseChange object" not in html
    assert "Upgrade on 5 Dec 2026: MRR $7,775.00 → $12,345.67" in html  # the row heading, tenant's date
    assert '<span class="tw-money">$7,775.00</span>' in html and '<span class="tw-money">$12,345.67</span>' in html
    assert ">777500<" not in html and ">1234567<" not in html


def test_the_licence_list_shows_mrr_as_money_in_an_unbreakable_cell(world_a):
    catalog = make_catalog(world_a.tenant)
    license = make_license(world_a.account, catalog.prices["team-month"], seats=3)
    html = world_a.staff_client("owner").get(admin_url(type(license), "changelist")).content.decode()
    assert '<span class="tw-money">$87.00</span>' in html
    assert "billing/admin.css" in html  # right-aligned, nowrap money columns


def test_quote_lines_show_periods_as_dates_in_the_tenant_time_zone_and_never_raw_iso(berlin):
    catalog = make_catalog(berlin.tenant)
    license = make_license(berlin.account, catalog.prices["team-month"])
    change = PlanChange.objects.create(
        tenant=berlin.tenant,
        license=license,
        account=berlin.account,
        kind="upgrade",
        target_price=catalog.prices["business-month"],
        target_seats=3,
        quote_expires_at=timezone.now(),
        quote_lines=[
            {
                "description": "Remaining time on 3 × Business",
                "amount": 6706,
                "proration": True,
                "period_start": LATE_EVENING_UTC.isoformat(),
                "period_end": "2027-01-04T23:30:00+00:00",
            }
        ],
        quote_total=6706,
        quote_amount_due=6706,
        local_estimate={"amount_due_now": 6706, "lines": [6706], "matches_stripe": True, "mrr_after": 29700},
    )
    html = berlin.staff_client("owner").get(admin_url(change)).content.decode()
    assert "5 Dec 2026 → 5 Jan 2027" in strip_tags(html)
    assert "2026-12-04T23:30:00+00:00" not in html  # the stored UTC ISO string is never shown
    assert "$67.06" in html
    # The local estimate is summarised in money, not dumped as JSON.
    assert "Matches Stripe&#x27;s preview" in html or "Matches Stripe's preview" in html
    assert '"amount_due_now"' not in html and "$297.00" in html


def test_render_lines_tolerates_lines_without_periods_and_formats_negative_amounts():
    html = render_lines([{"description": "Credit", "amount": -1965}], "USD", -1965)
    assert "-$19.65" in html and "→" not in html
