"""Reads a product manager needs to trust a rule: preview, backtest, suggested rules.

- Preview runs the same compiled SQL the evaluation runs, now, over every account.
- Backtest replays the rule at the end of each of the last N UTC days with `now` set there:
  every condition reads only rollups up to that day and events up to that instant, so nothing
  from after the replayed day is seen (no look-ahead). Limits are the ones each account held that
  day: an account whose licence changed in the window is replayed with its limits from the
  LicenseChange history (upgrades.rules.history); the others held today's throughout. A billing-
  period meter counts each replayed day from the licence period in force then (conditions.periods).
- Suggestions: for every limited meter, utilisation thresholds and K-of-N windows are scored on
  the tenant's history by how well they separated accounts that upgraded within 30 days of a
  replayed day from those that did not (precision, recall, F1; pandas), best first.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.models import LicenseChange
from upgrades.rules.bulk import write_rows
from upgrades.rules.conditions import Condition, parse_condition
from upgrades.rules.data import load_account_data, needs_of, refresh_limits
from upgrades.rules.engine import matching_account_ids
from upgrades.rules.history import LimitHistory
from upgrades.rules.models import AccountLimit
from upgrades.rules.services.evaluation import eval_context, evidence_for

DAY = datetime.timedelta(days=1)
UPGRADE_WINDOW = datetime.timedelta(days=30)
MIN_ACCOUNTS = 10  # below this many fired (or upgraded) accounts, say plainly that it is too few to tell
PREVIEW_LIMITS_MAX_AGE = datetime.timedelta(minutes=15)
UPGRADE_KINDS = ("upgrade", "seats")


@dataclass
class Preview:
    description: str
    count: int
    total_accounts: int
    sample: list[dict[str, Any]]


def preview_rule(tenant: Tenant, *, condition: dict, now: datetime.datetime | None = None, sample: int = 10) -> Preview:
    """How many accounts the condition matches now, and a sample with each one's evidence."""
    now = now or timezone.now()
    ctx = eval_context(tenant, now)
    tree = parse_condition(condition, ctx.catalog)
    meter_ids, *_ = needs_of([tree], ctx)
    total = CustomerAccount.objects.for_tenant(tenant).count()
    refresh_limits(tenant, account_ids=None, meter_ids=meter_ids, now=now, max_age=PREVIEW_LIMITS_MAX_AGE)
    matched = matching_account_ids(tree, ctx)
    picked = matched[:sample]
    data = load_account_data(tenant, account_ids=picked, conditions=[tree], ctx=ctx)
    names = {a.pk: a for a in CustomerAccount.objects.for_tenant(tenant).filter(pk__in=picked)}
    rows = [
        {"external_id": names[i].external_id, "name": names[i].name, "evidence": evidence_for(tree, data[i], ctx)}
        for i in picked
    ]
    return Preview(tree.describe(ctx.catalog), len(matched), total, rows)


def _upgrades(
    tenant: Tenant, *, since: datetime.datetime, until: datetime.datetime
) -> dict[int, list[datetime.datetime]]:
    out: dict[int, list[datetime.datetime]] = {}
    for account_id, at in (
        LicenseChange.objects.for_tenant(tenant)
        .filter(kind__in=UPGRADE_KINDS, effective_at__gt=since, effective_at__lte=until)
        .filter(mrr_after__gt=F("mrr_before"))
        .values_list("account_id", "effective_at")
    ):
        out.setdefault(account_id, []).append(at)
    return out


def _replay(
    tenant: Tenant, tree: Condition, *, days: int, now: datetime.datetime, history: LimitHistory | None = None
) -> dict[int, datetime.datetime]:
    """First replayed end-of-day at which the tree held, per account (each day sees only its own past).

    With `history`, the accounts whose licence changed are replayed with the limits they held that
    day: written into AccountLimit inside a savepoint that is rolled back after the day's query, so
    nothing outside this transaction ever sees them."""
    first: dict[int, datetime.datetime] = {}
    today = now.astimezone(datetime.UTC).date()
    with transaction.atomic():
        for back in range(days, 0, -1):
            day = today - DAY * back
            at = datetime.datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=datetime.UTC)
            ctx = eval_context(tenant, at)
            saved = transaction.savepoint() if history and history.accounts else None
            if saved is not None:
                _write_limits(tenant, history, at)
            try:
                for account_id in matching_account_ids(tree, ctx):
                    first.setdefault(account_id, at)
            finally:
                if saved is not None:
                    transaction.savepoint_rollback(saved)
    return first


