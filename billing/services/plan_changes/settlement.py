"""Outcomes: reconcile against Stripe, then settle (quote == charge compared) or fail. Each runs once.

The licence changes only here (`settle_plan_change`), after Stripe says the invoice is paid or, for a
downgrade at the period end, after Stripe accepted the change.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import record_audit, snapshot
from accounts.tenancy import each_tenant
from billing.models import License, PlanChange, PlanChangeKind, PlanChangeState
from billing.selectors import plan_change_items
from billing.services.licenses import LICENSE_AUDIT_FIELDS, apply_plan_change
from billing.services.licenses.term_ramp import is_ramp, sync_term_schedule_on_commit
from billing.services.plan_changes.common import _lock, quote_conflict
from billing.services.plan_changes.discounts import restore_subscription_discount
from billing.services.stripe_accounts import stripe_for
from billing.signals import plan_change_settled
from billing.stripe_client import Invoice, StripeRejected, StripeUnavailable, Subscription

log = logging.getLogger(__name__)


def _target_quantities(tenant: Tenant, plan_change: PlanChange) -> dict[str, int]:
    return {c.price_id: c.quantity or 0 for c in plan_change_items(tenant, plan_change) if not c.deleted and c.price_id}


def reconcile_plan_change(tenant: Tenant, *, plan_change_id: int, via: str) -> PlanChange:
    """Look at Stripe's truth (re-fetched, never trusted from an event) and settle or fail. Any caller, any order."""
    plan_change = PlanChange.objects.for_tenant(tenant).select_related("license").get(pk=plan_change_id)
    if plan_change.state in (
        PlanChangeState.SETTLED,
        PlanChangeState.CANCELED,
        PlanChangeState.QUOTED,
        PlanChangeState.SCHEDULED,
    ):
        return plan_change
    gateway = stripe_for(tenant)
    sub_id = plan_change.stripe_subscription_id or plan_change.license.stripe_subscription_id
    if not sub_id:
        return plan_change
    try:
        subscription = gateway.retrieve_subscription(sub_id)
        invoice_id = plan_change.stripe_invoice_id
        reached_stripe = subscription.has_pending_update or subscription.quantities() == _target_quantities(
            tenant, plan_change
        )
        if not invoice_id and plan_change.effective_at is None and subscription.latest_invoice_id and reached_stripe:
            # The webhook beat the task's own write: the update's invoice is the subscription's latest.
            invoice_id = subscription.latest_invoice_id
            PlanChange.objects.filter(pk=plan_change.pk, stripe_invoice_id="").update(stripe_invoice_id=invoice_id)
        invoice = gateway.retrieve_invoice(invoice_id) if invoice_id else None
        applied = not subscription.has_pending_update and subscription.quantities() == _target_quantities(
            tenant, plan_change
        )
        if not (applied and invoice is not None and invoice.is_paid):
            # Not paid yet: if the licence moved meanwhile, nothing more is collected for this change.
            abandoned = abandon_if_license_moved(tenant, plan_change)
            if abandoned is not None:
                return abandoned
        if applied and (invoice is None or invoice.is_paid):
            return settle_plan_change(
                tenant, plan_change_id=plan_change.pk, subscription=subscription, invoice=invoice, via=via
            )
        if invoice is not None and invoice.status == "void":
            # Stripe dropped the unpaid update: the coupon it carried leaves the subscription too (once).
            if plan_change.state != PlanChangeState.FAILED:
                try:
                    restore_subscription_discount(tenant, gateway, plan_change)
                except StripeRejected as exc:
                    log.warning("Stripe refused restoring the discount of %s: %s", plan_change.pk, exc.message)
            return mark_plan_change_failed(
                tenant,
                plan_change_id=plan_change.pk,
                code="quote_expired",
                message="Stripe discarded the unpaid change; ask for a new quote.",
            )
        # A PENDING change belongs to its task (a first call or a retry is under way): an old failure must not
        # overwrite it. Only a SUBMITTED change (Stripe has answered) is failed from here.
        if invoice is not None and invoice.status == "open" and plan_change.state == PlanChangeState.SUBMITTED:
            failure = gateway.payment_failure(invoice.id or "")
            if failure is not None:
                return mark_plan_change_failed(
                    tenant, plan_change_id=plan_change.pk, code=failure.code, message=failure.message
                )
    except StripeUnavailable:
        raise
    except StripeRejected as exc:
        log.warning("Stripe refused a reconciliation read: %s", exc.message)
    return PlanChange.objects.get(pk=plan_change.pk)


def _period_seconds(line: dict[str, Any]) -> int | None:
    try:
        start = datetime.fromisoformat(line["period_start"])
        end = datetime.fromisoformat(line["period_end"])
    except (KeyError, TypeError, ValueError):
        return None
    return int((end - start).total_seconds())


