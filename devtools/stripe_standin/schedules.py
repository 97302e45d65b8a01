"""Subscription schedules: a schedule made from a subscription, its phases checked and stored, and the phase
in force applied to the subscription as it renews (and shown by the preview of its next invoice).

The subset of Stripe's schedules simulated here, and its simplifications (what is not simulated is refused
with a 400, never answered differently from Stripe):

- A schedule is created only `from_subscription`; its first phase mirrors the subscription's current period
  (items, coupons), and its end_behavior is `release`. A subscription set to cancel is not migrated.
- Phases take `items` (price, quantity), `discounts` (coupons), `start_date` (the first phase's, which is the
  current phase's start), `end_date` (required on every phase) and `proration_behavior`; `iterations`,
  trials, `add_invoice_items`, default settings and the like are refused as unknown parameters.
- Every phase ends on a billing-period boundary of the subscription (counted from its
  `billing_cycle_anchor`, stepping by the items' interval with core.add_interval, as renewals step), and all
  of a phase's items share the subscription's interval and currency. A phase therefore begins at a renewal,
  never mid-period: entering it needs no proration and no new billing cycle. Real Stripe also lets a phase
  end mid-period (prorating) and change the interval.
- An update keeps the current phase's items as the subscription has them (change those on the subscription,
  which, as in Stripe, changes the current phase too); the current phase's discounts may change, and apply
  to the subscription at once, as Stripe applies them.
- At a renewal into the period starting at `start`: the schedule ends when `start` reaches the last phase's
  end (end_behavior `release`: the subscription renews as it is; `cancel`: it ends instead of renewing);
  otherwise the phase containing `start` gives the items and discounts the new period is invoiced with.
"""

from __future__ import annotations

from typing import Any

from devtools.stripe_standin.core import (
    STATE,
    StripeHTTPError,
    add_interval,
    as_int,
    export_item,
    export_schedule,
    list_object,
    missing,
    new_id,
    now,
)
from devtools.stripe_standin.events import emit
from devtools.stripe_standin.subscriptions import (
    active_schedule,
    coupon_ids,
    cycle,
    item_specs,
    make_discounts,
    phase_at,
    same_items,
)

PHASE_PARAMS = {"items", "discounts", "start_date", "end_date", "proration_behavior"}
PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")
MAX_PERIODS = 1200  # a phase ending further out than this many billing periods is refused
BOUNDARY_ONLY = "The stand-in supports phases that end on a billing period boundary."


def schedule_of(account: str, sched_id: str) -> dict[str, Any]:
    sched = STATE["schedules"].get(sched_id)
    if sched is None or sched["_account"] != account:
        raise missing("subscription_schedule", sched_id)  # another account's schedule does not exist for this key
    return sched


def new_schedule(sub: dict[str, Any]) -> dict[str, Any]:
    phase = {
        "start_date": sub["current_period_start"],
        "end_date": sub["current_period_end"],
        "items": item_specs(sub["items"]),
        "discounts": [{"coupon": c} for c in coupon_ids(sub.get("_discounts"))],
        "proration_behavior": "create_prorations",
        "currency": sub["currency"],
    }
    sched = {
        "id": new_id("sub_sched_"),
        "object": "subscription_schedule",
        "status": "active",
        "subscription": sub["id"],
        "customer": sub["customer"],
        "created": now(),
        "livemode": False,
        "end_behavior": "release",
        "current_phase": {"start_date": phase["start_date"], "end_date": phase["end_date"]},
        "phases": [phase],
        "released_at": None,
        "released_subscription": None,
        "canceled_at": None,
        "completed_at": None,
        "metadata": {},
        "_account": sub["_account"],
    }
    STATE["schedules"][sched["id"]] = sched
    sub["schedule"] = sched["id"]
    return sched


# --- Phases, as an update gives them ------------------------------------------------------------------


def on_period_boundary(sub: dict[str, Any], ts: int) -> bool:
    interval, count = cycle(sub["_account"], sub["items"])
    at = sub["billing_cycle_anchor"]
    for _ in range(MAX_PERIODS):
        if at >= ts:
            return at == ts
        at = add_interval(at, interval, count)
    return False


def unknown_keys(spec: dict[str, Any], known: set[str], name: str) -> None:
    unknown = set(spec) - known
    if unknown:
        key = f"{name}[{sorted(unknown)[0]}]"
        raise StripeHTTPError(400, f"Received unknown parameter: {key}", param=key)


