"""/v1/prices and /v1/coupons."""

from __future__ import annotations

import secrets

from aiohttp import web

from devtools.stripe_standin.core import (
    STATE,
    StripeHTTPError,
    account_of,
    as_bool,
    as_int,
    export_price,
    form,
    json_ok,
    list_object,
    new_id,
    now,
    price_of,
)
from devtools.stripe_standin.events import emit
from devtools.stripe_standin.scoping import scoped_object
from devtools.stripe_standin.subscriptions import coupon_of


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
