"""Licences: provisioning, MRR, revoke / suspend / restore, cancel and reactivate, grants, renewal.

Every write is atomic, audited, and announces itself with `license_changed` on commit.
Every write to a License row is in this module: plan-change settlement applies a settled
change through `apply_plan_change`, webhooks through `sync_license_from_subscription`,
`end_license` and `note_customer_delinquency`, the first purchase through `set_stripe_customer`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from accounts.services import Actor, actor_label, record_audit, snapshot
from billing.errors import BillingErrorCode, Conflict, InvalidInput, TierwiseError, stripe_errors_translated
from billing.models import GrantKind, License, LicenseChange, LicenseGrant, LicenseStatus
from billing.proration import add_interval
from billing.selectors import current_discount_policy, latest_addon_prices, license_addon_prices
from billing.signals import license_changed
from billing.stripe_client import Subscription
from catalog.models import AddOn, GovernanceState, Price, Tier
from catalog.pricing import apply_percent, round_half_up

log = logging.getLogger(__name__)
MAX_GRANT_DAYS = 366
STRIPE_STATUS = {
    "active": LicenseStatus.ACTIVE,
    "trialing": LicenseStatus.TRIALING,
    "past_due": LicenseStatus.PAST_DUE,
    "unpaid": LicenseStatus.PAST_DUE,
    "canceled": LicenseStatus.CANCELED,
    "incomplete_expired": LicenseStatus.CANCELED,
}
LICENSE_AUDIT_FIELDS = [
    "tier_id",
    "price_id",
    "seats",
    "interval",
    "status",
    "status_reason",
    "held_from_status",
    "cancel_at_period_end",
    "current_period_start",
    "current_period_end",
    "mrr",
    "commitment_ends_at",
    "term_years",
    "renewal_discount_percent",
]


def announce(license_or_grant: License | LicenseGrant) -> None:
    """Tell the apps above (usage caches, upgrades) once the transaction has committed."""
    tenant_id, account_id = license_or_grant.tenant_id, license_or_grant.account_id
    transaction.on_commit(lambda: license_changed.send(sender=License, tenant_id=tenant_id, account_id=account_id))


# --- Money -----------------------------------------------------------------------------------------


def interval_total(price: Price, seats: int) -> int:
    return price.amount * seats if price.per_seat else price.amount


def monthly_amount(price: Price, seats: int) -> int:
    """A price for `seats` seats as monthly recurring revenue (annual / 12, rounded once)."""
    total = interval_total(price, seats)
    return total if price.interval == "month" else round_half_up(total, 12)


def compute_mrr(
    *,
    price: Price | None,
    seats: int,
    addon_prices: list[Price] = (),  # type: ignore[assignment]
    discount_percent: Decimal = Decimal(0),
) -> int:
    gross = (monthly_amount(price, seats) if price is not None else 0) + sum(
        monthly_amount(p, seats) for p in addon_prices
    )
    return gross - apply_percent(gross, discount_percent) if discount_percent else gross


def license_state(license: License) -> dict[str, Any]:
    """The JSON picture of a licence kept in LicenseChange.from_state / to_state."""
    addons = sorted(license.addons.values_list("key", flat=True)) if license.pk else []
    return {
        "tier": license.tier.key,
        "tier_name": license.tier.name,
        "tier_version": license.tier.version,
        "price_id": license.price_id,
        "seats": license.seats,
        "interval": license.interval,
        "status": license.status,
        "addons": addons,
        "mrr": license.mrr,
        "currency": license.currency,
    }


def record_change(
    license: License,
    *,
    kind: str,
    before: dict[str, Any],
    actor: Actor,
    reason: str = "",
    reference: str = "",
    mrr_before: int,
    stripe_invoice_id: str = "",
    effective_at: datetime | None = None,
) -> LicenseChange:
    return LicenseChange.objects.create(
        tenant_id=license.tenant_id,
        account_id=license.account_id,
        license=license,
        kind=kind,
        from_state=before,
        to_state=license_state(license),
        reason=reason[:200],
        actor_label=actor_label(actor)[:200],
        reference=reference[:64],
        mrr_before=mrr_before,
        mrr_after=license.mrr,
        currency=license.currency,
        stripe_invoice_id=stripe_invoice_id,
        effective_at=effective_at or timezone.now(),
    )


def _audit(
    license: License, *, actor: Actor, action: str, before: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    after = snapshot(license, LICENSE_AUDIT_FIELDS)
    changed = {k for k in after if before.get(k) != after.get(k)}
    record_audit(
        license.tenant,
        actor=actor,
        action=action,
        obj=license,
        before={k: before.get(k) for k in changed},
        after={**{k: after[k] for k in changed}, **(extra or {})},
    )


def _clean(obj: Any) -> None:
    try:
        obj.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput("Invalid input.", details=exc.message_dict) from exc


def _lock(tenant: Tenant, license: License) -> License:
    return (
        License.objects.for_tenant(tenant)
        .select_for_update(of=("self",))
        .select_related("tier", "tenant")
        .get(pk=license.pk)
    )


# --- Provisioning ---------------------------------------------------------------------------------


def _check_price(tenant: Tenant, price: Price, *, field: str = "price") -> None:
    if price.tenant_id != tenant.pk or price.tier_id is None:
        raise InvalidInput("Invalid input.", details={field: ["Not a tier price of this tenant."]})
    if price.state != GovernanceState.PUBLISHED:
        raise InvalidInput(
            "Invalid input.",
            code=BillingErrorCode.PRICE_NOT_PUBLISHED,
            details={field: ["Only published prices can be sold."]},
        )


@transaction.atomic
def provision_license(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    price: Price | None,
    seats: int,
    actor: Actor,
    tier: Tier | None = None,
    status: str = LicenseStatus.ACTIVE,
    period_start: datetime | None = None,
    term_years: int = 1,
    addons: list[AddOn] = (),  # type: ignore[assignment]
    stripe_customer_id: str = "",
    stripe_subscription_id: str = "",
    stripe_subscription_item_id: str = "",
    reason: str = "",
    reference: str = "",
) -> License:
    """A new licence for an account that has none (a sale recorded, a free plan, an import).

    A free tier may have no price at all: give `tier` and no `price`; it bills nothing.
    """
    if account.tenant_id != tenant.pk:
        raise InvalidInput("Invalid input.", details={"account": ["Not an account of this tenant."]})
    if price is not None:
        _check_price(tenant, price)
        tier = price.tier
    elif tier is None or tier.tenant_id != tenant.pk or not tier.is_free or tier.state != GovernanceState.PUBLISHED:
        raise InvalidInput(
            "Invalid input.",
            details={"price": ["A price is needed unless the tier is a published free tier of this tenant."]},
        )
    if License.objects.for_tenant(tenant).filter(account=account).exists():
        raise Conflict("This account already has a licence.", code=BillingErrorCode.CHANGE_IN_FLIGHT)
    start = period_start or timezone.now()
    interval = price.interval if price is not None else "month"
    license = License(
        tenant=tenant,
        account=account,
        tier=tier,
        price=price,
        seats=seats,
        interval=interval,
        term_years=term_years,
        current_period_start=start,
        current_period_end=add_interval(start, interval),
        commitment_ends_at=add_interval(start, "year", term_years) if term_years > 1 else None,
        status=status,
        currency=price.currency if price is not None else tier.currency,
        stripe_customer_id=stripe_customer_id,
        stripe_subscription_id=stripe_subscription_id,
        stripe_subscription_item_id=stripe_subscription_item_id,
    )
    addon_prices = latest_addon_prices(tenant, addons=addons, interval=interval)
    license.mrr = compute_mrr(price=price, seats=seats, addon_prices=addon_prices)
    _clean(license)
    license.save()
    if addons:
        license.addons.set(addons)
    record_change(
        license,
        kind="new",
        before={},
        actor=actor,
        reason=reason or "Licence provisioned",
        reference=reference,
        mrr_before=0,
        effective_at=start,
    )
    record_audit(
        tenant, actor=actor, action="license.created", obj=license, after=snapshot(license, LICENSE_AUDIT_FIELDS)
    )
    announce(license)
    return license


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
            stripe_for(tenant).set_cancel_at_period_end(
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
    return locked


@transaction.atomic
def end_license(
    tenant: Tenant,
    *,
    license: License,
    actor: Actor,
    reason: str,
    at: datetime | None = None,
    stripe_invoice_id: str = "",
) -> License:
    """The subscription ended (cancel at period end reached, or Stripe deleted it): MRR goes to zero."""
    license = _lock(tenant, license)
    if license.status == LicenseStatus.CANCELED and not license.held_from_status:
        return license
    before, mrr_before, state_before = snapshot(license, LICENSE_AUDIT_FIELDS), license.mrr, license_state(license)
    if license.held_from_status:
        license.held_from_status = LicenseStatus.CANCELED  # restoring a revoked, ended licence keeps it ended
    else:
        license.status = LicenseStatus.CANCELED
    license.cancel_at_period_end = False
    license.mrr = 0
    license.status_reason = reason[:200]
    license.save()
    record_change(
        license,
        kind="cancel",
        before=state_before,
        actor=actor,
        reason=reason,
        mrr_before=mrr_before,
        stripe_invoice_id=stripe_invoice_id,
        effective_at=at,
    )
    _audit(license, actor=actor, action="license.ended", before=before)
    announce(license)
    return license


@transaction.atomic
def sync_license_from_subscription(
    tenant: Tenant, *, license: License, subscription: Subscription, event_created: datetime | None = None
) -> License:
    """Follow Stripe's status, period and cancel flag. Tier/price/seats never change here (settlement does)."""
    license = _lock(tenant, license)
    if subscription.status in ("canceled", "incomplete_expired"):
        return end_license(
            tenant,
            license=license,
            actor="stripe",
            reason="Subscription ended in Stripe",
            at=subscription.ended_at or subscription.canceled_at,
        )
    before = snapshot(license, LICENSE_AUDIT_FIELDS)
    status = STRIPE_STATUS.get(subscription.status)
    if status is not None:
        if license.held_from_status:
            license.held_from_status = status  # a revoke/suspend stays in force; restore returns to this
        else:
            license.status = status
    if subscription.current_period_start and subscription.current_period_end:
        license.current_period_start = subscription.current_period_start
        license.current_period_end = subscription.current_period_end
    license.cancel_at_period_end = subscription.cancel_at_period_end
    if event_created and (license.stripe_synced_at is None or event_created > license.stripe_synced_at):
        license.stripe_synced_at = event_created
    license.save()
    after = snapshot(license, LICENSE_AUDIT_FIELDS)
    if any(before.get(k) != after.get(k) for k in after):
        _audit(license, actor="stripe", action="license.synced_from_stripe", before=before)
        announce(license)
    return license


