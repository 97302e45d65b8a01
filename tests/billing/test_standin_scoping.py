"""The stand-in is one Stripe account per secret key: tenant B's key cannot see or touch tenant A's payments."""

from __future__ import annotations

import pytest
import requests

from billing.models import StripeProduct
from tests.billing.helpers import billed_license

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def call(standin, method: str, path: str, key: str, **data) -> requests.Response:
    return requests.request(
        method,
        f"{standin.url}{path}",
        params=data if method == "GET" else None,
        data=data if method != "GET" else None,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_charges_payment_intents_and_products_of_one_key_are_invisible_to_another(world_a, world_b, standin):
    a = billed_license(world_a.tenant, world_a.account, standin)
    b = billed_license(world_b.tenant, world_b.account, standin)
    a_customer, b_customer = a.license.stripe_customer_id, b.license.stripe_customer_id
    (a_charge,) = standin.charges(a.api_key, a_customer)  # the first invoice of A's subscription
    a_intent = a_charge["payment_intent"]
    assert a_charge["status"] == "succeeded" and a_intent

    # Lists hold only the key's own objects; filtering by the other account's customer is a 404.
    b_charges = call(standin, "GET", "/v1/charges", b.api_key, limit=100).json()["data"]
    assert b_charges and {c["customer"] for c in b_charges} == {b_customer}
    assert call(standin, "GET", "/v1/charges", b.api_key, customer=a_customer).status_code == 404
    b_intents = call(standin, "GET", "/v1/payment_intents", b.api_key).json()["data"]
    assert a_intent not in {i["id"] for i in b_intents} and b_intents

    # Objects by id: the owner reads them, the other key is told they do not exist, and cannot act on them.
    assert call(standin, "GET", f"/v1/charges/{a_charge['id']}", a.api_key).status_code == 200
    assert call(standin, "GET", f"/v1/charges/{a_charge['id']}", b.api_key).status_code == 404
    assert call(standin, "GET", f"/v1/payment_intents/{a_intent}", a.api_key).json()["status"] == "succeeded"
    for method, path in (
        ("GET", f"/v1/payment_intents/{a_intent}"),
        ("POST", f"/v1/payment_intents/{a_intent}/cancel"),
        ("POST", f"/v1/charges/{a_charge['id']}/capture"),
        ("POST", f"/v1/customers/{a_customer}/sources"),
    ):
        response = call(standin, method, path, b.api_key)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "resource_missing"
    assert call(standin, "POST", "/v1/refunds", b.api_key, charge=a_charge["id"]).status_code == 404
    assert (
        call(
            standin, "POST", "/v1/payment_intents", b.api_key, amount=100, currency="usd", customer=a_customer
        ).status_code
        == 404
    )
    assert call(standin, "GET", f"/v1/payment_intents/{a_intent}", a.api_key).json()["status"] == "succeeded"

    # Products (and so prices built on them) are scoped the same way.
    a_product = StripeProduct.objects.get(tenant=world_a.tenant, catalog_key="team").stripe_product_id
    assert call(standin, "GET", f"/v1/products/{a_product}", b.api_key).status_code == 404
    steal = call(
        standin,
        "POST",
        "/v1/prices",
        b.api_key,
        product=a_product,
        unit_amount=1,
        currency="usd",
        **{"recurring[interval]": "month"},
    )
    assert steal.status_code == 404

    # A payment intent the key creates itself is its own.
    mine = call(standin, "POST", "/v1/payment_intents", b.api_key, amount=100, currency="usd", customer=b_customer)
    assert mine.status_code == 200
    assert call(standin, "GET", f"/v1/payment_intents/{mine.json()['id']}", a.api_key).status_code == 404
    assert call(standin, "GET", f"/v1/payment_intents/{mine.json()['id']}", b.api_key).status_code == 200


def test_localstripe_resources_the_layer_does_not_scope_are_refused_and_a_key_is_required(world_a, standin):
    a = billed_license(world_a.tenant, world_a.account, standin)
    for path in ("/v1/plans", "/v1/subscription_items", "/v1/events", "/v1/balance", "/v1/customers"):
        assert call(standin, "GET", path, a.api_key).status_code == 404, path
    assert requests.get(f"{standin.url}/v1/charges", timeout=5).status_code == 401
