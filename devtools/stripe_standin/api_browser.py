"""What a customer's browser sends: Stripe.js (localstripe's own, at /js.stripe.com/v3/) with a publishable key.

Stripe.js posts card details straight to Stripe, never through the vendor's server: it confirms a
SetupIntent (saving a card, with a 3-D Secure step for the cards that ask for one) and authenticates
a PaymentIntent the bank held for 3-D Secure. Those calls carry the publishable key in the body
instead of a secret key in a header. In the stand-in the publishable key of the account `sk_test_X`
is `pk_test_X` (one Stripe account issues both). What this layer adds to localstripe here is what
Stripe does and localstripe does not:

- a confirmed SetupIntent attaches its card to the SetupIntent's customer (so the vendor's server
  can make it the default payment method);
- an authenticated PaymentIntent of one of this layer's invoices pays that invoice (`invoice.paid`,
  and the invoice's pending subscription update is applied).

Responses carry CORS headers for the page's origin, as Stripe's do.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aiohttp import web
from localstripe import resources as ls
from localstripe import server as ls_server

from devtools.stripe_standin.core import STATE, StripeHTTPError, account_of
from devtools.stripe_standin.invoices import mark_paid
from devtools.stripe_standin.subscriptions import after_invoice_paid

# The only calls Stripe.js may make with a publishable key (localstripe's auth middleware agrees).
PUBLISHABLE = re.compile(r"^/v1/(setup_intents/\w+/(confirm|cancel)|payment_intents/\w+/_authenticate)$")


async def account_from_browser_or_server(request: web.Request) -> str:
    """The secret key's account; for Stripe.js's calls, the account of the publishable key in the body."""
    try:
        return account_of(request)
    except StripeHTTPError:
        if request.method != "POST" or not PUBLISHABLE.match(request.path):
            raise
        data = await ls_server.get_post_data(request, remove_auth=False) or {}
        key = data.get("key")
        if isinstance(key, str) and key.startswith("pk_") and len(key) > 3:
            return "sk_" + key[3:]
        raise


def after_browser_call(account: str, path: str, response: web.StreamResponse) -> None:
    """Stripe's side effects localstripe lacks, once a Stripe.js call succeeded."""
    if not PUBLISHABLE.match(path) or response.status >= 300 or not isinstance(response, web.Response):
        return
    body: dict[str, Any] = json.loads(bytes(response.body or b"{}"))  # type: ignore[arg-type]
    if body.get("object") == "setup_intent" and body.get("status") == "succeeded":
        _attach_setup_card(account, body)
    elif body.get("object") == "payment_intent" and body.get("status") == "succeeded":
        _pay_invoice_of(account, body["id"])


def _attach_setup_card(account: str, setup_intent: dict[str, Any]) -> None:
    pm_id, customer = setup_intent.get("payment_method"), setup_intent.get("customer")
    if not pm_id:
        return
    STATE["owners"].setdefault(pm_id, account)
    pm = ls.PaymentMethod._api_retrieve(pm_id)
    if customer and getattr(pm, "customer", None) != customer:
        ls.PaymentMethod._api_attach(pm_id, customer=customer)


def _pay_invoice_of(account: str, intent_id: str) -> None:
    for inv in STATE["invoices"].values():
        if inv["_account"] == account and intent_id in inv.get("_payments", []) and inv["status"] == "open":
            mark_paid(inv)
            after_invoice_paid(inv)
            return


_STRIPE_JS: bytes | None = None


async def stripe_js(request: web.Request) -> web.Response:
    """localstripe's Stripe.js, in a function scope: its top-level `class Element` would otherwise shadow the
    DOM's `Element` for every script on the page (htmx's `instanceof Element` checks then fail)."""
    global _STRIPE_JS
    if _STRIPE_JS is None:
        source = (Path(ls_server.__file__).parent / "localstripe-v3.js").read_text()
        _STRIPE_JS = f"(function () {{\n{source}\n}})();\n".encode()
    return web.Response(body=_STRIPE_JS, content_type="application/javascript")
