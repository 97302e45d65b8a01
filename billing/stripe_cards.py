"""Stripe calls for cards the customer enters with Stripe.js: SetupIntents, the default card, 3-D Secure.

Card numbers never reach our servers: the portal's page hands Stripe.js a SetupIntent's client
secret, Stripe.js sends the card to Stripe (with a 3-D Secure step when the bank asks), and our
server then reads the SetupIntent back from Stripe (never trusting the browser's word) and makes
its card the customer's default. A payment the bank held for 3-D Secure is finished the same way:
its PaymentIntent's client secret goes to Stripe.js, which authenticates it with the customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import stripe
from django.conf import settings

from billing.stripe_client import StripeGateway, _id, _translate


@dataclass(frozen=True)
class SetupIntent:
    id: str
    customer_id: str | None
    status: str  # requires_payment_method, requires_action, succeeded, canceled...
    payment_method_id: str | None
    client_secret: str


def stripe_js_url() -> str:
    """Where the portal loads Stripe.js from: Stripe's, or the configured stand-in's own in development."""
    if settings.STRIPE_JS_URL:
        return settings.STRIPE_JS_URL
    base = (settings.STRIPE_API_BASE or "").rstrip("/")
    return f"{base}/js.stripe.com/v3/" if base else "https://js.stripe.com/v3/"


def _setup_intent(obj: stripe.SetupIntent) -> SetupIntent:
    return SetupIntent(
        id=obj.id,
        customer_id=_id(obj.customer),
        status=str(obj.status),
        payment_method_id=_id(obj.payment_method),
        client_secret=str(obj.client_secret or ""),
    )


def create_setup_intent(gateway: StripeGateway, *, customer_id: str, idempotency_key: str) -> SetupIntent:
    """A SetupIntent to save a card for later (off-session) payments of this customer."""
    try:
        obj = gateway.client.v1.setup_intents.create(
            {"customer": customer_id, "usage": "off_session", "payment_method_types": ["card"]},
            {"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    return _setup_intent(obj)


def retrieve_setup_intent(gateway: StripeGateway, setup_intent_id: str) -> SetupIntent:
    try:
        return _setup_intent(gateway.client.v1.setup_intents.retrieve(setup_intent_id))
    except stripe.StripeError as exc:
        raise _translate(exc) from exc


def set_default_card(gateway: StripeGateway, *, customer_id: str, payment_method_id: str, idempotency_key: str) -> None:
    """Invoices of this customer are charged to this card from now on."""
    try:
        gateway.client.v1.customers.update(
            customer_id,
            {"invoice_settings": {"default_payment_method": payment_method_id}},
            {"idempotency_key": idempotency_key},
        )
    except stripe.StripeError as exc:
        raise _translate(exc) from exc


def payment_awaiting_authentication(gateway: StripeGateway, invoice_id: str) -> str | None:
    """The client secret of the invoice's payment the bank holds for 3-D Secure; None if there is none."""
    try:
        payments = gateway.client.v1.invoice_payments.list({"invoice": invoice_id, "limit": 10})
        for payment in payments.data:
            intent_id = _id(payment.payment.payment_intent)
            if intent_id:
                intent = gateway.client.v1.payment_intents.retrieve(intent_id)
                if intent.status == "requires_action" and intent.client_secret:
                    return str(intent.client_secret)
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    return None
