"""Evaluating live rules: compiled SQL finds the matches, the Python evaluator writes their evidence.

Idempotent in effect: a signal's `dedup_key` is (rule, account, UTC day) and rows are inserted
with ON CONFLICT DO NOTHING, after skipping accounts that already have a signal of the rule
inside its cooldown. Two runs of the same task (or two workers) never double a signal.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from upgrades.rules.conditions import Condition, ConditionError, EvalContext, parse_condition
from upgrades.rules.data import load_account_data, load_rule_catalog, needs_of, refresh_limits
from upgrades.rules.engine import matching_account_ids
from upgrades.rules.models import DirtyAccount, RuleState, Signal, SignalState, TriggerRule

logger = logging.getLogger(__name__)

SIGNAL_EXPIRES_AFTER = datetime.timedelta(days=30)
TIME_BASED_KINDS = frozenset({"trial_ends", "renewal_within", "event_seen", "usage_fall"})


@dataclass
class Fired:
    rule_key: str
    rule_name: str
    account_id: int
    external_id: str
    kind: str
    sentence: str


@dataclass
class EvaluationReport:
    evaluated_accounts: int
    rules: int
    matched: dict[str, int] = field(default_factory=dict)  # rule key -> accounts matching now
    fired: list[Fired] = field(default_factory=list)  # new signals written by this run


def eval_context(tenant: Tenant, now: datetime.datetime) -> EvalContext:
    return EvalContext(tenant_id=tenant.pk, now=now, time_zone=tenant.time_zone, catalog=load_rule_catalog(tenant))


def parsed_rules(rules: Sequence[TriggerRule], ctx: EvalContext) -> list[tuple[TriggerRule, Condition]]:
    """Rules whose condition still parses against today's catalog (a deleted meter skips a rule, logged)."""
    out = []
    for rule in rules:
        try:
            out.append((rule, parse_condition(rule.condition, ctx.catalog)))
        except ConditionError as exc:
            logger.warning("trigger rule skipped: %s", exc, extra={"rule_id": rule.pk, "tenant_id": rule.tenant_id})
    return out


def evidence_for(tree: Condition, data, ctx: EvalContext) -> dict:
    result = tree.explain(data, ctx)
    return {
        "sentence": (result.sentence[:1].upper() + result.sentence[1:])
        if result.sentence
        else tree.describe(ctx.catalog),
        "facts": result.facts,
        "evaluated_at": ctx.now.isoformat(),
    }


def _dedup_key(rule_id: int, account_id: int, now: datetime.datetime) -> str:
    return f"{rule_id}:{account_id}:{now.astimezone(datetime.UTC).date().isoformat()}"


def evaluate_rules(
    tenant: Tenant,
    *,
    accounts: Sequence[int] | None = None,
    now: datetime.datetime | None = None,
    rules: Sequence[TriggerRule] | None = None,
    time_based_only: bool = False,
    recompute_scores: bool = True,
) -> EvaluationReport:
    """Evaluate the tenant's live rules for `accounts` (ids; None = every account) at `now`."""
    now = now or timezone.now()
    ctx = eval_context(tenant, now)
    if rules is None:
        rules = list(TriggerRule.objects.for_tenant(tenant).filter(state=RuleState.LIVE))
    pairs = parsed_rules(rules, ctx)
    if time_based_only:
        pairs = [(r, t) for r, t in pairs if any(leaf.kind in TIME_BASED_KINDS for leaf in t.leaves())]
    scope = list(accounts) if accounts is not None else None
    scope_ids = (
        scope if scope is not None else list(CustomerAccount.objects.for_tenant(tenant).values_list("pk", flat=True))
    )
    report = EvaluationReport(evaluated_accounts=len(scope_ids), rules=len(pairs))
    meter_ids, *_ = needs_of([t for _, t in pairs], ctx)
    with transaction.atomic():
        refresh_limits(tenant, account_ids=scope_ids, meter_ids=meter_ids, now=now)
    for rule, tree in pairs:
        matched = matching_account_ids(tree, ctx, account_ids=scope)
        report.matched[rule.key] = len(matched)
        report.fired.extend(_fire(tenant, rule, tree, matched, ctx))
    if scope is not None:
        DirtyAccount.objects.for_tenant(tenant).filter(account_id__in=scope, marked_at__lte=now).delete()
    else:
        DirtyAccount.objects.for_tenant(tenant).filter(marked_at__lte=now).delete()
    Signal.objects.for_tenant(tenant).filter(state=SignalState.OPEN, created_at__lt=now - SIGNAL_EXPIRES_AFTER).update(
        state=SignalState.EXPIRED
    )
    if recompute_scores:
        from upgrades.rules.services.scores import recompute_scores as _recompute

        _recompute(tenant, account_ids=scope_ids, now=now)
    return report


