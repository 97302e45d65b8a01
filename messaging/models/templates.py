"""Templates a PM writes (email or in-app, Jinja2 in a sandbox) and the tenant's messaging settings."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from accounts.tenancy import TenantOwned

key_validator = RegexValidator(r"^[a-z0-9][a-z0-9_-]{0,62}\Z", "Use 1–63 lower-case letters, digits, _ or -.")
colour_validator = RegexValidator(r"^#[0-9A-Fa-f]{6}\Z", "Use a colour like #1F6FEB.")


class Purpose(models.TextChoices):
    """What a template is for; each purpose names the variables its templates may use (messaging/rendering.py)."""

    OFFER_SENT = "offer_sent", "Offer sent"
    OFFER_REMINDER = "offer_reminder", "Offer reminder"
    TRIAL_STARTED = "trial_started", "Trial started (day 1)"
    TRIAL_MIDPOINT = "trial_midpoint", "Mid-trial early wins"
    TRIAL_ENDING = "trial_ending", "Trial ending (2 days before)"
    TRIAL_ENDED = "trial_ended", "Trial ended"
    RENEWAL_90 = "renewal_90", "Renewal in 90 days"
    RENEWAL_60 = "renewal_60", "Renewal in 60 days"
    RENEWAL_30 = "renewal_30", "Renewal in 30 days"
    DECLINE_FOLLOW_UP = "decline_follow_up", "Follow-up after a decline"
    PAYMENT_NEEDED = "payment_needed", "Payment needed"
    RECEIPT = "receipt", "Receipt"
    FEATURE_GATE = "feature_gate", "Locked feature (in-app)"
    PROPOSAL_LINK = "proposal_link", "Proposal from the account manager"


class TemplateChannel(models.TextChoices):
    EMAIL = "email", "Email"
    IN_APP = "in_app", "In-app prompt"


class TemplateState(models.TextChoices):
    DRAFT = "draft", "Draft"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    LIVE = "live", "Live"
    RETIRED = "retired", "Retired"


# What a version says (its content, in the order the admin and the history show it); key and variant name it.
CONTENT_FIELDS = ("name", "purpose", "channel", "subject", "html_body", "text_body", "title", "body", "cta_label",
                  "cta_url", "placement")  # fmt: skip


class MessageTemplate(TenantOwned):
    """One version of one variant of a template. Editable only as a draft; a second person approves it live.

    `send_message(template_key=...)` uses the live version of the key (one live version per key and
    variant; approving a new version retires the one it replaces). Versions are kept for the record:
    each Message points at the version that rendered it.
    """

    key = models.CharField(max_length=63, validators=[key_validator], help_text="What the orchestration asks for.")
    variant = models.CharField(
        max_length=32, default="a", validators=[key_validator], help_text="For experiments: a, b, ..."
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    name = models.CharField(max_length=200)
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    channel = models.CharField(max_length=16, choices=TemplateChannel.choices, default=TemplateChannel.EMAIL)
    # email
    subject = models.CharField(max_length=300, blank=True)
    html_body = models.TextField(blank=True, help_text="Jinja2; autoescaped.")
    text_body = models.TextField(blank=True, help_text="Plain-text part; generated from the HTML when empty.")
    # in-app
    title = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    cta_label = models.CharField(max_length=80, blank=True)
    cta_url = models.CharField(max_length=500, blank=True, help_text="Jinja2; must render to an https:// URL.")
    placement = models.CharField(max_length=63, blank=True, validators=[key_validator])

    state = models.CharField(max_length=24, choices=TemplateState.choices, default=TemplateState.DRAFT, editable=False)
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
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key", "variant", "version"], name="messagetemplate_version"),
            models.UniqueConstraint(
                fields=["tenant", "key", "variant"],
                condition=models.Q(state="live"),
                name="messagetemplate_one_live",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "key", "state"])]

    def __str__(self) -> str:
        variant = f" [{self.variant}]" if self.variant != "a" else ""
        return f"{self.name}{variant} v{self.version} ({self.get_state_display().lower()})"


def _default_quiet_start() -> datetime.time:
    return datetime.time(20, 0)


def _default_quiet_end() -> datetime.time:
    return datetime.time(8, 0)


class MessagingSettings(TenantOwned):
    """Per-tenant branding and the rules that keep messages from nagging. One row per tenant."""

    from_name = models.CharField(
        max_length=100, blank=True, help_text="Shown as the sender; the tenant's name if empty."
    )
    from_email = models.EmailField(blank=True, help_text="The sender address; the platform default if empty.")
    reply_to = models.EmailField(blank=True)
    logo_url = models.URLField(blank=True)
    brand_colour = models.CharField(max_length=7, default="#1F6FEB", validators=[colour_validator])
    cap_count = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(0), MaxValueValidator(50)],
        help_text="Upgrade messages (email, in-app shown, CSM outreach) per contact in the window.",
    )
    account_cap_count = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(0), MaxValueValidator(200)],
        help_text="Upgrade messages per customer account (all its contacts) in the window.",
    )
    cap_window_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    quiet_hours_start = models.TimeField(default=_default_quiet_start, help_text="In the contact's time zone.")
    quiet_hours_end = models.TimeField(default=_default_quiet_end)
    decline_quiet_days = models.PositiveSmallIntegerField(
        default=14,
        validators=[MaxValueValidator(365)],
        help_text="No upgrade message to an account for this many days after it declines an offer.",
    )
    require_marketing_consent = models.BooleanField(
        default=False, help_text="Send upgrade messages only to contacts who gave marketing consent."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="messagingsettings_one_per_tenant")]
        verbose_name = "messaging settings"
        verbose_name_plural = "messaging settings"

    def __str__(self) -> str:
        return "Messaging settings"
