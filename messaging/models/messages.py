"""Messages (one sent, held or suppressed thing), their events, and what a contact wants."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Contact, CustomerAccount, _validate_time_zone
from accounts.tenancy import AppendOnly, TenantOwned


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    IN_APP = "in_app", "In-app prompt"
    CSM = "csm", "CSM outreach"


class Category(models.TextChoices):
    UPGRADE = "upgrade", "Upgrade (capped)"
    TRANSACTIONAL = "transactional", "Transactional (receipts, payment needed)"


class MessageState(models.TextChoices):
    QUEUED = "queued", "Queued"  # admitted; an email waits for its worker, a prompt waits to be shown
    HELD = "held", "Held for quiet hours"  # admitted; released at due_at by the beat sweep
    SENT = "sent", "Sent"  # an email handed to the mail backend, a prompt shown, an outreach done
    SUPPRESSED = "suppressed", "Suppressed"  # never sent: suppressed_reason says why
    FAILED = "failed", "Failed"
    BOUNCED = "bounced", "Bounced"
    DISMISSED = "dismissed", "Dismissed"  # a prompt the person closed


class SuppressedReason(models.TextChoices):
    CONTACT_CAP = "contact_cap", "The contact's cap for the window is used"
    ACCOUNT_CAP = "account_cap", "The account's cap for the window is used"
    DECLINE_QUIET = "decline_quiet", "Quiet period after a decline"
    UNSUBSCRIBED = "unsubscribed", "The contact unsubscribed"
    OPTED_OUT = "opted_out", "The contact turned these messages off"
    NO_CONSENT = "no_consent", "No marketing consent"
    BOUNCED = "bounced", "The address bounced"
    COMPLAINED = "complained", "The contact marked our mail as spam"
    NO_LIVE_TEMPLATE = "no_live_template", "No live template with that key"


class Message(TenantOwned):
    """One thing sent (or decided against) to one contact.

    Invariant: one row per (tenant, contact, template_key, cause), written with INSERT ... ON CONFLICT
    DO NOTHING, so a cause (e.g. "offer:42") can never send the same template twice, however many
    workers or retries ask. `counted_at` set: this row uses a slot of the cap (an upgrade email when it
    is admitted, a prompt when it is shown, a CSM outreach when it is recorded).
    """

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(CustomerAccount, on_delete=models.CASCADE, related_name="+")
    template = models.ForeignKey(
        "messaging.MessageTemplate", null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    template_key = models.CharField(max_length=63, blank=True)
    variant = models.CharField(max_length=32, blank=True)
    cause = models.CharField(max_length=200, help_text="Why it was sent, e.g. offer:42 or trial:7:ending.")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    category = models.CharField(max_length=16, choices=Category.choices)
    placement = models.CharField(max_length=63, blank=True)
    state = models.CharField(max_length=16, choices=MessageState.choices)
    suppressed_reason = models.CharField(max_length=24, choices=SuppressedReason.choices, blank=True)
    to_email = models.EmailField(blank=True)
    context = models.JSONField(default=dict, blank=True)
    rendered = models.JSONField(default=dict, blank=True, help_text="subject/html/text or title/body/cta.")
    links = models.JSONField(default=list, blank=True, help_text="The only URLs the click redirect goes to.")
    due_at = models.DateTimeField(null=True, blank=True, help_text="A held message is released then.")
    counted_at = models.DateTimeField(null=True, blank=True)
    send_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    error = models.TextField(blank=True)
    token = models.CharField(max_length=32, editable=False, help_text="Which insert won the arbitrated write.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "contact", "template_key", "cause"], name="message_once_per_cause"
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "contact", "counted_at"], name="message_contact_cap"),
            models.Index(fields=["tenant", "account", "counted_at"], name="message_account_cap"),
            models.Index(fields=["tenant", "state", "due_at"], name="message_due"),
            models.Index(fields=["tenant", "account", "channel", "state"], name="message_prompts"),
        ]

    def __str__(self) -> str:
        return f"{self.template_key or self.get_channel_display()} → {self.to_email or self.contact_id} ({self.state})"


class MessageEventKind(models.TextChoices):
    SENT = "sent", "Sent"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    SHOWN = "shown", "Shown"
    DISMISSED = "dismissed", "Dismissed"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"


class MessageEvent(AppendOnly, TenantOwned):
    """What happened to a message after it left: the offer funnel reads these (messaging.selectors)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=MessageEventKind.choices)
    url = models.URLField(max_length=2000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "message", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind} #{self.message_id}"


class ContactPreference(TenantOwned):
    """A contact's choices and time zone. Also the row the cap serialises on is the account (advisory lock)."""

    contact = models.OneToOneField(Contact, on_delete=models.CASCADE, related_name="+")
    time_zone = models.CharField(max_length=64, blank=True, validators=[_validate_time_zone],
                                 help_text="Empty: the tenant's time zone.")  # fmt: skip
    upgrade_email = models.BooleanField(default=True, help_text="Upgrade and lifecycle emails.")
    in_app = models.BooleanField(default=True, help_text="In-app prompts.")
    unsubscribed_at = models.DateTimeField(null=True, blank=True, help_text="Set: no upgrade message at all.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Preferences of contact #{self.contact_id}"


class EmailSuppression(TenantOwned):
    """An address that hard-bounced or complained: no more mail to it, transactional included."""

    email = models.EmailField()
    reason = models.CharField(max_length=16, choices=[("bounced", "Bounced"), ("complained", "Complained")])
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "email"], name="emailsuppression_unique")]

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"


class DeclineQuiet(TenantOwned):
    """An account declined an offer: no upgrade message to it until `quiet_until`."""

    account = models.OneToOneField(CustomerAccount, on_delete=models.CASCADE, related_name="+")
    declined_at = models.DateTimeField()
    quiet_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"Quiet until {self.quiet_until:%Y-%m-%d} for account #{self.account_id}"
