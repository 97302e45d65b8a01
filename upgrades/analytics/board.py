"""The upgrade-status board: every account of the tenant with something in motion (open signals, offers in
flight, trials in progress, plan changes in flight, plan changes that failed in the last 30 days)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.models import PlanChange
from upgrades.offers.models import Offer, Trial
from upgrades.rules.models import Signal

OFFERS_IN_FLIGHT = ("draft", "awaiting_review", "sent", "viewed", "accepted")
CHANGES_IN_FLIGHT = ("pending", "scheduled", "submitted")
LIMIT = 500
COLUMNS = [
    ("account", "Account"),
    ("signals", "Open signals"),
    ("offers", "Offers in flight"),
    ("trials", "Trials in progress"),
    ("plan_changes", "Plan changes in flight"),
    ("failures", "Failed plan changes (30 days)"),
]


def _counts(queryset) -> dict[int, int]:
    return dict(queryset.values_list("account_id").annotate(n=Count("id")))


def upgrade_board(tenant: Tenant) -> list[dict]:
    since = timezone.now() - timedelta(days=30)
    counts = {
        "signals": _counts(Signal.objects.filter(tenant=tenant, state="open")),
        "offers": _counts(Offer.objects.filter(tenant=tenant, state__in=OFFERS_IN_FLIGHT)),
        "trials": _counts(Trial.objects.filter(tenant=tenant, state="active")),
        "plan_changes": _counts(PlanChange.objects.filter(tenant=tenant, state__in=CHANGES_IN_FLIGHT)),
        "failures": _counts(PlanChange.objects.filter(tenant=tenant, state="failed", updated_at__gte=since)),
    }
    ids = set().union(*counts.values())
    names = dict(CustomerAccount.objects.filter(tenant=tenant, pk__in=ids).values_list("pk", "name"))
    rows = [
        {"account": names.get(pk, str(pk)), "account_id": pk, **{k: c.get(pk, 0) for k, c in counts.items()}}
        for pk in ids
    ]
    rows.sort(key=lambda r: (-r["failures"], -sum(r[k] for k in counts), r["account"]))
    return rows[:LIMIT]


def board_cells(rows: list[dict]) -> list[list[str]]:
    return [[str(row[key]) for key, _ in COLUMNS] for row in rows]
