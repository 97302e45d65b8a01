"""Chromium accepts an offer by keyboard against the Stripe stand-in and a real Celery worker: the card is
declined first (the licence stays as it was, the retry is clear), then paid; the status follows by htmx
polling to settled, and the amount charged is the amount shown as due today."""

from __future__ import annotations

import pytest

from billing.models import PlanChangeState
from tests.billing import conftest as billing_fixtures
from tests.billing.helpers import billed_license
from tests.conftest import wait_for
from tests.upgrades.offers.factories_life import Holding, make_offer
from tests.upgrades.portal.browser_helpers import assert_accessible, assert_fits, open_email_link, tab_to
from upgrades.offers.models import Offer, OfferState
from upgrades.portal import tokens

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin


def test_accept_by_keyboard_declined_card_then_retry_settles_and_charges_what_was_shown(
    world_a, standin, live_server, celery_worker_process, browser_page
):
    billed = billed_license(
        world_a.tenant,
        world_a.account,
        standin,
        webhook_url=f"{live_server.url}/billing/stripe/webhook/{world_a.tenant.slug}/",
    )
    held = Holding(billed.tenant, billed.account, billed.catalog, billed.license)
    offer = make_offer(held, state=OfferState.SENT)
    customer = billed.license.stripe_customer_id
    standin.set_card(customer, "4000000000000002")  # declined
    page = browser_page

    open_email_link(page, tokens.offer_link(world_a.tenant, offer=offer))
    assert "payment provider" in page.locator("#quote-h").inner_text()  # Stripe's own preview, not an estimate
    due_today = page.locator("text=Due today:").inner_text()
    assert_accessible(page, "offer with Stripe's quote")
    assert_fits(page)

    tab_to(page, "#opt-business-month")
    page.keyboard.press("Space")
    tab_to(page, "button.primary")
    page.keyboard.press("Enter")
    page.wait_for_url("**/status")
    page.wait_for_selector("text=The payment didn't go through", timeout=90_000)
    assert_accessible(page, "payment failed")
    assert billed.refresh().tier.key == "team"  # the licence is as it was

    standin.set_card(customer, "4242424242424242")
    tab_to(page, "form[action$='/retry'] button")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Done: your plan is now", timeout=90_000)
    assert_accessible(page, "settled")

    done = wait_for(lambda: Offer.objects.filter(pk=offer.pk, state=OfferState.FULFILLED).first(), timeout=30)
    assert done.plan_change.state == PlanChangeState.SETTLED
    assert done.amount_charged == done.quote["amount_due_now"]
    shown_amount = due_today.split("Due today:")[1].strip()
    assert shown_amount and f"Charged {shown_amount}." in page.locator("#status").inner_text()
    assert billed.refresh().tier.key == "business"
