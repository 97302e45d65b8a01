"""Subscription changes: resolving items, proration lines as Stripe computes them, pending updates,
collection pauses and discounts."""

from __future__ import annotations

from typing import Any

from devtools.stripe_standin.core import (
    STATE,
    StripeHTTPError,
    add_interval,
    as_bool,
    as_int,
    export_invoice,
    export_item,
    export_schedule,
    export_subscription,
    list_object,
    missing,
    new_id,
    now,
    price_of,
    product_name,
    share,
)
from devtools.stripe_standin.events import emit
from devtools.stripe_standin.invoices import day, line

# --- Subscription changes -------------------------------------------------------------------------


def cycle(account: str, items: list[dict[str, Any]]) -> tuple[str, int]:
    price = price_of(account, items[0]["price"])
    return price["recurring"]["interval"], price["recurring"]["interval_count"]


def resolve_items(account: str, sub: dict[str, Any] | None, wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The item list after applying `items[]` params (update, add, delete) to the current items."""
    current = {i["id"]: dict(i) for i in (sub["items"] if sub else [])}
    touched: set[str] = set()
    result: list[dict[str, Any]] = []
    for spec in wanted:
        item_id = spec.get("id")
        if item_id:
            if item_id not in current:
                raise missing("subscription_item", item_id)
            touched.add(item_id)
            if as_bool(spec.get("deleted", False)):
                continue
            item = current[item_id]
            if spec.get("price"):
                price_of(account, spec["price"])
                item["price"] = spec["price"]
            if spec.get("quantity") is not None:
                item["quantity"] = as_int(spec["quantity"], "items[quantity]")
            result.append(item)
        else:
            if not spec.get("price"):
                raise StripeHTTPError(400, "Each new item needs a price.", param="items[price]")
            price_of(account, spec["price"])
            quantity = as_int(spec.get("quantity", 1), "items[quantity]")
            result.append({"id": new_id("si_"), "price": spec["price"], "quantity": quantity, "created": now()})
    result.extend(dict(item) for item_id, item in current.items() if item_id not in touched)
    if not result:
        raise StripeHTTPError(400, "A subscription needs at least one item.", param="items")
    if any(i["quantity"] < 1 for i in result):
        raise StripeHTTPError(400, "Quantity must be at least 1.", param="items[quantity]")
    if (
        len({cycle(account, [i]) for i in result}) > 1
        or len({price_of(account, i["price"])["currency"] for i in result}) > 1
    ):
        raise StripeHTTPError(400, "All items must share one billing interval and currency.", param="items")
    return result


def change_lines(
    account: str, sub: dict[str, Any], new_items: list[dict[str, Any]], at: int, behavior: str
) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
    """Stripe's proration for an item change at `at`: (lines, new period if the cycle resets)."""
    start, end = sub["current_period_start"], sub["current_period_end"]
    if not start <= at < end:
        raise StripeHTTPError(400, "proration_date must be within the current billing period.", param="proration_date")
    whole, remaining = end - start, end - at
    old = {i["id"]: i for i in sub["items"]}
    new = {i["id"]: i for i in new_items}
    reset = cycle(account, sub["items"]) != cycle(account, new_items)
    lines: list[dict[str, Any]] = []

    def unchanged(item_id: str) -> bool:
        return (
            item_id in old
            and item_id in new
            and old[item_id]["price"] == new[item_id]["price"]
            and old[item_id]["quantity"] == new[item_id]["quantity"]
        )

    if behavior != "none":
        for item in sub["items"]:
            if unchanged(item["id"]) and not reset:
                continue
            price = STATE["prices"][item["price"]]
            amount = share(price["unit_amount"] * item["quantity"], remaining, whole)
            if amount:
                credit = line(
                    sub_id=sub["id"],
                    item_id=item["id"],
                    price=price,
                    quantity=item["quantity"],
                    amount=-amount,
                    start=at,
                    end=end,
                    proration=True,
                    description=f"Unused time on {item['quantity']} × {product_name(price['product'])} after {day(at)}",
                )
                paid_with = STATE.get("paid_discounts", {}).get(item["id"])
                if paid_with is not None:  # credited with the discounts its period was paid with
                    credit["_paid_discounts"] = paid_with
                lines.append(credit)
    if reset:
        interval, count = cycle(account, new_items)
        new_end = add_interval(at, interval, count)
        for item in new_items:
            price = STATE["prices"][item["price"]]
            lines.append(
                line(
                    sub_id=sub["id"],
                    item_id=item["id"],
                    price=price,
                    quantity=item["quantity"],
                    amount=price["unit_amount"] * item["quantity"],
                    start=at,
                    end=new_end,
                    proration=False,
                    description=f"{item['quantity']} × {product_name(price['product'])} "
                    f"(from {day(at)} to {day(new_end)})",
                )
            )
        return lines, (at, new_end)
    if behavior != "none":
        for item in new_items:
            if unchanged(item["id"]):
                continue
            price = STATE["prices"][item["price"]]
            amount = share(price["unit_amount"] * item["quantity"], remaining, whole)
            if amount:
                lines.append(
                    line(
                        sub_id=sub["id"],
                        item_id=item["id"],
                        price=price,
                        quantity=item["quantity"],
                        amount=amount,
                        start=at,
                        end=end,
                        proration=True,
                        description=f"Remaining time on {item['quantity']} × "
                        f"{product_name(price['product'])} after {day(at)}",
                    )
                )
    return lines, None


def apply_items(sub: dict[str, Any], items: list[dict[str, Any]], period: tuple[int, int] | None) -> dict[str, Any]:
    previous = {"items": list_object([export_item(sub, i) for i in sub["items"]], "")}
    sub["items"] = items
    if period is not None:
        sub["current_period_start"], sub["current_period_end"] = period
        sub["billing_cycle_anchor"] = period[0]
    return previous


def expire_pending(sub: dict[str, Any]) -> None:
    pending = sub.get("_pending")
    if pending and pending["expires_at"] <= now():
        sub["_pending"] = None
        inv = STATE["invoices"].get(pending["invoice"])
        if inv and inv["status"] == "open":
            void(inv)
        emit(sub["_account"], "customer.subscription.updated", export_subscription(sub))


def void(inv: dict[str, Any]) -> None:
    inv["status"] = "void"
    inv["amount_remaining"] = 0
    inv["status_transitions"]["voided_at"] = now()
    emit(inv["_account"], "invoice.voided", export_invoice(inv))


def subscription_of(account: str, sub_id: str) -> dict[str, Any]:
    sub = STATE["subscriptions"].get(sub_id)
    if sub is None or sub["_account"] != account:
        raise missing("subscription", sub_id)
    expire_pending(sub)
    return sub


def invoice_of(account: str, invoice_id: str) -> dict[str, Any]:
    inv = STATE["invoices"].get(invoice_id)
    if inv is None or inv["_account"] != account:
        raise missing("invoice", invoice_id)
    return inv


def after_invoice_paid(inv: dict[str, Any]) -> None:
    """A paid invoice that carries a pending update applies it (pending_if_incomplete)."""
    sub_id = (inv.get("parent") or {}).get("subscription_details", {}).get("subscription")
    sub = STATE["subscriptions"].get(sub_id) if sub_id else None
    if sub is None:
        return
    pending = sub.get("_pending")
    if pending and pending["invoice"] == inv["id"]:
        sub["_pending"] = None
        previous = apply_items(sub, pending["items"], pending["period"])
        emit(sub["_account"], "customer.subscription.updated", export_subscription(sub), previous)
        sync_schedule(sub)
    elif sub["status"] in ("past_due", "incomplete"):
        sub["status"] = "active"
        emit(sub["_account"], "customer.subscription.updated", export_subscription(sub), {"status": "past_due"})


def parse_pause_collection(value: Any) -> dict[str, Any] | None:
    if value in ("", None):
        return None
    behavior = value.get("behavior") if isinstance(value, dict) else None
    if behavior not in ("keep_as_draft", "mark_uncollectible", "void"):
        raise StripeHTTPError(400, "pause_collection[behavior] must be keep_as_draft, mark_uncollectible or void.")
    resumes_at = value.get("resumes_at")
    return {"behavior": behavior, "resumes_at": as_int(resumes_at, "resumes_at") if resumes_at else None}


def collect_paused(inv: dict[str, Any], sub: dict[str, Any]) -> bool:
    """Stripe's pause_collection: the invoice is created but not charged (voided, left draft or uncollectible)."""
    pause = sub.get("pause_collection")
    if not pause or (pause.get("resumes_at") and pause["resumes_at"] <= now()):
        return False
    if pause["behavior"] == "void":
        void(inv)
    elif pause["behavior"] == "mark_uncollectible":
        inv["status"] = "uncollectible"
        inv["status_transitions"]["marked_uncollectible_at"] = now()
        emit(inv["_account"], "invoice.marked_uncollectible", export_invoice(inv))
    else:
        inv["status"] = "draft"
    return True


def make_discounts(
    account: str, specs: Any, *, subscription: str | None = None, customer: str | None = None
) -> list[dict[str, Any]]:
    """`discounts=[{coupon}]` (or "" for none) -> discount objects applied to every later invoice."""
    if specs in ("", None):
        return []
    if not isinstance(specs, list):
        raise StripeHTTPError(400, "discounts must be a list.", param="discounts")
    out = []
    for spec in specs:
        coupon_id = spec.get("coupon") if isinstance(spec, dict) else None
        if not coupon_id:
            raise StripeHTTPError(400, "Each discount needs a coupon.", param="discounts")
        coupon = coupon_of(account, str(coupon_id))
        months = coupon.get("duration_in_months")
        out.append(
            {
                "id": new_id("di_"),
                "object": "discount",
                "source": {"type": "coupon", "coupon": coupon["id"]},
                "subscription": subscription,
                "customer": customer,
                "start": now(),
                "end": add_interval(now(), "month", months) if coupon["duration"] == "repeating" and months else None,
                "_basis": round(float(coupon["percent_off"]) * 100),
                "_duration": coupon["duration"],
            }
        )
    return out


def coupon_of(account: str, coupon_id: str) -> dict[str, Any]:
    coupon = STATE["coupons"].get(account, {}).get(coupon_id)
    if coupon is None:
        raise missing("coupon", coupon_id)
    return coupon


# --- Subscription schedules: what the phase in force says (the API and the phase changes: schedules.py) -----


def active_schedule(sub: dict[str, Any]) -> dict[str, Any] | None:
    sched = STATE["schedules"].get(sub.get("schedule") or "")
    return sched if sched is not None and sched["status"] == "active" else None


def phase_at(phases: list[dict[str, Any]], ts: int) -> dict[str, Any] | None:
    return next((p for p in phases if p["start_date"] <= ts < p["end_date"]), None)


def item_specs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"price": i["price"], "quantity": i["quantity"]} for i in items]


def same_items(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    return sorted((i["price"], i["quantity"]) for i in a) == sorted((i["price"], i["quantity"]) for i in b)


def coupon_ids(discounts: list[dict[str, Any]] | None) -> list[str]:
    return [d["source"]["coupon"] for d in discounts or []]


def sync_schedule(sub: dict[str, Any]) -> None:
    """As in Stripe, a direct change of a scheduled subscription's items or discounts is its current phase's too."""
    sched = active_schedule(sub)
    phase = phase_at(sched["phases"], sub["current_period_start"]) if sched else None
    if sched is None or phase is None:
        return
    coupons = coupon_ids(sub.get("_discounts"))
    if same_items(phase["items"], sub["items"]) and sorted(d["coupon"] for d in phase["discounts"]) == sorted(coupons):
        return
    phase["items"], phase["discounts"] = item_specs(sub["items"]), [{"coupon": c} for c in coupons]
    emit(sub["_account"], "subscription_schedule.updated", export_schedule(sched))
