"""Odd bodies and ids on the usage API answer 400/404 with the field, never 500."""

import pytest

from usage.models import Event

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/entitlements/check"])
def test_deeply_nested_json_body_is_a_400_not_a_server_error(world_a, path):
    response = world_a.api("read", "ingest").post(path, "[" * 10_000, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert not Event.objects.exists()


@pytest.mark.parametrize("field", ["account", "feature"])
def test_entitlement_check_with_a_nul_character_names_the_field(world_a, field):
    body = {"account": "acct-1", "feature": "sso", field: "x\u0000y"}
    response = world_a.api("read").post("/api/v1/entitlements/check", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]


def test_account_entitlements_for_an_id_with_a_nul_character_is_a_json_404(world_a):
    response = world_a.api("read").get("/api/v1/accounts/acct-1%00/entitlements")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_usage_admin_pages_with_a_nul_character_in_the_url_are_not_a_server_error(world_a):
    client = world_a.staff_client("owner")
    response = client.get("/admin/usage/usageaccount/by-external-id/acct-1%00/")
    assert response.status_code == 302
    assert f"/{world_a.account.pk}/" not in response["Location"]
    response = client.get(f"/admin/usage/usageaccount/{world_a.account.pk}/change/?event=a%00b")
    assert response.status_code == 200
