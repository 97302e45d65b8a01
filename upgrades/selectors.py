"""Reads for the upgrades app: the staff workspace overview (admin index) and the demo logins.

Every read starts from `for_tenant(tenant)` (directly or through another app's selector) and
loads what the page shows in a fixed number of queries, whatever the tenant's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import AuditEntry, Capability, CustomerAccount, LifecycleStage, Membership, Role, Tenant, User
from accounts.selectors import list_audit_entries
from billing.models import GrantKind, License, LicenseGrant, PlanChange, PlanChangeKind, PlanChangeState
from billing.selectors import HOLDING_STATUSES, get_license_for_account, list_plan_changes
from catalog.models import AddOn, Bundle, DiscountPolicy, GovernanceState, Governed, Tier
from catalog.services import four_eyes_refusal

# The governed catalog items a second person approves. Prices and entitlements follow their
# tier or add-on through governance, so they are never reviewed on their own.
REVIEWED_MODELS: tuple[type[Governed], ...] = (Tier, AddOn, Bundle, DiscountPolicy)

OPEN_PLAN_CHANGE_STATES = (PlanChangeState.PENDING, PlanChangeState.SCHEDULED, PlanChangeState.SUBMITTED)

# seed_demo's demo tenant (upgrades/management/commands/seed_demo.py).
DEMO_TENANT_SLUG = "acme"
ROLE_ORDER = {role: index for index, role in enumerate(Role.values)}


@dataclass(frozen=True)
class StageCount:
    stage: str
    label: str
    count: int
    bar_percent: int  # share of the largest stage, for a bar width (0-100, integer)


@dataclass(frozen=True)
class TierLicences:
    """Licences that currently grant access (active, trialing, past due) on one tier version."""

    tier: Tier
    currency: str
    licences: int
    seats: int
    mrr: int  # minor units of `currency`


@dataclass(frozen=True)
class MoneyTotal:
    amount: int  # minor units
    currency: str


@dataclass(frozen=True)
class PendingApproval:
    """A catalog item awaiting approval, and what the current staff member may do about it."""

    item: Governed
    kind: str  # "tier", "add-on", "bundle", "discount policy"
    can_approve: bool
    ready_to_publish: bool  # approved already: the next step is publishing, not approving
    reason: str  # why the current user may not approve it ("" when they may)
    can_publish: bool = False  # approved, and the current user may publish it

    @property
    def model_name(self) -> str:
        return self.item._meta.model_name

    @property
    def app_label(self) -> str:
        return self.item._meta.app_label


@dataclass(frozen=True)
class TrialExample:
    grant: LicenseGrant
    license: License | None


@dataclass
class WorkspaceOverview:
    tenant: Tenant
    accounts_total: int
    stages: list[StageCount]
    tiers: list[TierLicences]
    mrr: list[MoneyTotal]  # one per currency; the tenant's currency first (and always present)
    licences_holding: int
    licences_not_holding: int  # canceled or suspended: not in the MRR
    pending: list[PendingApproval]
    plan_changes: list[PlanChange]
    plan_changes_open: int
    audit: list[AuditEntry]
    trial: TrialExample | None = None
    settled_upgrade: PlanChange | None = None
    currency: str = "USD"

    @property
    def primary_mrr(self) -> MoneyTotal:
        return self.mrr[0]

    @property
    def other_mrr(self) -> list[MoneyTotal]:
        return self.mrr[1:]

    @property
    def approvable(self) -> list[PendingApproval]:
        return [p for p in self.pending if p.can_approve]


def _bar(count: int, largest: int) -> int:
    # Integer rounding (half up): a bar width, never money, but no float is needed either.
    return (count * 100 * 2 + largest) // (2 * largest) if largest else 0


def accounts_by_stage(tenant: Tenant) -> list[StageCount]:
    """Every lifecycle stage in its natural order (zeros included), with a bar width."""
    counts = dict(
        CustomerAccount.objects.for_tenant(tenant)
        .order_by()
        .values("lifecycle_stage")
        .annotate(n=Count("id"))
        .values_list("lifecycle_stage", "n")
    )
    largest = max(counts.values(), default=0)
    return [
        StageCount(
            stage=value, label=label, count=counts.get(value, 0), bar_percent=_bar(counts.get(value, 0), largest)
        )
        for value, label in LifecycleStage.choices
    ]


def licences_by_tier(tenant: Tenant) -> list[TierLicences]:
    """Holding licences per tier version (grandfathered versions stay separate), lowest rank first."""
    rows = list(
        License.objects.for_tenant(tenant)
        .filter(status__in=HOLDING_STATUSES)
        .order_by()
        .values("tier_id", "currency")
        .annotate(n=Count("id"), seats=Sum("seats"), mrr=Sum("mrr"))
    )
    tiers = {t.pk: t for t in Tier.objects.for_tenant(tenant).filter(pk__in={r["tier_id"] for r in rows})}
    result = [
        TierLicences(
            tier=tiers[r["tier_id"]],
            currency=r["currency"],
            licences=r["n"],
            seats=r["seats"] or 0,
            mrr=r["mrr"] or 0,
        )
        for r in rows
    ]
    return sorted(result, key=lambda t: (t.tier.rank, t.tier.key, t.tier.version, t.currency))


def mrr_totals(tenant: Tenant, tiers: list[TierLicences]) -> list[MoneyTotal]:
    """Total MRR per currency, never adding amounts of different currencies; the tenant's first."""
    sums: dict[str, int] = {tenant.default_currency: 0}
    for row in tiers:
        sums[row.currency] = sums.get(row.currency, 0) + row.mrr
    ordered = [tenant.default_currency, *sorted(c for c in sums if c != tenant.default_currency)]
    return [MoneyTotal(amount=sums[c], currency=c) for c in ordered]