def compare_quote(
    quote_lines: list[dict[str, Any]],
    charged_lines: list[dict[str, Any]],
    *,
    quoted_due: int,
    charged_due: int | None,
    new_subscription: bool = False,
) -> dict[str, Any]:
    """Every difference between what we showed and what Stripe billed; empty when they agree.

    A line agrees when its amount, discount, price, proration flag and period agree. For a new
    subscription the first period starts when it is paid, not when it was quoted, so its
    full-period lines are compared by the period's length (a month is a month), not its dates.
    """

    def key(line: dict[str, Any]) -> tuple[Any, ...]:
        period: tuple[Any, ...] = (line.get("period_start"), line.get("period_end"))
        if new_subscription and not line.get("proration"):
            period = ("length", _period_seconds(line))
        return (
            line.get("amount"),
            line.get("discount", 0),
            *period,
            line.get("price_id"),
            bool(line.get("proration")),
        )

    quoted, charged = Counter(map(key, quote_lines)), Counter(map(key, charged_lines))
    missing, unexpected = quoted - charged, charged - quoted
    difference: dict[str, Any] = {}
    if charged_due is not None and charged_due != quoted_due:
        difference.update(quoted_amount_due=quoted_due, charged_amount=charged_due, difference=charged_due - quoted_due)
    if missing or unexpected:
        difference["quoted_lines_not_billed"] = [list(k) for k in missing.elements()]
        difference["billed_lines_not_quoted"] = [list(k) for k in unexpected.elements()]
    return difference


@transaction.atomic
def settle_plan_change(
    tenant: Tenant, *, plan_change_id: int, subscription: Subscription | None, invoice: Invoice | None, via: str
) -> PlanChange:
    """Payment settled: the licence changes, a LicenseChange is written, the world is told. Once only.

    Only onto the licence the quote was made from, and never while it is held or after it ended: then the
    change is abandoned instead (recorded, with what Stripe charged, for staff to refund) and the licence
    keeps what it holds, and its MRR (zero while held).
    """
    plan_change = _lock(tenant, plan_change_id)
    if plan_change.state in (PlanChangeState.SETTLED, PlanChangeState.CANCELED):
        return plan_change
    license = (
        License.objects.for_tenant(tenant).select_for_update().select_related("tier").get(pk=plan_change.license_id)
    )
    conflict = quote_conflict(plan_change, license)
    if conflict is not None:
        return _abandon_locked(tenant, plan_change, code=conflict[0], message=conflict[1], invoice=invoice)
    target = plan_change.target_price
    change_kind = plan_change.kind
    if change_kind == PlanChangeKind.NEW:  # the licence existed (e.g. on the free tier): it moves up or down
        change_kind = "upgrade" if target.tier.rank >= license.tier.rank else "downgrade"
    items = plan_change_items(tenant, plan_change)
    audit_before = apply_plan_change(
        tenant,
        license=license,
        target=target,
        seats=plan_change.target_seats,
        addon_prices=list(plan_change.target_addon_prices.select_related("addon")),
        subscription=subscription,
        tier_stripe_price_id=items[0].price_id if items else None,
        activate=invoice is not None and invoice.is_paid,
        kind=change_kind,
        actor=plan_change.requested_by_label or "system",
        reason=f"Plan change #{plan_change.pk} settled ({via})",
        reference=plan_change.reference or f"plan_change:{plan_change.pk}",
        stripe_invoice_id=(invoice.id or "") if invoice is not None else "",
        term_years=plan_change.term_years,
        discount_percent=plan_change.discount_percent,
        year_percents=plan_change.year_percents,
        fresh_period=plan_change.kind in (PlanChangeKind.NEW, PlanChangeKind.INTERVAL),
    )

    charged_lines = [line.as_dict() for line in invoice.lines] if invoice is not None else []
    mismatch = (
        {}
        if invoice is None
        else compare_quote(
            plan_change.quote_lines,
            charged_lines,
            quoted_due=plan_change.quote_amount_due,
            charged_due=invoice.amount_paid if invoice.is_paid else invoice.amount_due,
            new_subscription=plan_change.kind == PlanChangeKind.NEW,
        )
    )
    plan_change.state = PlanChangeState.SETTLED
    plan_change.settled_at = timezone.now()
    plan_change.settled_via = via
    plan_change.charged_amount = invoice.amount_paid if invoice is not None else 0
    plan_change.charged_lines = charged_lines
    plan_change.charge_mismatch = mismatch
    plan_change.failure_code = ""
    plan_change.failure_message = ""
    plan_change.save()
    record_audit(
        tenant,
        actor="stripe" if via == "webhook" else "system",
        action="plan_change.settled",
        obj=plan_change,
        before={"license": audit_before},
        after={
            "via": via,
            "charged_amount": plan_change.charged_amount,
            "license": snapshot(license, LICENSE_AUDIT_FIELDS),
        },
    )
    if mismatch:
        # Quote == charge is checked, not hoped: a difference is recorded and shown, never swallowed.
        record_audit(tenant, actor="system", action="plan_change.charge_mismatch", obj=plan_change, after=mismatch)
        log.warning("Charge differs from quote", extra={"plan_change": plan_change.pk, "mismatch": mismatch})
    tenant_id, account_id, pc_id, reference = tenant.pk, license.account_id, plan_change.pk, plan_change.reference
    if is_ramp(license.term_percents) or license.stripe_schedule_id:
        sync_term_schedule_on_commit(license)  # a ramp is billed by a schedule; a later change redraws or ends it
    transaction.on_commit(
        lambda: plan_change_settled.send(
            sender=PlanChange, tenant_id=tenant_id, account_id=account_id, plan_change_id=pc_id, reference=reference
        )
    )
    return plan_change


