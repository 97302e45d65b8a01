"""The only module that talks to Stripe, and the only place Stripe's shapes and amounts are converted.

One `stripe.StripeClient` per tenant (each tenant brings its own keys), pointed at
`settings.STRIPE_API_BASE` when set (the dev/test stand-in). Every call goes through the
library's typed parameters (`stripe.params.*`), and mypy checks this file in CI, so an
unknown parameter or a wrong shape fails the build rather than a customer's upgrade.

Out of here come plain frozen dataclasses with integer minor units, upper-case ISO
currencies and aware UTC datetimes; nothing above this module sees a Stripe object.
Errors come out as `StripeDeclined` (the payment was refused; retry after the customer
acts), `StripeUnavailable` (network, rate limit, 5xx: safe to retry with the same
idempotency key) or `StripeRejected` (our request was wrong: do not retry blindly).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, cast

import stripe
from django.conf import settings
from stripe.params import (
    CouponCreateParams,
    CustomerCreateParams,
    InvoiceCreatePreviewParams,
    InvoiceCreatePreviewParamsSubscriptionDetails,
    InvoiceCreatePreviewParamsSubscriptionDetailsItem,
    InvoicePaymentListParams,
    PriceCreateParams,
    PriceListParams,
    PriceUpdateParams,
    ProductCreateParams,
    ProductUpdateParams,
    SubscriptionCreateParams,
    SubscriptionCreateParamsItem,
    SubscriptionListParams,
    SubscriptionUpdateParams,
    SubscriptionUpdateParamsDiscount,
    SubscriptionUpdateParamsItem,
)

WEBHOOK_TOLERANCE_SECONDS = 300  # refuse events signed more than 5 minutes ago...
WEBHOOK_FUTURE_SKEW_SECONDS = 5  # ...or in the future (the SDK checks only the past); 5 s of clock skew
PENDING_UPDATE_BEHAVIOR: Literal["pending_if_incomplete"] = "pending_if_incomplete"
ProrationBehavior = Literal["always_invoice", "create_prorations", "none"]


# --- Errors --------------------------------------------------------------------------------


class StripeError(Exception):
    def __init__(self, message: str, *, code: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable


class StripeDeclined(StripeError):
    """The payment was refused (card declined, authentication required)."""


class StripeUnavailable(StripeError):
    """Stripe could not be reached or answered 5xx / 429: retry with the same idempotency key."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message, code=code, retryable=True)


class StripeRejected(StripeError):
    """Stripe refused the request itself (4xx): retrying the same call will not help."""


class WebhookSignatureInvalid(Exception):
    """Bad or missing signature, or a timestamp too old or in the future."""


# --- Plain values out ----------------------------------------------------------------------


