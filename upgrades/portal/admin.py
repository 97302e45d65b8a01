"""Portal settings in the admin: where return URLs may point (allowed origins) and the portal's brand.
One row per tenant; the owner edits (origins decide where the portal sends people back to)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from accounts.admin_base import TenantScopedAdmin
from upgrades.portal.models import PortalSettings

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]"}


def clean_origin(value: str) -> str:
    """'https://app.example.com' (or http://localhost:8000): scheme and host only, no path, query or user."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port  # raises on a bad port
    except ValueError:
        raise ValidationError(f"{value!r} is not a URL.") from None
    host = (parts.hostname or "").lower()
    shown_host = f"[{host}]" if ":" in host else host
    if parts.scheme == "http" and shown_host not in LOCAL_HOSTS:
        raise ValidationError(f"{value!r}: use https:// (http:// only for localhost).")
    if parts.scheme not in ("http", "https") or not host:
        raise ValidationError(f"{value!r}: write an origin like https://app.example.com.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValidationError(f"{value!r}: an origin has no path, query or user, e.g. https://app.example.com.")
    return f"{parts.scheme}://{shown_host}" + (f":{port}" if port else "")


class PortalSettingsForm(forms.ModelForm):
    allowed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One origin a line, e.g. https://app.example.com. Empty: any http(s) return URL.",
    )

    logo_url = forms.URLField(required=False, max_length=500, assume_scheme="https")

    class Meta:
        model = PortalSettings
        fields = ["allowed_origins", "logo_url", "brand_colour"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["allowed_origins"] = "\n".join(self.instance.allowed_origins or [])

    def clean_allowed_origins(self) -> list[str]:
        lines = [line.strip() for line in (self.cleaned_data.get("allowed_origins") or "").splitlines()]
        origins, errors = [], []
        for line in filter(None, lines):
            try:
                origin = clean_origin(line)
            except ValidationError as exc:
                errors.extend(exc.messages)
                continue
            if origin not in origins:
                origins.append(origin)
        if errors:
            raise ValidationError(errors)
        return origins

    def clean_logo_url(self) -> str:
        value = self.cleaned_data.get("logo_url") or ""
        if value and urlsplit(value).scheme != "https":
            raise ValidationError("The logo is loaded by customers' browsers: use an https:// URL.")
        return value

    def clean_brand_colour(self) -> str:
        value = (self.cleaned_data.get("brand_colour") or "").strip()
        if not COLOUR.match(value):
            raise ValidationError("Write the colour as #rrggbb, e.g. #1d4ed8.")
        return value.lower()


@admin.register(PortalSettings)
class PortalSettingsAdmin(TenantScopedAdmin):
    form = PortalSettingsForm
    # edit_capability stays MANAGE_TENANT (the owner): origins decide where the portal sends people back to.
    list_display = ["__str__", "logo_url", "brand_colour"]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        tenant = getattr(request, "tenant", None)
        exists = tenant is not None and PortalSettings.objects.for_tenant(tenant).exists()
        return not exists and super().has_add_permission(request, *args)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
