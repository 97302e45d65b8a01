"""Reads other layers use (console, portal, analytics sit above and may import these)."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Tenant
from upgrades.experiments.models import CONTROL, ExperimentAssignment, ExperimentState


def held_out_account_ids(tenant: Tenant) -> QuerySet:
    """Accounts in the control group of a running experiment: no upgrade outreach on any channel
    (a CSM worklist or playbook leaves them out; the offer engine already withholds their offers)."""
    return (
        ExperimentAssignment.objects.for_tenant(tenant)
        .filter(arm=CONTROL, experiment__state=ExperimentState.RUNNING)
        .values_list("account_id", flat=True)
    )


def is_held_out(tenant: Tenant, account_id: int) -> bool:
    return held_out_account_ids(tenant).filter(account_id=account_id).exists()


def assignments_of(tenant: Tenant, account_id: int) -> list[ExperimentAssignment]:
    """An account's experiments and arms (the account page, analytics)."""
    return list(
        ExperimentAssignment.objects.for_tenant(tenant).filter(account_id=account_id).select_related("experiment")
    )
