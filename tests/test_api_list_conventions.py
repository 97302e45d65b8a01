"""API lists: `?limit=` works like the documented `?page_size=`; the schema's auth hint survives HTML rendering."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import CustomerAccount

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(world_a):
    for n in range(2, 8):
        CustomerAccount.objects.create(tenant=world_a.tenant, external_id=f"acct-{n}", name=f"Customer {n}")
    _, secret = account_services.create_api_key(world_a.tenant, name="t", scopes=("read",), actor="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.parametrize(
    ("query", "expected"),
    [("limit=2", 2), ("page_size=3", 3), ("page_size=3&limit=2", 3), ("limit=abc", 7), ("limit=0", 7), ("limit=²", 7)],
)
def test_limit_and_page_size_both_size_the_page(api, query, expected):
    response = api.get(f"/api/v1/accounts?{query}")
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == expected
    assert response.json()["count"] == 7


def test_the_authorize_hint_shows_the_key_shape_as_code_not_as_html_tags(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    description = schema["components"]["securitySchemes"]["ApiKey"]["description"]
    assert "`tw_<prefix>_<secret>`" in description  # markdown code: Swagger UI shows it instead of eating it


def test_the_api_description_names_only_what_the_api_serves(client):
    info = client.get("/api/v1/schema/?format=json").json()["info"]
    assert "portal sessions" not in info["description"]
    assert "entitlement checks" in info["description"] and "offers" in info["description"]
