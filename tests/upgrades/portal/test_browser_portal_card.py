"""Chromium pays for an accepted offer with a new card entered through Stripe.js (the stand-in's own), against
the stand-in and a real Celery worker: the card on file is declined; the customer opens "Pay with another
card"; a card the bank refuses is explained on the page and nothing changes; a card that needs 3-D Secure is
confirmed in the bank's step; the payment then needs the bank's confirmation too, which the status page
asks for; once confirmed, the plan change settles and the amount charged is the amount shown as due today.
Our server only ever receives the SetupIntent's id, which it checks with Stripe before using the card."""

from __future__ import annotations

import pytest

from accounts.models import AuditEntry
from billing.models import PlanChangeState
from billing.services.stripe_accounts import save_stripe_keys
from tests.billing import conftest as billing_fixtures
from tests.billing.helpers import billed_license
from tests.conftest import wait_for
from tests.upgrades.offers.factories_life import Holding, make_offer
from tests.upgrades.portal.browser_helpers import assert_accessible, assert_fits, open_email_link
from upgrades.offers.models import Offer, OfferState
from upgrades.portal import tokens

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin
CARD_ELEMENT = ("#card-element",)  # Stripe's widget (an iframe of Stripe's in production), not ours to audit


def _enter_card(page, number: str) -> None:
    for field, value in (("number", number), ("exp_month", "12"), ("exp_year", "34"), ("cvc", "123"),
                         ("postal_code", "10115")):  # fmt: skip
        page.locator(f"#card-element input[placeholder='{field}']").fill(value)


def test_a_new_card_with_3d_secure_pays_a_declined_offer_and_charges_what_was_shown(
    world_a, standin, live_server, celery_worker_process, browser_page
):
    billed = billed_license(world_a.tenant, world_a.account, standin,
                            webhook_url=f"{live_server.url}/billing/stripe/webhook/{world_a.tenant.slug}/")  # fmt: skip
    save_stripe_keys(world_a.tenant, actor="t", publishable_key="pk_test_" + world_a.tenant.slug.replace("-", ""))
    held = Holding(billed.tenant, billed.account, billed.catalog, billed.license)
    offer = make_offer(held, state=OfferState.SENT)
    standin.set_card(billed.license.stripe_customer_id, "4000000000000002")  # declined when charged
    page = browser_page

    open_email_link(page, tokens.offer_link(world_a.tenant, offer=offer))
    due_today = page.locator("text=Due today:").inner_text().split("Due today:")[1].strip()
    page.locator("#opt-business-month").check()
    page.get_by_role("button", name="Accept the chosen option").click()
    page.wait_for_selector("text=The payment didn't go through", timeout=90_000)
    assert billed.refresh().tier.key == "team"

    page.get_by_role("link", name="Pay with another card").click()
    page.wait_for_selector("#card-element input[placeholder='number']")
    assert_accessible(page, "card page", exclude=CARD_ELEMENT)
    assert_fits(page)

    _enter_card(page, "4000000000000002")  # the bank refuses to save it
    page.get_by_role("button", name="Save this card and pay").click()
    page.wait_for_selector("[data-card-error]:not([hidden])")
    assert "declined" in page.locator("[data-card-error]").inner_text()
    assert billed.refresh().tier.key == "team"

    _enter_card(page, "4000002760003184")  # needs 3-D Secure, for saving it and for every payment
    with page.expect_navigation(timeout=60_000):
        page.get_by_role("button", name="Save this card and pay").click()
        page.get_by_role("button", name="Complete authentication").click()  # the bank's step (the stand-in's)
    page.wait_for_selector("text=Your bank asks you to confirm this payment", timeout=90_000)
    assert_accessible(page, "bank confirmation asked")
    assert billed.refresh().tier.key == "team"  # nothing settles before the bank confirms

    with page.expect_navigation(timeout=60_000):
        page.get_by_role("button", name="Confirm with my bank").click()
        page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_selector("text=Done: your plan is now", timeout=90_000)

    done = wait_for(lambda: Offer.objects.filter(pk=offer.pk, state=OfferState.FULFILLED).first(), timeout=30)
    assert done.plan_change.state == PlanChangeState.SETTLED
    assert done.amount_charged == done.quote["amount_due_now"]
    assert f"Charged {due_today}." in page.locator("#status").inner_text()
    assert billed.refresh().tier.key == "business"
    assert AuditEntry.objects.filter(tenant=world_a.tenant, action="billing.card_updated").count() == 1
