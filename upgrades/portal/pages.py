"""What every portal page shares: the session's Portal, the tenant's brand, the content security policy.

`portal_view` loads the session's link (its tenant's time zone and the contact's money locale active)
or answers the "session ended" page; `_page` renders with the brand and a per-response CSP nonce.
"""

from __future__ import annotations

import secrets
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from accounts.errors import TierwiseError
from accounts.models import Contact, CustomerAccount, Tenant
from billing.models import PlanChange
from billing.services.cards import CardEntry, card_entry, payment_authentication
from upgrades.portal import selectors, tokens
from upgrades.portal.models import PortalSession

ACTOR = "customer (portal)"


@dataclass
class Portal:
    tenant: Tenant
    account: CustomerAccount
    contact: Contact | None
    link: PortalSession
    nonce: str
    brand: dict[str, str]


def brand_of(tenant: Tenant) -> dict[str, str]:
    chosen = tokens.get_portal_settings(tenant)
    return {
        "name": tenant.name,
        "logo_url": chosen.logo_url if chosen else "",
        "colour": chosen.brand_colour if chosen else "#1d4ed8",
    }


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def csp(nonce: str, brand: dict[str, str] | None = None, *, stripe: CardEntry | None = None) -> str:
    """Only what the pages load; pages that take a card also allow Stripe.js, its API and its frames."""
    img = "'self' data:"
    logo = (brand or {}).get("logo_url") or ""
    if logo:
        img += f" {_origin(logo)}"
    script = connect = frame = ""
    if stripe is not None:
        js = _origin(stripe.js_url)
        api = _origin(settings.STRIPE_API_BASE) if settings.STRIPE_API_BASE else "https://api.stripe.com"
        script, connect = f" {js}", f" {api}"
        frame = f"frame-src {js} https://hooks.stripe.com; "
    return (
        f"default-src 'none'; script-src 'self'{script}; "
        f"style-src 'self' 'nonce-{nonce}'; img-src {img}; connect-src 'self'{connect}; font-src 'self'; {frame}"
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def _with_csp(
    response: HttpResponse, nonce: str, brand: dict[str, str] | None = None, *, stripe: CardEntry | None = None
) -> HttpResponse:
    response["Content-Security-Policy"] = csp(nonce, brand, stripe=stripe)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "same-origin"  # "no-referrer" makes form posts Origin: null (CSRF refuses)
    return response


def _page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    stripe: CardEntry | None = None,
) -> HttpResponse:
    portal: Portal | None = getattr(request, "portal", None)
    nonce = portal.nonce if portal else secrets.token_urlsafe(16)
    default = portal.brand if portal else {"name": "Your portal", "logo_url": "", "colour": "#1d4ed8"}
    brand = context.pop("brand", None) or default
    response = render(request, template, {"portal": portal, "nonce": nonce, "brand": brand, **context}, status=status)
    return _with_csp(response, nonce, brand, stripe=stripe)


def portal_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Loads the session's link (its tenant activated) or answers the 'session ended' page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        link = tokens.load_session_link(request.session.get(tokens.SESSION_KEY))
        if link is None:
            request.session.pop(tokens.SESSION_KEY, None)
            return _page(request, "portal/ended.html", {"reason": "ended"}, status=403)
        tenant = link.tenant
        timezone.activate(zoneinfo.ZoneInfo(tenant.time_zone or "UTC"))
        request.portal = Portal(  # type: ignore[attr-defined]
            tenant, link.account, link.contact, link, secrets.token_urlsafe(16), brand_of(tenant)
        )
        with selectors.money_locale(selectors.locale_for(tenant, link.contact)):
            return view(request, *args, **kwargs)

    return wrapper


def card_context(p: Portal, failed: PlanChange | None, *, kind: str, ref: str) -> dict[str, Any]:
    """For a failed payment of an offer or a proposal (`kind`): another card (Stripe.js), the same card again,
    and the bank's 3-D Secure step when it holds the payment."""
    entry = card_entry(p.tenant)
    secret = None
    if entry is not None and failed is not None:
        try:
            secret = payment_authentication(p.tenant, plan_change=failed)
        except TierwiseError:
            secret = None  # Stripe unreachable: the page still offers another card and a retry
    return {
        "card_entry": entry,
        "authentication_secret": secret,
        "no_card": failed is not None and failed.failure_code == "payment_method_required",
        "retry_url": reverse(f"portal:{kind}-retry", kwargs={"ref": ref}),
        "card_url": f"{reverse('portal:card')}?{urlencode({kind: ref})}",
    }
