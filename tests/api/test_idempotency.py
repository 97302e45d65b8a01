"""`Idempotency-Key` on API writes behaves like Stripe's: replay, 422 on reuse, 409 in flight, scoped per key."""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import idempotency, services
from accounts.models import AuditEntry, CustomerAccount, IdempotencyRecord

pytestmark = pytest.mark.django_db
URL = "/api/v1/accounts"
BODY = {"external_id": "idem-1", "name": "Idem One", "segment": "smb"}


def post(client: APIClient, body: dict | str, key: str | None = "key-1", url: str = URL):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, data, content_type="application/json", **headers)


def created(world) -> int:
    return CustomerAccount.objects.for_tenant(world.tenant).filter(external_id__startswith="idem-").count()


def test_a_retry_under_the_same_key_replays_the_first_answer_byte_for_byte(world_a):
    client = world_a.api()
    first = post(client, BODY)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    again = post(client, BODY)
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Content-Type"] == first["Content-Type"]
    assert again["Idempotent-Replayed"] == "true"
    assert created(world_a) == 1
    account = CustomerAccount.objects.for_tenant(world_a.tenant).get(external_id="idem-1")
    assert AuditEntry.objects.for_tenant(world_a.tenant).filter(object_id=str(account.pk)).count() == 1


def test_the_replay_ignores_key_order_and_whitespace_of_a_json_body(world_a):
    client = world_a.api()
    first = post(client, BODY)
    reordered = json.dumps(dict(reversed(list(BODY.items()))), indent=2)
    again = post(client, reordered)
    assert again.status_code == 201 and again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert created(world_a) == 1