def _may(user: User, membership: Membership | None, capability: str) -> bool:
    return bool(user.is_superuser or (membership is not None and membership.can(capability)))


def pending_approvals(tenant: Tenant, *, user: User, membership: Membership | None) -> list[PendingApproval]:
    """Catalog items awaiting approval, oldest submission first, each marked with whether `user`
    may approve it: the approve capability and the four-eyes rule of catalog.services."""
    may_approve = _may(user, membership, Capability.APPROVE_CATALOG)
    may_publish = _may(user, membership, Capability.EDIT_CATALOG)
    found: list[PendingApproval] = []
    for model in REVIEWED_MODELS:
        rows = (
            model.objects.for_tenant(tenant)
            .filter(state=GovernanceState.AWAITING_APPROVAL)
            .select_related("created_by", "submitted_by", "approved_by")
        )
        for item in rows:
            if item.is_approved:
                found.append(
                    PendingApproval(
                        item, model._meta.verbose_name, False, True, "Approved; ready to publish.", may_publish
                    )
                )
                continue
            if not may_approve:
                reason = "A product manager or an owner approves catalog changes."
            else:
                reason = four_eyes_refusal(item, user, membership) or ""
            found.append(PendingApproval(item, model._meta.verbose_name, may_approve and not reason, False, reason))
    far_future = timezone.now().replace(year=9999)
    return sorted(found, key=lambda p: (p.item.submitted_at or far_future, p.kind, p.item.pk))


def recent_plan_changes(tenant: Tenant, *, limit: int = 8) -> list[PlanChange]:
    return list(
        list_plan_changes(tenant)
        .select_related("target_price__tier", "from_price__tier")
        .order_by("-created_at", "-id")[:limit]
    )


def recent_audit_entries(tenant: Tenant, *, limit: int = 10) -> list[AuditEntry]:
    return list(list_audit_entries(tenant).select_related("actor")[:limit])


