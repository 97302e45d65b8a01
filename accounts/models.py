from __future__ import annotations

import datetime
import zoneinfo

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import formats, timezone

from accounts.tenancy import AppendOnly, TenantOwned, TenantQuerySet


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        if not email:
            raise ValueError("Users need an email address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """Staff of a vendor (or of Tierwise itself). Customers never get a User."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Platform staff (Tierwise operators).")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.full_name or self.email


def _validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone.")


def _validate_locale(value: str) -> None:
    from babel.core import Locale, UnknownLocaleError

    try:
        Locale.parse(value)
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValidationError(f"{value!r} is not a known locale: write it like en, en_GB or de_DE.") from None


# A quarter: covers devices offline for weeks and a backfill after an outage, keeps late events inside the
# event partitions that exist around today, and stops a late event from rewriting rollups of long-closed
# billing periods. Larger values made every ingest fail (a window start before year 1).
LATE_ARRIVAL_MAX_DAYS = 90


class Tenant(models.Model):
    """A software vendor using Tierwise."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=63, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[_validate_time_zone])
    default_currency = models.CharField(
        max_length=3, default="USD", validators=[RegexValidator(r"^[A-Z]{3}$", "Use an ISO 4217 code.")]
    )
    locale = models.CharField(
        max_length=16,
        default="en",
        validators=[_validate_locale],
        help_text="How money is written: en ($1,234.50), en_GB, de_DE (1.234,50 €), fr_FR, ja_JP…",
    )
    # Ingest policy (usage app reads these).
    event_late_arrival_days = models.PositiveIntegerField(
        default=35,
        validators=[MinValueValidator(1), MaxValueValidator(LATE_ARRIVAL_MAX_DAYS)],
        help_text=f"Events older than this many days are rejected (1 to {LATE_ARRIVAL_MAX_DAYS}).",
    )
    auto_create_accounts = models.BooleanField(
        default=False, help_text="Create a customer account on first event instead of rejecting it."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(event_late_arrival_days__gte=1, event_late_arrival_days__lte=LATE_ARRIVAL_MAX_DAYS),
                name="tenant_late_arrival_days_range",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    PRODUCT_MANAGER = "product_manager", "Product manager"
    CSM = "csm", "Customer success manager"
    ANALYST = "analyst", "Analyst"


class Capability(models.TextChoices):
    """What a role may do. Checked by the admin, the console and services."""

    VIEW = "view", "See the tenant's data"
    MANAGE_TENANT = "manage_tenant", "Edit the tenant, its staff and API keys"
    EDIT_CATALOG = "edit_catalog", "Draft catalog items and discount policy"
    APPROVE_CATALOG = "approve_catalog", "Approve another person's catalog drafts"
    EDIT_ACCOUNTS = "edit_accounts", "Edit customer accounts and contacts"
    MANAGE_BILLING = "manage_billing", "Change licences, revoke and restore"
    EDIT_RULES = "edit_rules", "Edit trigger rules, templates and experiments"
    REVIEW_OFFERS = "review_offers", "Review, send and withdraw offers; start trials"


ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    Role.OWNER: frozenset(Capability.values),
    Role.PRODUCT_MANAGER: frozenset(
        {Capability.VIEW, Capability.EDIT_CATALOG, Capability.APPROVE_CATALOG, Capability.EDIT_RULES}
    ),
    Role.CSM: frozenset(
        {Capability.VIEW, Capability.EDIT_ACCOUNTS, Capability.MANAGE_BILLING, Capability.REVIEW_OFFERS}
    ),
    Role.ANALYST: frozenset({Capability.VIEW}),
}


# Who outranks whom when one member acts on another's membership or reads their invitation.
ROLE_RANK: dict[str, int] = {Role.ANALYST: 1, Role.CSM: 2, Role.PRODUCT_MANAGER: 3, Role.OWNER: 4}

INVITATION_TTL = datetime.timedelta(days=7)


class MembershipQuerySet(TenantQuerySet):
    def accepted(self) -> MembershipQuerySet:
        return self.filter(accepted_at__isnull=False)

    def pending(self) -> MembershipQuerySet:
        return self.filter(accepted_at__isnull=True)


class AcceptedMembershipManager(models.Manager.from_queryset(MembershipQuerySet)):  # type: ignore[misc]
    """The default: only memberships the person accepted. A pending invitation grants nothing."""

    def get_queryset(self) -> MembershipQuerySet:
        return super().get_queryset().filter(accepted_at__isnull=False)


class Membership(models.Model):
    """A person's place in a tenant. It starts as an invitation (accepted_at null) that the person accepts.

    The invitation token is bound to this row: only its SHA-256 is stored, it expires, and accepting clears
    it (single use). `Membership.objects` sees accepted memberships only; `Membership.all_objects` sees
    invitations too and is for the invitation code alone.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=32, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    # Created directly (a tenant's first owner, the demo's staff, fixtures) a membership is accepted;
    # add_member() creates it pending.
    accepted_at = models.DateTimeField(null=True, blank=True, default=timezone.now, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    invited_at = models.DateTimeField(null=True, blank=True, editable=False)
    invitation_token_hash = models.CharField(max_length=64, blank=True, editable=False, db_index=True)
    invitation_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Delivery of the current token's email, keyed here so a redelivered task never sends it twice:
    # started is committed before the send, sent after it. Started without sent means a worker died
    # mid-send; whether the email left is unknown, so it is not sent again automatically (resend instead).
    invitation_send_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    invitation_sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AcceptedMembershipManager()
    all_objects = MembershipQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_user")]
        base_manager_name = "all_objects"

    def __str__(self) -> str:
        pending = "" if self.is_accepted else ", invited"
        return f"{self.user} ({self.get_role_display()}{pending}) @ {self.tenant}"

    @property
    def is_accepted(self) -> bool:
        return self.accepted_at is not None

    def can(self, capability: str) -> bool:
        if not self.is_accepted:
            return False
        return capability in ROLE_CAPABILITIES.get(self.role, frozenset())

    def outranks_or_equals(self, role: str) -> bool:
        return self.is_accepted and ROLE_RANK.get(self.role, 0) >= ROLE_RANK.get(role, 99)


class ApiScope(models.TextChoices):
    INGEST = "ingest", "Send usage events"
    READ = "read", "Read accounts, entitlements, offers, catalog"
    WRITE = "write", "Create and change accounts, accept offers, open portal sessions"


class ApiKey(TenantOwned):
    """A tenant's API key. The secret is shown once; only its SHA-256 is stored."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_secret = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (tw_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class SizeBand(models.TextChoices):
    MICRO = "1-10", "1–10"
    SMALL = "11-50", "11–50"
    MEDIUM = "51-200", "51–200"
    LARGE = "201-1000", "201–1,000"
    XLARGE = "1001-5000", "1,001–5,000"
    ENTERPRISE = "5001+", "5,001+"


class Segment(models.TextChoices):
    SMB = "smb", "Small business"
    MID_MARKET = "mid_market", "Mid-market"
    ENTERPRISE = "enterprise", "Enterprise"


class LifecycleStage(models.TextChoices):
    TRIAL = "trial", "Trial"
    ONBOARDING = "onboarding", "Onboarding"
    ACTIVE = "active", "Active"
    EXPANSION = "expansion", "Expansion"
    RENEWAL = "renewal", "Renewal"
    AT_RISK = "at_risk", "At risk"
    CHURNED = "churned", "Churned"


external_id_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}\Z",
    "Use 1–128 letters, digits or _ . : @ -, starting with a letter or digit.",
)


class CustomerAccount(TenantOwned):
    """The vendor's customer company. Its id to the vendor is `external_id`."""

    external_id = models.CharField(max_length=128, validators=[external_id_validator])
    name = models.CharField(max_length=200)
    industry = models.CharField(max_length=64, blank=True)
    size_band = models.CharField(max_length=16, choices=SizeBand.choices, blank=True)
    employee_count = models.PositiveIntegerField(null=True, blank=True)
    segment = models.CharField(max_length=16, choices=Segment.choices, blank=True)
    territory = models.CharField(max_length=64, blank=True)
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE)
    assigned_csm = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="customeraccount_unique_external_id")
        ]
        indexes = [models.Index(fields=["tenant", "lifecycle_stage"]), models.Index(fields=["tenant", "name"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"


class Contact(TenantOwned):
    account = models.ForeignKey(CustomerAccount, on_delete=models.CASCADE, related_name="contacts")
    email = models.EmailField()
    name = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=100, blank=True)
    marketing_consent = models.BooleanField(default=False)
    locale = models.CharField(
        max_length=16,
        blank=True,
        validators=[_validate_locale],
        help_text="How the portal writes money for this person (en_GB, de_DE…); empty: the tenant's.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "account", "email"], name="contact_unique_email")]

    def __str__(self) -> str:
        return f"{self.name or self.email} <{self.email}>"


class AuditEntry(AppendOnly):
    """Append-only: who changed what, when, with the state before and after."""

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, help_text="The user, API key or system process that acted.")
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "object_type", "object_id"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        # The page's title: in the active (tenant's) zone and the one date style, like the fields below it.
        when = formats.date_format(timezone.localtime(self.created_at), "DATETIME_FORMAT")
        return f"{when} {self.actor_label}: {self.action} {self.object_repr}"

    def delete(self, *args, **kwargs):
        raise ValueError("Audit entries are append-only")


class IdempotencyRecord(TenantOwned):
    """One `Idempotency-Key` of one API key: claimed by the first request, then its stored answer.

    The unique (tenant, api_key, key) constraint is the arbiter: a request claims the key with
    INSERT ... ON CONFLICT DO NOTHING and owns it only if its own `token` is the one stored.
    `status_code` is null while the first request still runs. See accounts/idempotency.py.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    token = models.CharField(max_length=32, help_text="Which request holds the claim.")
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=2048)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    body = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "api_key", "key"], name="idempotencyrecord_unique_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotencyrecord_created")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
