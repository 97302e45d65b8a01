"""Chromium draws the dashboard's charts at 375 and 1280 px, without sideways scrolling of the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import Role
from billing.models import LicenseChange
from tests.conftest import sign_in
from upgrades.analytics.snapshot import cache_key

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [375, 1280])
def test_dashboard_renders_its_charts(browser_page, world_a, width):
    cache.delete(cache_key(world_a.tenant.pk))  # the snapshot is built from this test's history
    now = timezone.now()
    for months_ago, mrr in ((5, 1000), (3, 3000), (1, 2000)):
        LicenseChange.objects.create(
            tenant=world_a.tenant,
            account=world_a.account,
            kind="upgrade",
            to_state={"tier": "pro", "status": "active"},
            actor_label="test",
            mrr_after=mrr,
            currency="USD",
            effective_at=now - timedelta(days=30 * months_ago),
        )
    sign_in(browser_page, world_a.staff[Role.ANALYST])
    browser_page.set_viewport_size({"width": width, "height": 900})
    browser_page.goto(browser_page.base_url + "/analytics/")
    browser_page.wait_for_load_state("networkidle")
    browser_page.screenshot(path=f"var/screenshot-analytics-{width}.png", full_page=True)
    canvases = browser_page.locator("canvas[data-chart]")
    assert canvases.count() == 3  # movements and retention in USD, the funnel
    assert browser_page.locator("canvas[data-rendered='1']").count() == 3
    drawn = browser_page.evaluate(
        "() => [...document.querySelectorAll('canvas[data-chart]')].map(c => Chart.getChart(c) ? c.width : 0)"
    )
    assert all(w > 0 for w in drawn)
    assert browser_page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") == 0
