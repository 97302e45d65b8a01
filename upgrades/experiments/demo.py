"""Demo data: one running experiment with assigned accounts (variants and a control group) and results a new
user can read in the admin (Experiments). Idempotent: found by name, assignments made once per account."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from accounts.services import audited_as
from accounts.tenancy import tenant_context
from upgrades.experiments.assignment import assign
from upgrades.experiments.models import Experiment, ExperimentAssignment, ExperimentState
from upgrades.experiments.services import create_experiment, start_experiment
from upgrades.offers.selectors import get_live_settings

SEED_ACTOR = "demo-seed"
NAME = "Launch discount against list price"
ACCOUNTS = 160


def _variants(tenant: Tenant) -> list[dict[str, Any]]:
    live = get_live_settings(tenant)
    keys = [str(v.get("key")) for v in (live.discount_variants if live else [])]
    discount = next((k for k in keys if k not in ("none", "")), "")
    return [
        {"key": "list-price", "weight": 1, "template_variant": "a", "anchor": True, "channel": "email"},
        {"key": "with-discount", "weight": 1, "template_variant": "b", "discount_variant": discount,
         "anchor": True, "channel": "email"},
    ]  # fmt: skip


def seed_experiments_demo(tenant: Tenant) -> dict[str, Any]:
    with tenant_context(tenant), audited_as(SEED_ACTOR):
        experiment = Experiment.objects.for_tenant(tenant).filter(name=NAME).first()
        if experiment is None:
            experiment = create_experiment(
                tenant, actor=SEED_ACTOR, name=NAME, variants=_variants(tenant), control_percent=20,
                hypothesis="A launch discount converts more accounts than list price, and pays for itself.",
                expected_monthly_accounts=400, baseline_conversion_percent="5", planned_days=60,
            )  # fmt: skip
        if experiment.state == ExperimentState.DRAFT:
            experiment = start_experiment(tenant, experiment=experiment, actor=SEED_ACTOR)
        Experiment.objects.for_tenant(tenant).filter(pk=experiment.pk, started_at__gt=timezone.now() - dt.timedelta(
            days=44)).update(started_at=timezone.now() - dt.timedelta(days=45))  # fmt: skip
        now = timezone.now()
        made = 0
        accounts = CustomerAccount.objects.for_tenant(tenant).order_by("pk")[:ACCOUNTS]
        have = set(ExperimentAssignment.objects.for_tenant(tenant).filter(experiment=experiment)
                   .values_list("account_id", flat=True))  # fmt: skip
        for i, account in enumerate(accounts):
            if account.pk in have:
                continue
            row = assign(tenant, experiment=experiment, account=account, signal=None,
                         now=now - dt.timedelta(days=40 - (i % 40)))  # fmt: skip
            if row.is_control and row.withheld_offer is None:
                row.withheld_offer = {"note": "Demo: the offer this account would have had was not sent."}
                row.save(update_fields=["withheld_offer"])
            made += 1
    return {"experiment": experiment.pk, "assigned": made}


__all__ = ["SEED_ACTOR", "seed_experiments_demo"]
