"""Accounts named by ingested events: resolved by external id, auto-created (and audited)
when the tenant allows it.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import CustomerAccount, Tenant
from accounts.services import Actor, record_audit, snapshot


def _resolve_accounts(tenant: Tenant, external_ids: set[str], *, actor: Actor) -> dict[str, int]:
    if not external_ids:
        return {}
    found = dict(
        CustomerAccount.objects.for_tenant(tenant).filter(external_id__in=external_ids).values_list("external_id", "id")
    )
    missing = external_ids - found.keys()
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
    return found
