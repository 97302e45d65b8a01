"""Stripe calls for subscription schedules: a ramped multi-year term, one phase per discount.

A ramp (10 % in year one, 12 % in year two...) is a schedule made from the live subscription, whose phases
keep its items and change only the coupon at each year's boundary. Stripe moves the subscription into
the next phase when a period starts there, so every renewal invoice is drawn up with that year's coupon;
after the last phase the schedule releases the subscription, which then renews as it stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import stripe
from stripe.params import (
    SubscriptionScheduleUpdateParams,
    SubscriptionScheduleUpdateParamsPhase,
    SubscriptionScheduleUpdateParamsPhaseDiscount,
    SubscriptionScheduleUpdateParamsPhaseItem,
)

from billing.stripe_client import StripeGateway, _dt, _id, _translate, _ts


@dataclass(frozen=True)
class PhaseItem:
    price_id: str
    quantity: int


@dataclass(frozen=True)
class SchedulePhase:
    start: datetime
    end: datetime
    items: tuple[PhaseItem, ...]
    coupon_id: str | None  # the phase's discount; None: no discount

    def params(self, *, first: bool) -> SubscriptionScheduleUpdateParamsPhase:
        out = SubscriptionScheduleUpdateParamsPhase(
            items=[
                SubscriptionScheduleUpdateParamsPhaseItem(price=i.price_id, quantity=i.quantity) for i in self.items
            ],
            discounts=[SubscriptionScheduleUpdateParamsPhaseDiscount(coupon=self.coupon_id)] if self.coupon_id else "",
            end_date=_ts(self.end),
        )
        if first:
            out["start_date"] = _ts(self.start)
        return out


@dataclass(frozen=True)
class SubscriptionSchedule:
    id: str
    status: str  # not_started, active, completed, released, canceled
    subscription_id: str | None
    current_phase_start: datetime | None
    phases: tuple[SchedulePhase, ...]

    @property
    def active(self) -> bool:
        return self.status in ("active", "not_started")


def _coupon(phase: Any) -> str | None:
    for discount in phase.get("discounts") or ():
        coupon = discount.get("coupon") if hasattr(discount, "get") else None
        if coupon:
            return _id(coupon)
    return None


def _schedule(obj: stripe.SubscriptionSchedule) -> SubscriptionSchedule:
    current = obj.get("current_phase")
    phases = tuple(
        SchedulePhase(
            start=cast(datetime, _dt(p["start_date"])),
            end=cast(datetime, _dt(p["end_date"])),
            items=tuple(
                PhaseItem(price_id=_id(i["price"]) or "", quantity=int(i.get("quantity") or 1)) for i in p["items"]
            ),
            coupon_id=_coupon(p),
        )
        for p in obj.get("phases") or ()
    )
    return SubscriptionSchedule(
        id=obj.id,
        status=str(obj.status),
        subscription_id=_id(obj.get("subscription")),
        current_phase_start=_dt(current["start_date"]) if current else None,
        phases=phases,
    )


def retrieve_schedule(gateway: StripeGateway, schedule_id: str) -> SubscriptionSchedule:
    try:
        return _schedule(gateway.client.v1.subscription_schedules.retrieve(schedule_id))
    except stripe.StripeError as exc:
        raise _translate(exc) from exc


def schedule_subscription(
    gateway: StripeGateway, subscription_id: str, *, idempotency_key: str
) -> SubscriptionSchedule:
    """A schedule that takes over the subscription as it stands (one phase: its current period)."""
    try:
        obj = gateway.client.v1.subscription_schedules.create(
            {"from_subscription": subscription_id}, {"idempotency_key": idempotency_key}
        )
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    return _schedule(obj)


def set_schedule_phases(
    gateway: StripeGateway, schedule_id: str, *, phases: Sequence[SchedulePhase], idempotency_key: str
) -> SubscriptionSchedule:
    """Replace the phases from the current one on (the first keeps the current phase's start); released at the end."""
    params = SubscriptionScheduleUpdateParams(
        phases=[p.params(first=i == 0) for i, p in enumerate(phases)],
        end_behavior="release",
        proration_behavior="none",
    )
    try:
        obj = gateway.client.v1.subscription_schedules.update(schedule_id, params, {"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    return _schedule(obj)


def release_schedule(gateway: StripeGateway, schedule_id: str, *, idempotency_key: str) -> None:
    """The subscription goes on as it stands, without the schedule (a later change, a cancellation, a renewal)."""
    try:
        gateway.client.v1.subscription_schedules.release(schedule_id, None, {"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
