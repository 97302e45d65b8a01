"""The demo's revenue history: months of LicenseChange behind the licences seed_demo provisions today.

billing/demo.py provisions every licence now, so the charts would show one month. This adds, for each paid
licence, the history that led to it: a first paid month 2 to 18 months ago on fewer seats of the same tier
(never above the tier's limits: the seat count only grows towards today's), a seat expansion half way, and for
some accounts a cancellation and a later restore (churn, then reactivation). Trialing licences get nothing.
Idempotent: marked actor "demo-seed" with its own reason; a second run adds nothing.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from accounts.models import Tenant
from accounts.tenancy import tenant_context
from billing.models import License, LicenseChange, LicenseStatus
from upgrades.analytics.snapshot import refresh_snapshot

ACTOR = "demo-seed"
REASON = "analytics demo history"


def _state(license: License, seats: int, mrr: int, status: str) -> dict:
    return {"tier": license.tier.key, "seats": seats, "status": status, "mrr": mrr, "currency": license.currency}


def _change(tenant, license, kind, at, before, after, seats, status) -> LicenseChange:
    return LicenseChange(
        tenant=tenant,
        account_id=license.account_id,
        license=license,
        kind=kind,
        to_state=_state(license, seats, after, status),
        reason=REASON,
        actor_label=ACTOR,
        mrr_before=before,
        mrr_after=after,
        currency=license.currency,
        effective_at=at,
    )


def seed_analytics_demo(tenant: Tenant) -> int:
    """Add the history once; answers how many changes were added (0 on a second run)."""
    with tenant_context(tenant):
        if LicenseChange.objects.filter(tenant=tenant, actor_label=ACTOR, reason=REASON).exists():
            return 0
        rng = random.Random(18)
        now = timezone.now()
        rows: list[LicenseChange] = []
        licences = License.objects.filter(tenant=tenant, mrr__gt=0).exclude(status=LicenseStatus.TRIALING)
        for license in licences.select_related("tier").order_by("pk"):
            first_seen = LicenseChange.objects.filter(license=license).order_by("effective_at").first()
            until = first_seen.effective_at if first_seen else now
            months = rng.randint(2, 18)
            start = until - timedelta(days=30 * months + rng.randint(0, 27))
            seats0 = max(1, license.seats - rng.randint(0, max(0, license.seats - 1)))
            mrr0 = license.mrr * seats0 // max(1, license.seats)
            mid = start + (until - start) / 2
            seats1 = max(seats0, (seats0 + license.seats) // 2)
            mrr1 = license.mrr * seats1 // max(1, license.seats)

            def change(kind: str, at, before: int, after: int, seats: int, status: str = "active"):
                rows.append(_change(tenant, license, kind, at, before, after, seats, status))  # noqa: B023

            change("new", start, 0, mrr0, seats0, "active")
            if rng.random() < 0.12 and months >= 6:  # churned for a while, then came back
                gone = start + (mid - start) / 2
                change("cancel", gone, mrr0, 0, seats0, "canceled")
                change("restore", mid, 0, mrr1, seats1)
            elif seats1 != seats0:
                change("seats", mid, mrr0, mrr1, seats1)
            if first_seen is None:  # a licence without any history row: its current state closes the history
                change("seats", until, mrr1, license.mrr, license.seats, license.status)
        LicenseChange.objects.bulk_create(rows, batch_size=1000)
        refresh_snapshot(tenant)
        return len(rows)
