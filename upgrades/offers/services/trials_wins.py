"""Early wins of a trial, its progress view, and the next steps after it.

An early win is a feature the trial unlocked, used during the trial. The numbers come from usage:
- a feature with a meter: its daily rollups over the trial's days (count and sum add up, max is
  the peak, unique count is the distinct values over the trial);
- a feature without a meter: events that name it (`properties.feature`) during the trial;
- feature-gate hits naming it during the trial (the customer reached even the trial's limit)
  count as uses too.
`record_early_wins` is an idempotent upsert (one `TrialWin` per trial and feature, ON CONFLICT
DO UPDATE): running it twice, or from two workers, leaves the same rows.

`trial_progress` and `trial_next_steps` are the reads the portal, console and messages show: plain
sentences and the numbers behind them, dates in the tenant's zone in the one date style. The copy
is calm and non-coercive: no countdowns, no pre-ticked choice; staying on the paid plan is a
first-class option and nothing made during the trial is lost.
"""

from __future__ import annotations

import math
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Max, Min, QuerySet, Sum
from django.utils import formats, timezone

from accounts.models import Tenant
from accounts.tenancy import each_tenant
from catalog.models import AddOn, Aggregation, Feature, Meter, Tier
from upgrades.offers.errors import NotFound
from upgrades.offers.models import Trial, TrialState, TrialWin
from usage.models import FEATURE_GATE_HIT_EVENT, Event, UsageDistinctValue, UsageRollup


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _window(trial: Trial, now: datetime) -> tuple[datetime, datetime]:
    end = min(now, trial.ended_at or trial.ends_at, trial.ends_at)
    return trial.starts_at, end


def _meter_numbers(tenant: Tenant, trial: Trial, meter: Meter, start: datetime, end: datetime) -> dict | None:
    days = UsageRollup.objects.for_tenant(tenant).filter(
        account_id=trial.account_id, meter=meter, day__gte=start.date(), day__lte=end.date()
    )
    used = days.filter(event_count__gt=0)
    agg = used.aggregate(
        total=Sum("value"), peak=Max("value"), uses=Sum("event_count"), first=Min("day"), last=Max("day")
    )
    if not agg["uses"]:
        return None
    if meter.aggregation == Aggregation.MAX:
        quantity = agg["peak"] or 0
    elif meter.aggregation == Aggregation.UNIQUE_COUNT:
        quantity = (
            UsageDistinctValue.objects.for_tenant(tenant)
            .filter(account_id=trial.account_id, meter=meter, day__gte=start.date(), day__lte=end.date())
            .values("value")
            .distinct()
            .count()
        )
    else:
        quantity = agg["total"] or 0
    return {
        "uses": int(agg["uses"]),
        "quantity": int(quantity),
        "first": max(start, _day_start(agg["first"])),
        "last": min(end, _day_start(agg["last"]) + timedelta(days=1) - timedelta(microseconds=1)),
    }


