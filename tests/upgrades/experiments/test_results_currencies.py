"""Issue 18: billed revenue and MRR gained are per currency. Charges in USD and EUR are reported, compared and shown
separately (minor units of each, with the code beside), never added together; the API answers within its schema."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import reverse
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from accounts import services
from accounts.models import Role
from billing.models import LicenseChange, PlanChange, PlanChangeState
from catalog.models import Price
from tests.upgrades.experiments.test_results_admin import NOW, _assign, _experiment
from tests.usage.factories import give_license, make_catalog
from upgrades.experiments.buckets import CONTROL
from upgrades.experiments.results import results

pytestmark = pytest.mark.django_db


def _charge(tenant, catalog, row, *charges: tuple[int, str], after_days: int = 5) -> None:
    """Settled plan changes on the account's one licence, each (charged_amount, currency)."""
    lic = getattr(row.account, "license", None) or give_license(row.account, catalog.team)
    price = Price.objects.filter(tenant=tenant, tier=catalog.business).first() or Price.objects.create(
        tenant=tenant, tier=catalog.business, key="business-month", interval="month", amount=9_900
    )
    at = row.assigned_at + dt.timedelta(days=after_days)
    for amount, currency in charges:
        PlanChange.objects.create(tenant=tenant, license=lic, account=row.account, kind="upgrade", target_price=price,
                                  state=PlanChangeState.SETTLED, settled_at=at, charged_amount=amount,
                                  currency=currency, quote_expires_at=at)  # fmt: skip


@pytest.fixture
def mixed(world_a):
    """10 treated, 10 controls. Treated: 4,000 + 4,000 + 1,000 USD and 3,000 + 2,000 EUR (one account pays in
    both); a 99,999 EUR charge after the 30 days. Controls: 2,000 USD, nothing in EUR."""
    catalog = make_catalog(world_a.tenant)
    experiment = _experiment(world_a.tenant)
    treated = _assign(world_a.tenant, experiment, "b", 10)
    controls = _assign(world_a.tenant, experiment, CONTROL, 10)
    _charge(world_a.tenant, catalog, treated[0], (4_000, "USD"))
    _charge(world_a.tenant, catalog, treated[1], (4_000, "USD"))
    _charge(world_a.tenant, catalog, treated[2], (3_000, "EUR"))
    _charge(world_a.tenant, catalog, treated[3], (1_000, "USD"), (2_000, "EUR"))
    _charge(world_a.tenant, catalog, treated[4], (99_999, "EUR"), after_days=45)
    _charge(world_a.tenant, catalog, controls[0], (2_000, "USD"))
    # MRR: treated gain 3,000 USD and 1,500 EUR a month in all; a control gains 1,000 USD, another loses 500 EUR.
    for row, gained, currency in ((treated[0], 3_000, "USD"), (treated[2], 1_500, "EUR"),
                                  (controls[0], 1_000, "USD"), (controls[1], -500, "EUR")):  # fmt: skip
        LicenseChange.objects.create(tenant=world_a.tenant, account=row.account, kind="upgrade", actor_label="t",
                                     mrr_before=2_000, mrr_after=2_000 + gained, currency=currency,
                                     effective_at=row.assigned_at + dt.timedelta(days=5))  # fmt: skip
    return experiment


def test_revenue_in_two_currencies_is_reported_per_currency_and_never_summed(world_a, mixed):
    out = results(world_a.tenant, mixed, window_days=30, now=NOW)
    b, c = out.arms["b"], out.arms[CONTROL]
    assert out.currencies == ["EUR", "USD"]
    assert b.revenue_minor == [("EUR", 500), ("USD", 900)]  # 5,000 EUR / 10 and 9,000 USD / 10, not 1,400
    assert c.revenue_minor == [("EUR", 0), ("USD", 200)]
    assert b.revenue["USD"][3] == 1_000 and b.revenue["EUR"][3] == 2_000  # the account paying in both
    [comparison] = out.comparisons
    lifts = {r.currency: r.comparison.estimate for r in comparison.revenue}
    assert lifts == {"EUR": 500, "USD": 700}
    assert results(world_a.tenant, mixed, window_days=90, now=NOW).arms["b"].revenue_minor[0] == ("EUR", 10_500)


def test_mrr_gained_in_two_currencies_is_reported_per_currency_and_never_summed(world_a, mixed):
    out = results(world_a.tenant, mixed, window_days=30, now=NOW)
    b, c = out.arms["b"], out.arms[CONTROL]
    assert out.mrr_currencies == ["EUR", "USD"]
    assert b.mrr_minor == [("EUR", 150), ("USD", 300)]  # not 450 of anything
    assert c.mrr_minor == [("EUR", -50), ("USD", 100)]
    assert (b.converted, c.converted) == (2, 1)  # a fall in MRR is no conversion


def test_the_api_reports_each_currency_within_its_schema(world_a, mixed):
    import schemathesis

    _, secret = services.create_api_key(world_a.tenant, name="schema", scopes=["read"], actor="t")
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", WSGIHandler())
        detail = schema["/api/v1/experiments/{id}"]["GET"]
        response = detail.Case(path_parameters={"id": mixed.pk}).call_and_validate(
            headers={"Authorization": f"Bearer {secret}"},
            checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        )
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert response.status_code == 200
    arms = {a["arm"]: a for a in response.json()["results"]["arms"]}
    b, control = arms["b"], arms[CONTROL]
    assert b["billed_revenue_per_account"] is None and b["billed_revenue_currency"] is None  # no one sum
    assert b["revenue_lift"] is None
    assert [(r["currency"], r["revenue_per_account_minor"]) for r in b["revenue_by_currency"]] == [
        ("EUR", 500),
        ("USD", 900),
    ]
    assert [r["revenue_lift"]["estimate"] for r in b["revenue_by_currency"]] == [500, 700]
    assert [
        (r["currency"], r["revenue_per_account_minor"], r["revenue_lift"]) for r in control["revenue_by_currency"]
    ] == [
        ("EUR", 0, None),
        ("USD", 200, None),
    ]
    assert b["mrr_gained_per_account"] is None and b["mrr_gained_currency"] is None
    assert [(r["currency"], r["mrr_gained_per_account_minor"]) for r in b["mrr_gained_by_currency"]] == [
        ("EUR", 150),
        ("USD", 300),
    ]


def test_the_results_page_shows_each_currency_with_its_code(world_a, mixed):
    page = world_a.staff_client(Role.ANALYST).get(reverse("admin:upgrades_experiment_change", args=[mixed.pk]))
    text = page.content.decode()
    assert "€5.00 EUR" in text and "$9.00 USD" in text  # the treated arm, per currency
    assert "€0.00 EUR" in text and "$2.00 USD" in text  # the controls
    assert "$7.00" in text and "€5.00 (" in text  # lifts, each in its own currency
    assert "14.00" not in text  # 5.00 EUR + 9.00 USD is never shown
    assert "€1.50 EUR" in text and "$3.00 USD" in text and "4.50" not in text  # MRR gained, likewise
