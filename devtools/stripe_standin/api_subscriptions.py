"""/v1/subscriptions, and the test helper that advances one to its next period."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from devtools.stripe_standin.core import (
    PENDING_UPDATE_TTL,
    STATE,
    StripeHTTPError,
    account_of,
    add_interval,
    as_bool,
    as_int,
    customer_of,
    export_subscription,
    form,
    json_ok,
    list_object,
    missing,
    new_id,
    now,
    price_of,
    product_name,
)
from devtools.stripe_standin.events import emit
from devtools.stripe_standin.invoices import charge_invoice, line, new_invoice
from devtools.stripe_standin.schedules import renew_into, schedule_canceled
from devtools.stripe_standin.subscriptions import (
    active_schedule,
    apply_items,
    change_lines,
    collect_paused,
    cycle,
    make_discounts,
    parse_pause_collection,
    resolve_items,
    subscription_of,
    sync_schedule,
    void,
)


async def create_subscription(request: web.Request) -> web.Response:
    account = account_of(request)
    data = await form(request)
    cus = customer_of(account, str(data.get("customer", "")))
    behavior = data.get("payment_behavior", "allow_incomplete")
    if behavior not in ("allow_incomplete", "error_if_incomplete", "default_incomplete", "pending_if_incomplete"):
        raise StripeHTTPError(400, "Invalid payment_behavior.", param="payment_behavior")
    if behavior == "pending_if_incomplete":
        raise StripeHTTPError(400, "pending_if_incomplete is only for updates.", param="payment_behavior")
    items = resolve_items(account, None, data.get("items") or [])
    interval, count = cycle(account, items)
    start = as_int(data["backdate_start_date"], "backdate_start_date") if data.get("backdate_start_date") else now()
    end = add_interval(start, interval, count)
    while end <= now():  # a backdated start: the current period is the one that contains now
        start, end = end, add_interval(end, interval, count)
    currency = price_of(account, items[0]["price"])["currency"]
    sub = {
        "id": new_id("sub_"),
        "object": "subscription",
        "customer": cus.id,
        "status": "incomplete",
        "created": now(),
        "start_date": start,
        "billing_cycle_anchor": start,
        "current_period_start": start,
        "current_period_end": end,
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "latest_invoice": None,
        "metadata": data.get("metadata") or {},
        "currency": currency,
        "collection_method": "charge_automatically",
        "livemode": False,
        "default_payment_method": None,
        "trial_end": None,
        "trial_start": None,
        "pause_collection": None,
        "schedule": None,
        "items": items,
        "_account": account,
        "_pending": None,
    }
    sub["_discounts"] = make_discounts(account, data.get("discounts"), subscription=sub["id"], customer=cus.id)
    lines = [
        line(
            sub_id=sub["id"],
            item_id=i["id"],
            price=STATE["prices"][i["price"]],
            quantity=i["quantity"],
            amount=STATE["prices"][i["price"]]["unit_amount"] * i["quantity"],
            start=start,
            end=end,
            proration=False,
            description=f"{i['quantity']} × {product_name(STATE['prices'][i['price']]['product'])}",
        )
        for i in items
    ]
    STATE["subscriptions"][sub["id"]] = sub
    inv = new_invoice(
        account,
        customer=cus.id,
        subscription=sub["id"],
        lines=lines,
        currency=currency,
        reason="subscription_create",
        period=(start, end),
        discounts=sub["_discounts"],
    )
    sub["latest_invoice"] = inv["id"]
    if behavior == "default_incomplete":
        emit(account, "customer.subscription.created", export_subscription(sub))
        return json_ok(export_subscription(sub))
    paid, error = charge_invoice(inv)
    if paid:
        sub["status"] = "active"
    elif behavior == "error_if_incomplete":
        void(inv)
        del STATE["subscriptions"][sub["id"]]
        raise StripeHTTPError(402, error["message"], **{k: v for k, v in error.items() if k != "message"})
    emit(account, "customer.subscription.created", export_subscription(sub))
    return json_ok(export_subscription(sub))


async def retrieve_subscription(request: web.Request) -> web.Response:
    return json_ok(export_subscription(subscription_of(account_of(request), request.match_info["id"])))


async def list_subscriptions(request: web.Request) -> web.Response:
    account = account_of(request)
    data = await form(request)
    subs = [s for s in STATE["subscriptions"].values() if s["_account"] == account]
    if data.get("customer"):
        subs = [s for s in subs if s["customer"] == data["customer"]]
    return json_ok(list_object([export_subscription(s) for s in subs], "/v1/subscriptions"))


async def update_subscription(request: web.Request) -> web.Response:
    account = account_of(request)
    sub = subscription_of(account, request.match_info["id"])
    data = await form(request)
    data.pop("expand", None)
    known = {
        "items",
        "proration_behavior",
        "proration_date",
        "payment_behavior",
        "cancel_at_period_end",
        "metadata",
        "cancel_at",
        "discounts",
        "pause_collection",
    }
    unknown = set(data) - known
    if unknown:  # Stripe rejects what it does not know; so do we (e.g. localstripe's old `prorate`)
        name = sorted(unknown)[0]
        raise StripeHTTPError(400, f"Received unknown parameter: {name}", param=name)
    if sub["status"] == "canceled":
        raise StripeHTTPError(400, "A canceled subscription can only update its metadata.", param="items")
    behavior = data.get("proration_behavior", "create_prorations")
    payment_behavior = data.get("payment_behavior", "allow_incomplete")
    if behavior not in ("always_invoice", "create_prorations", "none"):
        raise StripeHTTPError(400, "Invalid proration_behavior.", param="proration_behavior")
    if payment_behavior not in (
        "allow_incomplete",
        "error_if_incomplete",
        "default_incomplete",
        "pending_if_incomplete",
    ):
        raise StripeHTTPError(400, "Invalid payment_behavior.", param="payment_behavior")
    if payment_behavior == "pending_if_incomplete" and (
        {"metadata", "cancel_at_period_end", "cancel_at", "discounts", "pause_collection"} & set(data)
    ):
        raise StripeHTTPError(
            400, "pending_if_incomplete updates may only change items and proration.", param="payment_behavior"
        )
    sched = active_schedule(sub)
    if sched is not None:
        for name in ("cancel_at_period_end", "cancel_at"):
            if name in data:
                raise StripeHTTPError(
                    400,
                    f"The subscription is managed by the subscription schedule `{sched['id']}`, and updating any "
                    "cancelation behavior directly is not allowed. Please update the schedule instead.",
                    param=name,
                )
        if "items" in data and cycle(account, resolve_items(account, sub, data["items"])) != cycle(
            account, sub["items"]
        ):  # the schedule's phases end on the subscription's billing periods (schedules.py)
            raise StripeHTTPError(
                400,
                f"The stand-in does not change the billing interval of a subscription managed by the schedule "
                f"`{sched['id']}`.",
                param="items",
            )
    if sub.get("_pending") and "items" in data:
        raise StripeHTTPError(
            400, "This subscription has a pending update; pay or void its invoice first.", param="items"
        )
    previous: dict[str, Any] = {}
    if "cancel_at_period_end" in data:
        previous["cancel_at_period_end"] = sub["cancel_at_period_end"]
        sub["cancel_at_period_end"] = as_bool(data["cancel_at_period_end"])
        sub["cancel_at"] = sub["current_period_end"] if sub["cancel_at_period_end"] else None
    if data.get("metadata"):
        previous["metadata"] = dict(sub["metadata"])
        sub["metadata"].update(data["metadata"])
    if "pause_collection" in data:
        previous["pause_collection"] = sub.get("pause_collection")
        sub["pause_collection"] = parse_pause_collection(data["pause_collection"])
    if "discounts" in data:
        previous["discounts"] = [d["id"] for d in sub.get("_discounts") or []]
        sub["_discounts"] = make_discounts(account, data["discounts"], subscription=sub["id"], customer=sub["customer"])
    if "items" in data:
        at = as_int(data["proration_date"], "proration_date") if data.get("proration_date") else now()
        new_items = resolve_items(account, sub, data["items"])
        lines, period = change_lines(account, sub, new_items, at, behavior)
        invoice_now = lines and (behavior == "always_invoice" or period is not None)
        if not invoice_now:
            if lines:  # create_prorations: kept for the next invoice
                STATE["pending_items"].setdefault(sub["id"], []).extend(lines)
            previous.update(apply_items(sub, new_items, period))
        else:
            inv = new_invoice(
                account,
                customer=sub["customer"],
                subscription=sub["id"],
                lines=lines,
                currency=sub["currency"],
                reason="subscription_update",
                period=period or (at, sub["current_period_end"]),
                discounts=sub.get("_discounts"),
            )
            sub["latest_invoice"] = inv["id"]
            if collect_paused(inv, sub):
                paid, error = True, None  # nothing collected while paused; the change itself applies
            else:
                paid, error = charge_invoice(inv)
            if paid:
                previous.update(apply_items(sub, new_items, period))
            elif payment_behavior == "pending_if_incomplete":
                sub["_pending"] = {
                    "items": new_items,
                    "period": period,
                    "invoice": inv["id"],
                    "expires_at": now() + PENDING_UPDATE_TTL,
                    "anchor": period[0] if period else None,
                }
            elif payment_behavior == "error_if_incomplete":
                void(inv)
                raise StripeHTTPError(402, error["message"], **{k: v for k, v in error.items() if k != "message"})
            else:
                previous.update(apply_items(sub, new_items, period))
                previous["status"] = sub["status"]
                sub["status"] = "past_due"
    emit(
        account,
        "customer.subscription.updated",
        export_subscription(sub),
        previous or None,
        request.headers.get("Idempotency-Key"),
    )
    sync_schedule(sub)  # as in Stripe, the schedule's current phase follows the subscription's items and discounts
    return json_ok(export_subscription(sub))


async def cancel_subscription(request: web.Request) -> web.Response:
    account = account_of(request)
    sub = subscription_of(account, request.match_info["id"])
    end_subscription(sub)
    return json_ok(export_subscription(sub))


def end_subscription(sub: dict[str, Any]) -> None:
    if sub["status"] != "canceled":
        schedule_canceled(sub)
        sub.update(status="canceled", canceled_at=now(), ended_at=now())
        emit(sub["_account"], "customer.subscription.deleted", export_subscription(sub))


async def advance_subscription(request: web.Request) -> web.Response:
    """Roll a subscription into its next period, as Stripe does at the period end."""
    sub = STATE["subscriptions"].get(request.match_info["id"])
    if sub is None:
        raise missing("subscription", request.match_info["id"])
    if sub["cancel_at_period_end"]:
        end_subscription(sub)
        return json_ok(export_subscription(sub))
    interval, count = cycle(sub["_account"], sub["items"])
    start, end = sub["current_period_end"], add_interval(sub["current_period_end"], interval, count)
    # A schedule's phase for the new period gives its items and discounts (the phase's interval is the same).
    renews, previous = renew_into(sub, start)
    if not renews:  # the schedule ended with end_behavior `cancel`: the subscription ends at its period end
        end_subscription(sub)
        return json_ok(export_subscription(sub))
    previous["current_period_start"] = sub["current_period_start"]
    sub["current_period_start"], sub["current_period_end"] = start, end
    lines = STATE["pending_items"].pop(sub["id"], []) + [
        line(
            sub_id=sub["id"],
            item_id=i["id"],
            price=STATE["prices"][i["price"]],
            quantity=i["quantity"],
            amount=STATE["prices"][i["price"]]["unit_amount"] * i["quantity"],
            start=start,
            end=end,
            proration=False,
            description=f"{i['quantity']} × {product_name(STATE['prices'][i['price']]['product'])}",
        )
        for i in sub["items"]
    ]
    inv = new_invoice(
        sub["_account"],
        customer=sub["customer"],
        subscription=sub["id"],
        lines=lines,
        currency=sub["currency"],
        reason="subscription_cycle",
        period=(start, end),
        discounts=sub.get("_discounts"),
    )
    sub["latest_invoice"] = inv["id"]
    paid = collect_paused(inv, sub) or charge_invoice(inv)[0]
    if not paid:
        previous["status"] = sub["status"]
        sub["status"] = "past_due"
    emit(sub["_account"], "customer.subscription.updated", export_subscription(sub), previous)
    return json_ok(export_subscription(sub))