def _fire(tenant: Tenant, rule: TriggerRule, tree: Condition, matched: list[int], ctx: EvalContext) -> list[Fired]:
    if not matched:
        return []
    since = ctx.now - datetime.timedelta(days=rule.cooldown_days)
    cooling = set(
        Signal.objects.for_tenant(tenant)
        .filter(rule=rule, account_id__in=matched, created_at__gt=since, created_at__lte=ctx.now)
        .values_list("account_id", flat=True)
    )
    fresh = [a for a in matched if a not in cooling]
    if not fresh:
        return []
    data = load_account_data(tenant, account_ids=fresh, conditions=[tree], ctx=ctx)
    rows = []
    for account_id in fresh:
        evidence = evidence_for(tree, data[account_id], ctx)
        rows.append(
            Signal(
                tenant=tenant,
                account_id=account_id,
                rule=rule,
                kind=rule.signal_kind,
                evidence=evidence,
                priority=rule.priority,
                target_kind=rule.target_kind,
                target_key=rule.target_key,
                requires_csm_review=rule.requires_csm_review,
                dedup_key=_dedup_key(rule.pk, account_id, ctx.now),
                created_at=ctx.now,
            )
        )
    Signal.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    written = (
        Signal.objects.for_tenant(tenant)
        .filter(rule=rule, dedup_key__in=[r.dedup_key for r in rows], created_at=ctx.now)
        .values_list("account_id", "evidence")
    )
    externals = dict(CustomerAccount.objects.for_tenant(tenant).filter(pk__in=fresh).values_list("pk", "external_id"))
    return [
        Fired(rule.key, rule.name, account_id, externals.get(account_id, ""), rule.signal_kind, ev.get("sentence", ""))
        for account_id, ev in written
    ]


def mark_accounts_dirty(tenant_id: int, account_ids: Sequence[int], *, now: datetime.datetime | None = None) -> int:
    """Upsert DirtyAccount rows (one arbitrated write; repeated marks just move marked_at)."""
    now = now or timezone.now()
    rows = [DirtyAccount(tenant_id=tenant_id, account_id=a, marked_at=now) for a in account_ids]
    DirtyAccount.objects.bulk_create(
        rows, batch_size=2000, update_conflicts=True, unique_fields=["tenant", "account"], update_fields=["marked_at"]
    )
    return len(rows)


def evaluate_dirty_accounts(
    tenant: Tenant, *, now: datetime.datetime | None = None, limit: int = 5000
) -> EvaluationReport:
    """Evaluate the accounts marked dirty (at most `limit` of them; the next run takes the rest)."""
    now = now or timezone.now()
    ids = list(
        DirtyAccount.objects.for_tenant(tenant).filter(marked_at__lte=now).order_by("marked_at")
        .values_list("account_id", flat=True)[:limit]
    )  # fmt: skip
    if not ids:
        return EvaluationReport(evaluated_accounts=0, rules=0)
    return evaluate_rules(tenant, accounts=ids, now=now)
