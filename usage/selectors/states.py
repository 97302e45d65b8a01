"""What an account's plan allows and where each feature stands: the plan and answer types,
and the one function (`_feature_state`) that turns a rule plus usage into a state, shared by
the per-account API answer and the staff pages' bulk standings.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from billing.models import LicenseStatus
from catalog.models import FeatureKind

UTC = datetime.UTC
# Licences in these states carry their tier; cancelled or suspended ones fall back to the free tier.
ENTITLED_STATUSES = frozenset({LicenseStatus.ACTIVE, LicenseStatus.TRIALING, LicenseStatus.PAST_DUE})
# Bounds how long a plan is trusted even without a signal (e.g. a new free-tier version published).
PLAN_MAX_AGE = datetime.timedelta(minutes=5)


class EntitlementState(StrEnum):
    OK = "ok"
    SOFT_LIMIT = "soft_limit"  # at or above the soft threshold (or past a soft limit): warn and suggest
    HARD_LIMIT = "hard_limit"  # a hard limit is reached: further use is denied
    LOCKED = "locked"  # the plan doesn't include the feature


@dataclass(frozen=True)
class FeatureRule:
    """What the account's plan allows for one feature, and how its usage is measured."""

    key: str
    name: str
    kind: str
    unit: str
    enabled: bool
    limit: int | None
    enforcement: str
    soft_limit_percent: int
    sources: tuple[str, ...]
    meter_id: int | None = None
    aggregation: str | None = None
    window: str | None = None
    window_days: int | None = None


@dataclass(frozen=True)
class Plan:
    account_id: int
    tier_id: int | None
    tier_key: str | None
    tier_name: str | None
    tier_rank: int | None
    addon_keys: tuple[str, ...]
    grant_labels: tuple[str, ...]
    seats: int | None
    billing_period: tuple[datetime.datetime, datetime.datetime] | None
    features: dict[str, FeatureRule]
    valid_until: datetime.datetime


@dataclass(frozen=True)
class MeterUsage:
    value: int
    period_start: datetime.datetime
    period_end: datetime.datetime


@dataclass(frozen=True)
class FeatureState:
    feature: str
    name: str
    kind: str
    unit: str
    allowed: bool
    limit: int | None
    used: int | None
    remaining: int | None
    state: str
    enforcement: str
    soft_limit_at: int | None
    period_start: datetime.datetime | None
    period_end: datetime.datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "name": self.name,
            "kind": self.kind,
            "unit": self.unit,
            "allowed": self.allowed,
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "state": self.state,
            "enforcement": self.enforcement,
            "soft_limit_at": self.soft_limit_at,
            "period_start": _iso(self.period_start),
            "period_end": _iso(self.period_end),
        }


@dataclass(frozen=True)
class UpgradeHint:
    kind: str  # "tier" or "addon"
    key: str
    name: str
    limit: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "name": self.name, "limit": self.limit}


@dataclass(frozen=True)
class CheckAnswer:
    account: str
    account_id: int
    feature: str
    quantity: int
    allowed: bool
    state: str
    reason: str
    used: int | None
    limit: int | None
    remaining: int | None
    period_end: datetime.datetime | None
    upgrade: UpgradeHint | None = None
    record_gate_hit: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "feature": self.feature,
            "quantity": self.quantity,
            "allowed": self.allowed,
            "state": self.state,
            "reason": self.reason,
            "used": self.used,
            "limit": self.limit,
            "remaining": self.remaining,
            "period_end": _iso(self.period_end),
            "upgrade": self.upgrade.as_dict() if self.upgrade else None,
        }


@dataclass
class AccountEntitlements:
    external_id: str
    plan: Plan
    usage: dict[int, MeterUsage] = field(default_factory=dict)

    @property
    def account_id(self) -> int:
        return self.plan.account_id

    def feature_state(self, rule: FeatureRule) -> FeatureState:
        return _feature_state(rule, self.plan, self.usage)

    def states(self) -> list[FeatureState]:
        return [self.feature_state(rule) for rule in self.plan.features.values()]


def _iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


# --- A feature's state: its rule and usage, as the API answers it ---------------------------


def soft_threshold(limit: int, percent: int) -> int:
    return -(-limit * percent // 100)


def _feature_state(rule: FeatureRule, plan: Plan, usage: dict[int, MeterUsage]) -> FeatureState:
    used = None
    period_start = period_end = None
    if rule.meter_id is not None:
        meter_usage = usage.get(rule.meter_id)
        if meter_usage is not None:
            used, period_start, period_end = meter_usage.value, meter_usage.period_start, meter_usage.period_end
    elif rule.kind == FeatureKind.SEATS and plan.seats is not None:
        used = plan.seats  # seats held on the licence, when no meter counts active seats
    elif rule.kind == FeatureKind.METERED:
        used = 0  # no meter configured yet: nothing counted
    limit = rule.limit if rule.enabled else 0
    soft_at = soft_threshold(limit, rule.soft_limit_percent) if limit is not None and rule.enabled else None
    if not rule.enabled:
        state, allowed = EntitlementState.LOCKED, False
    elif limit is None or used is None:
        state, allowed = EntitlementState.OK, True
    elif used >= limit:
        # A soft limit reached or passed is still allowed: its state says soft_limit, not hard_limit.
        soft = rule.enforcement == "soft"
        state, allowed = (EntitlementState.SOFT_LIMIT if soft else EntitlementState.HARD_LIMIT), soft
    elif soft_at is not None and used >= soft_at:
        state, allowed = EntitlementState.SOFT_LIMIT, True
    else:
        state, allowed = EntitlementState.OK, True
    remaining = max(limit - used, 0) if limit is not None and used is not None else None
    return FeatureState(
        feature=rule.key,
        name=rule.name,
        kind=rule.kind,
        unit=rule.unit,
        allowed=allowed,
        limit=limit if rule.enabled else 0,
        used=used,
        remaining=remaining,
        state=state,
        enforcement=rule.enforcement,
        soft_limit_at=soft_at,
        period_start=period_start,
        period_end=period_end,
    )
