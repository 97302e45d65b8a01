"""Console test helpers: a published discount policy, a scored account with an open signal, a CSM's account."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from accounts.models import Role
from catalog.models import DiscountPolicy, GovernanceState
from upgrades.rules.models import AccountScore, RuleState, Signal, SignalKind, TriggerRule


def publish_policy(tenant, *, approver_role: str = Role.PRODUCT_MANAGER, term_rules=None) -> DiscountPolicy:
    return DiscountPolicy.objects.create(
        tenant=tenant,
        key="standard",
        name="Standard",
        term_rules=term_rules or [{"years": 2, "percent": "10"}],
        loyalty_percent=Decimal("5"),
        cap_percent=Decimal("25"),
        exception_approver_role=approver_role,
        state=GovernanceState.PUBLISHED,
        published_at=timezone.now(),
    )


def score(account, *, readiness: int, health: int, churn: list[str] | None = None) -> AccountScore:
    return AccountScore.objects.create(
        tenant_id=account.tenant_id,
        account=account,
        readiness=readiness,
        health=health,
        churn_flags=churn or [],
        previous_readiness=max(readiness - 10, 0),
    )


def rule(tenant) -> TriggerRule:
    return TriggerRule.objects.get_or_create(
        tenant=tenant,
        key="near-limit",
        defaults={
            "name": "Near limit",
            "state": RuleState.LIVE,
            "condition": {"all": []},
            "signal_kind": SignalKind.UPGRADE_OPPORTUNITY,
        },
    )[0]


def open_signal(account, *, sentence: str = "API calls at 92 % of the limit for 9 days") -> Signal:
    return Signal.objects.create(
        tenant_id=account.tenant_id,
        account=account,
        rule=rule(account.tenant),
        kind=SignalKind.UPGRADE_OPPORTUNITY,
        evidence={"sentence": sentence, "facts": []},
        dedup_key=f"r:{account.pk}:{timezone.now().timestamp()}",
    )
