"""GET /api/v1/catalog/tiers: the published pricing table for a vendor's website."""

import pytest
from rest_framework.test import APIClient

from accounts import services as account_services
from catalog import services

pytestmark = pytest.mark.django_db


def api_for(ladder, *scopes):
    _, secret = account_services.create_api_key(ladder.tenant, name="t", scopes=scopes or ("read",), actor="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_lists_published_public_tiers_with_prices_savings_entitlements_addons_and_bundles(full_a):
    api = api_for(full_a)
    response = api.get("/api/v1/catalog/tiers")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [t["key"] for t in body["tiers"]] == ["free", "team", "business"]  # the Scale draft is absent
    team = body["tiers"][1]
    assert team["prices"]["monthly"]["amount"] == 2_900
    assert team["prices"]["annual"]["amount"] == 29_000
    assert team["prices"]["annual_saving_amount"] == 5_800
    assert team["prices"]["annual_saving_percent"] == "16.67"
    assert team["prices"]["annual_effective_monthly"] == 2_417
    assert team["addons"] == ["sso-pack"]
    assert [b["key"] for b in team["bundles"]] == ["clinics"]
    calls = next(e for e in team["entitlements"] if e["feature"] == "api_calls")
    assert calls == {
        "feature": "api_calls",
        "name": "Api Calls",
        "kind": "metered",
        "unit": "API calls",
        "included": True,
        "limit": 50_000,
        "enforcement": "hard",
    }
    sso = next(e for e in team["entitlements"] if e["feature"] == "sso")
    assert sso["included"] is False and sso["enforcement"] is None
    business = body["tiers"][2]
    assert business["is_anchor"] is True
    assert next(e for e in business["entitlements"] if e["feature"] == "api_calls")["limit"] is None
    assert body["addons"][0]["compatible_tiers"] == ["team"]
    assert body["bundles"][0]["scenarios"][0]["title"] == "A 12-person clinic"


def test_retired_and_hidden_tiers_are_not_listed(full_a):
    services.retire(full_a.tenant, obj=full_a.free, actor=full_a.pm)
    body = api_for(full_a).get("/api/v1/catalog/tiers").json()
    assert [t["key"] for t in body["tiers"]] == ["team", "business"]


def test_one_tier_by_key_and_an_unknown_key_is_404(full_a):
    api = api_for(full_a)
    assert api.get("/api/v1/catalog/tiers/team").json()["name"] == "Team"
    response = api.get("/api/v1/catalog/tiers/scale")  # a draft
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_another_tenants_catalog_never_appears(full_a, full_b):
    body = api_for(full_a).get("/api/v1/catalog/tiers").json()
    names = (
        [t["name"] for t in body["tiers"]] + [a["name"] for a in body["addons"]] + [b["name"] for b in body["bundles"]]
    )
    assert names and not [n for n in names if n.startswith("Bee ")]
    b_body = api_for(full_b).get("/api/v1/catalog/tiers").json()
    assert all(t["name"].startswith("Bee ") for t in b_body["tiers"])
    ids_a = {t["prices"]["monthly"]["id"] for t in body["tiers"] if t["prices"]["monthly"]}
    ids_b = {t["prices"]["monthly"]["id"] for t in b_body["tiers"] if t["prices"]["monthly"]}
    assert not ids_a & ids_b


def test_the_read_scope_is_required(full_a):
    assert api_for(full_a, "ingest").get("/api/v1/catalog/tiers").status_code == 403
    assert APIClient().get("/api/v1/catalog/tiers").status_code in (401, 403)


def test_an_empty_catalog_answers_empty_lists(world_a):
    from tests.catalog.factories import make_product

    make_product(world_a.tenant)
    body = world_a.api("read").get("/api/v1/catalog/tiers").json()
    assert body == {"tiers": [], "addons": [], "bundles": []}


def test_the_endpoint_reads_in_a_fixed_number_of_queries(full_a, django_assert_max_num_queries):
    api = api_for(full_a)
    api.get("/api/v1/catalog/tiers")
    with django_assert_max_num_queries(16):
        assert api.get("/api/v1/catalog/tiers").status_code == 200
