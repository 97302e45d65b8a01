"""Add-on items in plan changes, and the tenant's option to credit a downgrade at once, against the stand-in.

Hand-worked numbers. Catalog (tests/billing/factories.py), per seat a month: Team 29.00, Business 99.00,
SSO add-on 5.00. Every change below happens at exactly half the current period, so each prorated line is
half of a full period's amount whatever the month's length.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from billing.errors import InvalidInput
from billing.models import LicenseChange, PlanChangeKind, PlanChangeState, StripeAccount, StripePrice
from billing.services import plan_changes
from billing.services.stripe_accounts import stripe_for
from tests.billing.helpers import Billed, billed_license

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def halfway(billed: Billed) -> datetime:
    license = billed.refresh()
    return license.current_period_start + (license.current_period_end - license.current_period_start) / 2


def stripe_items(billed: Billed) -> dict[str, int]:
    subscription = stripe_for(billed.tenant).retrieve_subscription(billed.license.stripe_subscription_id)
    names = {sp.stripe_price_id: sp.price.key for sp in StripePrice.objects.filter(tenant=billed.tenant)}
    return {names[price_id]: quantity for price_id, quantity in subscription.quantities().items()}


def test_adding_an_add_on_mid_period_charges_only_its_remaining_half_and_adds_it_to_the_licence(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin, days_into_period=20)
    sso = billed.catalog.prices["sso-month"]

    quote = plan_changes.quote_plan_change(
        world_a.tenant,
        license=billed.license,
        target_price=billed.catalog.prices["team-month"],
        addon_prices=[sso],
        at=halfway(billed),
    )

    # Team is unchanged (no line); SSO for 3 seats: 1,500 a month, half of it now.
    assert quote.kind == PlanChangeKind.UPGRADE
    assert [(line["amount"], line["proration"], line["quantity"]) for line in quote.quote_lines] == [(750, True, 3)]
    assert quote.quote_amount_due == 750
    assert quote.local_estimate["amount_due_now"] == 750 and quote.local_estimate["matches_stripe"] is True
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="t")
    quote.refresh_from_db()
    assert quote.state == PlanChangeState.SETTLED and quote.charge_mismatch == {} and quote.charged_amount == 750
    license = billed.refresh()
    assert list(license.addons.values_list("key", flat=True)) == ["sso"]
    assert license.mrr == 8_700 + 1_500
    assert stripe_items(billed) == {"team-month": 3, "sso-month": 3}
    change = LicenseChange.objects.get(license=license, kind="upgrade")
    assert (change.mrr_before, change.mrr_after, change.to_state["addons"]) == (8_700, 10_200, ["sso"])

    # Upgrading the tier keeps the add-on item (same Stripe item, no line for it) and prorates the tier:
    # credit -8,700 / 2 = -4,350, charge 29,700 / 2 = 14,850; due 10,500.
    upgrade = plan_changes.quote_plan_change(
        world_a.tenant,
        license=license,
        target_price=billed.catalog.prices["business-month"],
        addon_prices=[sso],
        at=halfway(billed),
    )
    assert [line["amount"] for line in upgrade.quote_lines] == [-4_350, 14_850]
    assert upgrade.quote_amount_due == 10_500 == upgrade.local_estimate["amount_due_now"]
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=upgrade, actor="t")
    upgrade.refresh_from_db()
    assert upgrade.state == PlanChangeState.SETTLED and upgrade.charge_mismatch == {}
    assert stripe_items(billed) == {"business-month": 3, "sso-month": 3}
    assert billed.refresh().mrr == 29_700 + 1_500


def test_removing_an_add_on_waits_for_the_period_end_and_deletes_its_stripe_item_without_a_refund(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin, days_into_period=20)
    team, sso = billed.catalog.prices["team-month"], billed.catalog.prices["sso-month"]
    add = plan_changes.quote_plan_change(
        world_a.tenant, license=billed.license, target_price=team, addon_prices=[sso], at=halfway(billed)
    )
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=add, actor="t")
    invoices = len(standin.invoices(billed.api_key, billed.license.stripe_customer_id))

    remove = plan_changes.quote_plan_change(
        world_a.tenant, license=billed.refresh(), target_price=team, addon_prices=[]
    )

    period_end = billed.license.current_period_end
    assert (remove.kind, remove.quote_amount_due, remove.effective_at) == (PlanChangeKind.DOWNGRADE, 0, period_end)
    assert [line["amount"] for line in remove.quote_lines] == [8_700]  # what the next period will bill
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=remove, actor="t")
    plan_changes.apply_due_plan_changes(now=period_end - timedelta(minutes=30))
    assert stripe_items(billed) == {"team-month": 3}  # Stripe first, without proration
    assert list(billed.refresh().addons.values_list("key", flat=True)) == ["sso"]  # paid for until the end
    plan_changes.apply_due_plan_changes(now=period_end + timedelta(seconds=1))
    license = billed.refresh()
    assert list(license.addons.values_list("key", flat=True)) == [] and license.mrr == 8_700
    assert len(standin.invoices(billed.api_key, billed.license.stripe_customer_id)) == invoices


def test_add_ons_must_match_the_plans_interval_and_be_add_on_prices(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    for wrong in (billed.catalog.prices["sso-year"], billed.catalog.prices["business-month"]):
        with pytest.raises(InvalidInput) as excinfo:
            plan_changes.quote_plan_change(
                world_a.tenant,
                license=billed.license,
                target_price=billed.catalog.prices["team-month"],
                addon_prices=[wrong],
            )
        assert "addon_prices" in excinfo.value.details


def test_with_the_prorated_credit_option_a_downgrade_applies_now_and_credits_the_unused_half(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin, price_key="business-month", days_into_period=20)
    StripeAccount.objects.filter(tenant=world_a.tenant).update(downgrade_prorated_credit=True)

    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=billed.license, target_price=billed.catalog.prices["team-month"], at=halfway(billed)
    )

    # Credit for unused Business: -29,700 / 2 = -14,850; remaining Team: 8,700 / 2 = 4,350. Total -10,500:
    # nothing is due and Stripe keeps 10,500 as the customer's credit balance (never a refund).
    assert (quote.kind, quote.effective_at) == (PlanChangeKind.DOWNGRADE, None)
    assert [line["amount"] for line in quote.quote_lines] == [-14_850, 4_350]
    assert (quote.quote_total, quote.quote_amount_due) == (-10_500, 0)
    assert quote.local_estimate["amount_due_now"] == 0 and quote.local_estimate["matches_stripe"] is True
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="t")
    quote.refresh_from_db()
    assert quote.state == PlanChangeState.SETTLED and quote.charge_mismatch == {}
    assert (quote.charged_amount, quote.settled_via) == (0, "sync")
    license = billed.refresh()
    assert (license.tier.key, license.mrr) == ("team", 8_700)
    change = LicenseChange.objects.get(license=license, kind="downgrade")
    assert (change.mrr_before, change.mrr_after) == (29_700, 8_700)
    customer = standin.get(f"/v1/customers/{license.stripe_customer_id}", billed.api_key)
    assert customer["balance"] == -10_500

    # The next renewal spends the credit: Team 8,700 is covered, 1,800 of credit is left.
    standin.advance(license.stripe_subscription_id)
    invoice = max(standin.invoices(billed.api_key, license.stripe_customer_id), key=lambda i: i["number"])
    assert (invoice["total"], invoice["amount_due"], invoice["status"]) == (8_700, 0, "paid")
    assert standin.get(f"/v1/customers/{license.stripe_customer_id}", billed.api_key)["balance"] == -1_800


def test_without_the_option_the_same_downgrade_waits_for_the_period_end(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin, price_key="business-month")
    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=billed.license, target_price=billed.catalog.prices["team-month"]
    )
    assert (quote.quote_amount_due, quote.effective_at) == (0, billed.license.current_period_end)
