"""Dev/test-only Stripe stand-in: localstripe, in process, behind a layer that speaks today's API.

    python -m billing.stripe_standin --port 8420 [--state-file var/stripe-standin.pickle | --from-scratch]

Production code never talks to this differently from Stripe: it sends the current API
(the version the pinned `stripe` library speaks) and this layer answers it. localstripe
(an older dialect: Plans, one item per subscription, `prorate`, no `payment_behavior`,
a proration that credits the whole last invoice) keeps customers, payment methods,
products, payment intents and charges, and its card simulation (declines, 3-D Secure).
This layer owns what localstripe gets wrong or lacks:

- Prices (`/v1/prices`, with `lookup_keys`), subscriptions with several items and
  per-item periods, `proration_behavior` (`always_invoice`, `create_prorations`, `none`),
  `proration_date`, `payment_behavior="pending_if_incomplete"` (the update is applied
  only when its invoice is paid; otherwise `pending_update` is set), interval changes
  that reset the cycle, `invoices/create_preview`, `invoices/{id}/pay|void`,
  `invoice_payments`, `Idempotency-Key` replay (same key + same body = same answer),
  percent-off coupons (`/v1/coupons`) and subscription `discounts` (every invoice line
  discounted, rounded once), `pause_collection` (invoices voided / left draft / uncollectible).
- Proration as Stripe computes it, written independently of billing/proration.py so the
  two cross-check each other: by the second, unused time credited, remaining time charged.
- Objects are scoped to the secret key that created them (one key = one Stripe account),
  localstripe's own charges, payment intents, payment methods, refunds, products and setup
  intents included (owner recorded at creation, or derived from their customer); other
  localstripe resources are refused rather than served unscoped.
- Webhooks: `POST /_config/webhooks/{id}` (url, secret, optional events, and optional
  `api_key` to receive only that account's events), signed like Stripe
  (`Stripe-Signature: t=...,v1=HMAC-SHA256(secret, "t.payload")`), retried on failure.
- Test helpers under `/_standin/`: set a customer's card on file (`customers/{id}/card`),
  list and re-deliver events, advance a subscription to its next period.

Card numbers: 4242424242424242 pays; 4000000000000002 and 4000000000009995 are declined
when charged; 4000002500003155 requires authentication.
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import hashlib
import hmac
import json
import logging
import os
import pickle
import secrets
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from localstripe import resources as ls
from localstripe import server as ls_server
from localstripe import webhooks as ls_webhooks
from localstripe.errors import UserError

API_VERSION = "2025-10-29.clover"
PENDING_UPDATE_TTL = 23 * 3600
EXTRA_DECLINED_ON_CHARGE = {"4000000000000002", "4000000000009995"}
log = logging.getLogger("stripe_standin")


# --- State --------------------------------------------------------------------------------------

STATE: dict[str, Any] = {}


def reset_state() -> None:
    STATE.clear()
    STATE.update(
        prices={},
        subscriptions={},
        invoices={},
        events=[],
        idempotency={},
        owners={},
        pending_items={},
        webhook_accounts={},
        balances={},
        coupons={},
    )
    ls.store.clear()
    ls_webhooks._webhooks.clear()


reset_state()
_state_file: Path | None = None


def _save() -> None:
    if _state_file is None:
        return
    blob = {"standin": STATE, "localstripe": dict(ls.store), "webhooks": dict(ls_webhooks._webhooks)}
    tmp = _state_file.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(blob, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(_state_file)


def _load(path: Path) -> None:
    if not path.exists():
        return
    with path.open("rb") as fh:
        blob = pickle.load(fh)  # noqa: S301 - our own dev-only state file
    STATE.update(blob["standin"])
    STATE.setdefault("coupons", {})
    dict.update(ls.store, blob["localstripe"])
    ls_webhooks._webhooks.update(blob["webhooks"])
    for price in STATE["prices"].values():  # state files from before products were scoped
        STATE["owners"].setdefault(price["product"], price["_account"])


# localstripe writes its whole store to /tmp/localstripe.pickle on every change, which
# parallel stand-ins would share. We keep its objects in our own state file instead.
ls.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
ls.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]

_orig_charging_is_declined = ls.PaymentMethod._charging_is_declined


def _charging_is_declined(self: Any) -> bool:
    # Stripe declines 4000000000000002 when charged; localstripe only refuses to attach it.
    number = getattr(self, "_card_number", "")
    return bool(_orig_charging_is_declined(self)) or number in EXTRA_DECLINED_ON_CHARGE


ls.PaymentMethod._charging_is_declined = _charging_is_declined  # type: ignore[method-assign]


def now() -> int:
    return int(time.time())


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(8)


class StripeHTTPError(Exception):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message, **extra}}


def missing(kind: str, obj_id: str) -> StripeHTTPError:
    return StripeHTTPError(404, f"No such {kind}: '{obj_id}'", code="resource_missing", param="id")


# --- Time and money -----------------------------------------------------------------------------


def add_interval(ts: int, interval: str, count: int) -> int:
    start = datetime.fromtimestamp(ts, tz=UTC)
    months = count * (12 if interval == "year" else 1)
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def share(amount: int, part: int, whole: int) -> int:
    """amount * part / whole, rounded half away from zero (integers only)."""
    sign = -1 if amount < 0 else 1
    return sign * ((2 * abs(amount) * part + whole) // (2 * whole))


def as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeHTTPError(400, f"Invalid integer: {value!r}", param=name) from None


def as_bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


# --- Exports (the current API's shapes) ---------------------------------------------------------


def list_object(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "url": url, "total_count": len(data)}


def export_price(price: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in price.items() if not k.startswith("_")}


def price_of(account: str, price_id: str) -> dict[str, Any]:
    price = STATE["prices"].get(price_id)
    if price is None or price["_account"] != account:
        raise missing("price", price_id)
    return price


def product_name(product_id: str) -> str:
    try:
        return ls.Product._api_retrieve(product_id).name
    except UserError:
        return product_id


def export_item(sub: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    price = STATE["prices"][item["price"]]
    return {
        "id": item["id"],
        "object": "subscription_item",
        "created": item["created"],
        "metadata": {},
        "price": export_price(price),
        "quantity": item["quantity"],
        "subscription": sub["id"],
        "current_period_start": sub["current_period_start"],
        "current_period_end": sub["current_period_end"],
        "discounts": [],
        "tax_rates": [],
        "billing_thresholds": None,
    }


def export_subscription(sub: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in sub.items() if not k.startswith("_") and k not in ("items",)}
    out.setdefault("pause_collection", None)
    out["discounts"] = [d["id"] for d in sub.get("_discounts") or []]
    out["items"] = list_object(
        [export_item(sub, i) for i in sub["items"]], f"/v1/subscription_items?subscription={sub['id']}"
    )
    pending = sub.get("_pending")
    out["pending_update"] = (
        None
        if pending is None
        else {
            "expires_at": pending["expires_at"],
            "billing_cycle_anchor": pending.get("anchor"),
            "subscription_items": [export_item(sub, i) for i in pending["items"]],
            "trial_end": None,
            "trial_from_plan": None,
        }
    )
    return out


def export_invoice(inv: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in inv.items() if not k.startswith("_") and k != "lines"}
    out["lines"] = list_object(inv["lines"], f"/v1/invoices/{inv['id']}/lines")
    return out


# --- Events and webhook delivery ---------------------------------------------------------------


def emit(
    account: str | None,
    type_: str,
    obj: dict[str, Any],
    previous: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    event = {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": now(),
        "livemode": False,
        "type": type_,
        "data": {"object": obj, **({"previous_attributes": previous} if previous else {})},
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": idempotency_key},
        "_account": account,
    }
    STATE["events"].append(event)
    try:
        task = asyncio.get_running_loop().create_task(deliver(event))
    except RuntimeError:  # no loop (unit use): nothing to deliver
        return event
    _deliveries.add(task)  # keep a reference until it is done, or the loop may drop it
    task.add_done_callback(_deliveries.discard)
    return event


_deliveries: set[asyncio.Task[None]] = set()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


async def deliver(event: dict[str, Any], *, delay: float | None = None, attempts: int = 10) -> None:
    """Like Stripe, retry with growing pauses (compressed: ~2 minutes rather than 3 days), so events sent
    while the receiving server is still starting (e.g. during `make run`'s seeding) arrive later."""
    await asyncio.sleep(WEBHOOK_DELAY if delay is None else delay)
    payload = json.dumps({k: v for k, v in event.items() if not k.startswith("_")}).encode()
    for hook_id, hook in list(ls_webhooks._webhooks.items()):
        hook_account = STATE["webhook_accounts"].get(hook_id)
        if hook_account and event["_account"] and hook_account != event["_account"]:
            continue
        if hook.events is not None and event["type"] not in hook.events:
            continue
        for attempt in range(attempts):
            # Like Stripe, every attempt is signed afresh with the time it is sent.
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": sign(payload, hook.secret, now()),
            }
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(
                        hook.url, data=payload, headers=headers, timeout=aiohttp.ClientTimeout(total=15)
                    ) as response,
                ):
                    if 200 <= response.status < 300:
                        break
                    log.info("webhook %s to %s answered %s", event["type"], hook.url, response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("webhook %s to %s failed: %s", event["type"], hook.url, exc)
            await asyncio.sleep(min(0.5 * 2**attempt, 30))


def _forward_localstripe_event(event: Any) -> None:
    # localstripe's own events carry its old shapes; forward only customer.* (re-exported).
    if not event.type.startswith("customer."):
        return
    customer_id = event.data["object"].get("id", "")
    emit(STATE["owners"].get(customer_id), event.type, export_customer(customer_id))


ls.schedule_webhook = _forward_localstripe_event  # resources.py calls it by this module-level name


# --- Customers and payments ---------------------------------------------------------------------


def export_customer(customer_id: str) -> dict[str, Any]:
    cus = ls.Customer._api_retrieve(customer_id)
    return {
        "id": cus.id,
        "object": "customer",
        "created": cus.created,
        "email": cus.email,
        "name": cus.name,
        "metadata": cus.metadata,
        "delinquent": cus.delinquent,
        "livemode": False,
        "description": cus.description,
        "balance": STATE["balances"].get(cus.id, 0),
        "currency": None,
        "invoice_settings": {
            "default_payment_method": cus.invoice_settings.get("default_payment_method"),
            "custom_fields": None,
            "footer": None,
            "rendering_options": None,
        },
    }


def customer_of(account: str, customer_id: str) -> Any:
    if STATE["owners"].get(customer_id) != account:
        raise missing("customer", customer_id)
    return ls.Customer._api_retrieve(customer_id)


def charge_invoice(inv: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """Try to collect the invoice's amount due. Returns (paid, error body for a 402)."""
    inv["attempted"] = True
    inv["attempt_count"] += 1
    due = inv["amount_remaining"]
    if due <= 0:
        mark_paid(inv)
        return True, None
    cus = ls.Customer._api_retrieve(inv["customer"])
    pm = cus._get_default_payment_method_or_source()
    if pm is None:
        intent = ls.PaymentIntent(amount=due, currency=inv["currency"], customer=cus.id)
        STATE["owners"][intent.id] = inv["_account"]
        inv["_payments"].append(intent.id)
        emit(inv["_account"], "invoice.payment_failed", export_invoice(inv))
        return False, {
            "type": "card_error",
            "code": "payment_method_required",
            "message": "The customer has no default payment method.",
        }
    intent = ls.PaymentIntent(amount=due, currency=inv["currency"], customer=cus.id, payment_method=pm.id)
    STATE["owners"][intent.id] = inv["_account"]
    intent._confirm(on_failure_now=lambda: None)
    inv["_payments"].append(intent.id)
    if intent.status == "succeeded":
        mark_paid(inv)
        return True, None
    if intent.status == "requires_action":
        emit(inv["_account"], "invoice.payment_action_required", export_invoice(inv))
        error = {
            "type": "card_error",
            "code": "authentication_required",
            "message": "This payment requires authentication.",
            "payment_intent": {"id": intent.id},
        }
    else:
        failure = intent.last_payment_error or {}
        error = {
            "type": "card_error",
            "code": failure.get("code") or "card_declined",
            "decline_code": "generic_decline",
            "message": failure.get("message") or "Your card was declined.",
            "charge": failure.get("charge"),
        }
    emit(inv["_account"], "invoice.payment_failed", export_invoice(inv))
    return False, error


def mark_paid(inv: dict[str, Any]) -> None:
    inv["status"] = "paid"
    inv["amount_paid"] = inv["amount_due"]
    inv["amount_remaining"] = 0
    inv["status_transitions"]["paid_at"] = now()
    emit(inv["_account"], "invoice.paid", export_invoice(inv))
    emit(inv["_account"], "invoice.payment_succeeded", export_invoice(inv))


def new_invoice(
    account: str,
    *,
    customer: str,
    subscription: str | None,
    lines: list[dict[str, Any]],
    currency: str,
    reason: str,
    period: tuple[int, int],
    preview: bool = False,
    discounts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    invoice_id = ("upcoming_in_" if preview else "in_") + secrets.token_hex(8)
    in_force = [d for d in discounts or [] if d.get("end") is None or d["end"] > now()]
    for line in lines:
        line["invoice"] = None if preview else invoice_id
        line["discount_amounts"] = [
            {"amount": share(line["amount"], d["_basis"], 10_000), "discount": d["id"]}
            for d in in_force
            if line.get("discountable", True)
        ]
    subtotal = sum(line["amount"] for line in lines)
    discounted = sum(da["amount"] for line in lines for da in line["discount_amounts"])
    balance = STATE["balances"].get(customer, 0)  # negative = credit the customer holds
    total = subtotal - discounted
    applied = max(balance, -total) if total > 0 else 0
    due = max(total + applied, 0)
    inv = {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "currency": currency,
        "livemode": False,
        "created": now(),
        "status": "draft",
        "billing_reason": reason,
        "collection_method": "charge_automatically",
        "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal,
        "total": total,
        "total_excluding_tax": total,
        "discounts": [d["id"] for d in in_force],
        "total_discount_amounts": [
            {
                "amount": sum(
                    da["amount"] for line in lines for da in line["discount_amounts"] if da["discount"] == d["id"]
                ),
                "discount": d["id"],
            }
            for d in in_force
        ],
        "amount_due": due,
        "amount_paid": 0,
        "amount_remaining": due,
        "amount_overpaid": 0,
        "amount_shipping": 0,
        "starting_balance": balance,
        "ending_balance": None,
        "attempted": False,
        "attempt_count": 0,
        "period_start": period[0],
        "period_end": period[1],
        "metadata": {},
        "number": None,
        "parent": None
        if subscription is None
        else {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"subscription": subscription, "metadata": {}},
        },
        "status_transitions": {
            "finalized_at": None,
            "paid_at": None,
            "voided_at": None,
            "marked_uncollectible_at": None,
        },
        "lines": lines,
        "_account": account,
        "_payments": [],
    }
    if not preview:
        # Credit is consumed, and a negative total becomes more credit (Stripe never refunds it here).
        STATE["balances"][customer] = min(balance + total, 0) if total < 0 else balance - applied
        for d in in_force:  # a `once` coupon is spent by the first invoice it discounts
            if d["_duration"] == "once":
                d["end"] = now()
        inv["ending_balance"] = STATE["balances"][customer]
        inv["status"] = "open"
        inv["number"] = f"SI-{len(STATE['invoices']) + 1:05d}"
        inv["status_transitions"]["finalized_at"] = now()
        STATE["invoices"][invoice_id] = inv
        emit(account, "invoice.created", export_invoice(inv))
        emit(account, "invoice.finalized", export_invoice(inv))
    return inv


def line(
    *,
    sub_id: str | None,
    item_id: str | None,
    price: dict[str, Any],
    quantity: int,
    amount: int,
    start: int,
    end: int,
    proration: bool,
    description: str,
) -> dict[str, Any]:
    return {
        "id": new_id("il_"),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": description,
        "period": {"start": start, "end": end},
        "quantity": quantity,
        "livemode": False,
        "metadata": {},
        "discountable": True,
        "discounts": [],
        "discount_amounts": [],
        "subscription": sub_id,
        "taxes": [],
        "pretax_credit_amounts": [],
        "parent": {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "proration": proration,
                "subscription": sub_id,
                "subscription_item": item_id,
                "invoice_item": None,
                "proration_details": {"credited_items": None},
            },
        },
        "pricing": {
            "type": "price_details",
            "unit_amount_decimal": str(price["unit_amount"]),
            "price_details": {"price": price["id"], "product": price["product"]},
        },
    }


def day(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%d %b %Y")


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
                lines.append(
                    line(
                        sub_id=sub["id"],
                        item_id=item["id"],
                        price=price,
                        quantity=item["quantity"],
                        amount=-amount,
                        start=at,
                        end=end,
                        proration=True,
                        description=f"Unused time on {item['quantity']} × "
                        f"{product_name(price['product'])} after {day(at)}",
                    )
                )
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


# --- Handlers -----------------------------------------------------------------------------------


def account_of(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    key = header.split(" ", 1)[1] if header.startswith("Bearer ") else ""
    if not key.startswith("sk_"):
        raise StripeHTTPError(401, "Invalid API Key provided.", type_="invalid_request_error")
    return key


async def form(request: web.Request) -> dict[str, Any]:
    if request.method == "GET":
        return ls_server.unflatten_data(request.query) or {}
    return await ls_server.get_post_data(request) or {}


def json_ok(body: dict[str, Any]) -> web.Response:
    return web.json_response(body)


async def create_customer(request: web.Request) -> web.Response:
    account = account_of(request)
    data = await form(request)
    data.pop("expand", None)
    try:
        cus = ls.Customer._api_create(**data)
    except UserError as exc:
        raise StripeHTTPError(exc.code, exc.body["error"].get("message", "Bad request")) from None
    STATE["owners"][cus.id] = account
    return json_ok(export_customer(cus.id))


async def retrieve_customer(request: web.Request) -> web.Response:
    cus = customer_of(account_of(request), request.match_info["id"])
    return json_ok(export_customer(cus.id))


async def update_customer(request: web.Request) -> web.Response:
    account = account_of(request)
    cus = customer_of(account, request.match_info["id"])
    data = await form(request)
    try:
        ls.Customer._api_update(cus.id, **data)
    except UserError as exc:
        raise StripeHTTPError(exc.code, exc.body["error"].get("message", "Bad request")) from None
    return json_ok(export_customer(cus.id))


async def create_price(request: web.Request) -> web.Response:
    account = account_of(request)
    data = await form(request)
    recurring = data.get("recurring") or {}
    interval = recurring.get("interval")
    if interval not in ("day", "week", "month", "year"):
        raise StripeHTTPError(400, "recurring[interval] must be day, week, month or year.", param="recurring")
    if not data.get("product") or not data.get("currency"):
        raise StripeHTTPError(400, "product and currency are required.", param="product")
    scoped_object(account, "products", str(data["product"]))
    lookup_key = data.get("lookup_key")
    if lookup_key and any(p["lookup_key"] == lookup_key and p["_account"] == account for p in STATE["prices"].values()):
        raise StripeHTTPError(400, f"A price with lookup_key {lookup_key!r} already exists.", param="lookup_key")
    price = {
        "id": new_id("price_"),
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": now(),
        "currency": str(data["currency"]).lower(),
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": data.get("metadata") or {},
        "nickname": data.get("nickname"),
        "product": data["product"],
        "recurring": {
            "interval": interval,
            "interval_count": as_int(recurring.get("interval_count", 1), "recurring[interval_count]"),
            "usage_type": "licensed",
            "meter": None,
            "trial_period_days": None,
        },
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": as_int(data.get("unit_amount"), "unit_amount"),
        "custom_unit_amount": None,
        "_account": account,
    }
    price["unit_amount_decimal"] = str(price["unit_amount"])
    STATE["prices"][price["id"]] = price
    emit(account, "price.created", export_price(price))
    return json_ok(export_price(price))


async def create_coupon(request: web.Request) -> web.Response:
    account = account_of(request)
    data = await form(request)
    unknown = set(data) - {"id", "percent_off", "duration", "duration_in_months", "name", "metadata", "expand"}
    if unknown:  # amount_off, currency_options, applies_to...: not simulated here
        name = sorted(unknown)[0]
        raise StripeHTTPError(400, f"Received unknown parameter: {name}", param=name)
    try:
        percent = float(data.get("percent_off", ""))
    except ValueError:
        raise StripeHTTPError(400, "percent_off is required (0 < percent_off <= 100).", param="percent_off") from None
    if not 0 < percent <= 100:
        raise StripeHTTPError(400, "percent_off must be more than 0 and at most 100.", param="percent_off")
    duration = data.get("duration", "once")
    if duration not in ("forever", "once", "repeating"):
        raise StripeHTTPError(400, "duration must be forever, once or repeating.", param="duration")
    coupon_id = str(data.get("id") or secrets.token_hex(4))
    coupons = STATE["coupons"].setdefault(account, {})
    if coupon_id in coupons:
        raise StripeHTTPError(400, "Coupon already exists.", code="resource_already_exists", param="id")
    coupons[coupon_id] = {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": None,
        "created": now(),
        "currency": None,
        "duration": duration,
        "duration_in_months": as_int(data["duration_in_months"], "duration_in_months")
        if data.get("duration_in_months")
        else None,
        "livemode": False,
        "max_redemptions": None,
        "metadata": data.get("metadata") or {},
        "name": data.get("name"),
        "percent_off": percent,
        "redeem_by": None,
        "times_redeemed": 0,
        "valid": True,
    }
    return json_ok(coupons[coupon_id])


async def retrieve_coupon(request: web.Request) -> web.Response:
    return json_ok(coupon_of(account_of(request), request.match_info["id"]))


async def retrieve_price(request: web.Request) -> web.Response:
    return json_ok(export_price(price_of(account_of(request), request.match_info["id"])))


async def update_price(request: web.Request) -> web.Response:
    account = account_of(request)
    price = price_of(account, request.match_info["id"])
    data = await form(request)
    unknown = set(data) - {"active", "metadata", "nickname", "lookup_key"}
    if unknown:
        raise StripeHTTPError(400, f"Received unknown parameter: {sorted(unknown)[0]}", param=sorted(unknown)[0])
    if "active" in data:
        price["active"] = as_bool(data["active"])
    price["metadata"].update(data.get("metadata") or {})
    emit(account, "price.updated", export_price(price))
    return json_ok(export_price(price))


async def list_prices(request: web.Request) -> web.Response:
    account = account_of(request)
    data = await form(request)
    prices = [p for p in STATE["prices"].values() if p["_account"] == account]
    if data.get("lookup_keys"):
        keys = data["lookup_keys"] if isinstance(data["lookup_keys"], list) else [data["lookup_keys"]]
        prices = [p for p in prices if p["lookup_key"] in keys]
    if data.get("product"):
        prices = [p for p in prices if p["product"] == data["product"]]
    if "active" in data:
        prices = [p for p in prices if p["active"] == as_bool(data["active"])]
    limit = as_int(data.get("limit", 10), "limit")
    return json_ok(list_object([export_price(p) for p in prices[:limit]], "/v1/prices"))


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
    return json_ok(export_subscription(sub))


async def cancel_subscription(request: web.Request) -> web.Response:
    account = account_of(request)
    sub = subscription_of(account, request.match_info["id"])
    end_subscription(sub)
    return json_ok(export_subscription(sub))


def end_subscription(sub: dict[str, Any]) -> None:
    if sub["status"] != "canceled":
        sub.update(status="canceled", canceled_at=now(), ended_at=now())
        emit(sub["_account"], "customer.subscription.deleted", export_subscription(sub))


async def preview_invoice(request: web.Request) -> web.Response:
    account = account_of(request)
    data = await form(request)
    cus = customer_of(account, str(data.get("customer", "")))
    details = data.get("subscription_details") or {}
    behavior = details.get("proration_behavior", "create_prorations")
    at = (
        as_int(details["proration_date"], "subscription_details[proration_date]")
        if details.get("proration_date")
        else now()
    )
    if data.get("subscription"):
        sub = subscription_of(account, data["subscription"])
        new_items = resolve_items(account, sub, details.get("items") or [])
        lines, period = change_lines(account, sub, new_items, at, behavior)
        if behavior != "always_invoice" and period is None:
            # The upcoming renewal: the new items for the next period plus pending prorations.
            interval, count = cycle(account, new_items)
            start, end = sub["current_period_end"], add_interval(sub["current_period_end"], interval, count)
            lines = lines + [
                line(
                    sub_id=sub["id"],
                    item_id=i["id"],
                    price=STATE["prices"][i["price"]],
                    quantity=i["quantity"],
                    start=start,
                    end=end,
                    proration=False,
                    amount=STATE["prices"][i["price"]]["unit_amount"] * i["quantity"],
                    description=f"{i['quantity']} × {product_name(STATE['prices'][i['price']]['product'])}",
                )
                for i in new_items
            ]
        inv = new_invoice(
            account,
            customer=cus.id,
            subscription=sub["id"],
            lines=lines,
            currency=sub["currency"],
            reason="subscription_update",
            period=period or (at, sub["current_period_end"]),
            preview=True,
            discounts=sub.get("_discounts"),
        )
    else:
        items = resolve_items(account, None, details.get("items") or [])
        interval, count = cycle(account, items)
        end = add_interval(at, interval, count)
        lines = [
            line(
                sub_id=None,
                item_id=None,
                price=STATE["prices"][i["price"]],
                quantity=i["quantity"],
                amount=STATE["prices"][i["price"]]["unit_amount"] * i["quantity"],
                start=at,
                end=end,
                proration=False,
                description=f"{i['quantity']} × {product_name(STATE['prices'][i['price']]['product'])}",
            )
            for i in items
        ]
        inv = new_invoice(
            account,
            customer=cus.id,
            subscription=None,
            lines=lines,
            currency=STATE["prices"][items[0]["price"]]["currency"],
            reason="subscription_create",
            period=(at, end),
            preview=True,
            discounts=make_discounts(account, details.get("discounts") or data.get("discounts"), customer=cus.id),
        )
    return json_ok(export_invoice(inv))


async def retrieve_invoice(request: web.Request) -> web.Response:
    return json_ok(export_invoice(invoice_of(account_of(request), request.match_info["id"])))


async def list_invoices(request: web.Request) -> web.Response:
    account = account_of(request)
    data = await form(request)
    invoices = [i for i in STATE["invoices"].values() if i["_account"] == account]
    if data.get("customer"):
        invoices = [i for i in invoices if i["customer"] == data["customer"]]
    if data.get("subscription"):
        invoices = [
            i
            for i in invoices
            if (i.get("parent") or {}).get("subscription_details", {}).get("subscription") == data["subscription"]
        ]
    if data.get("status"):
        invoices = [i for i in invoices if i["status"] == data["status"]]
    invoices.sort(key=lambda i: i["created"], reverse=True)
    limit = as_int(data.get("limit", 10), "limit")
    return json_ok(list_object([export_invoice(i) for i in invoices[:limit]], "/v1/invoices"))


async def pay_invoice(request: web.Request) -> web.Response:
    account = account_of(request)
    inv = invoice_of(account, request.match_info["id"])
    sub_id = (inv.get("parent") or {}).get("subscription_details", {}).get("subscription")
    if sub_id:
        subscription_of(account, sub_id)  # expires a stale pending update (and voids this invoice)
    if inv["status"] == "paid":
        raise StripeHTTPError(400, "Invoice is already paid.", code="invoice_already_paid")
    if inv["status"] != "open":
        raise StripeHTTPError(400, f"You cannot pay an invoice with status {inv['status']}.", code="invoice_not_open")
    paid, error = charge_invoice(inv)
    if not paid:
        raise StripeHTTPError(402, error["message"], **{k: v for k, v in error.items() if k != "message"})
    after_invoice_paid(inv)
    return json_ok(export_invoice(inv))


async def void_invoice(request: web.Request) -> web.Response:
    account = account_of(request)
    inv = invoice_of(account, request.match_info["id"])
    if inv["status"] != "open":
        raise StripeHTTPError(400, f"You cannot void an invoice with status {inv['status']}.")
    void(inv)
    for sub in STATE["subscriptions"].values():
        if (sub.get("_pending") or {}).get("invoice") == inv["id"]:
            sub["_pending"] = None
            emit(account, "customer.subscription.updated", export_subscription(sub))
    return json_ok(export_invoice(inv))


async def list_invoice_payments(request: web.Request) -> web.Response:
    account = account_of(request)
    data = await form(request)
    inv = invoice_of(account, str(data.get("invoice", "")))
    out = []
    for intent_id in reversed(inv["_payments"]):
        intent = ls.PaymentIntent._api_retrieve(intent_id)
        status = "paid" if intent.status == "succeeded" else "open"
        out.append(
            {
                "id": "inpay_" + intent_id[3:],
                "object": "invoice_payment",
                "invoice": inv["id"],
                "amount_paid": intent.amount if status == "paid" else None,
                "amount_requested": intent.amount,
                "currency": intent.currency,
                "created": intent.created,
                "is_default": True,
                "livemode": False,
                "status": status,
                "payment": {"type": "payment_intent", "payment_intent": intent_id},
                "status_transitions": {"canceled_at": None, "paid_at": None},
            }
        )
    return json_ok(list_object(out, "/v1/invoice_payments"))


# Test and demo helpers (not Stripe) -------------------------------------------------------------


async def set_card(request: web.Request) -> web.Response:
    """Put a card on file as the default, skipping attach checks: a card that starts failing later."""
    cus = ls.Customer._api_retrieve(request.match_info["id"])
    data = await form(request)
    number = str(data.get("number", ""))
    pm = ls.PaymentMethod(type="card", card={"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"})
    pm.customer = cus.id
    ls.Customer._api_update(cus.id, invoice_settings={"default_payment_method": pm.id})
    return json_ok({"payment_method": pm.id, "customer": cus.id})


async def list_events(request: web.Request) -> web.Response:
    data = await form(request)
    events = [e for e in STATE["events"] if not data.get("type") or e["type"] == data["type"]]
    return json_ok(
        list_object([{k: v for k, v in e.items() if not k.startswith("_")} for e in events], "/_standin/events")
    )


async def redeliver_event(request: web.Request) -> web.Response:
    event = next((e for e in STATE["events"] if e["id"] == request.match_info["id"]), None)
    if event is None:
        raise missing("event", request.match_info["id"])
    await deliver(event, delay=0)
    return json_ok({"delivered": event["id"]})


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
    previous = {"current_period_start": sub["current_period_start"]}
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


async def config_webhook(request: web.Request) -> web.Response:
    data = await form(request)
    url, secret, events = data.get("url"), data.get("secret"), data.get("events")
    if (
        not url
        or not secret
        or not str(url).startswith("http")
        or (events is not None and not isinstance(events, list))
    ):
        raise StripeHTTPError(400, "url (http...) and secret are required; events must be a list.")
    ls_webhooks.register_webhook(request.match_info["id"], url, secret, events)
    STATE["webhook_accounts"][request.match_info["id"]] = data.get("api_key") or None
    return web.Response()


async def flush(request: web.Request) -> web.Response:
    reset_state()
    return web.Response()


# --- Middlewares: errors, idempotency, persistence, fall-through to localstripe ----------------


@web.middleware
async def errors_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except StripeHTTPError as exc:
        return web.json_response(exc.body, status=exc.status)
    except UserError as exc:
        return exc.to_response()


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or request.path.startswith(("/_config", "/_standin")):
        return await handler(request)
    body = await request.read()
    slot = (request.headers.get("Authorization", ""), key)
    fingerprint = hashlib.sha256(request.method.encode() + request.path.encode() + body).hexdigest()
    stored = STATE["idempotency"].get(slot)
    if stored is not None:
        if stored["fingerprint"] != fingerprint:
            raise StripeHTTPError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                type_="idempotency_error",
            )
        if stored.get("running"):
            raise StripeHTTPError(
                409,
                "There is currently another in-progress request using this Idempotent Key.",
                type_="idempotency_error",
            )
        return web.Response(
            body=stored["body"],
            status=stored["status"],
            content_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    STATE["idempotency"][slot] = {"fingerprint": fingerprint, "running": True}
    try:
        response = await handler(request)
    except StripeHTTPError as exc:
        response = web.json_response(exc.body, status=exc.status)
    except UserError as exc:
        response = exc.to_response()
    # Like Stripe: results of requests that ran are kept (including card errors); validation failures are not.
    if response.status < 400 or response.status == 402:
        STATE["idempotency"][slot] = {"fingerprint": fingerprint, "status": response.status, "body": response.body}
    else:
        del STATE["idempotency"][slot]
    return response


@web.middleware
async def persist_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    finally:
        if request.method in ("POST", "DELETE"):
            _save()


# localstripe's own resources, reachable through this layer only scoped to the key's account: an object is
# visible to the account that created it, or whose customer (or charge / payment intent) it belongs to.
SCOPED_RESOURCES: dict[str, Any] = {
    "charges": ls.Charge,
    "payment_intents": ls.PaymentIntent,
    "payment_methods": ls.PaymentMethod,
    "refunds": ls.Refund,
    "products": ls.Product,
    "setup_intents": ls.SetupIntent,
}
LIST_FILTERS = {"customer", "payment_intent", "charge", "type", "active"}


def owner_of(obj: Any, _depth: int = 0) -> str | None:
    """The account (secret key) an object of localstripe's belongs to; None: nobody's (invisible)."""
    direct = STATE["owners"].get(obj.id)
    if direct:
        return direct
    customer = getattr(obj, "customer", None)
    if isinstance(customer, str) and customer:
        return STATE["owners"].get(customer)
    for ref, cls in (("charge", ls.Charge), ("payment_intent", ls.PaymentIntent)):
        ref_id = getattr(obj, ref, None)
        if isinstance(ref_id, str) and ref_id and _depth < 2:
            try:
                return owner_of(cls._api_retrieve(ref_id), _depth + 1)
            except UserError:
                return None
    return None


def scoped_object(account: str, collection: str, obj_id: str) -> Any:
    cls = SCOPED_RESOURCES[collection]
    try:
        obj = cls._api_retrieve(obj_id)
    except UserError:
        raise missing(cls.object, obj_id) from None
    if owner_of(obj) != account:
        raise missing(cls.object, obj_id)  # another account's object does not exist for this key
    return obj


def scoped_list(account: str, collection: str, data: dict[str, Any], url: str) -> web.Response:
    cls = SCOPED_RESOURCES[collection]
    data.pop("expand", None)
    limit = as_int(data.pop("limit", 10), "limit")
    data.pop("starting_after", None)
    unknown = set(data) - LIST_FILTERS
    if unknown:
        name = sorted(unknown)[0]
        raise StripeHTTPError(400, f"Received unknown parameter: {name}", param=name)
    if data.get("customer"):
        customer_of(account, str(data["customer"]))  # 404 for a customer of another account
    objects = [
        obj
        for key, obj in ls.store.items()
        if key.startswith(cls.object + ":")
        and owner_of(obj) == account
        and all(str(getattr(obj, name, None)) == str(value) for name, value in data.items() if name != "active")
        and ("active" not in data or bool(getattr(obj, "active", True)) == as_bool(data["active"]))
    ]
    objects.sort(key=lambda o: o.created, reverse=True)
    return json_ok(list_object([o._export() for o in objects[: max(1, min(limit, 100))]], url))


def check_references(account: str, data: dict[str, Any]) -> None:
    """A new object may only point at the key's own customer, charge, payment intent or payment method."""
    if data.get("customer"):
        customer_of(account, str(data["customer"]))
    for name, collection in (("charge", "charges"), ("payment_intent", "payment_intents")):
        if data.get(name):
            scoped_object(account, collection, str(data[name]))
    payment_method = str(data.get("payment_method") or "")
    if ls.store.get(f"payment_method:{payment_method}") is not None:  # test tokens (pm_card_visa) are not objects
        scoped_object(account, "payment_methods", payment_method)


async def localstripe_fallback(request: web.Request) -> web.StreamResponse:
    """What this layer does not own goes to localstripe's own handlers (with its middlewares), scoped per key.

    Under /v1/ only the resources in SCOPED_RESOURCES (and a customer's own sub-resources) are
    offered, each checked against the key's account; localstripe's other resources (plans,
    subscription items, invoice items, events, balance...) are not part of the API billing speaks
    and are refused rather than served unscoped.
    """
    parts = request.path.strip("/").split("/")
    if parts[0] == "v1":
        account = account_of(request)
        collection = parts[1] if len(parts) > 1 else ""
        obj_id = parts[2] if len(parts) > 2 else ""
        if collection == "customers" and obj_id:
            customer_of(account, obj_id)
        elif collection in SCOPED_RESOURCES:
            if obj_id:
                scoped_object(account, collection, obj_id)
                if request.method == "POST":
                    check_references(account, await form(request))
            elif request.method == "GET":
                return scoped_list(account, collection, dict(await form(request)), request.path)
            elif request.method == "POST":
                check_references(account, await form(request))
                response = await _dispatch_to_localstripe(request)
                if response.status < 300 and isinstance(response, web.Response) and response.body:
                    created = json.loads(bytes(response.body))  # type: ignore[arg-type]
                    STATE["owners"][created["id"]] = account
                return response
        else:
            raise StripeHTTPError(404, f"Unrecognized request URL ({request.method}: {request.path}).")
    return await _dispatch_to_localstripe(request)


async def _dispatch_to_localstripe(request: web.Request) -> web.StreamResponse:
    match = await ls_server.app.router.resolve(request)
    if match.http_exception is not None:
        raise StripeHTTPError(
            match.http_exception.status, f"Unrecognized request URL ({request.method}: {request.path})."
        )
    # Dev-only dispatch into localstripe's router: swap in its match (and drop the cached one).
    request._match_info = match
    getattr(request, "_cache", {}).pop("match_info", None)
    handler = match.handler
    for middleware in reversed(ls_server.app.middlewares):
        handler = partial(middleware, handler=handler)
    return await handler(request)


def build_app() -> web.Application:
    app = web.Application(middlewares=[errors_middleware, persist_middleware, idempotency_middleware])
    r = app.router
    r.add_post("/v1/customers", create_customer)
    r.add_get("/v1/customers/{id}", retrieve_customer)
    r.add_post("/v1/customers/{id}", update_customer)
    r.add_post("/v1/prices", create_price)
    r.add_get("/v1/prices", list_prices)
    r.add_get("/v1/prices/{id}", retrieve_price)
    r.add_post("/v1/prices/{id}", update_price)
    r.add_post("/v1/coupons", create_coupon)
    r.add_get("/v1/coupons/{id}", retrieve_coupon)
    r.add_post("/v1/subscriptions", create_subscription)
    r.add_get("/v1/subscriptions", list_subscriptions)
    r.add_get("/v1/subscriptions/{id}", retrieve_subscription)
    r.add_post("/v1/subscriptions/{id}", update_subscription)
    r.add_delete("/v1/subscriptions/{id}", cancel_subscription)
    r.add_post("/v1/invoices/create_preview", preview_invoice)
    r.add_get("/v1/invoices", list_invoices)
    r.add_get("/v1/invoices/{id}", retrieve_invoice)
    r.add_post("/v1/invoices/{id}/pay", pay_invoice)
    r.add_post("/v1/invoices/{id}/void", void_invoice)
    r.add_get("/v1/invoice_payments", list_invoice_payments)
    r.add_post("/_config/webhooks/{id}", config_webhook)
    r.add_delete("/_config/data", flush)
    r.add_post("/_standin/customers/{id}/card", set_card)
    r.add_get("/_standin/events", list_events)
    r.add_post("/_standin/events/{id}/deliver", redeliver_event)
    r.add_post("/_standin/subscriptions/{id}/advance", advance_subscription)
    r.add_get("/_standin/health", lambda request: web.json_response({"ok": True}))
    r.add_route("*", "/{tail:.*}", localstripe_fallback)
    return app


WEBHOOK_DELAY = 0.3


def main(argv: list[str] | None = None) -> None:
    global _state_file, WEBHOOK_DELAY
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("STRIPE_STANDIN_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=8420)
    default_state = Path(__file__).resolve().parent.parent / "var" / "stripe-standin.pickle"
    parser.add_argument("--state-file", type=Path, default=default_state)
    parser.add_argument("--from-scratch", action="store_true", help="Start empty and keep nothing on disk.")
    parser.add_argument(
        "--webhook-delay", type=float, default=WEBHOOK_DELAY, help="Seconds between an API call and its webhooks."
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s stripe-standin %(message)s")
    WEBHOOK_DELAY = args.webhook_delay
    if not args.from_scratch:
        _state_file = args.state_file
        _state_file.parent.mkdir(parents=True, exist_ok=True)
        _load(_state_file)
    web.run_app(build_app(), host=args.host, port=args.port, print=lambda *a: log.info(*a), access_log=None)


if __name__ == "__main__":
    main()
