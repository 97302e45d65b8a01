"""What an experiment shows: the plan before launch (MDE) and the results after (lift, CI, SRM, verdict).

Outcomes per assigned account, over `window_days` (30 or 90) from its assignment, from billing:
- converted: a licence change that raised MRR (`LicenseChange.mrr_after > mrr_before`) in the window,
  whether or not through an offer (controls who upgrade on their own count);
- billed revenue: the sum of settled plan changes' `charged_amount` in the window (what Stripe charged,
  net of discounts and of credits for unused time), per currency (`PlanChange.currency`): amounts in
  different currencies are never added, so each currency seen among the experiment's settled charges
  gets its own revenue per assigned account and its own comparison vs control;
- MRR gained: the sum of `mrr_after - mrr_before` of the licence changes in the window, per currency
  (`LicenseChange.currency`) likewise.
Every assigned account counts (intention to treat), whatever happened to its offer.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from accounts.models import Tenant
from billing.models import LicenseChange, PlanChange, PlanChangeState
from upgrades.experiments.models import CONTROL, Experiment, ExperimentAssignment
from upgrades.experiments.stats import (
    Comparison,
    SampleRatio,
    compare_conversion,
    compare_revenue,
    minimum_detectable_effect,
    sample_ratio_mismatch,
)

WINDOWS = (30, 90)


def arm_shares(experiment: Experiment) -> dict[str, float]:
    control = experiment.control_percent / 100
    variants = [v for v in experiment.variants if int(v.get("weight", 1)) > 0]
    total = sum(int(v.get("weight", 1)) for v in variants) or 1
    shares = {str(v["key"]): (1 - control) * int(v.get("weight", 1)) / total for v in variants}
    shares[CONTROL] = control
    return shares


@dataclass(frozen=True)
class Plan:
    accounts: int  # expected over the planned days
    per_variant: dict[str, float]
    mde_points: dict[str, float | None]  # absolute lift in percentage points, per variant
    sentence: str


def plan(experiment: Experiment) -> Plan:
    shares = arm_shares(experiment)
    accounts = round(experiment.expected_monthly_accounts * experiment.planned_days / 30)
    baseline = float(experiment.baseline_conversion_percent) / 100
    per = {k: accounts * s for k, s in shares.items()}
    mde = {}
    for key in shares:
        if key == CONTROL:
            continue
        effect = minimum_detectable_effect(baseline=baseline, n_treatment=per[key], n_control=per[CONTROL],
                                           alpha=float(experiment.alpha), power=float(experiment.power))  # fmt: skip
        mde[key] = None if effect is None else round(effect * 100, 1)
    known = [v for v in mde.values() if v is not None]
    if not known:
        sentence = "Not enough expected traffic to detect any lift; raise the traffic or the planned days."
    else:
        worst = max(known)
        sentence = (
            f"With ~{experiment.expected_monthly_accounts:,} accounts a month over {experiment.planned_days} days "
            f"(~{accounts:,} accounts, {experiment.control_percent}% held out), you can detect a lift of "
            f"{worst:g} points or more in conversion (from {float(experiment.baseline_conversion_percent):g}%), "
            f"{round(float(experiment.power) * 100)} times in 100."
        )
    return Plan(accounts, per, mde, sentence)


@dataclass
class ArmResult:
    key: str
    assigned: int = 0
    converted: int = 0
    # Billed per assigned account, one list per currency (every assigned account has a value in each).
    revenue: dict[str, list[int]] = field(default_factory=dict)
    # MRR gained per assigned account, one list per currency, likewise.
    mrr: dict[str, list[int]] = field(default_factory=dict)

    @property
    def conversion(self) -> float:
        return self.converted / self.assigned if self.assigned else 0.0

    def revenue_per_account(self, currency: str) -> float:
        return sum(self.revenue.get(currency, [])) / self.assigned if self.assigned else 0.0

    def mrr_per_account(self, currency: str) -> float:
        return sum(self.mrr.get(currency, [])) / self.assigned if self.assigned else 0.0

    @property
    def conversion_percent(self) -> float:
        return round(self.conversion * 100, 1)

    @property
    def revenue_minor(self) -> list[tuple[str, int]]:
        """(currency, billed per assigned account in minor units of it), one pair per currency."""
        return [(currency, round(self.revenue_per_account(currency))) for currency in sorted(self.revenue)]

    @property
    def mrr_minor(self) -> list[tuple[str, int]]:
        """(currency, MRR gained per assigned account in minor units of it), one pair per currency."""
        return [(currency, round(self.mrr_per_account(currency))) for currency in sorted(self.mrr)]


@dataclass(frozen=True)
class RevenueLift:
    currency: str
    comparison: Comparison | None  # minor units of `currency` per assigned account; None: too few accounts


@dataclass(frozen=True)
class VariantVerdict:
    key: str
    conversion: Comparison | None
    revenue: list[RevenueLift]  # one per currency of Results.currencies, in that order
    verdict: str


@dataclass(frozen=True)
class Results:
    window_days: int
    arms: dict[str, ArmResult]
    currencies: list[str]  # of the billed revenue: those of the settled charges, else the tenant's default
    mrr_currencies: list[str]  # of the MRR gained: those of the licence changes, else the tenant's default
    comparisons: list[VariantVerdict]
    srm: SampleRatio | None
    matured: int  # accounts whose whole window has passed
    verdict: str


def _outcomes(tenant: Tenant, rows: list[ExperimentAssignment], *, window: timedelta, now: datetime):
    if not rows:
        return {}, {}
    ids = [r.account_id for r in rows]
    start = min(r.assigned_at for r in rows)
    changes, charges = defaultdict(list), defaultdict(list)
    for account_id, at, before, after, currency in (
        LicenseChange.objects.for_tenant(tenant).filter(account_id__in=ids, effective_at__gte=start)
        .values_list("account_id", "effective_at", "mrr_before", "mrr_after", "currency")
    ):  # fmt: skip
        changes[account_id].append((at, after - before, currency.upper()))
    for account_id, at, amount, currency in (
        PlanChange.objects.for_tenant(tenant)
        .filter(account_id__in=ids, state=PlanChangeState.SETTLED, settled_at__gte=start)
        .values_list("account_id", "settled_at", "charged_amount", "currency")
    ):  # fmt: skip
        charges[account_id].append((at, amount or 0, currency.upper()))
    return changes, charges


def results(tenant: Tenant, experiment: Experiment, *, window_days: int = 30, now: datetime | None = None) -> Results:
    now = now or timezone.now()
    window = timedelta(days=window_days)
    rows = list(ExperimentAssignment.objects.for_tenant(tenant).filter(experiment=experiment))
    changes, charges = _outcomes(tenant, rows, window=window, now=now)

    def in_window(row: ExperimentAssignment, found: dict) -> list[tuple[int, str]]:
        return [(amount, cur) for at, amount, cur in found.get(row.account_id, [])
                if row.assigned_at <= at < row.assigned_at + window]  # fmt: skip

    billed = {row.pk: in_window(row, charges) for row in rows}
    gained = {row.pk: in_window(row, changes) for row in rows}
    # Only currencies actually seen in a window; with none, one row in the tenant's currency (zeros), as ever.
    fallback = [(tenant.default_currency or "USD").upper()]
    currencies = sorted({cur for found in billed.values() for _, cur in found}) or fallback
    mrr_currencies = sorted({cur for found in gained.values() for _, cur in found}) or fallback

    def new_arm(key: str) -> ArmResult:
        return ArmResult(key, revenue={cur: [] for cur in currencies}, mrr={cur: [] for cur in mrr_currencies})

    def per_currency(found: list[tuple[int, str]], cur: str) -> int:
        return sum(amount for amount, c in found if c == cur)

    arms = {key: new_arm(key) for key in arm_shares(experiment)}
    matured = 0
    for row in rows:
        arm = arms.setdefault(row.arm, new_arm(row.arm))
        matured += row.assigned_at + window <= now
        arm.assigned += 1
        arm.converted += any(d > 0 for d, _ in gained[row.pk])
        for cur in mrr_currencies:
            arm.mrr[cur].append(per_currency(gained[row.pk], cur))
        for cur in currencies:
            arm.revenue[cur].append(per_currency(billed[row.pk], cur))
    control = arms[CONTROL]
    alpha = float(experiment.alpha)
    comparisons = []
    for key, arm in arms.items():
        if key == CONTROL:
            continue
        conv = compare_conversion(converted=arm.converted, assigned=arm.assigned, control_converted=control.converted,
                                  control_assigned=control.assigned, alpha=alpha)  # fmt: skip
        rev = [RevenueLift(cur, compare_revenue(arm.revenue[cur], control.revenue[cur], alpha=alpha))
               for cur in currencies]  # fmt: skip
        comparisons.append(VariantVerdict(key, conv, rev, _verdict(key, conv)))
    srm = sample_ratio_mismatch({k: a.assigned for k, a in arms.items()}, arm_shares(experiment))
    return Results(window_days, arms, currencies, mrr_currencies, comparisons, srm, matured, _overall(comparisons, srm))


def _verdict(key: str, conv: Comparison | None) -> str:
    if conv is None:
        return "Too few accounts yet to compare."
    if not conv.significant:
        return "Not yet significant: the difference could be chance."
    points = conv.estimate * 100
    if points > 0:
        return f"'{key}' converts better than control by {points:.1f} points (significant)."
    return f"'{key}' converts worse than control by {-points:.1f} points (significant)."


def _overall(comparisons: list[VariantVerdict], srm: SampleRatio | None) -> str:
    if srm is not None and srm.mismatch:
        return ("Sample ratio mismatch: the arms' sizes differ from the configured split (p < 0.001). "
                "Fix the assignment before trusting any result.")  # fmt: skip
    winners = [c for c in comparisons if c.conversion and c.conversion.significant and c.conversion.estimate > 0]
    if winners:
        best = max(winners, key=lambda c: c.conversion.estimate if c.conversion else 0)
        return best.verdict
    if any(c.conversion is None for c in comparisons) or not comparisons:
        return "Too few accounts yet to compare."
    return "Not yet significant: keep the experiment running or accept there is no clear winner."
