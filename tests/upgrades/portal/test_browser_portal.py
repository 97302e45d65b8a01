"""Chromium through the portal: plan, compare (annual switch), offer, decline by keyboard, trial, talk to a
person, feedback and an used link — each page checked by axe-core (WCAG 2.2 AA), at 320 px, under its CSP."""

from __future__ import annotations

import pytest

from tests.upgrades.offers.factories_life import holding, make_offer
from tests.upgrades.portal.browser_helpers import assert_accessible, assert_fits, open_email_link, path_of, tab_to
from upgrades.offers.models import Feedback, FeedbackKind, OfferState, Trial
from upgrades.portal import tokens

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_customer_walks_every_page_by_keyboard_declines_one_offer_and_trials_another(world_a, browser_page):
    page = browser_page
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    from tests.upgrades.offers.conftest import make_live_settings
    from upgrades.offers.pricing import compute_roi

    live = make_live_settings(
        world_a.tenant,
        value_model=[
            {"kind": "revenue_at_risk", "label": "Revenue at risk", "amount": 100000, "probability_percent": 10}
        ],
    )
    held = holding(world_a.tenant, world_a.account)
    declined = make_offer(held, target="business")
    declined.roi = compute_roi(  # as the engine stores it
        world_a.tenant, account=world_a.account, settings=live, evidence=declined.evidence, option=declined.options[0]
    )
    declined.save(update_fields=["roi"])
    link = tokens.offer_link(world_a.tenant, offer=declined)

    open_email_link(page, link)
    assert page.locator("h1").inner_text().startswith("An offer for")
    assert page.locator("input[type=radio]:checked").count() == 0  # nothing chosen for the customer
    assert_accessible(page, "offer")
    assert_fits(page)

    # ROI: change an input, the server recomputes (htmx under the CSP, CSRF header), the result region is live.
    assert page.locator("#roi [aria-live=polite]").count() == 1
    assert "Value a month: $100.00" in page.locator("#roi").inner_text()
    page.get_by_label("Revenue at risk a month (USD)").fill("2000")
    before = page.url
    page.get_by_role("button", name="Recalculate with my numbers").click()
    page.wait_for_selector("#roi >> text=Value a month: $200.00")
    assert page.url == before  # swapped in place, no navigation
    assert_accessible(page, "roi recomputed")

    # Decline, keyboard only: Tab to the decline link, Enter, pick a reason with the keyboard, submit.
    page.goto(page.url)  # fresh focus at the top
    tab_to(page, "a[href$='/decline']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/decline")
    assert_accessible(page, "decline")
    tab_to(page, "input[name=reason]")
    page.keyboard.press("ArrowDown")  # the second reason, chosen by the customer
    tab_to(page, "button.primary")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=You declined the offer")
    assert_accessible(page, "declined")
    declined.refresh_from_db()
    assert declined.state == OfferState.DECLINED
    assert Feedback.objects.get(kind=FeedbackKind.DECLINE).reason_code == "not_needed"

    # Used link: explains itself and offers a fresh link by email.
    page.goto(page.base_url + path_of(link))
    assert "used already" in page.locator("h1").inner_text()
    assert page.locator("text=Email me a fresh link").count() == 1
    assert_accessible(page, "used link")

    # A second offer in the same session (a new link): trial in one click, progress view.
    tried = make_offer(held, target="business", expires_in=__import__("datetime").timedelta(days=10))
    open_email_link(page, tokens.offer_link(world_a.tenant, offer=tried))
    page.get_by_role("button", name="Try Business first").click()
    page.wait_for_url("**/trials/*")
    assert "Your trial of" in page.locator("h1").inner_text()
    assert Trial.objects.filter(offer=tried, source="portal").exists()
    assert_accessible(page, "trial")
    assert_fits(page)

    for path, label in (("/portal/", "plan"), ("/portal/compare", "compare"), ("/portal/talk", "talk")):
        response = page.goto(page.base_url + path)
        assert response.status == 200 and "default-src 'none'" in response.headers["content-security-policy"]
        assert_accessible(page, label)
        assert_fits(page)

    page.goto(page.base_url + "/portal/compare")
    page.get_by_role("link", name="Annual").click()
    page.wait_for_selector(".switch [aria-current]:has-text('Annual')")
    assert_accessible(page, "compare annual")

    page.goto(page.base_url + "/portal/feedback")
    assert_accessible(page, "feedback")
    page.locator("label[for=s-4]").click()
    page.get_by_role("button", name="Send").click()
    page.wait_for_selector("text=We've got your answers")
    assert Feedback.objects.filter(kind=FeedbackKind.SURVEY, satisfaction=4).exists()
    assert not [e for e in errors if "Content Security Policy" in e], errors
