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

from accounts.tenancy import AppendOnly, TenantOwned
from catalog.templatetags.catalog_money import money


class LicenseStatus(models.TextChoices):
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"
    SUSPENDED = "suspended", "Suspended"


class License(TenantOwned):
    account = models.OneToOneField("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="license")
    tier = models.ForeignKey("catalog.Tier", on_delete=models.PROTECT, related_name="+")
    price = models.ForeignKey(
        "catalog.Price",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The exact price version held (may be retired: grandfathered).",
    )
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
    # Revoke/suspend remember the status they interrupted, so restore puts it back.
    held_from_status = models.CharField(max_length=16, choices=LicenseStatus.choices, blank=True)
    held_at = models.DateTimeField(null=True, blank=True)
    # Renewal: a multi-year commitment renews as a whole term, with the policy's loyalty discount.
    renewal_discount_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    # A ramped term: the discount for each year of the committed term ("10.00", "12.50", ...); empty when one
    # discount holds throughout. Stripe bills it with a subscription schedule (one phase per discount), and the
    # licence's renewal discount and MRR follow the year each period starts in.
    term_percents = models.JSONField(default=list, blank=True)
    stripe_schedule_id = models.CharField(max_length=64, blank=True)
    # The newest Stripe event (its `created`) whose object we synced: older ones only trigger a re-fetch.
    stripe_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "licence"
        verbose_name_plural = "licences"
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
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "licence grant"
        verbose_name_plural = "licence grants"
        indexes = [models.Index(fields=["tenant", "account", "ends_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(tier__isnull=False) | models.Q(addon__isnull=False), name="grant_has_tier_or_addon"
            ),
        ]

    def __str__(self) -> str:
        # The date in the active time zone (the tenant's in staff pages), as the licence page shows it.
        what = f"{self.get_kind_display()}: {self.tier or self.addon}"
        return f"{what} until {timezone.localtime(self.ends_at):%Y-%m-%d}" if self.ends_at else what

    def is_active_at(self, at) -> bool:
        return self.starts_at <= at < self.ends_at and (self.ended_at is None or at < self.ended_at)


class LicenseChange(AppendOnly, TenantOwned):
    """Append-only history: from -> to, why, who, and MRR before/after (minor units)."""

    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="license_changes")
    license = models.ForeignKey(License, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes")
    kind = models.CharField(
        max_length=32,
        help_text="new, upgrade, downgrade, seats, interval, renewal, cancel, revoke, restore, suspend, reactivate",
    )
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
        verbose_name = "licence change"
        verbose_name_plural = "licence changes"
        ordering = ["-effective_at", "-id"]
        indexes = [models.Index(fields=["tenant", "effective_at"])]

    def __str__(self) -> str:
        # Shown as the heading of each row of a licence's change history (and in audit/object lists):
        # what happened and when, in the active (tenant's) time zone, and what it did to MRR.
        when = timezone.localtime(self.effective_at) if self.effective_at else None
        on = f" on {when.day} {when:%b %Y}" if when else ""
        before, after = money(self.mrr_before, self.currency), money(self.mrr_after, self.currency)
        return f"{self.kind_label}{on}: MRR {before} → {after}"

    @property
    def kind_label(self) -> str:
        """'upgrade' -> 'Upgrade', 'past_due' -> 'Past due' (kind is free text, not a choices field)."""
        return (self.kind or "change").replace("_", " ").capitalize()


# --- Plan changes: the Stripe hand-off -------------------------------------------------------


class PlanChangeState(models.TextChoices):
    QUOTED = "quoted", "Quoted (not confirmed)"
    PENDING = "pending", "Confirmed, Stripe not called yet"
    SCHEDULED = "scheduled", "Scheduled for the period end"
    SUBMITTED = "submitted", "Sent to Stripe, awaiting payment"
    SETTLED = "settled", "Settled: licence changed"
    FAILED = "failed", "Failed: licence unchanged"
    CANCELED = "canceled", "Canceled"


class PlanChangeKind(models.TextChoices):
    NEW = "new", "New subscription"
    UPGRADE = "upgrade", "Upgrade"
    DOWNGRADE = "downgrade", "Downgrade"
    SEATS = "seats", "Seat change"
    INTERVAL = "interval", "Interval change"


class PlanChange(TenantOwned):
    """One upgrade or downgrade in flight, from quote to settlement.

    Invariants: the licence changes only in `settle` (payment succeeded); the Stripe calls
    for this change all carry idempotency keys derived from `pk`, so a retried task or a
    retried payment never creates a second invoice; quote == charge is checked at
    settlement (`charge_mismatch`) and recorded, never swallowed.
    """

    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="plan_changes")
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="plan_changes")
    kind = models.CharField(max_length=16, choices=PlanChangeKind.choices)
    state = models.CharField(max_length=16, choices=PlanChangeState.choices, default=PlanChangeState.QUOTED)
    # What the licence held when quoted, and what it will hold.
    from_price = models.ForeignKey("catalog.Price", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    from_seats = models.PositiveIntegerField(default=1)
    from_addons = models.ManyToManyField("catalog.AddOn", blank=True, related_name="+")
    from_subscription_id = models.CharField(
        max_length=64, blank=True, help_text="The licence's subscription when quoted (empty: it had none)."
    )
    target_price = models.ForeignKey("catalog.Price", on_delete=models.PROTECT, related_name="+")
    target_seats = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    target_addon_prices = models.ManyToManyField("catalog.Price", blank=True, related_name="+")
    # The quote: Stripe's invoice preview, every line, with the pinned proration date.
    proration_date = models.DateTimeField(null=True, blank=True)
    quote_lines = models.JSONField(default=list, blank=True)
    quote_total = models.BigIntegerField(default=0)
    quote_amount_due = models.BigIntegerField(default=0)
    local_estimate = models.JSONField(
        default=dict, blank=True, help_text="Our own proration of the same change, as a cross-check."
    )
    currency = models.CharField(max_length=3, default="USD")
    quoted_at = models.DateTimeField(default=timezone.now)
    quote_expires_at = models.DateTimeField()
    effective_at = models.DateTimeField(null=True, blank=True, help_text="Downgrades: the period end.")
    # An offer's discount (a Stripe coupon on the subscription, in the quote and every invoice after) and term.
    discount_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, help_text="Percent off (None: the licence's own)."
    )
    discount_explanation = models.CharField(max_length=300, blank=True)
    term_years = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The committed term bought (None: the licence keeps its own)."
    )
    year_percents = models.JSONField(
        default=list, blank=True, help_text="A ramp: the discount for each year of the term (empty: one throughout)."
    )
    # Who and why.
    reference = models.CharField(max_length=64, blank=True, help_text="Opaque offer/proposal id.")
    requested_by_label = models.CharField(max_length=200, blank=True)
    # Stripe hand-off.
    idempotency_key = models.CharField(max_length=80, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    payment_attempts = models.PositiveIntegerField(default=0)
    stripe_invoice_id = models.CharField(max_length=64, blank=True)
    stripe_subscription_id = models.CharField(max_length=64, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    # Settlement.
    settled_at = models.DateTimeField(null=True, blank=True)
    settled_via = models.CharField(max_length=16, blank=True, help_text="sync, webhook or reconcile")
    charged_amount = models.BigIntegerField(null=True, blank=True)
    charged_lines = models.JSONField(default=list, blank=True)
    charge_mismatch = models.JSONField(
        default=dict, blank=True, help_text="Differences between the quote and the settled invoice."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "state"]), models.Index(fields=["tenant", "stripe_invoice_id"])]
        constraints = [
            # At most one change in flight per licence: a second confirm would race the first for the subscription.
            models.UniqueConstraint(
                fields=["license"],
                name="planchange_one_in_flight_per_license",
                condition=models.Q(state__in=["pending", "scheduled", "submitted"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in (PlanChangeState.PENDING, PlanChangeState.SCHEDULED, PlanChangeState.SUBMITTED)


class PlanChangeItem(TenantOwned):
    """One line of the subscription update (or create) a plan change sends, exactly as sent.

    Stored with the quote so that every retry sends the same body under the same idempotency
    key (Stripe replays the first answer for an identical request and refuses a different one).
    """

    plan_change = models.ForeignKey(PlanChange, on_delete=models.CASCADE, related_name="stripe_items")
    position = models.PositiveSmallIntegerField()
    item_id = models.CharField(max_length=64, blank=True, help_text="An existing subscription item (empty: added).")
    stripe_price_id = models.CharField(max_length=64, blank=True)
    quantity = models.PositiveIntegerField(null=True, blank=True)
    deleted = models.BooleanField(default=False)

    class Meta:
        ordering = ["plan_change", "position"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "plan_change", "position"], name="planchangeitem_unique_position")
        ]

    def __str__(self) -> str:
        if self.deleted:
            return f"delete {self.item_id}"
        return f"{self.item_id or 'new item'}: {self.stripe_price_id} x{self.quantity}"


# --- Stripe per tenant ---------------------------------------------------------------------


class StripeAccount(TenantOwned):
    """The tenant's own Stripe keys, encrypted at rest (billing/crypto.py, MultiFernet)."""

    secret_key_encrypted = models.TextField(blank=True, editable=False)
    webhook_secret_encrypted = models.TextField(blank=True, editable=False)
    secret_key_hint = models.CharField(max_length=16, blank=True, editable=False)
    webhook_secret_hint = models.CharField(max_length=16, blank=True, editable=False)
    # Not a secret (Stripe.js in the customer's browser carries it): the portal's card entry needs it.
    publishable_key = models.CharField(
        max_length=255, blank=True, help_text="pk_live_… or pk_test_…, for card entry in the customer portal."
    )
    downgrade_prorated_credit = models.BooleanField(
        default=False, help_text="Apply downgrades at once with a prorated credit instead of at the period end."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Stripe settings"
        verbose_name_plural = "Stripe settings"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="stripeaccount_one_per_tenant")]

    def __str__(self) -> str:
        return f"Stripe settings ({self.secret_key_hint or 'no key'})"

    @property
    def is_configured(self) -> bool:
        return bool(self.secret_key_encrypted and self.webhook_secret_encrypted)


class StripeProduct(TenantOwned):
    """A catalog tier or add-on (by key: every version shares one Stripe Product)."""

    owner_kind = models.CharField(max_length=8, choices=[("tier", "Tier"), ("addon", "Add-on")])
    catalog_key = models.CharField(max_length=63)
    stripe_product_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "owner_kind", "catalog_key"], name="stripeproduct_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.owner_kind}:{self.catalog_key} -> {self.stripe_product_id}"


