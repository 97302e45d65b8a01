"""The portal's card page: the customer enters a card with Stripe.js (never through our server), then pays.

GET shows the card form for a fresh SetupIntent of the account's Stripe customer; Stripe.js confirms
it with Stripe (3-D Secure when the bank asks) and the page posts only the SetupIntent's id. The
server reads it back from Stripe (billing.services.cards) before the card becomes the default; when
the customer came from a failed payment of an offer or a proposal, that payment is then tried again.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.errors import TierwiseError
from billing.services.cards import finish_card_setup, start_card_setup
from upgrades.offers.documents import customer_document_provider
from upgrades.offers.models import OfferState
from upgrades.offers.services.acceptance import retry_offer_payment
from upgrades.portal import selectors
from upgrades.portal.pages import ACTOR, Portal, _page, portal_view

REF_LENGTH = 24


@dataclass(frozen=True)
class FailedPayment:
    """The offer's or proposal's failed payment the customer came from: what to name, retry and go back to."""

    kind: str  # "offer" | "proposal"
    ref: str
    label: str
    retry: Callable[[], object]
    status_url: str


def _failed_payment(p: Portal, data: Any) -> FailedPayment | None:
    """From ?offer=REF or ?proposal=REF; None for none, or one whose payment has not failed. Another account's: 404."""
    kind = "offer" if data.get("offer") else "proposal" if data.get("proposal") else ""
    if not kind:
        return None
    ref = str(data.get(kind))
    if len(ref) != REF_LENGTH or not ref.isalnum():
        raise Http404("No such document.")
    status_url = reverse(f"portal:{kind}-status", kwargs={"ref": ref})
    if kind == "offer":
        offer = selectors.get_offer(p.tenant, p.account, ref)
        if offer.state != OfferState.ACCEPTED or not selectors.payment_failed(offer):
            return None
        retry = partial(retry_offer_payment, p.tenant, offer=offer, actor=ACTOR)
        return FailedPayment(kind, ref, offer.target_key.title(), retry, status_url)
    provider = customer_document_provider(kind)
    doc = provider.get(p.tenant, p.account, ref) if provider else None
    if provider is None or doc is None:
        raise Http404("No such proposal.")
    if doc.state != "failed":
        return None
    label = next((o.label for o in doc.options if o.key == doc.accepted_option), doc.title)
    return FailedPayment(kind, ref, label, partial(provider.retry_payment, p.tenant, p.account, ref, p.contact),
                         status_url)  # fmt: skip


@portal_view
@require_http_methods(["GET", "POST"])
def card(request: HttpRequest) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    failed = _failed_payment(p, request.POST if request.method == "POST" else request.GET)
    error = ""
    if request.method == "POST":
        try:
            finish_card_setup(p.tenant, account=p.account, setup_intent_id=request.POST.get("setup_intent", ""),
                              actor=ACTOR)  # fmt: skip
        except TierwiseError as exc:
            error = str(getattr(exc, "message", exc))
        else:
            if failed is None:
                return redirect(reverse("portal:home") + "?card=saved")
            try:
                failed.retry()
            except TierwiseError:
                pass  # the status page says where it stands
            return redirect(failed.status_url)
    try:
        setup = start_card_setup(p.tenant, account=p.account, attempt=secrets.token_hex(8))
    except TierwiseError as exc:
        unavailable = {"unavailable": str(getattr(exc, "message", exc)), "failed": failed}
        return _page(request, "portal/card.html", unavailable, status=409)
    ctx: dict[str, Any] = {"setup": setup, "failed": failed, "error": error}
    return _page(request, "portal/card.html", ctx, status=400 if error else 200, stripe=setup.entry)
