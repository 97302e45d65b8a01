"""Signal receivers: how changes elsewhere reach cached entitlement answers and rollups.

Cached answers are keyed by (tenant, external id); see usage/cache.py.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from usage import cache


def on_license_changed(sender: Any, *, tenant_id: int, account_id: int, **kwargs: Any) -> None:
    """A licence or grant changed (sent after commit): the plan and the usage windows may differ now."""
    from accounts.models import CustomerAccount

    external_id = (
        CustomerAccount.objects.for_tenant(tenant_id).filter(pk=account_id).values_list("external_id", flat=True)
    ).first()
    if external_id is not None:
        cache.invalidate([cache.PLAN, cache.USAGE], tenant_id, [external_id])


def on_account_saved_or_deleted(sender: Any, *, instance: Any, **kwargs: Any) -> None:
    """An account's answers are cached by external id: a deleted (or re-created) account must not be served."""
    tenant_id, external_id = instance.tenant_id, instance.external_id
    transaction.on_commit(lambda: cache.invalidate([cache.PLAN, cache.USAGE], tenant_id, [external_id]))


def on_meter_saved(sender: Any, *, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    """A new or edited meter counts differently: rebuild its rollups from raw events after commit."""
    from usage.tasks import rebuild_meter_rollups

    tenant_id, meter_id = instance.tenant_id, instance.pk
    transaction.on_commit(lambda: rebuild_meter_rollups.delay(tenant_id, meter_id))
