"""Idempotency-Key under row-level security: the claim, the stored answer and the replay as the app role."""

from __future__ import annotations

import json

import pytest

from accounts.models import IdempotencyRecord
from accounts.tenancy import tenant_context
from tests.tenancy.conftest import APP_PASSWORD, APP_ROLE, app_role, connect_as  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration]
BODY = json.dumps({"external_id": "rls-idem", "name": "RLS"})


def test_the_key_is_claimed_stored_and_replayed_as_the_app_role_inside_the_keys_tenant(
    two_tenants,
    connect_as,  # noqa: F811 - the fixture imported above
):
    a, b = two_tenants
    client_a, client_b = a.api(), b.api()
    connect_as.switch(USER=APP_ROLE, PASSWORD=APP_PASSWORD)

    def post(client, body=BODY):
        return client.post("/api/v1/accounts", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")

    first = post(client_a)
    assert first.status_code == 201, first.content
    again = post(client_a)
    assert again.status_code == 201 and again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert post(client_a, json.dumps({"external_id": "rls-other", "name": "x"})).status_code == 422
    other = post(client_b)
    assert other.status_code == 201 and "Idempotent-Replayed" not in other
    with tenant_context(a.tenant):
        assert IdempotencyRecord.objects.count() == 1
    with tenant_context(b.tenant):
        assert IdempotencyRecord.objects.count() == 1
