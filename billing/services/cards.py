"""The customer's card, entered in the portal with Stripe.js: set up, checked with Stripe, made the default.

`start_card_setup` gives the page what Stripe.js needs (a SetupIntent's client secret, the tenant's
publishable key, where Stripe.js is served). `finish_card_setup` is called with the SetupIntent id the
page reports; the SetupIntent is read back from Stripe, and only one that succeeded, for this
account's own Stripe customer, makes its card the default for the next payments. Nothing here
trusts the browser, and no card number passes through our servers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from accounts.models import CustomerAccount, Tenant
from accounts.services import Actor, record_audit
from billing import stripe_cards
from billing.errors import BillingErrorCode, Conflict, InvalidInput, stripe_errors_translated
from billing.models import License, PlanChange, PlanChangeState, StripeAccount
from billing.services.plan_changes.first_purchase import _ensure_customer
from billing.services.stripe_accounts import stripe_for

SETUP_INTENT_ID = re.compile(r"seti_[A-Za-z0-9]{1,64}")


@dataclass(frozen=True)
class CardEntry:
    """What Stripe.js needs on a page: the tenant's publishable key and where Stripe.js is served."""

    publishable_key: str
    js_url: str


@dataclass(frozen=True)
class CardSetup:
    entry: CardEntry
    client_secret: str  # of the SetupIntent, for Stripe.js's confirmCardSetup


def card_entry(tenant: Tenant) -> CardEntry | None:
    """None unless the tenant gave Stripe keys and a publishable key: then the portal cannot take a card."""
    account = StripeAccount.objects.for_tenant(tenant).first()
    if account is None or not account.is_configured or not account.publishable_key:
        return None
    return CardEntry(account.publishable_key, stripe_cards.stripe_js_url())


def _license(tenant: Tenant, account: CustomerAccount) -> License:
    license = License.objects.for_tenant(tenant).select_related("account").filter(account=account).first()
    if license is None:
        raise Conflict("This account has nothing to pay for yet.", code=BillingErrorCode.INVALID_STATE)
    return license


def start_card_setup(tenant: Tenant, *, account: CustomerAccount, attempt: str) -> CardSetup:
    """A SetupIntent for the account's Stripe customer (created on first need). `attempt` keys it, once per page."""
    entry = card_entry(tenant)
    if entry is None:
        raise Conflict("Card entry is not set up for this workspace.", code=BillingErrorCode.STRIPE_NOT_CONFIGURED)
    license = _license(tenant, account)
    gateway = stripe_for(tenant)
    with stripe_errors_translated():
        customer = license.stripe_customer_id or _ensure_customer(tenant, gateway, license)
        intent = stripe_cards.create_setup_intent(
            gateway, customer_id=customer, idempotency_key=f"tw-{tenant.pk}-card-{account.pk}-{attempt}"
        )
    return CardSetup(entry, intent.client_secret)


def finish_card_setup(tenant: Tenant, *, account: CustomerAccount, setup_intent_id: str, actor: Actor) -> str:
    """Make the card of a succeeded SetupIntent of this account's customer the default. Returns its id."""
    if not SETUP_INTENT_ID.fullmatch(setup_intent_id or ""):
        raise InvalidInput("The card was not saved.", details={"setup_intent": ["Not a SetupIntent id."]})
    license = _license(tenant, account)
    gateway = stripe_for(tenant)
    try:
        with stripe_errors_translated():
            intent = stripe_cards.retrieve_setup_intent(gateway, setup_intent_id)
    except InvalidInput as exc:  # Stripe does not know it (another Stripe account's, or made up)
        raise InvalidInput(
            "The card was not saved.", details={"setup_intent": ["Stripe has no such SetupIntent."]}
        ) from exc
    with stripe_errors_translated():
        if not license.stripe_customer_id or intent.customer_id != license.stripe_customer_id:
            raise InvalidInput("The card was not saved.", details={"setup_intent": ["Not this account's."]})
        if intent.status != "succeeded" or not intent.payment_method_id:
            raise Conflict("Your bank did not confirm the card; nothing was changed.",
                           code=BillingErrorCode.INVALID_STATE, details={"status": intent.status})  # fmt: skip
        stripe_cards.set_default_card(
            gateway,
            customer_id=license.stripe_customer_id,
            payment_method_id=intent.payment_method_id,
            idempotency_key=f"tw-{tenant.pk}-default-card-{intent.id}",
        )
    record_audit(tenant, actor=actor, action="billing.card_updated", obj=license,
                 after={"setup_intent": intent.id})  # fmt: skip
    return intent.payment_method_id


def payment_authentication(tenant: Tenant, *, plan_change: PlanChange) -> str | None:
    """The client secret for Stripe.js to authenticate a payment the bank held (3-D Secure); None if none.

    Only for a page that takes cards (the caller has the tenant's `card_entry`)."""
    if plan_change.state != PlanChangeState.FAILED or plan_change.failure_code != "authentication_required":
        return None
    if not plan_change.stripe_invoice_id:
        return None
    with stripe_errors_translated():
        return stripe_cards.payment_awaiting_authentication(stripe_for(tenant), plan_change.stripe_invoice_id)
