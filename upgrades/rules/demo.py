"""Demo trigger rules: drafted by one product manager, approved by the second, live, and evaluated on
the seeded history (growing accounts, the SSO gate-hitter, fading accounts, renewals). Idempotent:
rules are found by key, and evaluation deduplicates its signals."""

from __future__ import annotations

from accounts.demo import DemoTenant
from accounts.models import User
from accounts.services import audited_as
from accounts.tenancy import tenant_context
from catalog.demo import SEED_ACTOR
from upgrades.rules import services
from upgrades.rules.errors import InvalidInput
from upgrades.rules.models import RuleState, SignalKind, TargetKind, TriggerRule

DEMO_RULES = [
    {
        "key": "api-near-limit",
        "name": "API calls near the limit",
        "description": "Growing accounts: near a limit, or API calls doubling week over week.",
        "signal_kind": SignalKind.UPGRADE_OPPORTUNITY,
        "target_kind": TargetKind.LOWEST_FIT,
        "priority": 80,
        "condition": {"any": [
            {"kind": "meter_utilisation", "meter": "api_calls", "percent": 80, "days": 7, "min_days": 3},
            {"kind": "meter_growth", "meter": "api_calls", "percent": 100, "days": 7},
            {"kind": "meter_utilisation", "meter": "storage", "percent": 80},
        ]},
    },
    {
        "key": "seats-nearly-full",
        "name": "Seats nearly full",
        "signal_kind": SignalKind.UPGRADE_OPPORTUNITY,
        "target_kind": TargetKind.LOWEST_FIT,
        "priority": 60,
        "condition": {"kind": "meter_utilisation", "meter": "seats", "percent": 90},
    },
    {
        "key": "sso-gate-hits",
        "name": "Keeps hitting the SSO gate",
        "description": "A locked feature they keep reaching for: offer a trial, not a hard sell.",
        "signal_kind": SignalKind.TRIAL_CANDIDATE,
        "target_kind": TargetKind.LOWEST_FIT,
        "priority": 70,
        "condition": {"kind": "gate_hits", "feature": "sso", "min_count": 3, "days": 30},
    },
    {
        "key": "locked-feature-hits",
        "name": "Reaching for locked features",
        "signal_kind": SignalKind.TRIAL_CANDIDATE,
        "target_kind": TargetKind.LOWEST_FIT,
        "priority": 50,
        "condition": {"any": [
            {"kind": "gate_hits", "feature": "audit_log", "min_count": 3, "days": 30},
            {"kind": "gate_hits", "feature": "priority_support", "min_count": 3, "days": 30},
        ]},
    },
    {
        "key": "fading-usage",
        "name": "Usage fading",
        "description": "Storage or active members down 40% or more in two weeks vs the two before: a CSM calls.",
        "signal_kind": SignalKind.CHURN_RISK,
        "target_kind": TargetKind.NONE,
        "priority": 90,
        "requires_csm_review": True,
        "condition": {"any": [
            {"kind": "usage_fall", "meter": "storage", "percent": 40, "days": 14},
            {"kind": "usage_fall", "meter": "seats", "percent": 40, "days": 14},
            {"all": [
                {"kind": "survey_answer", "survey": "nps", "op": "at_most", "score": 6, "days": 90},
                {"kind": "support_tickets", "min_count": 2, "days": 30},
            ]},
        ]},
    },
    {
        "key": "renewal-soon",
        "name": "Annual renewal within 30 days",
        "signal_kind": SignalKind.RENEWAL,
        "target_kind": TargetKind.NONE,
        "priority": 75,
        "requires_csm_review": True,
        "condition": {"kind": "renewal_within", "days": 30, "date": "renewal", "interval": "year"},
    },
]  # fmt: skip


def seed_rules(demo: DemoTenant, other: DemoTenant) -> int:
    """Live demo rules for the demo tenant, evaluated now; returns the number of open signals."""
    tenant = demo.tenant
    domain = tenant.slug + ".test"
    with tenant_context(tenant), audited_as(SEED_ACTOR):
        author = User.objects.get(email=f"pm@{domain}")
        approver = User.objects.get(email=f"pm2@{domain}")
        for spec in DEMO_RULES:
            rule = TriggerRule.objects.for_tenant(tenant).filter(key=spec["key"]).first()
            if rule is None:
                try:
                    rule = services.create_rule(tenant, actor=author, **spec)
                except InvalidInput:
                    continue  # a meter or feature this catalog lacks
            if rule.state == RuleState.DRAFT:
                rule = services.submit_rule(tenant, rule=rule, actor=author)
            if rule.state == RuleState.AWAITING_APPROVAL:
                services.approve_rule(tenant, rule=rule, actor=approver)
        report = services.evaluate_rules(tenant)
    return len(report.fired)
