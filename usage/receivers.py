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


def remember_external_id(sender: Any, *, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """Before an account is saved: note the external id it had, so a rename invalidates the old one too."""
    if raw or instance.pk is None:
        instance._usage_previous_external_id = None
        return
    instance._usage_previous_external_id = (
        type(instance)._base_manager.filter(pk=instance.pk).values_list("external_id", flat=True).first()
    )


def on_account_saved_or_deleted(sender: Any, *, instance: Any, **kwargs: Any) -> None:
    """An account's answers are cached by external id: a deleted, re-created or renamed account must not be served.

    A rename invalidates both ids: the old one (an answer cached under it would otherwise be
    served for it, or for a new account that takes it) and the new one.
    """
    refs = {instance.external_id}
    previous = getattr(instance, "_usage_previous_external_id", None)
    if previous:
        refs.add(previous)
    cache.invalidate_on_commit([cache.PLAN, cache.USAGE], instance.tenant_id, refs)


def on_meter_saved(sender: Any, *, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    """A new or edited meter counts differently: rebuild its rollups from raw events after commit."""
    from usage.tasks import rebuild_meter_rollups

    tenant_id, meter_id = instance.tenant_id, instance.pk
    transaction.on_commit(lambda: rebuild_meter_rollups.delay(tenant_id, meter_id))