def _event_numbers(tenant: Tenant, trial: Trial, feature: Feature, start: datetime, end: datetime) -> dict | None:
    agg = (
        Event.objects.for_tenant(tenant)
        .filter(account_id=trial.account_id, occurred_at__gte=start, occurred_at__lte=end)
        .filter(properties__feature=feature.key)
        .aggregate(uses=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
    )
    if not agg["uses"]:
        return None
    return {"uses": int(agg["uses"]), "quantity": 0, "first": agg["first"], "last": agg["last"]}


def _gate_hits(tenant: Tenant, trial: Trial, feature: Feature, start: datetime, end: datetime) -> dict | None:
    agg = (
        Event.objects.for_tenant(tenant)
        .filter(account_id=trial.account_id, event=FEATURE_GATE_HIT_EVENT, occurred_at__gte=start, occurred_at__lte=end)
        .filter(properties__feature=feature.key)
        .aggregate(uses=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
    )
    return None if not agg["uses"] else {"uses": int(agg["uses"]), "first": agg["first"], "last": agg["last"]}


def record_early_wins(tenant: Tenant, *, trial: Trial, now: datetime | None = None) -> list[TrialWin]:
    """Upsert one `TrialWin` per unlocked feature used during the trial (up to `now`). Idempotent."""
    now = now or timezone.now()
    start, end = _window(trial, now)
    if end <= start or not trial.unlocked_features:
        return []
    features = list(Feature.objects.for_tenant(tenant).filter(key__in=trial.unlocked_features).order_by("id"))
    meters: dict[int, Meter] = {}
    for meter in Meter.objects.for_tenant(tenant).filter(feature__in=features).order_by("id"):
        meters.setdefault(meter.feature_id, meter)
    rows = []
    for feature in features:
        meter = meters.get(feature.pk)
        if meter is not None:
            numbers = _meter_numbers(tenant, trial, meter, start, end)
        else:
            numbers = _event_numbers(tenant, trial, feature, start, end)
        hits = _gate_hits(tenant, trial, feature, start, end) if meter is not None else None
        if hits is not None:  # events naming the feature already include these when there is no meter
            numbers = numbers or {"uses": 0, "quantity": 0, "first": hits["first"], "last": hits["last"]}
            numbers = {
                **numbers,
                "uses": numbers["uses"] + hits["uses"],
                "first": min(numbers["first"], hits["first"]),
                "last": max(numbers["last"], hits["last"]),
            }
        if numbers is None:
            continue
        rows.append(
            TrialWin(
                tenant=tenant,
                trial=trial,
                feature=feature,
                first_used_at=numbers["first"],
                last_used_at=numbers["last"],
                uses=numbers["uses"],
                quantity=numbers["quantity"],
            )
        )
    if rows:
        TrialWin.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["trial", "feature"],
            update_fields=["first_used_at", "last_used_at", "uses", "quantity"],
        )
    return list(TrialWin.objects.for_tenant(tenant).filter(trial=trial).select_related("feature"))


def record_wins_for_active_trials(*, now: datetime | None = None, tenant_id: int | None = None) -> int:
    """Beat: refresh the early wins of every trial in progress, tenant by tenant. Returns trials visited."""
    now = now or timezone.now()
    count = 0
    for tenant in each_tenant():
        if tenant_id is not None and tenant.pk != tenant_id:
            continue
        trials = (
            Trial.objects.for_tenant(tenant)
            .filter(ended_at__isnull=True, starts_at__lte=now)
            .exclude(unlocked_features=[])
            .order_by("id")
        )
        for trial in trials.iterator(chunk_size=500):  # every trial each run: no batch that starves the rest
            record_early_wins(tenant, trial=trial, now=now)
            count += 1
    return count


# --- reads: the progress view and the next steps ----------------------------------------------------


def list_trials(tenant: Tenant, *, account_id: int | None = None) -> QuerySet[Trial]:
    qs = Trial.objects.for_tenant(tenant).select_related("account", "grant")
    return qs.filter(account_id=account_id) if account_id is not None else qs


def get_trial_for_tenant(tenant: Tenant, trial_id: int) -> Trial:
    """One trial of this tenant; foreign and missing ids alike are NotFound."""
    trial = Trial.objects.for_tenant(tenant).select_related("account", "grant").filter(pk=trial_id).first()
    if trial is None:
        raise NotFound(f"No trial {trial_id}.")
    return trial


def _date(tenant: Tenant, value: datetime) -> str:
    zone = zoneinfo.ZoneInfo(tenant.time_zone or "UTC")
    return formats.date_format(timezone.localtime(value, zone), "DATE_FORMAT")


def target_name(tenant: Tenant, trial: Trial) -> str:
    model = Tier if trial.target_kind == "tier" else AddOn
    name = (
        model.objects.for_tenant(tenant)
        .filter(key=trial.target_key)
        .order_by("-version")
        .values_list("name", flat=True)
        .first()
    )
    return name or trial.target_key


def _win_sentence(win: TrialWin, *, has_meter: bool) -> str:
    name = win.feature.name
    times = f"{win.uses:,} time{'s' if win.uses != 1 else ''}"
    if has_meter and win.quantity and win.feature.unit:
        return f"You used {name} {times} during the trial: {win.quantity:,} {win.feature.unit}."
    return f"You used {name} {times} during the trial."


def trial_progress(tenant: Tenant, trial: Trial, *, now: datetime | None = None) -> dict[str, Any]:
    """What the trial unlocked and what the customer did with it: numbers and plain sentences."""
    now = now or timezone.now()
    name = target_name(tenant, trial)
    wins = list(TrialWin.objects.for_tenant(tenant).filter(trial=trial).select_related("feature").order_by("id"))
    metered = set(
        Meter.objects.for_tenant(tenant)
        .filter(feature_id__in=[w.feature_id for w in wins])
        .values_list("feature_id", flat=True)
    )
    unlocked = dict(
        Feature.objects.for_tenant(tenant).filter(key__in=trial.unlocked_features).values_list("key", "name")
    )
    running = trial.state in (TrialState.ACTIVE, TrialState.CONVERTED) and trial.ended_at is None
    days_left = max(0, math.ceil((trial.ends_at - now) / timedelta(days=1))) if running else 0
    days_total = max(1, math.ceil((trial.ends_at - trial.starts_at) / timedelta(days=1)))
    end_label = _date(tenant, trial.ends_at)
    if trial.state == TrialState.ACTIVE:
        summary = (
            f"Your trial of {name} runs until {end_label}. Your current plan and its billing date stay as they are."
        )
    elif trial.state == TrialState.CONVERTED:
        summary = f"You upgraded to {name}. Everything your trial gave you stays until {end_label} as promised."
    elif trial.state == TrialState.CANCELLED:
        summary = f"Your trial of {name} ended early. Everything you made during it is kept."
    else:
        summary = f"Your trial of {name} ended on {end_label}. Everything you made during it is kept."
    if wins:
        used = ", ".join(w.feature.name for w in wins)
        wins_sentence = f"During the trial you used {used}."
    elif trial.unlocked_features:
        wins_sentence = "You haven't used the features this trial unlocked yet."
    else:
        wins_sentence = "This trial raises limits; it unlocks no new features."
    return {
        "id": trial.pk,
        "account": trial.account.external_id,
        "target_kind": trial.target_kind,
        "target_key": trial.target_key,
        "target_name": name,
        "state": trial.state,
        "source": trial.source,
        "starts_at": trial.starts_at,
        "ends_at": trial.ends_at,
        "ended_at": trial.ended_at,
        "converted_at": trial.converted_at,
        "days_total": days_total,
        "days_left": days_left,
        "unlocked_features": [{"key": key, "name": unlocked.get(key, key)} for key in trial.unlocked_features],
        "wins": [
            {
                "feature": w.feature.key,
                "name": w.feature.name,
                "unit": w.feature.unit,
                "uses": w.uses,
                "quantity": w.quantity,
                "first_used_at": w.first_used_at,
                "last_used_at": w.last_used_at,
                "sentence": _win_sentence(w, has_meter=w.feature_id in metered),
            }
            for w in wins
        ],
        "summary": summary,
        "wins_sentence": wins_sentence,
    }


def trial_next_steps(tenant: Tenant, trial: Trial) -> dict[str, Any]:
    """The copy and options after (or near) the end: upgrade, stay as you are, or talk to a person.

    Equal options, none preselected; staying is the default that needs no action.
    """
    name = target_name(tenant, trial)
    offer_id = trial.offer_id
    if trial.state == TrialState.CONVERTED:
        return {
            "headline": f"You're on {name}",
            "body": f"Your trial ran to its promised end on {_date(tenant, trial.ends_at)}; nothing more to do.",
            "data_kept": "Everything you made during the trial is kept.",
            "options": [],
        }
    return {
        "headline": f"Your trial of {name}" + (" has ended" if trial.ended_at else ""),
        "body": (
            "You're back on your current plan with the same billing date. If the trial helped, you can upgrade "
            "whenever it suits you; if not, there is nothing to do."
        ),
        "data_kept": "Everything you made during the trial is kept; features your plan doesn't include are paused, "
        "not deleted.",
        "options": [
            {"key": "upgrade", "label": f"See what {name} would cost", "offer": offer_id, "preselected": False},
            {"key": "stay", "label": "Stay on my current plan", "offer": None, "preselected": False},
            {"key": "talk_to_person", "label": "Talk to a person", "offer": None, "preselected": False},
        ],
    }
