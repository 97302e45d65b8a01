"""Revoke / suspend / restore (collection paused and resumed in Stripe), and cancel at the period end."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import Actor, snapshot
from billing.errors import BillingErrorCode, Conflict, InvalidInput, stripe_errors_translated
from billing.models import License, LicenseChange, LicenseStatus
from billing.services.licenses.records import (
    LICENSE_AUDIT_FIELDS,
    _audit,
    _lock,
    announce,
    license_state,
    record_change,
)
from billing.services.licenses.term_ramp import is_ramp, release_term_schedule, sync_term_schedule_on_commit

# --- Revoke / suspend / restore ---------------------------------------------------------------------


def _collection_key(license: License, *, paused: bool) -> str:
    # One key per hold/restore cycle (the licence's change count moves with each), the same on a retry.
    cycle = LicenseChange.objects.for_tenant(license.tenant_id).filter(license=license).count()
    return f"tw-lic-{license.pk}-collection-{'pause' if paused else 'resume'}-{cycle}"


def _set_collection(tenant: Tenant, license: License, *, paused: bool) -> bool:
    """Stop (or resume) charging in Stripe, before our row changes and outside any transaction.

    Returns whether Stripe was asked. Unreachable or refusing Stripe raises, and nothing of ours
    has changed, so the staff member can simply try again.
    """
    from billing.services.stripe_accounts import stripe_for

    if not license.stripe_subscription_id:
        return False
    gateway = stripe_for(tenant)
    with stripe_errors_translated():
        subscription = gateway.retrieve_subscription(license.stripe_subscription_id)
        if subscription.status in ("canceled", "incomplete_expired"):
            return False  # nothing left to collect
        if subscription.collection_paused != paused:
            gateway.set_collection_paused(
                license.stripe_subscription_id, paused=paused, idempotency_key=_collection_key(license, paused=paused)
            )
    return True


def _held_mrr(license: License) -> int:
    """The MRR the licence had when the hold began (restore puts back exactly that)."""
    hold = (
        LicenseChange.objects.for_tenant(license.tenant_id)
        .filter(license=license, kind__in=["revoke", "suspend"])
        .order_by("-effective_at", "-id")
        .first()
    )
    return hold.mrr_before if hold is not None else license.mrr


def _hold(tenant: Tenant, *, license: License, actor: Actor, reason: str, status: str, kind: str) -> License:
    if not reason.strip():
        raise InvalidInput("Invalid input.", details={"reason": ["Say why."]})
    if license.tenant_id != tenant.pk:
        raise InvalidInput("Not a licence of this tenant.")
    current = License.objects.for_tenant(tenant).get(pk=license.pk)
    if current.held_from_status:
        raise Conflict(
            f"The licence is already {current.get_status_display().lower()}; restore it first.",
            code=BillingErrorCode.INVALID_STATE,
        )
    paused = _set_collection(tenant, current, paused=True)
    with transaction.atomic():
        license = _lock(tenant, license)
        if license.held_from_status:  # held meanwhile by someone else: Stripe is paused either way
            raise Conflict("The licence was held meanwhile; restore it first.", code=BillingErrorCode.INVALID_STATE)
        before, mrr_before, state_before = snapshot(license, LICENSE_AUDIT_FIELDS), license.mrr, license_state(license)
        license.held_from_status = license.status
        license.held_at = timezone.now()
        license.status = status
        license.status_reason = reason[:200]
        # Stripe no longer collects (its invoices are voided while paused), so no revenue recurs: MRR is zero
        # until restore puts back what it was. The subscription itself, its items and dates stay untouched.
        license.mrr = 0
        license.save()
        record_change(license, kind=kind, before=state_before, actor=actor, reason=reason, mrr_before=mrr_before)
        _audit(
            license,
            actor=actor,
            action=f"license.{kind}d" if kind.endswith("e") else f"license.{kind}ed",
            before=before,
            extra={"stripe_collection": "paused" if paused else "no subscription"},
        )
        announce(license)
    return license


def suspend_license(tenant: Tenant, *, license: License, actor: Actor, reason: str) -> License:
    """Withdraw access for now (e.g. a payment dispute) and stop charging; `restore_license` undoes both."""
    return _hold(tenant, license=license, actor=actor, reason=reason, status=LicenseStatus.SUSPENDED, kind="suspend")


def revoke_license(tenant: Tenant, *, license: License, actor: Actor, reason: str) -> License:
    """Withdraw the licence (e.g. abuse) and stop charging. Reversible with `restore_license`."""
    return _hold(tenant, license=license, actor=actor, reason=reason, status=LicenseStatus.CANCELED, kind="revoke")


def restore_license(tenant: Tenant, *, license: License, actor: Actor, reason: str) -> License:
    """Put back the status the hold interrupted, resume collection in Stripe, and the MRR the licence had."""
    if not reason.strip():
        raise InvalidInput("Invalid input.", details={"reason": ["Say why."]})
    if license.tenant_id != tenant.pk:
        raise InvalidInput("Not a licence of this tenant.")
    current = License.objects.for_tenant(tenant).get(pk=license.pk)
    if not current.held_from_status:
        raise Conflict("Only a revoked or suspended licence can be restored.", code=BillingErrorCode.INVALID_STATE)
    ended = current.held_from_status == LicenseStatus.CANCELED  # the subscription ended during the hold
    resumed = False if ended else _set_collection(tenant, current, paused=False)
    with transaction.atomic():
        license = _lock(tenant, license)
        if not license.held_from_status:
            return license  # restored meanwhile
        before, mrr_before, state_before = snapshot(license, LICENSE_AUDIT_FIELDS), license.mrr, license_state(license)
        license.status = license.held_from_status
        license.held_from_status = ""
        license.held_at = None
        license.status_reason = ""
        license.mrr = 0 if license.status == LicenseStatus.CANCELED else _held_mrr(license)
        license.save()
        record_change(license, kind="restore", before=state_before, actor=actor, reason=reason, mrr_before=mrr_before)
        _audit(
            license,
            actor=actor,
            action="license.restored",
            before=before,
            extra={"stripe_collection": "resumed" if resumed else "not resumed (no live subscription)"},
        )
        announce(license)
    return license


# --- Cancel at period end / reactivate ----------------------------------------------------------------


def set_cancel_at_period_end(
    tenant: Tenant, *, license: License, cancel: bool, actor: Actor, reason: str = ""
) -> License:
    """Cancel at the period end (or take that back: reactivation). Stripe first, then our row."""
    from billing.services.stripe_accounts import stripe_for

    if license.tenant_id != tenant.pk:
        raise InvalidInput("Not a licence of this tenant.")
    if license.status == LicenseStatus.CANCELED and not license.held_from_status:
        raise Conflict("The subscription has ended; start a new plan instead.", code=BillingErrorCode.INVALID_STATE)
    if license.stripe_subscription_id:
        # Keyed by the licence's history (each reactivation records a change), so a retry of the same request
        # replays Stripe's answer and a later cancel after a reactivation is a new request.
        cycle = LicenseChange.objects.for_tenant(tenant).filter(license=license).count()
        with stripe_errors_translated():
            gateway = stripe_for(tenant)
            if cancel:  # Stripe refuses cancelling a scheduled subscription: a ramp ends with the subscription
                release_term_schedule(tenant, gateway, license)
            gateway.set_cancel_at_period_end(
                license.stripe_subscription_id,
                cancel=cancel,
                idempotency_key=f"tw-lic-{license.pk}-cancel-{int(cancel)}-{cycle}",
            )
    with transaction.atomic():
        locked = _lock(tenant, license)
        before = snapshot(locked, LICENSE_AUDIT_FIELDS)
        locked.cancel_at_period_end = cancel
        if reason:
            locked.status_reason = reason[:200]
        locked.save()
        _audit(
            locked, actor=actor, action="license.cancel_scheduled" if cancel else "license.reactivated", before=before
        )
        if not cancel:
            record_change(
                locked,
                kind="reactivate",
                before=license_state(locked),
                actor=actor,
                reason=reason or "Cancellation withdrawn",
                mrr_before=locked.mrr,
            )
        announce(locked)
        if not cancel and is_ramp(locked.term_percents):  # a ramped term goes back on its schedule
            sync_term_schedule_on_commit(locked)
    return locked
