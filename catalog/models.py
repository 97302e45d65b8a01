"""The vendor's packaging: features, meters, tiers, prices, entitlements, add-ons, bundles, discount policy.

Governed items (tiers, prices, add-ons, bundles, discount policies) move
draft -> awaiting approval -> published -> retired and are never edited once
published: a change is a new row with a higher `version` for the same `key`.
Licences point at the exact row (version) they were sold, so retiring it breaks nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from accounts.tenancy import TenantOwned
from catalog.money import format_money

key_validator = RegexValidator(r"^[a-z0-9][a-z0-9_-]{0,62}$", "Use lower-case letters, digits, _ or -.")
currency_validator = RegexValidator(r"^[A-Z]{3}$", "Use an ISO 4217 code such as USD.")


class GovernanceState(models.TextChoices):
    DRAFT = "draft", "Draft"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    PUBLISHED = "published", "Published"
    RETIRED = "retired", "Retired"


class Governed(TenantOwned):
    key = models.CharField(max_length=63, validators=[key_validator])
    version = models.PositiveIntegerField(default=1, editable=False)
    state = models.CharField(
        max_length=20, choices=GovernanceState.choices, default=GovernanceState.DRAFT, editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    # What the approver wrote next to Approve (kept with the approval and in its audit entry).
    approval_comment = models.CharField(max_length=1000, blank=True, default="", editable=False)
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Everyone who wrote to this version (author and later editors): none of them may approve it.
    contributor_ids = models.JSONField(default=list, blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def is_editable(self) -> bool:
        return self.state == GovernanceState.DRAFT

    @property
    def is_approved(self) -> bool:
        return self.state == GovernanceState.AWAITING_APPROVAL and self.approved_at is not None

    @property
    def status_label(self) -> str:
        """The state as a product manager reads it: an approved item is still waiting to be published."""
        if self.is_approved:
            return "Approved, ready to publish"
        return self.get_state_display()


class Product(TenantOwned):
    key = models.CharField(max_length=63, validators=[key_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="product_unique_key")]

    def __str__(self) -> str:
        return self.name


class FeatureKind(models.TextChoices):
    BOOLEAN = "boolean", "On/off"
    METERED = "metered", "Metered"
    SEATS = "seats", "Seats"


class Feature(TenantOwned):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="features")
    key = models.CharField(max_length=63, validators=[key_validator])
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=FeatureKind.choices)
    unit = models.CharField(max_length=40, blank=True, help_text="e.g. 'API calls', 'GB', 'projects'")
    description = models.TextField(blank=True, help_text="What the customer achieves with it, not how it works.")
    sort_order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="feature_unique_key")]

    def __str__(self) -> str:
        return self.name


class Aggregation(models.TextChoices):
    COUNT = "count", "Count of events"
    SUM = "sum", "Sum of a property"
    MAX = "max", "Maximum of a property"
    UNIQUE_COUNT = "unique_count", "Unique values of a property"


class MeterWindow(models.TextChoices):
    BILLING_PERIOD = "billing_period", "Billing period"
    CALENDAR_MONTH = "calendar_month", "Calendar month"
    ROLLING_DAYS = "rolling_days", "Rolling N days"


class Meter(TenantOwned):
    """Turns events named `event_name` into one number per account and window."""

    feature = models.ForeignKey(Feature, null=True, blank=True, on_delete=models.SET_NULL, related_name="meters")
    key = models.CharField(max_length=63, validators=[key_validator])
    name = models.CharField(max_length=200)
    event_name = models.CharField(max_length=100)
    aggregation = models.CharField(max_length=16, choices=Aggregation.choices, default=Aggregation.COUNT)
    property = models.CharField(max_length=100, blank=True, help_text="Event property for sum, max, unique count.")
    window = models.CharField(max_length=20, choices=MeterWindow.choices, default=MeterWindow.CALENDAR_MONTH)
    window_days = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key"], name="meter_unique_key")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.aggregation != Aggregation.COUNT and not self.property:
            errors["property"] = f"A {self.get_aggregation_display().lower()} needs the event property to read."
        if self.window == MeterWindow.ROLLING_DAYS and not self.window_days:
            errors["window_days"] = "A rolling window needs its number of days."
        if self.window != MeterWindow.ROLLING_DAYS and self.window_days:
            errors["window_days"] = "Only a rolling window takes a number of days."
        if self.feature_id and self.tenant_id and self.feature.tenant_id != self.tenant_id:
            errors["feature"] = "Pick a feature of this workspace."
        if errors:
            raise ValidationError(errors)


class Tier(Governed):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="tiers")
    name = models.CharField(max_length=100)
    rank = models.PositiveIntegerField(help_text="Higher rank = more capable tier.")
    tagline = models.CharField(max_length=200, blank=True)
    outcomes = models.JSONField(default=list, blank=True, help_text="Benefits written as outcomes, one per line.")
    who_for = models.TextField(blank=True, help_text="Who this tier is for.")
    is_public = models.BooleanField(default=True)
    is_free = models.BooleanField(default=False, help_text="The default tier of accounts without a licence.")
    default_trial_days = models.PositiveIntegerField(default=14)
    is_anchor = models.BooleanField(
        default=False, help_text="Show beside the recommended option as the premium anchor."
    )
    currency = models.CharField(max_length=3, default="USD", validators=[currency_validator])

    class Meta:
        ordering = ["rank", "version"]
        constraints = [models.UniqueConstraint(fields=["tenant", "key", "version"], name="tier_unique_version")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}" if self.version > 1 else self.name


class AddOn(Governed):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="addons")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    compatible_tiers = models.ManyToManyField(Tier, blank=True, related_name="compatible_addons")
    currency = models.CharField(max_length=3, default="USD", validators=[currency_validator])

    class Meta:
        verbose_name = "add-on"
        constraints = [models.UniqueConstraint(fields=["tenant", "key", "version"], name="addon_unique_version")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}" if self.version > 1 else self.name


class Interval(models.TextChoices):
    MONTH = "month", "Monthly"
    YEAR = "year", "Annual"


class Price(Governed):
    """Immutable once published; a change is a new version. Retired prices still bill existing licences."""

    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="prices")
    addon = models.ForeignKey(AddOn, null=True, blank=True, on_delete=models.PROTECT, related_name="prices")
    interval = models.CharField(max_length=8, choices=Interval.choices)
    amount = models.BigIntegerField(validators=[MinValueValidator(0)], help_text="Minor units (cents).")
    currency = models.CharField(max_length=3, default="USD", validators=[currency_validator])
    per_seat = models.BooleanField(default=True, help_text="Amount is per seat per interval.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key", "version"], name="price_unique_version"),
            models.CheckConstraint(
                condition=(
                    models.Q(tier__isnull=False, addon__isnull=True) | models.Q(tier__isnull=True, addon__isnull=False)
                ),
                name="price_for_tier_xor_addon",
            ),
        ]

    def __str__(self) -> str:
        owner = self.tier or self.addon
        amount = format_money(self.amount, self.currency)
        return f"{owner} {self.get_interval_display()} {amount} (v{self.version})"

    @property
    def owner(self) -> Tier | AddOn | None:
        return self.tier if self.tier_id else self.addon

    FROZEN_FIELDS = ("tier_id", "addon_id", "interval", "amount", "currency", "per_seat")

    def save(self, *args, **kwargs) -> None:
        """Backstop for immutability: a price that left draft never changes its terms, whoever writes."""
        if self.pk is not None and not self._state.adding:
            stored = Price.objects.filter(pk=self.pk).values("state", *self.FROZEN_FIELDS).first()
            if (
                stored
                and stored["state"] != GovernanceState.DRAFT
                and any(stored[name] != getattr(self, name) for name in self.FROZEN_FIELDS)
            ):
                raise ValueError(f"Price {self.pk} is {stored['state']}: its terms are frozen; revise its tier.")
        super().save(*args, **kwargs)


class Enforcement(models.TextChoices):
    HARD = "hard", "Hard: deny above the limit"
    SOFT = "soft", "Soft: allow, warn and suggest"


class Entitlement(TenantOwned):
    """What a tier or add-on grants for one feature. Frozen with its tier/add-on once published."""

    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.CASCADE, related_name="entitlements")
    addon = models.ForeignKey(AddOn, null=True, blank=True, on_delete=models.CASCADE, related_name="entitlements")
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="entitlements")
    enabled = models.BooleanField(default=True)
    limit = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0)], help_text="Empty = unlimited."
    )
    enforcement = models.CharField(max_length=8, choices=Enforcement.choices, default=Enforcement.HARD)
    soft_limit_percent = models.PositiveIntegerField(
        default=80,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Warn and suggest an upgrade from this share of the limit.",
    )
    overage_note = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tier", "feature"], name="entitlement_unique_tier_feature"),
            models.UniqueConstraint(fields=["addon", "feature"], name="entitlement_unique_addon_feature"),
            models.CheckConstraint(
                condition=(
                    models.Q(tier__isnull=False, addon__isnull=True) | models.Q(tier__isnull=True, addon__isnull=False)
                ),
                name="entitlement_for_tier_xor_addon",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tier or self.addon}: {self.feature}"

    @property
    def owner(self) -> Tier | AddOn | None:
        return self.tier if self.tier_id else self.addon

    def save(self, *args, **kwargs) -> None:
        """Backstop: what a published tier/add-on grants never changes in place (licences rely on it)."""
        if self.pk is not None and not self._state.adding:
            owner_model, owner_id = (Tier, self.tier_id) if self.tier_id else (AddOn, self.addon_id)
            state = owner_model.objects.filter(pk=owner_id).values_list("state", flat=True).first()
            if state not in (None, GovernanceState.DRAFT):
                raise ValueError(f"Entitlement {self.pk} belongs to a {state} {owner_model.__name__}; revise it.")
        super().save(*args, **kwargs)

    def allows(self, quantity: int = 1) -> bool:
        """Would this grant let an account use `quantity` of the feature (hard limits deny above)?"""
        if not self.enabled:
            return False
        return self.limit is None or quantity <= self.limit


class AudienceKind(models.TextChoices):
    ROLE = "role", "Role"
    INDUSTRY = "industry", "Industry"


class Bundle(Governed):
    """A tier plus add-ons aimed at a role or an industry, told through scenarios."""

    name = models.CharField(max_length=100)
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="bundles")
    addons = models.ManyToManyField(AddOn, blank=True, related_name="bundles")
    audience_kind = models.CharField(max_length=16, choices=AudienceKind.choices)
    audience = models.CharField(max_length=100, help_text="e.g. 'healthcare' or 'data engineer'")
    description = models.TextField(blank=True)
    scenarios = models.JSONField(
        default=list, blank=True, help_text='[{"title": ..., "story": ...}]: a team like the customer\'s, what changes.'
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "key", "version"], name="bundle_unique_version")]

    def __str__(self) -> str:
        return self.name


class DiscountCombination(models.TextChoices):
    ADD = "add", "Add term and volume percentages"
    COMPOUND = "compound", "Apply one after the other"
    BEST = "best", "Only the larger of the two"


class DiscountPolicy(Governed):
    """Predictable discounts: by term length and seat volume, combined one way, capped.

    Percentages are Decimals with two places; amounts they produce are rounded once,
    in catalog/pricing.py.
    """

    name = models.CharField(max_length=100)
    term_rules = models.JSONField(default=list, blank=True, help_text='[{"years": 2, "percent": "10"}]')
    volume_rules = models.JSONField(
        default=list, blank=True, help_text='[{"min_seats": 50, "max_seats": 199, "percent": "5"}]'
    )
    combination = models.CharField(max_length=16, choices=DiscountCombination.choices, default=DiscountCombination.ADD)
    cap_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=30, validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    loyalty_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Extra at renewal for a multi-year commitment.",
    )
    exception_approver_role = models.CharField(
        max_length=32, default="owner", help_text="Role that may approve discounts outside policy."
    )

    class Meta:
        verbose_name_plural = "discount policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key", "version"], name="discountpolicy_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
