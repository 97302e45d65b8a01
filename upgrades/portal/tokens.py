"""Portal links and sessions: made for the vendor's backend (API), for emails (one offer), for staff.

Invariants:
- A link carries a random 256-bit token, signed (django.core.signing, salt below) so a tampered or
  truncated link is refused before the database is asked; only the token's SHA-256 is stored.
- The token finds its tenant through the one registered pre-tenant lookup (accounts.rls), then the
  row is read inside that tenant: row-level security holds.
- A link is exchanged once (one conditional UPDATE: two concurrent clicks cannot both win) for a
  browser session bound to its account (and contact) that ends at most one hour later.
- An expired or used link never opens a session; it can ask for a fresh link, which is emailed to the
  account's contact on file, never to whoever clicked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import Contact, CustomerAccount, Tenant
from accounts.services import Actor, actor_label
from accounts.tenancy import activate_tenant, lookup_tenant_ids
from upgrades.offers.documents import DOCUMENT_LINK_TTL
from upgrades.offers.models import Offer
from upgrades.portal.models import PortalLinkKind, PortalSession, PortalSettings

SALT = "tierwise.portal.link"
SESSION_TTL = timedelta(hours=1)
LINK_TTL = timedelta(hours=1)  # an API session link must be used within the hour
EMAIL_LINK_MAX = timedelta(days=30)
SESSION_KEY = "tierwise_portal"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def link_url(token: str) -> str:
    return f"{django_settings.SITE_URL}/portal/l/{_signer().sign(token)}"


def get_portal_settings(tenant: Tenant) -> PortalSettings | None:
    return PortalSettings.objects.for_tenant(tenant).first()


def check_return_url(tenant: Tenant, value: str) -> str:
    """An http(s) URL, on one of the tenant's allowed origins when it has set any (else InvalidInput)."""
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput("Invalid portal session.", details={"return_url": ["Must be an http(s) URL."]})
    portal = get_portal_settings(tenant)
    allowed = [o.rstrip("/").lower() for o in (portal.allowed_origins if portal else []) or []]
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    if allowed and origin not in allowed:
        raise InvalidInput(
            "Invalid portal session.", details={"return_url": ["Not one of the tenant's allowed origins."]}
        )
    return value


def _create(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    kind: str,
    expires_at: datetime,
    contact: Contact | None = None,
    offer: Offer | None = None,
    landing: str = "",
    return_url: str = "",
    actor: Actor = None,
    now: datetime,
) -> tuple[PortalSession, str]:
    token = secrets.token_urlsafe(32)
    row = PortalSession.objects.create(
        tenant=tenant,
        account=account,
        contact=contact,
        offer=offer,
        landing=landing,
        kind=kind,
        token_hash=hash_token(token),
        return_url=return_url,
        created_by_label=actor_label(actor),
        created_at=now,
        expires_at=expires_at,
    )
    return row, link_url(token)


def create_portal_session(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    return_url: str,
    contact: Contact | None = None,
    actor: Actor = None,
    kind: str = str(PortalLinkKind.SESSION),
    now: datetime | None = None,
) -> tuple[PortalSession, str]:
    """A single-use link to the account's portal, valid for one hour. Returns the row and its URL."""
    now = now or timezone.now()
    if contact is not None and contact.account_id != account.pk:
        raise InvalidInput("Invalid portal session.", details={"contact": ["Not a contact of this account."]})
    if return_url:
        check_return_url(tenant, return_url)
    return _create(
        tenant,
        account=account,
        kind=kind,
        contact=contact,
        return_url=return_url,
        actor=actor,
        expires_at=now + LINK_TTL,
        now=now,
    )


def offer_link(tenant: Tenant, *, offer: Offer, contact: Contact | None = None, now: datetime | None = None) -> str:
    """A signed single-use link to one offer for an email, valid until the offer expires (30 days at most)."""
    now = now or timezone.now()
    expires_at = min(offer.expires_at, now + EMAIL_LINK_MAX) if offer.expires_at else now + EMAIL_LINK_MAX
    _, url = _create(
        tenant,
        account=offer.account,
        kind=str(PortalLinkKind.OFFER),
        contact=contact,
        offer=offer,
        actor="email",
        expires_at=max(expires_at, now + LINK_TTL),
        now=now,
    )
    return url


