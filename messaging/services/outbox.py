"""Writes for the outbox."""

from __future__ import annotations

from typing import Any

from django.core.mail import EmailMessage
from django.db import transaction

from accounts.models import Tenant
from accounts.tenancy import platform_row_context
from messaging.models import OutboxEmail

# Senders put the tenant's slug here so the outbox can file the email under that tenant.
TENANT_HEADER = "X-Tierwise-Tenant"


def _header(message: EmailMessage, name: str) -> str | None:
    for key, value in (message.extra_headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _split_parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) bodies: the main body by its subtype, plus the first text/html alternative."""
    text, html = "", ""
    if message.content_subtype == "html":
        html = message.body or ""
    else:
        text = message.body or ""
    for content, mimetype in getattr(message, "alternatives", None) or []:
        if mimetype == "text/html" and not html:
            html = content.decode() if isinstance(content, bytes) else str(content)
        elif mimetype == "text/plain" and not text:
            text = content.decode() if isinstance(content, bytes) else str(content)
    return text, html


def _headers(mime: Any) -> dict[str, str | list[str]]:
    """The top-level MIME headers; a repeated header keeps every value, in order."""
    headers: dict[str, str | list[str]] = {}
    for name, value in mime.items():
        value = str(value)
        if name not in headers:
            headers[name] = value
        else:
            previous = headers[name]
            headers[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
    return headers


def _attachment_summary(message: EmailMessage) -> list[dict[str, Any]]:
    summary = []
    for attachment in message.attachments:
        if isinstance(attachment, tuple):
            filename, content, mimetype = attachment
            size = len(content) if content is not None else 0
        else:  # a prebuilt MIMEBase part
            filename, mimetype = attachment.get_filename() or "", attachment.get_content_type()
            size = len(attachment.get_payload(decode=True) or b"")
        summary.append({"filename": filename or "", "mimetype": mimetype or "", "size": size})
    return summary


@transaction.atomic
def store_email(message: EmailMessage, *, tenants: dict[str, Tenant | None] | None = None) -> OutboxEmail:
    """Keeps one outgoing email. Raises on a malformed header (as SMTP sending would) or a database error.

    `tenants` (slug -> tenant) lets one backend connection look each tenant up once for a batch."""
    mime = message.message()  # builds and validates the headers exactly as they would be sent
    slug = (_header(message, TENANT_HEADER) or "").strip()
    if tenants is not None and slug in tenants:
        tenant = tenants[slug]
    else:
        tenant = Tenant.objects.filter(slug=slug).first() if slug else None
        if tenants is not None:
            tenants[slug] = tenant
    text, html = _split_parts(message)
    with platform_row_context(tenant):  # row-level security: a row without a tenant is written outside tenants
        return OutboxEmail.objects.create(
            tenant=tenant,
            from_email=str(message.from_email or "")[:320],
            to=[str(a) for a in message.to],
            cc=[str(a) for a in message.cc],
            bcc=[str(a) for a in message.bcc],
            subject=str(message.subject or ""),
            text_body=text,
            html_body=html,
            headers=_headers(mime),
            attachments=_attachment_summary(message),
        )
