"""Middlewares (errors, idempotency, persistence) and the fall-through to localstripe, scoped per key."""

from __future__ import annotations

import asyncio
import hashlib
import json
from functools import partial
from typing import Any

from aiohttp import web
from localstripe import resources as ls
from localstripe import server as ls_server
from localstripe.errors import UserError

from devtools.stripe_standin.api_browser import account_from_browser_or_server, after_browser_call
from devtools.stripe_standin.core import (
    DELAYS,
    STATE,
    StripeHTTPError,
    _save,
    as_bool,
    as_int,
    customer_of,
    form,
    json_ok,
    list_object,
    missing,
)

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
        account = await account_from_browser_or_server(request)
        collection = parts[1] if len(parts) > 1 else ""
        obj_id = parts[2] if len(parts) > 2 else ""
        if collection == "customers" and obj_id:
            customer_of(account, obj_id)
        elif collection in SCOPED_RESOURCES:
            if obj_id:
                scoped_object(account, collection, obj_id)
                if request.method == "POST":
                    check_references(account, await form(request))
                    response = await _dispatch_to_localstripe(request)
                    after_browser_call(account, request.path, response)
                    return response
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
    response = await handler(request)
    # The swapped match belongs to localstripe's app, whose response hooks never run here: CORS headers (for
    # Stripe.js in a customer's browser) are added now.
    await ls_server.add_cors_headers(request, response)
    return response


@web.middleware
async def delay_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Outermost: the request has been fully handled (and its idempotent answer stored) before the wait."""
    response = await handler(request)
    if request.method == "POST":
        rule = next(
            (r for path, r in DELAYS.items() if request.path.startswith(path) and r["remaining"] > 0),
            None,
        )
        if rule is not None:
            rule["remaining"] -= 1
            rule["held"] += 1
            await asyncio.sleep(rule["seconds"])
    return response
