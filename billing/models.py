"""What each customer account holds (License), temporary overlays (LicenseGrant) and the
append-only history of changes with MRR before/after (LicenseChange, the source of NRR).

Invariant: a License's tier/add-ons/seats change only when a payment settled (or by an
audited CSM/admin action such as revoke/restore), never on a mere request.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.tenancy import TenantOwned


class LicenseStatus(models.TextChoices):
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"
    SUSPENDED = "suspended", "Suspended"


class License(TenantOwned):
    account = models.OneToOneField("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="license")
    tier = models.ForeignKey("catalog.Tier", on_delete=models.PROTECT, related_name="+")
    price = models.ForeignKey("catalog.Price", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              help_text="The exact price version held (may be retired: grandfathered).")
    addons = models.ManyToManyField("catalog.AddOn", blank=True, related_name="+")
    seats = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    interval = models.CharField(max_length=8, choices=[("month", "Monthly"), ("year", "Annual")], default="month")
    term_years = models.PositiveSmallIntegerField(default=1)
    commitment_ends_at = models.DateTimeField(null=True, blank=True)
    current_period_start = models.DateTimeField(default=timezone.now)
    current_period_end = models.DateTimeField()
    cancel_at_period_end = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=LicenseStatus.choices, default=LicenseStatus.ACTIVE)
    status_reason = models.CharField(max_length=200, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    mrr = models.BigIntegerField(default=0, help_text="Monthly recurring revenue in minor units.")
    stripe_customer_id = models.CharField(max_length=64, blank=True)
    stripe_subscription_id = models.CharField(max_length=64, blank=True)
    stripe_subscription_item_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "status"]), models.Index(fields=["tenant", "current_period_end"])]

    def __str__(self) -> str:
        return f"{self.account} — {self.tier} x{self.seats} ({self.status})"


class GrantKind(models.TextChoices):
    TRIAL = "trial", "Trial of a higher tier or add-on"
    CSM_GRANT = "csm_grant", "Granted by customer success"


class LicenseGrant(TenantOwned):
    """A temporary overlay on a licence (trial, CSM grant). It ends on its own at `ends_at`;
    the underlying licence and its billing date are untouched."""

    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="license_grants")
    kind = models.CharField(max_length=16, choices=GrantKind.choices)
    tier = models.ForeignKey("catalog.Tier", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    addon = models.ForeignKey("catalog.AddOn", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Set when ended early or swept after expiry.")
    reason = models.CharField(max_length=200, blank=True)
    reference = models.CharField(max_length=64, blank=True, help_text="Opaque id of the offer/trial/proposal.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "account", "ends_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(tier__isnull=False) | models.Q(addon__isnull=False),
                                   name="grant_has_tier_or_addon"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.tier or self.addon} until {self.ends_at:%Y-%m-%d}"

    def is_active_at(self, at) -> bool:
        return self.starts_at <= at < self.ends_at and (self.ended_at is None or at < self.ended_at)


class LicenseChange(TenantOwned):
    """Append-only history: from -> to, why, who, and MRR before/after (minor units)."""

    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="license_changes")
    license = models.ForeignKey(License, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes")
    kind = models.CharField(max_length=32, help_text="new, upgrade, downgrade, seats, interval, renewal, cancel, "
                                                     "revoke, restore, suspend, reactivate")
    from_state = models.JSONField(default=dict, blank=True)
    to_state = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    actor_label = models.CharField(max_length=200)
    reference = models.CharField(max_length=64, blank=True, help_text="Opaque offer/proposal/plan-change id.")
    mrr_before = models.BigIntegerField(default=0)
    mrr_after = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, default="USD")
    stripe_invoice_id = models.CharField(max_length=64, blank=True)
    effective_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-effective_at", "-id"]
        indexes = [models.Index(fields=["tenant", "effective_at"])]

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValueError("Licence changes are append-only")
        super().save(*args, **kwargs)
