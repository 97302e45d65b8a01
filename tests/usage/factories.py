"""A small published catalog and licences for usage tests (built with the ORM, already published)."""

from __future__ import annotations

import datetime
import itertools
from dataclasses import dataclass

from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from billing.models import License, LicenseGrant
from catalog.models import (
    AddOn,
    Aggregation,
    Enforcement,
    Entitlement,
    Feature,
    FeatureKind,
    GovernanceState,
    Meter,
    MeterWindow,
    Product,
    Tier,
)

_keys = itertools.count(1)


@dataclass
class Catalog:
    product: Product
    api_calls: Feature
    sso: Feature
    storage: Feature
    users: Feature
    api_meter: Meter
    storage_meter: Meter
    users_meter: Meter
    free: Tier
    team: Tier
    business: Tier
    sso_addon: AddOn
    calls_pack: AddOn


def _published(**extra) -> dict:
    return {"state": GovernanceState.PUBLISHED, "published_at": timezone.now(), **extra}


def _ent(tenant, owner, feature, *, enabled=True, limit=None, enforcement=Enforcement.HARD, soft=80) -> Entitlement:
    kind = {"tier": owner} if isinstance(owner, Tier) else {"addon": owner}
    return Entitlement.objects.create(
        tenant=tenant,
        feature=feature,
        enabled=enabled,
        limit=limit,
        enforcement=enforcement,
        soft_limit_percent=soft,
        **kind,
    )


def make_catalog(tenant: Tenant, *, team_enforcement: str = Enforcement.SOFT) -> Catalog:
    """Free (1,000 calls hard, no SSO) < Team (10,000 calls, soft) < Business (unlimited, SSO).

    Add-ons: SSO, and a pack of 5,000 extra API calls.
    """
    product = Product.objects.create(tenant=tenant, key="app", name="App")
    api_calls = Feature.objects.create(
        tenant=tenant, product=product, key="api_calls", name="API calls", kind=FeatureKind.METERED, unit="calls"
    )
    sso = Feature.objects.create(
        tenant=tenant, product=product, key="sso", name="Single sign-on", kind=FeatureKind.BOOLEAN
    )
    storage = Feature.objects.create(
        tenant=tenant, product=product, key="storage", name="Storage", kind=FeatureKind.METERED, unit="GB"
    )
    users = Feature.objects.create(
        tenant=tenant, product=product, key="active_users", name="Active users", kind=FeatureKind.METERED, unit="users"
    )
    api_meter = Meter.objects.create(
        tenant=tenant,
        feature=api_calls,
        key="api_calls",
        name="API calls",
        event_name="api_call",
        aggregation=Aggregation.COUNT,
        window=MeterWindow.CALENDAR_MONTH,
    )
    storage_meter = Meter.objects.create(
        tenant=tenant,
        feature=storage,
        key="storage",
        name="Storage peak",
        event_name="storage_used",
        aggregation=Aggregation.MAX,
        property="gb",
        window=MeterWindow.CALENDAR_MONTH,
    )
    users_meter = Meter.objects.create(
        tenant=tenant,
        feature=users,
        key="active_users",
        name="Active users",
        event_name="user_active",
        aggregation=Aggregation.UNIQUE_COUNT,
        property="user_id",
        window=MeterWindow.ROLLING_DAYS,
        window_days=30,
    )
    free = Tier.objects.create(
        tenant=tenant, product=product, key="free", name="Free", rank=0, is_free=True, **_published()
    )
    team = Tier.objects.create(tenant=tenant, product=product, key="team", name="Team", rank=1, **_published())
    business = Tier.objects.create(
        tenant=tenant, product=product, key="business", name="Business", rank=2, **_published()
    )
    _ent(tenant, free, api_calls, limit=1000)
    _ent(tenant, free, sso, enabled=False)
    _ent(tenant, free, storage, limit=5)
    _ent(tenant, free, users, limit=3)
    _ent(tenant, team, api_calls, limit=10_000, enforcement=team_enforcement)
    _ent(tenant, team, sso, enabled=False)
    _ent(tenant, team, storage, limit=100)
    _ent(tenant, team, users, limit=25)
    _ent(tenant, business, api_calls, limit=None)
    _ent(tenant, business, sso)
    _ent(tenant, business, storage, limit=1000)
    _ent(tenant, business, users, limit=None)
    sso_addon = AddOn.objects.create(tenant=tenant, product=product, key="sso", name="SSO add-on", **_published())
    _ent(tenant, sso_addon, sso)
    calls_pack = AddOn.objects.create(
        tenant=tenant, product=product, key="calls-pack", name="API calls pack", **_published()
    )
    _ent(tenant, calls_pack, api_calls, limit=5000)
    return Catalog(
        product,
        api_calls,
        sso,
        storage,
        users,
        api_meter,
        storage_meter,
        users_meter,
        free,
        team,
        business,
        sso_addon,
        calls_pack,
    )


def give_license(
    account: CustomerAccount,
    tier: Tier,
    *,
    addons=(),
    status: str = "active",
    seats: int = 5,
    now: datetime.datetime | None = None,
) -> License:
    now = now or timezone.now()
    license_ = License.objects.create(
        tenant_id=account.tenant_id,
        account=account,
        tier=tier,
        seats=seats,
        status=status,
        current_period_start=now - datetime.timedelta(days=10),
        current_period_end=now + datetime.timedelta(days=20),
    )
    license_.addons.set(addons)
    return license_


def give_grant(
    account: CustomerAccount,
    *,
    tier: Tier | None = None,
    addon: AddOn | None = None,
    starts_at: datetime.datetime | None = None,
    ends_at: datetime.datetime,
) -> LicenseGrant:
    return LicenseGrant.objects.create(
        tenant_id=account.tenant_id,
        account=account,
        kind="trial",
        tier=tier,
        addon=addon,
        starts_at=starts_at or timezone.now() - datetime.timedelta(minutes=1),
        ends_at=ends_at,
    )


def event(
    account: str = "acct-1",
    name: str = "api_call",
    *,
    key: str | None = None,
    at: datetime.datetime | None = None,
    **properties,
) -> dict:
    return {
        "event": name,
        "account": account,
        "timestamp": (at or timezone.now()).isoformat(),
        "idempotency_key": key or f"k-{next(_keys)}",
        "properties": properties,
    }
