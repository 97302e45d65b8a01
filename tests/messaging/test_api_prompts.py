"""GET /api/v1/accounts/{external_id}/prompts and POST /api/v1/prompts/{id}/events."""

from __future__ import annotations

import datetime

import pytest

from messaging import rendering
from messaging.models import Message, MessageEvent, MessageState
from tests.messaging.conftest import add_contact, live_template, set_settings

pytestmark = pytest.mark.django_db
GATE = rendering.sample_context("feature_gate")
PAST = datetime.datetime(2026, 11, 2, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def prompt(world_a, send):
    live_template(world_a.tenant, key="gate-sso", purpose="feature_gate", channel="in_app")
    return send(world_a, key="gate-sso", cause="gate:sso", channel="in_app", context=GATE, now=PAST)


def test_due_prompts_are_listed_for_the_placement(world_a, prompt):
    answer = world_a.api("read").get("/api/v1/accounts/acct-1/prompts?placement=feature_gate")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["account"] == "acct-1"
    assert [p["id"] for p in body["prompts"]] == [prompt.pk]
    shown = body["prompts"][0]
    assert shown["title"] == "Single sign-on is in Team" and shown["cta_url"].startswith("https://")
    assert shown["contact"] == world_a.contact.email and shown["state"] == "queued"
    other = world_a.api("read").get("/api/v1/accounts/acct-1/prompts?placement=billing_page")
    assert other.json()["prompts"] == []


def test_the_contact_parameter_narrows_and_an_unknown_contact_is_404(world_a, prompt):
    api = world_a.api("read")
    mine = api.get("/api/v1/accounts/acct-1/prompts", {"contact": world_a.contact.email})
    assert len(mine.json()["prompts"]) == 1
    add_contact(world_a, "cto@customer.test")
    assert api.get("/api/v1/accounts/acct-1/prompts", {"contact": "cto@customer.test"}).json()["prompts"] == []
    assert api.get("/api/v1/accounts/acct-1/prompts", {"contact": "nobody@x.test"}).status_code == 404
    upper = api.get("/api/v1/accounts/acct-1/prompts", {"contact": world_a.contact.email.upper()})
    assert [p["id"] for p in upper.json()["prompts"]] == [prompt.pk]  # the email matches in any case


def test_an_unknown_account_and_an_unknown_contact_answer_the_house_404(world_a, prompt):
    api = world_a.api("read")
    missing = api.get("/api/v1/accounts/no-such/prompts")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"code": "not_found", "message": "No account 'no-such'.", "details": None}
    stranger = api.get("/api/v1/accounts/acct-1/prompts", {"contact": "nobody@x.test"})
    assert stranger.json()["error"]["message"] == "No such contact for this account."


def test_bad_query_parameters_are_400_with_field_and_reason(world_a, prompt):
    answer = world_a.api("read").get("/api/v1/accounts/acct-1/prompts", {"placement": "Bad Place!", "contact": "x"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "invalid" and set(error["details"]) == {"placement", "contact"}


def test_shown_takes_a_cap_slot_once_and_a_full_cap_hides_new_prompts(world_a, send, prompt):
    set_settings(world_a.tenant, cap_count=1, account_cap_count=1)
    api = world_a.api("read", "write")
    url = f"/api/v1/prompts/{prompt.pk}/events"
    for _ in range(2):
        answer = api.post(url, {"event": "shown"}, format="json")
        assert answer.status_code == 200 and answer.json()["state"] == "sent"
    prompt.refresh_from_db()
    assert prompt.counted_at is not None
    live_template(world_a.tenant, key="gate-audit", purpose="feature_gate", channel="in_app", placement="audit")
    second = send(world_a, key="gate-audit", cause="gate:audit", channel="in_app", context=GATE, now=PAST)
    listed = api.get("/api/v1/accounts/acct-1/prompts").json()["prompts"]
    assert [p["id"] for p in listed] == [prompt.pk]  # the shown one stays; the new one waits for room
    assert second.pk not in [p["id"] for p in listed]
    dismissed = api.post(url, {"event": "dismissed"}, format="json")
    assert dismissed.json()["state"] == "dismissed"
    assert api.get("/api/v1/accounts/acct-1/prompts").json()["prompts"] == []
    assert MessageEvent.objects.filter(message=prompt).count() == 3


def test_an_idempotency_key_replays_the_first_answer(world_a, prompt):
    api = world_a.api("write")
    url = f"/api/v1/prompts/{prompt.pk}/events"
    first = api.post(url, {"event": "clicked"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post(url, {"event": "clicked"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content
    assert MessageEvent.objects.filter(message=prompt, kind="clicked").count() == 1
    other = api.post(url, {"event": "dismissed"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 422


def test_an_unknown_event_is_400(world_a, prompt):
    answer = world_a.api("write").post(f"/api/v1/prompts/{prompt.pk}/events", {"event": "liked"}, format="json")
    assert answer.status_code == 400 and "event" in answer.json()["error"]["details"]


def test_scopes_read_lists_and_write_records(world_a, prompt):
    assert world_a.api("ingest").get("/api/v1/accounts/acct-1/prompts").status_code == 403
    assert world_a.api("read").post(f"/api/v1/prompts/{prompt.pk}/events", {"event": "shown"}).status_code == 403


def test_other_tenants_ids_are_404(two_tenants, send):
    a, b = two_tenants
    live_template(b.tenant, key="gate-sso", purpose="feature_gate", channel="in_app")
    theirs = send(b, key="gate-sso", cause="gate:sso", channel="in_app", context=GATE, now=PAST)
    api = a.api("read", "write")
    assert api.post(f"/api/v1/prompts/{theirs.pk}/events", {"event": "shown"}, format="json").status_code == 404
    assert api.get("/api/v1/accounts/acct-1/prompts").json()["prompts"] == []  # B's acct-1 is not A's
    assert api.get("/api/v1/accounts/no-such/prompts").status_code == 404
    assert api.post("/api/v1/prompts/abc/events", {"event": "shown"}, format="json").status_code == 404
    theirs.refresh_from_db()
    assert theirs.state == MessageState.QUEUED and theirs.counted_at is None


def test_an_email_id_is_not_a_prompt(world_a, send):
    live_template(world_a.tenant)
    email = send(world_a)
    answer = world_a.api("write").post(f"/api/v1/prompts/{email.pk}/events", {"event": "shown"}, format="json")
    assert answer.status_code == 404
    assert Message.objects.get(pk=email.pk).channel == "email"


def test_an_unsubscribe_or_a_decline_hides_upgrade_prompts(world_a, prompt):
    from messaging.services import note_decline, unsubscribe

    api = world_a.api("read")
    url = "/api/v1/accounts/acct-1/prompts"
    assert len(api.get(url).json()["prompts"]) == 1
    note_decline(world_a.tenant, account=world_a.account)
    assert api.get(url).json()["prompts"] == []
    from messaging.models import DeclineQuiet

    DeclineQuiet.objects.all().delete()
    assert len(api.get(url).json()["prompts"]) == 1
    unsubscribe(world_a.tenant, contact=world_a.contact, source="test")
    assert api.get(url).json()["prompts"] == []
