"""The limits an account held on a past day, for the backtest (no look-ahead in limits either).

A licence's past is its append-only `LicenseChange` history: the state after the last change at or
before the instant (or, before the first change, the state that change started from). Grants are
read as they were active then. The plan is built with catalog's and usage's own pieces
(`entitlements_for`, the grant overlay, `feature_rules`), as `usage.selectors.plans_for_accounts`
builds today's. Only accounts whose licence changed since the first replayed instant can differ
from today's limits, so only they are computed per day.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from accounts.models import Tenant
from billing.models import LicenseChange, LicenseGrant
from catalog import selectors as catalog_selectors
from catalog.models import AddOn, Feature, Meter, Tier
from usage.selectors import ENTITLED_STATUSES
from usage.selectors.entitlements import feature_rules, overlay_grant_tiers


class LimitHistory:
    """Per replayed instant, the finite positive limits (account -> meter -> limit) of the accounts
    whose licence changed after `since`; every other account held its current limits throughout."""

    def __init__(self, tenant: Tenant, *, meter_ids: set[int], since: datetime.datetime) -> None:
        self.tenant, self.meter_ids = tenant, meter_ids
        self.changes: dict[int, list[LicenseChange]] = {}
        for change in LicenseChange.objects.for_tenant(tenant).order_by("effective_at", "id"):
            self.changes.setdefault(change.account_id, []).append(change)
        self.changes = {a: cs for a, cs in self.changes.items() if any(c.effective_at > since for c in cs)}
        self.grants: dict[int, list[LicenseGrant]] = {}
        if self.changes:
            for grant in (
                LicenseGrant.objects.for_tenant(tenant)
                .filter(account_id__in=list(self.changes))
                .select_related("tier", "addon")
                .order_by("id")
            ):
                self.grants.setdefault(grant.account_id, []).append(grant)
        self._tiers = {(t.key, t.version): t for t in Tier.objects.for_tenant(tenant)} if self.changes else {}
        self._addons: dict[str, AddOn] = {}
        for addon in AddOn.objects.for_tenant(tenant).order_by("version") if self.changes else ():
            self._addons[addon.key] = addon  # the newest version of each key
        self._default = catalog_selectors.get_default_tier(tenant) if self.changes else None
        self._meters: dict[int, Meter] = {}
        self._feature_ids: dict[str, int] = {}
        if self.changes:
            for meter in Meter.objects.for_tenant(tenant).filter(feature__isnull=False).order_by("id"):
                self._meters.setdefault(meter.feature_id, meter)
            self._feature_ids = dict(Feature.objects.for_tenant(tenant).values_list("key", "id"))
        self._cache: dict[tuple, dict[int, int]] = {}

    @property
    def accounts(self) -> set[int]:
        return set(self.changes)

    def state_at(self, account_id: int, at: datetime.datetime) -> dict | None:
        """The licence's JSON picture (billing's `license_state`) in force at `at`: {} for no licence
        (before a "new" change), None where the history does not say (the account keeps today's limits)."""
        changes = self.changes.get(account_id, [])
        before = [c for c in changes if c.effective_at <= at]
        if before:
            return before[-1].to_state or None
        if not changes:
            return None
        first = changes[0]
        return first.from_state or ({} if first.kind == "new" else None)

    def limits_at(self, at: datetime.datetime) -> dict[int, dict[int, int]]:
        """Limits at `at` of the changed accounts whose state then is known (the others are left out)."""
        out = {}
        for account_id in self.changes:
            state = self.state_at(account_id, at)
            if state is not None:
                out[account_id] = self._limits(account_id, state, at)
        return out

    def _limits(self, account_id: int, state: dict, at: datetime.datetime) -> dict[int, int]:
        tier: Tier | None = None
        addons: list[AddOn] = []
        if state.get("status") in ENTITLED_STATUSES:
            tier = self._tiers.get((state.get("tier"), state.get("tier_version")))
            addons = [self._addons[k] for k in state.get("addons") or () if k in self._addons]
        if tier is None:
            tier = self._default
        grants = [g for g in self.grants.get(account_id, []) if g.is_active_at(at)]
        addons += [g.addon for g in grants if g.addon_id and g.addon_id not in {a.pk for a in addons}]
        key = (tier.pk if tier else None, tuple(sorted(a.pk for a in addons)), tuple(g.pk for g in grants if g.tier_id))
        if key not in self._cache:
            self._cache[key] = self._plan_limits(tier, addons, grants)
        return self._cache[key]

    def _plan_limits(self, tier: Tier | None, addons: list[AddOn], grants: Iterable[LicenseGrant]) -> dict[int, int]:
        tenant = self.tenant
        combined = catalog_selectors.entitlements_for(tenant, tier=tier, addons=addons) if (tier or addons) else {}
        overlay_grant_tiers(
            combined,
            grants=grants,
            tier=tier,
            entitlements_for=lambda t: catalog_selectors.entitlements_for(tenant, tier=t, addons=addons),
        )
        rules = feature_rules(combined, meters=self._meters, feature_ids=self._feature_ids)
        return {
            r.meter_id: r.limit
            for r in rules.values()
            if r.meter_id in self.meter_ids and r.enabled and r.limit is not None and r.limit > 0
        }
