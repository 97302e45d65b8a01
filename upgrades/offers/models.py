"""Offers, the settings that make them, trials, and what customers told us.

An `Offer` is built by the engine (upgrades.offers.engine) from an open signal or on demand:
the recommendation with its evidence, the options (monthly / annual / multi-year) with their
savings, the anchor, the discount from policy, the quote (the same `prorate` billing uses, then
Stripe's preview when the customer opens it) and the ROI from the tenant's value model.
All of it is a snapshot in JSON, so what a customer saw is what they are charged.

Lifecycle (upgrades.offers.services.lifecycle holds the legal moves):

    draft -> awaiting_review -> sent -> viewed -> accepted -> fulfilled
          \\------------------/    \\      \\          \\-> (payment failed: stays accepted, shows the
                                   \\      \\               plan change's failure and a retry path)
       declined | expired | withdrawn from any open state

One active offer per account and target: a partial unique constraint over the open states, so a
regeneration (a task run twice) finds the offer it already made instead of making another.
Every transition is an `OfferEvent` row (append-only) and an audit entry.

`OfferSettings` is governed like the catalog and the rules (draft -> awaiting approval -> live ->
retired, approved by a second person), so no offer reaches a customer that nobody approved.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.tenancy import AppendOnly, TenantOwned


class SettingsState(models.TextChoices):
    DRAFT = "draft", "Draft"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    LIVE = "live", "Live"
    RETIRED = "retired", "Retired"


class OfferSettings(TenantOwned):
    """How a tenant's offers are made. One live version at a time; a change is a new draft version.

    `value_model` drivers, each evaluated with the account's own numbers (conservative by default):
      {"kind": "hours_saved", "meter": "<meter key>", "hours_per_unit": "0.05", "hourly_cost": 6000,
       "label": "..."}                                    (hourly_cost in minor units)
      {"kind": "revenue_at_risk", "amount": 120000, "probability_percent": "5", "label": "..."}
      {"kind": "incidents_avoided", "per_month": "0.5", "cost_per_incident": 250000, "label": "..."}
    `discount_variants`: [{"key": "none", "percent": "0"}, {"key": "launch10", "percent": "10",
      "explanation": "..."}] — applied only within the tenant's DiscountPolicy cap; a variant over
      the cap makes the offer wait for a recorded approval.
    """

    version = models.PositiveIntegerField(default=1, editable=False)
    name = models.CharField(max_length=100, default="Offer settings")
    signal_kinds = models.JSONField(
        default=list, blank=True, help_text="Signal kinds that make offers, e.g. ['upgrade_opportunity']."
    )
    expiry_days = models.PositiveIntegerField(default=21, validators=[MinValueValidator(1), MaxValueValidator(365)])
    requires_csm_review = models.BooleanField(
        default=False, help_text="Every offer waits for a CSM to review it before it is sent."
    )
    value_model = models.JSONField(default=list, blank=True)
    discount_variants = models.JSONField(default=list, blank=True)
    trial_days = models.PositiveIntegerField(default=14, validators=[MinValueValidator(1), MaxValueValidator(90)])
    trial_window_days = models.PositiveIntegerField(
        default=180, help_text="One trial per account and target within this many days."
    )
    similar_min_accounts = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(5)], help_text="Show similar customers' outcomes only from this many."
    )
    state = models.CharField(max_length=20, choices=SettingsState.choices, default=SettingsState.DRAFT, editable=False)
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
    approval_comment = models.CharField(max_length=1000, blank=True, default="", editable=False)
    live_at = models.DateTimeField(null=True, blank=True, editable=False)
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "offer settings"
        verbose_name_plural = "offer settings"
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "version"], name="offersettings_unique_version"),
            models.UniqueConstraint(fields=["tenant"], condition=models.Q(state="live"), name="offersettings_one_live"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def is_editable(self) -> bool:
        return self.state == SettingsState.DRAFT


class OfferState(models.TextChoices):
    DRAFT = "draft", "Draft"
    AWAITING_REVIEW = "awaiting_review", "Awaiting CSM review"
    SENT = "sent", "Sent"
    VIEWED = "viewed", "Viewed"
    ACCEPTED = "accepted", "Accepted"
    FULFILLED = "fulfilled", "Fulfilled"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"


# The states in which an offer is still "the" offer for its account and target.
OPEN_STATES = (
    OfferState.DRAFT,
    OfferState.AWAITING_REVIEW,
    OfferState.SENT,
    OfferState.VIEWED,
    OfferState.ACCEPTED,
)
CLOSED_STATES = (OfferState.FULFILLED, OfferState.DECLINED, OfferState.EXPIRED, OfferState.WITHDRAWN)


class OfferTargetKind(models.TextChoices):
    TIER = "tier", "Tier"
    ADDON = "addon", "Add-on"
    BUNDLE = "bundle", "Bundle"


class Offer(TenantOwned):
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+")
    signal = models.ForeignKey("upgrades.Signal", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    settings_version = models.ForeignKey(OfferSettings, on_delete=models.PROTECT, related_name="offers")
    state = models.CharField(max_length=20, choices=OfferState.choices, default=OfferState.DRAFT)
    # What is offered: the key of a tier, add-on or bundle (the catalog key, stable across versions).
    target_kind = models.CharField(max_length=8, choices=OfferTargetKind.choices)
    target_key = models.CharField(max_length=63)
    # What the account held when the offer was made (price version, seats, add-ons, entitlements).
    holding = models.JSONField(default=dict, blank=True)
    # {"sentence": ..., "model": {"name": ..., "inputs": {...}}, "meters": [{meter, used, limit, projected, ...}]}
    evidence = models.JSONField(default=dict, blank=True)
    # [{"key", "interval", "term_years", "tier", "addons", "price_ids", "seats", "amount", "monthly_equivalent",
    #   "saving": {"amount", "percent"} | null, "changes": {...}}]
    options = models.JSONField(default=list, blank=True)
    recommended_option = models.CharField(max_length=40, blank=True)
    anchor = models.JSONField(null=True, blank=True)
    discount = models.JSONField(null=True, blank=True, help_text="{percent, amount, explanation, within_policy}")
    # {"lines": [{description, amount, period_start, period_end}], "amount_due_now", "next_renewal_amount",
    #  "next_renewal_at", "currency", "source": "estimate" | "stripe", "quoted_at", "option"}
    quote = models.JSONField(null=True, blank=True)
    quoted_at = models.DateTimeField(null=True, blank=True)
    roi = models.JSONField(null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    requires_review = models.BooleanField(default=False)
    # A discount outside policy: the offer waits until someone with the capability records an approval.
    discount_approval_needed = models.BooleanField(default=False)
    discount_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    discount_approved_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    accepted_option = models.CharField(max_length=40, blank=True)
    plan_change = models.ForeignKey(
        "billing.PlanChange", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount_charged = models.BigIntegerField(null=True, blank=True, help_text="From the settled invoice.")
    # The experiment arm this offer was built for (analytics); empty outside experiments.
    variant = models.CharField(max_length=40, blank=True)
    created_by_label = models.CharField(max_length=200, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    viewed_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="Declined, expired or withdrawn.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "account", "target_kind", "target_key"],
                condition=models.Q(state__in=[s.value for s in OPEN_STATES]),
                name="offer_one_open_per_account_target",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "expires_at"]),
            models.Index(fields=["tenant", "account", "created_at"]),
            models.Index(fields=["tenant", "plan_change"]),
        ]

    def __str__(self) -> str:
        return f"Offer {self.pk}: {self.target_key} for account {self.account_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class OfferEvent(AppendOnly, TenantOwned):
    """One transition of an offer, timestamped: the offer funnel and the audit read it."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20)
    actor_label = models.CharField(max_length=200)
    note = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["tenant", "to_state", "at"])]


