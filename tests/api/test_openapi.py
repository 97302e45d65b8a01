"""The OpenAPI document itself: what it says about the pricing table, errors and links."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.usage.factories import make_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture
def openapi(db) -> dict:
    return APIClient().get("/api/v1/schema/?format=json").json()


def test_the_pricing_table_is_documented_as_the_object_it_is(openapi, world_a):
    """Defect 12: the schema said array; the endpoint answers {"tiers", "addons", "bundles"}."""
    make_catalog(world_a.tenant)
    documented = openapi["paths"]["/api/v1/catalog/tiers"]["get"]["responses"]["200"]["content"]["application/json"]
    assert documented["schema"] == {"$ref": "#/components/schemas/PricingTable"}
    assert set(openapi["components"]["schemas"]["PricingTable"]["properties"]) == {"tiers", "addons", "bundles"}
    body = world_a.api("read").get("/api/v1/catalog/tiers").json()
    assert isinstance(body, dict) and set(body) == {"tiers", "addons", "bundles"} and body["tiers"]


def test_operation_ids_are_unique(openapi):
    ids = [op["operationId"] for item in openapi["paths"].values() for op in item.values() if "operationId" in op]
    assert len(ids) == len(set(ids))


def test_every_operation_documents_the_house_error_shape(openapi):
    for path, item in openapi["paths"].items():
        for method, op in item.items():
            for code in ("400", "401", "403", "404", "429"):
                assert code in op["responses"], (method, path, code)
                schema = op["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, code)


def test_creating_an_account_links_to_the_account_it_created(openapi):
    links = openapi["paths"]["/api/v1/accounts"]["post"]["responses"]["201"]["links"]
    assert links["accounts_retrieve"] == {
        "operationId": "accounts_retrieve",
        "parameters": {"external_id": "$response.body#/external_id"},
    }
    assert {"accounts_partial_update", "accounts_contacts_create", "accounts_entitlements_retrieve"} <= set(links)
