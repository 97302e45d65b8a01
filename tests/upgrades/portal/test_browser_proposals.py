"""Chromium: a shared proposal from My plan, accessible (axe WCAG 2.2 AA) and fitting 320 px, accepted by
keyboard against the Stripe stand-in and a real Celery worker; the card on file is declined, the customer pays
with another card (Stripe.js) and the status follows by htmx to settled."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Role
from billing.services.stripe_accounts import save_stripe_keys
from catalog.models import DiscountPolicy, GovernanceState
from tests.billing import conftest as billing_fixtures
from tests.billing.helpers import billed_license
from tests.conftest import wait_for
from tests.upgrades.portal.browser_helpers import assert_accessible, assert_fits, open_email_link, tab_to
from upgrades.console.models import Proposal, ProposalState
from upgrades.console.services import proposals as services
from upgrades.console.services.options import OptionRequest
from upgrades.portal import tokens

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin


def test_proposal_accepted_by_keyboard_declined_then_paid_with_another_card_settles(
    world_a, standin, live_server, celery_worker_process, browser_page
):
    billed = billed_license(
        world_a.tenant,
        world_a.account,
        standin,
        webhook_url=f"{live_server.url}/billing/stripe/webhook/{world_a.tenant.slug}/",
    )
    save_stripe_keys(world_a.tenant, actor="t", publishable_key="pk_test_" + world_a.tenant.slug.replace("-", ""))
    standin.set_card(billed.license.stripe_customer_id, "4000000000000002")  # declined when charged
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
        title="Business for two years",
    )
    services.share_proposal(world_a.tenant, proposal=proposal, actor=csm)
    option = proposal.options.get()
    page = browser_page

    _, url = tokens.create_portal_session(world_a.tenant, account=world_a.account, return_url="https://app.test/")
    open_email_link(page, url)
    page.get_by_role("link", name="Business for two years").click()
    page.wait_for_selector("text=Every invoice for")
    assert_accessible(page, "proposal")
    assert_fits(page)

    tab_to(page, f"#opt-{option.key}")
    page.keyboard.press("Space")
    tab_to(page, "button.primary")
    page.keyboard.press("Enter")
    page.wait_for_url("**/status")
    page.wait_for_selector("text=The payment didn't go through", timeout=90_000)
    assert_accessible(page, "payment failed")
    assert Proposal.objects.get(pk=proposal.pk).state == ProposalState.ACCEPTED

    page.get_by_role("link", name="Pay with another card").click()
    page.wait_for_selector("text=Business")  # names what will be paid
    for field, value in (("number", "4242424242424242"), ("exp_month", "12"), ("exp_year", "34"), ("cvc", "123"),
                         ("postal_code", "10115")):  # fmt: skip
        page.locator(f"#card-element input[placeholder='{field}']").fill(value)
    with page.expect_navigation(timeout=60_000):
        page.get_by_role("button", name="Save this card and pay").click()
    page.wait_for_selector("text=Done: your plan is now", timeout=90_000)
    assert_accessible(page, "settled")
    done = wait_for(lambda: Proposal.objects.filter(pk=proposal.pk, state=ProposalState.FULFILLED).first(), timeout=30)
    assert done is not None
