"""In Chromium: a PM opens a live template's change page, follows "History", reads every version newest
first with the escaped subject diff, and opens an older version from there."""

from __future__ import annotations

import pytest
from django.conf import settings

from accounts.models import Role
from tests.conftest import sign_in
from tests.isolation import admin_url
from tests.messaging.history_setup import write_history

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_pm_opens_the_history_from_the_change_page_and_opens_an_older_version(browser_page, world_a):
    h = write_history(world_a)
    page = browser_page
    sign_in(page, world_a.staff[Role.PRODUCT_MANAGER])
    page.goto(page.base_url + admin_url(h.v2, "change"))
    with page.expect_navigation():
        page.locator("a.historylink").click()
    assert page.url.endswith(admin_url(h.v2, "history"))
    versions = page.locator("[data-testid=version]")
    assert [versions.nth(i).get_attribute("data-version") for i in range(versions.count())] == ["3", "2", "1"]
    assert versions.locator("[data-testid=state]").all_inner_texts() == ["Draft", "Live", "Retired"]
    v2 = page.locator("[data-testid=version][data-version='2']")
    subject = v2.locator("[data-testid=diff-subject]")
    removed = subject.locator(".tw-removed").inner_text()
    assert removed.startswith("−") and removed.endswith("{{ offer.tier }} for {{ account.name }}")
    assert "<b>New</b> {{ offer.tier }}" in subject.locator(".tw-added").inner_text()  # shown as text, not bold
    assert subject.locator("b").count() == 0
    assert page.locator("script", has_text="alert").count() == 0
    assert f"approved by {world_a.staff[Role.OWNER]}" in v2.locator("[data-testid=approved]").inner_text()
    page.screenshot(path=str(settings.VAR_DIR / "messaging-template-history.png"), full_page=True)
    with page.expect_navigation():
        page.locator("[data-testid=version][data-version='1'] [data-testid=open-version]").click()
    assert page.url.endswith(admin_url(h.v1, "change"))
    assert "Offer" in page.title()