def apply_plan_change(
    tenant: Tenant,
    *,
    license: License,
    target: Price,
    seats: int,
    addon_prices: list[Price],
    subscription: Subscription | None,
    tier_stripe_price_id: str | None,
    activate: bool,
    kind: str,
    actor: Actor,
    reason: str,
    reference: str,
    stripe_invoice_id: str = "",
) -> dict[str, Any]:
    """A settled plan change reaches the licence: tier, price, seats, add-ons, interval, Stripe ids, period, MRR.

    Called by plan-change settlement only, inside its transaction, with `license` locked and already checked
    (not held, not ended, still what the quote was made from). Writes the LicenseChange and announces it.
    Returns the licence's audit snapshot from before, for the settlement's own audit entry.
    """
    before, mrr_before = license_state(license), license.mrr
    audit_before = snapshot(license, LICENSE_AUDIT_FIELDS)
    license.tier = target.tier
    license.price = target
    license.seats = seats
    license.interval = target.interval
    license.currency = target.currency
    if activate and license.status == LicenseStatus.TRIALING:
        license.status = LicenseStatus.ACTIVE
    if subscription is not None:
        license.stripe_subscription_id = subscription.id
        license.stripe_customer_id = subscription.customer_id or license.stripe_customer_id
        license.stripe_subscription_item_id = next(
            (i.id for i in subscription.items if i.price_id == tier_stripe_price_id),
            license.stripe_subscription_item_id,
        )
        if subscription.current_period_start and subscription.current_period_end:
            license.current_period_start = subscription.current_period_start
            license.current_period_end = subscription.current_period_end
    license.mrr = compute_mrr(
        price=target, seats=license.seats, addon_prices=addon_prices, discount_percent=license.renewal_discount_percent
    )
    license.save()
    license.addons.set([p.addon for p in addon_prices])
    record_change(
        license,
        kind=kind,
        before=before,
        actor=actor,
        reason=reason,
        reference=reference,
        mrr_before=mrr_before,
        stripe_invoice_id=stripe_invoice_id,
    )
    announce(license)
    return audit_before


