"""A product manager builds a rule in Chromium: picks condition kinds, nests a group, previews, saves."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Role
from tests.upgrades.rules.conftest import rollup
from tests.usage.factories import give_license, make_catalog
from upgrades.rules.models import TriggerRule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_pm_builds_a_nested_rule_previews_it_and_saves_a_draft(browser_page, world_a):
    catalog = make_catalog(world_a.tenant)
    give_license(world_a.account, catalog.team)
    rollup(world_a.account, catalog.api_meter, timezone.now().date(), 9500)
    pm = world_a.staff[Role.PRODUCT_MANAGER]

    page = browser_page
    page.goto(page.base_url + "/admin/login/")
    page.fill("input[name=username]", pm.email)
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    page.goto(page.base_url + "/admin/upgrades/triggerrule/add/")
    page.fill("#id_key", "hot-api")
    page.fill("#id_name", "Hot API")

    page.select_option("[data-testid=add-condition] >> nth=0", "meter_utilisation")
    leaf = page.locator("[data-testid=condition]").first
    leaf.locator("[data-field=percent]").fill("90")
    page.click("[data-testid=add-group]")  # a nested group...
    nested = page.locator("[data-testid=group] [data-testid=group]")
    nested.locator("select[aria-label='Group type']").select_option("any")
    nested.locator("[data-testid=add-condition]").select_option("account_attribute")
    nested.locator("[data-field=values]").fill("software")
    nested.locator("[data-testid=add-condition]").select_option("support_tickets")

    page.click("[data-testid=preview-button]")
    page.wait_for_selector("[data-testid=preview-count]")
    assert "This rule matches 1 account now" in page.inner_text("[data-testid=preview]")
    assert "API calls at 95% of the limit" in page.inner_text("[data-testid=preview]")

    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=rule-words]")
    words = page.inner_text("[data-testid=rule-words]")
    assert words == (
        "API calls at >= 90% of the limit now, and (industry is software or >= 3 support tickets in the last 30 days)"
    )
    rule = TriggerRule.objects.get(tenant=world_a.tenant, key="hot-api")
    assert rule.condition["all"][1]["any"][0] == {
        "kind": "account_attribute", "field": "industry", "op": "is", "values": ["software"],
    }  # fmt: skip
    assert page.inner_text("[data-testid=rule-state]") == "Draft"
    page.click("[data-testid=transition-submit]")
    page.wait_for_selector("text=awaiting approval")
    assert page.locator("[data-testid=transition-approve]").is_disabled()
