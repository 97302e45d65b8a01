"""Reads of offers, offer settings and trials. Every read names its tenant."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, QuerySet

from accounts.models import CustomerAccount, Tenant
from upgrades.offers.errors import NotFound
from upgrades.offers.models import (
    OPEN_STATES,
    Feedback,
    FeedbackKind,
    Offer,
    OfferSettings,
    OfferState,
    SettingsState,
)


def get_live_settings(tenant: Tenant | int) -> OfferSettings | None:
    """The one live version of the tenant's offer settings, or None: then no offer is made or sent."""
    return OfferSettings.objects.for_tenant(tenant).filter(state=SettingsState.LIVE).first()


# An offer a customer (or the vendor's own UI for them) may see: it has been sent. Drafts and offers
# waiting for a CSM's review are staff business.
CUSTOMER_VISIBLE_STATES = (
    OfferState.SENT,
    OfferState.VIEWED,
    OfferState.ACCEPTED,
    OfferState.FULFILLED,
    OfferState.DECLINED,
    OfferState.EXPIRED,
    OfferState.WITHDRAWN,
)


def list_offers(
    tenant: Tenant | int,
    *,
    account: CustomerAccount | None = None,
    state: str | None = None,
    customer_visible: bool = False,
) -> QuerySet[Offer]:
    """Offers newest first, with what the API and pages read joined in: account, plan change, and the
    customer's decline (`offer.declines`, a list of at most one Feedback)."""
    declines = Feedback.objects.for_tenant(tenant).filter(kind=FeedbackKind.DECLINE).order_by("created_at", "id")
    offers = (
        Offer.objects.for_tenant(tenant)
        .select_related("account", "plan_change")
        .prefetch_related(Prefetch("feedback", queryset=declines, to_attr="declines"))
    )
    if account is not None:
        offers = offers.filter(account=account)
    if state:
        offers = offers.filter(state=state)
    if customer_visible:
        offers = offers.filter(state__in=CUSTOMER_VISIBLE_STATES)
    return offers.order_by("-created_at", "-id")


def get_offer_for_tenant(tenant: Tenant | int, offer_id: int, *, customer_visible: bool = False) -> Offer:
    """One offer; `NotFound` for other tenants' ids and missing ids alike."""
    found = list_offers(tenant, customer_visible=customer_visible).filter(pk=offer_id).first()
    if found is None:
        raise NotFound(f"No offer {offer_id}.")
    return found


def offer_for_plan_change(tenant: Tenant | int, plan_change_id: int) -> Offer | None:
    """The offer that handed this plan change to billing, if any."""
    return Offer.objects.for_tenant(tenant).filter(plan_change_id=plan_change_id).order_by("-id").first()


def decline_feedback(tenant: Tenant | int, offer: Offer) -> Feedback | None:
    """The customer's decline of this offer (reason and text), if they declined it."""
    return (
        Feedback.objects.for_tenant(tenant)
        .filter(offer=offer, kind=FeedbackKind.DECLINE)
        .order_by("created_at", "id")
        .first()
    )


def offers_due_to_expire(tenant: Tenant | int, *, now: datetime) -> QuerySet[Offer]:
    """Open offers whose expiry has passed (the sweep decides about accepted ones with a payment)."""
    return (
        Offer.objects.for_tenant(tenant)
        .select_related("plan_change")
        .filter(state__in=OPEN_STATES, expires_at__lte=now)
        .order_by("expires_at", "id")
    )


def accepted_offers_with_settled_payment(tenant: Tenant | int) -> QuerySet[Offer]:
    """Accepted offers whose plan change settled but which are not fulfilled yet (a missed signal)."""
    return (
        Offer.objects.for_tenant(tenant)
        .select_related("plan_change")
        .filter(state=OfferState.ACCEPTED, plan_change__state="settled")
    )
