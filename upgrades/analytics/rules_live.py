"""Rule backtests next to live results: what each live rule's backtest predicts (upgrades.rules.insights)
beside the signals it actually fired over the same days and how many of those led to an upgrade."""

from __future__ import annotations

import datetime

from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import Tenant
from upgrades.offers.models import Offer
from upgrades.rules.conditions import ConditionError
from upgrades.rules.errors import InvalidInput
from upgrades.rules.insights import backtest_rule
from upgrades.rules.models import RuleState, Signal, TriggerRule

DAYS = 30


def rules_backtest_vs_live(tenant: Tenant, *, days: int = DAYS, now: datetime.datetime | None = None) -> list[dict]:
    now = now or timezone.now()
    since = now - datetime.timedelta(days=days)
    live = list(TriggerRule.objects.filter(tenant=tenant, state=RuleState.LIVE).order_by("key"))
    fired = dict(
        Signal.objects.filter(tenant=tenant, rule__in=live, created_at__gte=since, created_at__lte=now)
        .values_list("rule_id")
        .annotate(n=Count("account_id", distinct=True))
        .order_by()
    )
    upgraded = dict(
        Offer.objects.filter(
            Q(fulfilled_at__isnull=False),
            tenant=tenant,
            signal__rule__in=live,
            signal__created_at__gte=since,
            signal__created_at__lte=now,
        )
        .values_list("signal__rule_id")
        .annotate(n=Count("account_id", distinct=True))
        .order_by()
    )
    rows = []
    for rule in live:
        predicted: int | None
        predicted_upgraded: int | None
        try:
            backtest = backtest_rule(tenant, condition=rule.condition, days=days, now=now)
            predicted, predicted_upgraded = len(backtest.fired), backtest.fired_upgraded
        except (
            ConditionError,
            InvalidInput,
        ):  # the catalog moved under the rule: no prediction, the live figures still count
            predicted = predicted_upgraded = None
        rows.append(
            {
                "rule": rule.key,
                "name": rule.name,
                "predicted": predicted,
                "predicted_upgraded": predicted_upgraded,
                "fired": fired.get(rule.pk, 0),
                "fired_upgraded": upgraded.get(rule.pk, 0),
            }
        )
    return rows
