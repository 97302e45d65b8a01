"""A new staff member signs in and lands on the workspace: numbers, chart, and an approval one click away."""

from __future__ import annotations

import pytest

from accounts.models import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_member_signs_in_sees_the_dashboard_and_approves_from_it(browser_page, workspaces, second_pm):
    a, _ = workspaces
    page = browser_page
    page.goto(page.base_url + "/")
    page.click("[data-testid=sign-in]")
    page.fill("input[name=username]", second_pm.email)
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")

    assert "Tenant A workspace" in page.inner_text("h1")
    assert "$390.00" in page.inner_text("[data-testid=kpi-mrr]")
    assert "1 for you to approve" in page.inner_text("[data-testid=kpi-pending]")
    assert "Bee " not in page.inner_text("[data-testid=workspace]")
    # The MRR chart is drawn by the vendored Chart.js (no CDN): two tiers, two slices.
    assert page.evaluate("() => Chart.getChart(document.getElementById('tw-mrr-chart')).data.labels") == [
        "Team",
        "Business",
    ]
    page.screenshot(path="var/screenshot-workspace.png", full_page=True)

    page.click("[data-testid=pending-item] >> text=Review and approve")
    page.wait_for_url(f"**/admin/catalog/tier/{a.pending.pk}/change/")
    # Approving goes through the review page: the diff, the impact, a comment that is kept.
    page.click("[data-transition=approve]")
    page.wait_for_url(f"**/admin/catalog/tier/{a.pending.pk}/governance/approve/review/")
    assert page.is_visible("[data-testid=impact]")
    page.fill("#id_comment", "Checked the new API allowance against the price.")
    with page.expect_navigation():
        page.click("[data-testid=confirm]")
    assert "Checked the new API allowance" in page.inner_text("[data-testid=approval-comment]")
    page.goto(page.base_url + "/admin/")
    item = page.inner_text("[data-testid=pending-item]")
    assert "Approved" in item and "Publish" in item
    assert f"approved by {second_pm.full_name}" in item
    assert "drafted by " + str(a.world.staff[Role.PRODUCT_MANAGER]) in item
