"""A shared proposal accepted in the portal's name -> billing -> Stripe stand-in -> a real Celery worker ->
settled -> the proposal fulfilled. Each price-path row is what Stripe charges: the first row is the charge
at acceptance, the second the renewal Stripe will invoice (flat multi-year: one price with a coupon).

Hand-worked: Business 990.00 per seat a year, 3 seats: 2,970.00; the policy's 2-year rule takes 10 %
(297.00): 2,673.00 a year for the term.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Role
from billing.models import PlanChange, PlanChangeState
from billing.services.stripe_accounts import stripe_for
from catalog.models import DiscountPolicy, GovernanceState
from tests.billing import conftest as billing_fixtures
from tests.billing.helpers import billed_license
from tests.conftest import wait_for
from upgrades.console.models import Proposal, ProposalState
from upgrades.console.services import proposals as services
from upgrades.console.services.options import OptionRequest

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin


def test_accepted_two_year_proposal_settles_and_stripe_charges_each_row(
    world_a, standin, live_server, celery_worker_process
):
    billed = billed_license(
        world_a.tenant,
        world_a.account,
        standin,
        webhook_url=f"{live_server.url}/billing/stripe/webhook/{world_a.tenant.slug}/",
    )
    DiscountPolicy.objects.create(
        tenant=world_a.tenant,
        key="standard",
        name="Standard",
        term_rules=[{"years": 2, "percent": "10"}],
        state=GovernanceState.PUBLISHED,
        published_at=timezone.now(),
    )
    csm = world_a.staff[Role.CSM]
    proposal = services.build_proposal(
        world_a.tenant,
        account=world_a.account,
        actor=csm,
        options=[OptionRequest(tier="business", interval="year", seats=3, term_years=2)],
    )
    option = proposal.options.get()
    assert option.option["amount"] == 267_300
    rows = option.price_path
    assert rows[1]["amount"] == 267_300 and len(rows) == 2
    services.share_proposal(world_a.tenant, proposal=proposal, actor=csm)

    accepted = services.accept_proposal(world_a.tenant, proposal=proposal, option_key=option.key, actor="customer")
    assert accepted.state == ProposalState.ACCEPTED
    pc = accepted.plan_change
    assert (pc.discount_percent, pc.term_years) == (Decimal("10.00"), 2)

    done = wait_for(lambda: Proposal.objects.filter(pk=proposal.pk, state=ProposalState.FULFILLED).first(), timeout=40)
    assert done is not None
    settled = PlanChange.objects.get(pk=pc.pk)
    assert settled.state == PlanChangeState.SETTLED
    assert settled.charged_amount == rows[0]["amount"]  # row 1: what Stripe charged at acceptance
    license = billed.refresh()
    upcoming = stripe_for(world_a.tenant).preview_next_invoice(
        customer_id=license.stripe_customer_id, subscription_id=license.stripe_subscription_id
    )
    assert upcoming.total == rows[1]["amount"]  # row 2: the renewal Stripe will invoice
    assert license.current_period_end.date().isoformat() == rows[1]["date"][:10]
