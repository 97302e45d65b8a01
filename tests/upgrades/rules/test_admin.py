"""The rule builder posts structured fields (no JSON typing), is tenant-scoped, and shows governance and preview."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from accounts.models import Role
from tests.upgrades.rules.conftest import live_rule, rollup
from upgrades.rules.models import RuleState, TriggerRule

HOT_FIELDS = {
    "key": "hot-api",
    "name": "Hot API",
    "signal_kind": "upgrade_opportunity",
    "target_kind": "lowest_fit",
    "priority": "60",
    "cooldown_days": "14",
    "node-1-parent": "",
    "node-1-type": "all",
    "node-2-parent": "1",
    "node-2-type": "meter_utilisation",
    "node-2-meter": "api_calls",
    "node-2-percent": "90",
    "node-2-days": "7",
    "node-2-min_days": "5",
    "node-3-parent": "1",
    "node-3-type": "not",
    "node-4-parent": "3",
    "node-4-type": "account_attribute",
    "node-4-field": "industry",
    "node-4-op": "is",
    "node-4-values": "health, gov",
}


def test_the_builder_saves_a_nested_rule_from_structured_fields(world_a, cat_a):
    client = world_a.staff_client(Role.PRODUCT_MANAGER)
    answer = client.post(reverse("admin:upgrades_triggerrule_add"), HOT_FIELDS)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    rule = TriggerRule.objects.get(tenant=world_a.tenant, key="hot-api")
    assert rule.condition == {"all": [
        {"kind": "meter_utilisation", "meter": "api_calls", "percent": 90, "days": 7, "min_days": 5},
        {"not": {"kind": "account_attribute", "field": "industry", "op": "is", "values": ["health", "gov"]}},
    ]}  # fmt: skip
    page = client.get(reverse("admin:upgrades_triggerrule_change", args=[rule.pk])).content.decode()
    assert "API calls at &gt;= 90% of the limit on 5 of the last 7 days, and not (industry is health or gov)" in page


def test_the_builder_shows_every_validation_error_and_saves_nothing(world_a, cat_a):
    client = world_a.staff_client(Role.PRODUCT_MANAGER)
    bad = {**HOT_FIELDS, "node-2-meter": "nope", "node-2-percent": "5000", "node-3-type": "any", "node-4-parent": "9"}
    answer = client.post(reverse("admin:upgrades_triggerrule_add"), bad)
    assert answer.status_code == 200
    text = answer.content.decode()
    assert "Unknown meter" in text and "between 1 and 1000" in text and "This group is empty" in text
    assert not TriggerRule.objects.exists()


def test_the_author_sees_approve_disabled_and_a_second_pm_approves(world_a, cat_a):
    pm = world_a.staff_client(Role.PRODUCT_MANAGER)
    pm.post(reverse("admin:upgrades_triggerrule_add"), HOT_FIELDS)
    rule = TriggerRule.objects.get(key="hot-api")
    transition = reverse("admin:upgrades_triggerrule_transition", args=[rule.pk])
    pm.post(transition, {"transition": "submit"})
    page = pm.get(reverse("admin:upgrades_triggerrule_change", args=[rule.pk])).content.decode()
    assert "someone else must approve it" in page
    pm.post(transition, {"transition": "approve"})
    assert TriggerRule.objects.get(pk=rule.pk).state == RuleState.AWAITING_APPROVAL
    world_a.staff_client(Role.OWNER).post(transition, {"transition": "approve"})
    assert TriggerRule.objects.get(pk=rule.pk).state == RuleState.LIVE
    world_a.staff_client(Role.CSM).post(transition, {"transition": "retire"})  # a CSM may not
    assert TriggerRule.objects.get(pk=rule.pk).state == RuleState.LIVE


def test_preview_answers_how_many_accounts_match_now_with_evidence(world_a, cat_a):
    rollup(world_a.account, cat_a.api_meter, datetime.datetime.now(datetime.UTC).date(), 9500)
    fields = {**HOT_FIELDS, "node-2-days": "1", "node-2-min_days": "1"}
    answer = world_a.staff_client(Role.PRODUCT_MANAGER).post(reverse("admin:upgrades_triggerrule_preview"), fields)
    text = answer.content.decode()
    assert "This rule matches 1 account now" in text and "API calls at 95% of the limit" in text


@pytest.mark.parametrize("page", ["change", "backtest"])
def test_another_tenants_rule_is_not_found(two_tenants, cat_a, cat_b, page):
    a, b = two_tenants
    rule = live_rule(b, key="b-rule", condition={"kind": "support_tickets", "min_count": 1, "days": 7})
    answer = a.staff_client(Role.OWNER).get(reverse(f"admin:upgrades_triggerrule_{page}", args=[rule.pk]))
    assert answer.status_code in (302, 404)
    assert "b-rule" not in answer.content.decode() and "B Rule" not in answer.content.decode()
    transition = reverse("admin:upgrades_triggerrule_transition", args=[rule.pk])
    a.staff_client(Role.OWNER).post(transition, {"transition": "retire"})
    assert TriggerRule.objects.get(pk=rule.pk).state == RuleState.LIVE


def test_the_rule_list_and_suggestions_open(world_a, cat_a):
    live_rule(world_a, key="t", condition={"kind": "support_tickets", "min_count": 1, "days": 7})
    client = world_a.staff_client(Role.PRODUCT_MANAGER)
    assert (
        "&gt;= 1 support ticket in the last 7 days"
        in client.get(reverse("admin:upgrades_triggerrule_changelist")).content.decode()
    )
    text = client.get(reverse("admin:upgrades_triggerrule_suggestions")).content.decode()
    assert "too little history" in text
