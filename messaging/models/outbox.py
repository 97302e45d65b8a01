"""The outbox: every email the embedded shape sends, kept so staff can read it in the admin."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Tenant
from accounts.tenancy import TenantQuerySet


class OutboxEmail(models.Model):
    """One email as it was handed to the mail backend. Append-only.

    The tenant is null for platform mail (e.g. sent before any tenant exists).
    """

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    from_email = models.CharField(max_length=320, blank=True)
    to = models.JSONField(default=list, blank=True, help_text="Recipient addresses, as given.")
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    subject = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True, help_text="Empty when the email had no HTML part.")
    headers = models.JSONField(default=dict, blank=True, help_text="The headers as they would go over SMTP.")
    attachments = models.JSONField(default=list, blank=True, help_text="Name, type and size of each attachment.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]
        verbose_name = "outbox email"
        verbose_name_plural = "outbox emails"

    def __str__(self) -> str:
        return f"{self.subject or '(no subject)'} → {', '.join(self.to)}"