class StripePrice(TenantOwned):
    """A published catalog price and the Stripe Price that bills it (created the first time it is needed)."""

    price = models.ForeignKey("catalog.Price", on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey(StripeProduct, on_delete=models.PROTECT, related_name="prices")
    stripe_price_id = models.CharField(max_length=64)
    active = models.BooleanField(default=True)
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "price"], name="stripeprice_unique_price"),
            models.UniqueConstraint(fields=["tenant", "stripe_price_id"], name="stripeprice_unique_stripe_id"),
        ]

    def __str__(self) -> str:
        return f"price #{self.price_id} -> {self.stripe_price_id}"


class WebhookEventState(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored (type not handled)"
    FAILED = "failed", "Failed (will retry)"
    GAVE_UP = "gave_up", "Gave up (still failing after Stripe's 3 days of retries)"


class StripeWebhookEvent(TenantOwned):
    """A verified Stripe event, stored by its id before anything else happens (processed once)."""

    event_id = models.CharField(max_length=80)
    event_type = models.CharField(max_length=80)
    object_id = models.CharField(max_length=80, blank=True)
    stripe_created = models.DateTimeField()
    payload = models.JSONField()
    state = models.CharField(max_length=16, choices=WebhookEventState.choices, default=WebhookEventState.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    deliveries = models.PositiveIntegerField(default=1, help_text="How many times Stripe delivered it.")
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    # The beat sweep retries `received`/`failed` events from here, with backoff, until Stripe's 3 days are up.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "event_id"], name="stripewebhookevent_unique_id")]
        indexes = [models.Index(fields=["tenant", "state"]), models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"
