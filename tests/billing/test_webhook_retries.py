"""Webhooks that failed are processed again (on redelivery and by the beat sweep, with backoff), given up on
visibly after Stripe's 3 days; ambiguous signature headers are refused."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from billing.models import StripeWebhookEvent, WebhookEventState
from billing.services import webhooks
from billing.services.stripe_accounts import stripe_for
from tests.billing.factories import configure_stripe
from tests.billing.helpers import billed_license
from tests.billing.test_webhooks import SECRET_A, SECRET_B, event, post, signed


@pytest.fixture
def keyed(two_tenants):
    a, b = two_tenants
    configure_stripe(a.tenant, secret_key="sk_test_tenanta", webhook_secret=SECRET_A)
    configure_stripe(b.tenant, secret_key="sk_test_tenantb", webhook_secret=SECRET_B)
    return a, b


# --- Defect 8: one timestamp per header --------------------------------------------------------------------


def _v1(secret: str, ts: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("shape", ["future_then_now", "now_twice", "old_then_now"])
def test_a_signature_header_with_two_timestamps_is_refused_and_nothing_is_stored(keyed, shape):
    a, _ = keyed
    body = json.dumps(event("evt_two_t")).encode()
    now = int(time.time())
    # The SDK verifies the first t= (and only checks the past); a naive parse reads the last.
    signed_at = {"future_then_now": now + 3600, "now_twice": now, "old_then_now": now - 3600}[shape]
    header = f"t={signed_at},v1={_v1(SECRET_A, signed_at, body)},t={now}"
    response = post(a.tenant, body, header)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_signature"
    assert not StripeWebhookEvent.objects.exists()


def test_a_header_with_one_timestamp_and_several_signatures_is_still_accepted(keyed):
    a, _ = keyed
    body = json.dumps(event("evt_rotating", "product.created", "prod_1", "product")).encode()
    now = int(time.time())
    # During a secret rotation Stripe signs with both secrets: several v1=, one t=.
    header = f"t={now},v1={_v1('whsec_old', now, body)},v1={_v1(SECRET_A, now, body)}"
    assert post(a.tenant, body, header).status_code == 200


# --- Defect 2: a failed event is processed again ------------------------------------------------------------


class Flaky:
    """Fault injection: the real handler, failing the first `failures` times it is called."""

    def __init__(self, real, failures: int = 1) -> None:
        self.real, self.failures, self.calls = real, failures, 0

    def __call__(self, tenant, event_row):
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("database hiccup while handling the event")
        return self.real(tenant, event_row)


@pytest.mark.integration
def test_an_event_whose_handler_failed_is_applied_when_stripe_redelivers_it(
    world_a, standin, monkeypatch, django_capture_on_commit_callbacks
):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    subscription_id = billed.license.stripe_subscription_id
    # The customer cancels in Stripe's own portal; Stripe tells us with customer.subscription.updated.
    stripe_for(world_a.tenant).set_cancel_at_period_end(subscription_id, cancel=True, idempotency_key="portal-cancel")
    flaky = Flaky(webhooks.HANDLERS["customer.subscription.updated"])
    monkeypatch.setitem(webhooks.HANDLERS, "customer.subscription.updated", flaky)
    payload = event("evt_portal_cancel", "customer.subscription.updated", subscription_id, "subscription")

    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        assert post(world_a.tenant, *signed(payload, billed.webhook_secret)).status_code == 200
    row = StripeWebhookEvent.objects.get(event_id="evt_portal_cancel")
    assert row.state == WebhookEventState.FAILED and row.next_attempt_at is not None
    assert billed.refresh().cancel_at_period_end is False

    # Stripe did not get (or did not like) our first answer and delivers the same event again.
    with django_capture_on_commit_callbacks(execute=True):
        response = post(world_a.tenant, *signed(payload, billed.webhook_secret))
    assert response.status_code == 200 and response.json()["duplicate"] is True
    row.refresh_from_db()
    assert (row.state, row.deliveries, row.attempts, row.next_attempt_at) == (WebhookEventState.PROCESSED, 2, 2, None)
    assert billed.refresh().cancel_at_period_end is True
    assert flaky.calls == 2


def test_a_redelivery_of_a_processed_event_is_not_processed_again(keyed, django_capture_on_commit_callbacks):
    a, _ = keyed
    payload = event("evt_done", "product.created", "prod_1", "product")
    with django_capture_on_commit_callbacks(execute=True):
        post(a.tenant, *signed(payload, SECRET_A))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        post(a.tenant, *signed(payload, SECRET_A))
    assert callbacks == []  # nothing enqueued
    row = StripeWebhookEvent.objects.get(event_id="evt_done")
    assert (row.state, row.attempts, row.deliveries) == (WebhookEventState.IGNORED, 1, 2)


def _stored(tenant, event_id: str, *, state: str, received_ago: timedelta, next_in: timedelta | None, now):
    return StripeWebhookEvent.objects.create(
        tenant=tenant,
        event_id=event_id,
        event_type="product.created",  # no handler: processing marks it ignored
        object_id="prod_1",
        stripe_created=now - received_ago,
        payload={"id": event_id},
        state=state,
        attempts=1 if state == WebhookEventState.FAILED else 0,
        received_at=now - received_ago,
        next_attempt_at=None if next_in is None else now + next_in,
    )


def test_the_sweep_retries_only_due_events_of_each_tenant_and_gives_up_after_three_days(two_tenants):
    now = timezone.now()
    minute, hour, day = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
    # name: (state, received how long ago, next try in)
    plan = {
        "due": ("failed", hour, -timedelta(seconds=1)),
        "later": ("failed", hour, 5 * minute),
        "lost": ("received", 10 * minute, None),  # its task never ran
        "fresh": ("received", timedelta(seconds=20), None),  # its task may still be queued
        "expired": ("failed", 3 * day + minute, -minute),
        "done": ("processed", 4 * day, None),
    }
    rows = {
        world.tenant.slug: {
            name: _stored(world.tenant, f"evt_{name}", state=state, received_ago=ago, next_in=next_in, now=now)
            for name, (state, ago, next_in) in plan.items()
        }
        for world in two_tenants
    }

    assert webhooks.retry_webhook_events(now=now) == {"retried": 4, "gave_up": 2}

    for world in two_tenants:
        got = {name: StripeWebhookEvent.objects.get(pk=row.pk) for name, row in rows[world.tenant.slug].items()}
        assert got["due"].state == got["lost"].state == WebhookEventState.IGNORED  # processed now
        assert got["later"].state == WebhookEventState.FAILED and got["later"].attempts == 1
        assert got["fresh"].state == WebhookEventState.RECEIVED and got["fresh"].attempts == 0  # its task may still run
        assert got["expired"].state == WebhookEventState.GAVE_UP and got["expired"].attempts == 1
        assert got["done"].state == WebhookEventState.PROCESSED
        audit = AuditEntry.objects.filter(tenant=world.tenant, action="stripe_webhook.gave_up")
        assert [entry.after["event_id"] for entry in audit] == ["evt_expired"]


def test_the_sweep_backs_off_between_retries_of_a_failing_event_then_gives_up(keyed, monkeypatch):
    a, _ = keyed
    failing = Flaky(lambda tenant, row: True, failures=10_000)
    monkeypatch.setitem(webhooks.HANDLERS, "invoice.paid", failing)
    start = timezone.now()
    row = StripeWebhookEvent.objects.create(
        tenant=a.tenant,
        event_id="evt_stuck",
        event_type="invoice.paid",
        object_id="in_1",
        stripe_created=start,
        payload={},
        received_at=start - timedelta(minutes=5),  # its first task was lost
    )

    assert webhooks.retry_webhook_events(now=start)["retried"] == 1
    row.refresh_from_db()
    assert (row.state, row.attempts) == (WebhookEventState.FAILED, 1)
    first_wait = row.next_attempt_at - timezone.now()
    assert timedelta(seconds=50) < first_wait <= timedelta(minutes=1)

    assert webhooks.retry_webhook_events(now=start + timedelta(seconds=30))["retried"] == 0  # not due yet
    assert webhooks.retry_webhook_events(now=start + timedelta(minutes=2))["retried"] == 1
    row.refresh_from_db()
    assert row.attempts == 2 and row.next_attempt_at - timezone.now() > timedelta(minutes=1, seconds=50)

    gave_up_at = row.received_at + timedelta(days=3, seconds=1)
    assert webhooks.retry_webhook_events(now=gave_up_at) == {"retried": 0, "gave_up": 1}
    row.refresh_from_db()
    assert row.state == WebhookEventState.GAVE_UP and "hiccup" in row.error
    assert AuditEntry.objects.filter(tenant=a.tenant, action="stripe_webhook.gave_up", object_id=str(row.pk)).exists()
    assert failing.calls == 2  # given up: no third try
