"""/v1/invoices (preview, pay, void) and /v1/invoice_payments."""

from __future__ import annotations

from aiohttp import web
from localstripe import resources as ls

from devtools.stripe_standin.core import (
    STATE,
    StripeHTTPError,
    account_of,
    add_interval,
    as_int,
    customer_of,
    export_invoice,
    export_subscription,
    form,
    json_ok,
    list_object,
    now,
    product_name,
)
from devtools.stripe_standin.events import emit
from devtools.stripe_standin.invoices import charge_invoice, line, new_invoice
from devtools.stripe_standin.schedules import upcoming_phase
from devtools.stripe_standin.subscriptions import (
    after_invoice_paid,
    change_lines,
    cycle,
    invoice_of,
    make_discounts,
    resolve_items,
    subscription_of,
    void,
)


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
        # Nothing changes now: no proration, only the renewal (also when the advance helper has moved the period
        # past the wall clock, as a test clock would).
        lines, period = change_lines(account, sub, new_items, at, behavior) if details.get("items") else ([], None)
        discounts = sub.get("_discounts")
        # The renewal as it comes: under a schedule, with the items and discounts of the phase it falls in.
        scheduled = None if details.get("items") or "discounts" in data else upcoming_phase(sub)
        if scheduled is not None:
            new_items, discounts = scheduled
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
            # Top-level `discounts` replace the subscription's for this preview ("" previews with none), as in Stripe.
            discounts=make_discounts(account, data["discounts"], subscription=sub["id"], customer=cus.id)
            if "discounts" in data
            else discounts,
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