def _write_limits(tenant: Tenant, history: LimitHistory, at: datetime.datetime) -> None:
    held = history.limits_at(at)
    stale = AccountLimit.objects.for_tenant(tenant).filter(account_id__in=sorted(held), meter_id__in=history.meter_ids)
    stale.delete()
    rows = [
        {"tenant_id": tenant.pk, "account_id": a, "meter_id": m, "limit_value": v, "refreshed_at": at}
        for a, limits in held.items()
        for m, v in limits.items()
    ]
    write_rows(AccountLimit, rows)


@dataclass
class Backtest:
    description: str
    days: int
    total_accounts: int
    fired: list[dict[str, Any]] = field(default_factory=list)  # external_id, fired_at, upgraded_at
    fired_upgraded: int = 0
    base_accounts: int = 0
    base_upgraded: int = 0
    verdict: str = ""

    @property
    def fired_rate(self) -> float | None:
        return self.fired_upgraded / len(self.fired) if self.fired else None

    @property
    def base_rate(self) -> float | None:
        return self.base_upgraded / self.base_accounts if self.base_accounts else None


def backtest_rule(tenant: Tenant, *, condition: dict, days: int = 30, now: datetime.datetime | None = None) -> Backtest:
    now = now or timezone.now()
    ctx = eval_context(tenant, now)
    tree = parse_condition(condition, ctx.catalog)
    accounts = dict(CustomerAccount.objects.for_tenant(tenant).values_list("pk", "external_id"))
    meter_ids, *_ = needs_of([tree], ctx)
    refresh_limits(tenant, account_ids=None, meter_ids=meter_ids, now=now, max_age=PREVIEW_LIMITS_MAX_AGE)
    start = now - DAY * days
    history = LimitHistory(tenant, meter_ids=meter_ids, since=start) if meter_ids else None
    first = _replay(tenant, tree, days=days, now=now, history=history)
    upgrades = _upgrades(tenant, since=start, until=now)
    result = Backtest(tree.describe(ctx.catalog), days, len(accounts))
    for account_id, fired_at in sorted(first.items(), key=lambda kv: kv[1]):
        after = [u for u in upgrades.get(account_id, []) if fired_at < u <= fired_at + UPGRADE_WINDOW]
        result.fired.append(
            {
                "external_id": accounts.get(account_id, "?"),
                "fired_at": fired_at,
                "upgraded_at": min(after) if after else None,
            }
        )
        result.fired_upgraded += bool(after)
    base = [a for a in accounts if a not in first]
    result.base_accounts = len(base)
    result.base_upgraded = sum(1 for a in base if upgrades.get(a))
    result.verdict = _verdict(result)
    return result


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _verdict(r: Backtest) -> str:
    fired = len(r.fired)
    if fired == 0:
        return f"It would not have fired for any account in the last {r.days} days."
    text = (
        f"It would have fired for {fired} account(s); {r.fired_upgraded} of them ({_pct(r.fired_rate)}) upgraded "
        f"within 30 days. Of the {r.base_accounts} accounts it did not fire for, {r.base_upgraded} "
        f"({_pct(r.base_rate)}) upgraded in the same {r.days} days."
    )
    if fired < MIN_ACCOUNTS or r.fired_upgraded + r.base_upgraded < 3:
        text += (
            f" That is too few accounts to tell whether the rule predicts upgrades (we need {MIN_ACCOUNTS} or more)."
        )
    return text


@dataclass
class Suggestion:
    name: str
    condition: dict
    description: str
    precision: float
    recall: float
    fired: int
    upgraded: int
    explanation: str


THRESHOLDS = (70, 80, 85, 90, 95, 100)
WINDOWS = ((1, 1), (3, 7), (4, 7), (5, 7))


