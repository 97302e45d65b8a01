"""The portal's card page: the customer enters a card with Stripe.js (never through our server), then pays.

GET shows the card form for a fresh SetupIntent of the account's Stripe customer; Stripe.js confirms
it with Stripe (3-D Secure when the bank asks) and the page posts only the SetupIntent's id. The
server reads it back from Stripe (billing.services.cards) before the card becomes the default; when
the customer came from a failed payment of an offer, that payment is then tried again.
"""

from __future__ import annotations

import secrets

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.errors import TierwiseError
from billing.services.cards import finish_card_setup, start_card_setup
from upgrades.offers.models import Offer, OfferState
from upgrades.offers.services.acceptance import retry_offer_payment
from upgrades.portal import selectors
from upgrades.portal.pages import ACTOR, Portal, _page, portal_view

REF_LENGTH = 24


def _failed_offer(p: Portal, ref: str) -> Offer | None:
    """The offer whose payment failed that the customer came from; None for no (or a foreign) reference."""
    if len(ref) != REF_LENGTH or not ref.isalnum():
        return None
    offer = selectors.get_offer(p.tenant, p.account, ref)  # another account's offer: 404
    pc = offer.plan_change
    if offer.state != OfferState.ACCEPTED or pc is None or pc.state not in ("failed", "canceled"):
        return None
    return offer


@portal_view
@require_http_methods(["GET", "POST"])
def card(request: HttpRequest) -> HttpResponse:
    p: Portal = request.portal  # type: ignore[attr-defined]
    ref = (request.POST.get("offer") if request.method == "POST" else request.GET.get("offer")) or ""
    offer = _failed_offer(p, ref) if ref else None
    error = ""
    if request.method == "POST":
        try:
            finish_card_setup(p.tenant, account=p.account, setup_intent_id=request.POST.get("setup_intent", ""),
                              actor=ACTOR)  # fmt: skip
        except TierwiseError as exc:
            error = str(getattr(exc, "message", exc))
        else:
            if offer is None:
                return redirect(reverse("portal:home") + "?card=saved")
            try:
                retry_offer_payment(p.tenant, offer=offer, actor=ACTOR)
            except TierwiseError:
                pass  # the status page says where it stands
            return redirect("portal:offer-status", ref=ref)
    try:
        setup = start_card_setup(p.tenant, account=p.account, attempt=secrets.token_hex(8))
    except TierwiseError as exc:
        ctx = {"unavailable": str(getattr(exc, "message", exc)), "offer": offer, "ref": ref}
        return _page(request, "portal/card.html", ctx, status=409)
    ctx = {"setup": setup, "offer": offer, "ref": ref if offer else "", "error": error}
    return _page(request, "portal/card.html", ctx, status=400 if error else 200, stripe=setup.entry)
