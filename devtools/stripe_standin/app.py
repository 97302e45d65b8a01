"""Dev/test-only Stripe stand-in: the aiohttp application and its command line."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from aiohttp import web
from localstripe import server as ls_server

from devtools.stripe_standin import core, events
from devtools.stripe_standin.api_browser import stripe_js
from devtools.stripe_standin.api_catalog import (
    create_coupon,
    create_price,
    list_prices,
    retrieve_coupon,
    retrieve_price,
    update_price,
)
from devtools.stripe_standin.api_customers import create_customer, retrieve_customer, set_card, update_customer
from devtools.stripe_standin.api_invoices import (
    list_invoice_payments,
    list_invoices,
    pay_invoice,
    preview_invoice,
    retrieve_invoice,
    void_invoice,
)
from devtools.stripe_standin.api_schedules import (
    cancel_schedule,
    create_schedule,
    release_schedule,
    retrieve_schedule,
    update_schedule,
)
from devtools.stripe_standin.api_subscriptions import (
    advance_subscription,
    cancel_subscription,
    create_subscription,
    list_subscriptions,
    retrieve_subscription,
    update_subscription,
)
from devtools.stripe_standin.api_testing import (
    config_webhook,
    flush,
    hold_webhooks,
    list_delays,
    list_events,
    list_webhook_holds,
    redeliver_event,
    release_webhooks,
    set_delay,
)
from devtools.stripe_standin.core import log
from devtools.stripe_standin.scoping import (
    delay_middleware,
    errors_middleware,
    idempotency_middleware,
    localstripe_fallback,
    persist_middleware,
)


def build_app() -> web.Application:
    app = web.Application(middlewares=[delay_middleware, errors_middleware, persist_middleware, idempotency_middleware])
    # Stripe.js in the customer's browser calls from the page's origin: CORS headers, as Stripe sends.
    app.on_response_prepare.append(ls_server.add_cors_headers)
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
    r.add_post("/v1/subscription_schedules", create_schedule)
    r.add_get("/v1/subscription_schedules/{id}", retrieve_schedule)
    r.add_post("/v1/subscription_schedules/{id}", update_schedule)
    r.add_post("/v1/subscription_schedules/{id}/release", release_schedule)
    r.add_post("/v1/subscription_schedules/{id}/cancel", cancel_schedule)
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
    r.add_post("/_standin/webhooks/hold", hold_webhooks)
    r.add_post("/_standin/webhooks/release", release_webhooks)
    r.add_get("/_standin/webhooks/holds", list_webhook_holds)
    r.add_post("/_standin/delays", set_delay)
    r.add_get("/_standin/delays", list_delays)
    r.add_get("/js.stripe.com/v3/", stripe_js)
    r.add_get("/_standin/health", lambda request: web.json_response({"ok": True}))
    r.add_route("*", "/{tail:.*}", localstripe_fallback)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=os.environ.get("STRIPE_STANDIN_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=8420)
    default_state = Path(__file__).resolve().parents[2] / "var" / "stripe-standin.pickle"
    parser.add_argument("--state-file", type=Path, default=default_state)
    parser.add_argument("--from-scratch", action="store_true", help="Start empty and keep nothing on disk.")
    parser.add_argument(
        "--webhook-delay",
        type=float,
        default=events.WEBHOOK_DELAY,
        help="Seconds between an API call and its webhooks.",
    )
    parser.add_argument(
        "--hold-webhooks",
        metavar="NAME",
        help="Start with webhook deliveries held under NAME until POST /_standin/webhooks/release name=NAME.",
    )
    args = parser.parse_args(argv)
    if args.hold_webhooks:
        events.hold(args.hold_webhooks)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s stripe-standin %(message)s")
    events.WEBHOOK_DELAY = args.webhook_delay
    if not args.from_scratch:
        core._state_file = args.state_file
        args.state_file.parent.mkdir(parents=True, exist_ok=True)
        core._load(args.state_file)
    web.run_app(build_app(), host=args.host, port=args.port, print=lambda *a: log.info(*a), access_log=None)
