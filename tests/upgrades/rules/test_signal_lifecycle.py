"""A signal leaves `open` once: acted on (the offer engine), dismissed (a person or the vendor's API, with a
reason) or expired (the sweep). Every move is audited; a retry changes nothing; other tenants get 404."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from accounts.models import AuditEntry, Role
from tests.upgrades.rules.conftest import NOW, live_rule, rollup
from upgrades.rules import services, tasks
from upgrades.rules.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from upgrades.rules.models import Signal, SignalState

DAY = datetime.timedelta(days=1)
HOT = {"kind": "meter_utilisation", "meter": "api_calls", "percent": 90, "days": 7, "min_days": 5}


def _fire(world, catalog, *, now=NOW) -> Signal:
    for back in range(7):
        rollup(world.account, catalog.api_meter, (now - back * DAY).date(), 3000)
    live_rule(world, key="hot", condition=HOT)
    services.evaluate_rules(world.tenant, now=now)
    return Signal.objects.for_tenant(world.tenant).get()


@pytest.fixture
def signal_a(world_a, cat_a) -> Signal:
    return _fire(world_a, cat_a)


def _audits(tenant, action: str) -> int:
    return AuditEntry.objects.filter(tenant=tenant, action=action).count()


def test_the_offer_engine_marks_an_open_signal_acted_on_once(world_a, signal_a):
    signal = services.mark_signal_acted_on(world_a.tenant, signal=signal_a, reference="offer:42")
    assert signal.state == SignalState.ACTED_ON and signal.reference == "offer:42" and signal.closed_at
    again = services.mark_signal_acted_on(world_a.tenant, signal=signal_a, reference="offer:42")  # a retry
    assert again.state == SignalState.ACTED_ON and _audits(world_a.tenant, "signal.acted_on") == 1
    with pytest.raises(Conflict) as refused:  # another offer for the same signal
        services.mark_signal_acted_on(world_a.tenant, signal=signal_a, reference="offer:43")
    assert refused.value.details == {"state": "acted_on"}
    with pytest.raises(Conflict):  # acted on is final: it cannot be dismissed afterwards
        services.dismiss_signal(world_a.tenant, signal=signal_a, actor=world_a.staff[Role.CSM], reason="late")
    signal_a.refresh_from_db()
    assert signal_a.state == SignalState.ACTED_ON and signal_a.reference == "offer:42"


@pytest.mark.parametrize("reference", ["", "   ", "x" * 201, "a\x00b", None])
def test_acting_on_needs_a_reference_and_writes_nothing_without_one(world_a, signal_a, reference):
    with pytest.raises(InvalidInput) as refused:
        services.mark_signal_acted_on(world_a.tenant, signal=signal_a, reference=reference)
    assert "reference" in refused.value.details
    signal_a.refresh_from_db()
    assert signal_a.state == SignalState.OPEN and _audits(world_a.tenant, "signal.acted_on") == 0


@pytest.mark.parametrize("role", [Role.CSM, Role.PRODUCT_MANAGER, Role.OWNER])
def test_csms_pms_and_owners_dismiss_with_a_reason_that_is_kept_and_audited(world_a, signal_a, role):
    person = world_a.staff[role]
    signal = services.dismiss_signal(world_a.tenant, signal=signal_a, actor=person, reason="  Already talking  ")
    assert signal.state == SignalState.DISMISSED and signal.closed_reason == "Already talking"
    assert signal.closed_by == person.email
    entry = AuditEntry.objects.get(tenant=world_a.tenant, action="signal.dismissed")
    assert entry.actor == person and entry.before == {"state": "open"}
    assert entry.after["reason"] == "Already talking"


def test_an_analyst_may_not_dismiss(world_a, signal_a):
    with pytest.raises(PermissionDenied):
        services.dismiss_signal(world_a.tenant, signal=signal_a, actor=world_a.staff[Role.ANALYST], reason="no")
    signal_a.refresh_from_db()
    assert signal_a.state == SignalState.OPEN


def test_dismissing_without_a_reason_is_refused(world_a, signal_a):
    with pytest.raises(InvalidInput) as refused:
        services.dismiss_signal(world_a.tenant, signal=signal_a, actor=world_a.staff[Role.CSM], reason=" ")
    assert "reason" in refused.value.details


def test_another_tenants_signal_is_not_found(two_tenants, cat_a, signal_a):
    _, b = two_tenants
    with pytest.raises(NotFound):
        services.dismiss_signal(b.tenant, signal=signal_a, actor=b.staff[Role.OWNER], reason="not mine")
    with pytest.raises(NotFound):
        services.mark_signal_acted_on(b.tenant, signal=signal_a, reference="offer:1")
    signal_a.refresh_from_db()
    assert signal_a.state == SignalState.OPEN


def test_the_expiry_sweep_expires_only_stale_open_signals_and_is_idempotent(world_a, cat_a, signal_a):
    fresh = Signal.objects.create(
        tenant=world_a.tenant, account=world_a.account, rule=signal_a.rule, kind=signal_a.kind,
        dedup_key="fresh", created_at=NOW + 20 * DAY,
    )  # fmt: skip
    acted = Signal.objects.create(
        tenant=world_a.tenant, account=world_a.account, rule=signal_a.rule, kind=signal_a.kind,
        dedup_key="acted", created_at=NOW - 40 * DAY, state=SignalState.ACTED_ON,
    )  # fmt: skip
    later = NOW + 31 * DAY
    assert services.expire_stale_signals(world_a.tenant, now=later) == 1
    assert services.expire_stale_signals(world_a.tenant, now=later) == 0  # a rerun changes nothing
    states = dict(Signal.objects.for_tenant(world_a.tenant).values_list("pk", "state"))
    assert states == {signal_a.pk: "expired", fresh.pk: "open", acted.pk: "acted_on"}
    assert _audits(world_a.tenant, "signal.expired") == 1
    with pytest.raises(Conflict):
        services.dismiss_signal(world_a.tenant, signal=signal_a, actor=world_a.staff[Role.CSM], reason="too late")


def test_the_daily_sweep_expires_stale_signals_in_every_tenant_through_its_task(two_tenants, cat_a, signal_a,
                                                                                monkeypatch):  # fmt: skip
    a, b = two_tenants
    monkeypatch.setattr("upgrades.rules.services.lifecycle.timezone.now", lambda: NOW + 31 * DAY)
    sent: list[int] = []
    monkeypatch.setattr(tasks.expire_stale_signals, "delay", sent.append)
    monkeypatch.setattr(tasks.evaluate_time_based_rules, "delay", lambda tenant_id: None)
    tasks.daily_sweep()
    assert sent == [a.tenant.pk]  # B has none
    assert tasks.expire_stale_signals(a.tenant.pk) == 1
    assert tasks.expire_stale_signals(a.tenant.pk) == 0  # the task run twice
    assert tasks.expire_stale_signals(10**9) == 0  # a tenant that is gone


# --- API -------------------------------------------------------------------------------------------


def _dismiss(client, signal_id, body, **headers):
    return client.post(f"/api/v1/signals/{signal_id}/dismiss", body, format="json", **headers)


def test_api_dismisses_a_signal_and_the_account_list_shows_it(world_a, signal_a):
    client = world_a.api("read", "write")
    answer = _dismiss(client, signal_a.pk, {"reason": "Renewal already agreed"})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["id"] == signal_a.pk and body["state"] == "dismissed"
    assert body["closed_reason"] == "Renewal already agreed" and body["closed_at"]
    [listed] = client.get("/api/v1/accounts/acct-1/signals").json()["results"]
    assert {k: listed[k] for k in ("kind", "state", "created_at")} == {
        "kind": "upgrade_opportunity", "state": "dismissed", "created_at": body["created_at"],
    }  # fmt: skip
    assert listed["rule"] == {"key": "hot", "name": "Hot"} and listed["evidence"]["sentence"]
    assert _dismiss(client, signal_a.pk, {"reason": "again"}).status_code == 409


def test_api_dismiss_honours_idempotency_key(world_a, signal_a):
    client = world_a.api("read", "write")
    first = _dismiss(client, signal_a.pk, {"reason": "Busy"}, HTTP_IDEMPOTENCY_KEY="k-1")
    replay = _dismiss(client, signal_a.pk, {"reason": "Busy"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == replay.status_code == 200
    assert replay.content == first.content and replay.headers.get("Idempotent-Replayed") == "true"
    assert _dismiss(client, signal_a.pk, {"reason": "Other"}, HTTP_IDEMPOTENCY_KEY="k-1").status_code == 422
    assert _audits(world_a.tenant, "signal.dismissed") == 1


@pytest.mark.parametrize(
    "body", [{}, {"reason": ""}, {"reason": "x" * 501}, {"reason": 5}, {"reason": ["a"]}, {"reason": "a\x00b"}]
)
def test_api_dismiss_validates_the_reason(world_a, signal_a, body):
    answer = _dismiss(world_a.api("read", "write"), signal_a.pk, body)
    assert answer.status_code == 400, answer.content
    assert "reason" in answer.json()["error"]["details"]
    signal_a.refresh_from_db()
    assert signal_a.state == SignalState.OPEN


def test_api_dismiss_needs_write_scope_and_the_signal_of_the_keys_tenant(two_tenants, cat_a, signal_a):
    a, b = two_tenants
    assert _dismiss(a.api("read"), signal_a.pk, {"reason": "x"}).status_code == 403
    assert _dismiss(b.api("read", "write"), signal_a.pk, {"reason": "x"}).status_code == 404
    assert _dismiss(a.api("read", "write"), 10**12, {"reason": "x"}).status_code == 404
    assert _dismiss(a.api("read", "write"), "abc", {"reason": "x"}).status_code == 404
    assert a.api("read", "write").get(f"/api/v1/signals/{signal_a.pk}/dismiss").status_code in (404, 405)
    signal_a.refresh_from_db()
    assert signal_a.state == SignalState.OPEN


def test_api_dismiss_answer_matches_the_openapi_schema(world_a, signal_a):
    import jsonschema
    from rest_framework.test import APIClient

    from tests.upgrades.rules.test_services_evaluation import _nullable

    doc = APIClient().get("/api/v1/schema/?format=json").json()
    op = doc["paths"]["/api/v1/signals/{id}/dismiss"]["post"]
    assert {p["name"] for p in op.get("parameters", [])} >= {"Idempotency-Key"}
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    body = _dismiss(world_a.api("read", "write"), signal_a.pk, {"reason": "No"}).json()
    jsonschema.validate(body, _nullable({**schema, "components": doc["components"]}))


# --- admin -----------------------------------------------------------------------------------------


def _post_action(client, signal_ids, **extra):
    data = {"action": "dismiss_selected", helpers.ACTION_CHECKBOX_NAME: [str(i) for i in signal_ids], **extra}
    return client.post(reverse("admin:upgrades_signal_changelist"), data)


def test_a_csm_dismisses_signals_in_the_admin_after_giving_a_reason(world_a, signal_a):
    client = world_a.staff_client(Role.CSM)
    page = _post_action(client, [signal_a.pk])
    assert page.status_code == 200 and b'data-testid="dismiss-signals"' in page.content
    again = _post_action(client, [signal_a.pk], confirmed="1", reason="")
    assert b'data-testid="dismiss-error"' in again.content
    signal_a.refresh_from_db()
    assert signal_a.state == SignalState.OPEN
    done = _post_action(client, [signal_a.pk], confirmed="1", reason="Spoke to them")
    assert done.status_code == 302
    signal_a.refresh_from_db()
    assert signal_a.state == SignalState.DISMISSED and signal_a.closed_reason == "Spoke to them"


def test_an_analyst_gets_no_dismiss_action(world_a, signal_a):
    client = world_a.staff_client(Role.ANALYST)
    listing = client.get(reverse("admin:upgrades_signal_changelist"))
    assert listing.status_code == 200 and b"dismiss_selected" not in listing.content
    _post_action(client, [signal_a.pk], confirmed="1", reason="sneaky")
    signal_a.refresh_from_db()
    assert signal_a.state == SignalState.OPEN


def test_the_admin_action_never_reaches_another_tenants_signal(two_tenants, cat_a, signal_a):
    _, b = two_tenants
    _post_action(b.staff_client(Role.CSM), [signal_a.pk], confirmed="1", reason="not mine")
    signal_a.refresh_from_db()
    assert signal_a.state == SignalState.OPEN
