"""Evaluation writes signals with evidence, once per cooldown, per tenant; the API and command show them."""

from __future__ import annotations

import datetime
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Role
from tests.upgrades.rules.conftest import NOW, live_rule, rollup
from upgrades.rules import services
from upgrades.rules.errors import Conflict, InvalidInput, PermissionDenied
from upgrades.rules.models import AccountScore, DirtyAccount, RuleState, Signal, TriggerRule
from usage.signals import events_ingested

DAY = datetime.timedelta(days=1)
HOT = {"kind": "meter_utilisation", "meter": "api_calls", "percent": 90, "days": 7, "min_days": 5}


@pytest.fixture
def hot_a(world_a, cat_a):
    for day in range(14, 21):
        rollup(world_a.account, cat_a.api_meter, datetime.date(2026, 11, day), 3000)
    return live_rule(world_a, key="hot", condition=HOT, cooldown_days=14)


def test_a_matching_account_gets_one_signal_with_numbers_and_a_sentence(world_a, hot_a):
    report = services.evaluate_rules(world_a.tenant, now=NOW)
    assert [f.external_id for f in report.fired] == ["acct-1"]
    signal = Signal.objects.get()
    assert signal.kind == "upgrade_opportunity" and signal.state == "open"
    assert signal.evidence["sentence"] == "API calls at 210% of the limit on 5 of the last 7 days"
    assert signal.evidence["facts"][0]["numbers"] == {
        "meter": "api_calls", "limit": 10000, "used": 21000, "percent": 210, "threshold": 90, "days_over": 5, "days": 7,
    }  # fmt: skip


def test_running_the_evaluation_twice_never_duplicates_a_signal(world_a, hot_a):
    services.evaluate_rules(world_a.tenant, now=NOW)
    services.evaluate_rules(world_a.tenant, now=NOW)  # the same task, redelivered
    services.evaluate_rules(world_a.tenant, now=NOW + datetime.timedelta(minutes=5))
    assert Signal.objects.count() == 1


def test_the_same_run_twice_is_arbitrated_by_the_dedup_key_even_past_the_cooldown_check(world_a, hot_a):
    services.evaluate_rules(world_a.tenant, now=NOW)
    hot_a.cooldown_days = 1
    hot_a.save()
    # Inside the same UTC day the dedup key is the same: the insert is ignored, not doubled.
    report = services.evaluate_rules(world_a.tenant, now=NOW + datetime.timedelta(hours=2))
    assert report.fired == [] and Signal.objects.count() == 1


def test_a_rule_fires_again_only_after_its_cooldown(world_a, hot_a, cat_a):
    services.evaluate_rules(world_a.tenant, now=NOW)
    later = NOW + 13 * DAY
    for day in range(1, 5):
        rollup(world_a.account, cat_a.api_meter, datetime.date(2026, 12, day), 3000)
    assert services.evaluate_rules(world_a.tenant, now=later).fired == []
    for day in range(1, 6):
        rollup(world_a.account, cat_a.api_meter, datetime.date(2026, 12, day), 3000)
    assert len(services.evaluate_rules(world_a.tenant, now=NOW + 15 * DAY).fired) == 1
    assert Signal.objects.count() == 2


def test_rules_and_signals_stay_inside_their_tenant(two_tenants, cat_a, cat_b, hot_a):
    a, b = two_tenants
    for day in range(14, 21):
        rollup(b.account, cat_b.api_meter, datetime.date(2026, 11, day), 3000)  # B's look-alike account is hot too
    services.evaluate_rules(b.tenant, now=NOW)  # B has no rules: nothing fires for B
    assert Signal.objects.count() == 0
    services.evaluate_rules(a.tenant, now=NOW)
    assert list(Signal.objects.values_list("tenant_id", flat=True)) == [a.tenant.pk]


def test_scores_are_recomputed_with_factors_and_last_weeks_values(world_a, hot_a):
    services.evaluate_rules(world_a.tenant, now=NOW)
    score = AccountScore.objects.get(account=world_a.account)
    assert 0 <= score.readiness <= 100 and 0 <= score.health <= 100
    util = next(f for f in score.factors["readiness"] if f["factor"] == "utilisation")
    assert util["share"] == 1.0 and util["contribution"] == util["weight"]
    assert score.previous_readiness is None
    services.evaluate_rules(world_a.tenant, now=NOW + 8 * DAY)
    score.refresh_from_db()
    assert score.previous_readiness is not None and score.previous_at == NOW


