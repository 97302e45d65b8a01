"""The outbox in the admin: read-only, scoped to the staff member's tenant; superusers see all mail."""

from __future__ import annotations

import re

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from accounts.admin_base import TenantScopedAdmin
from accounts.invitations import SENSITIVE_HEADER, SENSITIVE_ROLE_HEADER
from accounts.models import Capability, Membership, Role
from messaging.models import OutboxEmail

_LINK = re.compile(r"https?://[^\s\"'<>]+")


def _header(obj: OutboxEmail, name: str) -> str:
    for key, value in (obj.headers or {}).items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) and value else value)
    return ""


def may_read_links(request: HttpRequest, obj: OutboxEmail) -> bool:
    """Sensitive mail (an invitation: its link signs someone in) shows its links only to platform superusers and
    to staff who may manage members (MANAGE_TENANT) and rank at least the invited role. Everyone else who may
    read the tenant's outbox sees the email with its links hidden."""
    if not _header(obj, SENSITIVE_HEADER) or request.user.is_superuser:
        return True
    membership: Membership | None = getattr(request, "membership", None)
    role = _header(obj, SENSITIVE_ROLE_HEADER)
    return (
        membership is not None
        and membership.tenant_id == obj.tenant_id
        and membership.can(Capability.MANAGE_TENANT)
        and role in Role.values
        and membership.outranks_or_equals(role)
    )


def _hidden_note(obj: OutboxEmail) -> str:
    role = _header(obj, SENSITIVE_ROLE_HEADER)
    label = Role(role).label if role in Role.values else "the invited role"
    return f"[link hidden: only staff who manage members and rank at least {label} see invitation links]"


# Put in front of the stored HTML inside the sandboxed iframe: no scripts (the sandbox already forbids
# them), and no remote loads, so viewing an email can't fire a tracking pixel or fetch anything.
_PREVIEW_CSP = (
    '<meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:\">"
)

_DETAIL_FIELDS = [
    "created_at",
    "from_email",
    "recipients",
    "cc_list",
    "bcc_list",
    "subject",
    "headers_view",
    "text_body_view",
    "html_body_view",
    "attachments_view",
]


@admin.register(OutboxEmail)
class OutboxEmailAdmin(TenantScopedAdmin):
    list_display = ["created_at", "recipients", "subject"]
    search_fields = ["subject", "to"]
    view_capability = Capability.VIEW
    audit_admin_edits = False  # nothing is ever edited here

    def get_queryset(self, request: HttpRequest):
        if request.user.is_superuser:
            # Platform mail has no tenant; the platform operator sees every message.
            return super(TenantScopedAdmin, self).get_queryset(request).select_related("tenant")
        return super().get_queryset(request)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj.links_hidden = not may_read_links(request, obj)
        return obj

    def _body(self, obj: OutboxEmail, body: str) -> str:
        return (
            _LINK.sub(_hidden_note(obj), body)
            if getattr(obj, "links_hidden", True) and _header(obj, SENSITIVE_HEADER)
            else body
        )

    def get_list_display(self, request: HttpRequest):
        return ["created_at", "tenant", "recipients", "subject"] if request.user.is_superuser else self.list_display

    def get_fields(self, request: HttpRequest, obj=None):
        return ["tenant", *_DETAIL_FIELDS] if request.user.is_superuser else _DETAIL_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    # Everything below is escaped by format_html; stored email content is never trusted markup.

    @admin.display(description="to")
    def recipients(self, obj: OutboxEmail) -> str:
        return ", ".join(obj.to)

    @admin.display(description="cc")
    def cc_list(self, obj: OutboxEmail) -> str:
        return ", ".join(obj.cc) or "-"

    @admin.display(description="bcc")
    def bcc_list(self, obj: OutboxEmail) -> str:
        return ", ".join(obj.bcc) or "-"

    @admin.display(description="headers")
    def headers_view(self, obj: OutboxEmail) -> str:
        lines = []
        for name, value in (obj.headers or {}).items():
            for one in value if isinstance(value, list) else [value]:
                lines.append((name, one))
        return format_html(
            '<pre data-testid="outbox-headers" style="white-space:pre-wrap;margin:0">{}</pre>',
            format_html_join("\n", "{}: {}", lines),
        )

    @admin.display(description="text body")
    def text_body_view(self, obj: OutboxEmail) -> str:
        if not obj.text_body:
            return "(no text part)"
        return format_html(
            '<pre data-testid="outbox-text" style="white-space:pre-wrap;margin:0">{}</pre>',
            self._body(obj, obj.text_body),
        )

    @admin.display(description="HTML body")
    def html_body_view(self, obj: OutboxEmail) -> str:
        if not obj.html_body:
            return "(no HTML part)"
        # sandbox="" gives the frame an opaque origin with scripts, forms, popups and navigation off.
        return format_html(
            '<iframe data-testid="outbox-html" sandbox="" referrerpolicy="no-referrer" title="HTML body (sandboxed)" '
            'style="width:100%;min-height:420px;border:1px solid var(--hairline-color,#ccc);background:#fff" '
            'srcdoc="{}"></iframe>',
            _PREVIEW_CSP + self._body(obj, obj.html_body),
        )

    @admin.display(description="attachments")
    def attachments_view(self, obj: OutboxEmail) -> str:
        if not obj.attachments:
            return "-"
        return format_html_join(
            ", ", "{} ({}, {} bytes)", ((a["filename"], a["mimetype"], a["size"]) for a in obj.attachments)
        )
