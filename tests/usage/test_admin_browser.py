"""A staff member opens an account's usage page in a real browser: the table and a drawn chart."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts.models import Role
from usage.models import UsageRollup

from .factories import give_license, make_catalog

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_analyst_opens_an_accounts_usage_page_and_sees_the_table_and_the_chart(browser_page, world_a):
    catalog = make_catalog(world_a.tenant)
    account = world_a.account
    give_license(account, catalog.team)
    today = timezone.now().date()
    for back in range(20):  # growing toward the Team limit of 10,000 calls this month
        day = today - datetime.timedelta(days=back)
        UsageRollup.objects.create(
            tenant=world_a.tenant, account=account, meter=catalog.api_meter, day=day, value=450 - back * 10
        )
    analyst = world_a.staff[Role.ANALYST]

    page = browser_page
    page.goto(page.base_url + "/admin/login/")
    page.fill("input[name=username]", analyst.email)
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    page.goto(page.base_url + "/admin/usage/usageaccount/")
    page.click(f"text={account.name}")
    page.wait_for_url(f"**/admin/usage/usageaccount/{account.pk}/change/")

    table = page.inner_text("[data-testid=entitlements]")
    assert "API calls" in table and "Single sign-on" in table and "Not in plan" in table
    canvas = page.locator("canvas[data-index='0']")
    canvas.wait_for()
    assert canvas.get_attribute("data-drawn") == "1"
    drawn = page.evaluate(
        """() => {
            const chart = Chart.getChart(document.querySelector("canvas[data-index='0']"));
            return {labels: chart.data.labels.length, sets: chart.data.datasets.map(d => d.label),
                    width: chart.width, height: chart.height};
        }"""
    )
    assert drawn["labels"] == 90
    assert "Limit" in drawn["sets"] and "Per day" in drawn["sets"]
    assert drawn["width"] > 200 and drawn["height"] > 150
    # Something is actually painted: the canvas is not blank.
    painted = page.evaluate(
        """() => {
            const c = document.querySelector("canvas[data-index='0']");
            const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
            return n;
        }"""
    )
    assert painted > 1000
