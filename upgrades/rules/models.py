"""Trigger rules, the signals they fire, and account scores.

A `TriggerRule` holds a condition tree as validated JSON (see upgrades.rules.conditions:
one schema in and out, no eval). Its governance mirrors the catalog's: draft -> awaiting
approval -> live -> retired, approved by a second person (four eyes), every step audited.

`Signal` rows are deduplicated by cooldown with one arbitrated write: `dedup_key` is the
rule, the account and the cooldown bucket the firing fell in, unique per tenant, and the
evaluation inserts with ON CONFLICT DO NOTHING, so a task that runs twice never doubles a
signal.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.tenancy import TenantOwned
from catalog.models import key_validator


class RuleState(models.TextChoices):
    DRAFT = "draft", "Draft"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    LIVE = "live", "Live"
    RETIRED = "retired", "Retired"


class SignalKind(models.TextChoices):
    UPGRADE_OPPORTUNITY = "upgrade_opportunity", "Upgrade opportunity"
    TRIAL_CANDIDATE = "trial_candidate", "Trial candidate"
    CHURN_RISK = "churn_risk", "Churn risk"
    RENEWAL = "renewal", "Renewal"


class TargetKind(models.TextChoices):
    NONE = "none", "No suggestion"
    LOWEST_FIT = "lowest_fit", "The lowest tier that fits"
    TIER = "tier", "A tier"
    ADDON = "addon", "An add-on"
    BUNDLE = "bundle", "A bundle"


class TriggerRule(TenantOwned):
    key = models.CharField(max_length=63, validators=[key_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    condition = models.JSONField(help_text="The condition tree (all / any / not of typed conditions).")
    signal_kind = models.CharField(max_length=32, choices=SignalKind.choices)
    target_kind = models.CharField(max_length=16, choices=TargetKind.choices, default=TargetKind.LOWEST_FIT)
    target_key = models.CharField(max_length=63, blank=True, help_text="Tier, add-on or bundle key.")
    priority = models.PositiveSmallIntegerField(default=50, validators=[MaxValueValidator(100)])
    cooldown_days = models.PositiveIntegerField(
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Days before it may fire again.",
    )
    requires_csm_review = models.BooleanField(default=False)
    state = models.CharField(max_length=20, choices=RuleState.choices, default=RuleState.DRAFT, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    contributor_ids = models.JSONField(default=list, blank=True, editable=False)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    live_at = models.DateTimeField(null=True, blank=True, editable=False)
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "key"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="triggerrule_unique_key")]
        indexes = [models.Index(fields=["tenant", "state"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.state == RuleState.DRAFT


class SignalState(models.TextChoices):
    OPEN = "open", "Open"
    ACTED_ON = "acted_on", "Acted on"
    DISMISSED = "dismissed", "Dismissed"
    EXPIRED = "expired", "Expired"


class Signal(TenantOwned):
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(TriggerRule, on_delete=models.PROTECT, related_name="signals")
    kind = models.CharField(max_length=32, choices=SignalKind.choices)
    evidence = models.JSONField(default=dict, help_text="{'sentence': ..., 'facts': [{kind, numbers, sentence}]}")
    state = models.CharField(max_length=16, choices=SignalState.choices, default=SignalState.OPEN)
    priority = models.PositiveSmallIntegerField(default=50)
    target_kind = models.CharField(max_length=16, choices=TargetKind.choices, default=TargetKind.LOWEST_FIT)
    target_key = models.CharField(max_length=63, blank=True)
    requires_csm_review = models.BooleanField(default=False)
    # rule id, account id and cooldown bucket: the one arbitrated write that makes firing idempotent.
    dedup_key = models.CharField(max_length=80, editable=False)
    # How it left `open` (upgrades.rules.services.lifecycle): once, and only open -> acted on / dismissed / expired.
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_by = models.CharField(max_length=200, blank=True, editable=False, help_text="Who acted on or dismissed it.")
    closed_reason = models.TextField(blank=True, editable=False)
    reference = models.CharField(max_length=200, blank=True, editable=False, help_text="What acted on it (an offer).")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "dedup_key"], name="signal_unique_dedup")]
        indexes = [
            models.Index(fields=["tenant", "account", "created_at"]),
            models.Index(fields=["tenant", "rule", "account", "created_at"]),
            models.Index(fields=["tenant", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.evidence.get('sentence', '')}"[:120]


class AccountLimit(TenantOwned):
    """An account's effective limit for a meter (licence + add-ons + grants), as the compiled
    conditions read it. Refreshed from usage's plans before every evaluation of those accounts,
    so SQL and Python read the same number. Only finite, positive limits have a row."""

    pk = models.CompositePrimaryKey("tenant_id", "account_id", "meter_id")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+", editable=False)
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+", db_index=False)
    meter = models.ForeignKey("catalog.Meter", on_delete=models.CASCADE, related_name="+", db_index=False)
    limit_value = models.BigIntegerField()
    refreshed_at = models.DateTimeField(default=timezone.now)


class DirtyAccount(TenantOwned):
    """An account whose data changed since its last evaluation (marked on ingest)."""

    pk = models.CompositePrimaryKey("tenant_id", "account_id")
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="+", editable=False)
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+", db_index=False)
    marked_at = models.DateTimeField(default=timezone.now)


DEFAULT_WEIGHTS: dict[str, dict[str, int]] = {
    "readiness": {
        "utilisation": 40,  # highest utilisation of any limited meter
        "growth": 20,  # month-over-month growth of usage
        "gate_hits": 25,  # feature-gate hits in 30 days
        "open_upgrade_signals": 15,
    },
    "health": {
        "activity": 40,  # usage in the last 14 days vs the 14 before
        "tickets": 20,  # support tickets in 30 days (fewer is healthier)
        "nps": 25,  # latest survey score in 90 days
        "churn_signals": 15,
    },
}


class ScoreWeights(TenantOwned):
    """Per-tenant weights of the score factors; missing factors take DEFAULT_WEIGHTS."""

    weights = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="scoreweights_one_per_tenant")]


class AccountScore(TenantOwned):
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+")
    readiness = models.PositiveSmallIntegerField(validators=[MaxValueValidator(100)])
    health = models.PositiveSmallIntegerField(validators=[MaxValueValidator(100)])
    churn_flags = models.JSONField(default=list, blank=True)
    factors = models.JSONField(default=dict, blank=True, help_text="{'readiness': [...], 'health': [...]}")
    previous_readiness = models.PositiveSmallIntegerField(null=True, blank=True)
    previous_health = models.PositiveSmallIntegerField(null=True, blank=True)
    previous_at = models.DateTimeField(null=True, blank=True)
    week_started_at = models.DateTimeField(default=timezone.now)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "account"], name="accountscore_one_per_account")]