class FeedbackKind(models.TextChoices):
    DECLINE = "decline", "Declined an offer"
    SURVEY = "survey", "Survey answer"
    TALK_TO_PERSON = "talk_to_person", "Asked to talk to a person"


class DeclineReason(models.TextChoices):
    TOO_EXPENSIVE = "too_expensive", "Too expensive"
    NOT_NEEDED = "not_needed", "We don't need it"
    NOT_NOW = "not_now", "Not now"
    MISSING_FEATURE = "missing_feature", "Missing something we need"
    USING_ALTERNATIVE = "using_alternative", "Using something else"
    OTHER = "other", "Other"


class Feedback(AppendOnly, TenantOwned):
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+")
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback")
    contact = models.ForeignKey("accounts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=20, choices=FeedbackKind.choices)
    reason_code = models.CharField(max_length=32, choices=DeclineReason.choices, blank=True)
    text = models.TextField(blank=True, max_length=4000)
    # Survey answers, 1..5 each, when given.
    satisfaction = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    perceived_value = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    friction = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    source = models.CharField(max_length=16, default="api", help_text="api, portal, console or admin")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "feedback"
        indexes = [models.Index(fields=["tenant", "kind", "created_at"])]


class TrialState(models.TextChoices):
    ACTIVE = "active", "In progress"
    CONVERTED = "converted", "Upgraded"
    ENDED = "ended", "Ended"
    CANCELLED = "cancelled", "Ended early"


class Trial(TenantOwned):
    """A time-limited trial of a higher tier or an add-on: a licence grant that ends on its own.

    It sits on top of the paid plan (billing.LicenseGrant), so it reverts without touching the
    billing date. Paying for the upgrade mid-trial converts it: what was promised stays until
    the trial's own end (no silent end, no surprise charge).
    """

    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+")
    offer = models.ForeignKey(Offer, null=True, blank=True, on_delete=models.SET_NULL, related_name="trials")
    grant = models.OneToOneField("billing.LicenseGrant", on_delete=models.PROTECT, related_name="+")
    target_kind = models.CharField(max_length=8, choices=[("tier", "Tier"), ("addon", "Add-on")])
    target_key = models.CharField(max_length=63)
    state = models.CharField(max_length=16, choices=TrialState.choices, default=TrialState.ACTIVE)
    # Feature keys the trial unlocked (not in the paid plan): their use is recorded as early wins.
    unlocked_features = models.JSONField(default=list, blank=True)
    started_by_label = models.CharField(max_length=200)
    source = models.CharField(max_length=16, default="api", help_text="offer, csm, api or portal")
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "account", "target_kind", "target_key"],
                condition=models.Q(state="active"),
                name="trial_one_active_per_account_target",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "ends_at"]),
            models.Index(fields=["tenant", "account", "target_kind", "target_key", "starts_at"]),
        ]

    def __str__(self) -> str:
        return f"Trial of {self.target_key} for account {self.account_id} ({self.state})"


class TrialWin(TenantOwned):
    """An early win: a feature the trial unlocked, used. One row per trial and feature."""

    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="wins")
    feature = models.ForeignKey("catalog.Feature", on_delete=models.CASCADE, related_name="+")
    first_used_at = models.DateTimeField()
    last_used_at = models.DateTimeField()
    uses = models.PositiveIntegerField(default=0)
    quantity = models.BigIntegerField(default=0, help_text="Units of the feature's meter used during the trial.")

    class Meta:
        ordering = ["first_used_at", "id"]
        constraints = [models.UniqueConstraint(fields=["trial", "feature"], name="trialwin_unique_feature")]
