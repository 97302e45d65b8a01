"""Chromium: a product manager closes the loop from the analytics page: filters the feedback on a packaging by
reason, finds nothing ticked, picks one customer, names the change and the early access, confirms; the customer's
contact is told once and their account gets the grant. The page fits a phone."""

from __future__ import annotations

import pytest

from accounts.models import Role
from billing.models import GrantKind, LicenseGrant
from messaging.models import Message
from tests.upgrades.analytics.test_browser_dashboard import sign_in
from tests.upgrades.offers.factories_life import holding, make_offer
from tests.upgrades.portal.browser_helpers import assert_fits
from upgrades.analytics.loop import TEMPLATE_KEY
from upgrades.offers.models import Feedback

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_pm_answers_one_customers_feedback_with_a_packaging_change(browser_page, world_a):
    held = holding(world_a.tenant, world_a.account)
    offer = make_offer(held, state="declined")
    Feedback.objects.create(tenant=world_a.tenant, account=world_a.account, contact=world_a.contact, offer=offer,
                            kind="decline", reason_code="too_expensive", text="SSO should be on Team")  # fmt: skip
    Feedback.objects.create(tenant=world_a.tenant, account=world_a.account, contact=world_a.contact, offer=offer,
                            kind="decline", reason_code="not_now")  # fmt: skip
    page = browser_page
    sign_in(page, world_a.staff[Role.PRODUCT_MANAGER])
    page.goto(page.base_url + "/analytics/feedback/answer/")
    page.get_by_label("Key").fill(offer.target_key)
    page.get_by_label("Reason").select_option("too_expensive")
    page.get_by_role("button", name="Show feedback").click()
    page.wait_for_selector("[data-testid='feedback-row']")
    rows = page.locator("[data-testid='feedback-row']")
    assert rows.count() == 1 and "SSO should be on Team" in rows.inner_text()  # the reason filter holds
    assert page.locator("input[name='feedback']:checked").count() == 0  # nothing ticked for the person
    assert_fits(page, 375)

    rows.locator("input[name='feedback']").check()
    page.get_by_label("The packaging change that answers it").fill("Team now includes SSO")
    page.get_by_label("Early access for their accounts").fill("14")
    page.get_by_role("button", name="Confirm: tell these customers").click()
    page.wait_for_selector("[data-testid='feedback-answered']")

    told = Message.objects.filter(tenant=world_a.tenant, contact=world_a.contact, template_key=TEMPLATE_KEY)
    assert told.count() == 1
    grant = LicenseGrant.objects.get(tenant=world_a.tenant, account=world_a.account, kind=GrantKind.CSM_GRANT)
    assert 13 <= (grant.ends_at - grant.starts_at).days <= 14
