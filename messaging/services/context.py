"""What messaging adds to every template's context: the contact, the account, branding and the links."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import reverse

from accounts.models import Contact, Tenant
from messaging import tokens
from messaging.selectors import get_settings


def site_url(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def unsubscribe_url(tenant: Tenant | int, contact_id: int) -> str:
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    token = tokens.make(tokens.UNSUBSCRIBE, tenant_id=tenant_id, object_id=contact_id)
    return site_url(reverse("messaging-unsubscribe", args=[token]))


def preferences_url(tenant: Tenant | int, contact_id: int) -> str:
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    token = tokens.make(tokens.UNSUBSCRIBE, tenant_id=tenant_id, object_id=contact_id)
    return site_url(reverse("messaging-preferences", args=[token]))


def brand(tenant: Tenant) -> dict[str, str]:
    prefs = get_settings(tenant)
    return {"name": prefs.from_name or tenant.name, "logo_url": prefs.logo_url, "colour": prefs.brand_colour}


def base_context(tenant: Tenant, *, contact: Contact | None, sample: bool = False, brand_: dict | None = None) -> dict:
    """The common variables (messaging.rendering.COMMON_VARIABLES) for `contact`, or sample ones."""
    if contact is None or sample:
        person: dict[str, Any] = {"name": "Sam Rivera", "first_name": "Sam", "email": "sam@example.com"}
        company: dict[str, Any] = {"name": "Example Ltd", "external_id": "example", "industry": "software"}
        links = {"preferences_url": site_url("/m/preferences/sample"), "unsubscribe_url": site_url("/m/u/sample")}
    else:
        account = contact.account
        name = contact.name or ""
        person = {"name": name or contact.email, "first_name": (name.split() or [""])[0] or "there",
                  "email": contact.email}  # fmt: skip
        company = {"name": account.name, "external_id": account.external_id, "industry": account.industry}
        links = {
            "preferences_url": preferences_url(tenant, contact.pk),
            "unsubscribe_url": unsubscribe_url(tenant, contact.pk),
        }
    return {"contact": person, "account": company, "brand": brand_ or brand(tenant), **links}