def _dt(timestamp: int | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else None


def _ts(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("Stripe timestamps need aware datetimes")
    return int(value.timestamp())


def _id(value: Any) -> str | None:
    """An expandable field's id, whether Stripe sent the id or the object."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return str(getattr(value, "id", "") or "") or None


def _currency(code: str | None) -> str:
    return (code or "").upper()


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    amount: int  # minor units; credits negative
    currency: str
    period_start: datetime
    period_end: datetime
    proration: bool
    price_id: str | None
    quantity: int | None
    discount: int = 0  # minor units taken off `amount` by discounts (a coupon); the line costs amount - discount

    def as_dict(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "amount": self.amount,
            "discount": self.discount,
            "currency": self.currency,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "proration": self.proration,
            "price_id": self.price_id,
            "quantity": self.quantity,
        }


@dataclass(frozen=True)
class Invoice:
    id: str | None
    status: str | None  # draft, open, paid, uncollectible, void
    customer_id: str | None
    subscription_id: str | None
    currency: str
    subtotal: int
    total: int
    amount_due: int
    amount_paid: int
    lines: tuple[InvoiceLine, ...]
    created: datetime | None
    billing_reason: str | None
    total_discount: int = 0  # minor units: subtotal - total (before tax)

    @property
    def is_paid(self) -> bool:
        return self.status == "paid"


@dataclass(frozen=True)
class SubscriptionItem:
    id: str
    price_id: str
    quantity: int
    current_period_start: datetime
    current_period_end: datetime


@dataclass(frozen=True)
class Subscription:
    id: str
    customer_id: str
    status: str
    items: tuple[SubscriptionItem, ...]
    latest_invoice_id: str | None
    has_pending_update: bool
    pending_update_expires_at: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    ended_at: datetime | None
    metadata: dict[str, str] = field(default_factory=dict)
    collection_paused: bool = False  # `pause_collection` is set: invoices are voided instead of charged
    discount_count: int = 0  # subscription-level discounts (coupons) in force
    schedule_id: str | None = None  # the subscription schedule that changes it over time (a ramped term)

    @property
    def current_period_start(self) -> datetime | None:
        return min((i.current_period_start for i in self.items), default=None)

    @property
    def current_period_end(self) -> datetime | None:
        return min((i.current_period_end for i in self.items), default=None)

    def quantities(self) -> dict[str, int]:
        """price id -> quantity: what the subscription bills now."""
        return {item.price_id: item.quantity for item in self.items}


@dataclass(frozen=True)
class Customer:
    id: str
    email: str | None
    name: str | None
    delinquent: bool


@dataclass(frozen=True)
class PaymentFailure:
    code: str  # card_declined, authentication_required, ...
    message: str


@dataclass(frozen=True)
class ItemTarget:
    """What one subscription item should become: `item_id` of an existing item (or None to add one)."""

    price_id: str
    quantity: int
    item_id: str | None = None


@dataclass(frozen=True)
class ItemChange:
    """One line of a subscription update, exactly as sent (kept with the quote so retries send the same body)."""

    item_id: str | None
    price_id: str | None
    quantity: int | None
    deleted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "price_id": self.price_id, "quantity": self.quantity, "deleted": self.deleted}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemChange:
        return cls(
            item_id=data.get("item_id"),
            price_id=data.get("price_id"),
            quantity=data.get("quantity"),
            deleted=bool(data.get("deleted")),
        )


def plan_item_changes(current: Subscription | None, targets: Sequence[ItemTarget]) -> list[ItemChange]:
    """The update that turns `current`'s items into `targets`: reused items keep their id, the rest are deleted."""
    changes = [ItemChange(t.item_id, t.price_id, t.quantity) for t in targets]
    kept = {t.item_id for t in targets if t.item_id}
    if current is not None:
        changes.extend(ItemChange(item.id, None, None, deleted=True) for item in current.items if item.id not in kept)
    return changes


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    created: datetime
    object_id: str
    object_type: str
    payload: dict[str, Any]


def _line(line: stripe.InvoiceLineItem) -> InvoiceLine:
    price_id: str | None = None
    pricing = line.pricing
    if pricing is not None and pricing.price_details is not None:
        price_id = _id(pricing.price_details.price)
    proration = False
    parent = line.parent
    if parent is not None:
        if parent.subscription_item_details is not None:
            proration = bool(parent.subscription_item_details.proration)
        elif parent.invoice_item_details is not None:
            proration = bool(parent.invoice_item_details.proration)
    return InvoiceLine(
        description=line.description or "",
        amount=int(line.amount),
        discount=sum(int(d.amount) for d in (getattr(line, "discount_amounts", None) or ())),
        currency=_currency(line.currency),
        period_start=_dt(line.period.start) or datetime.fromtimestamp(0, UTC),
        period_end=_dt(line.period.end) or datetime.fromtimestamp(0, UTC),
        proration=proration,
        price_id=price_id,
        quantity=line.quantity,
    )


def _invoice(obj: stripe.Invoice) -> Invoice:
    subscription_id: str | None = None
    if obj.parent is not None and obj.parent.subscription_details is not None:
        subscription_id = _id(obj.parent.subscription_details.subscription)
    return Invoice(
        id=getattr(obj, "id", None),
        status=obj.status,
        customer_id=_id(obj.customer),
        subscription_id=subscription_id,
        currency=_currency(obj.currency),
        subtotal=int(obj.subtotal),
        total=int(obj.total),
        amount_due=int(obj.amount_due),
        amount_paid=int(obj.amount_paid),
        lines=tuple(_line(line) for line in obj.lines.data),
        created=_dt(obj.created),
        billing_reason=obj.billing_reason,
        total_discount=sum(int(d.amount) for d in (getattr(obj, "total_discount_amounts", None) or ())),
    )


def _subscription(obj: stripe.Subscription) -> Subscription:
    items = tuple(
        SubscriptionItem(
            id=item.id,
            price_id=item.price.id,
            quantity=int(item.quantity or 0),
            current_period_start=_dt(item.current_period_start) or datetime.fromtimestamp(0, UTC),
            current_period_end=_dt(item.current_period_end) or datetime.fromtimestamp(0, UTC),
        )
        # `obj.items` is dict.items (a StripeObject is a dict): the field must be read by key.
        for item in obj["items"].data
    )
    pending = obj.pending_update
    return Subscription(
        id=obj.id,
        customer_id=_id(obj.customer) or "",
        status=obj.status,
        items=items,
        latest_invoice_id=_id(obj.latest_invoice),
        has_pending_update=pending is not None,
        pending_update_expires_at=_dt(pending.expires_at) if pending is not None else None,
        cancel_at_period_end=bool(obj.cancel_at_period_end),
        canceled_at=_dt(obj.canceled_at),
        ended_at=_dt(obj.ended_at),
        metadata=dict(obj.metadata or {}),
        collection_paused=getattr(obj, "pause_collection", None) is not None,
        discount_count=len(getattr(obj, "discounts", None) or ()),
        schedule_id=_id(getattr(obj, "schedule", None)),
    )


def _translate(exc: stripe.StripeError) -> StripeError:
    code = str(getattr(exc, "code", "") or "")
    message = str(getattr(exc, "user_message", None) or exc)
    if isinstance(exc, stripe.CardError):
        return StripeDeclined(message, code=code or "card_declined")
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return StripeUnavailable(message, code=code or "unreachable")
    status = getattr(exc, "http_status", None) or 0
    if status >= 500 or status == 409:  # 409: an idempotent request is still running: retry later
        return StripeUnavailable(message, code=code or f"http_{status}")
    return StripeRejected(message, code=code or f"http_{status}")


# --- The gateway ---------------------------------------------------------------------------


class StripeGateway:
    """Typed calls for one tenant's Stripe account."""

    def __init__(self, secret_key: str, *, api_base: str | None = None, timeout: float = 20.0) -> None:
        base = api_base if api_base is not None else (settings.STRIPE_API_BASE or None)
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": base} if base else None,
            # The library retries network failures itself, with the same idempotency key.
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    # Customers ----------------------------------------------------------------------------

    def create_customer(
        self,
        *,
        email: str,
        name: str,
        metadata: dict[str, str],
        idempotency_key: str,
        payment_method: str | None = None,
    ) -> Customer:
        params: CustomerCreateParams = {"email": email, "name": name, "metadata": metadata}
        if payment_method:
            params["payment_method"] = payment_method
            params["invoice_settings"] = {"default_payment_method": payment_method}
        try:
            obj = self.client.v1.customers.create(params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return Customer(id=obj.id, email=obj.email, name=obj.name, delinquent=bool(obj.delinquent))

    def retrieve_customer(self, customer_id: str) -> Customer:
        try:
            obj = self.client.v1.customers.retrieve(customer_id)
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return Customer(id=obj.id, email=obj.email, name=obj.name, delinquent=bool(obj.delinquent))

    # Catalog ------------------------------------------------------------------------------

    def create_product(self, *, name: str, metadata: dict[str, str], idempotency_key: str) -> str:
        params: ProductCreateParams = {"name": name, "metadata": metadata}
        try:
            return self.client.v1.products.create(params, {"idempotency_key": idempotency_key}).id
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def rename_product(self, product_id: str, *, name: str) -> None:
        params: ProductUpdateParams = {"name": name}
        try:
            self.client.v1.products.update(product_id, params)
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def find_price(self, lookup_key: str) -> str | None:
        params: PriceListParams = {"lookup_keys": [lookup_key], "limit": 1}
        try:
            found = self.client.v1.prices.list(params)
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return found.data[0].id if found.data else None

    def create_price(
        self,
        *,
        product_id: str,
        unit_amount: int,
        currency: str,
        interval: Literal["month", "year"],
        interval_count: int,
        lookup_key: str,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> str:
        params: PriceCreateParams = {
            "product": product_id,
            "unit_amount": int(unit_amount),
            "currency": currency.lower(),
            "recurring": {"interval": interval, "interval_count": interval_count},
            "lookup_key": lookup_key,
            "metadata": metadata,
        }
        try:
            return self.client.v1.prices.create(params, {"idempotency_key": idempotency_key}).id
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def set_price_active(self, price_id: str, *, active: bool) -> None:
        params: PriceUpdateParams = {"active": active}
        try:
            self.client.v1.prices.update(price_id, params)
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def price_is_active(self, price_id: str) -> bool:
        try:
            return bool(self.client.v1.prices.retrieve(price_id).active)
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    # Subscriptions ------------------------------------------------------------------------

    def create_subscription(
        self,
        *,
        customer_id: str,
        items: Sequence[ItemTarget],
        idempotency_key: str,
        metadata: dict[str, str],
        backdate_start: datetime | None = None,
        payment_behavior: Literal["error_if_incomplete", "allow_incomplete"] = "error_if_incomplete",
        coupon_id: str | None = None,
    ) -> Subscription:
        """A new subscription, its first invoice charged at once.

        `error_if_incomplete`: it exists only if that payment succeeds (a 402 otherwise).
        `allow_incomplete`: a refused payment leaves it `incomplete` with its first invoice open,
        so a retry pays that same invoice (never a second subscription); Stripe expires it after 23 h.
        """
        params: SubscriptionCreateParams = {
            "customer": customer_id,
            "items": [SubscriptionCreateParamsItem(price=i.price_id, quantity=i.quantity) for i in items],
            "payment_behavior": payment_behavior,
            "metadata": metadata,
        }
        if backdate_start is not None:
            params["backdate_start_date"] = _ts(backdate_start)
        if coupon_id:  # the subscription's discount: its first invoice and every later one
            params["discounts"] = [{"coupon": coupon_id}]
        try:
            obj = self.client.v1.subscriptions.create(params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return _subscription(obj)

    def find_subscription(self, *, customer_id: str, metadata_key: str, metadata_value: str) -> Subscription | None:
        """The customer's subscription tagged `metadata_key=metadata_value` (a creation whose answer was lost)."""
        params: SubscriptionListParams = {"customer": customer_id, "status": "all", "limit": 100}
        try:
            found = self.client.v1.subscriptions.list(params)
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        for obj in found.data:
            if (obj.metadata or {}).get(metadata_key) == metadata_value:
                return _subscription(obj)
        return None

    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> Subscription:
        """End a subscription now (used for an incomplete first subscription the customer gave up on)."""
        try:
            return _subscription(
                self.client.v1.subscriptions.cancel(subscription_id, None, {"idempotency_key": idempotency_key})
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def set_collection_paused(self, subscription_id: str, *, paused: bool, idempotency_key: str) -> Subscription:
        """Stop (or resume) charging: while paused, Stripe voids each invoice it creates instead of collecting it.

        The subscription, its items and its billing dates stay as they are, so resuming is exact.
        """
        params: SubscriptionUpdateParams = {"pause_collection": {"behavior": "void"} if paused else ""}
        try:
            obj = self.client.v1.subscriptions.update(subscription_id, params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return _subscription(obj)

    def ensure_percent_coupon(
        self, percent: Decimal, *, currency: str, coupon_id: str = "", name: str = "", purpose: str = "renewal-loyalty"
    ) -> str:
        """A `forever` percent-off coupon with a deterministic id (created once per account, then reused).

        Without `coupon_id` it is the renewal loyalty coupon for `percent`; an offer's discount passes its own id.
        """
        basis = int((percent * 100).to_integral_value())
        if not 0 < basis <= 10_000:
            raise ValueError("A coupon takes more than 0 and at most 100 percent")
        coupon_id = coupon_id or f"tw-loyalty-{basis}"
        try:
            return self.client.v1.coupons.retrieve(coupon_id).id
        except stripe.InvalidRequestError as exc:
            if getattr(exc, "http_status", None) != 404:
                raise _translate(exc) from exc
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        params: CouponCreateParams = {
            "id": coupon_id,
            "percent_off": float(percent),
            "duration": "forever",
            "name": name or f"Loyalty {percent}%",
            "metadata": {"tierwise": purpose},
        }
        try:
            return self.client.v1.coupons.create(params, {"idempotency_key": f"tw-coupon-{coupon_id}"}).id
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def set_subscription_coupon(
        self, subscription_id: str, *, coupon_id: str | None, idempotency_key: str
    ) -> Subscription:
        """Replace the subscription's discounts by this coupon (None: remove them). Applies to invoices from now on."""
        params: SubscriptionUpdateParams = {
            "discounts": [SubscriptionUpdateParamsDiscount(coupon=coupon_id)] if coupon_id else "",
            "proration_behavior": "none",
        }
        try:
            obj = self.client.v1.subscriptions.update(subscription_id, params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return _subscription(obj)

    def preview_next_invoice(self, *, customer_id: str, subscription_id: str) -> Invoice:
        """The subscription's next regular invoice as Stripe will issue it (discounts and credit included)."""
        params: InvoiceCreatePreviewParams = {"customer": customer_id, "subscription": subscription_id}
        try:
            return _invoice(self.client.v1.invoices.create_preview(params))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def retrieve_subscription(self, subscription_id: str) -> Subscription:
        try:
            return _subscription(self.client.v1.subscriptions.retrieve(subscription_id))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    @staticmethod
    def _update_items(changes: Sequence[ItemChange]) -> list[SubscriptionUpdateParamsItem]:
        items: list[SubscriptionUpdateParamsItem] = []
        for change in changes:
            item: SubscriptionUpdateParamsItem = {"deleted": True} if change.deleted else {}
            if change.item_id:
                item["id"] = change.item_id
            if change.price_id and not change.deleted:
                item["price"] = change.price_id
            if change.quantity is not None and not change.deleted:
                item["quantity"] = change.quantity
            items.append(item)
        return items

    @classmethod
    def _preview_items(cls, changes: Sequence[ItemChange]) -> list[InvoiceCreatePreviewParamsSubscriptionDetailsItem]:
        # The preview takes exactly the items the update will send: same keys, another TypedDict name.
        return cast(list[InvoiceCreatePreviewParamsSubscriptionDetailsItem], cls._update_items(changes))

    def preview_change(
        self,
        *,
        customer_id: str,
        subscription_id: str | None,
        changes: Sequence[ItemChange],
        proration_date: datetime,
        coupon_id: str | None = None,
    ) -> Invoice:
        """The invoice the change would create at once (always_invoice), with its proration date pinned.

        `coupon_id`: the discount the change puts on the subscription, in place of the discounts it has now.
        """
        details: InvoiceCreatePreviewParamsSubscriptionDetails = {"items": self._preview_items(changes)}
        params: InvoiceCreatePreviewParams = {"customer": customer_id, "subscription_details": details}
        if coupon_id:
            params["discounts"] = [{"coupon": coupon_id}]
        if subscription_id is not None:
            params["subscription"] = subscription_id
            details["proration_behavior"] = "always_invoice"
            details["proration_date"] = _ts(proration_date)
        # A new subscription has nothing to prorate: its first invoice is the full first period from when it starts.
        try:
            return _invoice(self.client.v1.invoices.create_preview(params))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def change_subscription(
        self,
        *,
        subscription_id: str,
        changes: Sequence[ItemChange],
        proration_date: datetime | None,
        proration_behavior: ProrationBehavior,
        idempotency_key: str,
        pending_if_incomplete: bool = True,
    ) -> Subscription:
        """Update the items; with `pending_if_incomplete` Stripe applies it only once its invoice is paid.

        The same `changes` and key must be sent on every retry: Stripe replays the first answer
        for an identical request and refuses a different body under the same key.
        """
        params: SubscriptionUpdateParams = {
            "items": self._update_items(changes),
            "proration_behavior": proration_behavior,
        }
        if pending_if_incomplete:
            params["payment_behavior"] = PENDING_UPDATE_BEHAVIOR
        if proration_date is not None:
            params["proration_date"] = _ts(proration_date)
        try:
            obj = self.client.v1.subscriptions.update(subscription_id, params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return _subscription(obj)

    def set_cancel_at_period_end(self, subscription_id: str, *, cancel: bool, idempotency_key: str) -> Subscription:
        params: SubscriptionUpdateParams = {"cancel_at_period_end": cancel}
        try:
            obj = self.client.v1.subscriptions.update(subscription_id, params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return _subscription(obj)

    # Invoices -----------------------------------------------------------------------------

    def retrieve_invoice(self, invoice_id: str) -> Invoice:
        try:
            return _invoice(self.client.v1.invoices.retrieve(invoice_id))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> Invoice:
        """Try the invoice's payment again (after the customer fixed their card). A declined card raises."""
        try:
            return _invoice(self.client.v1.invoices.pay(invoice_id, None, {"idempotency_key": idempotency_key}))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> Invoice:
        try:
            return _invoice(
                self.client.v1.invoices.void_invoice(invoice_id, None, {"idempotency_key": idempotency_key})
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def payment_failure(self, invoice_id: str) -> PaymentFailure | None:
        """Why the invoice's latest payment failed, from its PaymentIntent; None if it succeeded or is undecided."""
        params: InvoicePaymentListParams = {"invoice": invoice_id, "limit": 10}
        try:
            payments = self.client.v1.invoice_payments.list(params)
            for payment in payments.data:
                intent_id = _id(payment.payment.payment_intent)
                if not intent_id:
                    continue
                intent = self.client.v1.payment_intents.retrieve(intent_id)
                if intent.status in ("succeeded", "processing", "requires_capture"):
                    return None  # paid, or not decided yet: no failure to report
                if intent.status == "requires_action":
                    return PaymentFailure("authentication_required", "The bank asks the customer to authenticate.")
                error = intent.last_payment_error
                if error is None:
                    return PaymentFailure("payment_method_required", "The customer has no usable payment method.")
                return PaymentFailure(
                    str(getattr(error, "code", None) or "card_declined"),
                    str(getattr(error, "message", None) or "The payment did not go through."),
                )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return None

    # Webhooks -----------------------------------------------------------------------------

    @staticmethod
    def verify_webhook(
        payload: bytes, signature_header: str | None, secret: str, *, now: float | None = None
    ) -> WebhookEvent:
        """Check the signature over the raw body and the timestamp both ways; parse the event."""
        if not signature_header:
            raise WebhookSignatureInvalid("Missing Stripe-Signature header")
        # Exactly one timestamp: with two, the SDK verifies the first and a naive parse reads the last, so a
        # replayed old signature could carry a fresh `t=` past the age check. Ambiguous headers are refused.
        timestamps = [part.strip()[2:] for part in signature_header.split(",") if part.strip().startswith("t=")]
        if len(timestamps) != 1:
            raise WebhookSignatureInvalid("Stripe-Signature must carry exactly one timestamp")
        try:
            text = payload.decode("utf-8")
            stripe.WebhookSignature.verify_header(text, signature_header, secret, WEBHOOK_TOLERANCE_SECONDS)
            timestamp = int(timestamps[0])
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError, KeyError) as exc:
            raise WebhookSignatureInvalid(str(exc)) from exc
        current = time.time() if now is None else now
        if timestamp < current - WEBHOOK_TOLERANCE_SECONDS:
            raise WebhookSignatureInvalid("Signature timestamp is too old")
        if timestamp > current + WEBHOOK_FUTURE_SKEW_SECONDS:
            raise WebhookSignatureInvalid("Signature timestamp is in the future")
        try:
            data = json.loads(text)
            obj = data["data"]["object"]
            return WebhookEvent(
                id=str(data["id"]),
                type=str(data["type"]),
                created=datetime.fromtimestamp(int(data["created"]), tz=UTC),
                object_id=str(obj.get("id") or ""),
                object_type=str(obj.get("object") or ""),
                payload=data,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WebhookSignatureInvalid("Signed payload is not a Stripe event") from exc


# One client per tenant, rebuilt when the tenant's key (or the API base) changes.
_gateways: dict[int, tuple[tuple[str, str], StripeGateway]] = {}
_gateways_lock = threading.Lock()


def gateway_for(tenant_id: int, secret_key: str) -> StripeGateway:
    fingerprint = (secret_key, settings.STRIPE_API_BASE or "")
    with _gateways_lock:
        cached = _gateways.get(tenant_id)
        if cached is None or cached[0] != fingerprint:
            cached = (fingerprint, StripeGateway(secret_key))
            _gateways[tenant_id] = cached
        return cached[1]
