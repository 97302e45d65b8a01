"""A ramped multi-year proposal billed for real: accepted -> settled -> a subscription schedule in the stand-in,
then the stand-in advanced year by year; every renewal Stripe invoices is the price path's row (amount and
date), its preview beforehand says the same, and the licence's discount and MRR follow each year.

Hand-worked: Business annual 990.00 a seat, 3 seats = 2,970.00 a year; the ramp 10 %, 12.5 %, 15 % gives
2,673.00, 2,598.75 and 2,524.50 (each line's discount rounded once, as Stripe does).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.models import Role
from billing.models import LicenseChange, PlanChange, PlanChangeState
from billing.services import licenses
from billing.services.stripe_accounts import stripe_for
from billing.stripe_schedules import retrieve_schedule
from tests.billing import conftest as billing_fixtures
from tests.billing.helpers import billed_license, latest_invoice, webhook_url
from tests.conftest import wait_for
from upgrades.console.models import Proposal, ProposalState
from upgrades.console.services import proposals as services
from upgrades.console.services.options import OptionRequest

from .helpers import publish_policy

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin
RAMP = (Decimal("10"), Decimal("12.5"), Decimal("15"))


def _ramped_and_accepted(world, standin, live_server, *, price_key: str):
    billed = billed_license(
        world.tenant, world.account, standin, webhook_url=webhook_url(live_server, world.tenant), price_key=price_key
    )
    publish_policy(world.tenant, term_rules=[{"years": 2, "percent": "10"}, {"years": 3, "percent": "15"}])
    csm = world.staff[Role.CSM]
    proposal = services.build_proposal(
        world.tenant,
        account=world.account,
        actor=csm,
        options=[OptionRequest(tier="business", interval="year", seats=3, term_years=3, year_percents=RAMP)],
    )
    option = proposal.options.get()
    services.share_proposal(world.tenant, proposal=proposal, actor=csm)
    accepted = services.accept_proposal(world.tenant, proposal=proposal, option_key=option.key, actor="customer")
    assert accepted.plan_change.year_percents == ["10.00", "12.50", "15.00"]
    assert wait_for(lambda: Proposal.objects.filter(pk=proposal.pk, state=ProposalState.FULFILLED).first(), timeout=40)
    settled = PlanChange.objects.get(pk=accepted.plan_change_id)
    assert settled.state == PlanChangeState.SETTLED and settled.charge_mismatch == {}
    assert settled.charged_amount == option.price_path[0]["amount"]  # row 1: charged at acceptance
    license = wait_for(lambda: billed.refresh() if billed.refresh().stripe_schedule_id else None, timeout=30)
    assert license.term_percents == ["10.00", "12.50", "15.00"]
    return billed, option


def _walk_the_renewals(billed, standin, rows):
    """Advance the stand-in through each renewal row: preview == invoice == row, the licence follows the year."""
    gateway = stripe_for(billed.tenant)
    for row in rows:
        license = billed.refresh()
        preview = gateway.preview_next_invoice(
            customer_id=license.stripe_customer_id, subscription_id=license.stripe_subscription_id
        )
        assert preview.total == row["amount"], row
        standin.advance(license.stripe_subscription_id)
        invoice = latest_invoice(billed, standin)
        assert (invoice["billing_reason"], invoice["amount_paid"]) == ("subscription_cycle", row["amount"]), row
        starts = datetime.fromtimestamp(invoice["lines"]["data"][0]["period"]["start"], UTC)
        assert starts.isoformat() == row["date"]
        license = wait_for(  # the webhook: the licence is in the new period
            lambda r=row: billed.refresh() if billed.refresh().current_period_start.isoformat() == r["date"] else None,
            timeout=30,
        )
        percent = Decimal(row["percent"])
        assert license.renewal_discount_percent == percent
        assert license.mrr == licenses.compute_mrr(price=license.price, seats=3, discount_percent=percent)


def test_a_fresh_ramp_is_invoiced_row_by_row_and_the_licence_follows_each_year(
    world_a, standin, live_server, celery_worker_process
):
    billed, option = _ramped_and_accepted(world_a, standin, live_server, price_key="team-month")
    rows = option.price_path
    assert [(r["kind"], r["year"], r["amount"]) for r in rows] == [
        ("today", 1, rows[0]["amount"]),
        ("renewal", 2, 259_875),
        ("renewal", 3, 252_450),
    ]
    license = billed.refresh()
    assert license.commitment_ends_at.isoformat() == option.option["term_ends_at"]
    schedule = retrieve_schedule(stripe_for(world_a.tenant), license.stripe_schedule_id)
    assert [p.end for p in schedule.phases if p.end > license.current_period_start] == [
        datetime.fromisoformat(rows[1]["date"]),
        datetime.fromisoformat(rows[2]["date"]),
        license.commitment_ends_at,
    ]

    _walk_the_renewals(billed, standin, rows[1:])
    assert list(
        LicenseChange.objects.filter(license=license, kind="term_year")
        .order_by("effective_at")
        .values_list("to_state__term_year", flat=True)
    ) == [2, 3]

    # The term's end: the renewal (a day ahead, as the stand-in's clock stands still) releases the schedule and
    # puts the loyalty discount on; Stripe's next invoice carries it.
    end = billed.refresh().commitment_ends_at
    assert licenses.renew_due_terms(now=end - timedelta(hours=2)) == 1
    license = billed.refresh()
    assert (license.term_percents, license.stripe_schedule_id, license.renewal_discount_percent) == (
        [],
        "",
        Decimal("5.00"),
    )
    assert retrieve_schedule(stripe_for(world_a.tenant), schedule.id).status == "released"
    standin.advance(license.stripe_subscription_id)
    assert latest_invoice(billed, standin)["amount_paid"] == 297_000 - 14_850


def test_a_mid_period_ramp_runs_its_years_from_the_renewal(world_a, standin, live_server, celery_worker_process):
    billed, option = _ramped_and_accepted(world_a, standin, live_server, price_key="team-year")
    rows = option.price_path
    # Today's charge is the rest of the current year (prorated); the term's three years are the three renewals.
    assert [(r["kind"], r["year"], r["amount"]) for r in rows[1:]] == [
        ("renewal", 1, 267_300),
        ("renewal", 2, 259_875),
        ("renewal", 3, 252_450),
    ]
    license = billed.refresh()
    assert license.commitment_ends_at.isoformat() == option.option["term_ends_at"]
    assert license.renewal_discount_percent == Decimal("10.00")
    _walk_the_renewals(billed, standin, rows[1:])

    # Past the term's last phase (no renewal ran): Stripe completes the schedule and the licence lets go of it.
    schedule_id = billed.refresh().stripe_schedule_id
    standin.advance(billed.license.stripe_subscription_id)
    assert wait_for(lambda: billed.refresh().stripe_schedule_id == "", timeout=30)
    assert retrieve_schedule(stripe_for(world_a.tenant), schedule_id).status == "completed"
    assert latest_invoice(billed, standin)["amount_paid"] == 252_450  # the subscription renews as it stands


def test_cancelling_releases_the_schedule_and_reactivating_puts_the_ramp_back(
    world_a, standin, live_server, celery_worker_process
):
    billed, _ = _ramped_and_accepted(world_a, standin, live_server, price_key="team-month")
    gateway = stripe_for(world_a.tenant)
    first = billed.refresh().stripe_schedule_id
    licenses.set_cancel_at_period_end(world_a.tenant, license=billed.refresh(), cancel=True, actor="test")
    license = billed.refresh()
    assert license.cancel_at_period_end and license.stripe_schedule_id == ""
    assert retrieve_schedule(gateway, first).status == "released"
    assert gateway.retrieve_subscription(license.stripe_subscription_id).cancel_at_period_end is True

    licenses.set_cancel_at_period_end(world_a.tenant, license=license, cancel=False, actor="test")
    again = wait_for(lambda: billed.refresh().stripe_schedule_id or None, timeout=30)
    assert again != first and retrieve_schedule(gateway, again).status == "active"
    assert [p.coupon_id is not None for p in retrieve_schedule(gateway, again).phases] == [True, True, True]


def test_a_seat_change_mid_ramp_redraws_the_schedule_with_the_new_seats(
    world_a, standin, live_server, celery_worker_process
):
    from billing.services import plan_changes

    billed, _ = _ramped_and_accepted(world_a, standin, live_server, price_key="team-month")
    gateway = stripe_for(world_a.tenant)
    license = billed.refresh()
    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=license, target_price=license.price, seats=5, requested_by="test"
    )
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="test")
    assert wait_for(lambda: PlanChange.objects.filter(pk=quote.pk, state=PlanChangeState.SETTLED).first(), timeout=30)

    def redrawn():
        phases = retrieve_schedule(gateway, billed.refresh().stripe_schedule_id).phases
        return phases if phases and all(i.quantity == 5 for p in phases for i in p.items) else None

    assert len(wait_for(redrawn, timeout=30)) == 3
    license = billed.refresh()
    assert license.term_percents == ["10.00", "12.50", "15.00"] and license.seats == 5
    # Year two: 5 seats x 990.00 = 4,950.00 less 12.5 % (618.75) = 4,331.25, as Stripe previews and invoices it.
    preview = gateway.preview_next_invoice(
        customer_id=license.stripe_customer_id, subscription_id=license.stripe_subscription_id
    )
    assert preview.total == 433_125
    standin.advance(license.stripe_subscription_id)
    assert latest_invoice(billed, standin)["amount_paid"] == 433_125