def suggest_rules(
    tenant: Tenant, *, days: int = 60, now: datetime.datetime | None = None, snapshot_every: int = 7, top: int = 3
) -> tuple[list[Suggestion], str]:
    """Utilisation rules that best separated upgraders from the rest in the tenant's history, and a note."""
    now = now or timezone.now()
    ctx = eval_context(tenant, now)
    meters = list(ctx.catalog.meters.values())
    upgrades = _upgrades(tenant, since=now - DAY * days, until=now)
    if len(upgrades) < 3:
        return [], (
            f"Only {len(upgrades)} account(s) upgraded in the last {days} days: too little history to suggest a rule. "
            "Suggestions appear once at least 3 accounts have upgraded."
        )
    refresh_limits(tenant, account_ids=None, meter_ids={m.id for m in meters}, now=now,
                   max_age=PREVIEW_LIMITS_MAX_AGE)  # fmt: skip
    today = now.astimezone(datetime.UTC).date()
    snapshots = [today - DAY * back for back in range(days, 0, -snapshot_every)]
    rows = []
    for meter in meters:
        for percent in THRESHOLDS:
            for min_days, n_days in WINDOWS:
                condition = {"kind": "meter_utilisation", "meter": meter.key, "percent": percent, "days": n_days,
                             "min_days": min_days}  # fmt: skip
                tree = parse_condition(condition, ctx.catalog)
                for day in snapshots:
                    at = datetime.datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=datetime.UTC)
                    # An account that already upgraded is no longer a candidate on later days.
                    done = {a for a, ups in upgrades.items() if any(u <= at for u in ups)}
                    hits = set(matching_account_ids(tree, eval_context(tenant, at))) - done
                    for account_id, ups in upgrades.items():
                        if any(at < u <= at + UPGRADE_WINDOW for u in ups):
                            rows.append(
                                (meter.key, percent, min_days, n_days, day, account_id, account_id in hits, True)
                            )
                    for account_id in hits:
                        if not any(at < u <= at + UPGRADE_WINDOW for u in upgrades.get(account_id, [])):
                            rows.append((meter.key, percent, min_days, n_days, day, account_id, True, False))
    if not rows:
        return [], "No upgrade followed a replayed day closely enough to learn from."
    df = pd.DataFrame(rows, columns=["meter", "percent", "min_days", "days", "day", "account", "fired", "upgraded"])
    keys = ["meter", "percent", "min_days", "days"]
    stats = (
        df.groupby(keys)
        .apply(
            lambda g: pd.Series(
                {
                    "tp": int((g.fired & g.upgraded).sum()),
                    "fired": int(g.fired.sum()),
                    "positives": int(g.upgraded.sum()),
                }
            ),
            include_groups=False,
        )
        .reset_index()
    )
    stats = stats[stats.fired > 0]
    if stats.empty:
        return [], "No candidate rule fired for an account that then upgraded."
    stats["precision"] = stats.tp / stats.fired
    stats["recall"] = stats.tp / stats.positives
    stats["f1"] = 2 * stats.precision * stats.recall / (stats.precision + stats.recall).where(lambda s: s > 0, 1)
    stats = stats.sort_values(["f1", "precision", "percent"], ascending=[False, False, False])
    best = stats.drop_duplicates("meter").head(top)
    out = []
    for row in best.itertuples():
        condition = {"kind": "meter_utilisation", "meter": row.meter, "percent": int(row.percent),
                     "days": int(row.days), "min_days": int(row.min_days)}  # fmt: skip
        tree = parse_condition(condition, ctx.catalog)
        text = tree.describe(ctx.catalog)
        out.append(
            Suggestion(
                name=f"Suggested: {text}"[:200],
                condition=condition,
                description=text,
                precision=float(row.precision),
                recall=float(row.recall),
                fired=int(row.fired),
                upgraded=int(row.tp),
                explanation=(
                    f'On the tenant\'s last {days} days, replayed weekly: when "{text}" held, the account upgraded '
                    f"within 30 days {row.tp} of {row.fired} times (precision {row.precision:.0%}); it caught "
                    f"{row.tp} of {row.positives} upgrades (recall {row.recall:.0%})."
                    + (" Few cases: treat it as a hint, not proof." if row.fired < MIN_ACCOUNTS else "")
                ),
            )
        )
    return out, f"{len(upgrades)} account(s) upgraded in the last {days} days; candidates scored by F1."