def document_link(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    kind: str,
    ref: str,
    contact: Contact | None = None,
    actor: Actor = None,
    now: datetime | None = None,
) -> str:
    """A signed single-use link that opens the account's portal on one document (a proposal), for staff to send;
    valid for DOCUMENT_LINK_TTL. Registered with upgrades.offers.documents (the console may not import the portal)."""
    now = now or timezone.now()
    if contact is not None and contact.account_id != account.pk:
        raise InvalidInput("Invalid link.", details={"contact": ["Not a contact of this account."]})
    _, url = _create(tenant, account=account, kind=str(PortalLinkKind.DOCUMENT), contact=contact,
                     landing=reverse(f"portal:{kind}", kwargs={"ref": ref}), actor=actor,
                     expires_at=now + DOCUMENT_LINK_TTL, now=now)  # fmt: skip
    return url


@dataclass(frozen=True)
class Exchange:
    """What a link turned out to be: `ok` (a session was made), `expired`, `used` or `invalid`."""

    status: str
    link: PortalSession | None = None


def find_link(signed: str) -> PortalSession | None:
    """The link's row (its tenant activated), or None for a forged, unknown or ambiguous token."""
    try:
        token = _signer().unsign(signed)
    except signing.BadSignature:
        return None
    digest = hash_token(token)
    tenant_ids = lookup_tenant_ids(PortalSession, "token_hash", digest)
    if len(tenant_ids) != 1:
        return None
    activate_tenant(tenant_ids[0])
    return (
        PortalSession.objects.for_tenant(tenant_ids[0])
        .select_related("tenant", "account", "contact", "offer")
        .filter(token_hash=digest)
        .first()
    )


def peek_link(signed: str, *, now: datetime | None = None) -> Exchange:
    """What using the link would answer, without using it: a GET (or a mail scanner's prefetch) never consumes."""
    now = now or timezone.now()
    link = find_link(signed)
    if link is None:
        return Exchange("invalid")
    if link.used_at is not None:
        return Exchange("used", link)
    if link.expires_at <= now:
        return Exchange("expired", link)
    return Exchange("ok", link)


def exchange_link(signed: str, *, now: datetime | None = None) -> Exchange:
    """Use a link once: the one conditional UPDATE decides, so two concurrent clicks can't both win."""
    now = now or timezone.now()
    link = find_link(signed)
    if link is None:
        return Exchange("invalid")
    if link.used_at is not None:
        return Exchange("used", link)
    if link.expires_at <= now:
        return Exchange("expired", link)
    won = (
        PortalSession.objects.for_tenant(link.tenant_id)
        .filter(pk=link.pk, used_at__isnull=True, expires_at__gt=now)
        .update(used_at=now, session_expires_at=now + SESSION_TTL)
    )
    if not won:
        return Exchange("used", link)
    link.used_at, link.session_expires_at = now, now + SESSION_TTL
    return Exchange("ok", link)


def load_session_link(data: dict | None, *, now: datetime | None = None) -> PortalSession | None:
    """The link behind a browser session (its tenant activated), or None once it ended."""
    now = now or timezone.now()
    if not isinstance(data, dict):
        return None
    tenant_id, link_id = data.get("tenant"), data.get("link")
    if not isinstance(tenant_id, int) or not isinstance(link_id, int):
        return None
    activate_tenant(tenant_id)
    link = (
        PortalSession.objects.for_tenant(tenant_id)
        .select_related("tenant", "account", "account__assigned_csm", "contact")
        .filter(pk=link_id, used_at__isnull=False, session_expires_at__gt=now)
        .first()
    )
    if link is None:
        activate_tenant(None)
    return link


def contact_for(link: PortalSession) -> Contact | None:
    """Whom a fresh link goes to: the link's contact, else the account's first contact on file."""
    if link.contact_id:
        return link.contact
    return Contact.objects.for_tenant(link.tenant_id).filter(account_id=link.account_id).order_by("pk").first()


def send_fresh_link(link: PortalSession, *, now: datetime | None = None) -> bool:
    """Email a fresh link (to the same offer when there was one) to the account's contact on file.

    At most one per old link (messaging admits one message per contact, template and cause).
    Returns whether a message was admitted for sending."""
    from messaging import services as messaging
    from upgrades.offers.services.messages import offer_context

    now = now or timezone.now()
    tenant = link.tenant
    contact = contact_for(link)
    offer = link.offer
    if contact is None or offer is None:
        return False
    context = offer_context(tenant, offer)  # carries a fresh offer link (the builder below)
    message = messaging.send_message(
        tenant,
        contact=contact,
        template_key="offer-sent",
        cause=f"portal-link:{link.pk}",
        context=context,
        category="transactional",
        now=now,
    )
    return message.state in ("queued", "held", "sent")
