"""Ramped terms: a multi-year commitment whose discount changes from year to year (10 %, 12 %, 15 %).

The licence keeps the discount of each year of its term (`term_percents`). Stripe bills it with a
subscription schedule made from the live subscription: its phases keep the subscription's items and
change only the coupon at each year's boundary, so each renewal invoice is drawn up with its year's
discount; after the last phase the schedule releases the subscription. The licence follows: when a
period starts in a new year of the term (`customer.subscription.updated`), its renewal discount and MRR
become that year's, recorded as a `term_year` change.

`sync_term_schedule` makes Stripe's schedule match the licence, from scratch or after any change (a
settled plan change with other items, a reactivation): it is idempotent and safe to run at any time. A
licence without a ramp (or cancelling, held, ended, past its term) has no schedule: one left is released.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import record_audit
from billing.models import License, LicenseChange, LicenseStatus
from billing.proration import add_interval
from billing.selectors import license_addon_prices
from billing.services.licenses.money import compute_mrr
from billing.services.licenses.records import _lock, announce, license_state, record_change
from billing.stripe_client import StripeGateway
from billing.stripe_schedules import (
    PhaseItem,
    SchedulePhase,
    release_schedule,
    retrieve_schedule,
    schedule_subscription,
    set_schedule_phases,
)


def is_ramp(percents: list[str] | list[Decimal] | None) -> bool:
    """More than one discount over the term (a flat term is one coupon, no schedule)."""
    return len({Decimal(str(p)) for p in percents or ()}) > 1


def term_started_at(license: License) -> datetime | None:
    """The first day of the committed term (its first full year; a mid-period change's stub comes before)."""
    if license.commitment_ends_at is None:
        return None
    return add_interval(license.commitment_ends_at, "year", -license.term_years)


def term_year_at(license: License, at: datetime) -> int:
    """1-based year of the term `at` falls in (the stub before the first full year counts as year one)."""
    start = term_started_at(license)
    if start is None or at < start:
        return 1
    year = 1
    while year < license.term_years and add_interval(start, "year", year) <= at:
        year += 1
    return year


def percent_for_year(license: License, year: int) -> Decimal:
    percents = license.term_percents
    return Decimal(str(percents[min(year, len(percents)) - 1])).quantize(Decimal("0.01"))


def sync_term_schedule_on_commit(license: License) -> None:
    """Once the caller's transaction commits, the task makes Stripe's schedule match the licence."""
    from billing import tasks  # the tasks import the services

    tenant_id, license_id = license.tenant_id, license.pk
    transaction.on_commit(lambda: tasks.sync_term_schedule.delay(tenant_id, license_id))


def follow_term_year(license: License, *, actor: str = "stripe") -> bool:
    """Inside the caller's transaction, `license` locked and its period just synced from Stripe: the renewal
    discount and MRR become those of the term year the current period starts in. True when they changed."""
    if not is_ramp(license.term_percents):
        return False
    year = term_year_at(license, license.current_period_start)
    percent = percent_for_year(license, year)
    if percent == Decimal(license.renewal_discount_percent or 0):
        return False
    state_before, mrr_before = license_state(license), license.mrr
    state_before["renewal_discount_percent"] = str(Decimal(license.renewal_discount_percent or 0))
    license.renewal_discount_percent = percent
    if not license.held_from_status and license.status != LicenseStatus.CANCELED:
        license.mrr = compute_mrr(
            price=license.price,
            seats=license.seats,
            addon_prices=license_addon_prices(license.tenant, license),
            discount_percent=percent,
        )
    license.save()
    record_change(
        license,
        kind="term_year",
        before=state_before,
        actor=actor,
        reason=f"Year {year} of the {license.term_years}-year term: {percent.normalize():f} % off",
        mrr_before=mrr_before,
        to_extra={"renewal_discount_percent": str(percent), "term_year": year},
        effective_at=license.current_period_start,
    )
    announce(license)
    return True


# --- Stripe's schedule --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RampPhase:
    start: datetime
    end: datetime
    percent: Decimal


def ramp_phases(license: License, *, from_start: datetime) -> list[RampPhase]:
    """The schedule's phases from the current phase's start to the term's end: one per run of equal discounts,
    each ending on a year boundary of the term (the first year's phase holds a mid-period change's stub)."""
    start = term_started_at(license)
    if start is None:
        return []
    phases: list[RampPhase] = []
    for year in range(1, license.term_years + 1):
        end = add_interval(start, "year", year)
        if end <= from_start:
            continue
        percent = percent_for_year(license, year)
        if phases and phases[-1].percent == percent:
            phases[-1] = RampPhase(phases[-1].start, end, percent)
        else:
            phases.append(RampPhase(phases[-1].end if phases else from_start, end, percent))
    return phases


def _wants_schedule(license: License, now: datetime) -> bool:
    return (
        is_ramp(license.term_percents)
        and bool(license.stripe_subscription_id)
        and license.status in (LicenseStatus.ACTIVE, LicenseStatus.PAST_DUE)
        and not license.held_from_status
        and not license.cancel_at_period_end
        and license.commitment_ends_at is not None
        and license.commitment_ends_at > now
    )


def release_term_schedule(tenant: Tenant, gateway: StripeGateway, license: License) -> None:
    """Before a change Stripe refuses on a scheduled subscription (cancelling) or one that replaces the ramp
    (a term renewal): the subscription goes on as it stands. Raises the gateway's errors."""
    if not license.stripe_schedule_id:
        return
    schedule = retrieve_schedule(gateway, license.stripe_schedule_id)
    if schedule.active:
        release_schedule(gateway, schedule.id, idempotency_key=f"tw-lic-{license.pk}-release-{schedule.id}")
    License.objects.for_tenant(tenant).filter(pk=license.pk, stripe_schedule_id=schedule.id).update(
        stripe_schedule_id="", updated_at=timezone.now()
    )
    license.stripe_schedule_id = ""


def sync_term_schedule(tenant: Tenant, *, license_id: int, now: datetime | None = None) -> str:
    """Make Stripe's schedule match the licence's ramp. Returns what it did: "none", "released", "unchanged",
    "scheduled". Raises StripeUnavailable for the task's retry (every call is keyed and idempotent)."""
    from billing.services.plan_changes.discounts import ensure_coupon  # that package imports this one
    from billing.services.stripe_accounts import stripe_for

    now = now or timezone.now()
    license = License.objects.for_tenant(tenant).select_related("price").filter(pk=license_id).first()
    if license is None or not license.stripe_subscription_id:  # another tenant's id finds nothing here
        return "none"
    gateway = stripe_for(tenant)
    subscription = gateway.retrieve_subscription(license.stripe_subscription_id)
    if not _wants_schedule(license, now):
        if subscription.schedule_id:
            license.stripe_schedule_id = subscription.schedule_id
            release_term_schedule(tenant, gateway, license)
            return "released"
        return "none"
    if subscription.schedule_id:
        schedule = retrieve_schedule(gateway, subscription.schedule_id)
    else:
        cycle = LicenseChange.objects.for_tenant(tenant).filter(license=license).count()
        schedule = schedule_subscription(
            gateway, subscription.id, idempotency_key=f"tw-lic-{license.pk}-schedule-{cycle}"
        )
    items = tuple(PhaseItem(price_id=i.price_id, quantity=i.quantity) for i in subscription.items)
    from_start = schedule.current_phase_start or subscription.current_period_start or now
    wanted = [
        SchedulePhase(
            start=p.start,
            end=p.end,
            items=items,
            coupon_id=ensure_coupon(
                tenant, gateway, percent=p.percent, term_years=license.term_years, currency=license.currency
            )
            if p.percent
            else None,
        )
        for p in ramp_phases(license, from_start=from_start)
    ]
    done = "unchanged"
    if tuple(wanted) != tuple(p for p in schedule.phases if p.end > from_start):  # past phases may be listed
        body = json.dumps([p.params(first=i == 0) for i, p in enumerate(wanted)], sort_keys=True)
        key = f"tw-lic-{license.pk}-phases-{schedule.id}-{hashlib.sha256(body.encode()).hexdigest()[:24]}"
        schedule = set_schedule_phases(gateway, schedule.id, phases=wanted, idempotency_key=key)
        done = "scheduled"
    with transaction.atomic():
        locked = _lock(tenant, license)
        if locked.stripe_schedule_id != schedule.id:
            locked.stripe_schedule_id = schedule.id
            locked.save(update_fields=["stripe_schedule_id", "updated_at"])
            record_audit(
                tenant,
                actor="system",
                action="license.term_scheduled",
                obj=locked,
                after={
                    "stripe_schedule": schedule.id,
                    "phases": [
                        {"start": p.start.isoformat(), "end": p.end.isoformat(), "coupon": p.coupon_id} for p in wanted
                    ],
                },
            )
    return done


def licenses_missing_a_schedule(tenant: Tenant, *, now: datetime | None = None) -> list[int]:
    """Ramped licences whose schedule is not recorded (a task lost, Stripe down at settlement): for the beat."""
    now = now or timezone.now()
    rows = (
        License.objects.for_tenant(tenant)
        .filter(stripe_schedule_id="", commitment_ends_at__gt=now)
        .exclude(term_percents=[])
        .exclude(stripe_subscription_id="")
    )
    return [lic.pk for lic in rows[:500] if _wants_schedule(lic, now)]