def trial_in_progress(tenant: Tenant, *, at: datetime | None = None) -> TrialExample | None:
    """The most recently started trial that is running now, and the licence it sits on."""
    at = at or timezone.now()
    grant = (
        LicenseGrant.objects.for_tenant(tenant)
        .filter(kind=GrantKind.TRIAL, starts_at__lte=at, ends_at__gt=at, ended_at__isnull=True)
        .select_related("account", "tier", "addon")
        .order_by("-starts_at", "-id")
        .first()
    )
    if grant is None:
        return None
    return TrialExample(grant=grant, license=get_license_for_account(tenant, grant.account))


def latest_settled_upgrade(tenant: Tenant) -> PlanChange | None:
    return (
        list_plan_changes(tenant, state=PlanChangeState.SETTLED)
        .filter(kind=PlanChangeKind.UPGRADE)
        .select_related("target_price__tier", "from_price__tier")
        .order_by("-settled_at", "-id")
        .first()
    )


def workspace_overview(
    tenant: Tenant, *, user: User, membership: Membership | None, recent: int = 8
) -> WorkspaceOverview:
    """Everything the staff workspace (admin index) shows for one tenant, and nothing of another."""
    stages = accounts_by_stage(tenant)
    tiers = licences_by_tier(tenant)
    licence_counts = License.objects.for_tenant(tenant).aggregate(
        holding=Count("id", filter=Q(status__in=HOLDING_STATUSES)),
        other=Count("id", filter=~Q(status__in=HOLDING_STATUSES)),
    )
    return WorkspaceOverview(
        tenant=tenant,
        accounts_total=sum(s.count for s in stages),
        stages=stages,
        tiers=tiers,
        mrr=mrr_totals(tenant, tiers),
        licences_holding=licence_counts["holding"],
        licences_not_holding=licence_counts["other"],
        pending=pending_approvals(tenant, user=user, membership=membership),
        plan_changes=recent_plan_changes(tenant, limit=recent),
        plan_changes_open=PlanChange.objects.for_tenant(tenant).filter(state__in=OPEN_PLAN_CHANGE_STATES).count(),
        audit=recent_audit_entries(tenant, limit=recent),
        trial=trial_in_progress(tenant),
        settled_upgrade=latest_settled_upgrade(tenant),
        currency=tenant.default_currency,
    )


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    hint: str


ROLE_HINTS = {
    Role.OWNER: "Everything, including API keys and Stripe settings.",
    Role.PRODUCT_MANAGER: "The catalog: drafts, approvals (never their own work), pricing preview.",
    Role.CSM: "Customer accounts and licences.",
    Role.ANALYST: "Read-only: sees everything, changes nothing.",
}


def _catalog_hint(item: Governed, user: User, membership: Membership) -> str:
    if user.pk == item.created_by_id:
        return f"Drafted {item.name} v{item.version}: someone else must approve it."
    if membership.role != Role.OWNER and four_eyes_refusal(item, user, membership) is None:
        return f"Approve {item.name} v{item.version}, drafted by {item.created_by or 'a colleague'} (four eyes)."
    return ""


def demo_logins(*, slug: str = DEMO_TENANT_SLUG) -> list[DemoLogin]:
    """The demo tenant's staff sign-ins (owner first) with what to try as each, or [] when the
    demo was never seeded.

    Only for pages shown with DEBUG on: it lists email addresses of a tenant's staff.
    """
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        return []
    memberships = Membership.objects.for_tenant(tenant).select_related("user")
    ordered = sorted(memberships, key=lambda m: (ROLE_ORDER.get(m.role, 99), m.user.email))
    waiting = (
        Tier.objects.for_tenant(tenant)
        .filter(state=GovernanceState.AWAITING_APPROVAL, approved_at__isnull=True)
        .select_related("created_by")
        .order_by("submitted_at", "id")
        .first()
    )
    logins = []
    for m in ordered:
        if not m.user.has_usable_password():
            continue  # invited, not signed up yet: no login to offer
        hint = ""
        if waiting is not None and m.role == Role.PRODUCT_MANAGER:
            hint = _catalog_hint(waiting, m.user, m)
        logins.append(DemoLogin(email=m.user.email, role=m.get_role_display(), hint=hint or ROLE_HINTS.get(m.role, "")))
    return logins
