"""Messages in the admin: read-only, with the state and, for a suppressed one, why."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.admin_base import TenantScopedAdmin
from accounts.models import Capability
from messaging.models import Message


@admin.register(Message)
class MessageAdmin(TenantScopedAdmin):
    list_display = [
        "created_at",
        "template_key",
        "variant",
        "channel",
        "to_email",
        "state",
        "suppressed_reason",
        "cause",
    ]
    list_filter = ["state", "channel", "category", "suppressed_reason"]
    search_fields = ["to_email", "cause", "template_key"]
    view_capability = Capability.VIEW
    audit_admin_edits = False
    list_select_related = ["contact", "account"]
    fields = ["created_at", "account", "contact", "to_email", "template", "template_key", "variant", "cause",
              "channel", "category", "placement", "state", "suppressed_reason", "due_at", "counted_at", "sent_at",
              "error", "rendered", "links", "context"]  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
