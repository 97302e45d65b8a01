"""Per-tenant money locale: `Tenant.locale` (default 'en') is what the one formatter (catalog.money) writes
money in wherever a tenant is known: passed in, or the tenant the request, task or command works in."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.template import Context, Template

from accounts.models import Role, Tenant
from accounts.tenancy import tenant_context
from catalog.money import format_money, parse_amount

pytestmark = pytest.mark.django_db

NBSP = "\xa0"


@pytest.fixture
def german(world_a) -> Tenant:
    world_a.tenant.locale = "de_DE"
    world_a.tenant.save()
    return world_a.tenant


def test_a_new_tenant_writes_money_in_english(world_a):
    assert world_a.tenant.locale == "en"
    with tenant_context(world_a.tenant):
        assert format_money(123_450, "EUR") == "€1,234.50"
        assert format_money(123_450, "USD") == "$1,234.50"


def test_a_german_tenant_writes_money_the_german_way_given_or_from_the_tenant_context(german):
    assert format_money(123_450, "EUR", tenant=german) == f"1.234,50{NBSP}€"
    assert format_money(2_900, "USD", tenant=german.pk) == f"29,00{NBSP}$"
    with tenant_context(german):
        assert format_money(123_450, "EUR") == f"1.234,50{NBSP}€"
        assert format_money(2_900, "EUR", whole=True) == f"29{NBSP}€"
        assert format_money(123_450, "EUR", locale="en") == "€1,234.50"  # an explicit locale still wins
        assert Template("{% load catalog_money %}{{ a|money:'EUR' }}").render(Context({"a": 99})) == f"0,99{NBSP}€"
        assert parse_amount("1.234,50", "EUR") == 123_450
    assert format_money(123_450, "EUR") == "€1,234.50"  # outside any tenant: the default


def test_a_changed_locale_is_used_at_once_in_this_process(german):
    with tenant_context(german):
        assert format_money(100, "EUR") == f"1,00{NBSP}€"
        german.locale = "en_GB"
        german.save()
        assert format_money(100, "EUR") == "€1.00"


def test_another_tenants_locale_never_leaks_into_this_ones_money(german, world_b):
    with tenant_context(world_b.tenant):
        assert format_money(123_450, "EUR") == "€1,234.50"
    with tenant_context(german):
        assert format_money(123_450, "EUR") == f"1.234,50{NBSP}€"


@pytest.mark.parametrize("bad", ["xx_YY", "not a locale", ""])
def test_an_unknown_locale_is_refused(world_a, bad):
    world_a.tenant.locale = bad
    with pytest.raises(ValidationError) as caught:
        world_a.tenant.full_clean()
    assert "locale" in caught.value.message_dict


def test_the_owner_sets_the_locale_on_the_tenant_settings_and_the_admin_shows_money_in_it(world_a, ladder):
    owner = world_a.staff_client(Role.OWNER)
    url = f"/admin/accounts/tenant/{world_a.tenant.pk}/change/"
    page = owner.get(url)
    assert page.status_code == 200 and 'name="locale"' in page.content.decode()
    form = {
        "name": world_a.tenant.name,
        "time_zone": world_a.tenant.time_zone,
        "locale": "de_DE",
        "default_currency": world_a.tenant.default_currency,
        "event_late_arrival_days": world_a.tenant.event_late_arrival_days,
    }
    assert owner.post(url, form).status_code == 302
    world_a.tenant.refresh_from_db()
    assert world_a.tenant.locale == "de_DE"

    tiers = owner.get("/admin/catalog/tier/").content.decode()
    assert f"29,00{NBSP}$" in tiers or "29,00&nbsp;$" in tiers  # Team's $29.00 a month, written the German way
    assert "$29.00" not in tiers

    refused = owner.post(url, {**form, "locale": "xx_YY"})
    assert refused.status_code == 200 and "not a known locale" in refused.content.decode()