def set_stripe_customer(tenant: Tenant, *, license: License, customer_id: str) -> None:
    """The licence's Stripe customer, recorded once (the first purchase creates it; a later answer keeps it)."""
    License.objects.for_tenant(tenant).filter(pk=license.pk, stripe_customer_id="").update(
        stripe_customer_id=customer_id, updated_at=timezone.now()
    )
    license.stripe_customer_id = (
        License.objects.for_tenant(tenant).values_list("stripe_customer_id", flat=True).get(pk=license.pk)
    )


DELINQUENT_NOTE = "Stripe marks the customer delinquent"


def note_customer_delinquency(tenant: Tenant, *, license: License, delinquent: bool) -> None:
    """Delinquency is shown to staff as the status reason; the status itself follows the subscription (past_due).

    A reason someone else wrote (a hold, a cancellation) is never overwritten.
    """
    note = DELINQUENT_NOTE if delinquent else ""
    License.objects.for_tenant(tenant).filter(pk=license.pk, status_reason__in=["", DELINQUENT_NOTE]).exclude(
        status_reason=note
    ).update(status_reason=note, updated_at=timezone.now())


# --- Grants: trials and CSM grants ------------------------------------------------------------------


@transaction.atomic
def start_grant(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    kind: str,
    actor: Actor,
    tier: Tier | None = None,
    addon: AddOn | None = None,
    days: int | None = None,
    ends_at: datetime | None = None,
    reason: str = "",
    reference: str = "",
) -> LicenseGrant:
    """A temporary overlay (trial of a higher tier, CSM grant). The paid licence and its billing date stay put."""
    errors: dict[str, list[str]] = {}
    if account.tenant_id != tenant.pk:
        errors["account"] = ["Not an account of this tenant."]
    if kind not in GrantKind.values:
        errors["kind"] = [f"One of {', '.join(GrantKind.values)}."]
    if (tier is None) == (addon is None):
        errors["tier"] = ["Give a tier or an add-on (one of them)."]
    for name, item in (("tier", tier), ("addon", addon)):
        if item is not None and (item.tenant_id != tenant.pk or item.state != GovernanceState.PUBLISHED):
            errors[name] = ["Not a published item of this tenant."]
    start = timezone.now()
    if ends_at is None and days is not None:
        ends_at = start + timedelta(days=days)
    if ends_at is None or ends_at <= start:
        errors["ends_at"] = ["The grant must end in the future."]
    elif ends_at - start > timedelta(days=MAX_GRANT_DAYS):
        errors["ends_at"] = [f"A grant lasts at most {MAX_GRANT_DAYS} days."]
    if errors:
        raise InvalidInput("Invalid grant.", code=BillingErrorCode.INVALID_GRANT, details=errors)
    overlapping = (
        LicenseGrant.objects.for_tenant(tenant)
        .filter(account=account, ended_at__isnull=True, ends_at__gt=start)
        .filter(Q(tier=tier) if tier is not None else Q(addon=addon))
    )
    if overlapping.exists():
        raise Conflict("The account already has this grant running.", code=BillingErrorCode.INVALID_GRANT)
    grant = LicenseGrant(
        tenant=tenant,
        account=account,
        kind=kind,
        tier=tier,
        addon=addon,
        starts_at=start,
        ends_at=ends_at,
        reason=reason[:200],
        reference=reference[:64],
        created_by=actor if hasattr(actor, "memberships") else None,
    )
    _clean(grant)
    grant.save()
    record_audit(
        tenant,
        actor=actor,
        action="license_grant.started",
        obj=grant,
        after=snapshot(grant, ["kind", "tier_id", "addon_id", "starts_at", "ends_at", "reason", "reference"]),
    )
    announce(grant)
    return grant


