"""Reads other layers use (console, portal, analytics sit above and may import these)."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.errors import NotFound
from accounts.models import Tenant
from upgrades.experiments.models import CONTROL, Experiment, ExperimentAssignment, ExperimentState


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


def list_experiments(tenant: Tenant) -> QuerySet:
    """The tenant's experiments, newest first."""
    return Experiment.objects.for_tenant(tenant).order_by("-created_at", "-id")


def get_experiment_for_tenant(tenant: Tenant, experiment_id: int) -> Experiment:
    """One of the tenant's experiments; another tenant's id is simply not found (404)."""
    found = list_experiments(tenant).filter(pk=experiment_id).first()
    if found is None:
        raise NotFound("No such experiment.")
    return found
