"""What every licence write shares: the history row (LicenseChange), the audit entry, the row lock,
and the announcement to the apps above once committed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant
from accounts.services import Actor, actor_label, record_audit, snapshot
from billing.errors import InvalidInput
from billing.models import License, LicenseChange, LicenseGrant
from billing.signals import license_changed

LICENSE_AUDIT_FIELDS = [
    "tier_id",
    "price_id",
    "seats",
    "interval",
    "status",
    "status_reason",
    "held_from_status",
    "cancel_at_period_end",
    "current_period_start",
    "current_period_end",
    "mrr",
    "commitment_ends_at",
    "term_years",
    "renewal_discount_percent",
    "term_percents",
]


def announce(license_or_grant: License | LicenseGrant) -> None:
    """Tell the apps above (usage caches, upgrades) once the transaction has committed."""
    tenant_id, account_id = license_or_grant.tenant_id, license_or_grant.account_id
    transaction.on_commit(lambda: license_changed.send(sender=License, tenant_id=tenant_id, account_id=account_id))


def license_state(license: License) -> dict[str, Any]:
    """The JSON picture of a licence kept in LicenseChange.from_state / to_state."""
    addons = sorted(license.addons.values_list("key", flat=True)) if license.pk else []
    return {
        "tier": license.tier.key,
        "tier_name": license.tier.name,
        "tier_version": license.tier.version,
        "price_id": license.price_id,
        "seats": license.seats,
        "interval": license.interval,
        "status": license.status,
        "addons": addons,
        "mrr": license.mrr,
        "currency": license.currency,
    }


def record_change(
    license: License,
    *,
    kind: str,
    before: dict[str, Any],
    actor: Actor,
    reason: str = "",
    reference: str = "",
    mrr_before: int,
    stripe_invoice_id: str = "",
    effective_at: datetime | None = None,
    to_extra: dict[str, Any] | None = None,
) -> LicenseChange:
    return LicenseChange.objects.create(
        tenant_id=license.tenant_id,
        account_id=license.account_id,
        license=license,
        kind=kind,
        from_state=before,
        to_state={**license_state(license), **(to_extra or {})},
        reason=reason[:200],
        actor_label=actor_label(actor)[:200],
        reference=reference[:64],
        mrr_before=mrr_before,
        mrr_after=license.mrr,
        currency=license.currency,
        stripe_invoice_id=stripe_invoice_id,
        effective_at=effective_at or timezone.now(),
    )


def _audit(
    license: License, *, actor: Actor, action: str, before: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    after = snapshot(license, LICENSE_AUDIT_FIELDS)
    changed = {k for k in after if before.get(k) != after.get(k)}
    record_audit(
        license.tenant,
        actor=actor,
        action=action,
        obj=license,
        before={k: before.get(k) for k in changed},
        after={**{k: after[k] for k in changed}, **(extra or {})},
    )


def _clean(obj: Any) -> None:
    try:
        obj.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput("Invalid input.", details=exc.message_dict) from exc


def _lock(tenant: Tenant, license: License) -> License:
    return (
        License.objects.for_tenant(tenant)
        .select_for_update(of=("self",))
        .select_related("tier", "tenant")
        .get(pk=license.pk)
    )
