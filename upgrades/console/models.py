"""Console models: proposals (with options and their price path), tasks, playbooks and objections, notes,
saved worklist views.

A `Proposal` is built by a CSM for one account: one or more `ProposalOption`s (tier / add-ons / seats /
term), each with its price path over the whole term (every invoice date and amount), the expected impact
and the evidence, all snapshots in JSON so what the customer saw is what billing charges. A discount
within the tenant's DiscountPolicy is applied with its explanation; one beyond it waits for approval by
someone with the exception role (or the owner), recorded on the proposal and in the audit log.

Lifecycle (upgrades.console.services.proposals is the only writer of `state`):

    draft -> awaiting_approval -> ready -> shared -> accepted -> fulfilled
          \\---------------------/              \\-> declined
       withdrawn from any open state
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.tenancy import TenantOwned


class ProposalKind(models.TextChoices):
    UPGRADE = "upgrade", "Upgrade proposal"
    RENEWAL = "renewal", "Renewal packet"


class ProposalState(models.TextChoices):
    DRAFT = "draft", "Draft"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting discount approval"
    READY = "ready", "Ready to share"
    SHARED = "shared", "Shared with the customer"
    ACCEPTED = "accepted", "Accepted"
    FULFILLED = "fulfilled", "Fulfilled"
    DECLINED = "declined", "Declined"
    WITHDRAWN = "withdrawn", "Withdrawn"


OPEN_PROPOSAL_STATES = (
    ProposalState.DRAFT,
    ProposalState.AWAITING_APPROVAL,
    ProposalState.READY,
    ProposalState.SHARED,
)


class Proposal(TenantOwned):
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+")
    license = models.ForeignKey("billing.License", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=ProposalKind.choices, default=ProposalKind.UPGRADE)
    title = models.CharField(max_length=200)
    intro = models.TextField(blank=True, help_text="The CSM's words to the customer (objection answers go here).")
    state = models.CharField(max_length=20, choices=ProposalState.choices, default=ProposalState.DRAFT)
    currency = models.CharField(max_length=3, default="usd")
    evidence = models.JSONField(default=dict, blank=True)
    outcomes = models.JSONField(default=dict, blank=True, help_text="Renewal packets: the year's outcomes.")
    loyalty = models.JSONField(default=dict, blank=True, help_text="Renewal packets: the multi-year incentive.")
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    discount_explanation = models.CharField(max_length=300, blank=True)
    policy_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=0, help_text="What the DiscountPolicy allows without approval."
    )
    approval_needed = models.BooleanField(default=False)
    approver_role = models.CharField(max_length=32, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_note = models.CharField(max_length=300, blank=True)
    accepted_option = models.ForeignKey(
        "upgrades.ProposalOption", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    plan_change = models.ForeignKey(
        "billing.PlanChange", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decline_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    shared_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "account", "state"], name="proposal_account_state"),
            models.Index(fields=["tenant", "state", "created_at"], name="proposal_state_created"),
        ]

    def __str__(self) -> str:
        return self.title


class ProposalOption(TenantOwned):
    """One choice in a proposal. `option` is the offers Option dict (key, interval, term_years, tier, addons,
    seats, price_ids, list_amount, amount, monthly_equivalent, saving, discount); `price_path` the rows
    [{"n", "date", "list_amount", "discount_amount", "amount", "explanation"}] over the whole term."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="options")
    position = models.PositiveSmallIntegerField(default=0)
    key = models.CharField(max_length=80)
    label = models.CharField(max_length=200, blank=True)
    tier_key = models.CharField(max_length=64)
    addon_keys = models.JSONField(default=list, blank=True)
    seats = models.PositiveIntegerField(default=1)
    interval = models.CharField(max_length=8, default="year")
    term_years = models.PositiveSmallIntegerField(default=1)
    option = models.JSONField(default=dict, blank=True)
    price_path = models.JSONField(default=list, blank=True)
    total_amount = models.BigIntegerField(default=0)
    roi = models.JSONField(default=dict, blank=True)
    quote = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "proposal", "key"], name="proposaloption_unique_key")]


class TaskKind(models.TextChoices):
    CHECK_IN = "check_in", "Check-in"
    FOLLOW_UP = "follow_up", "Follow-up"
    SIGNAL = "signal", "Act on a signal"
    TALK_REQUEST = "talk_request", "Customer asked to talk to a person"
    RENEWAL = "renewal", "Renewal"


class TaskState(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"
    DISMISSED = "dismissed", "Dismissed"


class ConsoleTask(TenantOwned):
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=TaskKind.choices, default=TaskKind.FOLLOW_UP)
    title = models.CharField(max_length=200)
    notes = models.TextField(blank=True)
    state = models.CharField(max_length=12, choices=TaskState.choices, default=TaskState.OPEN)
    due_at = models.DateTimeField()
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    signal = models.ForeignKey("upgrades.Signal", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    feedback = models.ForeignKey(
        "upgrades.Feedback", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "signal"], condition=models.Q(signal__isnull=False), name="consoletask_one_per_signal"
            ),
            models.UniqueConstraint(
                fields=["tenant", "feedback"],
                condition=models.Q(feedback__isnull=False),
                name="consoletask_one_per_feedback",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "account", "state"], name="consoletask_account_state"),
            models.Index(fields=["tenant", "assigned_to", "state", "due_at"], name="consoletask_assignee_due"),
        ]


class Playbook(TenantOwned):
    """When to propose (signal kinds), how to quantify impact, and the objection library."""

    name = models.CharField(max_length=120)
    signal_kinds = models.JSONField(default=list, blank=True)
    when_to_propose = models.TextField(blank=True)
    quantify_impact = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="playbook_unique_name")]

    def __str__(self) -> str:
        return self.name


class ObjectionCategory(models.TextChoices):
    COST = "cost", "Cost"
    IMPLEMENTATION = "implementation", "Implementation"
    TRAINING = "training", "Training"
    OTHER = "other", "Other"


class Objection(TenantOwned):
    playbook = models.ForeignKey(Playbook, on_delete=models.CASCADE, related_name="objections")
    category = models.CharField(max_length=16, choices=ObjectionCategory.choices)
    objection = models.CharField(max_length=300)
    answer = models.TextField()
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]


class AccountNote(TenantOwned):
    account = models.ForeignKey("accounts.CustomerAccount", on_delete=models.CASCADE, related_name="+")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["tenant", "account", "created_at"], name="accountnote_account_created")]


class SavedView(TenantOwned):
    """A CSM's named worklist filter set."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=80)
    filters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user", "name"], name="savedview_unique_name")]
