"""Deterministic assignment, made when the trigger fires (the offer engine's hook, see building.py).

bucket = first 8 bytes of sha256("tenant:experiment:account") mod 10,000 — the same in every process and
run. Buckets below control_percent * 100 are the control group; the rest are split across the variants
in proportion to their weights. An account is assigned once per experiment (unique constraint): a later
trigger finds its assignment and gets the same arm.

Controls get no offer: the engine's snapshot (recommendation and pricing) is recorded on the assignment
as `withheld_offer` and never written as an Offer, so nothing is sent on any channel (messaging sends
only for offers and trials), and the signal is marked acted on ("experiment:<id>:control") so neither the
sweep nor a CSM's worklist picks it up again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction

from accounts.models import CustomerAccount, Tenant
from upgrades.experiments.buckets import arm_for_bucket, bucket_of
from upgrades.experiments.models import Experiment, ExperimentAssignment, ExperimentState
from upgrades.rules.models import Signal


def arm_for(experiment: Experiment, account_id: int) -> str:
    return arm_for_bucket(experiment, bucket_of(experiment.tenant_id, experiment.pk, account_id))


def variant_of(experiment: Experiment, key: str) -> dict:
    return next((v for v in experiment.variants if v.get("key") == key), {})


def _jsonable(fields: dict) -> dict:
    import json

    keep = {k: v for k, v in fields.items() if k not in ("signal", "settings_version")}
    keep["settings_version"] = getattr(fields.get("settings_version"), "pk", None)
    return json.loads(json.dumps(keep, cls=DjangoJSONEncoder))


def enrols(experiment: Experiment, signal: Signal | None) -> bool:
    if signal is None:
        return False
    return not experiment.signal_kinds or signal.kind in experiment.signal_kinds


def assign(
    tenant: Tenant, *, experiment: Experiment, account: CustomerAccount, signal: Signal | None, now: datetime
) -> ExperimentAssignment:
    """The account's assignment in this experiment: made now, or the one already made (never a second)."""
    existing = ExperimentAssignment.objects.for_tenant(tenant).filter(experiment=experiment, account=account).first()
    if existing is not None:
        return existing
    bucket = bucket_of(tenant.pk, experiment.pk, account.pk)
    row = ExperimentAssignment(tenant=tenant, experiment=experiment, account=account, signal=signal,
                               arm=arm_for_bucket(experiment, bucket), bucket=bucket, assigned_at=now)  # fmt: skip
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:  # another worker assigned it first: theirs
        return ExperimentAssignment.objects.for_tenant(tenant).get(experiment=experiment, account=account)
    return row


@dataclass
class Decision:
    """What the offer engine asks of an experiment for one account (see building.EXPERIMENT_HOOKS)."""

    tenant: Tenant
    assignment: ExperimentAssignment | None  # None: a rolled-out winner, the default for everyone
    variant: dict
    key: str = ""

    @property
    def discount_variant(self) -> str:
        return str(self.variant.get("discount_variant") or "")

    def apply(self, fields: dict) -> bool:
        from upgrades.rules.services import mark_signals_acted_on

        a = self.assignment
        if a is None:
            fields["variant"] = self.key
        elif a.is_control:
            if a.withheld_offer is None:
                a.withheld_offer = _jsonable(fields)
                a.save(update_fields=["withheld_offer"])
            if a.signal_id is not None or fields.get("signal") is not None:
                signal = fields.get("signal")
                sid = signal.pk if signal is not None else a.signal_id
                mark_signals_acted_on(
                    self.tenant, signal_ids_to_reference={sid: f"experiment:{a.experiment_id}:control"}
                )
            return True
        else:
            fields["variant"] = a.arm
        if self.variant.get("anchor") is False:
            fields["anchor"] = None
        return False


def offer_hook(tenant: Tenant, *, now: datetime):
    """Registered in building.EXPERIMENT_HOOKS: one query per build or batch; None when nothing applies.

    Running experiments assign the accounts they enrol; otherwise a rolled-out winner is the default arm
    of every new offer (no assignment, no control)."""
    live = list(
        Experiment.objects.for_tenant(tenant)
        .filter(state__in=[ExperimentState.RUNNING, ExperimentState.ROLLED_OUT]).order_by("started_at", "id")
    )  # fmt: skip
    if not live:
        return None
    running = [e for e in live if e.state == ExperimentState.RUNNING]
    rolled = next((e for e in reversed(live) if e.state == ExperimentState.ROLLED_OUT), None)

    def arm(*, account: CustomerAccount, signal: Signal | None) -> Decision | None:
        for experiment in running:
            if enrols(experiment, signal):
                assignment = assign(tenant, experiment=experiment, account=account, signal=signal, now=now)
                return Decision(tenant, assignment, variant_of(experiment, assignment.arm))
        if rolled is not None:
            return Decision(tenant, None, variant_of(rolled, rolled.winner), key=rolled.winner)
        return None

    return arm


def _arm_of_offer(tenant: Tenant, offer) -> dict:
    """The arm the offer was built for (its experiment's assignment, or the rolled-out winner); {} if none."""
    if not offer.variant:
        return {}
    row = (
        ExperimentAssignment.objects.for_tenant(tenant).filter(account_id=offer.account_id, arm=offer.variant)
        .select_related("experiment").order_by("-assigned_at").first()
    )  # fmt: skip
    experiment = row.experiment if row is not None else None
    if experiment is None:
        experiment = (
            Experiment.objects.for_tenant(tenant).filter(state=ExperimentState.ROLLED_OUT, winner=offer.variant).first()
        )
    if experiment is None:
        return {}
    return variant_of(experiment, offer.variant)


def template_variant_for_offer(tenant: Tenant, *, offer) -> str | None:
    """Registered in messages.OFFER_TEMPLATE_VARIANTS: the arm's template variant; None when it names none."""
    return str(_arm_of_offer(tenant, offer).get("template_variant") or "") or None


CHANNELS = ("email", "in_app")


def channel_for_offer(tenant: Tenant, *, offer) -> str | None:
    """Registered in messages.OFFER_CHANNELS: the channel the arm sends its offer through; None: email."""
    channel = _arm_of_offer(tenant, offer).get("channel")
    return channel if channel in CHANNELS else None


def trial_days_for_offer(tenant: Tenant, *, offer) -> int | None:
    """Registered in trials.TRIAL_DAYS_HOOKS: the arm's trial length (1..90 days); None: the usual length."""
    days = _arm_of_offer(tenant, offer).get("trial_days")
    if isinstance(days, bool) or not isinstance(days, int):
        return None
    return max(1, min(90, days))
