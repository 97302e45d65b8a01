"""/v1/customers and the test helper that sets a customer's card."""

from __future__ import annotations

from aiohttp import web
from localstripe import resources as ls
from localstripe.errors import UserError

from devtools.stripe_standin.core import STATE, StripeHTTPError, account_of, customer_of, export_customer, form, json_ok


async def create_customer(request: web.Request) -> web.Response:
    account = account_of(request)
    data = await form(request)
    data.pop("expand", None)
    try:
        cus = ls.Customer._api_create(**data)
    except UserError as exc:
        raise StripeHTTPError(exc.code, exc.body["error"].get("message", "Bad request")) from None
    STATE["owners"][cus.id] = account
    # localstripe announced the customer (customer.created, events._forward_localstripe_event) before its owner
    # was known: the event is this account's, not every account's webhooks' (it is delivered after a delay).
    for event in reversed(STATE["events"]):
        if event["_account"] is None and event["data"]["object"].get("id") == cus.id:
            event["_account"] = account
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