def test_ingest_marks_accounts_dirty_and_the_dirty_evaluation_clears_them(world_a, hot_a):
    events_ingested.send(sender=None, tenant_id=world_a.tenant.pk, account_ids=[world_a.account.pk])
    assert DirtyAccount.objects.filter(tenant=world_a.tenant, account=world_a.account).exists()
    report = services.evaluate_dirty_accounts(world_a.tenant, now=datetime.datetime.now(datetime.UTC))
    assert report.evaluated_accounts == 1
    assert not DirtyAccount.objects.exists()


def test_evaluate_rules_command_prints_what_fired(world_a, hot_a, monkeypatch):
    monkeypatch.setattr("upgrades.rules.services.evaluation.timezone.now", lambda: NOW)
    out = StringIO()
    call_command("evaluate_rules", "--tenant", world_a.tenant.slug, "--account", "acct-1", stdout=out)
    text = out.getvalue()
    assert "fired upgrade_opportunity" in text and "acct-1" in text and "5 of the last 7 days" in text
    assert "1 signal(s) fired." in text


def test_four_eyes_the_author_cannot_approve_their_own_rule(world_a, cat_a):
    pm = world_a.staff[Role.PRODUCT_MANAGER]
    rule = services.create_rule(world_a.tenant, actor=pm, key="r", name="R", condition=HOT, signal_kind="renewal")
    rule = services.submit_rule(world_a.tenant, rule=rule, actor=pm)
    with pytest.raises(PermissionDenied, match="someone else must approve"):
        services.approve_rule(world_a.tenant, rule=rule, actor=pm)
    with pytest.raises(PermissionDenied):
        services.approve_rule(world_a.tenant, rule=rule, actor=world_a.staff[Role.CSM])
    with pytest.raises(Conflict):
        services.update_rule(world_a.tenant, rule=rule, actor=pm, name="R2")
    rule = services.approve_rule(world_a.tenant, rule=rule, actor=world_a.staff[Role.OWNER])
    assert rule.state == RuleState.LIVE
    rule = services.retire_rule(world_a.tenant, rule=rule, actor=pm)
    assert rule.state == RuleState.RETIRED


def test_saving_a_bad_rule_is_refused_with_every_error_and_nothing_written(world_a, cat_a):
    pm = world_a.staff[Role.PRODUCT_MANAGER]
    with pytest.raises(InvalidInput) as exc:
        bad = {"all": [{"kind": "meter_utilisation", "meter": "nope", "percent": 2000}]}
        services.create_rule(world_a.tenant, actor=pm, key="bad", name="Bad", signal_kind="renewal", condition=bad)
    paths = [e["path"] for e in exc.value.details["condition"]]
    assert paths == ["condition.all[0].meter", "condition.all[0].percent"]
    assert not TriggerRule.objects.exists()


def test_signals_api_lists_an_accounts_signals_and_hides_other_tenants(two_tenants, cat_a, cat_b, hot_a):
    a, b = two_tenants
    services.evaluate_rules(a.tenant, now=NOW)
    answer = a.api("read").get("/api/v1/accounts/acct-1/signals")
    assert answer.status_code == 200, answer.content
    [signal] = answer.json()["results"]
    assert signal["kind"] == "upgrade_opportunity" and signal["state"] == "open"
    assert signal["rule"] == {"key": "hot", "name": "Hot"}
    assert "5 of the last 7 days" in signal["evidence"]["sentence"]
    assert signal["evidence"]["facts"][0]["numbers"]["days_over"] == 5
    assert signal["created_at"].startswith("2026-11-20T15:00:00")
    # B's key, same external id: B's own (empty) account, never A's signals.
    assert b.api("read").get("/api/v1/accounts/acct-1/signals").json()["results"] == []
    assert b.api("read").get("/api/v1/accounts/nobody/signals").status_code == 404
    assert a.api("ingest").get("/api/v1/accounts/acct-1/signals").status_code == 403
    assert a.api("read").get("/api/v1/accounts/acct-1/signals?state=bogus").status_code == 400


def test_signals_answer_matches_the_openapi_schema(world_a, hot_a):
    import jsonschema
    from rest_framework.test import APIClient

    services.evaluate_rules(world_a.tenant, now=NOW)
    doc = APIClient().get("/api/v1/schema/?format=json").json()
    op = doc["paths"]["/api/v1/accounts/{external_id}/signals"]["get"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    body = world_a.api("read").get("/api/v1/accounts/acct-1/signals").json()
    assert body["results"]
    jsonschema.validate(body, _nullable({**schema, "components": doc["components"]}))
    ref = doc["components"]["schemas"]["Signal"]
    assert {"kind", "rule", "evidence", "state", "created_at"} <= set(ref["required"])


def _nullable(node):
    """OpenAPI 3.0's `nullable: true` as JSON Schema's type union (jsonschema knows only the latter)."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out
