# ruff: noqa: S608  -- the dirty-mark statement inlines only the model's table name.
"""Evaluating live rules: compiled SQL finds the matches, the Python evaluator writes their evidence.

Idempotent in effect: a signal's `dedup_key` is (rule, account, UTC day) and rows are inserted
with ON CONFLICT DO NOTHING, after skipping accounts that already have a signal of the rule
inside its cooldown. Two runs of the same task (or two workers) never double a signal.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from upgrades.rules.bulk import write_rows
from upgrades.rules.conditions import Condition, ConditionError, EvalContext, parse_condition
from upgrades.rules.data import load_account_data, load_rule_catalog, needs_of, refresh_limits
from upgrades.rules.engine import matching_account_ids
from upgrades.rules.models import DirtyAccount, RuleState, Signal, SignalState, TriggerRule
from upgrades.rules.services.lifecycle import expire_stale_signals

logger = logging.getLogger(__name__)

IN_LIST_MAX = 5000  # above this many ids, read the tenant's rows whole instead of an IN list
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
    report = EvaluationReport(
        evaluated_accounts=len(scope) if scope is not None else CustomerAccount.objects.for_tenant(tenant).count(),
        rules=len(pairs),
    )
    meter_ids, *_ = needs_of([t for _, t in pairs], ctx)
    with transaction.atomic():
        refresh_limits(tenant, account_ids=scope, meter_ids=meter_ids, now=now)
    for rule, tree in pairs:
        matched = matching_account_ids(tree, ctx, account_ids=scope)
        report.matched[rule.key] = len(matched)
        report.fired.extend(_fire(tenant, rule, tree, matched, ctx))
    dirty = DirtyAccount.objects.for_tenant(tenant).filter(marked_at__lte=now)
    if scope is not None:
        dirty = dirty.filter(account_id__in=scope)
    dirty.delete()
    expire_stale_signals(tenant, now=now)
    if recompute_scores:
        from upgrades.rules.services.scores import recompute_scores as _recompute

        _recompute(tenant, account_ids=scope, now=now)
    return report


def _fire(tenant: Tenant, rule: TriggerRule, tree: Condition, matched: list[int], ctx: EvalContext) -> list[Fired]:
    if not matched:
        return []
    since = ctx.now - datetime.timedelta(days=rule.cooldown_days)
    recent = Signal.objects.for_tenant(tenant).filter(rule=rule, created_at__gt=since, created_at__lte=ctx.now)
    if len(matched) <= IN_LIST_MAX:
        recent = recent.filter(account_id__in=matched)
    cooling = set(recent.values_list("account_id", flat=True))  # many matches: the rule's recent signals, whole
    fresh = [a for a in matched if a not in cooling]
    if not fresh:
        return []
    data = load_account_data(tenant, account_ids=fresh, conditions=[tree], ctx=ctx)
    rows = []
    sentences = {}
    for account_id in fresh:
        evidence = evidence_for(tree, data[account_id], ctx)
        sentences[account_id] = evidence.get("sentence", "")
        rows.append(
            {
                "tenant_id": tenant.pk,
                "account_id": account_id,
                "rule_id": rule.pk,
                "kind": rule.signal_kind,
                "evidence": evidence,
                "state": SignalState.OPEN,
                "priority": rule.priority,
                "target_kind": rule.target_kind,
                "target_key": rule.target_key,
                "requires_csm_review": rule.requires_csm_review,
                "dedup_key": _dedup_key(rule.pk, account_id, ctx.now),
                "closed_at": None,
                "closed_by": "",
                "closed_reason": "",
                "reference": "",
                "created_at": ctx.now,
                "updated_at": ctx.now,
            }
        )
    # One arbitrated write per batch: a row whose (rule, account, day) exists already is not written.
    written = write_rows(Signal, rows, conflict=("tenant_id", "dedup_key"), returning="account_id")
    if written is None:  # not PostgreSQL: read back what this run wrote
        written = list(
            Signal.objects.for_tenant(tenant)
            .filter(rule=rule, created_at=ctx.now, account_id__in=fresh)
            .values_list("account_id", flat=True)
        )
    accounts = CustomerAccount.objects.for_tenant(tenant)
    if len(written) <= IN_LIST_MAX:
        accounts = accounts.filter(pk__in=written)
    externals = dict(accounts.values_list("pk", "external_id"))
    return [
        Fired(rule.key, rule.name, account_id, externals.get(account_id, ""), rule.signal_kind, sentences[account_id])
        for account_id in sorted(written)
    ]


def mark_accounts_dirty(tenant_id: int, account_ids: Iterable[int], *, now: datetime.datetime | None = None) -> int:
    """Mark accounts dirty: one statement for the whole batch (ids deduplicated here).

    A repeated mark moves `marked_at` forward (ON CONFLICT DO UPDATE, skipped where it would not
    move): an evaluation deletes only marks up to its own start, so a mark made while it runs
    survives for the next one. DO NOTHING would be cheaper but would lose exactly that mark."""
    now = now or timezone.now()
    ids = sorted(set(account_ids))  # sorted: concurrent batches take row locks in one order
    if not ids:
        return 0
    if connection.vendor != "postgresql":
        write_rows(
            DirtyAccount,
            [{"tenant_id": tenant_id, "account_id": a, "marked_at": now} for a in ids],
            conflict=("tenant_id", "account_id"),
            update=("marked_at",),
        )
        return len(ids)
    table = DirtyAccount._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        # A mark is a hint, not a record: the daily sweep re-evaluates everyone, so a mark lost in a
        # database crash costs at most a day's delay. Not waiting for the WAL flush is most of the saving.
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(
            f'INSERT INTO "{table}" AS d (tenant_id, account_id, marked_at) SELECT %s, unnest(%s::bigint[]), %s '
            "ON CONFLICT (tenant_id, account_id) DO UPDATE SET marked_at = EXCLUDED.marked_at "
            "WHERE d.marked_at < EXCLUDED.marked_at",
            [tenant_id, ids, now],
        )
    return len(ids)


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