@transaction.atomic
def end_grant(
    tenant: Tenant, *, grant: LicenseGrant, actor: Actor, reason: str = "", at: datetime | None = None
) -> LicenseGrant:
    grant = LicenseGrant.objects.for_tenant(tenant).select_for_update().get(pk=grant.pk)
    if grant.ended_at is not None:
        return grant
    grant.ended_at = min(at or timezone.now(), grant.ends_at)
    grant.save(update_fields=["ended_at"])
    record_audit(
        tenant,
        actor=actor,
        action="license_grant.ended",
        obj=grant,
        after={"ended_at": grant.ended_at.isoformat(), "reason": reason},
    )
    announce(grant)
    return grant


def expire_grants(*, now: datetime | None = None, tenant_id: int | None = None) -> int:
    """Close every grant past its end (the trial sunset). Safe to run twice or concurrently."""
    now = now or timezone.now()
    qs = LicenseGrant.objects.filter(ended_at__isnull=True, ends_at__lte=now)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    count = 0
    for grant_id in qs.values_list("pk", flat=True)[:1000]:
        with transaction.atomic():
            grant = (
                LicenseGrant.objects.select_for_update(skip_locked=True)
                .filter(pk=grant_id, ended_at__isnull=True)
                .select_related("tenant")
                .first()
            )
            if grant is None:
                continue
            grant.ended_at = grant.ends_at
            grant.save(update_fields=["ended_at"])
            record_audit(
                grant.tenant,
                actor="system",
                action="license_grant.expired",
                obj=grant,
                after={"ended_at": grant.ended_at.isoformat()},
            )
            announce(grant)
            count += 1
    return count