def parse_items(sub: dict[str, Any], raw: Any, name: str) -> list[dict[str, Any]]:
    account = sub["_account"]
    if not isinstance(raw, list) or not raw:
        raise StripeHTTPError(400, "Each phase needs at least one item.", param=f"{name}[items]")
    out: list[dict[str, Any]] = []
    for j, spec in enumerate(raw):
        param = f"{name}[items][{j}]"
        if not isinstance(spec, dict):
            raise StripeHTTPError(400, "Invalid object", param=param)
        unknown_keys(spec, {"price", "quantity"}, param)
        price_id = str(spec.get("price") or "")
        if not price_id:
            raise StripeHTTPError(400, f"Missing required param: {param}[price].", param=f"{param}[price]")
        price = STATE["prices"].get(price_id)
        if price is None or price["_account"] != account:
            raise StripeHTTPError(400, f"No such price: '{price_id}'", code="resource_missing", param=f"{param}[price]")
        same_cycle = cycle(account, [{"price": price_id}]) == cycle(account, sub["items"])
        if not same_cycle or price["currency"] != sub["currency"]:
            raise StripeHTTPError(
                400,
                "The stand-in supports phases whose items share the subscription's interval and currency.",
                param=f"{param}[price]",
            )
        if any(i["price"] == price_id for i in out):
            raise StripeHTTPError(400, "A phase cannot have the same price twice.", param=f"{param}[price]")
        quantity = as_int(spec.get("quantity", 1), f"{param}[quantity]")
        if quantity < 1:
            raise StripeHTTPError(400, "Quantity must be at least 1.", param=f"{param}[quantity]")
        out.append({"price": price_id, "quantity": quantity})
    return out


def parse_discounts(account: str, raw: Any, name: str) -> list[dict[str, Any]]:
    if raw in ("", None):
        return []
    if not isinstance(raw, list):
        raise StripeHTTPError(400, "discounts must be a list.", param=f"{name}[discounts]")
    out = []
    for k, spec in enumerate(raw):
        param = f"{name}[discounts][{k}]"
        if not isinstance(spec, dict) or not spec.get("coupon"):
            raise StripeHTTPError(400, f"Missing required param: {param}[coupon].", param=f"{param}[coupon]")
        unknown_keys(spec, {"coupon"}, param)  # discount / promotion_code: not simulated
        coupon_id = str(spec["coupon"])
        if coupon_id not in STATE["coupons"].get(account, {}):
            raise StripeHTTPError(
                400, f"No such coupon: '{coupon_id}'", code="resource_missing", param=f"{param}[coupon]"
            )
        out.append({"coupon": coupon_id})
    return out


def parse_phases(sched: dict[str, Any], sub: dict[str, Any], raw: Any) -> list[dict[str, Any]]:
    """The `phases` of an update, checked; the first starts when the current phase started."""
    if not isinstance(raw, list) or not raw:
        raise StripeHTTPError(400, "phases must be a non-empty list.", param="phases")
    start = sched["current_phase"]["start_date"]
    phases: list[dict[str, Any]] = []
    for i, spec in enumerate(raw):
        name = f"phases[{i}]"
        if not isinstance(spec, dict):
            raise StripeHTTPError(400, "Invalid object", param=name)
        unknown_keys(spec, PHASE_PARAMS, name)
        if spec.get("start_date") not in (None, ""):
            given = as_int(spec["start_date"], f"{name}[start_date]")
            if given != start:
                message = (
                    "The first phase must start when the current phase started."
                    if i == 0
                    else f"Phase {i} must start when phase {i - 1} ends (no gaps or overlaps between phases)."
                )
                raise StripeHTTPError(400, message, param=f"{name}[start_date]")
        if spec.get("end_date") in (None, ""):
            raise StripeHTTPError(400, f"Missing required param: {name}[end_date].", param=f"{name}[end_date]")
        end = as_int(spec["end_date"], f"{name}[end_date]")
        if end <= start:
            raise StripeHTTPError(400, "A phase must end after it starts.", param=f"{name}[end_date]")
        if not on_period_boundary(sub, end):
            raise StripeHTTPError(400, BOUNDARY_ONLY, param=f"{name}[end_date]")
        behavior = spec.get("proration_behavior", "create_prorations")
        if behavior not in PRORATION_BEHAVIORS:
            raise StripeHTTPError(400, "Invalid proration_behavior.", param=f"{name}[proration_behavior]")
        phases.append(
            {
                "start_date": start,
                "end_date": end,
                "items": parse_items(sub, spec.get("items"), name),
                "discounts": parse_discounts(sub["_account"], spec.get("discounts"), name),
                "proration_behavior": behavior,
                "currency": sub["currency"],
            }
        )
        start = end
    return phases


