"""Webhook intake: signatures over the raw body, timestamps both ways, storage by id, isolation between tenants."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.test import Client

from billing.models import LicenseChange, PlanChangeState, StripeWebhookEvent, WebhookEventState
from billing.services import plan_changes
from tests.billing.factories import configure_stripe
from tests.billing.helpers import billed_license


def signed(payload: dict, secret: str, *, at: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    ts = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={ts},v1={signature}"


def event(event_id: str = "evt_1", type_: str = "invoice.paid", obj_id: str = "in_1", obj: str = "invoice") -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": type_,
        "created": int(time.time()),
        "data": {"object": {"id": obj_id, "object": obj}},
    }


def post(tenant, body: bytes, header: str | None):
    headers = {"HTTP_STRIPE_SIGNATURE": header} if header else {}
    return Client().post(
        f"/billing/stripe/webhook/{tenant.slug}/", data=body, content_type="application/json", **headers
    )


SECRET_A, SECRET_B = "whsec_tenantasecret", "whsec_tenantbsecret"


@pytest.fixture
def keyed(two_tenants):
    a, b = two_tenants
    configure_stripe(a.tenant, secret_key="sk_test_tenanta", webhook_secret=SECRET_A)
    configure_stripe(b.tenant, secret_key="sk_test_tenantb", webhook_secret=SECRET_B)
    return a, b


def test_a_correctly_signed_event_is_stored_by_id_and_a_redelivery_only_counts(
    keyed, django_capture_on_commit_callbacks
):
    a, _ = keyed
    body, header = signed(event(type_="product.created", obj_id="prod_1", obj="product"), SECRET_A)
    with django_capture_on_commit_callbacks(execute=True):
        first = post(a.tenant, body, header)
    second = post(a.tenant, *signed(json.loads(body), SECRET_A))
    assert first.status_code == second.status_code == 200
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    row = StripeWebhookEvent.objects.get(tenant=a.tenant, event_id="evt_1")
    assert (row.deliveries, row.attempts, row.state) == (2, 1, WebhookEventState.IGNORED)


@pytest.mark.parametrize("tamper", ["bad_signature", "missing_header", "too_old", "in_the_future", "body_changed"])
def test_an_event_that_fails_verification_answers_400_and_stores_nothing(keyed, tamper):
    a, _ = keyed
    payload = event()
    at = {"too_old": int(time.time()) - 301, "in_the_future": int(time.time()) + 120}.get(tamper)
    body, header = signed(payload, "whsec_wrong" if tamper == "bad_signature" else SECRET_A, at=at)
    if tamper == "body_changed":
        body = body.replace(b"invoice.paid", b"invoice.voided")
    response = post(a.tenant, body, None if tamper == "missing_header" else header)
    assert response.status_code == 400
    assert not StripeWebhookEvent.objects.exists()


def test_tenant_a_secret_cannot_post_to_tenant_b(keyed):
    a, b = keyed
    body, header = signed(event(), SECRET_A)
    assert post(b.tenant, body, header).status_code == 400
    assert not StripeWebhookEvent.objects.exists()


def test_unknown_tenant_slug_is_404_and_a_tenant_without_a_secret_refuses(keyed, db):
    a, _ = keyed
    body, header = signed(event(), SECRET_A)
    response = Client().post(
        "/billing/stripe/webhook/nobody/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert response.status_code == 404
    from accounts.models import Tenant

    bare = Tenant.objects.create(slug="bare", name="Bare")
    assert post(bare, body, header).status_code == 400


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_late_and_out_of_order_events_refetch_the_object_and_never_undo_a_settlement(world_a, world_b, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    quote = plan_changes.quote_plan_change(
        world_a.tenant, license=billed.license, target_price=billed.catalog.prices["business-month"], requested_by="t"
    )
    plan_changes.confirm_plan_change(world_a.tenant, plan_change=quote, actor="t")  # eager task: settles in-line
    quote.refresh_from_db()
    assert quote.state == PlanChangeState.SETTLED

    # A payment_failed event for that invoice arrives late (its snapshot says open). We re-fetch: it is paid.
    stale = event("evt_late_failure", "invoice.payment_failed", quote.stripe_invoice_id)
    stale["data"]["object"]["status"] = "open"
    response = post(world_a.tenant, *signed(stale, billed.webhook_secret))
    assert response.status_code == 200
    row = StripeWebhookEvent.objects.get(event_id="evt_late_failure")
    assert row.state == WebhookEventState.PROCESSED
    quote.refresh_from_db()
    assert quote.state == PlanChangeState.SETTLED
    # An old subscription snapshot (Team items) changes nothing either: the licence follows Stripe now.
    old = event("evt_old_sub", "customer.subscription.updated", billed.license.stripe_subscription_id, "subscription")
    post(world_a.tenant, *signed(old, billed.webhook_secret))
    assert billed.refresh().tier.key == "business"
    assert LicenseChange.objects.filter(kind="upgrade").count() == 1

    # Tenant B, with its own keys, is told about A's subscription: its Stripe account cannot see it; nothing moves.
    configure_stripe(world_b.tenant, secret_key="sk_test_tenantb", webhook_secret=SECRET_B)
    foreign = event(
        "evt_foreign", "customer.subscription.deleted", billed.license.stripe_subscription_id, "subscription"
    )
    assert post(world_b.tenant, *signed(foreign, SECRET_B)).status_code == 200
    assert (
        StripeWebhookEvent.objects.get(tenant=world_b.tenant, event_id="evt_foreign").state == WebhookEventState.IGNORED
    )
    assert billed.refresh().status == "active"
