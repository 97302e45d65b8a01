"""Grants: trials and CSM grants, temporary overlays that end on their own."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from accounts.services import Actor, record_audit, snapshot
from accounts.tenancy import each_tenant
from billing.errors import BillingErrorCode, Conflict, InvalidInput
from billing.models import GrantKind, LicenseGrant
from billing.services.licenses.records import _clean, announce
from catalog.models import AddOn, GovernanceState, Tier

MAX_GRANT_DAYS = 366


# --- Grants: trials and CSM grants ------------------------------------------------------------------


@transaction.atomic
def start_grant(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    kind: str,
    actor: Actor,
    tier: Tier | None = None,
    addon: AddOn | None = None,
    days: int | None = None,
    ends_at: datetime | None = None,
    reason: str = "",
    reference: str = "",
) -> LicenseGrant:
    """A temporary overlay (trial of a higher tier, CSM grant). The paid licence and its billing date stay put."""
    errors: dict[str, list[str]] = {}
    if account.tenant_id != tenant.pk:
        errors["account"] = ["Not an account of this tenant."]
    if kind not in GrantKind.values:
        errors["kind"] = [f"One of {', '.join(GrantKind.values)}."]
    if (tier is None) == (addon is None):
        errors["tier"] = ["Give a tier or an add-on (one of them)."]
    for name, item in (("tier", tier), ("addon", addon)):
        if item is not None and (item.tenant_id != tenant.pk or item.state != GovernanceState.PUBLISHED):
            errors[name] = ["Not a published item of this tenant."]
    start = timezone.now()
    if ends_at is None and days is not None:
        ends_at = start + timedelta(days=days)
    if ends_at is None or ends_at <= start:
        errors["ends_at"] = ["The grant must end in the future."]
    elif ends_at - start > timedelta(days=MAX_GRANT_DAYS):
        errors["ends_at"] = [f"A grant lasts at most {MAX_GRANT_DAYS} days."]
    if errors:
        raise InvalidInput("Invalid grant.", code=BillingErrorCode.INVALID_GRANT, details=errors)
    overlapping = (
        LicenseGrant.objects.for_tenant(tenant)
        .filter(account=account, ended_at__isnull=True, ends_at__gt=start)
        .filter(Q(tier=tier) if tier is not None else Q(addon=addon))
    )
    if overlapping.exists():
        raise Conflict("The account already has this grant running.", code=BillingErrorCode.INVALID_GRANT)
    grant = LicenseGrant(
        tenant=tenant,
        account=account,
        kind=kind,
        tier=tier,
        addon=addon,
        starts_at=start,
        ends_at=ends_at,
        reason=reason[:200],
        reference=reference[:64],
        created_by=actor if hasattr(actor, "memberships") else None,
    )
    _clean(grant)
    grant.save()
    record_audit(
        tenant,
        actor=actor,
        action="license_grant.started",
        obj=grant,
        after=snapshot(grant, ["kind", "tier_id", "addon_id", "starts_at", "ends_at", "reason", "reference"]),
    )
    announce(grant)
    return grant


@transaction.atomic
def end_grant(
    tenant: Tenant, *, grant: LicenseGrant, actor: Actor, reason: str = "", at: datetime | None = None
) -> LicenseGrant:
    grant = LicenseGrant.objects.for_tenant(tenant).select_for_update().get(pk=grant.pk)
    if grant.ended_at is not None:
        return grant
    grant.ended_at = min(at or timezone.now(), grant.ends_at)
    grant.save(update_fields=["ended_at"])
    record_audit(
        tenant,
        actor=actor,
        action="license_grant.ended",
        obj=grant,
        after={"ended_at": grant.ended_at.isoformat(), "reason": reason},
    )
    announce(grant)
    return grant


def expire_grants(*, now: datetime | None = None, tenant_id: int | None = None) -> int:
    """Close every grant past its end (the trial sunset). Safe to run twice or concurrently.

    Tenant by tenant (`each_tenant`), so row-level security sees each tenant's rows in turn.
    """
    now = now or timezone.now()
    count = 0
    for tenant in each_tenant():
        if tenant_id is None or tenant.pk == tenant_id:
            count += _expire_tenant_grants(tenant, now=now)
    return count


def _expire_tenant_grants(tenant: Tenant, *, now: datetime) -> int:
    qs = LicenseGrant.objects.for_tenant(tenant).filter(ended_at__isnull=True, ends_at__lte=now)
    count = 0
    for grant_id in qs.values_list("pk", flat=True)[:1000]:
        with transaction.atomic():
            grant = (
                LicenseGrant.objects.for_tenant(tenant)
                .select_for_update(skip_locked=True)
                .filter(pk=grant_id, ended_at__isnull=True)
                .select_related("tenant")
                .first()
            )
            if grant is None:
                continue
            grant.ended_at = grant.ends_at
            grant.save(update_fields=["ended_at"])
            record_audit(
                grant.tenant,
                actor="system",
                action="license_grant.expired",
                obj=grant,
                after={"ended_at": grant.ended_at.isoformat()},
            )
            announce(grant)
            count += 1
    return count