def set_phases(sched: dict[str, Any], sub: dict[str, Any], phases: list[dict[str, Any]]) -> dict[str, Any]:
    """Store an update's phases; the current one's discounts apply now. Returns the subscription's changes."""
    current = phase_at(phases, sub["current_period_start"])
    if current is None:
        raise StripeHTTPError(
            400, "The phases must cover the current billing period.", param=f"phases[{len(phases) - 1}][end_date]"
        )
    index = phases.index(current)
    if not same_items(current["items"], sub["items"]):
        raise StripeHTTPError(
            400, "The stand-in does not change the current phase's items.", param=f"phases[{index}][items]"
        )
    previous: dict[str, Any] = {}
    if not same_coupons(current, sub):
        previous["discounts"] = [d["id"] for d in sub.get("_discounts") or []]
        sub["_discounts"] = make_discounts(
            sub["_account"], current["discounts"], subscription=sub["id"], customer=sub["customer"]
        )
    sched["phases"] = phases
    sched["current_phase"] = {"start_date": current["start_date"], "end_date": current["end_date"]}
    return previous


def same_coupons(phase: dict[str, Any], sub: dict[str, Any]) -> bool:
    return sorted(d["coupon"] for d in phase["discounts"]) == sorted(coupon_ids(sub.get("_discounts")))


# --- The phase in force at a renewal -------------------------------------------------------------------


def phase_state(
    sub: dict[str, Any], phase: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool, bool]:
    """(items, discounts, items changed, discounts changed) of the subscription under `phase`. Items keep their
    ids when their price stays; discounts stay the subscription's own when the coupons are the same."""
    items, discounts = sub["items"], sub.get("_discounts") or []
    items_changed = not same_items(phase["items"], sub["items"])
    if items_changed:
        by_price = {i["price"]: i for i in sub["items"]}
        items = [
            {**by_price[p["price"]], "quantity": p["quantity"]}
            if p["price"] in by_price
            else {"id": new_id("si_"), "price": p["price"], "quantity": p["quantity"], "created": now()}
            for p in phase["items"]
        ]
    discounts_changed = not same_coupons(phase, sub)
    if discounts_changed:
        discounts = make_discounts(
            sub["_account"], phase["discounts"], subscription=sub["id"], customer=sub["customer"]
        )
    return items, discounts, items_changed, discounts_changed


def renew_into(sub: dict[str, Any], start: int) -> tuple[bool, dict[str, Any]]:
    """The schedule's part in a renewal into the period starting at `start`, applied before it is invoiced.

    Returns (renews, previous attributes of the subscription); renews is False when the schedule ends the
    subscription (end_behavior `cancel`), which the caller then ends instead of renewing."""
    sched = active_schedule(sub)
    if sched is None:
        return True, {}
    if start >= sched["phases"][-1]["end_date"]:
        release = sched["end_behavior"] == "release"
        sched.update(status="completed", completed_at=now(), current_phase=None)
        sched["released_subscription"] = sub["id"] if release else None
        sub["schedule"] = None
        emit(sched["_account"], "subscription_schedule.completed", export_schedule(sched))
        return release, {"schedule": sched["id"]}
    phase = phase_at(sched["phases"], start)
    if phase is None:  # phases are contiguous from before the current period: not reached
        return True, {}
    items, discounts, items_changed, discounts_changed = phase_state(sub, phase)
    previous: dict[str, Any] = {}
    if items_changed:
        previous["items"] = list_object([export_item(sub, i) for i in sub["items"]], "")
        sub["items"] = items
    if discounts_changed:
        previous["discounts"] = [d["id"] for d in sub.get("_discounts") or []]
        sub["_discounts"] = discounts
    entered = {"start_date": phase["start_date"], "end_date": phase["end_date"]}
    if entered != sched["current_phase"]:
        sched["current_phase"] = entered
        emit(sched["_account"], "subscription_schedule.updated", export_schedule(sched))
    return True, previous


def upcoming_phase(sub: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """(items, discounts) the next renewal will be invoiced with under the subscription's schedule; None: the
    subscription as it is (no schedule, or it ends first: `release` renews as is; `cancel` is not previewed)."""
    sched = active_schedule(sub)
    phase = phase_at(sched["phases"], sub["current_period_end"]) if sched else None
    if phase is None:
        return None
    items, discounts, _, _ = phase_state(sub, phase)
    return items, discounts


def schedule_canceled(sub: dict[str, Any]) -> None:
    """The subscription ends (canceled directly or through its schedule): its active schedule is canceled."""
    sched = active_schedule(sub)
    if sched is None:
        return
    sched.update(status="canceled", canceled_at=now(), current_phase=None)
    sub["schedule"] = None
    emit(sched["_account"], "subscription_schedule.canceled", export_schedule(sched))
