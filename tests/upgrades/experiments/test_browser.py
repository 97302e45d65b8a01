"""Experiment pages in Chromium: a PM drafts an experiment and sees what it can detect, a second person
starts it, and its results page fits a phone (no sideways scrolling) with the verdict."""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests.upgrades.offers.conftest import make_live_settings
from tests.upgrades.offers.test_browser_offers_admin import OVERFLOW, sign_in
from upgrades.experiments.models import Experiment, ExperimentState

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_pm_drafts_an_experiment_and_the_owner_starts_it(browser_page, world_a):
    make_live_settings(world_a.tenant)
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 900})
    sign_in(page, world_a.staff[Role.PRODUCT_MANAGER])
    page.goto(page.base_url + "/admin/upgrades/experiment/add/")
    page.fill("input[name=name]", "Copy B against copy A")
    page.fill("input[name=expected_monthly_accounts]", "400")
    page.click("input[type=submit]")
    page.wait_for_selector("[data-testid=experiment-detail]")
    assert "With ~400 accounts a month" in page.inner_text("[data-testid=mde]")
    assert page.evaluate(OVERFLOW) <= 0, "sideways scrolling at 375 px"
    page.screenshot(path="var/screenshot-experiment-detail-375.png", full_page=True)
    experiment = Experiment.objects.get(tenant=world_a.tenant)
    page.click("button[value=start]")  # its author may not start it: refused, shown as a message
    page.wait_for_selector(".messagelist")
    experiment.refresh_from_db()
    assert experiment.state == ExperimentState.DRAFT
    sign_in(page, world_a.staff[Role.OWNER])
    page.goto(f"{page.base_url}/admin/upgrades/experiment/{experiment.pk}/change/")
    page.click("button[value=start]")
    page.wait_for_selector("text=accounts are assigned as their triggers fire")
    assert page.inner_text("[data-testid=experiment-state]") == "Running"
    assert "Too few accounts yet" in page.inner_text("[data-testid=verdict]")
