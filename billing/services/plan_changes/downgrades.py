"""Downgrades (and interval or seat cuts) that wait for the period end: sent to Stripe just before it,
settled at it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.tenancy import each_tenant
from billing.errors import TierwiseError
from billing.models import PlanChange, PlanChangeKind, PlanChangeState
from billing.selectors import plan_change_items
from billing.services.plan_changes.common import _lock, quote_conflict
from billing.services.plan_changes.settlement import abandon_plan_change, settle_plan_change
from billing.services.stripe_accounts import stripe_for
from billing.stripe_client import StripeError

log = logging.getLogger(__name__)


# A scheduled downgrade is sent to Stripe a little before the period end (proration none), so the
# renewal invoice already bills the new price; the licence itself changes at the period end.
DOWNGRADE_LEAD = timedelta(hours=1)


def apply_due_plan_changes(*, now: datetime | None = None) -> int:
    """Beat: send scheduled downgrades to Stripe shortly before the period end, settle them at the end."""
    now = now or timezone.now()
    done = 0
    for tenant in each_tenant():  # tenant by tenant: row-level security sees one tenant's rows at a time
        done += _apply_tenant_due(tenant, now=now)
    return done


def _apply_tenant_due(tenant: Tenant, *, now: datetime) -> int:
    done = 0
    due = PlanChange.objects.for_tenant(tenant).filter(
        state=PlanChangeState.SCHEDULED, effective_at__lte=now + DOWNGRADE_LEAD
    )
    for plan_change in due[:500]:
        try:
            _apply_scheduled(tenant, plan_change_id=plan_change.pk, now=now)
            done += 1
        except (StripeError, TierwiseError) as exc:
            log.warning("Scheduled plan change %s not applied yet: %s", plan_change.pk, exc)
    ready = PlanChange.objects.for_tenant(tenant).filter(
        state=PlanChangeState.SUBMITTED,
        effective_at__lte=now,
        stripe_invoice_id="",
        kind__in=[PlanChangeKind.DOWNGRADE, PlanChangeKind.INTERVAL, PlanChangeKind.SEATS],
    )
    for plan_change in ready[:500]:
        settle_plan_change(tenant, plan_change_id=plan_change.pk, subscription=None, invoice=None, via="schedule")
        done += 1
    return done


def _apply_scheduled(tenant: Tenant, *, plan_change_id: int, now: datetime) -> None:
    plan_change = PlanChange.objects.for_tenant(tenant).select_related("license").get(pk=plan_change_id)
    if plan_change.state != PlanChangeState.SCHEDULED:
        return
    license = plan_change.license
    conflict = quote_conflict(plan_change, license)
    if conflict is not None:  # ended, held or changed meanwhile: the downgrade has nothing left to apply to
        abandon_plan_change(tenant, plan_change_id=plan_change_id, code=conflict[0], message=conflict[1])
        return
    if license.stripe_subscription_id:
        changes = plan_change_items(tenant, plan_change)
        stripe_for(tenant).change_subscription(
            subscription_id=license.stripe_subscription_id,
            changes=changes,
            proration_date=None,
            proration_behavior="none",
            idempotency_key=plan_change.idempotency_key,
            pending_if_incomplete=False,
        )
    with transaction.atomic():
        locked = _lock(tenant, plan_change_id)
        if locked.state == PlanChangeState.SCHEDULED:
            locked.state = PlanChangeState.SUBMITTED
            locked.save(update_fields=["state", "updated_at"])
    if plan_change.effective_at is not None and plan_change.effective_at <= now:
        settle_plan_change(tenant, plan_change_id=plan_change_id, subscription=None, invoice=None, via="schedule")