# --- Multi-year terms -------------------------------------------------------------------------------


RENEWAL_LEAD = timedelta(days=1)  # renew (and discount in Stripe) before the term's last invoice is drawn up


def expected_renewal_total(license: License, *, discount_percent: Decimal) -> int:
    """The next regular invoice as our quote: each item's interval total less the discount, line by line
    (Stripe discounts each invoice line and rounds each once)."""
    totals = [interval_total(license.price, license.seats)] if license.price is not None else []
    totals += [interval_total(p, license.seats) for p in license_addon_prices(license.tenant, license)]
    return sum(t - apply_percent(t, discount_percent) if discount_percent else t for t in totals)


def _apply_renewal_discount(
    tenant: Tenant, license: License, *, discount_percent: Decimal, new_commitment_end: datetime
) -> tuple[str, Any]:
    """Put the loyalty discount on the Stripe subscription (a `forever` percent coupon, replaced at each renewal;
    none when the renewal carries no discount), then preview the next invoice Stripe will draw up.

    Returns (coupon id or "", the previewed Invoice or None without a subscription). Raises
    BillingUnavailable / InvalidInput with nothing of ours changed.
    """
    from billing.services.stripe_accounts import stripe_for

    if not license.stripe_subscription_id:
        return "", None
    gateway = stripe_for(tenant)
    # The same renewal retried sends the same body under the same key; another renewal or discount, another key.
    key = f"tw-lic-{license.pk}-renewal-{int(new_commitment_end.timestamp())}-{discount_percent.normalize()}"
    with stripe_errors_translated():
        subscription = gateway.retrieve_subscription(license.stripe_subscription_id)
        coupon_id = (
            gateway.ensure_percent_coupon(discount_percent, currency=license.currency) if discount_percent else ""
        )
        if coupon_id or subscription.discount_count:
            gateway.set_subscription_coupon(
                license.stripe_subscription_id, coupon_id=coupon_id or None, idempotency_key=key
            )
        preview = gateway.preview_next_invoice(
            customer_id=subscription.customer_id, subscription_id=license.stripe_subscription_id
        )
    return coupon_id, preview


