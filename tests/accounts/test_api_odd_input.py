"""Odd JSON bodies and query strings answer 400 naming the field, never 500, and write nothing."""

import json

import pytest

from accounts.models import CustomerAccount

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("attributes", [{"note": "a\u0000b"}, {"\u0000": 1}, {"deep": [{"x": "\u0000"}]}])
def test_account_attributes_with_a_nul_character_are_refused_with_the_field(world_a, attributes):
    api = world_a.api("write")
    response = api.post(
        "/api/v1/accounts", {"external_id": "nul-1", "name": "N", "attributes": attributes}, format="json"
    )
    assert response.status_code == 400
    assert "attributes" in response.json()["error"]["details"]
    assert not CustomerAccount.objects.filter(external_id="nul-1").exists()

    response = api.patch("/api/v1/accounts/acct-1", {"attributes": attributes}, format="json")
    assert response.status_code == 400
    assert "attributes" in response.json()["error"]["details"]
    world_a.account.refresh_from_db()
    assert world_a.account.attributes == {}


def test_account_attributes_with_an_unpaired_surrogate_are_refused_with_the_field(world_a):
    body = '{"external_id": "sur-1", "name": "N", "attributes": {"k": "\\ud800"}}'
    response = world_a.api("write").post("/api/v1/accounts", body, content_type="application/json")
    assert response.status_code == 400
    assert "attributes" in response.json()["error"]["details"]
    assert not CustomerAccount.objects.filter(external_id="sur-1").exists()


@pytest.mark.parametrize("param", ["search", "lifecycle_stage", "segment"])
def test_account_list_filter_with_a_nul_character_is_a_400_naming_the_parameter(world_a, param):
    response = world_a.api("read").get(f"/api/v1/accounts?{param}=a%00b")
    assert response.status_code == 400
    assert param in response.json()["error"]["details"]


@pytest.mark.parametrize(
    "method, path",
    [("post", "/api/v1/accounts"), ("patch", "/api/v1/accounts/acct-1"), ("post", "/api/v1/accounts/acct-1/contacts")],
)
def test_deeply_nested_json_body_is_a_400_not_a_server_error(world_a, method, path):
    api = world_a.api("read", "write")
    response = getattr(api, method)(path, "[" * 10_000, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert CustomerAccount.objects.count() == 1


def test_plain_json_list_body_for_an_account_is_a_400(world_a):
    response = world_a.api("write").post("/api/v1/accounts", json.dumps([1, 2]), content_type="application/json")
    assert response.status_code == 400


def test_an_external_id_with_a_trailing_newline_is_refused(world_a):
    response = world_a.api("write").post("/api/v1/accounts", {"external_id": "acme\n", "name": "X"}, format="json")
    assert response.status_code == 400
    assert "external_id" in response.json()["error"]["details"]