def _abandon_locked(
    tenant: Tenant, plan_change: PlanChange, *, code: str, message: str, invoice: Invoice | None = None
) -> PlanChange:
    plan_change.state = PlanChangeState.CANCELED
    plan_change.failure_code = code[:64]
    plan_change.failure_message = message[:300]
    plan_change.save(update_fields=["state", "failure_code", "failure_message", "updated_at"])
    paid = invoice.amount_paid if invoice is not None and invoice.is_paid else 0
    record_audit(
        tenant,
        actor="system",
        action="plan_change.abandoned",
        obj=plan_change,
        after={
            "code": code,
            "message": message,
            "stripe_invoice_id": (invoice.id or "") if invoice is not None else plan_change.stripe_invoice_id,
            "amount_paid": paid,
        },
    )
    if paid:
        log.error("Plan change %s was paid (%s) but not applied: %s", plan_change.pk, paid, code)
    return plan_change


@transaction.atomic
def abandon_plan_change(
    tenant: Tenant, *, plan_change_id: int, code: str, message: str, invoice: Invoice | None = None
) -> PlanChange:
    """The licence moved under the change (held, ended, changed since the quote): cancel it, recorded, licence
    untouched. Callers void its open invoice first (`void_unpaid_stripe_objects`)."""
    plan_change = _lock(tenant, plan_change_id)
    if plan_change.state in (PlanChangeState.SETTLED, PlanChangeState.CANCELED):
        return plan_change
    return _abandon_locked(tenant, plan_change, code=code, message=message, invoice=invoice)


def abandon_if_license_moved(tenant: Tenant, plan_change: PlanChange) -> PlanChange | None:
    """Before anything more is sent to Stripe for this change: if the licence moved, void what Stripe holds for
    it and abandon it (returned); None when the change may go ahead. Raises StripeUnavailable for a retry."""
    from billing.services.plan_changes.confirmation import void_unpaid_stripe_objects

    plan_change = PlanChange.objects.for_tenant(tenant).get(pk=plan_change.pk)  # with the ids stored meanwhile
    license = License.objects.for_tenant(tenant).get(pk=plan_change.license_id)
    conflict = quote_conflict(plan_change, license)
    if conflict is None:
        return None
    try:
        void_unpaid_stripe_objects(tenant, plan_change)
    except StripeRejected as exc:  # already gone in Stripe: nothing left to void
        log.warning("Stripe refused voiding plan change %s: %s", plan_change.pk, exc.message)
    return abandon_plan_change(tenant, plan_change_id=plan_change.pk, code=conflict[0], message=conflict[1])


@transaction.atomic
def mark_plan_change_failed(tenant: Tenant, *, plan_change_id: int, code: str, message: str) -> PlanChange:
    """The payment (or the call) failed: the licence stays as it was, the state says why."""
    plan_change = _lock(tenant, plan_change_id)
    if plan_change.state in (PlanChangeState.SETTLED, PlanChangeState.CANCELED, PlanChangeState.FAILED):
        if plan_change.state == PlanChangeState.FAILED and plan_change.failure_code != code:
            plan_change.failure_code, plan_change.failure_message = code[:64], message[:300]
            plan_change.save(update_fields=["failure_code", "failure_message", "updated_at"])
        return plan_change  # a late failure never undoes a settlement
    plan_change.state = PlanChangeState.FAILED
    plan_change.failure_code = code[:64]
    plan_change.failure_message = message[:300]
    plan_change.save(update_fields=["state", "failure_code", "failure_message", "updated_at"])
    record_audit(
        tenant, actor="system", action="plan_change.failed", obj=plan_change, after={"code": code, "message": message}
    )
    return plan_change


def reconcile_stale_plan_changes(*, older_than: timedelta = timedelta(minutes=2)) -> int:
    """Beat: catch changes whose webhook never came or whose task died (each call is idempotent)."""
    from billing import tasks

    cutoff = timezone.now() - older_than
    count = 0
    for tenant in each_tenant():  # tenant by tenant: row-level security sees one tenant's rows at a time
        stuck = (
            PlanChange.objects.for_tenant(tenant)
            .filter(state__in=[PlanChangeState.PENDING, PlanChangeState.SUBMITTED], updated_at__lt=cutoff)
            .exclude(stripe_invoice_id="", state="submitted")
        )
        for pc in stuck[:200]:
            if pc.state == PlanChangeState.PENDING:
                tasks.retry_plan_change_payment.delay(tenant.pk, pc.pk)
            else:
                tasks.reconcile_plan_change.delay(tenant.pk, pc.pk)
            count += 1
    return count
