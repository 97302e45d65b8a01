"""Portal sessions (single-use links, stored hashed) and a tenant's portal branding and allowed origins."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.tenancy import TenantOwned


class PortalLinkKind(models.TextChoices):
    SESSION = "session", "Portal session (API)"
    OFFER = "offer", "Link to one offer (email)"
    FRESH = "fresh", "Fresh link (asked for from an expired one)"
    DOCUMENT = "document", "Link to one proposal (made by staff)"
    STAFF = "staff", "Opened by staff"


class PortalSession(TenantOwned):
    """A single-use token exchanged for a browser session bound to one account (and contact) of one tenant.

    Only the SHA-256 of the token is stored; the token lives in the URL alone. `used_at` marks the
    exchange (once); the browser session it made ends at `session_expires_at` (at most one hour)."""

    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("accounts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    offer = models.ForeignKey("upgrades.Offer", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=PortalLinkKind.choices, default=PortalLinkKind.SESSION)
    landing = models.CharField(max_length=200, blank=True, help_text="The portal page the link opens on.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    return_url = models.URLField(max_length=2000, blank=True)
    created_by_label = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(help_text="The link must be used before this.")
    used_at = models.DateTimeField(null=True, blank=True)
    session_expires_at = models.DateTimeField(null=True, blank=True, help_text="The browser session ends then.")

    class Meta:
        indexes = [models.Index(fields=["tenant", "account", "created_at"], name="portal_session_account")]

    def __str__(self) -> str:
        return f"portal {self.kind} for account {self.account_id}"


class PortalSettings(TenantOwned):
    """The tenant's portal: where return URLs may point, and its brand (logo, colour)."""

    allowed_origins = models.JSONField(
        default=list, blank=True, help_text='e.g. ["https://app.example.com"]; empty: any http(s) URL.'
    )
    logo_url = models.URLField(max_length=500, blank=True)
    brand_colour = models.CharField(max_length=7, default="#1d4ed8", help_text="#rrggbb")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="portal_settings_one_per_tenant")]
        verbose_name_plural = "portal settings"

    def __str__(self) -> str:
        return f"portal settings of tenant {self.tenant_id}"
