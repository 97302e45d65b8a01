"""Stripe webhooks: verified, stored by event id (one arbitrated insert), processed once by a task.

Events arrive at least once, for days, in any order. Handlers therefore never trust the
event's copy of the object: they re-fetch it from Stripe and act on what is true now,
and every action they take is itself idempotent (settlement, sync, failure marking).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import record_audit
from accounts.tenancy import each_tenant
from billing.models import (
    License,
    PlanChange,
    PlanChangeKind,
    PlanChangeState,
    StripeWebhookEvent,
    WebhookEventState,
)
from billing.services.licenses import note_customer_delinquency, sync_license_from_subscription
from billing.services.plan_changes import PLAN_CHANGE_METADATA_KEY, reconcile_plan_change
from billing.services.stripe_accounts import stripe_for, webhook_secret_for
from billing.stripe_client import StripeGateway, StripeRejected, WebhookEvent, WebhookSignatureInvalid

log = logging.getLogger(__name__)

# Stripe redelivers an event for up to 3 days; we retry ours as long, then give up visibly.
GIVE_UP_AFTER = timedelta(days=3)
RETRY_BASE = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=6)
# A `received` event whose task never ran (lost with a crashed worker or broker) is picked up after this.
UNPROCESSED_GRACE = timedelta(minutes=2)
OPEN_STATES = (WebhookEventState.RECEIVED, WebhookEventState.FAILED)
DONE_STATES = (WebhookEventState.PROCESSED, WebhookEventState.IGNORED)


def retry_delay(attempts: int) -> timedelta:
    """Backoff before the next try: 1, 2, 4, ... minutes after the `attempts`-th failure, at most 6 h."""
    return min(RETRY_BASE * (2 ** max(attempts - 1, 0)), RETRY_MAX)


class WebhookRefused(Exception):
    """Bad or missing signature, unknown tenant secret, or a stale/future timestamp: answer 400, store nothing."""


def verify_webhook(tenant: Tenant, *, payload: bytes, signature_header: str | None) -> WebhookEvent:
    secret = webhook_secret_for(tenant)
    if not secret:
        raise WebhookRefused("No webhook signing secret is configured for this tenant.")
    try:
        return StripeGateway.verify_webhook(payload, signature_header, secret)
    except WebhookSignatureInvalid as exc:
        raise WebhookRefused(str(exc)) from exc


def record_webhook_event(tenant: Tenant, *, event: WebhookEvent) -> tuple[StripeWebhookEvent, bool]:
    """Store the event under its id and have it processed. Returns (row, created).

    A redelivery counts itself and, unless the stored event was already processed (or ignored), is processed
    again: Stripe redelivers precisely because an earlier answer or attempt went wrong.
    """
    from billing import tasks

    try:
        with transaction.atomic():
            row = StripeWebhookEvent.objects.create(
                tenant=tenant,
                event_id=event.id,
                event_type=event.type,
                object_id=event.object_id,
                stripe_created=event.created,
                payload=event.payload,
            )
    except IntegrityError:  # the unique (tenant, event_id) arbitrates concurrent deliveries
        StripeWebhookEvent.objects.for_tenant(tenant).filter(event_id=event.id).update(deliveries=F("deliveries") + 1)
        row = StripeWebhookEvent.objects.for_tenant(tenant).get(event_id=event.id)
        if row.state not in DONE_STATES:
            pk = row.pk
            transaction.on_commit(lambda: tasks.process_webhook_event.delay(tenant.pk, pk))
        return row, False
    transaction.on_commit(lambda: tasks.process_webhook_event.delay(tenant.pk, row.pk))
    return row, True


# --- Handlers (event type -> what to re-fetch and reconcile) ---------------------------------------------


def _licenses_for_subscription(tenant: Tenant, subscription_id: str) -> list[License]:
    return list(License.objects.for_tenant(tenant).filter(stripe_subscription_id=subscription_id))


def _reconcile_open_changes(tenant: Tenant, license: License) -> None:
    for pc in PlanChange.objects.for_tenant(tenant).filter(
        license=license, state__in=[PlanChangeState.PENDING, PlanChangeState.SUBMITTED, PlanChangeState.FAILED]
    ):
        reconcile_plan_change(tenant, plan_change_id=pc.pk, via="webhook")


def _reconcile_first_subscription(tenant: Tenant, gateway: StripeGateway, subscription_id: str) -> bool:
    """A subscription no licence holds yet: the first paid subscription of a free licence, still being paid.

    Its plan change is found by the subscription id it recorded, or, when Stripe's answer to the
    create call was lost, by the plan change id the subscription carries in its metadata.
    """
    changes = list(
        PlanChange.objects.for_tenant(tenant)
        .filter(stripe_subscription_id=subscription_id)
        .exclude(state__in=[PlanChangeState.SETTLED, PlanChangeState.CANCELED])
    )
    if not changes:
        subscription = gateway.retrieve_subscription(subscription_id)
        tagged = subscription.metadata.get(PLAN_CHANGE_METADATA_KEY, "")
        if not tagged.isdigit():
            return False
        PlanChange.objects.for_tenant(tenant).filter(
            pk=int(tagged), kind=PlanChangeKind.NEW, stripe_subscription_id=""
        ).update(stripe_subscription_id=subscription_id)
        changes = list(
            PlanChange.objects.for_tenant(tenant)
            .filter(pk=int(tagged), stripe_subscription_id=subscription_id)
            .exclude(state__in=[PlanChangeState.SETTLED, PlanChangeState.CANCELED])
        )
    for pc in changes:
        reconcile_plan_change(tenant, plan_change_id=pc.pk, via="webhook")
    return bool(changes)


def on_invoice(tenant: Tenant, event: StripeWebhookEvent) -> bool:
    gateway = stripe_for(tenant)
    invoice = gateway.retrieve_invoice(event.object_id)  # the truth now, not the event's snapshot
    handled = False
    for pc in (
        PlanChange.objects.for_tenant(tenant)
        .filter(stripe_invoice_id=invoice.id)
        .exclude(state__in=[PlanChangeState.SETTLED, PlanChangeState.CANCELED])
    ):
        reconcile_plan_change(tenant, plan_change_id=pc.pk, via="webhook")
        handled = True
    if invoice.subscription_id:
        licenses = _licenses_for_subscription(tenant, invoice.subscription_id)
        for license in licenses:
            subscription = gateway.retrieve_subscription(invoice.subscription_id)
            sync_license_from_subscription(
                tenant, license=license, subscription=subscription, event_created=event.stripe_created
            )
            _reconcile_open_changes(tenant, license)
            handled = True
        if not licenses:
            handled = _reconcile_first_subscription(tenant, gateway, invoice.subscription_id) or handled
    return handled


def on_subscription(tenant: Tenant, event: StripeWebhookEvent) -> bool:
    licenses = _licenses_for_subscription(tenant, event.object_id)
    if not licenses:
        return _reconcile_first_subscription(tenant, stripe_for(tenant), event.object_id)
    subscription = stripe_for(tenant).retrieve_subscription(event.object_id)
    for license in licenses:
        sync_license_from_subscription(
            tenant, license=license, subscription=subscription, event_created=event.stripe_created
        )
        _reconcile_open_changes(tenant, license)
    return True


def on_customer(tenant: Tenant, event: StripeWebhookEvent) -> bool:
    licenses = License.objects.for_tenant(tenant).filter(stripe_customer_id=event.object_id)
    if not licenses.exists():
        return False
    customer = stripe_for(tenant).retrieve_customer(event.object_id)
    for license in licenses:
        note_customer_delinquency(tenant, license=license, delinquent=customer.delinquent)
    return True


HANDLERS: dict[str, Callable[[Tenant, StripeWebhookEvent], bool]] = {
    "invoice.paid": on_invoice,
    "invoice.payment_succeeded": on_invoice,
    "invoice.payment_failed": on_invoice,
    "invoice.payment_action_required": on_invoice,
    "invoice.voided": on_invoice,
    "customer.subscription.created": on_subscription,
    "customer.subscription.updated": on_subscription,
    "customer.subscription.deleted": on_subscription,
    "customer.updated": on_customer,
}


def process_webhook_event(tenant: Tenant, *, event_pk: int) -> StripeWebhookEvent:
    """Run the handler. Success (or nothing to do) is final; a failure leaves the row `failed` with the time of
    its next try, for the task's own retry or the beat sweep. Handlers are idempotent, so a redelivery racing
    a retry only does the same thing twice."""
    event = StripeWebhookEvent.objects.for_tenant(tenant).get(pk=event_pk)
    if event.state in DONE_STATES:
        return event
    StripeWebhookEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1)
    attempts = event.attempts + 1
    handler = HANDLERS.get(event.event_type)
    state = WebhookEventState.IGNORED
    error = ""
    try:
        if handler is not None and handler(tenant, event):
            state = WebhookEventState.PROCESSED
    except StripeRejected as exc:
        # The object is not in this tenant's Stripe account (or is gone): nothing of ours to update.
        state, error = WebhookEventState.IGNORED, exc.message
    except Exception as exc:
        StripeWebhookEvent.objects.filter(pk=event.pk).exclude(state__in=DONE_STATES).update(
            state=WebhookEventState.FAILED,
            error=str(exc)[:2000],
            next_attempt_at=timezone.now() + retry_delay(attempts),
        )
        raise
    StripeWebhookEvent.objects.filter(pk=event.pk).exclude(state=WebhookEventState.PROCESSED).update(
        state=state, error=error, processed_at=timezone.now(), next_attempt_at=None
    )
    event.refresh_from_db()
    return event


def retry_webhook_events(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """Beat: process again every event still `received` or `failed` whose next try is due, and give up on
    those Stripe itself has stopped retrying (3 days), visibly: state `gave_up`, an audit entry, an error log.

    Tenant by tenant (`each_tenant`: row-level security sees one tenant's rows at a time). The next try is
    pushed back before the task is enqueued, so a sweep that runs while the task waits in the queue does
    not enqueue it twice. Returns {"retried": n, "gave_up": m}.
    """
    now = now or timezone.now()
    totals = {"retried": 0, "gave_up": 0}
    for tenant in each_tenant():
        for key, value in _retry_tenant_events(tenant, now=now, batch=batch).items():
            totals[key] += value
    return totals


def _retry_tenant_events(tenant: Tenant, *, now: datetime, batch: int) -> dict[str, int]:
    from billing import tasks

    events = StripeWebhookEvent.objects.for_tenant(tenant)
    gave_up = 0
    for event in events.filter(state__in=OPEN_STATES, received_at__lte=now - GIVE_UP_AFTER)[:batch]:
        if not events.filter(pk=event.pk, state__in=OPEN_STATES).update(
            state=WebhookEventState.GAVE_UP, next_attempt_at=None
        ):
            continue
        record_audit(
            tenant,
            actor="system",
            action="stripe_webhook.gave_up",
            obj=event,
            after={
                "event_id": event.event_id,
                "type": event.event_type,
                "attempts": event.attempts,
                "error": event.error[:500],
            },
        )
        log.error("Gave up on Stripe event %s (%s) after %s attempts", event.event_id, event.event_type, event.attempts)
        gave_up += 1
    due = events.filter(state__in=OPEN_STATES, received_at__gt=now - GIVE_UP_AFTER).filter(
        Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, received_at__lte=now - UNPROCESSED_GRACE)
    )
    retried = 0
    for event in due.order_by("received_at")[:batch]:
        same_slot = (
            Q(next_attempt_at=event.next_attempt_at) if event.next_attempt_at else Q(next_attempt_at__isnull=True)
        )
        claimed = (
            events.filter(pk=event.pk, state__in=OPEN_STATES)
            .filter(same_slot)
            .update(next_attempt_at=now + retry_delay(event.attempts + 1))
        )
        if not claimed:  # another sweep took it
            continue
        try:
            tasks.process_webhook_event.delay(tenant.pk, event.pk)
        except Exception:  # the task failed (eagerly) or the broker refused it: the row says when to try again
            log.warning("Retry of Stripe event %s failed; next try scheduled", event.event_id, exc_info=True)
        retried += 1
    return {"retried": retried, "gave_up": gave_up}


__all__ = [
    "HANDLERS",
    "WebhookRefused",
    "WebhookSignatureInvalid",
    "process_webhook_event",
    "record_webhook_event",
    "retry_webhook_events",
    "verify_webhook",
]