def renew_license_term(
    tenant: Tenant, *, license: License, actor: Actor, loyalty_percent: Decimal = Decimal(0), at: datetime | None = None
) -> License:
    """Renew a committed term for another `term_years`, with the policy's loyalty discount for multi-year terms.

    Quote == charge: the discount is put on the Stripe subscription first (so the term's invoices
    are drawn up with it), Stripe's preview of the next invoice is compared with our own figure,
    and a difference is audited, never swallowed. Stripe is called outside the transaction.
    """
    at = at or timezone.now()
    if license.tenant_id != tenant.pk:
        raise InvalidInput("Not a licence of this tenant.")
    current = License.objects.for_tenant(tenant).select_related("price").get(pk=license.pk)

    def check(lic: License) -> None:
        if lic.commitment_ends_at is None or lic.commitment_ends_at > at + RENEWAL_LEAD:
            raise Conflict("The licence has no committed term ending now.", code=BillingErrorCode.INVALID_STATE)
        if lic.status not in (LicenseStatus.ACTIVE, LicenseStatus.PAST_DUE) or lic.cancel_at_period_end:
            raise Conflict("Only an active licence that is not cancelling renews.", code=BillingErrorCode.INVALID_STATE)

    check(current)
    assert current.commitment_ends_at is not None
    discount = Decimal(loyalty_percent) if current.term_years > 1 else Decimal(0)
    new_end = add_interval(current.commitment_ends_at, "year", current.term_years)
    coupon_id, preview = _apply_renewal_discount(tenant, current, discount_percent=discount, new_commitment_end=new_end)
    expected = expected_renewal_total(current, discount_percent=discount)
    with transaction.atomic():
        license = _lock(tenant, license)
        if license.commitment_ends_at != current.commitment_ends_at:
            raise Conflict("The term was renewed meanwhile.", code=BillingErrorCode.INVALID_STATE)
        check(license)
        before, mrr_before, state_before = snapshot(license, LICENSE_AUDIT_FIELDS), license.mrr, license_state(license)
        license.commitment_ends_at = new_end
        license.renewal_discount_percent = discount
        license.mrr = compute_mrr(
            price=license.price,
            seats=license.seats,
            addon_prices=license_addon_prices(license.tenant, license),
            discount_percent=license.renewal_discount_percent,
        )
        license.save()
        record_change(
            license,
            kind="renewal",
            before=state_before,
            actor=actor,
            reason=f"Term renewed for {license.term_years} year(s)"
            + (
                f" with {license.renewal_discount_percent}% loyalty discount"
                if license.renewal_discount_percent
                else ""
            ),
            mrr_before=mrr_before,
            effective_at=at,
        )
        quote = {"next_invoice_expected": expected}
        if preview is not None:
            quote.update(stripe_coupon=coupon_id, next_invoice_stripe=preview.total)
        _audit(license, actor=actor, action="license.renewed", before=before, extra=quote)
        if preview is not None and preview.total != expected:
            record_audit(
                tenant,
                actor="system",
                action="license.renewal_charge_mismatch",
                obj=license,
                after={**quote, "difference": preview.total - expected},
            )
        announce(license)
    return license


def renew_due_terms(*, now: datetime | None = None) -> int:
    """Beat: renew every committed term that has ended (not cancelling), with the tenant's loyalty discount."""
    now = now or timezone.now()
    due = License.objects.filter(
        commitment_ends_at__lte=now + RENEWAL_LEAD,
        cancel_at_period_end=False,
        status__in=[LicenseStatus.ACTIVE, LicenseStatus.PAST_DUE],
        held_from_status="",
    ).select_related("tenant")
    count = 0
    for license in due[:500]:
        policy = current_discount_policy(license.tenant)
        loyalty = Decimal(policy.loyalty_percent) if policy is not None else Decimal(0)
        try:
            renew_license_term(license.tenant, license=license, actor="system", loyalty_percent=loyalty, at=now)
            count += 1
        except Conflict:
            continue  # renewed meanwhile by another run
        except TierwiseError as exc:  # Stripe unreachable or refusing: nothing changed; the next run tries again
            log.warning("Renewal of licence %s not done yet: %s", license.pk, exc.message)
    return count
