"""Messaging settings in the admin (branding, caps, quiet hours): one row per tenant, owners and PMs edit."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from accounts.admin_base import TenantScopedAdmin
from accounts.models import Capability
from messaging.models import MessagingSettings


@admin.register(MessagingSettings)
class MessagingSettingsAdmin(TenantScopedAdmin):
    edit_capability = Capability.EDIT_RULES
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["__str__", "from_name", "cap_count", "account_cap_count", "cap_window_days", "quiet_hours_start",
                    "quiet_hours_end", "decline_quiet_days"]  # fmt: skip

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        tenant = getattr(request, "tenant", None)
        exists = tenant is not None and MessagingSettings.objects.for_tenant(tenant).exists()
        return not exists and super().has_add_permission(request, *args)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
