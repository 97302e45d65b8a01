"""What read-only catalog pages and lists show: JSON written by product managers reads as lists, money as money."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from catalog.admin_display import (
    bullet_list,
    local_date,
    money_cell,
    parse_instant,
    scenario_list,
    term_rule_lines,
    volume_rule_lines,
)
from catalog.models import Tier

pytestmark = pytest.mark.django_db


def test_a_published_tier_shows_its_outcomes_as_bullets_not_json(world_a, full_a):
    Tier.objects.filter(pk=full_a.team.pk).update(outcomes=["Ship weekly", "<b>No</b> firefighting"])
    body = world_a.staff_client("product_manager").get(f"/admin/catalog/tier/{full_a.team.pk}/change/").content
    html = body.decode()
    assert '<ul class="tw-bullets"><li>Ship weekly</li><li>&lt;b&gt;No&lt;/b&gt; firefighting</li></ul>' in html
    assert '["Ship weekly"' not in html and "[&quot;Ship weekly&quot;" not in html


def test_a_published_tier_shows_entitlement_limits_with_units_and_prices_only_as_money(world_a, full_a):
    html = world_a.staff_client("product_manager").get(f"/admin/catalog/tier/{full_a.team.pk}/change/").content
    html = html.decode()
    assert "50,000 API calls" in html and "25 seats" in html
    assert "$29.00 / seat / month" in html
    assert ">2900<" not in html  # the raw minor units column is left out of read-only prices


def test_a_draft_tier_still_edits_outcomes_as_lines(world_a, full_a):
    draft = full_a.extras["draft"]
    Tier.objects.filter(pk=draft.pk).update(outcomes=["Ship weekly", "Fewer incidents"])
    html = world_a.staff_client("product_manager").get(f"/admin/catalog/tier/{draft.pk}/change/").content.decode()
    assert 'name="outcomes"' in html and "Ship weekly\nFewer incidents</textarea>" in html


def test_someone_who_may_only_view_a_draft_sees_its_outcomes_as_bullets(world_a, full_a):
    draft = full_a.extras["draft"]
    Tier.objects.filter(pk=draft.pk).update(outcomes=["Ship weekly"])
    html = world_a.staff_client("analyst").get(f"/admin/catalog/tier/{draft.pk}/change/").content.decode()
    assert 'name="outcomes"' not in html and "<li>Ship weekly</li>" in html


def test_a_published_bundle_and_discount_policy_show_scenarios_and_rules_as_lists(world_a, full_a):
    client = world_a.staff_client("product_manager")
    bundle = client.get(f"/admin/catalog/bundle/{full_a.extras['bundle'].pk}/change/").content.decode()
    assert "<li><strong>A 12-person clinic</strong><br>Audit-ready in a week.</li>" in bundle
    assert "&quot;story&quot;" not in bundle and '"story"' not in bundle
    policy = client.get(f"/admin/catalog/discountpolicy/{full_a.extras['policy'].pk}/change/").content.decode()
    assert "<li>2 years: 10 %</li><li>3 years: 15 %</li>" in policy
    assert "<li>50+ seats: 5 %</li>" in policy
    assert "min_seats" not in policy


def test_revise_is_not_offered_while_a_newer_version_is_open(world_a, full_a):
    client = world_a.staff_client("product_manager")
    client.post(f"/admin/catalog/tier/{full_a.team.pk}/governance/revise/")
    v2 = Tier.objects.get(tenant=full_a.tenant, key="team", version=2)
    html = client.get(f"/admin/catalog/tier/{full_a.team.pk}/change/").content.decode()
    assert 'data-testid="open-version"' in html and f"/admin/catalog/tier/{v2.pk}/change/" in html
    assert 'data-transition="revise" disabled' in html


def test_tier_and_price_lists_show_money_in_unbreakable_right_aligned_cells(world_a, full_a):
    client = world_a.staff_client("product_manager")
    tiers = client.get("/admin/catalog/tier/").content.decode()
    assert 'class="field-monthly_money"><span class="tw-money" title="per seat">$29.00</span>' in tiers
    prices = client.get("/admin/catalog/price/").content.decode()
    assert '<span class="tw-money">$290.00</span>' in prices
    assert "catalog/admin.css" in prices  # the stylesheet that right-aligns the money columns
    assert "Team v1" in prices


def test_display_helpers_keep_money_in_minor_units_and_dates_in_the_active_zone():
    assert str(money_cell(123456, "USD")) == '<span class="tw-money">$1,234.56</span>'
    assert str(money_cell(1500, "JPY")) == '<span class="tw-money">¥1,500</span>'
    assert str(money_cell(None, "USD")) == '<span class="tw-money">—</span>'
    late = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
    assert parse_instant("2026-12-04T23:30:00+00:00") == late
    assert parse_instant("2026-12-04T23:30:00") == late  # naive JSON is UTC
    assert parse_instant("not a date") is None and parse_instant(None) is None
    assert local_date(late) == "4 Dec 2026"
    with timezone.override("Europe/Berlin"):
        assert local_date(late) == "5 Dec 2026"
    assert local_date(None) == "—"


def test_list_helpers_escape_and_describe_rules():
    assert bullet_list([]) == "—"
    assert str(bullet_list(["<i>x</i>"])) == '<ul class="tw-bullets"><li>&lt;i&gt;x&lt;/i&gt;</li></ul>'
    assert "<strong>T</strong><br>S" in str(scenario_list([{"title": "T", "story": "S"}]))
    assert term_rule_lines([{"years": 1, "percent": "0"}, {"years": 2, "percent": "12.5"}]) == [
        "1 year: 0 %",
        "2 years: 12.5 %",
    ]
    assert volume_rule_lines(
        [{"min_seats": 1, "max_seats": 49, "percent": "0"}, {"min_seats": 50, "max_seats": None, "percent": "5"}]
    ) == ["1–49 seats: 0 %", "50+ seats: 5 %"]
