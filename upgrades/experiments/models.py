"""Experiments: a tenant tests variants of its offers against a control group that gets nothing.

An `Experiment` is governed like the settings and rules it varies:

    draft -> running -> stopped -> rolled_out
          (a draft may also be stopped without ever running)

`variants` is a list of arms, each with a weight (share of the treated accounts) and what it changes:
  [{"key": "copy-b", "weight": 1, "template_variant": "b", "discount_variant": "launch10",
    "anchor": true, "channel": "email", "trial_days": 14}]
`control_percent` of the assigned accounts are held out: no offer, no upgrade outreach on any channel;
the offer they would have got is recorded on their `ExperimentAssignment` (not released).

Assignment is deterministic (a hash of tenant, experiment and account -> bucket), made once, when the
trigger fires; every assigned account counts in the results, controls who upgrade on their own included.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.tenancy import TenantOwned


class ExperimentState(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    ROLLED_OUT = "rolled_out", "Rolled out"


class Experiment(TenantOwned):
    name = models.CharField(max_length=120)
    hypothesis = models.CharField(max_length=1000, blank=True)
    state = models.CharField(
        max_length=20, choices=ExperimentState.choices, default=ExperimentState.DRAFT, editable=False
    )
    # [{"key", "weight", "template_variant", "discount_variant", "anchor", "channel", "trial_days"}]
    variants = models.JSONField(default=list, blank=True)
    control_percent = models.PositiveIntegerField(
        default=20, validators=[MinValueValidator(1), MaxValueValidator(90)], help_text="Share held out (percent)."
    )
    # Which signal kinds enrol accounts (empty: every signal that would make an offer).
    signal_kinds = models.JSONField(default=list, blank=True)
    expected_monthly_accounts = models.PositiveIntegerField(default=400)
    baseline_conversion_percent = models.DecimalField(max_digits=5, decimal_places=2, default=5)
    alpha = models.DecimalField(max_digits=4, decimal_places=3, default="0.050")
    power = models.DecimalField(max_digits=4, decimal_places=3, default="0.800")
    planned_days = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    stopped_at = models.DateTimeField(null=True, blank=True, editable=False)
    winner = models.CharField(max_length=40, blank=True, editable=False)
    rolled_out_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    rolled_out_at = models.DateTimeField(null=True, blank=True, editable=False)
    # What the rollout changed: {"variant": {...}, "applied": [...]}
    rollout = models.JSONField(null=True, blank=True, editable=False)
    created_by_label = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "state"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_state_display()})"

    @property
    def is_editable(self) -> bool:
        return self.state == ExperimentState.DRAFT


CONTROL = "control"  # the arm of the held-out accounts (upgrades.experiments.buckets)


class ExperimentAssignment(TenantOwned):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments")
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+")
    # A variant key, or "control".
    arm = models.CharField(max_length=40)
    bucket = models.PositiveIntegerField(help_text="0..9999, from the hash of tenant, experiment and account.")
    assigned_at = models.DateTimeField(default=timezone.now)
    signal = models.ForeignKey("upgrades.Signal", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    offer = models.ForeignKey("upgrades.Offer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Controls: the offer they would have got (recommendation and pricing, never released).
    withheld_offer = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["assigned_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "account"], name="experimentassignment_one_per_account"),
        ]
        indexes = [
            models.Index(fields=["tenant", "account"]),
            models.Index(fields=["experiment", "arm"]),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} in {self.experiment_id}: {self.arm}"

    @property
    def is_control(self) -> bool:
        return self.arm == CONTROL
