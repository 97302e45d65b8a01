"""POST /api/v1/trials and GET /api/v1/trials/{id}: validation, refusals, Idempotency-Key, tenants, scopes."""

from __future__ import annotations

import json

import pytest

from accounts.tenancy import tenant_context
from billing.models import LicenseGrant
from tests.upgrades.offers.test_trials import make_trial_world
from upgrades.offers.models import Trial

URL = "/api/v1/trials"


@pytest.fixture
def tw(world_a):
    return make_trial_world(world_a)


def _post(client, body, **headers):
    return client.post(URL, json.dumps(body), content_type="application/json", **headers)


def test_post_starts_a_trial_and_answers_its_progress(tw):
    client = tw.world.api("write", "read")
    response = _post(client, {"account": "acct-1", "tier": "business", "days": 10})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["account"] == "acct-1" and body["state"] == "active" and body["source"] == "api"
    assert body["target_kind"] == "tier" and body["target_key"] == "business" and body["target_name"] == "Business"
    assert body["days_total"] == 10 and body["days_left"] == 10
    assert [f["key"] for f in body["unlocked_features"]] == ["exports", "sso"]
    assert body["wins"] == []
    assert [o["key"] for o in body["next_steps"]["options"]] == ["upgrade", "stay", "talk_to_person"]
    got = client.get(f"{URL}/{body['id']}")
    assert got.status_code == 200 and got.json()["id"] == body["id"]
    with tenant_context(tw.tenant):
        trial = Trial.objects.for_tenant(tw.tenant).get(pk=body["id"])
        assert trial.started_by_label.startswith("api-key:")


def test_an_add_on_trial_through_the_api(tw):
    response = _post(tw.world.api("write"), {"account": "acct-1", "addon": "sso"})
    assert response.status_code == 201
    assert response.json()["target_kind"] == "addon" and response.json()["days_total"] == 14


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tier": "business"}, "account"),
        ({"account": "acct-1"}, "tier"),
        ({"account": "acct-1", "tier": "business", "addon": "sso"}, "tier"),
        ({"account": "nobody", "tier": "business"}, "account"),
        ({"account": "bad id!", "tier": "business"}, "account"),
        ({"account": "acct-1", "tier": "platinum"}, "tier"),
        ({"account": "acct-1", "tier": "team"}, "tier"),
        ({"account": "acct-1", "addon": "nope"}, "addon"),
        ({"account": "acct-1", "tier": "business", "days": 0}, "days"),
        ({"account": "acct-1", "tier": "business", "days": 400}, "days"),
        ({"account": "acct-1", "tier": "business", "days": "ten"}, "days"),
    ],
)
def test_invalid_input_is_400_with_the_field_and_nothing_is_written(tw, body, field):
    response = _post(tw.world.api("write"), body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["details"] and error["code"]
    with tenant_context(tw.tenant):
        assert not Trial.objects.for_tenant(tw.tenant).exists()
        assert not LicenseGrant.objects.for_tenant(tw.tenant).exists()


def test_a_second_trial_in_the_window_is_409_trial_already_used(tw):
    client = tw.world.api("write")
    assert _post(client, {"account": "acct-1", "tier": "business"}).status_code == 201
    second = _post(client, {"account": "acct-1", "tier": "business"})
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "trial_already_used"
    assert "available_from" in second.json()["error"]["details"]


def test_the_same_idempotency_key_replays_the_first_answer_and_starts_one_trial(tw):
    client = tw.world.api("write")
    body = {"account": "acct-1", "tier": "business"}
    first = _post(client, body, HTTP_IDEMPOTENCY_KEY="trial-1")
    again = _post(client, body, HTTP_IDEMPOTENCY_KEY="trial-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    other = _post(client, {**body, "days": 3}, HTTP_IDEMPOTENCY_KEY="trial-1")
    assert other.status_code == 422
    with tenant_context(tw.tenant):
        assert Trial.objects.for_tenant(tw.tenant).count() == 1


def test_a_read_only_key_cannot_start_a_trial(tw):
    response = _post(tw.world.api("read"), {"account": "acct-1", "tier": "business"})
    assert response.status_code == 403
    with tenant_context(tw.tenant):
        assert not Trial.objects.for_tenant(tw.tenant).exists()


def test_another_tenants_trial_and_account_are_404_and_400(tw, world_b):
    tb = make_trial_world(world_b)
    b_trial = _post(tb.world.api("write"), {"account": "acct-1", "tier": "business"}).json()
    client = tw.world.api("write", "read")
    missing = client.get(f"{URL}/{b_trial['id']}")
    assert missing.status_code == 404 and set(missing.json()) == {"error"}
    assert client.get(f"{URL}/999999").status_code == 404
    # A's "acct-1" is A's own account: B's trial of it doesn't count against A.
    assert _post(client, {"account": "acct-1", "tier": "business"}).status_code == 201
    with tenant_context(tb.tenant):
        assert Trial.objects.for_tenant(tb.tenant).count() == 1


def test_the_schema_documents_both_operations(tw):
    from rest_framework.test import APIClient

    schema = APIClient().get("/api/v1/schema/?format=json").json()
    post = schema["paths"]["/api/v1/trials"]["post"]
    assert "201" in post["responses"] and "409" in post["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    get = schema["paths"]["/api/v1/trials/{id}"]["get"]
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Trial"}
