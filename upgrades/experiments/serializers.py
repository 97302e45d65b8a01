"""The read-only API's shapes (/api/v1/experiments) and the presenter that fills them from results.py."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from rest_framework import serializers

from accounts.models import Tenant
from upgrades.experiments.models import CONTROL, Experiment, ExperimentState
from upgrades.experiments.results import plan, results
from upgrades.experiments.stats import Comparison

CHANNELS = ("email", "in_app")


class ExperimentArmSerializer(serializers.Serializer):
    key = serializers.CharField()
    weight = serializers.IntegerField(help_text="Share of the treated accounts, relative to the other arms.")
    template_variant = serializers.CharField(allow_blank=True, help_text="Message template variant sent.")
    discount_variant = serializers.CharField(allow_blank=True, help_text="Discount variant the offer is priced with.")
    anchor = serializers.BooleanField(allow_null=True, help_text="false: the offer shows no price anchor.")
    channel = serializers.ChoiceField(
        choices=CHANNELS, allow_null=True, help_text="The one channel the offer is sent through (null: email)."
    )
    trial_days = serializers.IntegerField(
        allow_null=True, min_value=1, max_value=90, help_text="Length of a trial started from the offer."
    )


class LiftSerializer(serializers.Serializer):
    estimate = serializers.FloatField(help_text="Arm minus control.")
    low = serializers.FloatField(help_text="Lower bound of the confidence interval.")
    high = serializers.FloatField(help_text="Upper bound of the confidence interval.")
    p_value = serializers.FloatField()
    significant = serializers.BooleanField()


class CurrencyRevenueSerializer(serializers.Serializer):
    currency = serializers.CharField(help_text="ISO 4217 code of the settled charges counted here.")
    revenue_per_account_minor = serializers.IntegerField(
        help_text="Settled charges in this currency in the window per assigned account (minor units of it)."
    )
    revenue_lift = LiftSerializer(
        allow_null=True,
        help_text="Vs control, in minor units of this currency; null for control or too few accounts.",
    )


class CurrencyMrrSerializer(serializers.Serializer):
    currency = serializers.CharField(help_text="ISO 4217 code of the licence changes counted here.")
    mrr_gained_per_account_minor = serializers.IntegerField(
        help_text="MRR after minus before of the licence changes in this currency in the window, per assigned "
        "account (minor units of it; negative when downgrades outweigh upgrades)."
    )


class ArmResultSerializer(serializers.Serializer):
    arm = serializers.CharField(help_text='A variant key, or "control" (held out: no offer, no outreach).')
    assigned = serializers.IntegerField()
    converted = serializers.IntegerField(help_text="Accounts whose MRR rose within the window.")
    conversion = serializers.FloatField(help_text="converted / assigned (a fraction).")
    billed_revenue_per_account = serializers.IntegerField(
        allow_null=True,
        help_text="Settled charges in the window per assigned account (minor units of `billed_revenue_currency`); "
        "null when the experiment was charged in several currencies (see revenue_by_currency).",
    )
    billed_revenue_currency = serializers.CharField(
        allow_null=True, help_text="Currency of billed_revenue_per_account and revenue_lift; null as above."
    )
    conversion_lift = LiftSerializer(
        allow_null=True, help_text="Conversion vs control (fraction points); null for control or too few accounts."
    )
    revenue_lift = LiftSerializer(
        allow_null=True,
        help_text="Billed revenue per account vs control (minor units); null for control, too few accounts or "
        "several currencies.",
    )
    revenue_by_currency = CurrencyRevenueSerializer(
        many=True, help_text="Billed revenue per currency, never summed across currencies; one item when single."
    )
    mrr_gained_per_account = serializers.IntegerField(
        allow_null=True,
        help_text="MRR gained in the window per assigned account (minor units of `mrr_gained_currency`); null when "
        "the licence changes were in several currencies (see mrr_gained_by_currency).",
    )
    mrr_gained_currency = serializers.CharField(allow_null=True, help_text="Currency of mrr_gained_per_account.")
    mrr_gained_by_currency = CurrencyMrrSerializer(
        many=True, help_text="MRR gained per currency, never summed across currencies; one item when single."
    )
    verdict = serializers.CharField(allow_null=True)


class SampleRatioSerializer(serializers.Serializer):
    mismatch = serializers.BooleanField(help_text="The arms' sizes differ from the configured split (p < 0.001).")
    p_value = serializers.FloatField(allow_null=True)


class ExperimentResultsSerializer(serializers.Serializer):
    window_days = serializers.IntegerField()
    confidence_percent = serializers.IntegerField(help_text="Of the intervals: (1 - alpha) x 100, 95 by default.")
    matured = serializers.IntegerField(help_text="Assigned accounts whose whole window has passed.")
    arms = ArmResultSerializer(many=True)
    srm = SampleRatioSerializer(help_text="Sample ratio mismatch check (never a mismatch with too few accounts).")
    verdict = serializers.CharField()


class ExperimentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    hypothesis = serializers.CharField(allow_blank=True)
    state = serializers.ChoiceField(choices=ExperimentState.values)
    control_percent = serializers.IntegerField()
    arms = ExperimentArmSerializer(many=True)
    signal_kinds = serializers.ListField(child=serializers.CharField(), help_text="Empty: every signal enrols.")
    planned_days = serializers.IntegerField()
    expected_monthly_accounts = serializers.IntegerField()
    baseline_conversion_percent = serializers.FloatField()
    mde_sentence = serializers.CharField(help_text="The smallest lift the plan can detect, in one sentence.")
    winner = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField(allow_null=True)
    stopped_at = serializers.DateTimeField(allow_null=True)
    rolled_out_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    results = ExperimentResultsSerializer()


def _arm(variant: dict) -> dict[str, Any]:
    days = variant.get("trial_days")
    weight = variant.get("weight", 1)
    anchor = variant.get("anchor")
    return {
        "key": str(variant.get("key", "")),
        "weight": weight if isinstance(weight, int) and not isinstance(weight, bool) else 1,
        "template_variant": str(variant.get("template_variant") or ""),
        "discount_variant": str(variant.get("discount_variant") or ""),
        "anchor": anchor if isinstance(anchor, bool) else None,
        "channel": variant.get("channel") if variant.get("channel") in CHANNELS else None,
        "trial_days": max(1, min(90, days)) if isinstance(days, int) and not isinstance(days, bool) else None,
    }


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


def _lift(c: Comparison | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"estimate": _finite(c.estimate), "low": _finite(c.low), "high": _finite(c.high),
            "p_value": _finite(c.p_value), "significant": bool(c.significant)}  # fmt: skip


def present_experiment(
    tenant: Tenant, experiment: Experiment, *, window_days: int = 30, now: datetime | None = None
) -> dict[str, Any]:
    found = results(tenant, experiment, window_days=window_days, now=now)
    verdicts = {c.key: c for c in found.comparisons}
    arms = []
    single = found.currencies[0] if len(found.currencies) == 1 else None
    single_mrr = found.mrr_currencies[0] if len(found.mrr_currencies) == 1 else None
    for key, arm in found.arms.items():
        v = verdicts.get(key)
        lifts = {r.currency: r.comparison for r in v.revenue} if v else {}
        by_currency = [{"currency": cur, "revenue_per_account_minor": minor, "revenue_lift": _lift(lifts.get(cur))}
                       for cur, minor in arm.revenue_minor]  # fmt: skip
        mrr = [{"currency": cur, "mrr_gained_per_account_minor": minor} for cur, minor in arm.mrr_minor]
        arms.append({
            "arm": key, "assigned": arm.assigned, "converted": arm.converted, "conversion": arm.conversion,
            "billed_revenue_per_account": by_currency[0]["revenue_per_account_minor"] if single else None,
            "billed_revenue_currency": single,
            "conversion_lift": _lift(v.conversion) if v else None,
            "revenue_lift": by_currency[0]["revenue_lift"] if single else None,
            "revenue_by_currency": by_currency,
            "mrr_gained_per_account": mrr[0]["mrr_gained_per_account_minor"] if single_mrr else None,
            "mrr_gained_currency": single_mrr, "mrr_gained_by_currency": mrr,
            "verdict": v.verdict if v else None,
        })  # fmt: skip
    arms.sort(key=lambda a: (a["arm"] != CONTROL, a["arm"]))
    srm = found.srm
    return {
        "id": experiment.pk,
        "name": experiment.name,
        "hypothesis": experiment.hypothesis,
        "state": experiment.state,
        "control_percent": experiment.control_percent,
        "arms": [_arm(v) for v in experiment.variants if isinstance(v, dict)],
        "signal_kinds": [str(k) for k in experiment.signal_kinds or []],
        "planned_days": experiment.planned_days,
        "expected_monthly_accounts": experiment.expected_monthly_accounts,
        "baseline_conversion_percent": float(experiment.baseline_conversion_percent),
        "mde_sentence": plan(experiment).sentence,
        "winner": experiment.winner,
        "started_at": experiment.started_at,
        "stopped_at": experiment.stopped_at,
        "rolled_out_at": experiment.rolled_out_at,
        "created_at": experiment.created_at,
        "results": {
            "window_days": found.window_days,
            "confidence_percent": round((1 - float(experiment.alpha)) * 100),
            "matured": found.matured,
            "arms": arms,
            "srm": {"mismatch": bool(srm.mismatch), "p_value": _finite(srm.p_value)} if srm else
                   {"mismatch": False, "p_value": None},
            "verdict": found.verdict,
        },
    }  # fmt: skip
