"""Accounts named by ingested events: resolved by external id, auto-created (and audited)
when the tenant allows it.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from accounts.models import CustomerAccount, Tenant
from accounts.services import Actor, record_audit, snapshot
from usage import cache


def _resolve_accounts(tenant: Tenant, external_ids: Mapping[str, bool], *, actor: Actor) -> dict[str, int]:
    """External id -> account id for the ids of a validated batch.

    `external_ids` maps each id to whether it may be auto-created if unknown (only ids of
    events that passed validation are passed in, so a rejected event creates nothing).
    Created accounts get their cached entitlement answers invalidated on commit: a stale
    entry under the same external id (a deleted or renamed account's) must not be served.
    """
    if not external_ids:
        return {}
    found = dict(
        CustomerAccount.objects.for_tenant(tenant).filter(external_id__in=external_ids).values_list("external_id", "id")
    )
    missing = {x for x, creatable in external_ids.items() if creatable} - found.keys()
    if missing and tenant.auto_create_accounts:
        with transaction.atomic():
            CustomerAccount.objects.bulk_create(
                [CustomerAccount(tenant=tenant, external_id=x, name=x) for x in sorted(missing)], ignore_conflicts=True
            )
            created = CustomerAccount.objects.for_tenant(tenant).filter(external_id__in=missing)
            for account in created:
                record_audit(
                    tenant,
                    actor=actor,
                    action="account.auto_created",
                    obj=account,
                    after=snapshot(account, ["external_id", "name"]),
                )
                found[account.external_id] = account.pk
            cache.invalidate_on_commit([cache.PLAN, cache.USAGE], tenant.pk, sorted(missing))
    return found
