"""Offer pages in Chromium: the offer page at 375 px (no sideways scrolling) with its evidence, options and
quote; a CSM reviews and sends; offer settings go from a PM's draft through a second person's approval."""

from __future__ import annotations

import pytest

from accounts.models import Membership, Role, User
from tests.conftest import sign_in
from tests.upgrades.offers.admin_factories import make_offer
from tests.usage.factories import make_catalog
from upgrades.offers.models import OfferSettings, OfferState, SettingsState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def test_the_offer_page_fits_a_phone_and_a_csm_reviews_and_sends(browser_page, world_a, live_settings):
    offer = make_offer(world_a.account, live_settings, state=OfferState.AWAITING_REVIEW, discount_percent="10")
    page = browser_page
    sign_in(page, world_a.staff[Role.CSM])
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{page.base_url}/admin/upgrades/offer/{offer.pk}/change/")
        page.wait_for_selector("[data-testid=offer-detail]")
        page.screenshot(path=f"var/screenshot-offer-detail-{width}.png", full_page=True)
        assert page.evaluate(OVERFLOW) <= 0, f"sideways scrolling at {width} px"
    assert "API calls reached 95% of the Team limit" in page.inner_text("[data-testid=evidence-sentence]")
    options = page.locator("[data-testid=option]")
    assert options.count() == 2
    assert "$790.00" in options.nth(1).inner_text() and "16.67 %" in options.nth(1).inner_text()
    assert page.locator("[data-testid=quote-line]").count() == 2
    assert page.inner_text("[data-testid=amount-due-now]") == "$775.50"
    page.click("[data-testid=action-review]")
    page.wait_for_selector("text=reviewed and sent")
    assert page.inner_text("[data-testid=offer-state]") == "Sent"
    assert "awaiting_review → sent" in page.inner_text("[data-testid=timeline]")
    offer.refresh_from_db()
    assert offer.state == OfferState.SENT


def test_settings_go_live_through_a_second_persons_approval_in_the_browser(browser_page, world_a):
    make_catalog(world_a.tenant)
    pm2 = User.objects.create_user("pm2@tenant-a.test", "pw-for-tests-123")
    Membership.objects.create(tenant=world_a.tenant, user=pm2, role=Role.PRODUCT_MANAGER)
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 900})
    sign_in(page, world_a.staff[Role.PRODUCT_MANAGER])
    page.goto(page.base_url + "/admin/upgrades/offersettings/add/")
    page.check("input[name=signal_kinds][value=upgrade_opportunity]")
    row = page.locator("[data-testid=driver-row]").first
    row.locator("[data-field=kind]").select_option("hours_saved")
    row.locator("[data-field=meter]").select_option("api_calls")
    row.locator("[data-field=hours_per_unit]").fill("0.002")
    row.locator("[data-field=hourly_cost]").fill("60")
    variant = page.locator("[data-testid=variant-row]").first
    variant.locator("[data-field=key]").fill("launch10")
    variant.locator("[data-field=percent]").fill("10")
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=settings-state]")
    assert page.inner_text("[data-testid=settings-state]") == "Draft"
    assert "at $60.00 an hour" in page.inner_text("[data-testid=value-model-view]")
    assert page.evaluate(OVERFLOW) <= 0
    page.click("[data-testid=transition-submit]")
    page.wait_for_selector("text=awaiting approval")
    assert page.locator("[data-testid=transition-approve]").is_disabled()
    assert "someone else must approve it" in page.inner_text("[data-testid=why-approve]")

    sign_in(page, pm2)
    page.reload()
    page.fill("[data-testid=approval-comment-input]", "Hourly cost matches finance's figure.")
    page.click("[data-testid=transition-approve]")
    page.wait_for_selector("text=is now live")
    assert page.inner_text("[data-testid=settings-state]") == "Live"
    assert "Hourly cost matches finance's figure." in page.inner_text("[data-testid=approval-comment]")
    live = OfferSettings.objects.get(tenant=world_a.tenant)
    assert (live.state, live.approved_by, live.value_model[0]["hourly_cost"]) == (SettingsState.LIVE, pm2, 6000)


def test_engine_built_demo_offers_fit_a_phone_and_the_owner_approves_the_over_cap_discount(browser_page, settings):
    from tests.upgrades.offers.test_demo import seed

    settings.STRIPE_API_BASE = ""
    demo, result = seed()
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 900})
    sign_in(page, User.objects.get(email="owner@acme.test"))
    for slot, offer_id in sorted(result["slots"].items()):
        page.goto(f"{page.base_url}/admin/upgrades/offer/{offer_id}/change/")
        page.wait_for_selector("[data-testid=offer-detail]")
        page.screenshot(path=f"var/screenshot-demo-offer-{slot}-375.png", full_page=True)
        assert page.evaluate(OVERFLOW) <= 0, f"sideways scrolling on the {slot} offer at 375 px"
    trial, live = result["trial"].pk, result["settings"].pk
    pages = ["/admin/upgrades/offer/", "/admin/upgrades/trial/", f"/admin/upgrades/trial/{trial}/change/",
             f"/admin/upgrades/offersettings/{live}/change/", "/admin/upgrades/feedback/"]  # fmt: skip
    for path in pages:
        page.goto(page.base_url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate(OVERFLOW) <= 0, f"sideways scrolling on {path} at 375 px"
    page.goto(f"{page.base_url}/admin/upgrades/offer/{result['slots']['awaiting_review']}/change/")
    assert "outside the discount policy" in page.inner_text("[data-testid=discount]")
    page.click("[data-testid=action-approve_discount]")
    page.wait_for_selector("text=discount approved")
    assert page.inner_text("[data-testid=offer-state]") == "Sent"