def test_a_different_body_under_the_same_key_answers_422_and_does_nothing(world_a):
    client = world_a.api()
    assert post(client, BODY).status_code == 201
    response = post(client, {**BODY, "external_id": "idem-2"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert "different request" in error["message"]
    assert created(world_a) == 1


def test_the_same_key_on_another_path_answers_422(world_a):
    client = world_a.api()
    assert post(client, BODY).status_code == 201
    other = post(client, {"email": "x@customer.test"}, url=f"{URL}/acct-1/contacts")
    assert other.status_code == 422


def test_a_request_while_the_first_still_runs_answers_409(world_a):
    """The gate: the first request's claim is held (it is "still running") while a second arrives."""
    client = world_a.api()
    api_key = _api_key_of(client)
    body = json.dumps(BODY).encode()
    held = idempotency.claim(world_a.tenant, api_key=api_key, key="key-1", method="POST", path=URL, body=body)
    assert isinstance(held, idempotency.Claim)
    response = post(client, BODY)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert created(world_a) == 0
    # The first request finishes: from then on its answer is replayed.
    idempotency.complete(world_a.tenant, held, status_code=201, content_type="application/json", body=b'{"ok":1}')
    replay = post(client, BODY)
    assert replay.status_code == 201 and replay.content == b'{"ok":1}'


def test_keys_are_scoped_per_api_key_and_per_tenant(two_tenants):
    a, b = two_tenants
    client_1, client_2, client_b = a.api(), a.api(), b.api()
    one = post(client_1, BODY)
    two = post(client_2, {**BODY, "external_id": "idem-2"})  # same key, another API key: its own request
    other_tenant = post(client_b, BODY)
    assert (one.status_code, two.status_code, other_tenant.status_code) == (201, 201, 201)
    assert "Idempotent-Replayed" not in two and "Idempotent-Replayed" not in other_tenant
    assert created(a) == 2 and created(b) == 1
    assert post(client_1, BODY).content == one.content
    assert post(client_2, {**BODY, "external_id": "idem-2"}).content == two.content


def test_a_server_error_is_not_stored_so_the_retry_runs(world_a, monkeypatch):
    client = world_a.api()
    real = services.create_customer_account
    calls = []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "create_customer_account", fails_once)
    client.raise_request_exception = False
    assert post(client, BODY).status_code == 500
    assert not IdempotencyRecord.objects.for_tenant(world_a.tenant).exists()
    retry = post(client, BODY)
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry
    assert created(world_a) == 1 and len(calls) == 2


def test_a_client_error_is_stored_and_replayed(world_a):
    client = world_a.api()
    first = post(client, {"name": "no external id"})
    assert first.status_code == 400
    again = post(client, {"name": "no external id"})
    assert again.status_code == 400 and again.content == first.content and again["Idempotent-Replayed"] == "true"


def test_a_key_older_than_24_hours_is_free_again(world_a):
    client = world_a.api()
    assert post(client, BODY).status_code == 201
    IdempotencyRecord.objects.for_tenant(world_a.tenant).update(
        created_at=timezone.now() - idempotency.RETENTION - datetime.timedelta(seconds=1)
    )
    fresh = post(client, {**BODY, "external_id": "idem-2"})
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh
    assert created(world_a) == 2
    assert IdempotencyRecord.objects.for_tenant(world_a.tenant).count() == 1


def test_a_new_claim_drops_its_tenants_expired_records_of_every_api_key(two_tenants):
    a, b = two_tenants
    client, other_key, client_b = a.api(), a.api(), b.api()
    assert post(client, BODY, key="old").status_code == 201
    assert post(other_key, {**BODY, "external_id": "idem-3"}, key="old-2").status_code == 201
    assert post(client_b, BODY, key="old-b").status_code == 201
    IdempotencyRecord.objects.update(created_at=timezone.now() - datetime.timedelta(days=2))
    assert post(client, {**BODY, "external_id": "idem-2"}, key="new").status_code == 201
    assert list(IdempotencyRecord.objects.for_tenant(a.tenant).values_list("key", flat=True)) == ["new"]
    assert IdempotencyRecord.objects.for_tenant(b.tenant).count() == 1  # another tenant's are its own business


def test_an_abandoned_claim_is_taken_over_after_its_timeout(world_a):
    client = world_a.api()
    api_key = _api_key_of(client)
    held = idempotency.claim(
        world_a.tenant, api_key=api_key, key="key-1", method="POST", path=URL, body=json.dumps(BODY).encode()
    )
    assert isinstance(held, idempotency.Claim)
    IdempotencyRecord.objects.for_tenant(world_a.tenant).update(
        created_at=timezone.now() - idempotency.ABANDONED_AFTER - datetime.timedelta(seconds=1)
    )
    response = post(client, BODY)
    assert response.status_code == 201
    # The dead request's late answer can't overwrite the one stored by the request that took over.
    idempotency.complete(world_a.tenant, held, status_code=500, content_type="text/plain", body=b"late")
    assert post(client, BODY).content == response.content


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\u00e9", "nul\x00"])
def test_a_malformed_key_answers_400_and_writes_nothing(world_a, key):
    response = post(world_a.api(), BODY, key=key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert created(world_a) == 0 and not IdempotencyRecord.objects.exists()


def test_a_255_character_key_is_accepted(world_a):
    assert post(world_a.api(), BODY, key="k" * 255).status_code == 201


def test_patch_honours_the_key_too(world_a):
    client = world_a.api()
    url = f"{URL}/acct-1"
    first = client.patch(url, {"name": "Renamed"}, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    assert first.status_code == 200
    changed = client.patch(url, {"name": "Renamed again"}, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    assert changed.status_code == 422
    world_a.account.refresh_from_db()
    assert world_a.account.name == "Renamed"


def test_a_replayed_event_batch_answers_accepted_again_not_duplicate(world_a):
    client = world_a.api()
    batch = {
        "events": [
            {
                "event": "api_call",
                "account": "acct-1",
                "timestamp": timezone.now().isoformat(),
                "idempotency_key": "e-1",
            }
        ]
    }
    first = post(client, batch, url="/api/v1/events")
    assert first.status_code == 200
    again = post(client, batch, url="/api/v1/events")
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    without_key = post(client, batch, key=None, url="/api/v1/events")
    assert without_key.json()["duplicates"] == len(without_key.json()["results"])


def test_requests_without_the_header_are_not_recorded(world_a):
    assert post(world_a.api(), BODY, key=None).status_code == 201
    assert not IdempotencyRecord.objects.exists()


def test_the_openapi_schema_documents_the_header_on_every_write(world_a):
    schema = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    writes = [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in {"post", "patch", "put", "delete"}
    ]
    assert writes
    for path, method, op in writes:
        headers = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
        assert "Idempotency-Key" in headers, (method, path)
        assert {"409", "422"} <= set(op["responses"]), (method, path)


def _api_key_of(client: APIClient):
    from accounts.selectors import find_api_key

    secret = client._credentials["HTTP_AUTHORIZATION"].split()[1]
    return find_api_key(secret)
