"""Odd input to the account endpoints and tenant settings answers 400 (or a page), never 500."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import CustomerAccount

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("field", ["size_band", "segment", "lifecycle_stage"])
def test_a_lone_surrogate_in_a_choice_field_is_a_400_naming_the_field(world_a, field):
    api = world_a.api("write")
    body = json.dumps({"external_id": "sur-2", "name": "N", field: "\ud800"})
    response = api.post("/api/v1/accounts", body, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not CustomerAccount.objects.filter(external_id="sur-2").exists()

    response = api.patch("/api/v1/accounts/acct-1", json.dumps({field: "\udfff"}), content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


@pytest.mark.parametrize("field", ["name", "industry", "territory", "external_id"])
def test_a_lone_surrogate_in_a_text_field_is_a_400_naming_the_field(world_a, field):
    payload = {"external_id": "sur-3", "name": "N", field: "x\ud83dy"}
    response = world_a.api("write").post("/api/v1/accounts", json.dumps(payload), content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not CustomerAccount.objects.filter(name="N").exists()


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


def test_attributes_nested_900_deep_are_a_400_with_the_depth_limit(world_a):
    api = world_a.api("write")
    body = json.dumps({"external_id": "deep-1", "name": "N", "attributes": _nested(900)})
    response = api.post("/api/v1/accounts", body, content_type="application/json")
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert "attributes" in details and "10" in json.dumps(details)
    assert not CustomerAccount.objects.filter(external_id="deep-1").exists()

    response = api.patch(
        "/api/v1/accounts/acct-1",
        json.dumps({"attributes": {"a": [[[[[[[[[[1]]]]]]]]]]}}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "attributes" in response.json()["error"]["details"]


def test_attributes_exactly_at_the_depth_limit_are_accepted(world_a):
    response = world_a.api("write").post(
        "/api/v1/accounts", {"external_id": "deep-2", "name": "N", "attributes": _nested(10)}, format="json"
    )
    assert response.status_code == 201, response.content
    assert CustomerAccount.objects.get(external_id="deep-2").attributes == _nested(10)


@pytest.mark.parametrize("days, ok", [(0, False), (1, True), (90, True), (91, False), (1_000_000, False)])
def test_the_late_arrival_window_is_bounded(world_a, days, ok):
    world_a.tenant.event_late_arrival_days = days
    if ok:
        world_a.tenant.full_clean()
    else:
        with pytest.raises(ValidationError) as exc:
            world_a.tenant.full_clean()
        assert "event_late_arrival_days" in exc.value.message_dict


def test_the_database_refuses_a_late_arrival_window_past_the_bound(world_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        type(world_a.tenant).objects.filter(pk=world_a.tenant.pk).update(event_late_arrival_days=1_000_000)


def test_an_owner_cannot_save_an_unbounded_late_arrival_window_in_the_admin(world_a):
    client = world_a.staff_client("owner")
    t = world_a.tenant
    response = client.post(
        f"/admin/accounts/tenant/{t.pk}/change/",
        {
            "name": t.name,
            "time_zone": t.time_zone,
            "default_currency": t.default_currency,
            "event_late_arrival_days": "1000000",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "event_late_arrival_days" in response.context["adminform"].form.errors
    t.refresh_from_db()
    assert t.event_late_arrival_days == 35


def test_get_accounts_login_answers_a_page_not_a_server_error(client):
    response = client.get("/accounts/login/?next=/admin/", follow=True)
    assert response.status_code == 200
    assert b'name="password"' in response.content
