"""Customers' money: charging an invoice, marking it paid, and drawing up invoices and their lines."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from localstripe import resources as ls

from devtools.stripe_standin.core import STATE, export_invoice, new_id, now, share
from devtools.stripe_standin.events import emit


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
    # What each item's period was paid with: a later credit for its unused time gives back that (see new_invoice).
    paid_with = STATE.setdefault("paid_discounts", {})
    for line in inv["lines"]:
        item_id = (line.get("parent") or {}).get("subscription_item_details", {}).get("subscription_item")
        if item_id and line["amount"] > 0:
            paid_with[item_id] = list(inv.get("_in_force") or [])
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
    discounts_used: dict[str, dict[str, Any]] = {d["id"]: d for d in in_force}
    for line in lines:
        line["invoice"] = None if preview else invoice_id
        # A credit for unused time gives back what was paid: the discounts its period was charged with, not
        # the subscription's current ones (Stripe's proration_details.discount_amounts).
        credited_with = line.pop("_paid_discounts", None)
        line_discounts = in_force if credited_with is None else credited_with
        discounts_used.update({d["id"]: d for d in line_discounts})
        line["discount_amounts"] = [
            {"amount": share(line["amount"], d["_basis"], 10_000), "discount": d["id"]}
            for d in line_discounts
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
            for d in discounts_used.values()
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
        "_in_force": list(in_force),
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
