"""Shared by every part of the stand-in: state and its persistence, errors, time and money helpers, the
current API's object shapes, and the request helpers (which account a key is, the form, JSON out)."""

from __future__ import annotations

import calendar
import copy
import logging
import pickle
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


# Test helper (`/_standin/delays`): answers to POSTs under a path are held back for some seconds after the
# work is done, so a crash test can kill the caller while Stripe has acted but not yet answered. Not persisted.
DELAYS: dict[str, dict[str, Any]] = {}


def reset_state() -> None:
    DELAYS.clear()
    STATE.clear()
    STATE.update(
        prices={},
        subscriptions={},
        schedules={},
        invoices={},
        events=[],
        idempotency={},
        owners={},
        pending_items={},
        webhook_accounts={},
        balances={},
        coupons={},
        paid_discounts={},
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
    STATE.setdefault("schedules", {})
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
    out.setdefault("schedule", None)
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


def export_schedule(sched: dict[str, Any]) -> dict[str, Any]:
    # A copy all the way down: an event keeps the phases as they were when it was sent.
    return copy.deepcopy({k: v for k, v in sched.items() if not k.startswith("_")})


def export_invoice(inv: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in inv.items() if not k.startswith("_") and k != "lines"}
    out["lines"] = list_object(inv["lines"], f"/v1/invoices/{inv['id']}/lines")
    return out


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
