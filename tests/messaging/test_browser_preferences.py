"""In Chromium: the link in an email opens the preferences page without a sign-in; the person turns lifecycle
emails off, saves, and the choice holds at once. The page passes axe-core's checks."""

from __future__ import annotations

import pytest

from messaging.models import ContactPreference
from messaging.services.context import preferences_url
from tests.upgrades.portal.browser_helpers import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_contact_changes_preferences_from_the_email_link(browser_page, world_a, settings):
    settings.SITE_URL = browser_page.base_url
    page = browser_page
    page.goto(preferences_url(world_a.tenant, world_a.contact.pk))
    assert world_a.contact.email in page.inner_text("[data-testid=preferences]")
    assert page.is_checked("input[name=subscribed]") and page.is_checked("input[name=upgrade_email]")
    assert axe_violations(page) == []
    page.uncheck("input[name=upgrade_email]")
    page.select_option("select[name=time_zone]", "Europe/Paris")
    with page.expect_navigation():
        page.click("[data-testid=save-preferences]")
    assert "Saved." in page.inner_text("[data-testid=preferences-saved]")
    page.screenshot(path="var/screenshot-messaging-preferences.png", full_page=True)
    pref = ContactPreference.objects.get(contact=world_a.contact)
    assert (pref.upgrade_email, pref.unsubscribed_at, pref.time_zone) == (False, None, "Europe/Paris")
    assert not page.is_checked("input[name=upgrade_email]")
