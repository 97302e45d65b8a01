"""Test data of the offer engine's tests: a published ladder with a meter and a healthcare bundle,
accounts on licences with daily usage, and signals as the rules write them."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.utils import timezone

from accounts.models import CustomerAccount
from billing.models import License
from catalog.models import GovernanceState, Price, Tier
from tests.billing.factories import make_license
from tests.catalog.factories import Ladder, add_extras, build_ladder
from upgrades.rules.models import Signal, SignalKind, TriggerRule
from usage.models import UsageRollup

DAY = datetime.timedelta(days=1)


@dataclass
class EngineWorld:
    world: object
    ladder: Ladder

    @property
    def tenant(self):
        return self.ladder.tenant

    @property
    def meter(self):
        return self.ladder.extras["meter"]

    def price(self, tier: Tier, interval: str = "month") -> Price:
        return Price.objects.get(tier=tier, interval=interval, state=GovernanceState.PUBLISHED)

    def account(self, external_id: str, *, industry: str = "software", size_band: str = "11-50") -> CustomerAccount:
        return CustomerAccount.objects.create(
            tenant=self.tenant, external_id=external_id, name=external_id.title(), industry=industry,
            size_band=size_band,
        )  # fmt: skip

    def licence(self, account: CustomerAccount, tier: Tier | None = None, *, seats: int = 3, price=None) -> License:
        return make_license(account, price or self.price(tier or self.ladder.team), seats=seats)

    def usage(self, account: CustomerAccount, per_day: dict[datetime.date, int]) -> None:
        UsageRollup.objects.bulk_create(
            UsageRollup(tenant=self.tenant, account=account, meter=self.meter, day=d, value=v, event_count=v)
            for d, v in per_day.items()
        )

    def growing(self, account: CustomerAccount, *, start: int, step: int, weeks: int = 8, now=None) -> None:
        """`weeks` full weeks ending yesterday, each week's daily rate `step` higher than the last."""
        today = (now or timezone.now()).astimezone(datetime.UTC).date()
        last = today - DAY
        per_day = {}
        for w in range(weeks):
            rate = start + step * w
            week_last = last - DAY * (7 * (weeks - 1 - w))
            for i in range(7):
                per_day[week_last - DAY * i] = rate
        self.usage(account, per_day)

    def rule(self, key: str = "grow", *, kind: str = SignalKind.UPGRADE_OPPORTUNITY, **fields) -> TriggerRule:
        return TriggerRule.objects.create(
            tenant=self.tenant, key=key, name=key.title(), condition={"kind": "meter_utilisation"},
            signal_kind=kind, state="live", **fields,
        )  # fmt: skip

    def signal(self, account: CustomerAccount, *, rule: TriggerRule | None = None, facts=(), **fields) -> Signal:
        rule = rule or TriggerRule.objects.for_tenant(self.tenant).filter(key="grow").first() or self.rule()
        fields.setdefault("kind", rule.signal_kind)
        return Signal.objects.create(
            tenant=self.tenant, account=account, rule=rule,
            evidence={"sentence": "Something fired", "facts": list(facts)},
            dedup_key=f"{rule.pk}:{account.pk}:{Signal.objects.count()}", **fields,
        )  # fmt: skip


def engine_world(world) -> EngineWorld:
    return EngineWorld(world=world, ladder=add_extras(build_ladder(world)))


def sso_gate_fact(count: int = 12) -> dict:
    return {"kind": "gate_hits", "numbers": {"event": "feature_gate_hit", "count": count, "days": 7},
            "sentence": f"hit the sso gate {count} times in the last 7 days"}  # fmt: skip
