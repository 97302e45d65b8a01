"""Adoption of newly unlocked features after an upgrade: for each settled plan change, the features the new tier
and add-ons enable that the old tier and add-ons did not (a tier upgrade, an add-on bought, or both), and their
usage rollups in the days after the change against the days before."""

from __future__ import annotations

import datetime

from django.db.models import Sum
from django.utils import timezone

from accounts.models import Tenant
from billing.models import PlanChange, PlanChangeState
from catalog.models import Meter
from catalog.selectors import entitlements_for
from usage.models import UsageRollup

DAYS = 30  # the windows before and after the change
LOOKBACK_DAYS = 180  # plan changes settled this recently


def _unlocked(tenant: Tenant, change: PlanChange, memo: dict) -> list[str]:
    from_tier = change.from_price.tier if change.from_price is not None else None
    to_tier = change.target_price.tier
    from_addons = sorted(change.from_addons.all(), key=lambda a: a.pk)
    to_addons = sorted({p.addon.pk: p.addon for p in change.target_addon_prices.all() if p.addon}.values(),
                       key=lambda a: a.pk)  # fmt: skip
    key = (getattr(from_tier, "pk", None), tuple(a.pk for a in from_addons), to_tier.pk, tuple(a.pk for a in to_addons))
    if key not in memo:
        before = entitlements_for(tenant, tier=from_tier, addons=from_addons) if from_tier or from_addons else {}
        after = entitlements_for(tenant, tier=to_tier, addons=to_addons)
        memo[key] = sorted(k for k, ent in after.items() if ent.enabled and not (k in before and before[k].enabled))
    return memo[key]


def feature_adoption(tenant: Tenant, *, days: int = DAYS, now: datetime.datetime | None = None) -> list[dict]:
    """[{feature, upgrades, adopted, used_before, usage_before, usage_after}] per newly unlocked feature."""
    now = now or timezone.now()
    window = datetime.timedelta(days=days)
    changes = (
        PlanChange.objects.filter(
            tenant=tenant,
            state=PlanChangeState.SETTLED,
            settled_at__gte=now - datetime.timedelta(days=LOOKBACK_DAYS),
            settled_at__lte=now,
            target_price__tier__isnull=False,
        )
        .select_related("from_price__tier", "target_price__tier")
        .prefetch_related("from_addons", "target_addon_prices__addon")
        .order_by("settled_at", "pk")
    )
    memo: dict = {}
    rows: dict[str, dict] = {}
    for change in changes:
        unlocked = _unlocked(tenant, change, memo)
        if not unlocked:
            continue
        products = {change.target_price.tier.product_id} | {
            p.addon.product_id for p in change.target_addon_prices.all() if p.addon
        }
        meters = dict(
            Meter.objects.filter(
                tenant=tenant, feature__product_id__in=products, feature__key__in=unlocked
            ).values_list("pk", "feature__key")
        )
        settled_day = change.settled_at.date()
        usage: dict[str, dict[str, int]] = {"before": {}, "after": {}}
        for side, start, end in (
            ("before", settled_day - window, settled_day),
            ("after", settled_day, settled_day + window),
        ):
            for meter_id, total in (
                UsageRollup.objects.filter(
                    tenant=tenant, account_id=change.account_id, meter_id__in=meters, day__gte=start, day__lt=end
                )
                .values_list("meter_id")
                .annotate(total=Sum("value"))
                .order_by()
            ):
                feature = meters[meter_id]
                usage[side][feature] = usage[side].get(feature, 0) + (total or 0)
        for feature in unlocked:
            row = rows.setdefault(
                feature,
                {"feature": feature, "upgrades": 0, "adopted": 0, "used_before": 0, "usage_before": 0,
                 "usage_after": 0},
            )  # fmt: skip
            before, after = usage["before"].get(feature, 0), usage["after"].get(feature, 0)
            row["upgrades"] += 1
            row["adopted"] += after > 0
            row["used_before"] += before > 0
            row["usage_before"] += before
            row["usage_after"] += after
    return [rows[key] for key in sorted(rows)]
